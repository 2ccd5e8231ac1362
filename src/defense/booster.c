// Booster (docs/methods.md, Booster), as the authors' BoosterAlignmentTrainer computes it:
// per micro-batch, on a harmful batch,
//   g_h  = d h(w)/dw                        (h: mean harmful loss)
//   g_h' = d h(w')/dw at w' = w - alpha g_h / (||g_h|| + 1e-7)   (one normalised harmful step)
// and the gradient the optimizer uses is g_align + lambda (g_h - g_h'): the gradient of
// lambda (h(w) - h(w')) with the step direction held constant, i.e. the harmful loss
// reduction a harmful step would achieve is what the alignment learns to make small.
#include "defense/booster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

typedef struct {
    BoosterOpts o;
    PoolSampler pool;
    size_t n;              // adapter parameters
    float *stash;          // gradients accumulated by earlier micro-batches of the step
    float *saved;          // the adapter before the harmful step (restored exactly)
    float *diff;           // g_h - g_h'
    int64_t step;          // optimizer step (begin_step)
    int micro;             // micro-batches of this step so far
} BoosterCtx;

static const int *booster_begin(StepMethod *self, const Model *m, const Lora *l, Workspace *w, int64_t step) {
    BoosterCtx *c = self->ctx;
    c->step = step;
    c->micro = 0;
    return NULL;
}

// One forward and backward on the harmful batch; its gradient alone in w->lora_grad.
static float harmful_pass(const Model *m, const Lora *l, Workspace *w, const Batch *hb, size_t n, uint64_t seed) {
    memset(w->lora_grad, 0, n * sizeof(float));
    ForwardOpts f = {.train = 1, .dropout_seed = seed};
    float loss = model_forward(m, l, w, hb, &f);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(m, l, w, &bo);
    return loss;
}

static float booster_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b,
                          float loss_scale, uint64_t seed) {
    BoosterCtx *c = self->ctx;
    size_t n = c->n;
    int64_t draw = c->step * c->o.grad_accum + c->micro++;
    const Batch *hb = pool_sampler_batch(&c->pool, draw);
    uint64_t hs = hash64(c->o.seed ^ hash64((uint64_t)draw + 0xb005));
    memcpy(c->stash, w->lora_grad, n * sizeof(float));
    // g_h at w
    harmful_pass(m, l, w, hb, n, hs);
    memcpy(c->diff, w->lora_grad, n * sizeof(float));
    double G = sqrt(vec_sumsq(c->diff, n)) + 1e-7;
    // g_h' at w - alpha g_h / G; the adapter is then restored from a copy (the reference adds
    // the step back, which leaves rounding residue)
    memcpy(c->saved, l->params, n * sizeof(float));
    vec_axpy(l->params, (float)(-c->o.alpha / G), c->diff, n);
    harmful_pass(m, l, w, hb, n, hash64(hs + 1));
    memcpy(l->params, c->saved, n * sizeof(float));
    vec_axpy(c->diff, -1.0f, w->lora_grad, n);
    // the alignment gradient, accumulated onto the earlier micro-batches' as SFT does
    memcpy(w->lora_grad, c->stash, n * sizeof(float));
    ForwardOpts f = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale};
    float loss = model_forward(m, l, w, b, &f);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(m, l, w, &bo);
    if (c->o.lambda != 0.0f) vec_axpy(w->lora_grad, loss_scale * c->o.lambda, c->diff, n);
    return loss;
}

static void booster_release(StepMethod *s) {
    BoosterCtx *c = s->ctx;
    pool_sampler_free(&c->pool);
    free(c->stash); free(c->saved); free(c->diff);
}

StepMethod *booster_method_new(const Model *m, const Lora *l, const BoosterOpts *o) {
    if (!l || !o->harmful || o->harmful->n < 1 || o->batch < 1) return NULL;
    StepMethod *s = xcalloc(1, sizeof *s);
    BoosterCtx *c = xcalloc(1, sizeof *c);
    c->o = *o;
    if (c->o.grad_accum < 1) c->o.grad_accum = 1;
    c->n = l->n_params;
    c->stash = xmalloc(c->n * sizeof(float));
    c->saved = xmalloc(c->n * sizeof(float));
    c->diff = xmalloc(c->n * sizeof(float));
    pool_sampler_init(&c->pool, o->harmful, o->batch, hash64(o->seed ^ 0xb0057e5));
    s->name = "booster";
    s->grad = booster_grad;
    s->begin_step = booster_begin;
    s->release = booster_release;
    s->max_T = c->pool.max_T;
    s->max_B = c->pool.k;
    s->ctx = c;
    (void)m;
    return s;
}
