#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/err.h"

void adamw_update(const AdamW *o, float *p, const float *g, float *m, float *v, size_t n, float lr, float wd,
                  int64_t t) {
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), decay = 1.0f - lr * wd;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * g[i];
        v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + o->eps;
        p[i] -= step_size * m[i] / denom;
    }
}

float schedule_factor(Schedule s, int64_t step, int64_t total, int64_t warmup) {
    if (step < warmup) return (float)step / (float)(warmup > 1 ? warmup : 1);
    if (s == SCHED_CONSTANT) return 1.0f;
    double progress = (double)(step - warmup) / (double)(total - warmup > 1 ? total - warmup : 1);
    if (s == SCHED_LINEAR) return (float)fmax(0.0, 1.0 - progress);
    return (float)fmax(0.0, 0.5 * (1.0 + cos(M_PI * progress)));
}

int schedule_parse(const char *name) {
    if (!strcmp(name, "constant")) return SCHED_CONSTANT;
    if (!strcmp(name, "cosine")) return SCHED_COSINE;
    if (!strcmp(name, "linear")) return SCHED_LINEAR;
    return -1;
}

float clip_factor(double norm, float max_norm) {
    return max_norm > 0 && norm > max_norm ? (float)(max_norm / (norm + 1e-6)) : 1.0f;
}

double clip_grad_norm(float *g, size_t n, float max_norm) {
    double norm = sqrt(vec_sumsq(g, n));
    float k = clip_factor(norm, max_norm);
    if (k != 1.0f)
        for (size_t i = 0; i < n; i++) g[i] *= k;
    return norm;
}
