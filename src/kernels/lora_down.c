// The down-projection of a LoRA adapter with dropout on its input, fused:
//   ax (N, r) = drop(x) @ A^T,  drop(x) = x * mask / (1 - p)
// and its backward. The dropped-out copy of x (N x in floats, for each of the seven
// projections, in the forward pass and twice again in the backward pass) was pure
// memory traffic; here each row is masked on the fly, in a buffer that stays in L1,
// straight from the bit mask the forward pass drew.
//
// Mask layout: bit (i*in + j) of `bits` (little-endian within a byte) keeps x[i][j].
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/kernels.h"
#include "util/err.h"

// 16 mask bits starting at bit `off` (bits at or past `nbits` read as 0)
static inline uint32_t mask16(const uint8_t *bits, size_t off, size_t nbits) {
    size_t byte = off >> 3, nbytes = (nbits + 7) >> 3;
    uint32_t v = 0;
    for (int b = 0; b < 3 && byte + b < nbytes; b++) v |= (uint32_t)bits[byte + b] << (8 * b);
    v = (v >> (off & 7)) & 0xffff;
    if (nbits - off < 16) v &= (1u << (nbits - off)) - 1;
    return v;
}

#if defined(__AVX512F__)
// xm = row of x (IN wide, starting at mask bit off), masked and scaled
static inline void mask_row(float *xm, const float *x, const uint8_t *bits, size_t off, int IN, float keep) {
    __m512 kv = _mm512_set1_ps(keep);
    for (int j = 0; j < IN; j += 16) {
        __mmask16 t = IN - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (IN - j)) - 1);
        __mmask16 m = (__mmask16)mask16(bits, off + j, off + IN);
        _mm512_mask_storeu_ps(xm + j, t, _mm512_maskz_mul_ps(m, _mm512_maskz_loadu_ps(t, x + j), kv));
    }
}
// o += row * mask * keep
static inline void add_masked(float *o, const float *row, const uint8_t *bits, size_t off, int IN, float keep) {
    __m512 kv = _mm512_set1_ps(keep);
    for (int j = 0; j < IN; j += 16) {
        __mmask16 t = IN - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (IN - j)) - 1);
        __mmask16 m = (__mmask16)mask16(bits, off + j, off + IN);
        __m512 ov = _mm512_maskz_loadu_ps(t, o + j);
        ov = _mm512_add_ps(ov, _mm512_maskz_mul_ps(m, _mm512_maskz_loadu_ps(t, row + j), kv));
        _mm512_mask_storeu_ps(o + j, t, ov);
    }
}
#else
static inline void mask_row(float *xm, const float *x, const uint8_t *bits, size_t off, int IN, float keep) {
    for (int j = 0; j < IN; j += 16) {
        uint32_t m = mask16(bits, off + j, off + IN);
        for (int k = 0; k < 16 && j + k < IN; k++) xm[j + k] = (m >> k & 1) ? x[j + k] * keep : 0.0f;
    }
}
static inline void add_masked(float *o, const float *row, const uint8_t *bits, size_t off, int IN, float keep) {
    for (int j = 0; j < IN; j += 16) {
        uint32_t m = mask16(bits, off + j, off + IN);
        for (int k = 0; k < 16 && j + k < IN; k++) o[j + k] += (m >> k & 1) ? row[j + k] * keep : 0.0f;
    }
}
#endif

static inline float dotf(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) s += a[j] * b[j];
    return s;
}

void lora_down_forward(float *ax, const float *x, const uint8_t *bits, float pdrop, const float *A, int N, int IN,
                       int r) {
    float keep = 1.0f / (1.0f - pdrop);
#pragma omp parallel
    {
        float *xm = xmalloc((size_t)IN * sizeof(float));
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            mask_row(xm, x + (size_t)i * IN, bits, (size_t)i * IN, IN, keep);
            for (int k = 0; k < r; k++) ax[(size_t)i * r + k] = dotf(xm, A + (size_t)k * IN, IN);
        }
        free(xm);
    }
}

// dA (r, IN) += dax^T @ drop(x);  dx (N, IN) += (dax @ A) * mask / (1 - p). Either may be
// NULL. Each thread sums its rows' dA into a private copy, ROWS masked rows at a time (so
// the copy is read and written once per ROWS rows, not per row); the copies are added at
// the end.
#define ROWS 8
void lora_down_backward(float *dA, float *dx, const float *dax, const float *x, const uint8_t *bits, float pdrop,
                        const float *A, int N, int IN, int r) {
    float keep = 1.0f / (1.0f - pdrop);
    int nblk = (N + ROWS - 1) / ROWS;
#pragma omp parallel
    {
        float *xm = dA ? xcalloc((size_t)ROWS * IN, sizeof(float)) : NULL, *row = xmalloc((size_t)IN * sizeof(float));
        float *dAt = dA ? xcalloc((size_t)r * IN, sizeof(float)) : NULL;
#pragma omp for schedule(static)
        for (int b = 0; b < nblk; b++) {
            int i0 = b * ROWS, nb = N - i0 < ROWS ? N - i0 : ROWS;
            if (dAt) {
                for (int ii = 0; ii < ROWS; ii++) {
                    size_t off = (size_t)(i0 + ii) * IN;
                    if (ii < nb) mask_row(xm + (size_t)ii * IN, x + off, bits, off, IN, keep);
                    else memset(xm + (size_t)ii * IN, 0, (size_t)IN * sizeof(float));
                }
                for (int k = 0; k < r; k++) {
                    float dk[ROWS], *g = dAt + (size_t)k * IN;
                    for (int ii = 0; ii < ROWS; ii++) dk[ii] = ii < nb ? dax[(size_t)(i0 + ii) * r + k] : 0.0f;
#pragma omp simd
                    for (int j = 0; j < IN; j++) {
                        float acc = g[j];
                        for (int ii = 0; ii < ROWS; ii++) acc += dk[ii] * xm[(size_t)ii * IN + j];
                        g[j] = acc;
                    }
                }
            }
            if (dx)
                for (int ii = 0; ii < nb; ii++) {
                    const float *d = dax + (size_t)(i0 + ii) * r;
                    size_t off = (size_t)(i0 + ii) * IN;
                    memset(row, 0, (size_t)IN * sizeof(float));
                    for (int k = 0; k < r; k++) {
                        float dk = d[k];
                        const float *a = A + (size_t)k * IN;
#pragma omp simd
                        for (int j = 0; j < IN; j++) row[j] += dk * a[j];
                    }
                    add_masked(dx + off, row, bits, off, IN, keep);
                }
        }
        if (dAt) {
#pragma omp critical(lora_down_dA)
            vec_add(dA, dAt, (size_t)r * IN);
            free(dAt);
        }
        free(xm);
        free(row);
    }
}
