// Pieces every table of simd.h shares: loops the compiler vectorises well by itself and
// the dropout-mask reader. Each simd_*.c includes this after its target pragma, so each
// table gets these loops at its own vector width.
#pragma once
#include <stddef.h>
#include <stdint.h>

// 16 mask bits starting at bit `off` (bits at or past `nbits` read as 0). Mask layout: bit
// k of `bits` is bit (k & 7) of byte k >> 3.
static inline uint32_t mask_bits16(const uint8_t *bits, size_t off, size_t nbits) {
    size_t byte = off >> 3, nbytes = (nbits + 7) >> 3;
    uint32_t v = 0;
    for (int b = 0; b < 3 && byte + b < nbytes; b++) v |= (uint32_t)bits[byte + b] << (8 * b);
    v = (v >> (off & 7)) & 0xffff;
    if (nbits - off < 16) v &= (1u << (nbits - off)) - 1;
    return v;
}

static float loop_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) s += a[j] * b[j];
    return s;
}

static void loop_axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) y[j] += a * x[j];
}

static void loop_axpy8(float *g, const float *c, const float *x, size_t ld, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        float acc = g[j];
        for (int i = 0; i < 8; i++) acc += c[i] * x[(size_t)i * ld + j];
        g[j] = acc;
    }
}
