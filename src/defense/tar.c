// TAR (docs/methods.md, TAR), as the T-Vaccine repository's TarTrainer computes it (what its
// training_step writes; docs/methods.md says where that differs from what it runs): per
// micro-batch,
//   w_0 = w,  w_{k+1} = w_k - inner_lr * g_h(w_k)     (the simulated attack: plain SGD on
//                                                      harmful batches, k < inner_steps)
//   g_tr = d a(w_K)/dw                                (tamper resistance: the alignment loss
//                                                      the attacked adapter still has)
//   g    = d a(w)/dw + weight * g_tr                  (first order: g_tr is applied at w)
// The attack runs on the adapter itself and is undone from a copy made before it, so the
// outer parameters are exactly what they were when the alignment pass runs.
#include "defense/tar.h"

#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

typedef struct {
    TarOpts o;
    PoolSampler pool;
    size_t n;              // adapter parameters
    float *stash;          // gradients of earlier micro-batches of the step (+ weight * g_tr)
    float *saved;          // the adapter before the attack
    float *losses;         // [inner_steps + 1]: tar_losses
    int64_t step;          // optimizer step (begin_step)
    int micro;             // micro-batches of this step so far
} TarCtx;

static const int *tar_begin(StepMethod *self, const Model *m, const Lora *l, Workspace *w, int64_t step) {
    TarCtx *c = self->ctx;
    c->step = step;
    c->micro = 0;
    return NULL;
}

// One forward and backward of b's mean loss; its gradient alone in w->lora_grad.
static float grad_alone(const Model *m, const Lora *l, Workspace *w, const Batch *b, size_t n, uint64_t seed) {
    memset(w->lora_grad, 0, n * sizeof(float));
    ForwardOpts f = {.train = 1, .dropout_seed = seed};
    float loss = model_forward(m, l, w, b, &f);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(m, l, w, &bo);
    return loss;
}

static float tar_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b, float loss_scale,
                      uint64_t seed) {
    TarCtx *c = self->ctx;
    size_t n = c->n;
    int K = c->o.inner_steps;
    int64_t draw = (c->step * c->o.grad_accum + c->micro++) * K;
    memcpy(c->stash, w->lora_grad, n * sizeof(float));
    memcpy(c->saved, l->params, n * sizeof(float));
    for (int k = 0; k < K; k++) {  // the attack, on the adapter itself
        const Batch *hb = pool_sampler_batch(&c->pool, draw + k);
        c->losses[k] = grad_alone(m, l, w, hb, n, hash64(seed ^ (0x7a40000ULL + (uint64_t)k)));
        vec_axpy(l->params, -c->o.inner_lr, w->lora_grad, n);
    }
    c->losses[K] = grad_alone(m, l, w, b, n, hash64(seed ^ 0x7a4f7a4fULL));
    memcpy(l->params, c->saved, n * sizeof(float));
    if (c->o.weight != 0.0f) vec_axpy(c->stash, loss_scale * c->o.weight, w->lora_grad, n);
    // the alignment gradient at w, accumulated as SFT's pass (the same dropout seed)
    memcpy(w->lora_grad, c->stash, n * sizeof(float));
    ForwardOpts f = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale};
    float loss = model_forward(m, l, w, b, &f);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(m, l, w, &bo);
    return loss;
}

const float *tar_losses(const StepMethod *s) { return ((const TarCtx *)s->ctx)->losses; }

static void tar_release(StepMethod *s) {
    TarCtx *c = s->ctx;
    pool_sampler_free(&c->pool);
    free(c->stash); free(c->saved); free(c->losses);
}

StepMethod *tar_method_new(const Model *m, const Lora *l, const TarOpts *o) {
    if (!l || !o->harmful || o->harmful->n < 1 || o->batch < 1 || o->inner_steps < 0) return NULL;
    StepMethod *s = xcalloc(1, sizeof *s);
    TarCtx *c = xcalloc(1, sizeof *c);
    c->o = *o;
    if (c->o.grad_accum < 1) c->o.grad_accum = 1;
    c->n = l->n_params;
    c->stash = xmalloc(c->n * sizeof(float));
    c->saved = xmalloc(c->n * sizeof(float));
    c->losses = xcalloc((size_t)o->inner_steps + 1, sizeof(float));
    pool_sampler_init(&c->pool, o->harmful, o->batch, hash64(o->seed ^ 0x7a4ULL));
    // the reference's loader keeps no iterator once a pass is used up: every later batch is
    // the start of a new random order (docs/methods.md, TAR)
    c->pool.redraw_from = (o->harmful->n + c->pool.k - 1) / c->pool.k;
    s->name = "tar";
    s->grad = tar_grad;
    s->begin_step = tar_begin;
    s->release = tar_release;
    s->max_T = c->pool.max_T;
    s->max_B = c->pool.k;
    s->ctx = c;
    (void)m;
    return s;
}
