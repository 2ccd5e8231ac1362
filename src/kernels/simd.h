// The vector kernels' bodies, one table per instruction set (private to src/kernels/).
//
// One binary runs on any x86-64 CPU: the library is built for a baseline (x86-64-v2), and
// the loops whose speed depends on the vector width (the matrix-vector product of
// generation, the fused LoRA down-projection, exponentials, SwiGLU, generation's attention,
// tanh for Gemma's soft-caps and GeGLU)
// are compiled three times: simd_avx512.c, simd_avx2.c (each under its own `#pragma GCC
// target`) and simd_scalar.c (portable C); a fourth table, avx512bf16, is the AVX-512 one
// with AVX512-BF16 dot products for bf16 weights in inference (simd_avx512bf16.c). isa.c picks one table
// at run time from the CPU (or ANTIBODY_ISA); the kernels call through it.
// docs/performance.md has the figures.
//
// Within one table every row is computed by the same operations in the same order however
// many rows share a call (generation's batched decoding relies on this: a prompt decoded
// alone and in a batch gives the same tokens). Tables differ from each other in rounding
// (the AVX2 and AVX-512 matvec share one loop, simd_matvec.h, and agree bit for bit).
#pragma once
#include "kernels/kernels.h"

typedef struct {
    // out rows [r0, r1) of out (N, W->rows) = in (N, W->cols) @ W^T (+ bias) (+ out if
    // accumulate); N up to MATVEC_MAX_ROWS (MATVEC_MAX_ROWS_BF16 for bf16 weights) from
    // matmul_forward. Streams those rows of W once.
    void (*matvec_rows)(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate, int r0,
                        int r1);
    // xm (n) = x (n) * keep where mask bit (off + j) of bits is set, else 0
    void (*mask_row)(float *xm, const float *x, const uint8_t *bits, size_t off, int n, float keep);
    // a . b over n
    float (*dot)(const float *a, const float *b, int n);
    // LoRA dropout fused into the down-projection and its weight gradient (lora_down.c); the
    // dropped-out row, drop(x)[j] = x[j] * keep where mask bit (off + j) is set, else 0, is
    // formed in registers, never stored.
    // out[k] = drop(x) . A[k * ld + j] (j < n) for k < 8: eight dots in one pass over x
    void (*dot8_masked)(float *out, const float *x, const uint8_t *bits, size_t off, float keep, const float *A,
                        size_t ld, int n);
    // g[k * n + j] += sum over i < 8 of c[k * 8 + i] * drop(x_i)[j] for k < r, j < n, where
    // x_i = x + i * n with mask bits from off + i * n; rows i >= nb are not read (as zeros)
    void (*outer8_masked)(float *g, const float *c, int r, const float *x, const uint8_t *bits, size_t off, int nb,
                          int n, float keep);
    // o (n) += drop(y), y[j] = sum over k < r of d[k] * A[k * ld + j], mask bits from off
    void (*comb_add_masked)(float *o, const float *d, int r, const float *A, size_t ld, const uint8_t *bits,
                            size_t off, int n, float keep);
    // bytes [b0, b1) of a dropout mask (dropout.c): the same bits in every table
    void (*dropout_bits)(uint8_t *bits, size_t b0, size_t b1, uint32_t thr, uint32_t k0, uint32_t k1);
    // x (n) = exp(x - shift); returns the sum of the new x in double. exp(-inf) = 0, NaN stays
    // NaN; results below FLT_MIN (x - shift < -87.3) are 0, not denormal.
    double (*exp_sum)(float *x, int n, float shift);
    // out = silu(g) * u;  and its backward, setting dg, du (not adding to them)
    void (*swiglu_fwd)(float *out, const float *g, const float *u, size_t n);
    void (*swiglu_bwd)(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);
    // Generation's attention for the query heads of KV heads [kh0, kh1) (attention_cached_forward):
    // their rows of out (NH*HD) from q (NH*HD) against the first len rows of k and v (rows of
    // NKV*HD floats), scores times scale, soft-capped when softcap > 0; att: scratch rows of
    // att_stride floats, one per query head.
    void (*attend_cached)(float *out, float *att, int att_stride, const float *q, const float *k, const float *v,
                          int len, int NH, int NKV, int HD, float scale, float softcap, int kh0, int kh1);
    // Gemma's tanh loops, elementwise (a value's result does not depend on where it sits in
    // the call): x = cap * tanh(x / cap) in place (soft-capping, softcap.c); out =
    // gelu_tanh(g) * u and its backward, setting dg, du (GeGLU, activation.c)
    void (*softcap)(float *x, float cap, size_t n);
    void (*geglu_fwd)(float *out, const float *g, const float *u, size_t n);
    void (*geglu_bwd)(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);
    // matvec_rows for inference with bf16 weights, rounding the input rows to bf16 for
    // AVX512-BF16 dot products (matvec_forward_infer); NULL where the table has none
    void (*matvec_rows_bf16dot)(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate,
                                int r0, int r1);
} SimdKernels;

// torch's gelu(approximate="tanh"): gelu_tanh(g) = 0.5 g (1 + tanh(GELU_BETA (g + GELU_KAPPA g^3)))
#define GELU_BETA 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_KAPPA 0.044715f

extern const SimdKernels simd_scalar;
#if defined(__x86_64__)
extern const SimdKernels simd_avx2, simd_avx512, simd_avx512bf16;
// simd_avx512bf16.c: matvec_rows_bf16dot (bf16 weights; others go through simd_matvec.h's loop)
void simd_avx512bf16_matvec_rows(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate,
                                 int r0, int r1);
#endif

// The table of the instruction set in use (isa_active()).
const SimdKernels *simd(void);
