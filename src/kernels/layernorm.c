// LayerNorm as torch.nn.LayerNorm (OPT): y = (x - mean(x)) / sqrt(var(x) + eps) * w + b,
// with the biased variance over the C features of a row.
#include <math.h>

#include "kernels/kernels.h"

// out, x (N,C); w, b (C); rstd (N) saved for backward (the mean is recomputed from x).
void layernorm_forward(float *out, float *rstd, const float *x, const float *w, const float *b, int N, int C,
                       float eps) {
#pragma omp parallel for schedule(static) if (N > 64)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C;
        float *oi = out + (size_t)i * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < C; j++) s += xi[j];
        float mean = s / C, ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < C; j++) ss += (xi[j] - mean) * (xi[j] - mean);
        float r = 1.0f / sqrtf(ss / C + eps);
        if (rstd) rstd[i] = r;
        for (int j = 0; j < C; j++) oi[j] = (xi[j] - mean) * r * w[j] + b[j];
    }
}

// xhat_j = (x_j - mean) r,  g_j = w_j dy_j
// dx_j = r * (g_j - mean_k(g_k) - xhat_j * mean_k(g_k xhat_k));  dw_j = sum_i dy_j xhat_j;  db_j = sum_i dy_j
void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if (N > 64)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C, *gi = dout + (size_t)i * C;
        float *dxi = dx + (size_t)i * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < C; j++) s += xi[j];
        float mean = s / C, r = rstd[i], gsum = 0.0f, gxsum = 0.0f;
#pragma omp simd reduction(+ : gsum, gxsum)
        for (int j = 0; j < C; j++) {
            float g = w[j] * gi[j];
            gsum += g;
            gxsum += g * (xi[j] - mean) * r;
        }
        gsum /= C;
        gxsum /= C;
        for (int j = 0; j < C; j++) dxi[j] += r * (w[j] * gi[j] - gsum - (xi[j] - mean) * r * gxsum);
    }
    if (dw || db)
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * C, *gi = dout + (size_t)i * C;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < C; j++) s += xi[j];
            float mean = s / C;
            for (int j = 0; j < C; j++) {
                if (dw) dw[j] += gi[j] * (xi[j] - mean) * rstd[i];
                if (db) db[j] += gi[j];
            }
        }
}
