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
// torch, so it is pruned first. A total order (columns differ).
static int prunes_before(ScoreIdx x, ScoreIdx y) {
    int xn = isnan(x.s), yn = isnan(y.s);
    if (xn != yn) return xn;
    if (!xn && x.s != y.s) return x.s > y.s;
    return x.j > y.j;
}

// Moves the k first entries of a[0..n) in pruning order to a[0..k) (in any order):
// quickselect with a median-of-three pivot, insertion sort below 16 entries.
static void select_first(ScoreIdx *a, int n, int k) {
    if (k <= 0 || k >= n) return;
    int lo = 0, hi = n - 1;
    while (hi - lo > 16) {
        int mid = lo + (hi - lo) / 2;
        ScoreIdx t;
#define SWAP(x, y) (t = a[x], a[x] = a[y], a[y] = t)
        if (prunes_before(a[mid], a[lo])) SWAP(mid, lo);
        if (prunes_before(a[hi], a[lo])) SWAP(hi, lo);
        if (prunes_before(a[hi], a[mid])) SWAP(hi, mid);
        ScoreIdx p = a[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (prunes_before(a[i], p)) i++;
            while (prunes_before(p, a[j])) j--;
            if (i <= j) { SWAP(i, j); i++; j--; }
        }
#undef SWAP
        if (k - 1 <= j) hi = j;        // a[lo..j] come before a[i..hi]: the k-th is left
        else if (k - 1 >= i) lo = i;   // or right
        else return;                   // or the pivot itself, between them
    }
    for (int i = lo + 1; i <= hi; i++) {
        ScoreIdx v = a[i];
        int j = i - 1;
        for (; j >= lo && prunes_before(v, a[j]); j--) a[j + 1] = a[j];
        a[j + 1] = v;
    }
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
            select_first(si, cols, k);
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
