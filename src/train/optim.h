// AdamW (torch.optim.AdamW semantics), learning-rate schedules (Hugging Face's
// get_*_schedule_with_warmup) and gradient clipping by global norm.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_LINEAR } Schedule;

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} AdamW;

typedef struct {
    float *m, *v;   // first and second moments, one per parameter
    size_t n;
    int64_t t;      // steps taken (bias correction)
} AdamState;

void adam_state_init(AdamState *s, size_t n);
void adam_state_free(AdamState *s);
// One AdamW step on params[lo, hi) with gradients g (same layout); lr already scheduled.
// Decoupled decay first (p *= 1 - lr*wd), then p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps),
// the order and formula of torch's single-tensor AdamW.
void adamw_update(const AdamW *o, AdamState *s, float *params, const float *g, size_t lo, size_t hi, float lr);

// lr multiplier at optimizer step `step` (0-based) of `total`, warmup steps first.
float schedule_factor(Schedule s, int64_t step, int64_t total, int64_t warmup);
int schedule_parse(const char *name);  // -1 if unknown
// Scales g so that its global L2 norm is at most max_norm (torch clip_grad_norm_); returns the norm before.
double clip_grad_norm(float *g, size_t n, float max_norm);
