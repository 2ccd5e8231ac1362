// Causal multi-head attention with grouped key/value heads (GQA) and a key padding
// mask, on top of SGEMM: one (batch, head) pair per thread, each a few T x T x HD
// products over blocks of query rows, each block against the keys up to its last row
// (the causal triangle plus a staircase, not the full square). The (T, T) probabilities
// are kept for the backward pass. Inside the parallel region the SGEMM (an OpenMP build)
// runs single-threaded, so the threads split the heads, not the products.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "util/err.h"

// The first key a query at position t sees (0 without a sliding window).
static int first_key(int t, int window) { return window > 0 && t >= window ? t - window + 1 : 0; }

static float score_scale(AttnScores sc, int HD) { return sc.scale > 0.0f ? sc.scale : 1.0f / sqrtf((float)HD); }

// Row t of scaled scores s (T) -> softmax over the keys u <= t that are real tokens (and
// within the window), soft-capped first when asked, zero elsewhere.
static void causal_softmax_row(const SimdKernels *k, float *s, int t, int T, const int *mask, AttnScores sc) {
    float mx = -INFINITY;
    int lo = first_key(t, sc.window);
    if (sc.softcap > 0.0f) softcap_forward(s + lo, sc.softcap, (size_t)(t + 1 - lo));
    if (lo > 0 || mask)
        for (int u = 0; u <= t; u++)
            if (u < lo || (mask && !mask[u])) s[u] = -INFINITY;  // exp gives 0
#pragma omp simd reduction(max : mx)
    for (int u = 0; u <= t; u++) mx = s[u] > mx ? s[u] : mx;
    if (mx == -INFINITY) {  // no real key: an all-zero row
        for (int u = 0; u < T; u++) s[u] = 0.0f;
        return;
    }
    float sum = (float)k->exp_sum(s, t + 1, mx);
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int u = 0; u <= t; u++) s[u] *= inv;
    for (int u = t + 1; u < T; u++) s[u] = 0.0f;
}

// Query rows go in blocks of ROWS: a block's products stop at its last row's key, so the
// masked upper triangle is (mostly) not computed.
#define ROWS 64

// out (B*T, NH*HD); att (B, NH, T, T); q (B*T, NH*HD); k, v (B*T, NKV*HD)
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *mask,
                       AttnShape s) {
    int B = s.B, T = s.T, NH = s.NH, NKV = s.NKV, HD = s.HD, group = NH / NKV;
    int qC = NH * HD, kC = NKV * HD;
    float scale = score_scale(s.sc, HD);
    const SimdKernels *sk = simd();
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH, kh = h / group;
        const float *qb = q + (size_t)b * T * qC + h * HD;
        const float *kb = k + (size_t)b * T * kC + kh * HD, *vb = v + (size_t)b * T * kC + kh * HD;
        float *p = att + ((size_t)b * NH + h) * T * T, *ob = out + (size_t)b * T * qC + h * HD;
        for (int r0 = 0; r0 < T; r0 += ROWS) {  // query rows r0..r1 see keys 0..r1 only
            int r1 = r0 + ROWS < T ? r0 + ROWS : T, m = r1 - r0;
            blas_sgemm(0, 1, m, r1, HD, scale, qb + (size_t)r0 * qC, qC, kb, kC, 0.0f, p + (size_t)r0 * T, T);  // S
            for (int t = r0; t < r1; t++) causal_softmax_row(sk, p + (size_t)t * T, t, T, mask ? mask + b * T : NULL, s.sc);
            blas_sgemm(0, 0, m, HD, r1, 1.0f, p + (size_t)r0 * T, T, vb, kC, 0.0f, ob + (size_t)r0 * qC, qC);  // O = P V
        }
    }
}

// With P = softmax(S), S = scale * q k^T, O = P v:
//   dP = dO v^T,  dS = P * (dP - sum_u P dP),  dq = scale dS k,  dk = scale dS^T q,  dv = P^T dO.
// Soft-capped scores (S = cap tanh(S0 / cap)) multiply dS by 1 - (S / cap)^2, with S
// recomputed from q and k (a block's S0 is one more product, instead of keeping (T, T)
// more per head). Keys outside the window or padding have P = 0, hence dS = 0.
// KV heads are shared by a group of query heads, so dk/dv are summed over the group;
// threads split over (b, kv head) so no two write the same rows.
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                        const float *k, const float *v, AttnShape s) {
    int B = s.B, T = s.T, NH = s.NH, NKV = s.NKV, HD = s.HD, group = NH / NKV;
    int qC = NH * HD, kC = NKV * HD;
    float scale = score_scale(s.sc, HD), cap = s.sc.softcap;
    const SimdKernels *sk = simd();
#pragma omp parallel
    {
        float *dp = xmalloc((size_t)T * T * sizeof(float));  // one (T, T) scratch per thread
        float *sc = cap > 0.0f ? xmalloc((size_t)ROWS * T * sizeof(float)) : NULL;  // a block's capped scores
#pragma omp for schedule(dynamic)
        for (int bk = 0; bk < B * NKV; bk++) {
            int b = bk / NKV, kh = bk % NKV;
            const float *kb = k + (size_t)b * T * kC + kh * HD, *vb = v + (size_t)b * T * kC + kh * HD;
            float *dkb = dk + (size_t)b * T * kC + kh * HD, *dvb = dv + (size_t)b * T * kC + kh * HD;
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                const float *p = att + ((size_t)b * NH + h) * T * T;
                const float *dob = dout + (size_t)b * T * qC + h * HD, *qb = q + (size_t)b * T * qC + h * HD;
                float *dqb = dq + (size_t)b * T * qC + h * HD;
                for (int r0 = 0; r0 < T; r0 += ROWS) {  // query rows r0..r1, keys 0..r1
                    int r1 = r0 + ROWS < T ? r0 + ROWS : T, m = r1 - r0;
                    const float *pb = p + (size_t)r0 * T;
                    float *db = dp + (size_t)r0 * T;
                    blas_sgemm(0, 1, m, r1, HD, 1.0f, dob + (size_t)r0 * qC, qC, vb, kC, 0.0f, db, T);  // dP = dO V^T
                    blas_sgemm(1, 0, r1, HD, m, 1.0f, pb, T, dob + (size_t)r0 * qC, qC, 1.0f, dvb, kC);  // dV += P^T dO
                    if (sc) blas_sgemm(0, 1, m, r1, HD, scale, qb + (size_t)r0 * qC, qC, kb, kC, 0.0f, sc, T);  // S0
                    for (int t = r0; t < r1; t++) {  // dS = P * (dP - rowsum(P * dP)) * scale
                        const float *pr = p + (size_t)t * T;
                        float *dr = dp + (size_t)t * T, dot = sk->dot(pr, dr, t + 1);
                        for (int u = 0; u <= t; u++) dr[u] = pr[u] * (dr[u] - dot) * scale;
                        for (int u = t + 1; u < r1; u++) dr[u] = 0.0f;
                        if (sc) {  // through the cap: d S0 = d S * (1 - tanh^2)
                            float *sr = sc + (size_t)(t - r0) * T;
                            softcap_forward(sr, cap, (size_t)t + 1);
                            softcap_backward(dr, sr, cap, (size_t)t + 1);
                        }
                    }
                    blas_sgemm(0, 0, m, HD, r1, 1.0f, db, T, kb, kC, 1.0f, dqb + (size_t)r0 * qC, qC);  // dQ += dS K
                    blas_sgemm(1, 0, r1, HD, m, 1.0f, db, T, qb + (size_t)r0 * qC, qC, 1.0f, dkb, kC);  // dK += dS^T Q
                }
            }
        }
        free(dp);
        free(sc);
    }
}

// One query row q (NH*HD) of generation against the first len positions of a layer's KV
// cache (rows of kv_stride floats: NKV heads of HD) -> out (NH*HD); att is scratch of NH
// rows of stride att_stride. The cache holds only real tokens of one sequence: no mask.
// The loop is simd.h's attend_cached; with several threads (one sequence: single-sequence
// decoding) each takes a share of the KV heads. A row's bits do not depend on the thread
// count.
void attention_cached_forward(float *out, float *att_buf, int att_stride, const float *q, const float *kcache,
                              const float *vcache, int len, int NH, int NKV, int HD, AttnScores sc) {
    const SimdKernels *sk = simd();
    int lo = first_key(len - 1, sc.window), n = len - lo;  // the keys in the window
    size_t KV = (size_t)NKV * HD;
    float scale = score_scale(sc, HD);
#pragma omp parallel if (NKV > 1 && (size_t)n * NH * HD >= ((size_t)1 << 16))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int kh0 = NKV * t / nt, kh1 = NKV * (t + 1) / nt;
        if (kh0 < kh1)
            sk->attend_cached(out, att_buf + lo, att_stride, q, kcache + lo * KV, vcache + lo * KV, n, NH, NKV, HD, scale,
                              sc.softcap, kh0, kh1);
    }
}
