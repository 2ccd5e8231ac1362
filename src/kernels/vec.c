// Elementwise vector helpers the layers above need besides the model's own ops.
#include <math.h>

#include "kernels/kernels.h"

double vec_dot(const float *x, const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * y[i];
    return s;
}

double vec_dist_sq(double s, const float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        s += d * d;
    }
    return s;
}

void vec_normal(float *x, size_t n, float sd, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = sd * rng_normal(r);
}

void vec_from_bf16(float *out, const uint16_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_float(in[i]);
}

void vec_sqrt_from_double(float *out, const double *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)sqrt(in[i]);
}

void vec_fill(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

void vec_uniform(float *x, size_t n, float bound, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2.0 * rng_uniform(r) - 1.0) * bound;
}

void bf16_add(uint16_t *w, const float *delta, size_t n) {
    for (size_t i = 0; i < n; i++) w[i] = float_to_bf16(bf16_to_float(w[i]) + delta[i]);
}
