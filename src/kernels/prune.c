// Pruning masks and their statistics (Antidote, docs/methods.md "Antidote"): the Wanda
// score |W_ij| * ||X_:,j|| per row, the random ablation, the input statistics, zeroing.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/err.h"

typedef struct { float s; int j; } ScoreIdx;
// Pruning order: the reference sorts ascending (stable) and keeps the front, so the back
// is pruned: larger scores first, among equal ones the higher column; NaN sorts last in
// torch, so it is pruned first.
static int by_prune_order(const void *a, const void *b) {
    const ScoreIdx *x = a, *y = b;
    int xn = isnan(x->s), yn = isnan(y->s);
    if (xn != yn) return xn ? -1 : 1;
    if (!xn && x->s != y->s) return x->s < y->s ? 1 : -1;
    return y->j - x->j;
}

int wanda_row_count(int cols, double dense_ratio) {
    return cols - (int)floor((double)cols * (1.0 - dense_ratio));  // int(cols * sparsity) kept
}

void wanda_mask(const float *W, int rows, int cols, const float *act, double dense_ratio, unsigned char *mask) {
    int k = wanda_row_count(cols, dense_ratio);
    memset(mask, 0, (size_t)rows * cols);
#pragma omp parallel
    {
        ScoreIdx *si = xmalloc((size_t)cols * sizeof *si);
#pragma omp for schedule(static)
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) si[j] = (ScoreIdx){fabsf(W[(size_t)i * cols + j]) * (act ? act[j] : 1.0f), j};
            qsort(si, cols, sizeof *si, by_prune_order);
            for (int t = 0; t < k; t++) mask[(size_t)i * cols + si[t].j] = 1;
        }
        free(si);
    }
}

void random_mask(Rng *r, int rows, int cols, double dense_ratio, unsigned char *mask) {
    size_t n = (size_t)rows * cols, k = (size_t)floor((double)n * dense_ratio);  // int(numel * dense_ratio)
    int *perm = xmalloc((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++) perm[i] = (int)i;
    rng_shuffle_int(r, perm, (int)n);
    memset(mask, 0, n);
    for (size_t t = 0; t < k; t++) mask[perm[t]] = 1;
    free(perm);
}

void colsumsq_accumulate(double *acc, const float *x, int n, int cols) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < cols; j++) acc[j] += (double)x[(size_t)i * cols + j] * x[(size_t)i * cols + j];
}

size_t mask_zero(float *W, uint16_t *Wb, const unsigned char *mask, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (mask[i]) {
            if (W) W[i] = 0.0f;
            else Wb[i] = 0;
            k++;
        }
    return k;
}
