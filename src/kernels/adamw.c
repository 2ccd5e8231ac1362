// The AdamW update of n parameters (torch.optim.AdamW's order: decoupled decay first,
// then p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)); train/optim.c computes the
// step's scalars.
#include "kernels/kernels.h"

#include <math.h>

void adamw_step(float *p, const float *g, float *m, float *v, size_t n, float beta1, float beta2, float eps,
                float step_size, float bc2_sqrt, float decay) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}
