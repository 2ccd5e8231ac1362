// AdamW (torch.optim.AdamW semantics), learning-rate schedules (Hugging Face's
// get_*_schedule_with_warmup) and gradient clipping by global norm.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_LINEAR } Schedule;

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} AdamW;

// One AdamW step on n parameters p with gradients g and moments m, v; t = this
// tensor's step count after the step (1 on the first); lr already scheduled; wd = weight
// decay for this tensor. Decoupled decay first (p *= 1 - lr*wd), then
// p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps): the order and formula of torch's AdamW.
void adamw_update(const AdamW *o, float *p, const float *g, float *m, float *v, size_t n, float lr, float wd,
                  int64_t t);

// lr multiplier at optimizer step `step` (0-based) of `total`, warmup steps first.
float schedule_factor(Schedule s, int64_t step, int64_t total, int64_t warmup);
int schedule_parse(const char *name);  // -1 if unknown
// torch clip_grad_norm_: the factor min(1, max_norm / (norm + 1e-6)) the gradients are scaled by.
float clip_factor(double norm, float max_norm);
// Scales the gradients of every span so that their global L2 norm is at most max_norm;
// returns the norm before (torch.nn.utils.clip_grad_norm_ over a list of tensors).
typedef struct { float *g; size_t n; } GradSpan;
double clip_grad_norm_spans(const GradSpan *spans, int n, float max_norm);
// The same for one buffer.
double clip_grad_norm(float *g, size_t n, float max_norm);
