// LDIFS (docs/methods.md, LDIFS), as the authors' LDIFSTrainer (Booster repository) computes
// it: per micro-batch, a forward of the aligned model (the model without the fine-tuning
// adapter, whose B starts at 0) records every layer's MLP output f0_l; the trained forward
// records f_l; each layer adds rho/2 ||f_l - f0_l||^2 to the loss unless that term is 0.1
// or more. The feature gradient enters the backward pass at each MLP output.
#include "defense/ldifs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float rho;
    int L;
    float **feat;      // [L] (B*T, C): f_l, then in place the gradient of its term (or NULL: dropped)
    float **anchor;    // [L] (B*T, C): f0_l
    const float **g;   // [L] what the backward pass adds (feat[l] or NULL)
    double *value;     // [L] the last terms
    int *no_targets;   // (B*T) -1: the aligned model's forward stops before the LM head
} LdifsCtx;

int ldifs_layer(const float *f, const float *f0, const int *mask, int N, int C, float rho, float scale, float *grad,
                double *value) {
    double v = 0;
    for (int i = 0; i < N; i++)
        if (!mask || mask[i]) v = vec_dist_sq(v, f + (size_t)i * C, f0 + (size_t)i * C, C);
    v *= 0.5 * rho;
    *value = v;
    if (!(v < LDIFS_LAYER_CAP)) return 0;  // also NaN
    for (int i = 0; i < N; i++) {
        float *g = grad + (size_t)i * C;
        if (mask && !mask[i]) { vec_fill(g, C, 0.0f); continue; }
        if (g != f + (size_t)i * C) memcpy(g, f + (size_t)i * C, C * sizeof(float));
        vec_axpy(g, -1.0f, f0 + (size_t)i * C, C);
        vec_scale(g, scale * rho, C);
    }
    return 1;
}

static float ldifs_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b,
                        float loss_scale, uint64_t seed) {
    LdifsCtx *c = self->ctx;
    // the aligned model's features: no adapter, no dropout, and no targets (its loss is not
    // needed, so the LM head is not run)
    Batch b0 = *b;
    b0.targets = c->no_targets;
    ForwardOpts f0 = {.train = 0, .mlp_out = c->anchor};
    model_forward(m, NULL, w, &b0, &f0);
    ForwardOpts f = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale, .mlp_out = c->feat};
    double loss = model_forward(m, l, w, b, &f);
    int N = w->N, C = m->cfg.dim;
    for (int k = 0; k < c->L; k++) {
        int in = ldifs_layer(c->feat[k], c->anchor[k], b->mask, N, C, c->rho, loss_scale, c->feat[k], &c->value[k]);
        c->g[k] = in ? c->feat[k] : NULL;
        if (in) loss += c->value[k];
    }
    BackwardOpts bo = {.param_grads = 1, .mlp_grad = c->g};
    model_backward(m, l, w, &bo);
    return (float)loss;
}

static void ldifs_release(StepMethod *s) {
    LdifsCtx *c = s->ctx;
    for (int k = 0; k < c->L; k++) { free(c->feat[k]); free(c->anchor[k]); }
    free(c->feat); free(c->anchor); free(c->g); free(c->value); free(c->no_targets);
}

StepMethod *ldifs_method_new(const Model *m, int B, int T, float rho) {
    StepMethod *s = xcalloc(1, sizeof *s);
    LdifsCtx *c = xcalloc(1, sizeof *c);
    size_t n = (size_t)B * T * m->cfg.dim;
    c->rho = rho;
    c->L = m->cfg.n_layers;
    c->feat = xcalloc(c->L, sizeof(float *));
    c->anchor = xcalloc(c->L, sizeof(float *));
    c->g = xcalloc(c->L, sizeof(float *));
    c->value = xcalloc(c->L, sizeof(double));
    c->no_targets = xmalloc((size_t)B * T * sizeof(int));
    for (size_t i = 0; i < (size_t)B * T; i++) c->no_targets[i] = -1;
    for (int k = 0; k < c->L; k++) {
        c->feat[k] = xmalloc(n * sizeof(float));
        c->anchor[k] = xmalloc(n * sizeof(float));
    }
    s->name = "ldifs";
    s->grad = ldifs_grad;
    s->release = ldifs_release;
    s->ctx = c;
    return s;
}

const double *ldifs_terms(const StepMethod *s) { return ((const LdifsCtx *)s->ctx)->value; }
