// Shared by the libFuzzer harnesses (docs/reliability.md): the loaders read files, so each
// input is written into a private folder on /dev/shm, split into parts where a loader
// reads several files (PART_SEP between them), and the loader runs on that folder.
// Every harness only checks that loading either succeeds or fails with a message:
// AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's -malloc_limit_mb catch
// the rest (reads out of bounds, overflow, allocations sized by a number in the file).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define PART_SEP "\n@@antibody-fuzz-part@@\n"

// The folder this process writes its files into (created once).
static inline const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/antibody-fuzz-%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                 (long)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

// Writes n bytes to fuzz_dir()/name and returns the path (static buffer per call slot).
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t n) {
    static char paths[8][512];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
    return p;
}

static inline void fuzz_remove(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fuzz_dir(), name);
    unlink(p);
}

// Splits the input at PART_SEP into at most max parts; returns how many.
static inline int fuzz_split(const uint8_t *data, size_t n, const uint8_t **part, size_t *len, int max) {
    size_t sep = strlen(PART_SEP);
    int k = 0;
    const uint8_t *p = data, *end = data + n;
    while (k < max - 1) {
        const uint8_t *s = memmem(p, (size_t)(end - p), PART_SEP, sep);
        if (!s) break;
        part[k] = p;
        len[k++] = (size_t)(s - p);
        p = s + sep;
    }
    part[k] = p;
    len[k++] = (size_t)(end - p);
    return k;
}

// A failed load must say something.
static inline void fuzz_check_err(int failed, const Err *e) {
    if (failed && !e->msg[0]) abort();
}
