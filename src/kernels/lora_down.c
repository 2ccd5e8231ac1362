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

#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "util/err.h"

void lora_down_forward(float *ax, const float *x, const uint8_t *bits, float pdrop, const float *A, int N, int IN,
                       int r) {
    const SimdKernels *sk = simd();
    float keep = 1.0f / (1.0f - pdrop);
#pragma omp parallel
    {
        float *xm = xmalloc((size_t)IN * sizeof(float));
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            sk->mask_row(xm, x + (size_t)i * IN, bits, (size_t)i * IN, IN, keep);
            int k = 0;
            for (; k + 8 <= r; k += 8) sk->dot8(ax + (size_t)i * r + k, xm, A + (size_t)k * IN, IN, IN);
            for (; k < r; k++) ax[(size_t)i * r + k] = sk->dot(xm, A + (size_t)k * IN, IN);
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
    const SimdKernels *sk = simd();
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
                    if (ii < nb) sk->mask_row(xm + (size_t)ii * IN, x + off, bits, off, IN, keep);
                    else memset(xm + (size_t)ii * IN, 0, (size_t)IN * sizeof(float));
                }
                for (int k = 0; k < r; k++) {
                    float dk[ROWS];
                    for (int ii = 0; ii < ROWS; ii++) dk[ii] = ii < nb ? dax[(size_t)(i0 + ii) * r + k] : 0.0f;
                    sk->axpy8(dAt + (size_t)k * IN, dk, xm, IN, IN);
                }
            }
            if (dx)
                for (int ii = 0; ii < nb; ii++) {
                    const float *d = dax + (size_t)(i0 + ii) * r;
                    size_t off = (size_t)(i0 + ii) * IN;
                    memset(row, 0, (size_t)IN * sizeof(float));
                    int k = 0;
                    for (; k + 8 <= r; k += 8) sk->axpy8(row, d + k, A + (size_t)k * IN, IN, IN);
                    for (; k < r; k++) sk->axpy(row, d[k], A + (size_t)k * IN, IN);
                    sk->add_masked(dx + off, row, bits, off, IN, keep);
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
