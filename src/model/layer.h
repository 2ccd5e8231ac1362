// One decoder layer, forward and backward, for every caller of the model: training and
// scoring (model_forward/backward: B sequences of T rows) and generation
// (model_forward_cached/model_decode_batch: rows that attend to KV caches). Internal to
// src/model/.
#pragma once
#include "model/model.h"

// The rows of one layer call and what they attend to.
typedef struct {
    int N;                       // rows
    const int *pos;              // (N) position of each row (RoPE)
    AttnShape shape;             // batch form: N = B*T rows, B sequences of T
    const int *mask;             // batch form: (N) 1 = real token, 0 = padding (NULL = all real)
    KVCache *const *caches;      // cached form: row i is the next token of caches[i], at pos[i]; NULL = batch form
    int train;                   // LoRA dropout on (its masks are kept in the LayerActs)
    uint64_t dropout_seed;
    const float *perturb;        // (N, C) added to the attention output (Vaccine), or NULL
    float *attn_out;             // (N, C) receives the attention output (HED), or NULL
    float *mlp_out;              // (N, C) receives the MLP output (LDIFS), or NULL
    int recompute;               // 1: a checkpointed layer recomputed for its backward pass: what the
                                 // backward reads, not the output (pre-norm without output norms: no
                                 // down-projection product)
} LayerRows;

// out (N, C) = layer l of x (N, C); a receives every intermediate the backward pass reads.
// out may be x (generation updates its residual stream in place).
void layer_forward(const Model *m, const Lora *lora, int l, const LayerRows *r, LayerActs *a, const float *x,
                   float *out);
// Given w->dres = dL/d(out), accumulates the parameter gradients of the projections of
// layer l whose bit (1 << P_*) is set in gm (its norm weights: any bit) and, when
// need_dx, leaves dL/dx in w->dres. x is the layer's input, a its activations.
// dL/dh of the attention output goes to o->attn_grad[l] / attn_grad_sqnorm[l] if asked;
// o->mlp_grad[l], if given, is added to the gradient of the MLP output.
void layer_backward(const Model *m, const Lora *lora, Workspace *w, int l, const LayerActs *a, const float *x,
                    const BackwardOpts *o, int gm, int need_dx);

// The family's norm over N rows of C: RMSNorm (Llama) or LayerNorm with bias b (OPT);
// the backward accumulates into dx (and dw when not NULL; a LayerNorm bias is not trained).
void norm_forward(const Config *c, float *out, float *rstd, const float *x, const float *w, const float *b, int N);
void norm_backward(const Config *c, float *dx, float *dw, const float *dout, const float *x, const float *w,
                   const float *rstd, int N);
// Embedding rows of n tokens at positions pos (NULL: 0..n-1) into out (n, C), OPT's
// learned positions added; buf (C) widens bf16 rows.
void embed_rows(const Model *m, const int *tokens, const int *pos, int n, float *out, float *buf);
// The final norm (a copy when the model has none: post-norm OPT) of N rows.
void final_norm_forward(const Model *m, float *out, float *rstd, const float *x, int N);
