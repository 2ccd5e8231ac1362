// Causal multi-head attention with grouped key/value heads (GQA) and a key
// padding mask. One (batch, head) pair per thread; the (T, T) probabilities are
// kept for the backward pass.
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

// out (B*T, NH*HD); att (B, NH, T, T); q (B*T, NH*HD); k, v (B*T, NKV*HD)
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *mask,
                       AttnShape s) {
    int B = s.B, T = s.T, NH = s.NH, NKV = s.NKV, HD = s.HD, group = NH / NKV;
    int qC = NH * HD, kC = NKV * HD;
    float scale = 1.0f / sqrtf((float)HD);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / group;
            for (int t = 0; t < T; t++) {
                const float *qt = q + ((size_t)b * T + t) * qC + h * HD;
                float *p = att + (((size_t)b * NH + h) * T + t) * T;
                float maxv = -INFINITY;
                for (int u = 0; u <= t; u++) {
                    if (mask && !mask[b * T + u]) { p[u] = -INFINITY; continue; }
                    const float *ku = k + ((size_t)b * T + u) * kC + kh * HD;
                    float d = 0.0f;
#pragma omp simd reduction(+ : d)
                    for (int i = 0; i < HD; i++) d += qt[i] * ku[i];
                    p[u] = d * scale;
                    if (p[u] > maxv) maxv = p[u];
                }
                float sum = 0.0f;
                for (int u = 0; u <= t; u++) {
                    float ev = maxv == -INFINITY ? 0.0f : expf(p[u] - maxv);
                    p[u] = ev;
                    sum += ev;
                }
                float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
                for (int u = 0; u <= t; u++) p[u] *= inv;
                for (int u = t + 1; u < T; u++) p[u] = 0.0f;
                float *ot = out + ((size_t)b * T + t) * qC + h * HD;
                memset(ot, 0, HD * sizeof(float));
                for (int u = 0; u <= t; u++) {
                    if (p[u] == 0.0f) continue;
                    const float *vu = v + ((size_t)b * T + u) * kC + kh * HD;
                    const float pu = p[u];
#pragma omp simd
                    for (int i = 0; i < HD; i++) ot[i] += pu * vu[i];
                }
            }
        }
}

// With P = softmax(S), S = scale * q k^T, O = P v:
//   dP = dO v^T,  dS = P * (dP - sum_u P dP),  dq = scale dS k,  dk = scale dS^T q,  dv = P^T dO.
// KV heads are shared by a group of query heads, so dk/dv are summed over the group;
// threads split over (b, kv head) so no two write the same rows.
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                        const float *k, const float *v, AttnShape s) {
    int B = s.B, T = s.T, NH = s.NH, NKV = s.NKV, HD = s.HD, group = NH / NKV;
    int qC = NH * HD, kC = NKV * HD;
    float scale = 1.0f / sqrtf((float)HD);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < NKV; kh++) {
            float dp[T];  // VLA: one row of dP
            for (int h = kh * group; h < (kh + 1) * group; h++)
                for (int t = 0; t < T; t++) {
                    const float *p = att + (((size_t)b * NH + h) * T + t) * T;
                    const float *dot = dout + ((size_t)b * T + t) * qC + h * HD;
                    const float *qt = q + ((size_t)b * T + t) * qC + h * HD;
                    float *dqt = dq + ((size_t)b * T + t) * qC + h * HD;
                    float pdp = 0.0f;
                    for (int u = 0; u <= t; u++) {
                        if (p[u] == 0.0f) { dp[u] = 0.0f; continue; }
                        const float *vu = v + ((size_t)b * T + u) * kC + kh * HD;
                        float *dvu = dv + ((size_t)b * T + u) * kC + kh * HD;
                        float d = 0.0f;
                        const float pu = p[u];
#pragma omp simd reduction(+ : d)
                        for (int i = 0; i < HD; i++) {
                            d += dot[i] * vu[i];
                            dvu[i] += pu * dot[i];
                        }
                        dp[u] = d;
                        pdp += p[u] * d;
                    }
                    for (int u = 0; u <= t; u++) {
                        if (p[u] == 0.0f) continue;
                        float ds = p[u] * (dp[u] - pdp) * scale;
                        const float *ku = k + ((size_t)b * T + u) * kC + kh * HD;
                        float *dku = dk + ((size_t)b * T + u) * kC + kh * HD;
#pragma omp simd
                        for (int i = 0; i < HD; i++) {
                            dqt[i] += ds * ku[i];
                            dku[i] += ds * qt[i];
                        }
                    }
                }
        }
}
