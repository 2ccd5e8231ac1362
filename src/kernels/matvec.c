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
static inline __m512 load_w(const void *w, int bf16, int j, __mmask16 m) {
    if (!bf16) return _mm512_maskz_loadu_ps(m, (const float *)w + j);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + j);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// d[k] = W row (r0 + k) . x for k < 4 (rows past OUT are not read: nr < 4)
static void dot4(float d[4], const Mat *W, int r0, int nr, const float *x) {
    int IN = W->cols, bf16 = W->type == MAT_BF16;
    size_t esz = bf16 ? 2 : 4;
    const char *base = (const char *)W->data + (size_t)r0 * IN * esz;
    const void *w[4];
    for (int k = 0; k < 4; k++) w[k] = base + (size_t)(k < nr ? k : 0) * IN * esz;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int j = 0; j < IN; j += 16) {
        __mmask16 m = IN - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (IN - j)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
        for (int k = 0; k < 4; k++) acc[k] = _mm512_fmadd_ps(load_w(w[k], bf16, j, m), xv, acc[k]);
    }
    for (int k = 0; k < 4; k++) d[k] = _mm512_reduce_add_ps(acc[k]);
}
#else
static void dot4(float d[4], const Mat *W, int r0, int nr, const float *x) {
    int IN = W->cols;
    for (int k = 0; k < nr; k++) {
        float s = 0.0f;
        if (W->type == MAT_F32) {
            const float *w = (const float *)W->data + (size_t)(r0 + k) * IN;
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < IN; j++) s += w[j] * x[j];
        } else {
            const uint16_t *w = (const uint16_t *)W->data + (size_t)(r0 + k) * IN;
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < IN; j++) s += bf16_to_float(w[j]) * x[j];
        }
        d[k] = s;
    }
}
#endif

void matvec_forward(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    int OUT = W->rows, IN = W->cols;
#pragma omp parallel for schedule(static) if ((size_t)OUT * IN >= ((size_t)1 << 15))
    for (int r0 = 0; r0 < OUT; r0 += 4) {
        int nr = OUT - r0 < 4 ? OUT - r0 : 4;
        for (int i = 0; i < N; i++) {
            float d[4];
            dot4(d, W, r0, nr, in + (size_t)i * IN);
            float *o = out + (size_t)i * OUT + r0;
            for (int k = 0; k < nr; k++) {
                float v = d[k] + (bias ? bias[r0 + k] : 0.0f);
                o[k] = accumulate ? o[k] + v : v;
            }
        }
    }
}
