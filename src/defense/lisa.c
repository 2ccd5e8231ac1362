// Lisa (docs/methods.md, Lisa), as the authors' ADMMTrainer (Booster repository) computes it.
// Micro-batch j is an alignment step when j mod (A + F) < A (A alignment, F fine-tuning
// steps per cycle): it trains on a batch of alignment rows instead of the user's batch,
// which is dropped. When the state changes the current weights become the anchor; after
// the first 10% of the run every step adds rho/2 ||w - anchor||^2, so each state stays
// near where the other one left the weights.
#include "defense/lisa.h"

#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

typedef struct {
    LisaOpts o;
    PoolSampler pool;
    size_t n;
    float *tmp;            // n floats of scratch (the anchor is StepMethod.state)
    int64_t step;
    int micro;
} LisaCtx;

int lisa_is_alignment(const LisaOpts *o, int64_t j) {
    if (o->align_steps <= 0 || !o->guide || o->guide->n == 0) return 0;
    return j % ((int64_t)o->align_steps + o->finetune_steps) < o->align_steps;
}

// Alignment batches drawn before micro-batch j.
static int64_t alignment_draws(const LisaOpts *o, int64_t j) {
    int64_t cyc = (int64_t)o->align_steps + o->finetune_steps, r = j % cyc;
    return j / cyc * o->align_steps + (r < o->align_steps ? r : o->align_steps);
}

double lisa_proximal(const float *p, const float *anchor, float *grad, float *tmp, size_t n, float rho, float scale) {
    double d2 = vec_dist_sq(0.0, p, anchor, n);
    memcpy(tmp, p, n * sizeof(float));
    vec_axpy(tmp, -1.0f, anchor, n);  // p - anchor, exactly 0 at the anchor
    vec_axpy(grad, scale * rho, tmp, n);
    return 0.5 * rho * d2;
}

static const int *lisa_begin(StepMethod *self, const Model *m, const Lora *l, Workspace *w, int64_t step) {
    LisaCtx *c = self->ctx;
    c->step = step;
    c->micro = 0;
    return NULL;
}

static float lisa_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b, float loss_scale,
                       uint64_t seed) {
    LisaCtx *c = self->ctx;
    const LisaOpts *o = &c->o;
    int64_t j = c->step * o->grad_accum + c->micro++;
    int align = lisa_is_alignment(o, j);
    if (j > 0 && align != lisa_is_alignment(o, j - 1)) memcpy(self->state, l->params, c->n * sizeof(float));
    const Batch *bb = align ? pool_sampler_batch(&c->pool, alignment_draws(o, j)) : b;
    ForwardOpts f = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale};
    float loss = model_forward(m, l, w, bb, &f);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(m, l, w, &bo);
    if (o->rho > 0 && (double)j > o->proximal_after)
        loss += (float)lisa_proximal(l->params, self->state, w->lora_grad, c->tmp, c->n, o->rho, loss_scale);
    return loss;
}

static void lisa_release(StepMethod *s) {
    LisaCtx *c = s->ctx;
    if (c->o.guide && c->o.guide->n) pool_sampler_free(&c->pool);
    free(c->tmp);
    free(s->state);
}

StepMethod *lisa_method_new(const Model *m, const Lora *l, const LisaOpts *o) {
    if (!l || o->batch < 1) return NULL;
    StepMethod *s = xcalloc(1, sizeof *s);
    LisaCtx *c = xcalloc(1, sizeof *c);
    c->o = *o;
    if (c->o.grad_accum < 1) c->o.grad_accum = 1;
    if (c->o.align_steps < 0) c->o.align_steps = 0;
    if (c->o.finetune_steps < 0) c->o.finetune_steps = 0;
    c->n = l->n_params;
    c->tmp = xmalloc(c->n * sizeof(float));
    s->state = xmalloc(c->n * sizeof(float));
    s->n_state = c->n;
    memcpy(s->state, l->params, c->n * sizeof(float));  // both anchors start at the initial weights
    if (o->guide && o->guide->n) {
        pool_sampler_init(&c->pool, o->guide, o->batch, hash64(o->seed ^ 0x115a));
        s->max_T = c->pool.max_T;
        s->max_B = c->pool.k;
    }
    s->name = "lisa";
    s->grad = lisa_grad;
    s->begin_step = lisa_begin;
    s->release = lisa_release;
    s->ctx = c;
    return s;
}
