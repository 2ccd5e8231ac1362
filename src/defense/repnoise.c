// RepNoise (docs/methods.md, RepNoise), as the Booster repository's RepNoiseTrainer and
// rep_noise_loss compute it (trainer.py, loss_func/repnoise_loss.py), per micro-batch:
//   - a harmful batch drawn fresh (the reference makes a new data-loader iterator every step:
//     the first rows of a new random order over the pool), paired row by row with the safe
//     batch; each row's mask holds the positions where its token differs from its partner's;
//   - R, the masked cross-entropy of the safe rows;
//   - H = (CE(logits) + sum_{i=0..L} CE(head(norm(h_i)))) / (L + 1) + 1 over the harmful rows
//     (layer_ce; h_i: the embeddings, each layer's output, the last one after the final norm,
//     as transformers' hidden_states), or CE(logits) alone (the Antidote repository's copy);
//   - N = (1/L) sum_l MMD(the harmful rows' MLP output of layer l, N(0, 1) noise), both masked;
//   - loss = R + beta N - alpha log H.
// One forward and backward on the harmful batch carries every harmful term (the per-layer
// losses enter the backward pass at the residual stream, the noise term at the MLP outputs);
// one on the safe batch carries R.
#include "defense/repnoise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

#define MMD_KERNELS 5  // the reference's MMD_loss: kernel_num 5, kernel_mul 2
#define MMD_MUL 2.0

typedef struct {
    RepNoiseOpts o;
    PoolSampler pool;
    int64_t per_pass;         // the pool's batches per pass: draw d is batch 0 of pass d
    int L, C, V;
    size_t cap_h, cap_s;      // tokens of the largest harmful / safe batch
    int *keep_h, *tgt_h;      // [cap_h]
    int *keep_s, *tgt_s;      // [cap_s]
    float **feat;             // [L] (cap_h, C): MLP outputs, then in place the noise term's gradient (beta > 0)
    float **rgrad;            // [L] (cap_h, C): the per-layer losses' gradients at res[l] (alpha > 0 and
                              // layer_ce; [0], the embeddings, NULL)
    float *noise, *mgrad;     // (cap_h, C) (beta > 0)
    float *xn, *dxn, *dtop;   // (cap_h, C) (alpha > 0 and layer_ce)
    float *rstd;              // (cap_h)
    int64_t step, draw;
    int micro;
    RepNoiseTerms last;
} RepNoiseCtx;

void repnoise_diff_mask(const Batch *x, const Batch *y, int *keep) {
    for (int r = 0; r < x->B; r++)
        for (int t = 0; t < x->T; t++) {
            int i = r * x->T + t, j = y ? r * y->T + t : 0;
            int same = y && r < y->B && t < y->T && y->mask[j] && y->tokens[j] == x->tokens[i];
            keep[i] = x->mask[i] && !same;
        }
}

int repnoise_targets(const Batch *x, const int *keep, int bf16_labels, int V, int *targets, int *n_zero) {
    int n = 0, z = 0;
    for (int r = 0; r < x->B; r++)
        for (int t = 0; t < x->T; t++) {
            int i = r * x->T + t;
            targets[i] = -1;
            if (t + 1 >= x->T || !keep[i + 1]) continue;
            int lab = x->tokens[i + 1];
            if (bf16_labels) {  // the reference multiplies the ids by a bf16 mask
                int rounded = (int)bf16_to_float(float_to_bf16((float)lab));
                if (rounded < V) lab = rounded;
            }
            if (lab == 0) continue;  // the reference's sentinel for masked labels ignores id 0
            if (keep[i]) targets[i] = lab, n++;
            else z++;
        }
    *n_zero = z;
    return n;
}

// The reference's masked mean: positions with zeroed logits add ln V each; 0 with no position.
static double masked_mean(double mean, int count, int n_zero, int V) {
    if (!n_zero) return mean;
    return (mean * count + n_zero * log((double)V)) / (count + n_zero);
}

static void zero_unmasked(float *x, const int *keep, size_t N, int C) {
    for (size_t i = 0; i < N; i++)
        if (!keep[i]) vec_fill(x + i * C, C, 0.0f);
}

static void fill_noise(const RepNoiseCtx *c, int l, const Batch *hb, float *out) {
    size_t N = (size_t)hb->B * hb->T;
    Rng r;
    rng_seed(&r, hash64(c->o.seed ^ hash64((uint64_t)c->draw * 65599u + (uint64_t)l + 0x4e015eu)));
    vec_normal(out, N * c->C, 1.0f, &r);
    zero_unmasked(out, c->keep_h, N, c->C);
}

static const int *repnoise_begin(StepMethod *self, const Model *m, const Lora *l, Workspace *w, int64_t step) {
    RepNoiseCtx *c = self->ctx;
    c->step = step;
    c->micro = 0;
    return NULL;
}

// The harmful terms: one forward and backward on the harmful batch. Returns beta N - alpha log H.
static double harmful_pass(RepNoiseCtx *c, const Model *m, const Lora *l, Workspace *w, const Batch *hb,
                           float loss_scale, uint64_t seed) {
    int L = c->L, C = c->C, V = c->V;
    size_t N = (size_t)hb->B * hb->T, NC = N * C;
    float alpha = c->o.alpha, beta = c->o.beta;
    int nz = 0, n1 = 0;
    if (alpha != 0) n1 = repnoise_targets(hb, c->keep_h, c->o.bf16_labels, V, c->tgt_h, &nz);
    else
        for (size_t i = 0; i < N; i++) c->tgt_h[i] = -1;
    c->last.n_harm = n1 + nz;
    Batch h = *hb;
    h.targets = c->tgt_h;
    ForwardOpts f = {.train = 1, .dropout_seed = hash64(seed ^ 0x4e015eu), .mlp_out = beta != 0 ? c->feat : NULL};
    model_forward(m, l, w, &h, &f);
    if (w->refused[0]) return NAN;  // a batch larger than planned: the trainer reports it
    double value = 0;
    int lens = 0;  // the per-layer losses' gradients are in rgrad
    if (alpha != 0 && c->last.n_harm) {
        double sum = masked_mean(w->loss, n1, nz, V), per = 1.0;
        if (c->o.layer_ce) {
            lens = 1;
            for (int i = 0; i <= L; i++) {
                const float *x = i < L ? w->res + (size_t)i * NC : w->xf;
                float *dx = i == 0 ? NULL : i < L ? c->rgrad[i] : c->dtop;
                if (dx) memset(dx, 0, NC * sizeof(float));
                int cnt;
                double s = model_lens_ce(m, w, x, c->tgt_h, (int)N, 1.0f, dx, c->xn, c->dxn, c->rstd, &cnt);
                sum += masked_mean(cnt ? s / cnt : 0.0, cnt, nz, V);
            }
            per = 1.0 / (L + 1);
            sum = sum * per + 1;
        }
        c->last.harmful = sum;
        value -= alpha * log(sum);
        // d(-alpha log H)/d(each masked mean) = -alpha per / H; each mean is (1/(n1 + nz)) x the
        // sum over its targets. The forward left (1/n1) x that sum's gradient in dxf.
        float k = (float)(-alpha * loss_scale * per / sum / c->last.n_harm);
        vec_scale(w->dxf, k * (float)n1, NC);
        if (lens) {
            vec_axpy(w->dxf, k, c->dtop, NC);
            for (int i = 1; i < L; i++) vec_scale(c->rgrad[i], k, NC);
        }
    }
    if (beta != 0) {
        double sum = 0;
        for (int i = 0; i < L; i++) {
            zero_unmasked(c->feat[i], c->keep_h, N, C);
            fill_noise(c, i, hb, c->noise);
            memset(c->mgrad, 0, NC * sizeof(float));
            double sigma = 0;  // from the samples, as the reference (fix_sigma None)
            sum += mmd_gauss(c->feat[i], c->noise, hb->B, (size_t)hb->T * C, MMD_KERNELS, MMD_MUL, &sigma,
                             beta * loss_scale / L, c->mgrad);
            zero_unmasked(c->mgrad, c->keep_h, N, C);
            memcpy(c->feat[i], c->mgrad, NC * sizeof(float));
        }
        c->last.noise = sum / L;
        value += beta * c->last.noise;
    }
    BackwardOpts bo = {.param_grads = 1, .mlp_grad = beta != 0 ? (const float *const *)c->feat : NULL,
                       .res_grad = lens ? (const float *const *)c->rgrad : NULL};
    model_backward(m, l, w, &bo);
    return value;
}

static void grow(int **a, int **b, size_t *cap, size_t n) {
    if (n <= *cap) return;
    free(*a);
    free(*b);
    *a = xmalloc(n * sizeof(int));
    *b = xmalloc(n * sizeof(int));
    *cap = n;
}

static float repnoise_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b,
                           float loss_scale, uint64_t seed) {
    RepNoiseCtx *c = self->ctx;
    c->draw = c->step * c->o.grad_accum + c->micro++;
    const Batch *hb = pool_sampler_batch(&c->pool, c->draw * c->per_pass);
    memset(&c->last, 0, sizeof c->last);
    repnoise_diff_mask(hb, b, c->keep_h);
    double harm = 0;
    if (c->o.alpha != 0 || c->o.beta != 0) harm = harmful_pass(c, m, l, w, hb, loss_scale, seed);
    // the retain loss: the safe rows' positions that differ from their harmful partners'
    grow(&c->keep_s, &c->tgt_s, &c->cap_s, (size_t)b->B * b->T);
    repnoise_diff_mask(b, hb, c->keep_s);
    int nz, n1 = repnoise_targets(b, c->keep_s, 0, c->V, c->tgt_s, &nz);
    c->last.n_safe = n1 + nz;
    double R = masked_mean(0.0, 0, nz, c->V);
    if (n1) {
        Batch s = *b;
        s.targets = c->tgt_s;
        ForwardOpts f = {.train = 1, .dropout_seed = seed,
                         .loss_scale = loss_scale * (float)((double)n1 / (n1 + nz))};
        model_forward(m, l, w, &s, &f);
        R = masked_mean(w->loss, n1, nz, c->V);
        BackwardOpts bo = {.param_grads = 1};
        model_backward(m, l, w, &bo);
    }
    c->last.retain = R;
    return (float)(R + harm);
}

static void repnoise_release(StepMethod *s) {
    RepNoiseCtx *c = s->ctx;
    pool_sampler_free(&c->pool);
    for (int i = 0; i < c->L; i++) {
        if (c->feat) free(c->feat[i]);
        if (c->rgrad) free(c->rgrad[i]);
    }
    free(c->feat); free(c->rgrad);
    free(c->keep_h); free(c->tgt_h); free(c->keep_s); free(c->tgt_s);
    free(c->noise); free(c->mgrad); free(c->xn); free(c->dxn); free(c->dtop); free(c->rstd);
}

static float **buffers(int L, int from, size_t n) {
    float **p = xcalloc(L, sizeof(float *));
    for (int i = from; i < L; i++) p[i] = xmalloc(n * sizeof(float));
    return p;
}

StepMethod *repnoise_method_new(const Model *m, const Lora *l, int B, int T, const RepNoiseOpts *o) {
    if (!l || !o->harmful || o->harmful->n < 1 || o->batch < 1) return NULL;
    StepMethod *s = xcalloc(1, sizeof *s);
    RepNoiseCtx *c = xcalloc(1, sizeof *c);
    c->o = *o;
    if (c->o.grad_accum < 1) c->o.grad_accum = 1;
    c->L = m->cfg.n_layers;
    c->C = m->cfg.dim;
    c->V = m->cfg.vocab_size;
    pool_sampler_init(&c->pool, o->harmful, o->batch, hash64(o->seed ^ 0x4e015e5eedULL));
    c->per_pass = (o->harmful->n + c->pool.k - 1) / c->pool.k;
    c->cap_h = (size_t)c->pool.k * c->pool.max_T;
    size_t nc = c->cap_h * c->C;
    c->keep_h = xmalloc(c->cap_h * sizeof(int));
    c->tgt_h = xmalloc(c->cap_h * sizeof(int));
    grow(&c->keep_s, &c->tgt_s, &c->cap_s, (size_t)(B > 0 ? B : 1) * (T > 0 ? T : 1));
    if (o->beta != 0) {
        c->feat = buffers(c->L, 0, nc);
        c->noise = xmalloc(nc * sizeof(float));
        c->mgrad = xmalloc(nc * sizeof(float));
    }
    if (o->alpha != 0 && o->layer_ce) {
        c->rgrad = buffers(c->L, 1, nc);
        c->xn = xmalloc(nc * sizeof(float));
        c->dxn = xmalloc(nc * sizeof(float));
        c->dtop = xmalloc(nc * sizeof(float));
        c->rstd = xmalloc(c->cap_h * sizeof(float));
    }
    s->name = "repnoise";
    s->grad = repnoise_grad;
    s->begin_step = repnoise_begin;
    s->release = repnoise_release;
    s->max_T = c->pool.max_T;
    s->max_B = c->pool.k;
    s->ctx = c;
    return s;
}

RepNoiseTerms repnoise_terms(const StepMethod *s) { return ((const RepNoiseCtx *)s->ctx)->last; }

const Batch *repnoise_harmful_batch(const StepMethod *s) { return &((const RepNoiseCtx *)s->ctx)->pool.b; }

void repnoise_noise(const StepMethod *s, int l, float *out) {
    const RepNoiseCtx *c = s->ctx;
    fill_noise(c, l, &c->pool.b, out);
}
