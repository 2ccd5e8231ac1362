// Matrix products through BLAS. Weights may be bf16 (as checkpoints ship): they are
// widened to f32 a block of rows at a time, so compute and accumulation stay f32.
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/err.h"

#define BF16_BLOCK 256  // rows of W widened per GEMM call

const float *mat_row(const Mat *W, int r, float *buf) {
    if (W->type == MAT_F32) return (const float *)W->data + (size_t)r * W->cols;
    const uint16_t *src = (const uint16_t *)W->data + (size_t)r * W->cols;
    for (int j = 0; j < W->cols; j++) buf[j] = bf16_to_float(src[j]);
    return buf;
}

static void widen_rows(const Mat *W, int r0, int nr, float *buf) {
    const uint16_t *src = (const uint16_t *)W->data + (size_t)r0 * W->cols;
    size_t n = (size_t)nr * W->cols;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = bf16_to_float(src[i]);
}

void gemm_nt(float *C, const float *A, const float *B, int M, int Nn, int K, float alpha, float beta) {
    blas_sgemm(0, 1, M, Nn, K, alpha, A, K, B, K, beta, C, Nn);
}
void gemm_nn(float *C, const float *A, const float *B, int M, int Nn, int K, float alpha, float beta) {
    blas_sgemm(0, 0, M, Nn, K, alpha, A, K, B, Nn, beta, C, Nn);
}
void gemm_tn(float *C, const float *A, const float *B, int M, int Nn, int K, float alpha, float beta) {
    blas_sgemm(1, 0, M, Nn, K, alpha, A, M, B, Nn, beta, C, Nn);
}

void matmul_forward(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    // bf16 weights: a prompt's rows too, which SGEMM would need widened into a buffer first
    if (N <= MATVEC_MAX_ROWS || (W->type == MAT_BF16 && N <= MATVEC_MAX_ROWS_BF16)) {
        matvec_forward(out, in, W, bias, N, accumulate);
        return;
    }
    int OUT = W->rows, IN = W->cols;
    if (!accumulate && bias) {
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OUT, bias, OUT * sizeof(float));
        accumulate = 1;
    } else if (accumulate && bias) {
        for (int i = 0; i < N; i++) vec_add(out + (size_t)i * OUT, bias, OUT);
    }
    float beta = accumulate ? 1.0f : 0.0f;
    if (W->type == MAT_F32) {
        blas_sgemm(0, 1, N, OUT, IN, 1.0f, in, IN, (const float *)W->data, IN,
                    beta, out, OUT);
        return;
    }
    float *buf = xmalloc((size_t)BF16_BLOCK * IN * sizeof(float));
    for (int r0 = 0; r0 < OUT; r0 += BF16_BLOCK) {
        int nr = OUT - r0 < BF16_BLOCK ? OUT - r0 : BF16_BLOCK;
        widen_rows(W, r0, nr, buf);
        blas_sgemm(0, 1, N, nr, IN, 1.0f, in, IN, buf, IN, beta, out + r0, OUT);
    }
    free(buf);
}

void matmul_forward_infer(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate) {
    if (N <= MATVEC_MAX_ROWS || (W->type == MAT_BF16 && N <= MATVEC_MAX_ROWS_BF16))
        matvec_forward_infer(out, in, W, bias, N, accumulate);
    else
        matmul_forward(out, in, W, bias, N, accumulate);
}

void matmul_backward_input(float *dinp, const float *dout, const Mat *W, int N, int accumulate) {
    int OUT = W->rows, IN = W->cols;
    float beta = accumulate ? 1.0f : 0.0f;
    if (W->type == MAT_F32) {
        blas_sgemm(0, 0, N, IN, OUT, 1.0f, dout, OUT, (const float *)W->data, IN, beta, dinp, IN);
        return;
    }
    float *buf = xmalloc((size_t)BF16_BLOCK * IN * sizeof(float));
    for (int r0 = 0; r0 < OUT; r0 += BF16_BLOCK) {
        int nr = OUT - r0 < BF16_BLOCK ? OUT - r0 : BF16_BLOCK;
        widen_rows(W, r0, nr, buf);
        blas_sgemm(0, 0, N, IN, nr, 1.0f, dout + r0, OUT, buf, IN, r0 ? 1.0f : beta, dinp, IN);
    }
    free(buf);
}

void matmul_backward_weight(float *dW, float *dbias, const float *dout, const float *in, int N, int IN, int OUT) {
    if (dW)
        blas_sgemm(1, 0, OUT, IN, N, 1.0f, dout, OUT, in, IN, 1.0f, dW, IN);
    if (dbias)
        for (int i = 0; i < N; i++) vec_add(dbias, dout + (size_t)i * OUT, OUT);
}

// Activation-sized vectors (a layer's N x C) are split between the threads: one thread alone
// leaves the other waiting at the next parallel region, and two reach more memory bandwidth.
#define VEC_PAR_MIN 65536
void vec_add(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= VEC_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
void vec_axpy(float *y, float a, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= VEC_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}
void vec_scale(float *x, float a, size_t n) {
#pragma omp parallel for schedule(static) if (n >= VEC_PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}
void vec_copy(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= VEC_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}
void vec_zero(float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= VEC_PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = 0.0f;
}
double vec_sumsq(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
