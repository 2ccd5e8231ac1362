// SwiGLU, the Llama MLP gate: out = silu(g) * u with silu(g) = g * sigmoid(g).
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"

void swiglu_forward(float *out, const float *g, const float *u, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g)))
void swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        float silu = g[i] * sig;
        dg[i] += dout[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
        du[i] += dout[i] * silu;
    }
}
