// Soft-capping (Gemma 2's attention scores and final logits): x = cap * tanh(x / cap),
// in transformers' order (divide, tanh, multiply), f32; the loop is simd.h's (a vector tanh).
#include "kernels/kernels.h"
#include "kernels/simd.h"

void softcap_forward(float *x, float cap, size_t n) { simd()->softcap(x, cap, n); }

// y = cap * tanh(x / cap): dy/dx = 1 - tanh^2 = 1 - (y / cap)^2
void softcap_backward(float *d, const float *y, float cap, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float t = y[i] / cap;
        d[i] *= 1.0f - t * t;
    }
}
