// Checks on the folders a command reads and writes, made before any work starts
// (docs/pipeline.md, "Outputs"): an --out that is a file, an output folder holding
// the files of an earlier run, the same adapter given twice.
#pragma once
#include "util/err.h"

// dir may be created or reused: it does not exist, or it is a directory (not a file).
int out_dir_usable(const char *dir, Err *e);

// Files of an earlier run in dir. Of names[0..n) those present are listed in e's message
// ("DIR holds summary.json, harmful.jsonl of an earlier run ...") and -1 is returned;
// with overwrite they are removed instead (so a run never leaves stale files beside its own).
int out_dir_claim(const char *dir, const char *const *names, int n, int overwrite, Err *e);

// The adapters merged into one model name different folders (by their real path): the
// same adapter merged twice doubles its update and gives a different model.
int adapters_distinct(const char *const *dirs, int n, Err *e);
