#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/err.h"

void adamw_update(const AdamW *o, float *p, const float *g, float *m, float *v, size_t n, float lr, float wd,
                  int64_t t) {
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    adamw_step(p, g, m, v, n, o->beta1, o->beta2, o->eps, (float)(lr / bc1), (float)sqrt(bc2), 1.0f - lr * wd);
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

double clip_grad_norm_spans(const GradSpan *s, int n, float max_norm) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += vec_sumsq(s[i].g, s[i].n);
    double norm = sqrt(ss);
    float k = clip_factor(norm, max_norm);
    if (k != 1.0f)
        for (int i = 0; i < n; i++) vec_scale(s[i].g, k, s[i].n);
    return norm;
}

double clip_grad_norm(float *g, size_t n, float max_norm) {
    return clip_grad_norm_spans(&(GradSpan){g, n}, 1, max_norm);
}
