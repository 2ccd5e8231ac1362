// The gated MLPs: SwiGLU (Llama): out = silu(g) * u with silu(g) = g * sigmoid(g);
// GeGLU (Gemma): out = gelu_tanh(g) * u. Their loops are simd.h's (vector exp and tanh).
#include "kernels/kernels.h"
#include "kernels/simd.h"

#define CHUNK 16384  // elements per task: a thread's share stays in cache

typedef void (*GatedFwd)(float *out, const float *g, const float *u, size_t n);
typedef void (*GatedBwd)(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);

// A gated MLP's loop f over n elements, CHUNK at a time across the threads.
static void gated_forward(GatedFwd f, float *out, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i += CHUNK) f(out + i, g + i, u + i, n - i < CHUNK ? n - i : CHUNK);
}

static void gated_backward(GatedBwd f, float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i += CHUNK) f(dg + i, du + i, dout + i, g + i, u + i, n - i < CHUNK ? n - i : CHUNK);
}

void swiglu_forward(float *out, const float *g, const float *u, size_t n) { gated_forward(simd()->swiglu_fwd, out, g, u, n); }

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g)))
void swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    gated_backward(simd()->swiglu_bwd, dg, du, dout, g, u, n);
}

// GeGLU (Gemma's MLP): out = gelu_tanh(g) * u, in torch's order of operations
// (gelu(approximate="tanh")); the loops are simd.h's (a vector tanh).
void geglu_forward(float *out, const float *g, const float *u, size_t n) { gated_forward(simd()->geglu_fwd, out, g, u, n); }

// d gelu_tanh(g)/dg = 0.5 (1 + t) + 0.5 g (1 - t^2) b (1 + 3 k g^2), t = tanh(b (g + k g^3))
void geglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    gated_backward(simd()->geglu_bwd, dg, du, dout, g, u, n);
}
