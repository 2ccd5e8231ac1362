// Inference with a key/value cache (llama2.c's run.c, batched over the tokens of one
// call): a prompt is processed in one call, then one token per call. The layers are the
// training ones (model/layer.c) in their cached form: each row attends to its cache.
#include <stdlib.h>
#include <string.h>

#include "model/layer.h"

// Buffers for n rows of one call; no dropout masks, no attention probabilities (the
// cached attention keeps its own scratch).
static void rows_alloc(RowActs *r, const Config *c, int n) {
    size_t C = c->dim, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim,
           F = c->hidden_dim;
    LayerActs *a = &r->layer;
    memset(r, 0, sizeof *r);
    r->n_max = n;
    r->x = xmalloc(n * C * sizeof(float));
    r->xf = xmalloc(n * C * sizeof(float));
    a->xn1 = xmalloc(n * C * sizeof(float));
    a->q = xmalloc(n * Q * sizeof(float));
    a->k = xmalloc(n * KV * sizeof(float));
    a->v = xmalloc(n * KV * sizeof(float));
    a->ao = xmalloc(n * Q * sizeof(float));
    a->x2 = xmalloc(n * C * sizeof(float));
    a->xn2 = xmalloc(n * C * sizeof(float));
    a->g = xmalloc(n * F * sizeof(float));
    a->u = xmalloc(n * F * sizeof(float));
    a->a = xmalloc(n * F * sizeof(float));
    a->x3 = c->norm_after || c->sandwich_norms ? xmalloc(n * C * sizeof(float)) : NULL;
    a->h = c->sandwich_norms ? xmalloc(n * C * sizeof(float)) : NULL;
}

// LoRA A x of each projection in turn: one buffer of n_max x rank, sized for the first
// adapter of a larger rank that runs through these rows.
static void rows_fit_rank(RowActs *r, const Lora *lora) {
    if (!lora || lora->rank <= r->rank_cap) return;
    free(r->layer.lora_ax[0]);
    r->rank_cap = lora->rank;
    r->layer.lora_ax[0] = xmalloc((size_t)r->n_max * r->rank_cap * sizeof(float));
    for (int p = 1; p < N_PROJ; p++) r->layer.lora_ax[p] = r->layer.lora_ax[0];
}

static void rows_free(RowActs *r) {
    LayerActs *a = &r->layer;
    free(r->x); free(r->xf);
    free(a->xn1); free(a->q); free(a->k); free(a->v); free(a->ao); free(a->x2); free(a->xn2);
    free(a->g); free(a->u); free(a->a); free(a->x3); free(a->h); free(a->lora_ax[0]);
}

KVCache *kvcache_new(const Model *m, int max_T, int n_max) {
    const Config *c = &m->cfg;
    if (m->pos_embed && max_T > c->max_seq_len) max_T = c->max_seq_len;  // OPT's learned positions end there
    KVCache *k = xcalloc(1, sizeof *k);
    size_t KV = (size_t)c->n_kv_heads * c->head_dim;
    k->max_T = max_T;
    k->n_max = n_max;
    k->k = xmalloc((size_t)c->n_layers * max_T * KV * sizeof(float));
    k->v = xmalloc((size_t)c->n_layers * max_T * KV * sizeof(float));
    k->att = xmalloc((size_t)c->n_heads * max_T * sizeof(float));
    k->logits = xmalloc((size_t)c->vocab_size * sizeof(float));
    rows_alloc(&k->rows, c, n_max);
    return k;
}

void kvcache_free(KVCache *k) {
    if (!k) return;
    free(k->k); free(k->v); free(k->att); free(k->logits);
    rows_free(&k->rows);
    free(k);
}

// The layers over n rows: row i is token tokens[i] of the sequence held in cache cs[i], at
// position pos[i] (a cache's rows in this call are consecutive positions, in order). The
// final hidden states are left in r->x. Elementwise kernels run row by row, so a row's
// arithmetic does not depend on which rows share the call: one token alone and the same
// token in a batch agree bit for bit.
static void forward_rows(const Model *m, const Lora *lora, RowActs *r, KVCache *const *cs, const int *pos,
                         const int *tokens, int n) {
    rows_fit_rank(r, lora);
    embed_rows(m, tokens, pos, n, r->x, r->layer.xn1);  // xn1 is free until the first layer: the bf16 widening buffer
    LayerRows rows = {.N = n, .pos = pos, .caches = cs};
    for (int l = 0; l < m->cfg.n_layers; l++) layer_forward(m, lora, l, &rows, &r->layer, r->x, r->x);
}

void model_forward_cached(const Model *m, const Lora *lora, KVCache *kc, const int *tokens, int n) {
    int C = m->cfg.dim, pos[n];
    KVCache *cs[n];
    for (int i = 0; i < n; i++) pos[i] = kc->len + i, cs[i] = kc;
    forward_rows(m, lora, &kc->rows, cs, pos, tokens, n);
    kc->len += n;
    // logits of the last token only
    final_norm_forward(m, kc->rows.xf, NULL, kc->rows.x + (size_t)(n - 1) * C, 1);
    model_head(m, kc->rows.xf, 1, kc->logits, 1);
}

// ---- several sequences, one new token each -----------------------------------------
DecodeBatch *decode_batch_new(const Model *m, int S) {
    if (S > MATVEC_MAX_ROWS) S = MATVEC_MAX_ROWS;
    DecodeBatch *d = xcalloc(1, sizeof *d);
    d->S = S;
    rows_alloc(&d->rows, &m->cfg, S);
    d->logits = xmalloc((size_t)S * m->cfg.vocab_size * sizeof(float));
    return d;
}

void decode_batch_free(DecodeBatch *d) {
    if (!d) return;
    rows_free(&d->rows);
    free(d->logits);
    free(d);
}

// The weights are read once for all S rows (the matrix-vector path); each row's result
// is what model_forward_cached gives for that token alone.
void model_decode_batch(const Model *m, const Lora *lora, DecodeBatch *d, KVCache *const *cs, const int *tokens,
                        int S) {
    int V = m->cfg.vocab_size, pos[MATVEC_MAX_ROWS] = {0};
    RowActs *r = &d->rows;
    for (int s = 0; s < S; s++) pos[s] = cs[s]->len;
    forward_rows(m, lora, r, cs, pos, tokens, S);
    final_norm_forward(m, r->xf, NULL, r->x, S);
    model_head(m, r->xf, S, d->logits, 1);
    for (int s = 0; s < S; s++) {
        memcpy(cs[s]->logits, d->logits + (size_t)s * V, V * sizeof(float));
        cs[s]->len++;
    }
}
