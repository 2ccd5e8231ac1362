// Rotary position embedding, Hugging Face's rotate_half layout: dimension i of a
// head pairs with i + head_dim/2 (not the interleaved pairs of the Meta code).
#include <math.h>

#include "kernels/kernels.h"

void rope_tables(float *cos_t, float *sin_t, int T_max, int head_dim, float theta) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        // HF computes inv_freq in f32 then the angle in f32; match it for parity.
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        for (int t = 0; t < T_max; t++) {
            float a = (float)t * inv_freq;
            cos_t[(size_t)t * half + i] = cosf(a);
            sin_t[(size_t)t * half + i] = sinf(a);
        }
    }
}

static void rotate(float *x, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads, int hd,
                   float sign) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if (N > 64)
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)pos[n] * half, *s = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)n * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], sn = sign * s[i];
                v[i] = a * c[i] - b * sn;
                v[i + half] = b * c[i] + a * sn;
            }
        }
    }
}

void rope_forward(float *x, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads, int head_dim) {
    rotate(x, pos, cos_t, sin_t, N, n_heads, head_dim, 1.0f);
}

// The rotation is orthogonal, so its transpose (rotation by -angle) maps the
// gradient of the rotated vector back to the unrotated one.
void rope_backward(float *dx, const int *pos, const float *cos_t, const float *sin_t, int N, int n_heads,
                   int head_dim) {
    rotate(dx, pos, cos_t, sin_t, N, n_heads, head_dim, -1.0f);
}
