// Minimal test harness: CHECK records failures and keeps going; each test binary
// ends with TEST_SUMMARY(), which prints "N passed, N failed" and returns the exit code.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            t_pass++;                                                        \
        } else {                                                             \
            t_fail++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, " " __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                           \
        }                                                                    \
    } while (0)

// Relative/absolute closeness for floats.
static inline int close_enough(double a, double b, double rtol, double atol) {
    return fabs(a - b) <= atol + rtol * fabs(b);
}

// Shared test assets live beside the project root (../shared); tests skip nothing
// silently: a missing asset is a failure.
static inline const char *shared_dir(void) {
    const char *s = getenv("ANTIBODY_SHARED");
    return s ? s : "../shared";
}

#define TEST_SUMMARY()                                                   \
    do {                                                                 \
        printf("%s: %d passed, %d failed\n", __FILE__, t_pass, t_fail);  \
        return t_fail ? 1 : 0;                                           \
    } while (0)
