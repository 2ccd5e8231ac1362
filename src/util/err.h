// Errors as values: functions that touch user files fill an Err and return -1;
// only the command-line layer prints it (one line) and exits.
#pragma once
#include <stddef.h>

typedef struct {
    char msg[12288];  // room for two paths of PATH_MAX bytes and what went wrong with them
} Err;

// Formats the message into e (if e is non-NULL) and returns -1, so callers can
// write `return err_set(e, "%s: bad header", path);`.
int err_set(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Allocation that aborts with a message on failure (out of memory is not a user error): the
// one place library code prints and aborts (docs/engine.md, "Errors and messages").
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
// printf into a malloc'd string of the length it needs (file paths are built this way,
// never cut to a fixed buffer).
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
