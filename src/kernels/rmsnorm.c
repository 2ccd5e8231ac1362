// RMSNorm as Hugging Face's LlamaRMSNorm: y = x / sqrt(mean(x^2) + eps) * w, and Gemma's,
// which scales by (1 + w) (w_offset = 1; the sum is formed in f32 as GemmaRMSNorm does).
#include <math.h>

#include "kernels/kernels.h"

// out, x (N,C); w (C); rstd (N)
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, float w_offset, int N, int C,
                     float eps) {
#pragma omp parallel for schedule(static) if (N > 64)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C;
        float *oi = out + (size_t)i * C;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < C; j++) ss += xi[j] * xi[j];
        float r = 1.0f / sqrtf(ss / C + eps);
        if (rstd) rstd[i] = r;
        for (int j = 0; j < C; j++) oi[j] = (xi[j] * r) * (w_offset + w[j]);
    }
}

// y_j = v_j * x_j * r,  r = (mean(x^2)+eps)^-1/2,  v = w_offset + w
// dx_j = r * (v_j dy_j) - r^3/C * x_j * sum_k(v_k dy_k x_k);  dw_j = sum_i dy_j x_j r
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, float w_offset,
                      const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if (N > 64)
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C, *gi = dout + (size_t)i * C;
        float *dxi = dx + (size_t)i * C;
        float r = rstd[i], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < C; j++) dot += (w_offset + w[j]) * gi[j] * xi[j];
        float k = r * r * r * dot / C;
        for (int j = 0; j < C; j++) dxi[j] += r * (w_offset + w[j]) * gi[j] - k * xi[j];
    }
    if (dw)
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * C, *gi = dout + (size_t)i * C;
            for (int j = 0; j < C; j++) dw[j] += gi[j] * xi[j] * rstd[i];
        }
}
