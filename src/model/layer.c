// One decoder layer (HF LlamaDecoderLayer) and its projections, forward and backward,
// shared by training, scoring and generation (docs/engine.md, "Model"). N rows:
//   xn1 = rmsnorm(x);  q,k,v = proj(xn1);  rope(q,k);  ao = attn(q,k,v)
//   h   = o_proj(ao) (+ perturbation: Vaccine);  x2 = x + h
//   xn2 = rmsnorm(x2); a = silu(gate(xn2)) * up(xn2);  x' = x2 + down(a)
// where proj(x) = W x (+ bias) + (alpha/r) B A dropout(x) for LoRA targets. attn is causal
// attention over B sequences of T rows (training, scoring) or, for generation, each row
// against its own KV cache after its key and value are appended to it.
// OPT (HF OPTDecoderLayer): the norms are LayerNorms with bias, no RoPE (the positions are
// learned and added to the embeddings), the MLP is x' = x2 + fc2(relu(fc1(xn2))) (up,
// down), every projection has a bias. Post-norm OPT (do_layer_norm_before = false) puts
// each norm after its residual add:
//   x2 = x + h (h = out_proj(attn(q,k,v(x))) + eps);  xn2 = ln1(x2)
//   x3 = xn2 + fc2(relu(fc1(xn2)));  x' = ln2(x3)
// Gemma (HF GemmaDecoderLayer) is Llama's layer with RMSNorms scaled by (1 + w) and a
// GeGLU MLP (gelu_tanh(gate) * up). Gemma 2 (Gemma2DecoderLayer) also norms the outputs of
// attention and MLP before their residual adds ("sandwich" norms), and forms its attention
// scores with its own scale, a soft-cap and, on sliding layers, a window:
//   h = o_proj(ao) (+ eps);  x2 = x + norm_a(h);  x3 = down(gelu(gate(xn2)) * up(xn2));  x' = x2 + norm_m(x3)
#include "model/layer.h"

#include <math.h>
#include <string.h>

#include "util/rng.h"

// LoRA dropout: each targeted projection's keep-mask comes from a counter-based hash
// (dropout_mask) keyed by (seed, layer, projection) into bits kept with the layer's
// activations (N*in/8 bytes), so the backward pass applies the very same mask without
// drawing it again (a recomputed forward draws it again, identically).
static uint64_t mask_seed(uint64_t seed, int l, int p) { return hash64(seed ^ hash64((uint64_t)(l * N_PROJ + p) + 1)); }

// y (N, out) = proj_p(x) for layer l; keeps A x in a->lora_ax[p] for the backward pass.
// y NULL: only what the backward pass reads (A x and the dropout bits), not the product.
static void proj_forward(const Model *m, const Lora *lora, const LayerRows *r, int l, int p, const float *x, float *y,
                         LayerActs *a) {
    const LayerWeights *L = &m->layers[l];
    const Mat *W = &L->w[p];
    int N = r->N;
    if (r->caches) matmul_forward_infer(y, x, W, L->bias[p], N, 0);  // generation
    else if (y) matmul_forward(y, x, W, L->bias[p], N, 0);
    if (!lora || !lora->A[l * N_PROJ + p]) return;
    float *ax = a->lora_ax[p], *A = lora->A[l * N_PROJ + p];
    if (r->train && lora->dropout > 0) {
        dropout_mask(a->drop_bits[p], (size_t)N * W->cols, lora->dropout, mask_seed(r->dropout_seed, l, p));
        lora_down_forward(ax, x, a->drop_bits[p], lora->dropout, A, N, W->cols, lora->rank);
    } else {
        Mat Am = {MAT_F32, A, lora->rank, W->cols};  // a few rows take the matrix-vector path
        matmul_forward(ax, x, &Am, NULL, N, 0);
    }
    if (y) lora_up_forward(y, ax, lora->B[l * N_PROJ + p], lora_scale(lora), N, W->rows, lora->rank);
}

// How layer l forms its attention scores (Gemma 2: scale, soft-cap, window; else defaults).
static AttnScores layer_scores(const Config *c, int l) {
    float scale = c->query_scalar > 0.0f ? (float)pow(c->query_scalar, -0.5) : 0.0f;  // as Python's q ** -0.5
    return (AttnScores){scale, c->attn_softcap, config_window(c, l)};
}

// Row i of the cached form's attention against its sequence's cache.
static void attend_row(const Config *c, LayerActs *a, const LayerRows *r, int l, int i) {
    int NH = c->n_heads, NKV = c->n_kv_heads, HD = c->head_dim, Q = NH * HD, KV = NKV * HD;
    const KVCache *kc = r->caches[i];
    size_t at = (size_t)l * kc->max_T * KV;
    attention_cached_forward(a->ao + (size_t)i * Q, kc->att, kc->max_T, a->q + (size_t)i * Q, kc->k + at, kc->v + at,
                             r->pos[i] + 1, NH, NKV, HD, layer_scores(c, l));
}

// The cached form's attention: each row's key and value go into its cache before any row
// attends, so a prompt's rows see each other.
static void attend_cached(const Config *c, const LayerRows *r, int l, LayerActs *a) {
    size_t KV = (size_t)c->n_kv_heads * c->head_dim;
    for (int i = 0; i < r->N; i++) {
        KVCache *kc = r->caches[i];
        size_t at = ((size_t)l * kc->max_T + r->pos[i]) * KV;
        memcpy(kc->k + at, a->k + (size_t)i * KV, KV * sizeof(float));
        memcpy(kc->v + at, a->v + (size_t)i * KV, KV * sizeof(float));
    }
    // rows of different sequences (batched decoding) in parallel; a prompt's rows share their
    // cache's scratch and go one by one, each row's heads shared by the threads. The one-by-one
    // loop stays outside any parallel region: attention_cached_forward's own region nested in
    // an inactive one would start new threads on every call (4x slower single-sequence
    // decoding on 2 threads).
    int distinct = r->N > 1;
    for (int i = 1; i < r->N && distinct; i++)
        for (int j = 0; j < i; j++) distinct &= r->caches[i] != r->caches[j];
    if (distinct) {
#pragma omp parallel for schedule(dynamic)
        for (int i = 0; i < r->N; i++) attend_row(c, a, r, l, i);
    } else {
        for (int i = 0; i < r->N; i++) attend_row(c, a, r, l, i);
    }
}

void norm_forward(const Config *c, float *out, float *rstd, const float *x, const float *w, const float *b, int N) {
    if (c->opt) layernorm_forward(out, rstd, x, w, b, N, c->dim, c->norm_eps);
    else rmsnorm_forward(out, rstd, x, w, c->gemma ? 1.0f : 0.0f, N, c->dim, c->norm_eps);
}

void norm_backward(const Config *c, float *dx, float *dw, const float *dout, const float *x, const float *w,
                   const float *rstd, int N) {
    if (c->opt) layernorm_backward(dx, dw, NULL, dout, x, w, rstd, N, c->dim);
    else rmsnorm_backward(dx, dw, dout, x, w, c->gemma ? 1.0f : 0.0f, rstd, N, c->dim);
}

void embed_rows(const Model *m, const int *tokens, const int *pos, int n, float *out, float *buf) {
    int C = m->cfg.dim;
    for (int i = 0; i < n; i++) {
        memcpy(out + (size_t)i * C, mat_row(&m->embed, tokens[i], buf), C * sizeof(float));
        if (m->cfg.gemma) vec_scale(out + (size_t)i * C, m->embed_scale, C);
        if (!m->pos_embed) continue;
        // p < max_seq_len: set_batch refuses longer rows, kvcache_new caps a cache at max_seq_len
        int p = pos ? pos[i] : i;
        vec_add(out + (size_t)i * C, m->pos_embed + (size_t)(p + 2) * C, C);  // OPT's offset of 2
    }
}

void layer_forward(const Model *m, const Lora *lora, int l, const LayerRows *r, LayerActs *a, const float *x,
                   float *out) {
    const Config *c = &m->cfg;
    const LayerWeights *L = &m->layers[l];
    int N = r->N, F = c->hidden_dim, post = c->norm_after, sandwich = c->sandwich_norms;
    size_t NC = (size_t)N * c->dim;
    const float *xin = x;  // the input of q, k, v
    if (!post) {
        norm_forward(c, a->xn1, a->rstd1, x, L->attn_norm, L->attn_norm_b, N);
        xin = a->xn1;
    }
    proj_forward(m, lora, r, l, P_Q, xin, a->q, a);
    proj_forward(m, lora, r, l, P_K, xin, a->k, a);
    proj_forward(m, lora, r, l, P_V, xin, a->v, a);
    if (!c->opt) {
        rope_forward(a->q, r->pos, m->rope_inv_freq, N, c->n_heads, c->head_dim);
        rope_forward(a->k, r->pos, m->rope_inv_freq, N, c->n_kv_heads, c->head_dim);
    }
    if (r->caches) {
        attend_cached(c, r, l, a);
    } else {
        AttnShape shape = r->shape;
        shape.sc = layer_scores(c, l);
        attention_forward(a->ao, a->att, a->q, a->k, a->v, r->mask, shape);
    }
    // h = o_proj(ao) (+ eps), built in x2 and then turned into x2 = x + h (Gemma 2: h is
    // kept and x2 = x + norm(h))
    float *h = sandwich ? a->h : a->x2;
    proj_forward(m, lora, r, l, P_O, a->ao, h, a);
    if (r->perturb) vec_add(h, r->perturb, NC);
    if (r->attn_out) vec_copy(r->attn_out, h, NC);
    if (sandwich) norm_forward(c, a->x2, a->rstd3, h, L->attn_out_norm, NULL, N);
    vec_add(a->x2, x, NC);
    // post-norm: rstd1 is ln1's over x2 and xn2 = ln1(x2) is the MLP's residual stream too
    if (post) norm_forward(c, a->xn2, a->rstd1, a->x2, L->attn_norm, L->attn_norm_b, N);
    else norm_forward(c, a->xn2, a->rstd2, a->x2, L->mlp_norm, L->mlp_norm_b, N);
    if (c->opt) {
        proj_forward(m, lora, r, l, P_UP, a->xn2, a->u, a);
        relu_forward(a->a, a->u, (size_t)N * F);
    } else if (c->gemma) {  // elementwise, so a row's result does not depend on the call's other rows
        proj_forward(m, lora, r, l, P_GATE, a->xn2, a->g, a);
        proj_forward(m, lora, r, l, P_UP, a->xn2, a->u, a);
        geglu_forward(a->a, a->g, a->u, (size_t)N * F);
    } else {
        proj_forward(m, lora, r, l, P_GATE, a->xn2, a->g, a);
        proj_forward(m, lora, r, l, P_UP, a->xn2, a->u, a);
        if (r->caches)  // row by row: a row's bits do not depend on which rows share the call
            for (int i = 0; i < N; i++)
                swiglu_forward(a->a + (size_t)i * F, a->g + (size_t)i * F, a->u + (size_t)i * F, F);
        else
            swiglu_forward(a->a, a->g, a->u, (size_t)N * F);
    }
    if (sandwich) {
        proj_forward(m, lora, r, l, P_DOWN, a->a, a->x3, a);
        if (r->mlp_out) vec_copy(r->mlp_out, a->x3, NC);
        norm_forward(c, out, a->rstd4, a->x3, L->mlp_out_norm, NULL, N);
        vec_add(out, a->x2, NC);
        return;
    }
    if (!post && r->recompute) {  // the backward pass reads the down projection's input, not its output
        proj_forward(m, lora, r, l, P_DOWN, a->a, NULL, a);
        return;
    }
    if (!post) {
        proj_forward(m, lora, r, l, P_DOWN, a->a, out, a);
        if (r->mlp_out) vec_copy(r->mlp_out, out, NC);
        vec_add(out, a->x2, NC);
        return;
    }
    proj_forward(m, lora, r, l, P_DOWN, a->a, a->x3, a);
    if (r->mlp_out) vec_copy(r->mlp_out, a->x3, NC);
    vec_add(a->x3, a->xn2, NC);
    norm_forward(c, out, a->rstd2, a->x3, L->mlp_norm, L->mlp_norm_b, N);
}

static size_t lora_offset(const Lora *lora, const float *ptr) { return (size_t)(ptr - lora->params); }

// Backward of proj_p: din (may be NULL) += d/dx (= d/dx with fresh: din's contents are
// not read, so it needs no zeroing); parameter gradients when grads = 1.
static void proj_backward(const Model *m, const Lora *lora, Workspace *w, int l, int p, const float *x,
                          const float *dy, const LayerActs *a, float *din, int fresh, int grads) {
    const float *ax = a->lora_ax[p];
    const Mat *W = &m->layers[l].w[p];
    int N = w->N, OUT = W->rows, IN = W->cols;
    if (din) matmul_backward_input(din, dy, W, N, !fresh);  // the frozen weight's part first: it sets din
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
    float *dW = w->full_grad[l * N_PROJ + p];
    if (grads && dW) matmul_backward_weight(dW, NULL, dy, x, N, IN, OUT);
}

void layer_backward(const Model *m, const Lora *lora, Workspace *w, int l, const LayerActs *a, const float *x,
                    const BackwardOpts *o, int gm, int need_dx) {
    const Config *c = &m->cfg;
    const LayerWeights *LW = &m->layers[l];
    int N = w->N, C = c->dim, F = c->hidden_dim, post = c->norm_after, sandwich = c->sandwich_norms;
    int Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    size_t NC = (size_t)N * C;
    float *ng = o->param_grads && gm ? w->norm_grad : NULL;  // norm weight grads (full training only)
    float *ng1 = ng ? ng + (size_t)2 * l * C : NULL, *ng2 = ng ? ng + (size_t)(2 * l + 1) * C : NULL;
    // MLP: res[l+1] = x2 + down(silu(gate(xn2)) * up(xn2)), or x2 + fc2(relu(fc1(xn2)))
    // (post-norm: res[l+1] = ln2(x3), x3 = xn2 + fc2(relu(fc1(xn2))))
    const float *dmlp = w->dres;  // dL/d(MLP output): the residual's gradient plus a feature loss's
    if (post) {  // dL/dx3 through ln2; x3 = xn2 + MLP: the residual part goes to dxn
        vec_zero(w->dx2, NC);
        norm_backward(c, w->dx2, ng2, w->dres, a->x3, LW->mlp_norm, a->rstd2, N);
        vec_copy(w->dxn, w->dx2, NC);
        dmlp = w->dx2;
    }
    if (sandwich) {  // Gemma 2: res[l+1] = x2 + norm_m(x3), x3 the MLP output (its norm weight is not trained)
        vec_zero(w->dx2, NC);
        norm_backward(c, w->dx2, NULL, w->dres, a->x3, LW->mlp_out_norm, a->rstd4, N);
        dmlp = w->dx2;
    }
    if (o->mlp_grad && o->mlp_grad[l]) {
        if (!post && !sandwich) vec_copy(w->dx2, w->dres, NC);  // dx2 is free until the residual path below
        vec_add(w->dx2, o->mlp_grad[l], NC);
        dmlp = w->dx2;
    }
    proj_backward(m, lora, w, l, P_DOWN, a->a, dmlp, a, w->da, 1, (gm >> P_DOWN) & 1);
    if (c->opt) {  // these set du (and dg), not add to them
        relu_backward(w->du, w->da, a->u, (size_t)N * F);
    } else {
        if (c->gemma) geglu_backward(w->dg, w->du, w->da, a->g, a->u, (size_t)N * F);
        else swiglu_backward(w->dg, w->du, w->da, a->g, a->u, (size_t)N * F);
        proj_backward(m, lora, w, l, P_GATE, a->xn2, w->dg, a, w->dxn, !post, (gm >> P_GATE) & 1);
    }
    // dxn: post-norm's residual part is in it already; else gate's product set it (OPT: none)
    proj_backward(m, lora, w, l, P_UP, a->xn2, w->du, a, w->dxn, !post && c->opt, (gm >> P_UP) & 1);
    if (post) {  // dxn = dL/dxn2 (MLP path + residual); x2 = x + h under ln1
        vec_zero(w->dx2, NC);
        norm_backward(c, w->dx2, ng1, w->dxn, a->x2, LW->attn_norm, a->rstd1, N);
    } else {
        vec_copy(w->dx2, w->dres, NC);
        norm_backward(c, w->dx2, ng2, w->dxn, a->x2, LW->mlp_norm, a->rstd2, N);
    }
    // x2 = x + h: dL/dh = dx2, the gradient Vaccine perturbs along (Gemma 2: x2 = x + norm_a(h),
    // dL/dh through that norm, in dxn, free until the q, k, v inputs' gradient below).
    float *dh = w->dx2;
    if (sandwich) {
        vec_zero(w->dxn, NC);
        norm_backward(c, w->dxn, NULL, w->dx2, a->h, LW->attn_out_norm, a->rstd3, N);
        dh = w->dxn;
    }
    if (o->attn_grad && o->attn_grad[l]) vec_copy(o->attn_grad[l], dh, NC);
    if (o->attn_grad_sqnorm) o->attn_grad_sqnorm[l] = vec_sumsq(dh, NC);
    if (!need_dx && !(gm & PROJ_ATTN)) return;
    // attention: h = o_proj(attn(rope(q), rope(k), v)), q,k,v = proj(xn1) (post-norm: proj(x))
    proj_backward(m, lora, w, l, P_O, a->ao, dh, a, w->dao, 1, (gm >> P_O) & 1);
    vec_zero(w->dq, (size_t)N * Q);
    vec_zero(w->dk, (size_t)N * KV);
    vec_zero(w->dv, (size_t)N * KV);
    AttnShape s = {w->B, w->T, c->n_heads, c->n_kv_heads, c->head_dim, layer_scores(c, l)};
    attention_backward(w->dq, w->dk, w->dv, w->dao, a->att, a->q, a->k, a->v, s);
    if (!c->opt) {
        rope_backward(w->dq, w->pos, m->rope_inv_freq, N, c->n_heads, c->head_dim);
        rope_backward(w->dk, w->pos, m->rope_inv_freq, N, c->n_kv_heads, c->head_dim);
    }
    const float *xin = post ? x : a->xn1;
    float *dxn1 = need_dx ? w->dxn : NULL;
    proj_backward(m, lora, w, l, P_Q, xin, w->dq, a, dxn1, 1, (gm >> P_Q) & 1);
    proj_backward(m, lora, w, l, P_K, xin, w->dk, a, dxn1, 0, (gm >> P_K) & 1);
    proj_backward(m, lora, w, l, P_V, xin, w->dv, a, dxn1, 0, (gm >> P_V) & 1);
    if (!need_dx) return;
    vec_copy(w->dres, w->dx2, NC);
    if (post) vec_add(w->dres, w->dxn, NC);
    else norm_backward(c, w->dres, ng1, w->dxn, x, LW->attn_norm, a->rstd1, N);
}
