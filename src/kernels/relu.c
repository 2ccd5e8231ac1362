// ReLU, the activation of OPT's fc1/fc2 MLP.
#include "kernels/kernels.h"

// out = max(x, 0) (OPT's MLP activation); the gradient passes where x > 0.
void relu_forward(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(float *dx, const float *dout, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dout[i] : 0.0f;
}
