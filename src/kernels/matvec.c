// Matrix products with very few rows (token-by-token generation): BLAS's SGEMM packs
// W for reuse that a single row never gets, so here each thread streams its share of
// W's rows exactly once, widening bf16 weights in registers. Memory-bound by design:
// bf16 weights halve the bytes read per token. The loop itself is simd.h's matvec_rows
// (AVX-512, AVX2 or portable, chosen at run time).
#include <omp.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"

typedef void (*RowsFn)(float *, const float *, const Mat *, const float *, int, int, int, int);

static void run(RowsFn rows, float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    int OUT = W->rows;
    // each thread one contiguous band of rows, so its stream is sequential
#pragma omp parallel if ((size_t)OUT * W->cols >= ((size_t)1 << 15))
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int per = (OUT + nt - 1) / nt;
        int r0 = t * per < OUT ? t * per : OUT, r1 = r0 + per < OUT ? r0 + per : OUT;
        if (r0 < r1) rows(out, in, W, bias, N, accumulate, r0, r1);
    }
}

void matvec_forward(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    run(simd()->matvec_rows, out, in, W, bias, N, accumulate);
}

void matvec_forward_infer(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    const SimdKernels *k = simd();
    run(W->type == MAT_BF16 && k->matvec_rows_bf16dot ? k->matvec_rows_bf16dot : k->matvec_rows, out, in, W, bias, N,
        accumulate);
}
