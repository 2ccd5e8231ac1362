// Matrix products with very few rows (token-by-token generation): BLAS's SGEMM packs
// W for reuse that a single row never gets, so here each thread streams its share of
// W's rows exactly once, widening bf16 weights in registers. Memory-bound by design:
// bf16 weights halve the bytes read per token.
//
// Four rows of W at a time, each with its own vector accumulator, so four independent
// streams are in flight and the horizontal sums happen once per row. With AVX-512 this
// is written out in intrinsics (the compiler's version of the bf16 loop reduced through
// the stack); elsewhere it is the plain loop.
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/kernels.h"

#if defined(__AVX512F__)
static inline __m512 widen(const uint16_t *w, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w)), 16));
}

// d[i][k] = W row (r0 + k) . x row i, for k < nr (nr <= 4; missing rows repeat row r0 and
// are dropped) and i < N. Each 16-wide slice of the four weight rows is loaded once for
// all N input rows; N and the weight type are constants after inlining.
static inline __attribute__((always_inline)) void dot4_n(float d[][4], const void *Wd, int bf16, int IN, int r0,
                                                         int nr, const float *x, int N) {
    size_t s1 = nr > 1 ? (size_t)IN : 0, s2 = nr > 2 ? 2 * (size_t)IN : 0, s3 = nr > 3 ? 3 * (size_t)IN : 0;
    __m512 acc[MATVEC_MAX_ROWS][4];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 4; k++) acc[i][k] = _mm512_setzero_ps();
    size_t esz = bf16 ? 2 : 4;
    const char *w = (const char *)Wd + (size_t)r0 * IN * esz, *next = w + 4 * (size_t)IN * esz;
    for (int j = 0; j < IN; j += 16) {
        __mmask16 m = IN - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (IN - j)) - 1);
        __m512 wv[4];
        if (bf16) {
            const uint16_t *wb = (const uint16_t *)w;
            wv[0] = widen(wb + j, m), wv[1] = widen(wb + s1 + j, m);
            wv[2] = widen(wb + s2 + j, m), wv[3] = widen(wb + s3 + j, m);
        } else {
            const float *wf = (const float *)w;
            wv[0] = _mm512_maskz_loadu_ps(m, wf + j), wv[1] = _mm512_maskz_loadu_ps(m, wf + s1 + j);
            wv[2] = _mm512_maskz_loadu_ps(m, wf + s2 + j), wv[3] = _mm512_maskz_loadu_ps(m, wf + s3 + j);
        }
        // the next block of 4 rows follows this one in memory: fetch it while this one is summed
        for (size_t c = 0; c < 4 * 16 * esz; c += 64) _mm_prefetch(next + 4 * (size_t)j * esz + c, _MM_HINT_T0);
        for (int i = 0; i < N; i++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + (size_t)i * IN + j);
            for (int k = 0; k < 4; k++) acc[i][k] = _mm512_fmadd_ps(wv[k], xv, acc[i][k]);
        }
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 4; k++) d[i][k] = _mm512_reduce_add_ps(acc[i][k]);
}

static void dot4(float d[][4], const Mat *W, int r0, int nr, const float *x, int N) {
    int bf = W->type == MAT_BF16, IN = W->cols;
#define DOT4_CASE(n)                                            \
    case n:                                                     \
        if (bf) dot4_n(d, W->data, 1, IN, r0, nr, x, n);        \
        else dot4_n(d, W->data, 0, IN, r0, nr, x, n);           \
        break;
    switch (N) { DOT4_CASE(1) DOT4_CASE(2) DOT4_CASE(3) DOT4_CASE(4) }
#undef DOT4_CASE
}
#else
static void dot4(float d[][4], const Mat *W, int r0, int nr, const float *x, int N) {
    int IN = W->cols;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < nr; k++) {
            const float *xi = x + (size_t)i * IN;
            float s = 0.0f;
            if (W->type == MAT_F32) {
                const float *w = (const float *)W->data + (size_t)(r0 + k) * IN;
#pragma omp simd reduction(+ : s)
                for (int j = 0; j < IN; j++) s += w[j] * xi[j];
            } else {
                const uint16_t *w = (const uint16_t *)W->data + (size_t)(r0 + k) * IN;
#pragma omp simd reduction(+ : s)
                for (int j = 0; j < IN; j++) s += bf16_to_float(w[j]) * xi[j];
            }
            d[i][k] = s;
        }
}
#endif

void matvec_forward(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    int OUT = W->rows;
#pragma omp parallel for schedule(static) if ((size_t)OUT * W->cols >= ((size_t)1 << 15))
    for (int r0 = 0; r0 < OUT; r0 += 4) {
        int nr = OUT - r0 < 4 ? OUT - r0 : 4;
        float d[MATVEC_MAX_ROWS][4];
        dot4(d, W, r0, nr, in, N);
        for (int i = 0; i < N; i++) {
            float *o = out + (size_t)i * OUT + r0;
            for (int k = 0; k < nr; k++) {
                float v = d[i][k] + (bias ? bias[r0 + k] : 0.0f);
                o[k] = accumulate ? o[k] + v : v;
            }
        }
    }
}
