// T-Vaccine (docs/methods.md, T-Vaccine): Vaccine on a sampled subset of layers
// chosen by the gradient norms of harmful data. Only the sampled layers are perturbed
// and their attention adapters trained. The reference variant also trains every
// layer's MLP adapters at every step (the authors' code freezes attention adapters
// only), so its trained pass runs back to the first layer; the lean variant trains the
// sampled layers alone and runs no backward pass below the lowest of them. Both keep
// activations only for the kept layers and recompute the others during the backward
// pass, as the reference's checkpointing does.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "defense/vaccine.h"

typedef struct {
    TVaccineOpts o;
    Perturbation pert;
    Rng rng;            // layer sampling
    Rng draw;           // the harmful row of each probability pass
    float *P;           // [L] layer probabilities
    double *sq;         // [L] squared gradient norms of the last probability pass
    int *active;        // [L] sampled layers (perturbed, attention adapters trained)
    int *keep;          // [L] layers whose activations are kept
    int *trainable;     // [L] trained projections (1 << P_*)
    int *probe_keep;    // [L] layers the probability pass keeps (the rest it recomputes)
    int lo;             // lowest sampled layer
    int *order;         // [pool] the pool in a random order, consumed one row per pass
    int n_drawn;
    Batch hb;
    uint64_t seed;
} TVCtx;

void tvaccine_sample_layers(Rng *r, const float *P, int L, int S, int *active) {
    double *w = xmalloc(L * sizeof(double));
    for (int l = 0; l < L; l++) { w[l] = P[l]; active[l] = 0; }
    if (S > L) S = L;
    for (int s = 0; s < S; s++) {  // sequential draws without replacement (numpy's choice(replace=False))
        double tot = 0;
        for (int l = 0; l < L; l++) tot += w[l] > 0 ? w[l] : 0;
        int pick = -1;
        if (tot <= 0) {  // all remaining mass is zero: take the first unpicked
            for (int l = 0; l < L && pick < 0; l++) if (w[l] >= 0) pick = l;
        } else {
            double u = rng_uniform(r) * tot, c = 0;
            for (int l = 0; l < L; l++) {
                if (w[l] < 0) continue;
                c += w[l];
                if (u < c) { pick = l; break; }
            }
            if (pick < 0) for (int l = L - 1; l >= 0 && pick < 0; l--) if (w[l] > 0) pick = l;
        }
        active[pick] = 1;
        w[pick] = -1.0;  // removed
    }
    free(w);
}

void tvaccine_kept_layers(const int *active, int L, int *keep) {
    for (int l = 0; l < L; l++) keep[l] = active[l] || (L > 26 && l + 1 < L && active[l + 1]);
}

// The pool row of the next probability pass. The reference draws batches of one from a
// randomly ordered pass over the pool; after the pool is used up every draw starts a
// new random order and takes its first row, i.e. a uniform draw.
static int next_harmful_row(TVCtx *c) {
    int n = c->o.harmful->n;
    if (c->n_drawn < n) return c->order[c->n_drawn++];
    return (int)rng_below(&c->draw, (uint64_t)n);
}

// One forward/backward on one harmful row: P_l = ||g_l|| / sum_k ||g_k||.
static void refresh_probs(TVCtx *c, const Model *m, const Lora *l, Workspace *w) {
    int L = m->cfg.n_layers, row = next_harmful_row(c);
    batch_fill(&c->hb, c->o.harmful, &row, 1, 0);
    // It keeps the activations of as many layers as fit in the S slots a step on a
    // full-length batch keeps (one row is a fraction of such a batch: usually all of them),
    // so it needs no more memory than that step; the others are recomputed.
    int S = c->o.S < L ? c->o.S : L, fit = S * workspace_layers_per_slot(m, l, w, c->hb.B, c->hb.T);
    for (int k = 0; k < L; k++) c->probe_keep[k] = k >= L - fit;
    ForwardOpts fo = {.train = 1, .dropout_seed = hash64(c->seed ^ 0x5eed ^ (uint64_t)c->n_drawn << 20),
                      .save_mask = c->probe_keep};
    model_forward(m, l, w, &c->hb, &fo);
    BackwardOpts bo = {.param_grads = 0, .attn_grad_sqnorm = c->sq};
    model_backward(m, l, w, &bo);
    double tot = 0;
    for (int k = 0; k < L; k++) tot += sqrt(c->sq[k]);
    for (int k = 0; k < L; k++) c->P[k] = tot > 0 ? (float)(sqrt(c->sq[k]) / tot) : 1.0f / L;
}

static const int *tv_begin(StepMethod *self, const Model *m, const Lora *l, Workspace *w, int64_t step) {
    TVCtx *c = self->ctx;
    int L = m->cfg.n_layers;
    if (step % c->o.K == 0) refresh_probs(c, m, l, w);
    if (step % c->o.J == 0) {
        tvaccine_sample_layers(&c->rng, c->P, L, c->o.S, c->active);
        tvaccine_kept_layers(c->active, L, c->keep);
        perturbation_assign(&c->pert, c->active);
        c->lo = L;
        for (int k = L - 1; k >= 0; k--) if (c->active[k]) c->lo = k;
        for (int k = 0; k < L; k++)
            c->trainable[k] = c->active[k] ? PROJ_ALL : c->o.variant == TV_REFERENCE ? PROJ_MLP : 0;
    }
    return c->trainable;
}

// Vaccine's two passes, perturbing the sampled layers only.
static float tv_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b, float loss_scale,
                     uint64_t seed) {
    TVCtx *c = self->ctx;
    // pass 1 needs dL/dh of the sampled layers only: nothing below the lowest one
    ForwardOpts f1 = {.train = 1, .dropout_seed = hash64(seed + 1), .first_layer_needed = c->lo, .save_mask = c->keep};
    float loss = model_forward(m, l, w, b, &f1);
    BackwardOpts b1 = {.param_grads = 0, .attn_grad = c->pert.g, .stop_layer = c->lo};
    model_backward(m, l, w, &b1);
    vaccine_perturbation(&c->pert, c->o.rho, (size_t)w->N * m->cfg.dim);
    int lo = c->o.variant == TV_LEAN ? c->lo : 0;  // the reference trains MLP adapters down to layer 0
    ForwardOpts f2 = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale, .perturb = c->pert.eps,
                      .first_layer_needed = lo, .save_mask = c->keep};
    model_forward(m, l, w, b, &f2);
    BackwardOpts b2 = {.param_grads = 1, .layer_trainable = c->trainable, .stop_layer = lo};
    model_backward(m, l, w, &b2);
    return loss;
}

static void tv_release(StepMethod *s) {
    TVCtx *c = s->ctx;
    perturbation_free(&c->pert);
    free(c->P); free(c->sq); free(c->active); free(c->keep); free(c->trainable); free(c->probe_keep); free(c->order);
    batch_free(&c->hb);
}

StepMethod *tvaccine_method_new(const Model *m, int B, int T, const TVaccineOpts *o, uint64_t seed) {
    int L = m->cfg.n_layers;
    if (!o->harmful || o->harmful->n < 1) return NULL;
    StepMethod *s = xcalloc(1, sizeof *s);
    TVCtx *c = xcalloc(1, sizeof *c);
    c->o = *o;
    if (c->o.K < 1) c->o.K = 1;
    if (c->o.J < 1) c->o.J = 1;
    c->seed = seed;
    rng_seed(&c->rng, seed);
    rng_seed(&c->draw, hash64(seed ^ 0x9001));
    c->P = xmalloc(L * sizeof(float));
    for (int k = 0; k < L; k++) c->P[k] = 1.0f / L;
    c->sq = xcalloc(L, sizeof(double));
    c->active = xcalloc(L, sizeof(int));
    c->keep = xcalloc(L, sizeof(int));
    c->trainable = xcalloc(L, sizeof(int));
    c->probe_keep = xcalloc(L, sizeof(int));
    int n = o->harmful->n;
    c->order = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) c->order[i] = i;
    rng_shuffle_int(&c->draw, c->order, n);
    int hT = 1;
    for (int i = 0; i < n; i++) hT = o->harmful->ex[i].n > hT ? o->harmful->ex[i].n : hT;
    perturbation_init(&c->pert, m, B, T);
    batch_alloc(&c->hb, 1, hT);
    s->name = "tvaccine";
    s->grad = tv_grad;
    s->begin_step = tv_begin;
    s->release = tv_release;
    s->max_T = hT;
    s->ctx = c;
    return s;
}

const float *tvaccine_probs(const StepMethod *s) { return ((const TVCtx *)s->ctx)->P; }
const int *tvaccine_active(const StepMethod *s) { return ((const TVCtx *)s->ctx)->active; }
const int *tvaccine_trainable(const StepMethod *s) { return ((const TVCtx *)s->ctx)->trainable; }
