// Folders replaced as a whole (training checkpoints), so that a kill -9 at any instant
// leaves the last complete folder readable and the next save able to proceed
// (docs/reliability.md, "Checkpoints under kill -9"). The folders are flat: files only.
//
//   dir_stage(DIR, LAST)  recovers as dir_recover, removes whatever an earlier kill left in DIR.tmp and DIR.old and
//                     creates DIR.tmp empty; the writer then fills DIR.tmp.
//   dir_replace(DIR)  DIR -> DIR.old, DIR.tmp -> DIR, DIR.old removed. DIR exists only
//                     as a complete folder; between the two renames DIR.old is the
//                     complete one.
//   dir_recover(DIR, LAST)  before reading: when a kill came between the two renames,
//                     moves DIR.old back to DIR (when it holds LAST, the file a writer
//                     writes last; else it is the remains of a removal and goes).
//                     Returns 1 when DIR exists afterwards, 0 when there is nothing to
//                     resume from, -1 on error.
// Every error names the path and the system's reason.
#pragma once
#include <stddef.h>

#include "util/err.h"

int dir_stage(const char *dir, const char *last, Err *e);
int dir_replace(const char *dir, Err *e);
int dir_recover(const char *dir, const char *last, Err *e);
// Removes a flat folder (its files, then itself); a missing folder is fine.
int dir_remove_flat(const char *path, Err *e);
