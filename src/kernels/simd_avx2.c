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

// lanes < left set (an all-ones lane selects, as maskload wants)
static inline __m256i tail(int left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// ---- matvec: one row of W at a time, read front to back (on AMD's Zen cores a single
// sequential stream beat blocks of four rows read side by side: docs/performance.md),
// each 8-wide slice loaded once for all N input rows, two accumulators per input row;
// bf16 widened in registers. A row's sum does not depend on N.
static inline __attribute__((always_inline)) __m256 load_w(const char *w, int bf16, int j, int left) {
    if (left >= 8) {
        if (!bf16) return _mm256_loadu_ps((const float *)w + j);
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + j)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    if (!bf16) return _mm256_maskload_ps((const float *)w + j, tail(left));
    uint16_t buf[8] = {0};  // no 16-bit masked load in AVX2: the last few through a zeroed copy
    memcpy(buf, (const uint16_t *)w + j, (size_t)left * 2);
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)buf));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

// d[i] = W row . x row i for i < N
static inline __attribute__((always_inline)) void dot1_n(float *d, const char *w, int bf16, int IN,
                                                         const float *x, int N) {
    size_t esz = bf16 ? 2 : 4;
    __m256 a0[4], a1[4];
    for (int i = 0; i < N; i++) a0[i] = a1[i] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 16 <= IN; j += 16) {
        __m256 w0 = load_w(w, bf16, j, 8), w1 = load_w(w, bf16, j + 8, 8);
        // with several input rows the loop runs slower than memory: prefetch ahead
        if (N > 2 && ((size_t)j * esz & 63) == 0) _mm_prefetch(w + (size_t)j * esz + 1024, _MM_HINT_T0);
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * IN + j;
            a0[i] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xi), a0[i]);
            a1[i] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xi + 8), a1[i]);
        }
    }
    if (j + 8 <= IN) {
        __m256 w0 = load_w(w, bf16, j, 8);
        for (int i = 0; i < N; i++) a0[i] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)i * IN + j), a0[i]);
        j += 8;
    }
    if (j < IN) {
        __m256 w1 = load_w(w, bf16, j, IN - j);
        for (int i = 0; i < N; i++)
            a1[i] = _mm256_fmadd_ps(w1, _mm256_maskload_ps(x + (size_t)i * IN + j, tail(IN - j)), a1[i]);
    }
    for (int i = 0; i < N; i++) {
        __m256 a = _mm256_add_ps(a0[i], a1[i]);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        d[i] = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    }
}

// out rows [r0, r1) for N <= 4 input rows
static inline __attribute__((always_inline)) void rows_n(float *out, const float *in, const Mat *W,
                                                         const float *bias, int N, int accumulate, int r0, int r1,
                                                         int bf16) {
    int OUT = W->rows, IN = W->cols;
    size_t esz = bf16 ? 2 : 4;
    for (int r = r0; r < r1; r++) {
        float d[4];
        dot1_n(d, (const char *)W->data + (size_t)r * IN * esz, bf16, IN, in, N);
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
    int OUT = W->rows, IN = W->cols, bf = W->type == MAT_BF16;
    for (int r = r0; r < r1; r++)
        for (int i = 0; i < N; i += 4) {
            float *o = out + (size_t)i * OUT;
            const float *x = in + (size_t)i * IN;
#define GROUP(n)                                                           \
    case n:                                                                \
        if (bf) rows_n(o, x, W, bias, n, accumulate, r, r + 1, 1);         \
        else rows_n(o, x, W, bias, n, accumulate, r, r + 1, 0);            \
        break;
            switch (N - i < 4 ? N - i : 4) { GROUP(1) GROUP(2) GROUP(3) GROUP(4) }
#undef GROUP
        }
}

// ---- dropout masks: 8 mask bits -> 8 lanes -------------------------------------------
static inline __m256 lanes(uint32_t m8) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m8), sel), sel));
}

// Full 8-lane blocks with plain loads and stores (AMD's masked stores are microcoded and
// slow); the last n % 8 through a copy.
static inline __m256 masked8(const float *x, const uint8_t *bits, size_t off, size_t nbits, __m256 kv) {
    return _mm256_and_ps(lanes(mask_bits16(bits, off, nbits) & 0xff), _mm256_mul_ps(_mm256_loadu_ps(x), kv));
}

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

static void add_masked(float *o, const float *row, const uint8_t *bits, size_t off, int n, float keep) {
    __m256 kv = _mm256_set1_ps(keep);
    int j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(o + j, _mm256_add_ps(_mm256_loadu_ps(o + j), masked8(row + j, bits, off + j, off + n, kv)));
    if (j < n) {
        float b[8] = {0}, ob[8] = {0};
        memcpy(b, row + j, (size_t)(n - j) * 4);
        memcpy(ob, o + j, (size_t)(n - j) * 4);
        _mm256_storeu_ps(ob, _mm256_add_ps(_mm256_loadu_ps(ob), masked8(b, bits, off + j, off + n, kv)));
        memcpy(o + j, ob, (size_t)(n - j) * 4);
    }
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

static void swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    size_t j = 0;
    for (; j + 8 <= n; j += 8) swiglu_fwd8(out + j, g + j, u + j);
    if (j < n) {
        float o[8] = {0}, gb[8] = {0}, ub[8] = {0};
        memcpy(gb, g + j, (n - j) * 4), memcpy(ub, u + j, (n - j) * 4);
        swiglu_fwd8(o, gb, ub);
        memcpy(out + j, o, (n - j) * 4);
    }
}

static inline void swiglu_bwd8(float *dg, float *du, const float *dout, const float *g, const float *u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 gv = _mm256_loadu_ps(g), uv = _mm256_loadu_ps(u), dv = _mm256_loadu_ps(dout), sig = sigmoid(gv);
    __m256 dsilu = _mm256_mul_ps(sig, _mm256_fmadd_ps(gv, _mm256_sub_ps(one, sig), one));
    _mm256_storeu_ps(dg, _mm256_fmadd_ps(_mm256_mul_ps(dv, uv), dsilu, _mm256_loadu_ps(dg)));
    _mm256_storeu_ps(du, _mm256_fmadd_ps(dv, _mm256_mul_ps(gv, sig), _mm256_loadu_ps(du)));
}

static void swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    size_t j = 0;
    for (; j + 8 <= n; j += 8) swiglu_bwd8(dg + j, du + j, dout + j, g + j, u + j);
    if (j < n) {
        size_t b = (n - j) * 4;
        float dgb[8] = {0}, dub[8] = {0}, db[8] = {0}, gb[8] = {0}, ub[8] = {0};
        memcpy(dgb, dg + j, b), memcpy(dub, du + j, b), memcpy(db, dout + j, b), memcpy(gb, g + j, b);
        memcpy(ub, u + j, b);
        swiglu_bwd8(dgb, dub, db, gb, ub);
        memcpy(dg + j, dgb, b), memcpy(du + j, dub, b);
    }
}

const SimdKernels simd_avx2 = {
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
