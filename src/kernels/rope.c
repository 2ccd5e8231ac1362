// Rotary position embedding, Hugging Face's rotate_half layout: dimension i of a
// head pairs with i + head_dim/2 (not the interleaved pairs of the Meta code).
#include <math.h>

#include "kernels/kernels.h"

void rope_inv_freq(float *inv_freq, int head_dim, float theta) {
    // HF computes inv_freq in f32 then the angle in f32; match it for parity.
    for (int i = 0; i < head_dim / 2; i++) inv_freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
}

// The angles are computed per token rather than read from a table sized for the longest
// allowed position: memory does not grow with max_position_embeddings and no position can
// fall outside a table (docs/reliability.md). head_dim <= ROPE_MAX_HEAD_DIM.
static void rotate(float *x, const int *pos, const float *inv_freq, int N, int n_heads, int hd, float sign) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if (N > 64)
    for (int n = 0; n < N; n++) {
        float c[ROPE_MAX_HEAD_DIM / 2], s[ROPE_MAX_HEAD_DIM / 2];
        for (int i = 0; i < half; i++) {
            float a = (float)pos[n] * inv_freq[i];
            c[i] = cosf(a);
            s[i] = sinf(a);
        }
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

void rope_forward(float *x, const int *pos, const float *inv_freq, int N, int n_heads, int head_dim) {
    rotate(x, pos, inv_freq, N, n_heads, head_dim, 1.0f);
}

// The rotation is orthogonal, so its transpose (rotation by -angle) maps the
// gradient of the rotated vector back to the unrotated one.
void rope_backward(float *dx, const int *pos, const float *inv_freq, int N, int n_heads, int head_dim) {
    rotate(dx, pos, inv_freq, N, n_heads, head_dim, -1.0f);
}
