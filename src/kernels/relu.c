// ReLU, the activation of OPT's fc1/fc2 MLP.
#include "kernels/kernels.h"

// out = max(x, 0) (OPT's MLP activation); the gradient passes where x > 0.
void relu_forward(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx = dout where x > 0, else 0 (set, not added). dout is read whatever the sign of x: a
// select, not a branch (which mispredicts on half the elements), so the loop vectorises.
void relu_backward(float *dx, const float *dout, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float d = dout[i];
        dx[i] = x[i] > 0.0f ? d : 0.0f;
    }
}
