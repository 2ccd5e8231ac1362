// Generation's attention (simd.h's attend_cached) in 256-bit registers, for the AVX2 and
// AVX-512 tables alike: each includes this after its target pragma and after its own
// exp_sum, which the softmax uses.
//
// The cache does not fit in the caches (16 sequences x 30 layers x 160 positions of the
// SmolLM shape are 118 MB), so it is read front to back, whole rows, prefetched ahead. The
// scores of up to AT_HEADS query heads of a KV head at a time, so each key is loaded once
// for them (one accumulator per head, a horizontal sum per key); the softmax with the
// table's vector exponential; then the outputs, blocks of positions at a time, 8
// accumulators per 64 dimensions of a head, one broadcast weight per position.
#pragma once
#include <immintrin.h>
#include <math.h>

#define AT_HEADS 3

static inline float at_hsum(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

static inline __attribute__((always_inline)) __m256 at_load(const float *p, int left, int exact) {
    if (exact || left >= 8) return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

// att[h * att_stride] = (q_h . k) * scale for nh consecutive heads from q against one key k.
// exact: HD is a multiple of 8.
static inline __attribute__((always_inline)) void at_score(float *att, int att_stride, const float *q, const float *k,
                                                           int HD, float scale, int nh, int exact) {
    __m256 acc[AT_HEADS];
    for (int h = 0; h < nh; h++) acc[h] = _mm256_setzero_ps();
    for (int j = 0; j < HD; j += 8) {
        __m256 kv = at_load(k + j, HD - j, exact);
        for (int h = 0; h < nh; h++) acc[h] = _mm256_fmadd_ps(at_load(q + h * HD + j, HD - j, exact), kv, acc[h]);
    }
    for (int h = 0; h < nh; h++) att[(size_t)h * att_stride] = at_hsum(acc[h]) * scale;
}

// o (w <= 64 floats, nb = ceil(w / 8) vectors) += sum over nt positions of p[t] v[t * ldv]
static inline __attribute__((always_inline)) void at_value_block(float *o, const float *p, const float *v, size_t ldv,
                                                                 int nt, int w, int nb, int exact) {
    __m256 acc[8];
    for (int b = 0; b < nb; b++) acc[b] = at_load(o + 8 * b, w - 8 * b, exact);
    for (int t = 0; t < nt; t++) {
        __m256 pt = _mm256_broadcast_ss(p + t);
        for (int b = 0; b < nb; b++) acc[b] = _mm256_fmadd_ps(pt, at_load(v + (size_t)t * ldv + 8 * b, w - 8 * b, exact), acc[b]);
    }
    for (int b = 0; b < nb; b++) {
        if (exact || w - 8 * b >= 8) {
            _mm256_storeu_ps(o + 8 * b, acc[b]);
        } else {  // the last few through a copy (AMD's masked stores are microcoded)
            float buf[8];
            _mm256_storeu_ps(buf, acc[b]);
            memcpy(o + 8 * b, buf, (size_t)(w - 8 * b) * sizeof(float));
        }
    }
}

static inline __attribute__((always_inline)) void at_values(float *o, const float *p, const float *v, size_t ldv,
                                                            int nt, int HD, int exact) {
    for (int c0 = 0; c0 < HD; c0 += 64) {
        int w = HD - c0 < 64 ? HD - c0 : 64;
        switch ((w + 7) / 8) {  // constant vector counts: no test inside the loop
#define AT_VB(n) \
    case n: at_value_block(o + c0, p, v + c0, ldv, nt, w, n, exact); break;
            AT_VB(1) AT_VB(2) AT_VB(3) AT_VB(4) AT_VB(5) AT_VB(6) AT_VB(7) AT_VB(8)
#undef AT_VB
        }
    }
}

#define AT_AHEAD 16  // cached positions fetched ahead (the cache is read from memory, a row at a time)
#define AT_BLOCK 8   // positions per block of the weighted sum

static inline void at_fetch_row(const float *row, size_t bytes) {
    for (size_t b = 0; b < bytes; b += 64) _mm_prefetch((const char *)row + b, _MM_HINT_T0);
}

// KV heads [kh0, kh1) and their query heads. Both passes read the cache front to back, whole
// rows (all those KV heads) at a time: the scores, then the softmax per head, then the
// weighted values in blocks of AT_BLOCK positions, each head's output accumulated in place.
static inline __attribute__((always_inline)) void at_heads(float *out, float *att_buf, int att_stride, const float *q,
                                                           const float *kc, const float *vc, int len, int NH, int NKV,
                                                           int HD, float scale, float softcap, int kh0, int kh1,
                                                           int exact) {
    int G = NH / NKV;
    size_t KV = (size_t)NKV * HD, span = (size_t)(kh1 - kh0) * HD * sizeof(float);
    for (int t = 0; t < len; t++) {
        const float *kt = kc + (size_t)t * KV;
        if (t + AT_AHEAD < len) at_fetch_row(kt + AT_AHEAD * KV + (size_t)kh0 * HD, span);
        for (int kh = kh0; kh < kh1; kh++)
            for (int h = kh * G; h < (kh + 1) * G; h += AT_HEADS) {
                int nh = (kh + 1) * G - h < AT_HEADS ? (kh + 1) * G - h : AT_HEADS;
                float *att = att_buf + (size_t)h * att_stride + t;
                switch (nh) {  // constant head counts: the accumulators stay in registers
                case 1: at_score(att, att_stride, q + (size_t)h * HD, kt + (size_t)kh * HD, HD, scale, 1, exact); break;
                case 2: at_score(att, att_stride, q + (size_t)h * HD, kt + (size_t)kh * HD, HD, scale, 2, exact); break;
                default: at_score(att, att_stride, q + (size_t)h * HD, kt + (size_t)kh * HD, HD, scale, 3, exact); break;
                }
            }
    }
    for (int h = kh0 * G; h < kh1 * G; h++) {
        float *att = att_buf + (size_t)h * att_stride, mx = -INFINITY;
        if (softcap > 0.0f) softcap_forward(att, softcap, (size_t)len);
        for (int t = 0; t < len; t++) mx = att[t] > mx ? att[t] : mx;
        float sum = (float)exp_sum(att, len, mx);
        for (int t = 0; t < len; t++) att[t] /= sum;
        memset(out + (size_t)h * HD, 0, (size_t)HD * sizeof(float));
    }
    for (int t0 = 0; t0 < len; t0 += AT_BLOCK) {
        int nt = len - t0 < AT_BLOCK ? len - t0 : AT_BLOCK;
        for (int t = t0 + AT_AHEAD; t < t0 + AT_AHEAD + nt && t < len; t++)
            at_fetch_row(vc + (size_t)t * KV + (size_t)kh0 * HD, span);
        for (int h = kh0 * G; h < kh1 * G; h++) {
            const float *p = att_buf + (size_t)h * att_stride + t0, *vt = vc + (size_t)t0 * KV + (size_t)(h / G) * HD;
            at_values(out + (size_t)h * HD, p, vt, KV, nt, HD, exact);
        }
    }
}

static void attend_cached(float *out, float *att_buf, int att_stride, const float *q, const float *kc,
                          const float *vc, int len, int NH, int NKV, int HD, float scale, float softcap, int kh0,
                          int kh1) {
    if (HD % 8 == 0) at_heads(out, att_buf, att_stride, q, kc, vc, len, NH, NKV, HD, scale, softcap, kh0, kh1, 1);
    else at_heads(out, att_buf, att_stride, q, kc, vc, len, NH, NKV, HD, scale, softcap, kh0, kh1, 0);
}
