// Atomic file output and small file helpers. Every file antibody writes goes through
// atomic_open/atomic_commit: a temp file beside the target, flushed, fsync'd and renamed
// over it, so a crash leaves either the old file or the new one, never a torn one.
#pragma once
#include <jansson.h>
#include <stdio.h>

#include "util/err.h"

typedef struct {
    char *path;  // final name
    char *tmp;   // temp name in the same directory (rename must not cross file systems)
    FILE *f;
} AtomicFile;

// Opens a temp file next to path for writing; returns its FILE* (also in a->f) or NULL.
FILE *atomic_open(AtomicFile *a, const char *path, Err *e);
// fflush + fsync + rename over path + fsync of the directory. Frees a's state either way;
// on failure the temp file is removed and the target is untouched.
int atomic_commit(AtomicFile *a, Err *e);
// Drops the temp file; the target is untouched. Safe on an AtomicFile that was never opened.
void atomic_abort(AtomicFile *a);

// Whole-buffer convenience over atomic_open/atomic_commit.
int write_file_atomic(const char *path, const void *data, size_t n, Err *e);
// The same for the file `name` in folder dir (dir/name, never cut to a buffer).
int write_file_in(const char *dir, const char *name, const void *data, size_t n, Err *e);
// mkdir -p (mode 0755); an existing directory is fine, an existing non-directory is an error.
int mkdir_p(const char *path, Err *e);
// Opens path for reading, refusing anything but a regular file (symbolic links are
// followed) before a read could block: a FIFO or a device named as a model file would
// otherwise hang the run. Returns the descriptor or -1 with the reason in e.
int open_regular(const char *path, Err *e);
// Reads a whole regular file into a malloc'd, NUL-terminated buffer; *len (if non-NULL) gets its size.
char *read_file(const char *path, size_t *len, Err *e);
// Reads and parses a JSON file (jansson flags); NULL with "path: cannot open: reason" or
// "path:line:column: malformed JSON: reason" in e.
json_t *read_json(const char *path, size_t flags, Err *e);
