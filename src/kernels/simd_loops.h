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

// out[i] = x . A[i * ld ...] for i < 8: eight dots sharing one pass over x, eight
// independent sums instead of one chain per dot.
static void loop_dot8(float *out, const float *x, const float *A, size_t ld, int n) {
    const float *a0 = A, *a1 = A + ld, *a2 = A + 2 * ld, *a3 = A + 3 * ld, *a4 = A + 4 * ld, *a5 = A + 5 * ld,
                *a6 = A + 6 * ld, *a7 = A + 7 * ld;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)
    for (int j = 0; j < n; j++) {
        float v = x[j];
        s0 += v * a0[j]; s1 += v * a1[j]; s2 += v * a2[j]; s3 += v * a3[j];
        s4 += v * a4[j]; s5 += v * a5[j]; s6 += v * a6[j]; s7 += v * a7[j];
    }
    out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3; out[4] = s4; out[5] = s5; out[6] = s6; out[7] = s7;
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
