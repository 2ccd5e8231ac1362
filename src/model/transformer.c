// The transformer's training forward and backward over a Workspace (llm.c style:
// every buffer planned once for (B, T); backward accumulates): embeddings, the layers
// (model/layer.c) over B*T tokens, the final norm and the fused LM head + loss.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layer.h"

// Rows of logits alive at once in the fused LM head + loss: about 64 MB of them (512 rows
// of a 32000-word vocabulary, 341 of SmolLM's 49152; 128 at least, the workspace's rows
// at most). Each chunk streams the whole (V, C) head matrix through the cache, so larger
// chunks run faster: SmolLM's logits product ran at 157-160 GFLOP/s in 128-row chunks and
// 175-178 in 512-row ones, its input gradient at 188 and 207-210 (docs/performance.md).
static int lm_chunk_rows(int V, size_t N) {
    size_t rows = ((size_t)64 << 20) / ((size_t)V * sizeof(float));
    rows = rows < 128 ? 128 : rows > 512 ? 512 : rows;
    return (int)(rows < N ? rows : N);
}

// Places one layer's activations for B x T tokens: allocated (base NULL), or as view j of
// a slot `base` allocated for more tokens (layers_per_slot says how many views fit).
static void acts_place(LayerActs *a, const LayerActs *base, size_t j, const Config *c, const Lora *lora, int B, int T,
                       size_t *bytes) {
    size_t N = (size_t)B * T, C = c->dim, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim,
           F = c->hidden_dim;
#define AL(f, n) (base ? (void)(a->f = base->f ? base->f + j * (n) : NULL) \
                       : (void)(a->f = xmalloc((n) * sizeof(float)), *bytes += (n) * sizeof(float)))
    AL(xn1, N * C); AL(rstd1, N); AL(q, N * Q); AL(k, N * KV); AL(v, N * KV);
    AL(att, (size_t)B * c->n_heads * T * T); AL(ao, N * Q); AL(x2, N * C); AL(xn2, N * C);
    AL(rstd2, N); AL(g, c->opt ? 0 : N * F); AL(u, N * F); AL(a, N * F);
    a->x3 = a->h = a->rstd3 = a->rstd4 = NULL;
    if (c->norm_after || c->sandwich_norms) AL(x3, N * C);
    if (c->sandwich_norms) { AL(h, N * C); AL(rstd3, N); AL(rstd4, N); }
    for (int p = 0; p < N_PROJ; p++) {
        a->lora_ax[p] = NULL;
        a->drop_bits[p] = NULL;
        if (!lora || !(lora->targets & (1 << p))) continue;
        AL(lora_ax[p], N * lora->rank);
        if (lora->dropout > 0) {
            int out, in;
            proj_dims(c, p, &out, &in);
            size_t nb = (N * in + 7) / 8;
            if (base) a->drop_bits[p] = base->drop_bits[p] + j * nb;
            else a->drop_bits[p] = xmalloc(nb), *bytes += nb;
        }
    }
#undef AL
}

static void acts_alloc(LayerActs *a, const Config *c, const Lora *lora, int B, int T, size_t *bytes) {
    acts_place(a, NULL, 0, c, lora, B, T, bytes);
}

int workspace_layers_per_slot(const Model *m, const Lora *lora, const Workspace *w, int B, int T) {
    long long N = (long long)B * T, capB = w->capN / w->capT;
    if (N < 1 || N > w->capN || T > w->capT) return 0;
    long long per = w->capN / N, att = capB * w->capT * w->capT / ((long long)B * T * T);
    if (att < per) per = att;
    for (int p = 0; p < N_PROJ && lora && lora->dropout > 0; p++) {  // the dropout bits, in whole bytes
        if (!(lora->targets & (1 << p))) continue;
        int out, in;
        proj_dims(&m->cfg, p, &out, &in);
        long long have = ((long long)w->capN * in + 7) / 8, need = (N * in + 7) / 8;
        if (have / need < per) per = have / need;
    }
    return per > m->cfg.n_layers ? m->cfg.n_layers : (int)per;
}

static void acts_free(LayerActs *a) {
    free(a->xn1); free(a->rstd1); free(a->q); free(a->k); free(a->v); free(a->att); free(a->ao);
    free(a->x2); free(a->xn2); free(a->rstd2); free(a->g); free(a->u); free(a->a); free(a->x3);
    free(a->h); free(a->rstd3); free(a->rstd4);
    for (int p = 0; p < N_PROJ; p++) { free(a->lora_ax[p]); free(a->drop_bits[p]); }
}

Workspace *workspace_new(const Model *m, const Lora *lora, int B, int T, int full_ft_mask) {
    const Config *c = &m->cfg;
    Workspace *w = xcalloc(1, sizeof *w);
    w->B = B; w->T = T; w->N = B * T; w->capN = B * T; w->capT = T;
    size_t N = w->N, C = c->dim, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim,
           F = c->hidden_dim, L = c->n_layers;
    size_t *by = &w->bytes;
#define AL(ptr, n) (ptr = xcalloc((n), sizeof(float)), *by += (n) * sizeof(float))
    AL(w->res, (L + 1) * N * C);
    AL(w->xf, N * C); AL(w->rstdf, N); AL(w->dxf, N * C);
    AL(w->dres, N * C); AL(w->dx2, N * C); AL(w->dxn, N * C); AL(w->da, N * F);
    AL(w->dq, N * Q); AL(w->dk, N * KV); AL(w->dv, N * KV); AL(w->dao, N * Q); AL(w->dg, N * F); AL(w->du, N * F);
    AL(w->tmp_out, N * C);
    AL(w->drank, N * (lora ? lora->rank : 1));
    w->lm_chunk = lm_chunk_rows(c->vocab_size, N);
    AL(w->lmbuf, (size_t)w->lm_chunk * c->vocab_size);
    if (lora) AL(w->lora_grad, lora->n_params);
    w->full_grad = xcalloc(L * N_PROJ, sizeof(float *));
    w->n_full_grad = (int)(L * N_PROJ);
    for (size_t l = 0; l < L; l++)
        for (int p = 0; p < N_PROJ; p++)
            if (full_ft_mask & (1 << p)) AL(w->full_grad[l * N_PROJ + p], (size_t)m->layers[l].w[p].rows * m->layers[l].w[p].cols);
    if (full_ft_mask & FULL_EMBED_NORMS) {
        AL(w->embed_grad, (size_t)c->vocab_size * C);
        if (c->tie_embeddings) w->head_grad = w->embed_grad;
        else AL(w->head_grad, (size_t)c->vocab_size * C);
        AL(w->norm_grad, (2 * L + 1) * C);
    }
#undef AL
    w->pos = xmalloc(N * sizeof(int));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) w->pos[b * T + t] = t;
    w->pool = xcalloc(L, sizeof(LayerActs *));
    w->slot_of = xmalloc(L * sizeof(int));
    w->saved = xcalloc(L, sizeof(LayerActs));
    acts_alloc(&w->scratch, c, lora, B, T, by);
    return w;
}

void workspace_free(Workspace *w) {
    if (!w) return;
    free(w->res); free(w->xf); free(w->rstdf); free(w->dxf); free(w->dres); free(w->dx2); free(w->dxn); free(w->da);
    free(w->dq); free(w->dk); free(w->dv); free(w->dao); free(w->dg); free(w->du);
    free(w->tmp_out); free(w->drank); free(w->lmbuf); free(w->lora_grad);
    if (w->full_grad)
        for (int i = 0; i < w->n_full_grad; i++) free(w->full_grad[i]);
    free(w->full_grad);
    if (w->head_grad != w->embed_grad) free(w->head_grad);
    free(w->embed_grad);
    free(w->norm_grad);
    free(w->pos);
    for (int i = 0; i < w->n_pool; i++) { acts_free(w->pool[i]); free(w->pool[i]); }
    free(w->pool); free(w->slot_of); free(w->saved);
    acts_free(&w->scratch);
    free(w);
}

static LayerActs *slot(Workspace *w, const Model *m, const Lora *lora, int k) {
    while (w->n_pool <= k) {
        LayerActs *a = xcalloc(1, sizeof *a);
        acts_alloc(a, &m->cfg, lora, w->capN / w->capT, w->capT, &w->bytes);
        w->pool[w->n_pool++] = a;
    }
    return w->pool[k];
}

int workspace_check(const Workspace *w, Err *e) { return w->refused[0] ? err_set(e, "%s", w->refused) : 0; }

// Adopts the batch's shape (dynamic padding: each batch is as long as its longest row);
// -1 when it does not fit the workspace (the caller planned it: a bug to report, not to run).
static int set_batch(const Model *m, Workspace *w, const Batch *b) {
    if ((long long)b->B * b->T > w->capN || b->T > w->capT) {
        snprintf(w->refused, sizeof w->refused,
                 "internal error: a batch of %d x %d tokens exceeds the workspace planned for %d tokens of rows of %d",
                 b->B, b->T, w->capN, w->capT);
        return -1;
    }
    if (m->pos_embed && b->T > m->cfg.max_seq_len) {  // learned positions (OPT) end there
        snprintf(w->refused, sizeof w->refused, "a row of %d tokens is longer than the model's max_position_embeddings %d",
                 b->T, m->cfg.max_seq_len);
        return -1;
    }
    if (w->B != b->B || w->T != b->T) {
        w->B = b->B; w->T = b->T; w->N = b->B * b->T;
        for (int i = 0; i < b->B; i++)
            for (int t = 0; t < b->T; t++) w->pos[i * b->T + t] = t;
    }
    w->batch = *b;
    return 0;
}

// The layer call over the workspace's batch (B sequences of T rows).
static LayerRows batch_rows(const Model *m, const Workspace *w, const float *perturb, float *attn_out, float *mlp_out) {
    const Config *c = &m->cfg;
    return (LayerRows){.N = w->N, .pos = w->pos, .shape = {w->B, w->T, c->n_heads, c->n_kv_heads, c->head_dim},
                       .mask = w->batch.mask, .train = w->train, .dropout_seed = w->dropout_seed,
                       .perturb = perturb, .attn_out = attn_out, .mlp_out = mlp_out};
}

int model_layer_forward(const Model *m, const Lora *lora, Workspace *w, const Batch *b, int l, const float *x,
                        float *out) {
    if (set_batch(m, w, b)) return -1;
    w->train = 0;
    LayerRows r = batch_rows(m, w, NULL, NULL, NULL);
    layer_forward(m, lora, l, &r, &w->scratch, x, out);
    return 0;
}

void model_embed(const Model *m, const int *tokens, int n, float *out) {
    float *buf = xmalloc((size_t)m->cfg.dim * sizeof(float));
    embed_rows(m, tokens, NULL, n, out, buf);
    free(buf);
}

void final_norm_forward(const Model *m, float *out, float *rstd, const float *x, int N) {
    if (m->final_norm) norm_forward(&m->cfg, out, rstd, x, m->final_norm, m->final_norm_b, N);
    else memcpy(out, x, (size_t)N * m->cfg.dim * sizeof(float));
}

float model_forward(const Model *m, const Lora *lora, Workspace *w, const Batch *b, const ForwardOpts *o) {
    const Config *c = &m->cfg;
    int N = w->N, C = c->dim, L = c->n_layers;
    ForwardOpts def = {0};
    if (!o) o = &def;
    if (set_batch(m, w, b)) {
        w->loss_count = 0;  // no backward pass either
        w->loss = NAN;
        return NAN;
    }
    N = w->N;
    w->train = o->train;
    w->dropout_seed = o->dropout_seed;
    w->perturb = o->perturb;
    embed_rows(m, b->tokens, w->pos, N, w->res, w->tmp_out);
    int used = 0, per = workspace_layers_per_slot(m, lora, w, w->B, w->T);
    for (int l = 0; l < L; l++) {
        int save = o->train && l >= o->first_layer_needed && (!o->save_mask || o->save_mask[l]);
        w->slot_of[l] = save ? used / per : -1;
        LayerActs *a = &w->scratch;
        if (save) {  // view used % per of the slot
            a = &w->saved[l];
            acts_place(a, slot(w, m, lora, w->slot_of[l]), (size_t)(used++ % per), c, lora, w->B, w->T, NULL);
        }
        LayerRows r = batch_rows(m, w, w->perturb ? w->perturb[l] : NULL, o->attn_out ? o->attn_out[l] : NULL,
                                 o->mlp_out ? o->mlp_out[l] : NULL);
        layer_forward(m, lora, l, &r, a, w->res + (size_t)l * N * C, w->res + (size_t)(l + 1) * N * C);
    }
    final_norm_forward(m, w->xf, w->rstdf, w->res + (size_t)L * N * C, N);
    int count = 0;
    for (int i = 0; i < N; i++) count += b->targets[i] >= 0;
    w->loss_count = (float)count;
    w->loss = 0.0;
    if (o->train) memset(w->dxf, 0, (size_t)N * C * sizeof(float));  // no target: a feature loss may still need a backward
    if (!count) return 0.0f;
    float scale = (o->loss_scale != 0.0f ? o->loss_scale : 1.0f) / (float)count;
    int cnt;
    double sum = lm_head_ce(w->xf, &m->lm_head, b->targets, N, C, c->vocab_size, scale, c->final_softcap,
                            o->train ? w->dxf : NULL,
                            o->train ? w->head_grad : NULL, &cnt, w->lmbuf, w->lm_chunk);
    w->loss = sum / count;
    return (float)w->loss;
}

void model_head(const Model *m, const float *xf, int N, float *logits, int infer) {
    (infer ? matmul_forward_infer : matmul_forward)(logits, xf, &m->lm_head, NULL, N, 0);
    if (m->cfg.final_softcap > 0.0f) softcap_forward(logits, m->cfg.final_softcap, (size_t)N * m->cfg.vocab_size);
}

double model_lens_ce(const Model *m, Workspace *w, const float *x, const int *targets, int N, float grad_scale,
                     float *dx, float *xn, float *dxn, float *rstd, int *count) {
    const Config *c = &m->cfg;
    int C = c->dim;
    final_norm_forward(m, xn, rstd, x, N);
    if (dx) memset(dxn, 0, (size_t)N * C * sizeof(float));
    double sum = lm_head_ce(xn, &m->lm_head, targets, N, C, c->vocab_size, grad_scale, c->final_softcap,
                            dx ? dxn : NULL,
                            dx ? w->head_grad : NULL, count, w->lmbuf, w->lm_chunk);
    if (!dx) return sum;
    if (m->final_norm)
        norm_backward(c, dx, w->norm_grad ? w->norm_grad + (size_t)2 * c->n_layers * C : NULL, dxn, x, m->final_norm,
                      rstd, N);
    else
        vec_add(dx, dxn, (size_t)N * C);
    return sum;
}

void model_logits(const Model *m, const Workspace *w, float *logits) { model_head(m, w->xf, w->N, logits, 0); }

void model_backward(const Model *m, const Lora *lora, Workspace *w, const BackwardOpts *o) {
    const Config *c = &m->cfg;
    int N = w->N, C = c->dim, L = c->n_layers;
    size_t NC = (size_t)N * C;
    BackwardOpts def = {.param_grads = 1};
    if (!o) o = &def;
    if (!w->loss_count && !o->mlp_grad && !o->res_grad) return;
    // d loss / d res[L] through the final norm
    float *ng = o->param_grads ? w->norm_grad : NULL;  // norm weight grads (full training only)
    if (m->final_norm) {
        memset(w->dres, 0, NC * sizeof(float));
        norm_backward(c, w->dres, ng ? ng + (size_t)2 * L * C : NULL, w->dxf, w->res + (size_t)L * NC, m->final_norm,
                      w->rstdf, N);
    } else {
        memcpy(w->dres, w->dxf, NC * sizeof(float));
    }
    w->layers_backward = 0;
    for (int l = L - 1; l >= o->stop_layer && l >= 0; l--) {
        w->layers_backward++;
        int gm = !o->param_grads ? 0 : o->layer_trainable ? o->layer_trainable[l] : PROJ_ALL;  // trained projections
        const float *x = w->res + (size_t)l * NC;
        LayerActs *a = w->slot_of[l] >= 0 ? &w->saved[l] : &w->scratch;
        if (w->slot_of[l] < 0) {  // recompute (checkpoint)
            LayerRows r = batch_rows(m, w, w->perturb ? w->perturb[l] : NULL, NULL, NULL);
            r.recompute = 1;
            layer_forward(m, lora, l, &r, a, x, w->tmp_out);
        }
        int need_dx = l > o->stop_layer || (l == 0 && ng && w->embed_grad);
        layer_backward(m, lora, w, l, a, x, o, gm, need_dx);
        if (!need_dx) break;
        if (o->res_grad && o->res_grad[l]) vec_add(w->dres, o->res_grad[l], NC);
    }
    if (ng && w->embed_grad && o->stop_layer == 0)  // res[0] = embedding rows: scatter-add
        for (int i = 0; i < N; i++)  // res[0] = embed_scale * row (Gemma), else the row
            vec_axpy(w->embed_grad + (size_t)w->batch.tokens[i] * C, m->cfg.gemma ? m->embed_scale : 1.0f,
                     w->dres + (size_t)i * C, C);
}
