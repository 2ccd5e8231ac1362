// The vector kernels (simd.h) with AVX2 + FMA: 8 floats a register, 16 registers (so
// fewer rows in flight than with AVX-512); tails through masked loads or small copies. Compiled for AVX2
// whatever the build's baseline; isa.c calls it only on a CPU that has it.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/simd.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#include "kernels/simd_loops.h"

// ---- matvec (simd_matvec.h): tiles of 2 weight rows x 3 input rows, 12 of the 16
// registers as accumulators
#define MV_TILE_R 2
#define MV_TILE_C 3
#include "kernels/simd_matvec.h"

// ---- dropout masks: 8 mask bits -> 8 lanes -------------------------------------------
static inline __m256 lanes(uint32_t m8) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m8), sel), sel));
}

// mask bit k (one column of a tail)
static inline int mask_bit(const uint8_t *bits, size_t k) { return bits[k >> 3] >> (k & 7) & 1; }

// y * keep where the 8 mask bits from off are set, else 0
static inline __m256 masked8y(__m256 y, const uint8_t *bits, size_t off, size_t nbits, __m256 kv) {
    return _mm256_and_ps(lanes(mask_bits16(bits, off, nbits) & 0xff), _mm256_mul_ps(y, kv));
}
static inline __m256 masked8(const float *x, const uint8_t *bits, size_t off, size_t nbits, __m256 kv) {
    return masked8y(_mm256_loadu_ps(x), bits, off, nbits, kv);
}

// Full 8-lane blocks with plain loads and stores (AMD's masked stores are microcoded and
// slow); the last n % 8 through a copy.
static void mask_row(float *xm, const float *x, const uint8_t *bits, size_t off, int n, float keep) {
    __m256 kv = _mm256_set1_ps(keep);
    int j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(xm + j, masked8(x + j, bits, off + j, off + n, kv));
    if (j < n) {
        float b[8] = {0};
        memcpy(b, x + j, (size_t)(n - j) * 4);
        _mm256_storeu_ps(b, masked8(b, bits, off + j, off + n, kv));
        memcpy(xm + j, b, (size_t)(n - j) * 4);
    }
}

// Four 8-lane blocks at a time (four independent chains of r FMAs), then single blocks, then
// the last n % 8 columns one at a time.
static void comb_add_masked(float *o, const float *d, int r, const float *A, size_t ld, const uint8_t *bits,
                            size_t off, int n, float keep) {
    __m256 kv = _mm256_set1_ps(keep);
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256 y0 = _mm256_setzero_ps(), y1 = y0, y2 = y0, y3 = y0;
        for (int k = 0; k < r; k++) {
            __m256 dk = _mm256_set1_ps(d[k]);
            const float *a = A + k * ld + j;
            y0 = _mm256_fmadd_ps(dk, _mm256_loadu_ps(a), y0);
            y1 = _mm256_fmadd_ps(dk, _mm256_loadu_ps(a + 8), y1);
            y2 = _mm256_fmadd_ps(dk, _mm256_loadu_ps(a + 16), y2);
            y3 = _mm256_fmadd_ps(dk, _mm256_loadu_ps(a + 24), y3);
        }
#define ADD(q, y) _mm256_storeu_ps(o + j + 8 * q, _mm256_add_ps(_mm256_loadu_ps(o + j + 8 * q), \
    masked8y(y, bits, off + j + 8 * q, off + n, kv)))
        ADD(0, y0); ADD(1, y1); ADD(2, y2); ADD(3, y3);
#undef ADD
    }
    for (; j + 8 <= n; j += 8) {
        __m256 y = _mm256_setzero_ps();
        for (int k = 0; k < r; k++) y = _mm256_fmadd_ps(_mm256_set1_ps(d[k]), _mm256_loadu_ps(A + k * ld + j), y);
        _mm256_storeu_ps(o + j, _mm256_add_ps(_mm256_loadu_ps(o + j), masked8y(y, bits, off + j, off + n, kv)));
    }
    for (; j < n; j++)
        if (mask_bit(bits, off + j)) {
            float y = 0.0f;
            for (int k = 0; k < r; k++) y += d[k] * A[k * ld + j];
            o[j] += y * keep;
        }
}

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// Full 8-lane blocks as above, the last n % 8 columns one at a time; named accumulators and
// rows, not arrays (GCC keeps an indexed vector array on the stack).
static void dot8_masked(float *out, const float *x, const uint8_t *bits, size_t off, float keep, const float *A,
                        size_t ld, int n) {
    __m256 kv = _mm256_set1_ps(keep), s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
           s7 = s0;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 xv = masked8(x + j, bits, off + j, off + n, kv);
        const float *a = A + j;
#define ACC(k) s##k = _mm256_fmadd_ps(xv, _mm256_loadu_ps(a + k * ld), s##k)
        ACC(0); ACC(1); ACC(2); ACC(3); ACC(4); ACC(5); ACC(6); ACC(7);
#undef ACC
    }
    out[0] = hsum8(s0), out[1] = hsum8(s1), out[2] = hsum8(s2), out[3] = hsum8(s3);
    out[4] = hsum8(s4), out[5] = hsum8(s5), out[6] = hsum8(s6), out[7] = hsum8(s7);
    for (; j < n; j++)
        if (mask_bit(bits, off + j))
            for (int k = 0; k < 8; k++) out[k] += x[j] * keep * A[k * ld + j];
}

// Columns [j0, n) of outer8_masked, one at a time (the tail past the last 8-lane block).
static void outer8_masked_cols(float *g, const float *c, int r, const float *x, const uint8_t *bits, size_t off,
                               int nb, int n, float keep, int j0) {
    for (int j = j0; j < n; j++) {
        float xs[8];
        for (int i = 0; i < 8; i++)
            xs[i] = i < nb && mask_bit(bits, off + (size_t)i * n + j) ? x[(size_t)i * n + j] * keep : 0.0f;
        for (int k = 0; k < r; k++) {
            float acc = g[(size_t)k * n + j];
            for (int i = 0; i < 8; i++) acc += c[k * 8 + i] * xs[i];
            g[(size_t)k * n + j] = acc;
        }
    }
}

static void outer8_masked(float *g, const float *c, int r, const float *x, const uint8_t *bits, size_t off, int nb,
                          int n, float keep) {
    __m256 kv = _mm256_set1_ps(keep), z = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
#define ROW(i) __m256 x##i = i < nb ? masked8(x + (size_t)i * n + j, bits, off + (size_t)i * n + j, off + (size_t)(i + 1) * n, kv) : z
        ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5); ROW(6); ROW(7);
#undef ROW
        for (int k = 0; k < r; k++) {
            float *gk = g + (size_t)k * n + j;
            const float *ck = c + k * 8;
            __m256 acc = _mm256_loadu_ps(gk);
#define FMA(i) acc = _mm256_fmadd_ps(_mm256_set1_ps(ck[i]), x##i, acc)
            FMA(0); FMA(1); FMA(2); FMA(3); FMA(4); FMA(5); FMA(6); FMA(7);
#undef FMA
            _mm256_storeu_ps(gk, acc);
        }
    }
    outer8_masked_cols(g, c, r, x, bits, off, nb, n, keep, j);
}

// Eight pair hashes at once: two bytes of the mask. Both halves of a hash and thr are below
// 2^17, so the signed compare is the unsigned one.
static void dropout_bits(uint8_t *bits, size_t b0, size_t b1, uint32_t thr, uint32_t k0, uint32_t k1) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i vk0 = _mm256_set1_epi32((int)k0), vk1 = _mm256_set1_epi32((int)k1),
                  vt = _mm256_set1_epi32((int)thr - 1);
    const __m256i g = _mm256_set1_epi32((int)0x9e3779b1u), c1 = _mm256_set1_epi32((int)0x85ebca6bu),
                  c2 = _mm256_set1_epi32((int)0xc2b2ae35u), lo = _mm256_set1_epi32(0xffff);
    size_t b = b0;
    for (; b + 2 <= b1; b += 2) {
        __m256i h = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(b * 4)), lane);
        h = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_xor_si256(h, vk0), g), vk1);
        h = _mm256_mullo_epi32(_mm256_xor_si256(h, _mm256_srli_epi32(h, 16)), c1);
        h = _mm256_mullo_epi32(_mm256_xor_si256(h, _mm256_srli_epi32(h, 13)), c2);
        h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
        uint32_t mlo = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_and_si256(h, lo), vt))),
                 mhi = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_srli_epi32(h, 16), vt)));
        uint32_t w = spread16(mlo) | spread16(mhi) << 1;
        bits[b] = (uint8_t)w, bits[b + 1] = (uint8_t)(w >> 8);
    }
    for (; b < b1; b++) bits[b] = dropout_byte(b, thr, k0, k1);
}

// ---- exp: the same algorithm as simd_avx512.c's, 8 lanes --------------------------------
static inline __m256 vexp(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3365448f), hi = _mm256_set1_ps(88.7228394f);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)));
    y = _mm256_and_ps(y, _mm256_cmp_ps(x, lo, _CMP_GE_OQ));                       // below FLT_MIN, -inf: 0
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));            // NaN stays NaN
}

static inline void exp_add(float *x, __m256 sv, __m256d *s0, __m256d *s1) {
    __m256 e = vexp(_mm256_sub_ps(_mm256_loadu_ps(x), sv));
    _mm256_storeu_ps(x, e);
    *s0 = _mm256_add_pd(*s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    *s1 = _mm256_add_pd(*s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

static double exp_sum(float *x, int n, float shift) {
    __m256 sv = _mm256_set1_ps(shift);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int j = 0;
    for (; j + 8 <= n; j += 8) exp_add(x + j, sv, &s0, &s1);
    if (j < n) {  // padded with -inf: exp gives 0, nothing added
        float b[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(b, x + j, (size_t)(n - j) * 4);
        exp_add(b, sv, &s0, &s1);
        memcpy(x + j, b, (size_t)(n - j) * 4);
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

// ---- SwiGLU ------------------------------------------------------------------------------
static inline __m256 sigmoid(__m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, vexp(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

static inline void swiglu_fwd8(float *out, const float *g, const float *u) {
    __m256 gv = _mm256_loadu_ps(g);
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_mul_ps(gv, sigmoid(gv)), _mm256_loadu_ps(u)));
}

// A gated MLP's 8-lane step over n elements, the last few through zero-padded copies (the
// same lanes as the rest). f is a constant at every call, so it inlines.
typedef void (*Gated8Fwd)(float *out, const float *g, const float *u);
typedef void (*Gated8Bwd)(float *dg, float *du, const float *dout, const float *g, const float *u);

static inline void gated_fwd(Gated8Fwd f, float *out, const float *g, const float *u, size_t n) {
    size_t j = 0;
    for (; j + 8 <= n; j += 8) f(out + j, g + j, u + j);
    if (j < n) {
        float o[8] = {0}, gb[8] = {0}, ub[8] = {0};
        memcpy(gb, g + j, (n - j) * 4), memcpy(ub, u + j, (n - j) * 4);
        f(o, gb, ub);
        memcpy(out + j, o, (n - j) * 4);
    }
}

static inline void gated_bwd(Gated8Bwd f, float *dg, float *du, const float *dout, const float *g, const float *u,
                             size_t n) {
    size_t j = 0;
    for (; j + 8 <= n; j += 8) f(dg + j, du + j, dout + j, g + j, u + j);
    if (j < n) {
        size_t b = (n - j) * 4;
        float dgb[8] = {0}, dub[8] = {0}, db[8] = {0}, gb[8] = {0}, ub[8] = {0};
        memcpy(db, dout + j, b), memcpy(gb, g + j, b);
        memcpy(ub, u + j, b);
        f(dgb, dub, db, gb, ub);
        memcpy(dg + j, dgb, b), memcpy(du + j, dub, b);
    }
}

static void swiglu_fwd(float *out, const float *g, const float *u, size_t n) { gated_fwd(swiglu_fwd8, out, g, u, n); }

static inline void swiglu_bwd8(float *dg, float *du, const float *dout, const float *g, const float *u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 gv = _mm256_loadu_ps(g), uv = _mm256_loadu_ps(u), dv = _mm256_loadu_ps(dout), sig = sigmoid(gv);
    __m256 dsilu = _mm256_mul_ps(sig, _mm256_fmadd_ps(gv, _mm256_sub_ps(one, sig), one));
    _mm256_storeu_ps(dg, _mm256_mul_ps(_mm256_mul_ps(dv, uv), dsilu));
    _mm256_storeu_ps(du, _mm256_mul_ps(dv, _mm256_mul_ps(gv, sig)));
}

static void swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    gated_bwd(swiglu_bwd8, dg, du, dout, g, u, n);
}

// ---- tanh: the algorithm of simd_avx512.c's vtanh, 8 lanes --------------------------------
static inline __m256 vtanh(__m256 x) {
    const __m256 sgn = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 ax = _mm256_andnot_ps(sgn, x), z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, z), ax), ax);
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(vexp(_mm256_add_ps(ax, ax)), one)));
    __m256 y = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
    return _mm256_or_ps(y, _mm256_and_ps(sgn, x));
}

static inline void softcap8(float *x, __m256 c) {
    _mm256_storeu_ps(x, _mm256_mul_ps(vtanh(_mm256_div_ps(_mm256_loadu_ps(x), c)), c));
}

static void softcap(float *x, float cap, size_t n) {
    __m256 c = _mm256_set1_ps(cap);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) softcap8(x + j, c);
    if (j < n) {  // the last few through a copy: the same lanes as the rest
        float b[8] = {0};
        memcpy(b, x + j, (n - j) * 4);
        softcap8(b, c);
        memcpy(x + j, b, (n - j) * 4);
    }
}

static inline void geglu_fwd8(float *out, const float *g, const float *u) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(GELU_BETA),
                 k = _mm256_set1_ps(GELU_KAPPA);
    __m256 x = _mm256_loadu_ps(g);
    __m256 inner = _mm256_mul_ps(b, _mm256_add_ps(x, _mm256_mul_ps(k, _mm256_mul_ps(_mm256_mul_ps(x, x), x))));
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, vtanh(inner))),
                                        _mm256_loadu_ps(u)));
}

static void geglu_fwd(float *out, const float *g, const float *u, size_t n) { gated_fwd(geglu_fwd8, out, g, u, n); }

static inline void geglu_bwd8(float *dg, float *du, const float *dout, const float *g, const float *u) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(GELU_BETA),
                 k = _mm256_set1_ps(GELU_KAPPA), k3 = _mm256_set1_ps(3.0f * GELU_KAPPA);
    __m256 x = _mm256_loadu_ps(g), uv = _mm256_loadu_ps(u), dv = _mm256_loadu_ps(dout), x2 = _mm256_mul_ps(x, x);
    __m256 t = vtanh(_mm256_mul_ps(b, _mm256_add_ps(x, _mm256_mul_ps(_mm256_mul_ps(k, x2), x))));
    __m256 hx = _mm256_mul_ps(half, x), opt = _mm256_add_ps(one, t);
    __m256 gelu = _mm256_mul_ps(hx, opt);
    __m256 d = _mm256_add_ps(_mm256_mul_ps(half, opt),
                             _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(hx, _mm256_sub_ps(one, _mm256_mul_ps(t, t))), b),
                                           _mm256_add_ps(one, _mm256_mul_ps(k3, x2))));
    _mm256_storeu_ps(dg, _mm256_mul_ps(_mm256_mul_ps(dv, uv), d));
    _mm256_storeu_ps(du, _mm256_mul_ps(dv, gelu));
}

static void geglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    gated_bwd(geglu_bwd8, dg, du, dout, g, u, n);
}

#include "kernels/simd_attend.h"

const SimdKernels simd_avx2 = {
    .matvec_rows = matvec_rows,
    .mask_row = mask_row,
    .dot = loop_dot,
    .dot8_masked = dot8_masked,
    .outer8_masked = outer8_masked,
    .comb_add_masked = comb_add_masked,
    .dropout_bits = dropout_bits,
    .exp_sum = exp_sum,
    .swiglu_fwd = swiglu_fwd,
    .swiglu_bwd = swiglu_bwd,
    .softcap = softcap,
    .geglu_fwd = geglu_fwd,
    .geglu_bwd = geglu_bwd,
    .attend_cached = attend_cached,
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
