// Matrix products with very few rows (token-by-token generation): BLAS's SGEMM packs
// W for reuse that a single row never gets, so here each thread streams its share of
// W's rows exactly once, widening bf16 weights in registers. Memory-bound by design:
// bf16 weights halve the bytes read per token.
#include <string.h>

#include "kernels/kernels.h"

static inline float dot_f32(const float *w, const float *x, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) s += w[j] * x[j];
    return s;
}

static inline float dot_bf16(const uint16_t *w, const float *x, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) {
        union { uint32_t u; float f; } v = {.u = (uint32_t)w[j] << 16};
        s += v.f * x[j];
    }
    return s;
}

void matvec_forward(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    int OUT = W->rows, IN = W->cols;
#pragma omp parallel for schedule(static) if ((size_t)OUT * IN > ((size_t)1 << 18))
    for (int r = 0; r < OUT; r++) {
        for (int i = 0; i < N; i++) {
            const float *x = in + (size_t)i * IN;
            float d = W->type == MAT_F32 ? dot_f32((const float *)W->data + (size_t)r * IN, x, IN)
                                         : dot_bf16((const uint16_t *)W->data + (size_t)r * IN, x, IN);
            if (bias) d += bias[r];
            float *o = out + (size_t)i * OUT + r;
            *o = accumulate ? *o + d : d;
        }
    }
}
