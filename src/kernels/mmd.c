// Maximum mean discrepancy with a sum of Gaussian kernels (docs/methods.md, RepNoise): the
// distance along which RepNoise pushes the harmful rows' hidden states toward Gaussian noise.
#include <math.h>
#include <stdlib.h>

#include "kernels/kernels.h"
#include "util/err.h"

double mmd_gauss(const float *X, const float *Y, int n, size_t D, int K, double mul, double *sigma, float scale,
                 float *dX) {
    int m = 2 * n;
    // The 2n samples: X's rows, then Y's.
#define ROW(a) ((a) < n ? X + (size_t)(a) * D : Y + (size_t)((a) - n) * D)
    double *d = xcalloc((size_t)m * m, sizeof(double));  // squared distances, then the kernel sums
    double *kd = xcalloc((size_t)m * m, sizeof(double));  // d(kernel sum)/d(squared distance)
    int pairs = m * (m - 1) / 2;
#pragma omp parallel for schedule(dynamic)
    for (int p = 0; p < pairs; p++) {
        int a = 0, q = p;  // the p-th pair (a, b), a < b
        while (q >= m - 1 - a) q -= m - 1 - a, a++;
        int b = a + 1 + q;
        d[(size_t)a * m + b] = d[(size_t)b * m + a] = vec_dist_sq(0.0, ROW(a), ROW(b), D);
    }
    // Bandwidths: sigma (by default the mean distance between distinct samples) / mul^(K/2),
    // times mul^k; a constant of the loss (no gradient flows through it).
    if (!(*sigma > 0)) {
        double sum = 0;
        for (size_t i = 0; i < (size_t)m * m; i++) sum += d[i];
        *sigma = sum / ((double)m * m - m);
    }
    double bw = *sigma / pow(mul, K / 2);
    if (!(bw > 0)) {  // every sample equal: no distance to measure, nothing to push
        free(d);
        free(kd);
        return 0.0;
    }
    for (size_t i = 0; i < (size_t)m * m; i++) {
        double k = 0, g = 0, s = bw;
        for (int j = 0; j < K; j++, s *= mul) {
            double e = exp(-d[i] / s);
            k += e;
            g -= e / s;
        }
        d[i] = k;
        kd[i] = g;
    }
    // mean over the n x n blocks of XX + YY - XY - YX, summed pair by pair in that order (so
    // identical samples give exactly 0)
    double v = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            v += d[(size_t)i * m + j] + d[(size_t)(n + i) * m + n + j] - d[(size_t)i * m + n + j] -
                 d[(size_t)(n + i) * m + j];
    v /= (double)n * n;
    if (dX) {
        // d MMD / d x_a = 4/n^2 sum_b s_b k'(d_ab) (x_a - z_b), s_b = +1 for X rows, -1 for Y rows
        double f = 4.0 * scale / ((double)n * n);
        for (int a = 0; a < n; a++) {
            const double *ka = kd + (size_t)a * m;
            double csum = 0;
            for (int i = 0; i < n; i++) csum += ka[i] - ka[n + i];
            const float *xa = ROW(a);
            float *ga = dX + (size_t)a * D;
#pragma omp parallel for schedule(static)
            for (size_t j = 0; j < D; j++) {
                double acc = csum * xa[j];
                for (int i = 0; i < n; i++) acc -= ka[i] * X[(size_t)i * D + j] - ka[n + i] * Y[(size_t)i * D + j];
                ga[j] += (float)(f * acc);
            }
        }
    }
#undef ROW
    free(d);
    free(kd);
    return v;
}
