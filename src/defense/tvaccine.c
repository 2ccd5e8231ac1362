// T-Vaccine (SPEC section 5): Vaccine on a sampled subset of layers chosen by the
// gradient norms of harmful data. Memory: only the active layers keep activations
// and perturbation buffers; inactive layers between them are recomputed during the
// backward pass (a departure from the reference's autograd, which keeps them: it
// trades one extra forward of those layers for their activation memory), and nothing
// below the lowest active layer is kept or back-propagated at all.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "defense/vaccine.h"

typedef struct {
    TVaccineOpts o;
    Perturbation pert;
    Rng rng;
    float *P;           // [L] layer probabilities
    double *sq;         // [L] squared gradient norms of the last probability pass
    int *active, *zero; // [L]
    int lo;             // lowest active layer
    int harm_cursor;
    Batch hb;
    uint64_t seed;
} TVCtx;

void tvaccine_sample_layers(Rng *r, const float *P, int L, int S, int quirk, int *active) {
    double *w = xmalloc(L * sizeof(double));
    for (int l = 0; l < L; l++) { w[l] = P[l]; active[l] = 0; }
    if (S > L) S = L;
    int *picked = xmalloc(L * sizeof(int));
    for (int s = 0; s < S; s++) {  // sequential draws without replacement (numpy's choice(replace=False))
        double tot = 0;
        for (int l = 0; l < L; l++) tot += w[l];
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
        picked[s] = pick;
        w[pick] = -1.0;  // removed
    }
    for (int s = 0; s < S; s++) {
        active[picked[s]] = 1;
        if (quirk && L > 26 && picked[s] > 0) active[picked[s] - 1] = 1;  // reference behaviour
    }
    free(picked);
    free(w);
}

// One forward/backward on a harmful batch: P_l = ||g_l|| / sum_k ||g_k||.
static void refresh_probs(TVCtx *c, const Model *m, const Lora *l, Workspace *w) {
    int L = m->cfg.n_layers, n = 0, idx[64];
    const EncodedSet *h = c->o.harmful;
    int B = c->o.B < 64 ? c->o.B : 64;
    for (int i = 0; i < B && i < h->n; i++) idx[n++] = (c->harm_cursor + i) % h->n;
    c->harm_cursor = (c->harm_cursor + n) % (h->n ? h->n : 1);
    batch_fill(&c->hb, h, idx, n, 0);
    ForwardOpts fo = {.train = 1, .dropout_seed = hash64(c->seed ^ 0x5eed), .save_mask = c->zero};  // checkpointed
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
        tvaccine_sample_layers(&c->rng, c->P, L, c->o.S, c->o.reference_quirk, c->active);
        perturbation_assign(&c->pert, c->active);
        c->lo = L;
        for (int k = L - 1; k >= 0; k--) if (c->active[k]) c->lo = k;
    }
    return c->active;
}

// Vaccine's two passes over the active layers only.
static float tv_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b, float loss_scale,
                     uint64_t seed) {
    TVCtx *c = self->ctx;
    ForwardOpts f1 = {.train = 1, .dropout_seed = hash64(seed + 1), .first_layer_needed = c->lo, .save_mask = c->active};
    float loss = model_forward(m, l, w, b, &f1);
    BackwardOpts b1 = {.param_grads = 0, .attn_grad = c->pert.g, .stop_layer = c->lo};
    model_backward(m, l, w, &b1);
    vaccine_perturbation(&c->pert, c->o.rho, (size_t)w->N * m->cfg.dim);
    ForwardOpts f2 = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale, .perturb = c->pert.eps,
                      .first_layer_needed = c->lo, .save_mask = c->active};
    model_forward(m, l, w, b, &f2);
    BackwardOpts b2 = {.param_grads = 1, .layer_trainable = c->active, .stop_layer = c->lo};
    model_backward(m, l, w, &b2);
    return loss;
}

static void tv_release(StepMethod *s) {
    TVCtx *c = s->ctx;
    perturbation_free(&c->pert);
    free(c->P); free(c->sq); free(c->active); free(c->zero);
    batch_free(&c->hb);
}

StepMethod *tvaccine_method_new(const Model *m, int B, int T, const TVaccineOpts *o, uint64_t seed) {
    int L = m->cfg.n_layers;
    StepMethod *s = xcalloc(1, sizeof *s);
    TVCtx *c = xcalloc(1, sizeof *c);
    c->o = *o;
    if (c->o.K < 1) c->o.K = 1;
    if (c->o.J < 1) c->o.J = 1;
    if (c->o.B < 1 || c->o.B > B) c->o.B = B;  // the probe batch shares the training workspace
    c->seed = seed;
    rng_seed(&c->rng, seed);
    c->P = xmalloc(L * sizeof(float));
    for (int k = 0; k < L; k++) c->P[k] = 1.0f / L;
    c->sq = xcalloc(L, sizeof(double));
    c->active = xcalloc(L, sizeof(int));
    c->zero = xcalloc(L, sizeof(int));
    int hT = 1;
    for (int i = 0; i < o->harmful->n; i++) hT = o->harmful->ex[i].n > hT ? o->harmful->ex[i].n : hT;
    perturbation_init(&c->pert, m, B, T > hT ? T : hT);
    batch_alloc(&c->hb, c->o.B < 64 ? c->o.B : 64, hT);
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
