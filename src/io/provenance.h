// What produced an output (docs/pipeline.md, "Provenance"): antibody's version and commit,
// the SGEMM library, the thread count and the date, to which callers add the resolved
// settings and the SHA-256 of every input file. Written into results.json, summary.json
// and provenance.json in every adapter folder.
#pragma once
#include <jansson.h>

#include "util/err.h"

// {"version", "commit", "blas", "threads", "date"} (date in UTC, ISO 8601). New reference.
json_t *provenance_new(void);
// Adds path -> {"path", "sha256"} under key "inputs" (created on first use). -1 when the
// file cannot be read.
int provenance_add_file(json_t *prov, const char *role, const char *path, Err *e);
// Writes prov (plus nothing else) to dir/provenance.json, atomically.
int provenance_write(const json_t *prov, const char *dir, Err *e);

// The content hash of a model or adapter folder: every file that decides the weights
// (config.json, adapter_config.json, tokenizer.json, *.safetensors and their index), by
// name and content. -1 when the folder has none of them or one cannot be read.
int folder_sha256(const char *dir, char hex[65], Err *e);
