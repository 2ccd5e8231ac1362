// Vaccine (docs/methods.md, Vaccine) and its random-noise ablation.
#include "defense/vaccine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void perturbation_init(Perturbation *p, const Model *m, int B, int T) {
    p->L = m->cfg.n_layers;
    p->cap = (size_t)B * T * m->cfg.dim;
    p->pool = xcalloc(p->L, sizeof(float *));
    p->n_pool = 0;
    p->g = xcalloc(p->L, sizeof(float *));
    p->eps = xcalloc(p->L, sizeof(float *));
}

void perturbation_free(Perturbation *p) {
    for (int i = 0; i < p->n_pool; i++) free(p->pool[i]);
    free(p->pool); free(p->g); free(p->eps);
    memset(p, 0, sizeof *p);
}

void perturbation_assign(Perturbation *p, const int *include) {
    int k = 0;
    for (int l = 0; l < p->L; l++) {
        p->eps[l] = NULL;
        if (include && !include[l]) { p->g[l] = NULL; continue; }
        if (k == p->n_pool) p->pool[p->n_pool++] = xcalloc(p->cap, sizeof(float));
        p->g[l] = p->pool[k++];
    }
}

double vaccine_perturbation(Perturbation *p, float rho, size_t n) {
    double ss = 0;
    for (int l = 0; l < p->L; l++)
        if (p->g[l]) ss += vec_sumsq(p->g[l], n);
    double G = sqrt(ss);
    float k = (float)(rho / (G + 1e-7));
    for (int l = 0; l < p->L; l++) {
        if (!p->g[l]) { p->eps[l] = NULL; continue; }
        vec_scale(p->g[l], k, n);
        p->eps[l] = p->g[l];
    }
    return G;
}

typedef struct {
    Perturbation pert;
    float rho;
    Rng rng;
} VaccineCtx;

static float vaccine_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b,
                          float loss_scale, uint64_t seed) {
    VaccineCtx *c = self->ctx;
    // pass 1: clean forward, gradients with respect to every attention output only
    // the trained (second) pass uses the step's dropout seed, so rho = 0 is exactly SFT
    ForwardOpts f1 = {.train = 1, .dropout_seed = hash64(seed + 1)};
    float loss = model_forward(m, l, w, b, &f1);
    BackwardOpts b1 = {.param_grads = 0, .attn_grad = c->pert.g};
    model_backward(m, l, w, &b1);
    vaccine_perturbation(&c->pert, c->rho, (size_t)w->N * m->cfg.dim);
    // pass 2: perturbed forward (eps is a constant), the gradients the optimizer uses
    ForwardOpts f2 = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale, .perturb = c->pert.eps};
    model_forward(m, l, w, b, &f2);
    BackwardOpts b2 = {.param_grads = 1};
    model_backward(m, l, w, &b2);
    return loss;  // the unperturbed loss: what the model does without the adversary
}

static void vaccine_free_ctx(StepMethod *s) {
    VaccineCtx *c = s->ctx;
    perturbation_free(&c->pert);
}

StepMethod *vaccine_method_new(const Model *m, int B, int T, float rho) {
    StepMethod *s = xcalloc(1, sizeof *s);
    VaccineCtx *c = xcalloc(1, sizeof *c);
    perturbation_init(&c->pert, m, B, T);
    perturbation_assign(&c->pert, NULL);
    c->rho = rho;
    s->name = "vaccine";
    s->grad = vaccine_grad;
    s->release = vaccine_free_ctx;
    s->ctx = c;
    return s;
}

// Ablation: Gaussian noise of variance rho instead of the adversarial direction, one pass.
static float random_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b,
                         float loss_scale, uint64_t seed) {
    VaccineCtx *c = self->ctx;
    size_t n = (size_t)w->N * m->cfg.dim;
    float sd = sqrtf(c->rho);
    for (int k = 0; k < c->pert.L; k++) {
        vec_normal(c->pert.g[k], n, sd, &c->rng);
        c->pert.eps[k] = c->pert.g[k];
    }
    ForwardOpts f = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale, .perturb = c->pert.eps};
    float loss = model_forward(m, l, w, b, &f);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(m, l, w, &bo);
    return loss;
}

StepMethod *random_vaccine_method_new(const Model *m, int B, int T, float rho, uint64_t seed) {
    StepMethod *s = vaccine_method_new(m, B, T, rho);
    VaccineCtx *c = s->ctx;
    rng_seed(&c->rng, seed);
    s->name = "random-vaccine";
    s->grad = random_grad;
    return s;
}
