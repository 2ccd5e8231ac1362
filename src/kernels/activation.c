// The gated MLPs: SwiGLU (Llama): out = silu(g) * u with silu(g) = g * sigmoid(g), whose
// loops are simd.h's (vector exponentials); GeGLU (Gemma): out = gelu_tanh(g) * u.
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"

#define CHUNK 16384  // elements per task: a thread's share stays in cache

void swiglu_forward(float *out, const float *g, const float *u, size_t n) {
    const SimdKernels *k = simd();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i += CHUNK) k->swiglu_fwd(out + i, g + i, u + i, n - i < CHUNK ? n - i : CHUNK);
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g)))
void swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    const SimdKernels *k = simd();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i += CHUNK)
        k->swiglu_bwd(dg + i, du + i, dout + i, g + i, u + i, n - i < CHUNK ? n - i : CHUNK);
}

// GeGLU (Gemma's MLP): out = gelu_tanh(g) * u, in torch's order of operations
// (gelu(approximate="tanh")): gelu_tanh(g) = 0.5 g (1 + tanh(b (g + k g^3))).
#define GELU_BETA 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_KAPPA 0.044715f

void geglu_forward(float *out, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float x = g[i], inner = GELU_BETA * (x + GELU_KAPPA * (x * x * x));
        out[i] = 0.5f * x * (1.0f + tanhf(inner)) * u[i];
    }
}

// d gelu_tanh(g)/dg = 0.5 (1 + t) + 0.5 g (1 - t^2) b (1 + 3 k g^2), t = tanh(b (g + k g^3))
void geglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float x = g[i], x2 = x * x, t = tanhf(GELU_BETA * (x + GELU_KAPPA * x2 * x));
        float gelu = 0.5f * x * (1.0f + t);
        float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * x2);
        dg[i] += dout[i] * u[i] * d;
        du[i] += dout[i] * gelu;
    }
}
