#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void adam_state_init(AdamState *s, size_t n) {
    s->m = xcalloc(n ? n : 1, sizeof(float));
    s->v = xcalloc(n ? n : 1, sizeof(float));
    s->n = n;
    s->t = 0;
}

void adam_state_free(AdamState *s) {
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

void adamw_update(const AdamW *o, AdamState *s, float *p, const float *g, size_t lo, size_t hi, float lr) {
    double bc1 = 1.0 - pow(o->beta1, (double)s->t), bc2 = 1.0 - pow(o->beta2, (double)s->t);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), decay = 1.0f - lr * o->weight_decay;
#pragma omp parallel for schedule(static)
    for (size_t i = lo; i < hi; i++) {
        p[i] *= decay;
        s->m[i] = o->beta1 * s->m[i] + (1.0f - o->beta1) * g[i];
        s->v[i] = o->beta2 * s->v[i] + (1.0f - o->beta2) * g[i] * g[i];
        float denom = sqrtf(s->v[i]) / bc2_sqrt + o->eps;
        p[i] -= step_size * s->m[i] / denom;
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

double clip_grad_norm(float *g, size_t n, float max_norm) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float c = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < n; i++) g[i] *= c;
    }
    return norm;
}
