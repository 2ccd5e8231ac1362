// The vector kernels (simd.h) with AVX-512 (F, BW, VL, DQ): 16 floats a register, masked
// loads for the tails. Compiled for AVX-512 whatever the build's baseline; isa.c calls it
// only on a CPU that has it.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/simd.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#endif

#include "kernels/simd_loops.h"

static inline __mmask16 tail(int left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

// ---- matvec (simd_matvec.h): the AVX2 loop, whose 256-bit bf16 widening streams faster
// than the 512-bit one on AMD Zen 4 (30 against 25 GB/s per core, docs/performance.md),
// here with 32 registers: tiles of 3 weight rows x 4 input rows (24 accumulators). The
// same bits as the AVX2 table.
#define MV_TILE_R 3
#define MV_TILE_C 4
#include "kernels/simd_matvec.h"

// ---- dropout masks ---------------------------------------------------------------------
static void mask_row(float *xm, const float *x, const uint8_t *bits, size_t off, int n, float keep) {
    __m512 kv = _mm512_set1_ps(keep);
    for (int j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j), m = (__mmask16)mask_bits16(bits, off + j, off + n);
        _mm512_mask_storeu_ps(xm + j, t, _mm512_maskz_mul_ps(m, _mm512_maskz_loadu_ps(t, x + j), kv));
    }
}

// Four column blocks at a time: four independent chains of r FMAs.
static void comb_add_masked(float *o, const float *d, int r, const float *A, size_t ld, const uint8_t *bits,
                            size_t off, int n, float keep) {
    __m512 kv = _mm512_set1_ps(keep);
    int j = 0;
    for (; j + 64 <= n; j += 64) {
        __m512 y0 = _mm512_setzero_ps(), y1 = y0, y2 = y0, y3 = y0;
        for (int k = 0; k < r; k++) {
            __m512 dk = _mm512_set1_ps(d[k]);
            const float *a = A + k * ld + j;
            y0 = _mm512_fmadd_ps(dk, _mm512_loadu_ps(a), y0);
            y1 = _mm512_fmadd_ps(dk, _mm512_loadu_ps(a + 16), y1);
            y2 = _mm512_fmadd_ps(dk, _mm512_loadu_ps(a + 32), y2);
            y3 = _mm512_fmadd_ps(dk, _mm512_loadu_ps(a + 48), y3);
        }
#define ADD(q, y) _mm512_storeu_ps(o + j + 16 * q, _mm512_add_ps(_mm512_loadu_ps(o + j + 16 * q), \
    _mm512_maskz_mul_ps((__mmask16)mask_bits16(bits, off + j + 16 * q, off + n), y, kv)))
        ADD(0, y0); ADD(1, y1); ADD(2, y2); ADD(3, y3);
#undef ADD
    }
    for (; j < n; j += 16) {
        __mmask16 t = tail(n - j), m = (__mmask16)mask_bits16(bits, off + j, off + n);
        __m512 y = _mm512_setzero_ps();
        for (int k = 0; k < r; k++) y = _mm512_fmadd_ps(_mm512_set1_ps(d[k]), _mm512_maskz_loadu_ps(t, A + k * ld + j), y);
        __m512 ov = _mm512_maskz_loadu_ps(t, o + j);
        _mm512_mask_storeu_ps(o + j, t, _mm512_add_ps(ov, _mm512_maskz_mul_ps(m, y, kv)));
    }
}

// Named accumulators and rows, not arrays: GCC keeps an indexed __m512 array on the stack.
static void dot8_masked(float *out, const float *x, const uint8_t *bits, size_t off, float keep, const float *A,
                        size_t ld, int n) {
    __m512 kv = _mm512_set1_ps(keep), s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
           s7 = s0;
    for (int j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j), m = (__mmask16)mask_bits16(bits, off + j, off + n);
        __m512 xv = _mm512_maskz_mul_ps(m, _mm512_maskz_loadu_ps(t, x + j), kv);
        const float *a = A + j;
#define ACC(k) s##k = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(t, a + k * ld), s##k)
        ACC(0); ACC(1); ACC(2); ACC(3); ACC(4); ACC(5); ACC(6); ACC(7);
#undef ACC
    }
    out[0] = _mm512_reduce_add_ps(s0), out[1] = _mm512_reduce_add_ps(s1), out[2] = _mm512_reduce_add_ps(s2);
    out[3] = _mm512_reduce_add_ps(s3), out[4] = _mm512_reduce_add_ps(s4), out[5] = _mm512_reduce_add_ps(s5);
    out[6] = _mm512_reduce_add_ps(s6), out[7] = _mm512_reduce_add_ps(s7);
}

static inline __m512 masked16(const float *x, const uint8_t *bits, size_t off, size_t nbits, __mmask16 t, __m512 kv) {
    return _mm512_maskz_mul_ps((__mmask16)mask_bits16(bits, off, nbits), _mm512_maskz_loadu_ps(t, x), kv);
}

static void outer8_masked(float *g, const float *c, int r, const float *x, const uint8_t *bits, size_t off, int nb,
                          int n, float keep) {
    __m512 kv = _mm512_set1_ps(keep), z = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j);
#define ROW(i) __m512 x##i = i < nb ? masked16(x + (size_t)i * n + j, bits, off + (size_t)i * n + j, off + (size_t)(i + 1) * n, t, kv) : z
        ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5); ROW(6); ROW(7);
#undef ROW
        for (int k = 0; k < r; k++) {
            float *gk = g + (size_t)k * n + j;
            const float *ck = c + k * 8;
            __m512 acc = _mm512_maskz_loadu_ps(t, gk);
#define FMA(i) acc = _mm512_fmadd_ps(_mm512_set1_ps(ck[i]), x##i, acc)
            FMA(0); FMA(1); FMA(2); FMA(3); FMA(4); FMA(5); FMA(6); FMA(7);
#undef FMA
            _mm512_mask_storeu_ps(gk, t, acc);
        }
    }
}

// Sixteen pair hashes at once: four bytes of the mask.
static void dropout_bits(uint8_t *bits, size_t b0, size_t b1, uint32_t thr, uint32_t k0, uint32_t k1) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vk0 = _mm512_set1_epi32((int)k0), vk1 = _mm512_set1_epi32((int)k1), vt = _mm512_set1_epi32((int)thr);
    const __m512i g = _mm512_set1_epi32((int)0x9e3779b1u), c1 = _mm512_set1_epi32((int)0x85ebca6bu),
                  c2 = _mm512_set1_epi32((int)0xc2b2ae35u), lo = _mm512_set1_epi32(0xffff);
    size_t b = b0;
    for (; b + 4 <= b1; b += 4) {
        __m512i h = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)(b * 4)), lane);
        h = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_xor_si512(h, vk0), g), vk1);
        h = _mm512_mullo_epi32(_mm512_xor_si512(h, _mm512_srli_epi32(h, 16)), c1);
        h = _mm512_mullo_epi32(_mm512_xor_si512(h, _mm512_srli_epi32(h, 13)), c2);
        h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
        uint32_t mlo = _mm512_cmpge_epu32_mask(_mm512_and_si512(h, lo), vt),
                 mhi = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(h, 16), vt);
        uint32_t w = spread16(mlo) | spread16(mhi) << 1;
        memcpy(bits + b, &w, 4);  // little-endian: byte b gets bits 0-7
    }
    for (; b < b1; b++) bits[b] = dropout_byte(b, thr, k0, k1);
}

// ---- exp: x = n ln2 + r with |r| <= ln2/2, exp(r) by Cephes' degree-5 polynomial (1-2 ulp),
// times 2^n built in the exponent bits (as two factors, so n = 128 still gives inf).
static inline __m512 vexp(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3365448f), hi = _mm512_set1_ps(88.7228394f);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i ni = _mm512_cvtps_epi32(n), n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    __m512i bias = _mm512_set1_epi32(127);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23)));
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23)));
    y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), y);           // below FLT_MIN, -inf: 0
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);     // NaN stays NaN
}

static double exp_sum(float *x, int n, float shift) {
    __m512 sv = _mm512_set1_ps(shift);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j);
        __m512 e = _mm512_maskz_mov_ps(t, vexp(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, x + j), sv)));
        _mm512_mask_storeu_ps(x + j, t, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

// ---- SwiGLU: silu(g) = g sigmoid(g); d silu/dg = sig (1 + g (1 - sig))
static inline __m512 sigmoid(__m512 g) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, vexp(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

static void swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    for (size_t j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j > 16 ? 16 : (int)(n - j));
        __m512 gv = _mm512_maskz_loadu_ps(t, g + j), uv = _mm512_maskz_loadu_ps(t, u + j);
        _mm512_mask_storeu_ps(out + j, t, _mm512_mul_ps(_mm512_mul_ps(gv, sigmoid(gv)), uv));
    }
}

static void swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j > 16 ? 16 : (int)(n - j));
        __m512 gv = _mm512_maskz_loadu_ps(t, g + j), uv = _mm512_maskz_loadu_ps(t, u + j);
        __m512 dv = _mm512_maskz_loadu_ps(t, dout + j), sig = sigmoid(gv);
        __m512 dsilu = _mm512_mul_ps(sig, _mm512_fmadd_ps(gv, _mm512_sub_ps(one, sig), one));
        _mm512_mask_storeu_ps(dg + j, t, _mm512_mul_ps(_mm512_mul_ps(dv, uv), dsilu));
        _mm512_mask_storeu_ps(du + j, t, _mm512_mul_ps(dv, _mm512_mul_ps(gv, sig)));
    }
}

// ---- tanh (Gemma's soft-caps and GeGLU): Cephes' tanhf (about 2 ulp): x + x^3 P(x^2) for
// |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1), of |x| and given the sign of x (so tanh(-x) =
// -tanh(x), -0 stays -0); +-1 at +-inf, NaN stays NaN
static inline __m512 vtanh(__m512 x) {
    __m512 ax = _mm512_abs_ps(x), z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(2.06390887954e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(-5.37397155531e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(1.33314422036e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(-3.33332819422e-1f));
    __m512 small = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, z), ax), ax);
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(vexp(_mm512_add_ps(ax, ax)), one)));
    __m512 y = _mm512_mask_mov_ps(big, _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ), small);
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
}

static void softcap(float *x, float cap, size_t n) {
    __m512 c = _mm512_set1_ps(cap);
    for (size_t j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j > 16 ? 16 : (int)(n - j));
        __m512 v = _mm512_maskz_loadu_ps(t, x + j);
        _mm512_mask_storeu_ps(x + j, t, _mm512_mul_ps(vtanh(_mm512_div_ps(v, c)), c));
    }
}

static void geglu_fwd(float *out, const float *g, const float *u, size_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(GELU_BETA),
                 k = _mm512_set1_ps(GELU_KAPPA);
    for (size_t j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j > 16 ? 16 : (int)(n - j));
        __m512 x = _mm512_maskz_loadu_ps(t, g + j), uv = _mm512_maskz_loadu_ps(t, u + j);
        __m512 inner = _mm512_mul_ps(b, _mm512_add_ps(x, _mm512_mul_ps(k, _mm512_mul_ps(_mm512_mul_ps(x, x), x))));
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, vtanh(inner))), uv);
        _mm512_mask_storeu_ps(out + j, t, y);
    }
}

static void geglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(GELU_BETA),
                 k = _mm512_set1_ps(GELU_KAPPA), k3 = _mm512_set1_ps(3.0f * GELU_KAPPA);
    for (size_t j = 0; j < n; j += 16) {
        __mmask16 m = tail(n - j > 16 ? 16 : (int)(n - j));
        __m512 x = _mm512_maskz_loadu_ps(m, g + j), uv = _mm512_maskz_loadu_ps(m, u + j);
        __m512 dv = _mm512_maskz_loadu_ps(m, dout + j), x2 = _mm512_mul_ps(x, x);
        __m512 t = vtanh(_mm512_mul_ps(b, _mm512_add_ps(x, _mm512_mul_ps(_mm512_mul_ps(k, x2), x))));
        __m512 hx = _mm512_mul_ps(half, x), opt = _mm512_add_ps(one, t);
        __m512 gelu = _mm512_mul_ps(hx, opt);
        __m512 d = _mm512_add_ps(_mm512_mul_ps(half, opt),
                                 _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(hx, _mm512_sub_ps(one, _mm512_mul_ps(t, t))), b),
                                               _mm512_add_ps(one, _mm512_mul_ps(k3, x2))));
        _mm512_mask_storeu_ps(dg + j, m, _mm512_mul_ps(_mm512_mul_ps(dv, uv), d));
        _mm512_mask_storeu_ps(du + j, m, _mm512_mul_ps(dv, gelu));
    }
}

#include "kernels/simd_attend.h"

const SimdKernels simd_avx512 = {
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

// The same with AVX512-BF16 dot products for bf16 weights in inference (simd_avx512bf16.c)
const SimdKernels simd_avx512bf16 = {
    .matvec_rows = matvec_rows,
    .matvec_rows_bf16dot = simd_avx512bf16_matvec_rows,
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
