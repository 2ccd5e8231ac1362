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

// ---- matvec: one row of W at a time, front to back, each 16-wide slice loaded once for
// all N input rows, two accumulators per input row (the same scheme as simd_avx2.c).
// d[i] = W row . x row i for i < N (f32 weights)
static inline __attribute__((always_inline)) void dot1_n(float *d, const float *w, int IN, const float *x, int N) {
    __m512 a0[4], a1[4];
    for (int i = 0; i < N; i++) a0[i] = a1[i] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= IN; j += 32) {
        __m512 w0 = _mm512_loadu_ps(w + j), w1 = _mm512_loadu_ps(w + j + 16);
        if (N > 2) {  // with several input rows the loop runs slower than memory: prefetch ahead
            _mm_prefetch((const char *)(w + j) + 1024, _MM_HINT_T0);
            _mm_prefetch((const char *)(w + j) + 1024 + 64, _MM_HINT_T0);
        }
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * IN + j;
            a0[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xi), a0[i]);
            a1[i] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xi + 16), a1[i]);
        }
    }
    if (j + 16 <= IN) {
        __m512 w0 = _mm512_loadu_ps(w + j);
        for (int i = 0; i < N; i++) a0[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + (size_t)i * IN + j), a0[i]);
        j += 16;
    }
    if (j < IN) {
        __mmask16 m = tail(IN - j);
        __m512 w1 = _mm512_maskz_loadu_ps(m, w + j);
        for (int i = 0; i < N; i++) a1[i] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(m, x + (size_t)i * IN + j), a1[i]);
    }
    for (int i = 0; i < N; i++) d[i] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i]));
}

// out rows [r0, r1) for N <= 4 input rows
static inline __attribute__((always_inline)) void rows_n(float *out, const float *in, const Mat *W,
                                                         const float *bias, int N, int accumulate, int r0, int r1) {
    int OUT = W->rows, IN = W->cols;
    for (int r = r0; r < r1; r++) {
        float d[4];
        dot1_n(d, (const float *)W->data + (size_t)r * IN, IN, in, N);
        for (int i = 0; i < N; i++) {
            float *o = out + (size_t)i * OUT + r, v = d[i] + (bias ? bias[r] : 0.0f);
            *o = accumulate ? *o + v : v;
        }
    }
}

// More than four input rows: four at a time against each weight row, which the first four
// read from memory and the others find in cache (per row and input the same operations).
static void matvec_rows(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate, int r0,
                        int r1) {
    // bf16: the 256-bit widening streams faster than the 512-bit one (vpmovzxwd zmm) on
    // AMD Zen 4: 30 against 25 GB/s per core (docs/performance.md)
    if (W->type == MAT_BF16) {
        simd_avx2.matvec_rows(out, in, W, bias, N, accumulate, r0, r1);
        return;
    }
    int OUT = W->rows, IN = W->cols;
    for (int r = r0; r < r1; r++)
        for (int i = 0; i < N; i += 4) {
            float *o = out + (size_t)i * OUT;
            const float *x = in + (size_t)i * IN;
            switch (N - i) {
            case 1: rows_n(o, x, W, bias, 1, accumulate, r, r + 1); break;
            case 2: rows_n(o, x, W, bias, 2, accumulate, r, r + 1); break;
            case 3: rows_n(o, x, W, bias, 3, accumulate, r, r + 1); break;
            default: rows_n(o, x, W, bias, 4, accumulate, r, r + 1); break;
            }
        }
}

// ---- dropout masks ---------------------------------------------------------------------
static void mask_row(float *xm, const float *x, const uint8_t *bits, size_t off, int n, float keep) {
    __m512 kv = _mm512_set1_ps(keep);
    for (int j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j), m = (__mmask16)mask_bits16(bits, off + j, off + n);
        _mm512_mask_storeu_ps(xm + j, t, _mm512_maskz_mul_ps(m, _mm512_maskz_loadu_ps(t, x + j), kv));
    }
}

static void add_masked(float *o, const float *row, const uint8_t *bits, size_t off, int n, float keep) {
    __m512 kv = _mm512_set1_ps(keep);
    for (int j = 0; j < n; j += 16) {
        __mmask16 t = tail(n - j), m = (__mmask16)mask_bits16(bits, off + j, off + n);
        __m512 ov = _mm512_maskz_loadu_ps(t, o + j);
        ov = _mm512_add_ps(ov, _mm512_maskz_mul_ps(m, _mm512_maskz_loadu_ps(t, row + j), kv));
        _mm512_mask_storeu_ps(o + j, t, ov);
    }
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
        _mm512_mask_storeu_ps(dg + j, t, _mm512_fmadd_ps(_mm512_mul_ps(dv, uv), dsilu, _mm512_maskz_loadu_ps(t, dg + j)));
        _mm512_mask_storeu_ps(du + j, t, _mm512_fmadd_ps(dv, _mm512_mul_ps(gv, sig), _mm512_maskz_loadu_ps(t, du + j)));
    }
}

const SimdKernels simd_avx512 = {
    .matvec_rows = matvec_rows,
    .mask_row = mask_row,
    .add_masked = add_masked,
    .dot = loop_dot,
    .axpy = loop_axpy,
    .axpy8 = loop_axpy8,
    .exp_sum = exp_sum,
    .swiglu_fwd = swiglu_fwd,
    .swiglu_bwd = swiglu_bwd,
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
