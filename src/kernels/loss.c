// LM head and token cross-entropy fused over chunks of rows: the (N, V) logits of a
// 49k vocabulary would be the largest buffer of a training step, so only
// (chunk, V) exist at a time and are turned into their gradient in place.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "util/err.h"

double ce_row(const float *logits, int V, int target) {
    float m = -INFINITY;
    for (int j = 0; j < V; j++) m = logits[j] > m ? logits[j] : m;
    double s = 0;
    for (int j = 0; j < V; j++) s += exp((double)logits[j] - m);
    return log(s) + m - logits[target];
}

double lm_head_ce(const float *x, const Mat *W, const int *targets, int N, int C, int V, float grad_scale,
                  float softcap, float *dx, float *dW, int *count, float *scratch, int chunk) {
    const SimdKernels *sk = simd();
    double total = 0.0;
    int cnt = 0;
    int *rows = xmalloc((size_t)chunk * sizeof(int));
    double *rowloss = xmalloc((size_t)chunk * sizeof(double));  // summed in row order: the same bits for any thread count
    float *xs = xmalloc((size_t)chunk * C * sizeof(float));
    for (int i0 = 0; i0 < N;) {
        // Gather up to `chunk` targeted rows (prompt and padding rows cost nothing).
        int m = 0;
        for (; i0 < N && m < chunk; i0++)
            if (targets[i0] >= 0) rows[m++] = i0;
        if (!m) break;
        for (int r = 0; r < m; r++)
            for (int c = 0; c < C; c++) xs[(size_t)r * C + c] = x[(size_t)rows[r] * C + c];
        matmul_forward(scratch, xs, W, NULL, m, 0);
#pragma omp parallel
        {
            // capped logits outlive the in-place exponentials: the cap's derivative needs them
            float *capped = softcap > 0.0f && dx ? xmalloc((size_t)V * sizeof(float)) : NULL;
#pragma omp for schedule(static)
            for (int r = 0; r < m; r++) {
                float *l = scratch + (size_t)r * V;
                int tgt = targets[rows[r]];
                if (softcap > 0.0f) softcap_forward(l, softcap, (size_t)V);
                if (capped) memcpy(capped, l, (size_t)V * sizeof(float));
                float mx = -INFINITY, lt = l[tgt];
#pragma omp simd reduction(max : mx)
                for (int j = 0; j < V; j++) mx = l[j] > mx ? l[j] : mx;
                double s = sk->exp_sum(l, V, mx);  // exponentials once, in place; their sum in double
                rowloss[r] = log(s) + mx - lt;
                if (dx) {  // dlogits = grad_scale * (softmax - onehot)
                    float k = (float)(grad_scale / s);
                    for (int j = 0; j < V; j++) l[j] *= k;
                    l[tgt] -= grad_scale;
                    if (capped) softcap_backward(l, capped, softcap, (size_t)V);
                }
            }
            free(capped);
        }
        for (int r = 0; r < m; r++) total += rowloss[r];
        cnt += m;
        if (dx) {
            if (dW) matmul_backward_weight(dW, NULL, scratch, xs, m, C, V);
            matmul_backward_input(xs, scratch, W, m, 0);  // the rows' input gradients, in xs (free now)
            for (int r = 0; r < m; r++) vec_add(dx + (size_t)rows[r] * C, xs + (size_t)r * C, C);
        }
    }
    free(rows);
    free(rowloss);
    free(xs);
    *count = cnt;
    return total;
}
