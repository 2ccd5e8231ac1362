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

// d[k] = W row (r0 + k) . x for k < nr (nr <= 4; missing rows repeat row r0 and are dropped)
static void dot4(float d[4], const Mat *W, int r0, int nr, const float *x) {
    int IN = W->cols;
    size_t s1 = nr > 1 ? (size_t)IN : 0, s2 = nr > 2 ? 2 * (size_t)IN : 0, s3 = nr > 3 ? 3 * (size_t)IN : 0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    if (W->type == MAT_BF16) {
        const uint16_t *w = (const uint16_t *)W->data + (size_t)r0 * IN, *next = w + 4 * (size_t)IN;
        for (int j = 0; j < IN; j += 16) {
            __mmask16 m = IN - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (IN - j)) - 1);
            __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
            // the next block of 4 rows follows this one in memory: fetch it while this one is summed
            _mm_prefetch((const char *)(next + 4 * j), _MM_HINT_T0);
            _mm_prefetch((const char *)(next + 4 * j + 32), _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(widen(w + j, m), xv, a0);
            a1 = _mm512_fmadd_ps(widen(w + s1 + j, m), xv, a1);
            a2 = _mm512_fmadd_ps(widen(w + s2 + j, m), xv, a2);
            a3 = _mm512_fmadd_ps(widen(w + s3 + j, m), xv, a3);
        }
    } else {
        const float *w = (const float *)W->data + (size_t)r0 * IN, *next = w + 4 * (size_t)IN;
        for (int j = 0; j < IN; j += 16) {
            __mmask16 m = IN - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (IN - j)) - 1);
            __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
            for (int c = 0; c < 64; c += 16) _mm_prefetch((const char *)(next + 4 * j + c), _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + j), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + s1 + j), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + s2 + j), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + s3 + j), xv, a3);
        }
    }
    d[0] = _mm512_reduce_add_ps(a0), d[1] = _mm512_reduce_add_ps(a1);
    d[2] = _mm512_reduce_add_ps(a2), d[3] = _mm512_reduce_add_ps(a3);
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
