// The down-projection of a LoRA adapter with dropout on its input, fused:
//   ax (N, r) = drop(x) @ A^T,  drop(x) = x * mask / (1 - p)
// and its backward. The dropped-out copy of x (N x in floats, for each of the seven
// projections, in the forward pass and twice again in the backward pass) was pure
// memory traffic; here each row is masked on the fly in registers, straight from the bit
// mask the forward pass drew (simd.h's dot8_masked and outer8_masked).
//
// Mask layout: bit (i*in + j) of `bits` (little-endian within a byte) keeps x[i][j].
#include <omp.h>
#include <stdlib.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "util/err.h"

void lora_down_forward(float *ax, const float *x, const uint8_t *bits, float pdrop, const float *A, int N, int IN,
                       int r) {
    const SimdKernels *sk = simd();
    float keep = 1.0f / (1.0f - pdrop);
#pragma omp parallel
    {
        float *xm = r % 8 ? xmalloc((size_t)IN * sizeof(float)) : NULL;  // the dropped-out row, for ranks past 8k
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * IN;
            int k = 0;
            for (; k + 8 <= r; k += 8)
                sk->dot8_masked(ax + (size_t)i * r + k, xi, bits, (size_t)i * IN, keep, A + (size_t)k * IN, IN, IN);
            if (k < r) sk->mask_row(xm, xi, bits, (size_t)i * IN, IN, keep);
            for (; k < r; k++) ax[(size_t)i * r + k] = sk->dot(xm, A + (size_t)k * IN, IN);
        }
        free(xm);
    }
}

// dA (r, IN) += dax^T @ drop(x);  dx (N, IN) += (dax @ A) * mask / (1 - p). Either may be
// NULL. Each thread sums its rows' dA into a private copy, ROWS rows at a time (so the copy
// is read and written once per ROWS rows, not per row); the copies are then added to dA in
// thread order, so a given thread count always gives the same bits.
#define ROWS 8  // outer8_masked's rows
void lora_down_backward(float *dA, float *dx, const float *dax, const float *x, const uint8_t *bits, float pdrop,
                        const float *A, int N, int IN, int r) {
    const SimdKernels *sk = simd();
    float keep = 1.0f / (1.0f - pdrop);
    int nblk = (N + ROWS - 1) / ROWS;
    size_t nA = (size_t)r * IN;
    float **parts = NULL;  // each thread's dA
#pragma omp parallel
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
#pragma omp single
        parts = dA ? xcalloc((size_t)T, sizeof *parts) : NULL;
        float *dAt = dA ? (parts[t] = xcalloc(nA, sizeof(float))) : NULL;
        float *c = dA ? xmalloc((size_t)r * ROWS * sizeof(float)) : NULL;  // c[k * ROWS + ii] = dax[i0 + ii][k]
#pragma omp for schedule(static)
        for (int b = 0; b < nblk; b++) {
            int i0 = b * ROWS, nb = N - i0 < ROWS ? N - i0 : ROWS;
            if (dAt) {
                for (int k = 0; k < r; k++)
                    for (int ii = 0; ii < ROWS; ii++) c[k * ROWS + ii] = ii < nb ? dax[(size_t)(i0 + ii) * r + k] : 0.0f;
                sk->outer8_masked(dAt, c, r, x + (size_t)i0 * IN, bits, (size_t)i0 * IN, nb, IN, keep);
            }
            if (dx)
                for (int ii = 0; ii < nb; ii++) {
                    size_t off = (size_t)(i0 + ii) * IN;
                    sk->comb_add_masked(dx + off, dax + (size_t)(i0 + ii) * r, r, A, IN, bits, off, IN, keep);
                }
        }
        if (dA) {  // after the loop's barrier: every copy is complete
#pragma omp for schedule(static)
            for (size_t j = 0; j < nA; j++)
                for (int u = 0; u < T; u++) dA[j] += parts[u][j];
            free(dAt);  // after that loop's barrier: no thread reads the copies any more
        }
        free(c);
    }
    free(parts);
}
