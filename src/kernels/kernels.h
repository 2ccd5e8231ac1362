// The numeric kernels: the only code that touches the math of the model.
// Everything above (model, training, defenses) calls these, so a GPU backend
// can replace this folder without touching the rest.
//
// Layout conventions (llm.c style): activations are row-major (N, C) with
// N = B*T tokens; a Linear weight is (OUT, IN) row-major as PyTorch stores it.
// Every *_backward ACCUMULATES (+=) into its gradient outputs.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/rng.h"

typedef enum { MAT_F32 = 0, MAT_BF16 = 1 } MatType;

// A weight matrix (rows = out features, cols = in features), f32 or bf16.
typedef struct {
    MatType type;
    void *data;
    int rows, cols;
} Mat;

static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } x = {.u = (uint32_t)h << 16};
    return x.f;
}
static inline uint16_t float_to_bf16(float f) {  // round to nearest even, as torch
    union { float f; uint32_t u; } x = {.f = f};
    if ((x.u & 0x7fffffff) > 0x7f800000) return (uint16_t)((x.u >> 16) | 0x40);  // NaN stays NaN
    x.u += 0x7fff + ((x.u >> 16) & 1);
    return (uint16_t)(x.u >> 16);
}
// Row r of W as f32 (converts bf16 into buf, returns a pointer into W for f32).
const float *mat_row(const Mat *W, int r, float *buf);

// ---- SGEMM (blas.c: oneDNN, or OpenBLAS): row-major C = alpha*op(A)@op(B) + beta*C ---
void blas_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc);
const char *blas_name(void);  // which library and kernels are in use (for reports)
// Loads the selected SGEMM (ANTIBODY_BLAS: oneDNN by default, "openblas" or a path to a
// libopenblas). -1 when OpenBLAS was asked for and cannot be loaded (e says why); a program
// that does not call it gets oneDNN then, and blas_name says so.
int blas_init(Err *e);
// The OpenBLAS kernels this CPU should use ("SkylakeX", "Haswell") when OpenBLAS is selected
// and the user has not set OPENBLAS_CORETYPE, else NULL. OpenBLAS reads that variable once,
// when it is loaded: a program that wants the choice sets it before blas_init or the first
// SGEMM (src/cli/main.c does; the library never changes the environment).
const char *blas_openblas_coretype(void);
// Built with -DANTIBODY_GEMM_PROFILE: every SGEMM shape so far with its calls, seconds and
// GFLOP/s, as text for the program to print (malloc'd); NULL otherwise.
char *blas_profile_text(void);
int omp_threads(void);        // OpenMP threads the kernels use

// ---- matmul ------------------------------------------------------------------
// out (N,OUT) = in (N,IN) @ W^T (+ bias); accumulate=1 adds to out instead.
void matmul_forward(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate);
// Inference (generation: the rows of a KV-cached forward): the same, except that on a CPU with
// AVX512-BF16 (kernels avx512bf16) bf16 weights meet the activations rounded to bf16 in dot
// products (products summed in fp32), as llama.cpp and PyTorch's bf16 models compute; twice
// as fast for batched decoding there (docs/performance.md). Training and scoring keep
// matmul_forward.
void matmul_forward_infer(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate);
// The same for a handful of rows (generation): streams W once, widening bf16 in registers.
void matvec_forward(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate);
void matvec_forward_infer(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate);
#define MATVEC_MAX_ROWS 16  // matmul_forward switches to matvec_forward at or below this many rows
#define MATVEC_MAX_ROWS_BF16 64  // the same for bf16 weights (a prompt's chunk of rows in generation)
// dinp (N,IN) = dout (N,OUT) @ W, or += with accumulate
void matmul_backward_input(float *dinp, const float *dout, const Mat *W, int N, int accumulate);
// dW (OUT,IN) += dout^T @ in ; dbias (OUT) += column sums of dout (if non-NULL)
void matmul_backward_weight(float *dW, float *dbias, const float *dout, const float *in, int N, int IN, int OUT);
// Plain f32 GEMMs on row-major buffers (C = alpha*op(A)@op(B) + beta*C).
void gemm_nt(float *C, const float *A, const float *B, int M, int Nn, int K, float alpha, float beta);  // A(M,K) B(Nn,K)
void gemm_nn(float *C, const float *A, const float *B, int M, int Nn, int K, float alpha, float beta);  // A(M,K) B(K,Nn)
void gemm_tn(float *C, const float *A, const float *B, int M, int Nn, int K, float alpha, float beta);  // A(K,M) B(K,Nn)

// ---- LoRA down-projection with input dropout, fused (lora_down.c) -----------------
// ax (N,r) = (x * mask / (1-p)) @ A^T with x (N,IN), A (r,IN); bit i*IN+j of bits keeps x[i][j].
void lora_down_forward(float *ax, const float *x, const uint8_t *bits, float pdrop, const float *A, int N, int IN,
                       int r);
// dA (r,IN) += dax^T @ (x * mask / (1-p));  dx (N,IN) += (dax @ A) * mask / (1-p). Either may be NULL.
void lora_down_backward(float *dA, float *dx, const float *dax, const float *x, const uint8_t *bits, float pdrop,
                        const float *A, int N, int IN, int r);

// dropout.c: the keep-mask of n elements as bits (bit i = element i kept), drawn from a
// counter-based hash of (key, i): the same key gives the same mask.
void dropout_mask(uint8_t *bits, size_t n, float pdrop, uint64_t key);
// lora_up.c: y (N,OUT) += s * ax (N,r) @ B^T with B (OUT,r); ax is not modified.
void lora_up_forward(float *y, const float *ax, const float *B, float s, int N, int OUT, int r);

// ---- RMSNorm (HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w; GemmaRMSNorm: * (1 + w)) ---
// out (N,C); rstd (N) saved for backward. The scale is w_offset + w: 0 (Llama) or 1 (Gemma).
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, float w_offset, int N, int C,
                     float eps);
// dx (N,C) += ; dw (C) += (dw may be NULL when the norm weight is frozen)
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, float w_offset,
                      const float *rstd, int N, int C);

// ---- LayerNorm (torch.nn.LayerNorm: (x - mean) / sqrt(var + eps) * w + b; OPT) --------
// out (N,C); rstd (N) saved for backward (the mean is recomputed from x).
void layernorm_forward(float *out, float *rstd, const float *x, const float *w, const float *b, int N, int C,
                       float eps);
// dx (N,C) += ; dw, db (C) += (either may be NULL when the norm is frozen)
void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        const float *rstd, int N, int C);

// ---- rotary position embedding (HF rotate_half convention) -------------------
#define ROPE_MAX_HEAD_DIM 4096
// The frequencies (head_dim/2) of default RoPE: theta^(-2i/head_dim).
void rope_inv_freq(float *inv_freq, int head_dim, float theta);
// In place on x (N, n_heads*head_dim) where token i has position pos[i] (any position:
// the angles are computed, not looked up).
void rope_forward(float *x, const int *pos, const float *inv_freq, int N, int n_heads, int head_dim);
// The inverse rotation: turns d(rotated) into d(unrotated), in place.
void rope_backward(float *dx, const int *pos, const float *inv_freq, int N, int n_heads, int head_dim);

// ---- causal self-attention with grouped KV heads and a key padding mask -------
// How a query row's scores over its keys are formed: s = scale * q.k (scale 0: HD^-1/2);
// with softcap > 0, s = softcap * tanh(s / softcap) (Gemma 2); with window > 0, the query
// at position t sees only keys u > t - window (a sliding window of `window` keys, itself
// included). All zero: Llama's attention.
typedef struct { float scale, softcap; int window; } AttnScores;
// q (B*T, NH*HD), k,v (B*T, NKV*HD); mask (B*T) 1 = real token, 0 = padding
// (NULL = all real). out (B*T, NH*HD); att (B, NH, T, T) softmax probs saved.
typedef struct { int B, T, NH, NKV, HD; AttnScores sc; } AttnShape;
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *mask,
                       AttnShape s);
// Generation: one query row q (NH*HD) at position len-1 against the first len rows of a
// layer's KV cache (k, v rows of NKV*HD floats, real tokens only) -> out (NH*HD); att: NH
// rows of att_stride.
void attention_cached_forward(float *out, float *att, int att_stride, const float *q, const float *kcache,
                              const float *vcache, int len, int NH, int NKV, int HD, AttnScores sc);
// dq, dk, dv += (GQA: each KV head gathers the gradients of its query group).
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                        const float *k, const float *v, AttnShape s);

// ---- SwiGLU: out = silu(g) * u ----------------------------------------------
void swiglu_forward(float *out, const float *g, const float *u, size_t n);
void swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);

// ---- GeGLU (Gemma's MLP): out = gelu_tanh(g) * u, with torch's gelu(approximate="tanh"):
// gelu_tanh(g) = g/2 * (1 + tanh(sqrt(2/pi) * (g + 0.044715 g^3))) ----------------------------
void geglu_forward(float *out, const float *g, const float *u, size_t n);
void geglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);

// ---- soft-capping (Gemma 2's attention and final logits): x = cap * tanh(x / cap) -------
void softcap_forward(float *x, float cap, size_t n);  // in place
// Turns d(capped) into d(uncapped) in place, from the capped values y: d *= 1 - (y/cap)^2.
void softcap_backward(float *d, const float *y, float cap, size_t n);

// ---- ReLU (OPT's MLP): out = max(x, 0); dx += dout where x > 0 ---------------------
void relu_forward(float *out, const float *x, size_t n);
void relu_backward(float *dx, const float *dout, const float *x, size_t n);

// ---- elementwise -------------------------------------------------------------
void vec_add(float *y, const float *x, size_t n);               // y += x
void vec_axpy(float *y, float a, const float *x, size_t n);     // y += a*x
void vec_scale(float *x, float a, size_t n);                    // x *= a
void vec_copy(float *y, const float *x, size_t n);              // y = x (not overlapping)
void vec_zero(float *x, size_t n);                              // x = 0
double vec_sumsq(const float *x, size_t n);
double vec_dot(const float *x, const float *y, size_t n);     // sum x*y in double, in order
double vec_dist_sq(double acc, const float *x, const float *y, size_t n);  // acc + sum (x-y)^2, in order
void vec_sqrt_from_double(float *out, const double *in, size_t n);
void vec_normal(float *x, size_t n, float sd, Rng *r);          // x[i] = sd * N(0,1), drawn in order
void vec_from_bf16(float *out, const uint16_t *in, size_t n);

void vec_fill(float *x, size_t n, float v);
// x[i] = bound * (2 u - 1), u uniform in [0, 1) drawn in order (kaiming_uniform_'s draw)
void vec_uniform(float *x, size_t n, float bound, Rng *r);
// w (bf16) = bf16(f32(w) + delta), elementwise (merging into bf16 weights)
void bf16_add(uint16_t *w, const float *delta, size_t n);

// ---- maximum mean discrepancy (mmd.c; docs/methods.md, RepNoise) -----------------------
// Between n samples X (n, D) and n samples Y (n, D), rows contiguous, with the kernel
// k(d) = sum_{j<K} exp(-d / (bw mul^j)) of the squared distance d, bw = sigma / mul^(K/2):
// returns the mean over the n x n blocks of K_XX + K_YY - K_XY - K_YX (0 when all 2n samples
// are equal). *sigma <= 0 on entry: the mean squared distance over distinct pairs of the 2n
// samples, written back. sigma is a constant of the loss: with dX, adds scale * d MMD / dX
// at fixed sigma (Y gets no gradient).
double mmd_gauss(const float *X, const float *Y, int n, size_t D, int K, double mul, double *sigma, float scale,
                 float *dX);

// ---- next-token choice (sample.c) ---------------------------------------------------
int logits_argmax(const float *x, int n);  // the first maximum
// Samples from softmax(logits / temperature) within the top-p nucleus; overwrites logits.
int logits_sample(float *logits, int n, float temperature, float top_p, Rng *r);

// ---- optimizer (adamw.c) ---------------------------------------------------------
// One AdamW update of n parameters: p *= decay; m, v moments; p -= step_size * m /
// (sqrt(v) / bc2_sqrt + eps) (torch.optim.AdamW's order).
void adamw_step(float *p, const float *g, float *m, float *v, size_t n, float beta1, float beta2, float eps,
                float step_size, float bc2_sqrt, float decay);

// ---- pruning (prune.c) -----------------------------------------------------------
// acc (cols) += column sums of squares of x (n, cols), in double.
void colsumsq_accumulate(double *acc, const float *x, int n, int cols);
// Entries pruned per row, as the reference's sort-and-keep computes it (docs/methods.md):
// cols - floor(cols * (1 - dense_ratio)), in double precision (a rank-8 B at 0.1: 1).
int wanda_row_count(int cols, double dense_ratio);
// mask[i*cols + j] = 1 for the wanda_row_count entries of row i with the largest score
// |W_ij| * act[j] (act NULL: |W_ij|, magnitude only). Ties are broken as the reference's
// stable ascending sort does: among equal scores the higher column is pruned first.
void wanda_mask(const float *W, int rows, int cols, const float *act, double dense_ratio, unsigned char *mask);
// The ablation: floor(rows * cols * dense_ratio) entries of the whole tensor, uniformly at random.
void random_mask(Rng *r, int rows, int cols, double dense_ratio, unsigned char *mask);
// Zeroes W[i] (f32, or bf16 when Wb) where mask[i]; returns how many.
size_t mask_zero(float *W, uint16_t *Wb, const unsigned char *mask, size_t n);

// ---- LM head + cross-entropy, fused and chunked so the (N, V) logits never exist
// at once. targets[i] = next-token id for row i, or -1 (ignored). Returns the SUM
// of the losses over targeted rows; *count gets their number. If dx != NULL, adds
// d(sum loss * grad_scale)/dx to dx (N,C) (and to dW when dW != NULL). softcap > 0
// caps the logits first (softcap_forward: Gemma 2's final_logit_softcapping).
double lm_head_ce(const float *x, const Mat *W, const int *targets, int N, int C, int V, float grad_scale,
                  float softcap, float *dx, float *dW, int *count, float *scratch /* chunk*V floats */, int chunk);
// Softmax cross-entropy on given logits row (for tests/eval): returns -log p[target].
double ce_row(const float *logits, int V, int target);

// ---- instruction set of the vector kernels (isa.c) ----------------------------------
// The matrix-vector product, generation's attention, the LoRA down-projection,
// exponentials (softmax, cross-entropy, SiLU), tanh (soft-caps, GeGLU) have AVX-512, AVX2 and portable bodies,
// chosen at run time, so one binary runs on any x86-64 (docs/performance.md). avx512bf16
// is AVX-512 with AVX512-BF16 dot products for bf16 weights in inference (matmul_forward_infer:
// their activations rounded to bf16).
typedef enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_AVX512BF16 = 3 } KernelIsa;
#define ISA_COUNT 4
const char *isa_name(KernelIsa isa);  // "scalar", "avx2", "avx512", "avx512bf16"
int isa_supported(KernelIsa isa);     // this CPU runs it
// In use: ANTIBODY_ISA (avx512bf16, avx512, avx2 or scalar) when set and supported, else the best.
KernelIsa isa_active(void);
// Why ANTIBODY_ISA was not followed (unknown name, or the CPU lacks it), or NULL.
const char *isa_env_problem(void);
// Use `isa` from now on (tests compare the paths; not while kernels run). -1: unsupported.
int isa_force(KernelIsa isa);
