// Inference with a key/value cache (llama2.c's run.c, batched over the tokens of one
// call): a prompt is processed in one call, then one token per call.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

KVCache *kvcache_new(const Model *m, int max_T, int n_max) {
    const Config *c = &m->cfg;
    KVCache *k = xcalloc(1, sizeof *k);
    size_t C = c->dim, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim,
           F = c->hidden_dim, n = n_max;
    k->max_T = max_T;
    k->n_max = n_max;
    k->k = xmalloc((size_t)c->n_layers * max_T * KV * sizeof(float));
    k->v = xmalloc((size_t)c->n_layers * max_T * KV * sizeof(float));
    k->x = xmalloc(n * C * sizeof(float));
    k->xn = xmalloc(n * C * sizeof(float));
    k->q = xmalloc(n * Q * sizeof(float));
    k->ao = xmalloc(n * Q * sizeof(float));
    k->h = xmalloc(n * (C > Q ? C : Q) * sizeof(float));
    k->g = xmalloc(n * F * sizeof(float));
    k->u = xmalloc(n * F * sizeof(float));
    k->tmp = xmalloc(n * (KV > F ? KV : F) * sizeof(float));  // LoRA rank scratch (rank <= max(KV, F))
    k->logits = xmalloc((size_t)c->vocab_size * sizeof(float));
    k->att = xmalloc((size_t)c->n_heads * max_T * sizeof(float));
    return k;
}

void kvcache_free(KVCache *k) {
    if (!k) return;
    free(k->k); free(k->v); free(k->x); free(k->xn); free(k->q); free(k->ao); free(k->h); free(k->g); free(k->u);
    free(k->tmp); free(k->logits); free(k->att);
    free(k);
}

// y = W x (+ bias) + s * B (A x): eval-time projection (no dropout).
static void proj(const Model *m, const Lora *lora, int l, int p, const float *x, float *y, float *tmp, int n) {
    const LayerWeights *L = &m->layers[l];
    matmul_forward(y, x, &L->w[p], p < 3 ? L->bias[p] : NULL, n, 0);
    if (!lora || !lora->A[l * N_PROJ + p]) return;
    // As matrices, so a single token takes the matrix-vector path, not a GEMM call.
    int r = lora->rank;
    Mat A = {MAT_F32, lora->A[l * N_PROJ + p], r, L->w[p].cols}, B = {MAT_F32, lora->B[l * N_PROJ + p], L->w[p].rows, r};
    matmul_forward(tmp, x, &A, NULL, n, 0);
    for (int i = 0; i < n * r; i++) tmp[i] *= lora_scale(lora);
    matmul_forward(y, tmp, &B, NULL, n, 1);
}

// One query row q (NH*HD) against the first len positions of a layer's cache -> out
// (NH*HD); att is scratch of NH rows of stride T.
static void attend(const Config *c, const float *q, const float *kcache, const float *vcache, int len, float *att_buf,
                   int T, float *out) {
    int HD = c->head_dim, NH = c->n_heads, KV = c->n_kv_heads * HD, group = NH / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)HD);
#pragma omp parallel for schedule(static)
    for (int h = 0; h < NH; h++) {
        const float *qh = q + h * HD;
        float *att = att_buf + (size_t)h * T;
        int kh = h / group;
        float mx = -INFINITY;
        for (int t = 0; t < len; t++) {
            const float *kt = kcache + (size_t)t * KV + kh * HD;
            float d = 0.0f;
            for (int j = 0; j < HD; j++) d += qh[j] * kt[j];
            att[t] = d * scale;
            mx = att[t] > mx ? att[t] : mx;
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int t = 0; t < len; t++) { att[t] = expf(att[t] - mx); sum += att[t]; }
        float *o = out + h * HD;
        memset(o, 0, HD * sizeof(float));
        for (int t = 0; t < len; t++) {
            const float *vt = vcache + (size_t)t * KV + kh * HD;
            float p = att[t] / sum;
            for (int j = 0; j < HD; j++) o[j] += p * vt[j];
        }
    }
}

// The layers over n rows: row i is token tokens[i] of the sequence held in cache cs[i], at
// position pos[i] (a cache's rows in this call are consecutive positions, in order). Each
// row's key and value go into its cache before any row attends, so a prompt's rows see
// each other. b holds the row buffers (n <= b->n_max); the final hidden states are left in
// b->x. Elementwise kernels run row by row, so a row's arithmetic does not depend on which
// rows share the call: one token alone and the same token in a batch agree bit for bit.
static void forward_rows(const Model *m, const Lora *lora, KVCache *b, KVCache *const *cs, const int *pos,
                         const int *tokens, int n) {
    const Config *c = &m->cfg;
    int C = c->dim, HD = c->head_dim, NH = c->n_heads, NKV = c->n_kv_heads, F = c->hidden_dim;
    int Q = NH * HD, KV = NKV * HD;
    for (int i = 0; i < n; i++) memcpy(b->x + (size_t)i * C, mat_row(&m->embed, tokens[i], b->h), C * sizeof(float));
    float *kn = b->h, *vn = b->ao, *lt = b->tmp;  // this call's keys and values; LoRA rank scratch
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        rmsnorm_forward(b->xn, NULL, b->x, L->attn_norm, n, C, c->norm_eps);
        proj(m, lora, l, P_Q, b->xn, b->q, lt, n);
        proj(m, lora, l, P_K, b->xn, kn, lt, n);
        proj(m, lora, l, P_V, b->xn, vn, lt, n);
        rope_forward(b->q, pos, m->rope_inv_freq, n, NH, HD);
        rope_forward(kn, pos, m->rope_inv_freq, n, NKV, HD);
        for (int i = 0; i < n; i++) {
            size_t at = ((size_t)l * cs[i]->max_T + pos[i]) * KV;
            memcpy(cs[i]->k + at, kn + (size_t)i * KV, KV * sizeof(float));
            memcpy(cs[i]->v + at, vn + (size_t)i * KV, KV * sizeof(float));
        }
        for (int i = 0; i < n; i++) {
            const KVCache *kc = cs[i];
            size_t at = (size_t)l * kc->max_T * KV;
            attend(c, b->q + (size_t)i * Q, kc->k + at, kc->v + at, pos[i] + 1, kc->att, kc->max_T, b->ao + (size_t)i * Q);
        }
        proj(m, lora, l, P_O, b->ao, b->h, lt, n);
        for (int i = 0; i < n; i++) vec_add(b->x + (size_t)i * C, b->h + (size_t)i * C, C);
        rmsnorm_forward(b->xn, NULL, b->x, L->mlp_norm, n, C, c->norm_eps);
        proj(m, lora, l, P_GATE, b->xn, b->g, lt, n);
        proj(m, lora, l, P_UP, b->xn, b->u, lt, n);
        for (int i = 0; i < n; i++) swiglu_forward(b->g + (size_t)i * F, b->g + (size_t)i * F, b->u + (size_t)i * F, F);
        proj(m, lora, l, P_DOWN, b->g, b->h, lt, n);
        for (int i = 0; i < n; i++) vec_add(b->x + (size_t)i * C, b->h + (size_t)i * C, C);
    }
}

void model_forward_cached(const Model *m, const Lora *lora, KVCache *kc, const int *tokens, int n) {
    int C = m->cfg.dim, pos[n];
    KVCache *cs[n];
    for (int i = 0; i < n; i++) pos[i] = kc->len + i, cs[i] = kc;
    forward_rows(m, lora, kc, cs, pos, tokens, n);
    kc->len += n;
    // logits of the last token only
    rmsnorm_forward(kc->xn, NULL, kc->x + (size_t)(n - 1) * C, m->final_norm, 1, C, m->cfg.norm_eps);
    matmul_forward(kc->logits, kc->xn, &m->lm_head, NULL, 1, 0);
}

// ---- several sequences, one new token each -----------------------------------------
DecodeBatch *decode_batch_new(const Model *m, int S) {
    if (S > MATVEC_MAX_ROWS) S = MATVEC_MAX_ROWS;
    DecodeBatch *d = xcalloc(1, sizeof *d);
    d->S = S;
    d->buf = kvcache_new(m, 1, S);
    d->logits = xmalloc((size_t)S * m->cfg.vocab_size * sizeof(float));
    return d;
}

void decode_batch_free(DecodeBatch *d) {
    if (!d) return;
    kvcache_free(d->buf);
    free(d->logits);
    free(d);
}

// The weights are read once for all S rows (the matrix-vector path); each row's result
// is what model_forward_cached gives for that token alone.
void model_decode_batch(const Model *m, const Lora *lora, DecodeBatch *d, KVCache *const *cs, const int *tokens,
                        int S) {
    int C = m->cfg.dim, V = m->cfg.vocab_size, pos[MATVEC_MAX_ROWS] = {0};
    KVCache *b = d->buf;
    for (int s = 0; s < S; s++) pos[s] = cs[s]->len;
    forward_rows(m, lora, b, cs, pos, tokens, S);
    rmsnorm_forward(b->xn, NULL, b->x, m->final_norm, S, C, m->cfg.norm_eps);
    matmul_forward(d->logits, b->xn, &m->lm_head, NULL, S, 0);
    for (int s = 0; s < S; s++) {
        memcpy(cs[s]->logits, d->logits + (size_t)s * V, V * sizeof(float));
        cs[s]->len++;
    }
}
