// The transformer's training forward and backward over a Workspace (llm.c style:
// every buffer planned once for (B, T); backward accumulates).
//
// Layer l (HF LlamaDecoderLayer), N = B*T tokens:
//   xn1 = rmsnorm(x);  q,k,v = proj(xn1);  rope(q,k);  ao = attn(q,k,v)
//   h   = o_proj(ao) (+ perturbation: Vaccine);  x2 = x + h
//   xn2 = rmsnorm(x2); a = silu(gate(xn2)) * up(xn2);  x' = x2 + down(a)
// where proj(x) = W x (+ bias) + (alpha/r) B A dropout(x) for LoRA targets.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/rng.h"

#define LM_CHUNK 128  // rows of logits alive at once in the fused LM head + loss

static void acts_alloc(LayerActs *a, const Config *c, const Lora *lora, int B, int T, size_t *bytes) {
    size_t N = (size_t)B * T, C = c->dim, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim,
           F = c->hidden_dim;
#define AL(ptr, n) (ptr = xmalloc((n) * sizeof(float)), *bytes += (n) * sizeof(float))
    AL(a->xn1, N * C); AL(a->rstd1, N); AL(a->q, N * Q); AL(a->k, N * KV); AL(a->v, N * KV);
    AL(a->att, (size_t)B * c->n_heads * T * T); AL(a->ao, N * Q); AL(a->x2, N * C); AL(a->xn2, N * C);
    AL(a->rstd2, N); AL(a->g, N * F); AL(a->u, N * F); AL(a->a, N * F);
    for (int p = 0; p < N_PROJ; p++) {
        a->lora_ax[p] = NULL;
        a->drop_bits[p] = NULL;
        if (!lora || !(lora->targets & (1 << p))) continue;
        AL(a->lora_ax[p], N * lora->rank);
        if (lora->dropout > 0) {
            int out, in;
            proj_dims(c, p, &out, &in);
            a->drop_bits[p] = xmalloc((N * in + 7) / 8);
            *bytes += (N * in + 7) / 8;
        }
    }
#undef AL
}

static void acts_free(LayerActs *a) {
    free(a->xn1); free(a->rstd1); free(a->q); free(a->k); free(a->v); free(a->att); free(a->ao);
    free(a->x2); free(a->xn2); free(a->rstd2); free(a->g); free(a->u); free(a->a);
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
    w->lm_chunk = LM_CHUNK;
    AL(w->lmbuf, (size_t)LM_CHUNK * c->vocab_size);
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
    free(w->pool); free(w->slot_of);
    acts_free(&w->scratch);
    free(w);
}

// ---- LoRA dropout: each targeted projection's keep/drop mask is drawn from a
// counter-based hash of (seed, layer, projection, element) into a bit mask kept with
// the layer's activations (N*in/8 bytes), so the backward pass applies the very same
// mask without drawing it again (a recomputed forward draws it again, identically). Each 32-bit hash gives
// the draws of 2 elements (16 bits each): the drop probability is quantised to 1/65536.
static uint64_t mask_seed(uint64_t seed, int l, int p) { return hash64(seed ^ hash64((uint64_t)(l * N_PROJ + p) + 1)); }

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16; h *= 0x85ebca6bu;
    h ^= h >> 13; h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static void dropout_mask(uint8_t *bits, size_t n, float pdrop, uint64_t key) {
    uint32_t thr = (uint32_t)(pdrop * 65536.0f + 0.5f), k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    size_t nb = (n + 7) / 8;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t byte = 0; byte < nb; byte++) {
        uint32_t b = 0;
        for (uint32_t j = 0; j < 8; j += 2) {
            uint32_t h = fmix32(((uint32_t)(byte * 4 + j / 2) ^ k0) * 0x9e3779b1u + k1);
            b |= (uint32_t)((h & 0xffff) >= thr) << j | (uint32_t)((h >> 16) >= thr) << (j + 1);
        }
        bits[byte] = (uint8_t)b;
    }
}

// y (N, out) = proj_p(x) for layer l; keeps A x in ax for the backward pass.
static void proj_forward(const Model *m, const Lora *lora, Workspace *w, int l, int p, const float *x, float *y,
                         LayerActs *a, int N) {
    float *ax = a->lora_ax[p];
    const LayerWeights *L = &m->layers[l];
    const Mat *W = &L->w[p];
    matmul_forward(y, x, W, p < 3 ? L->bias[p] : NULL, N, 0);
    if (!lora || !lora->A[l * N_PROJ + p]) return;
    if (w && w->train && lora->dropout > 0) {
        dropout_mask(a->drop_bits[p], (size_t)N * W->cols, lora->dropout, mask_seed(w->dropout_seed, l, p));
        lora_down_forward(ax, x, a->drop_bits[p], lora->dropout, lora->A[l * N_PROJ + p], N, W->cols, lora->rank);
    } else {
        gemm_nt(ax, x, lora->A[l * N_PROJ + p], N, lora->rank, W->cols, 1.0f, 0.0f);
    }
    gemm_nt(y, ax, lora->B[l * N_PROJ + p], N, W->rows, lora->rank, lora_scale(lora), 1.0f);
}

static size_t lora_offset(const Lora *lora, const float *ptr) { return (size_t)(ptr - lora->params); }

// Backward of proj_p: din (may be NULL) += d/dx; parameter gradients when grads = 1.
static void proj_backward(const Model *m, const Lora *lora, Workspace *w, int l, int p, const float *x,
                          const float *dy, const LayerActs *a, float *din, int grads, int N) {
    const float *ax = a->lora_ax[p];
    const Mat *W = &m->layers[l].w[p];
    int OUT = W->rows, IN = W->cols;
    if (lora && lora->A[l * N_PROJ + p]) {
        const float *A = lora->A[l * N_PROJ + p], *B = lora->B[l * N_PROJ + p];
        int r = lora->rank;
        float s = lora_scale(lora);
        int drop = w->train && lora->dropout > 0;
        gemm_nn(w->drank, dy, B, N, r, OUT, s, 0.0f);  // d(ax) = s * dy @ B
        float *dA = grads ? w->lora_grad + lora_offset(lora, A) : NULL;
        if (grads) gemm_tn(w->lora_grad + lora_offset(lora, B), dy, ax, OUT, r, N, s, 1.0f);  // dB += s dy^T ax
        if (drop) {  // dA += d(ax)^T @ dropout(x);  din += dropout'(d(ax) @ A)
            if (dA || din) lora_down_backward(dA, din, w->drank, x, a->drop_bits[p], lora->dropout, A, N, IN, r);
        } else {
            if (dA) gemm_tn(dA, w->drank, x, r, IN, N, 1.0f, 1.0f);
            if (din) gemm_nn(din, w->drank, A, N, IN, r, 1.0f, 1.0f);
        }
    }
    if (din) matmul_backward_input(din, dy, W, N);
    float *dW = w->full_grad[l * N_PROJ + p];
    if (grads && dW) matmul_backward_weight(dW, NULL, dy, x, N, IN, OUT);
}

static void layer_forward(const Model *m, const Lora *lora, Workspace *w, int l, LayerActs *a, const float *x,
                          float *out, float *attn_out) {
    const Config *c = &m->cfg;
    const LayerWeights *L = &m->layers[l];
    int N = w->N, C = c->dim;
    size_t NC = (size_t)N * C;
    rmsnorm_forward(a->xn1, a->rstd1, x, L->attn_norm, N, C, c->norm_eps);
    proj_forward(m, lora, w, l, P_Q, a->xn1, a->q, a, N);
    proj_forward(m, lora, w, l, P_K, a->xn1, a->k, a, N);
    proj_forward(m, lora, w, l, P_V, a->xn1, a->v, a, N);
    rope_forward(a->q, w->pos, m->rope_inv_freq, N, c->n_heads, c->head_dim);
    rope_forward(a->k, w->pos, m->rope_inv_freq, N, c->n_kv_heads, c->head_dim);
    AttnShape s = {w->B, w->T, c->n_heads, c->n_kv_heads, c->head_dim};
    attention_forward(a->ao, a->att, a->q, a->k, a->v, w->batch.mask, s);
    // h = o_proj(ao), built in x2 and then turned into x2 = x + h (+ eps)
    proj_forward(m, lora, w, l, P_O, a->ao, a->x2, a, N);
    if (w->perturb && w->perturb[l]) vec_add(a->x2, w->perturb[l], NC);
    if (attn_out) memcpy(attn_out, a->x2, NC * sizeof(float));
    vec_add(a->x2, x, NC);
    rmsnorm_forward(a->xn2, a->rstd2, a->x2, L->mlp_norm, N, C, c->norm_eps);
    proj_forward(m, lora, w, l, P_GATE, a->xn2, a->g, a, N);
    proj_forward(m, lora, w, l, P_UP, a->xn2, a->u, a, N);
    swiglu_forward(a->a, a->g, a->u, (size_t)N * c->hidden_dim);
    proj_forward(m, lora, w, l, P_DOWN, a->a, out, a, N);
    vec_add(out, a->x2, NC);
}

static LayerActs *slot(Workspace *w, const Model *m, const Lora *lora, int k) {
    while (w->n_pool <= k) {
        LayerActs *a = xcalloc(1, sizeof *a);
        acts_alloc(a, &m->cfg, lora, w->capN / w->capT, w->capT, &w->bytes);
        w->pool[w->n_pool++] = a;
    }
    return w->pool[k];
}

// Adopts the batch's shape (dynamic padding: each batch is as long as its longest row).
static void set_batch(Workspace *w, const Batch *b) {
    if (b->B * b->T > w->capN || b->T > w->capT) abort();  // the caller sized the workspace
    if (w->B != b->B || w->T != b->T) {
        w->B = b->B; w->T = b->T; w->N = b->B * b->T;
        for (int i = 0; i < b->B; i++)
            for (int t = 0; t < b->T; t++) w->pos[i * b->T + t] = t;
    }
    w->batch = *b;
}

void model_layer_forward(const Model *m, const Lora *lora, Workspace *w, const Batch *b, int l, const float *x,
                         float *out) {
    set_batch(w, b);
    w->train = 0;
    w->perturb = NULL;
    layer_forward(m, lora, w, l, &w->scratch, x, out, NULL);
}

void model_embed(const Model *m, const int *tokens, int n, float *out) {
    int C = m->cfg.dim;
    float *buf = xmalloc((size_t)C * sizeof(float));
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * C, mat_row(&m->embed, tokens[i], buf), C * sizeof(float));
    free(buf);
}

float model_forward(const Model *m, const Lora *lora, Workspace *w, const Batch *b, const ForwardOpts *o) {
    const Config *c = &m->cfg;
    int N = w->N, C = c->dim, L = c->n_layers;
    ForwardOpts def = {0};
    if (!o) o = &def;
    set_batch(w, b);
    N = w->N;
    w->train = o->train;
    w->dropout_seed = o->dropout_seed;
    w->perturb = o->perturb;
    model_embed(m, b->tokens, N, w->res);
    int used = 0;
    for (int l = 0; l < L; l++) {
        int save = o->train && l >= o->first_layer_needed && (!o->save_mask || o->save_mask[l]);
        w->slot_of[l] = save ? used++ : -1;
        LayerActs *a = save ? slot(w, m, lora, w->slot_of[l]) : &w->scratch;
        layer_forward(m, lora, w, l, a, w->res + (size_t)l * N * C, w->res + (size_t)(l + 1) * N * C,
                      o->attn_out ? o->attn_out[l] : NULL);
    }
    rmsnorm_forward(w->xf, w->rstdf, w->res + (size_t)L * N * C, m->final_norm, N, C, c->norm_eps);
    int count = 0;
    for (int i = 0; i < N; i++) count += b->targets[i] >= 0;
    w->loss_count = (float)count;
    w->loss = 0.0;
    if (!count) return 0.0f;
    float scale = (o->loss_scale != 0.0f ? o->loss_scale : 1.0f) / (float)count;
    if (o->train) memset(w->dxf, 0, (size_t)N * C * sizeof(float));
    int cnt;
    double sum = lm_head_ce(w->xf, &m->lm_head, b->targets, N, C, c->vocab_size, scale, o->train ? w->dxf : NULL,
                            o->train ? w->head_grad : NULL, &cnt, w->lmbuf, w->lm_chunk);
    w->loss = sum / count;
    return (float)w->loss;
}

void model_logits(const Model *m, const Workspace *w, float *logits) {
    matmul_forward(logits, w->xf, &m->lm_head, NULL, w->N, 0);
}

void model_backward(const Model *m, const Lora *lora, Workspace *w, const BackwardOpts *o) {
    const Config *c = &m->cfg;
    int N = w->N, C = c->dim, L = c->n_layers, F = c->hidden_dim;
    int Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    size_t NC = (size_t)N * C;
    BackwardOpts def = {.param_grads = 1};
    if (!o) o = &def;
    if (!w->loss_count) return;
    // d loss / d res[L] through the final norm
    float *ng = o->param_grads ? w->norm_grad : NULL;  // norm weight grads (full training only)
    memset(w->dres, 0, NC * sizeof(float));
    rmsnorm_backward(w->dres, ng ? ng + (size_t)2 * L * C : NULL, w->dxf, w->res + (size_t)L * NC, m->final_norm,
                     w->rstdf, N, C);
    AttnShape s = {w->B, w->T, c->n_heads, c->n_kv_heads, c->head_dim};
    w->layers_backward = 0;
    for (int l = L - 1; l >= o->stop_layer && l >= 0; l--) {
        w->layers_backward++;
        const LayerWeights *LW = &m->layers[l];
        int gm = !o->param_grads ? 0 : o->layer_trainable ? o->layer_trainable[l] : PROJ_ALL;  // trained projections
        const float *x = w->res + (size_t)l * NC;
        LayerActs *a = w->slot_of[l] >= 0 ? w->pool[w->slot_of[l]] : &w->scratch;
        if (w->slot_of[l] < 0) layer_forward(m, lora, w, l, a, x, w->tmp_out, NULL);  // recompute (checkpoint)
        // MLP: res[l+1] = x2 + down(silu(gate(xn2)) * up(xn2))
        memset(w->da, 0, (size_t)N * F * sizeof(float));
        proj_backward(m, lora, w, l, P_DOWN, a->a, w->dres, a, w->da, (gm >> P_DOWN) & 1, N);
        memset(w->dg, 0, (size_t)N * F * sizeof(float));
        memset(w->du, 0, (size_t)N * F * sizeof(float));
        swiglu_backward(w->dg, w->du, w->da, a->g, a->u, (size_t)N * F);
        memset(w->dxn, 0, NC * sizeof(float));
        proj_backward(m, lora, w, l, P_GATE, a->xn2, w->dg, a, w->dxn, (gm >> P_GATE) & 1, N);
        proj_backward(m, lora, w, l, P_UP, a->xn2, w->du, a, w->dxn, (gm >> P_UP) & 1, N);
        memcpy(w->dx2, w->dres, NC * sizeof(float));
        rmsnorm_backward(w->dx2, ng && gm ? ng + (size_t)(2 * l + 1) * C : NULL, w->dxn, a->x2, LW->mlp_norm,
                         a->rstd2, N, C);
        // x2 = x + h: dL/dh = dx2, the gradient Vaccine perturbs along.
        if (o->attn_grad && o->attn_grad[l]) memcpy(o->attn_grad[l], w->dx2, NC * sizeof(float));
        if (o->attn_grad_sqnorm) o->attn_grad_sqnorm[l] = vec_sumsq(w->dx2, NC);
        int need_dx = l > o->stop_layer || (l == 0 && ng && w->embed_grad);
        if (!need_dx && !(gm & PROJ_ATTN)) break;
        // attention: h = o_proj(attn(rope(q), rope(k), v)), q,k,v = proj(xn1)
        memset(w->dao, 0, (size_t)N * Q * sizeof(float));
        proj_backward(m, lora, w, l, P_O, a->ao, w->dx2, a, w->dao, (gm >> P_O) & 1, N);
        memset(w->dq, 0, (size_t)N * Q * sizeof(float));
        memset(w->dk, 0, (size_t)N * KV * sizeof(float));
        memset(w->dv, 0, (size_t)N * KV * sizeof(float));
        attention_backward(w->dq, w->dk, w->dv, w->dao, a->att, a->q, a->k, a->v, s);
        rope_backward(w->dq, w->pos, m->rope_inv_freq, N, c->n_heads, c->head_dim);
        rope_backward(w->dk, w->pos, m->rope_inv_freq, N, c->n_kv_heads, c->head_dim);
        float *dxn1 = need_dx ? w->dxn : NULL;
        if (dxn1) memset(dxn1, 0, NC * sizeof(float));
        proj_backward(m, lora, w, l, P_Q, a->xn1, w->dq, a, dxn1, (gm >> P_Q) & 1, N);
        proj_backward(m, lora, w, l, P_K, a->xn1, w->dk, a, dxn1, (gm >> P_K) & 1, N);
        proj_backward(m, lora, w, l, P_V, a->xn1, w->dv, a, dxn1, (gm >> P_V) & 1, N);
        if (!need_dx) break;
        memcpy(w->dres, w->dx2, NC * sizeof(float));
        rmsnorm_backward(w->dres, ng && gm ? ng + (size_t)2 * l * C : NULL, w->dxn, x, LW->attn_norm, a->rstd1, N, C);
    }
    if (ng && w->embed_grad && o->stop_layer == 0)  // res[0] = embedding rows: scatter-add
        for (int i = 0; i < N; i++) vec_add(w->embed_grad + (size_t)w->batch.tokens[i] * C, w->dres + (size_t)i * C, C);
}
