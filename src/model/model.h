// The Llama-, OPT- and Gemma-family transformer (Hugging Face LlamaForCausalLM / OPTForCausalLM /
// GemmaForCausalLM / Gemma2ForCausalLM semantics): weights,
// LoRA adapters, and explicit forward/backward over a preallocated workspace.
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "model/config.h"
#include "util/err.h"

enum { P_Q, P_K, P_V, P_O, P_GATE, P_UP, P_DOWN, N_PROJ };
// Projection bitmasks (1 << P_*): all seven, the attention four, the MLP three.
#define PROJ_ALL ((1 << N_PROJ) - 1)
#define PROJ_ATTN ((1 << P_Q) | (1 << P_K) | (1 << P_V) | (1 << P_O))
#define PROJ_MLP ((1 << P_GATE) | (1 << P_UP) | (1 << P_DOWN))
// full_ft_mask bit: full training also of embeddings, LM head and norm weights
// (training from scratch, e.g. the demo's base model).
#define FULL_EMBED_NORMS (1 << N_PROJ)
extern const char *const PROJ_NAMES[N_PROJ];   // "q_proj", ... as in HF module names
// "q", "q_proj" -> P_Q; OPT's names too: "out_proj" -> P_O, "fc1" -> P_UP, "fc2" -> P_DOWN; -1 if unknown
int proj_from_name(const char *s);
// Parses "q,k,v,o,gate,up,down" (or "all") into a bitmask of 1<<P_*; -1 on error.
int proj_mask_parse(const char *list, Err *e);
// The projections a model of config c has (OPT: no gate).
int proj_mask_of(const Config *c);
// A parsed target mask for a model of config c: "all" (PROJ_ALL) becomes the projections
// the model has; naming one it lacks (gate on OPT) is an error (-1).
int proj_mask_for(const Config *c, int mask, Err *e);
// The Hugging Face module name of projection p ("q_proj", ...; OPT: "out_proj", "fc1", "fc2").
const char *proj_hf_name(const Config *c, int p);
// Its module path in layer l: "model.layers.3.self_attn.q_proj", "model.decoder.layers.3.fc1".
void proj_module(char *buf, size_t cap, const Config *c, int l, int p);

typedef struct {
    Mat w[N_PROJ];               // OPT: w[P_GATE] is empty (0 x 0, data NULL)
    float *bias[N_PROJ];         // q, k, v bias (Qwen2), every projection's (OPT), or NULL
    float *attn_norm, *mlp_norm; // (C)
    float *attn_norm_b, *mlp_norm_b; // (C) LayerNorm biases (OPT) or NULL
    float *attn_out_norm, *mlp_out_norm; // (C) Gemma 2's norms of the attention and MLP outputs, or NULL
} LayerWeights;

typedef struct {
    Config cfg;
    Mat embed;                   // (V, C)
    Mat lm_head;                 // (V, C); shares embed's data when tied
    float *final_norm;           // (C); NULL when the model has none (OPT post-norm)
    float *final_norm_b;         // (C) LayerNorm bias (OPT) or NULL
    float *pos_embed;            // (max_seq_len + 2, C) OPT's learned positions (row pos + 2), or NULL
    float *score;                // (num_labels, C) sequence-classification head, or NULL
    LayerWeights *layers;
    float *rope_inv_freq;        // (head_dim/2) RoPE frequencies
    float embed_scale;           // embedding rows are multiplied by it (Gemma: sqrt(dim) in the weights' dtype), else 1
    void *arena;                 // owns all weight memory
    size_t arena_bytes;
} Model;

// Allocates the arena for c's weights (zeroed) in weight_type and the RoPE frequencies.
// Checkpoints are read and written by io/hf_checkpoint.h.
void model_alloc(Model *m, const Config *c, MatType weight_type);
// model_alloc in two steps: the shapes only (every data pointer NULL, nothing allocated but
// the layer table), what a loader checks a file against before the arena is allocated;
// then the arena for the planned model.
void model_plan(Model *m, const Config *c, MatType weight_type);
void model_alloc_planned(Model *m, MatType weight_type);
// The factor embedding rows are multiplied by: Gemma's sqrt(dim) rounded to the weights' dtype, else 1.
float model_embed_scale(const Config *c, MatType weight_type);
// A freshly initialised model (normal(0, 0.02) like HF's init), for training from scratch.
void model_init_random(Model *m, const Config *c, uint64_t seed);
void model_free(Model *m);
size_t model_num_params(const Model *m);

// ---- LoRA (PEFT semantics: y = W x + (alpha/r) * B A dropout(x)) -------------------
typedef struct {
    int rank;
    float alpha;
    float dropout;
    int targets;                 // bitmask of 1<<P_*
    int rslora;                  // scale alpha/sqrt(r) (PEFT use_rslora) instead of alpha/r
    int n_layers;
    float *params;               // all A and B matrices, one allocation
    size_t n_params;
    float **A, **B;              // [layer*N_PROJ + p] -> A (r, in), B (out, r); NULL if not targeted
} Lora;

void lora_init(Lora *l, const Model *m, int rank, float alpha, float dropout, int targets, uint64_t seed);
void lora_free(Lora *l);
static inline float lora_scale(const Lora *l) { return l->rslora ? l->alpha / sqrtf((float)l->rank) : l->alpha / (float)l->rank; }
// W += scale * B @ A for every targeted matrix (the model must hold the weights it merges into).
void lora_merge(Model *m, const Lora *l);
void proj_dims(const Config *c, int p, int *out, int *in);

// ---- a batch of B sequences of T tokens ---------------------------------------------
typedef struct {
    int B, T;
    int *tokens;   // (B*T)
    int *targets;  // (B*T) token to predict at each position, -1 = no loss (prompt, padding)
    int *mask;     // (B*T) 1 = real token, 0 = right padding
} Batch;

// ---- workspace: activations and gradients planned once for (B, T) -------------------
typedef struct {
    float *xn1, *rstd1, *q, *k, *v, *att, *ao, *x2, *xn2, *rstd2, *g, *u, *a;
    float *x3;                   // (N, C) the input of the layer's last norm, else NULL: post-norm OPT's
                                 // residual sum x2 + MLP, Gemma 2's MLP output
    float *h, *rstd3, *rstd4;    // Gemma 2: the attention output h (N, C) under its norm; the rstd (N) of
                                 // the attention and MLP output norms; else NULL
    float *lora_ax[N_PROJ];      // (N, r) A @ dropout(x), kept for the backward pass
    uint8_t *drop_bits[N_PROJ];  // LoRA dropout keep-mask of each projection's input, one bit per element
} LayerActs;

typedef struct {
    int B, T, N;                 // shape of the last forward (any B*T <= capN, T <= capT)
    int capN, capT;
    char refused[160];           // why a forward was refused (a batch larger than planned), "" if none:
                                 // workspace_check reports it
    float *res;                  // (L+1, N, C) residual stream; res[0] = embeddings
    // Saved activations come from a pool of slots handed out per forward: a layer that
    // is not saved (below first_layer_needed, or not in save_mask) runs in `scratch`
    // and is recomputed from res[l] if the backward pass needs it (checkpointing). A slot
    // holds one layer of a full (capN-token) batch, or several of a smaller one
    // (workspace_layers_per_slot), each layer's activations a view into it.
    LayerActs **pool;            // [L] slots, allocated on first use
    int n_pool;
    int *slot_of;                // [L] pool index of each layer in the last forward, -1 = not saved
    LayerActs *saved;            // [L] the views of the saved layers in the last forward
    LayerActs scratch;
    uint64_t dropout_seed;
    int train;
    const float *const *perturb;
    float *xf, *rstdf;           // final norm output
    float *dxf;                  // d loss / d xf, filled by a training forward
    int *pos;                    // (N) positions
    // backward scratch
    float *dres, *dx2, *dxn, *da, *dq, *dk, *dv, *dao, *dg, *du, *drank, *lmbuf, *tmp_out;
    int lm_chunk;
    Batch batch;                 // copy of the pointers of the last forward
    float loss_count;            // number of target tokens of the last forward
    double loss;                 // its mean loss in double (the return value, unrounded)
    int layers_backward;         // layers the last backward pass visited (T-Vaccine skips the rest)
    // LoRA gradients (same layout as Lora.params) and optional full-FT gradients
    float *lora_grad;
    float **full_grad;           // [layer*N_PROJ + p] (out, in) or NULL
    int n_full_grad;
    float *embed_grad, *head_grad;  // (V, C) with FULL_EMBED_NORMS; head_grad == embed_grad when tied
    float *norm_grad;            // (2L+1, C): attn_norm[l], mlp_norm[l] for each l, then the final norm
    size_t bytes;
} Workspace;

// Sized for batches of at most B sequences of at most T tokens. A forward given a larger
// batch computes nothing (loss NaN, no gradients) and marks the workspace: the caller's
// planning is wrong, and workspace_check turns it into an error the caller returns.
Workspace *workspace_new(const Model *m, const Lora *lora, int B, int T, int full_ft_mask);
// -1 (with the reason in e) when a forward on w was refused, else 0.
int workspace_check(const Workspace *w, Err *e);
// How many layers of a batch of B x T tokens one activation slot of w holds (>= 1 when
// the batch fits w).
int workspace_layers_per_slot(const Model *m, const Lora *lora, const Workspace *w, int B, int T);
void workspace_free(Workspace *w);

typedef struct {
    int train;                   // 1: LoRA dropout on, compute d loss/d xf
    uint64_t dropout_seed;       // a new value per forward gives a new dropout mask
    float loss_scale;            // gradient of (loss_scale * mean loss) is produced (default 1)
    const float *const *perturb; // [L] (N, C) added to each layer's attention output, or NULL
    float *const *attn_out;      // [L] (N, C) buffers that receive each layer's attention output, or NULL
    float *const *mlp_out;       // [L] (N, C) buffers (or NULL entries) that receive each layer's MLP output
                                 // down(silu(gate) * up) (LDIFS's features), or NULL
    int first_layer_needed;      // layers below it run forward only (T-Vaccine)
    const int *save_mask;        // [L] 1 = keep activations, 0 = recompute in backward; NULL = all needed
} ForwardOpts;

typedef struct {
    int param_grads;             // 0: only activation gradients (Vaccine's first pass)
    const int *layer_trainable;  // [L] bitmask (1 << P_*) of the projections trained in layer l
                                 // (its norm weights: any bit); NULL = all trainable
    int stop_layer;              // no backward work below this layer
    float *const *attn_grad;     // [L] (N, C) receive dL/dh_l of each layer's attention output, or NULL
    double *attn_grad_sqnorm;    // [L] receives ||dL/dh_l||^2 (no buffers needed), or NULL
    const float *const *mlp_grad;  // [L] (N, C) added to dL/d(MLP output of layer l) (a loss on the features
                                   // ForwardOpts.mlp_out gave: LDIFS), NULL entries or NULL: none
    const float *const *res_grad;  // [L] (N, C) added to dL/d res[l], the input of layer l (a loss on the
                                   // residual stream: RepNoise's per-layer harmful loss; entry 0, the
                                   // embeddings, matters only when they train); NULL entries or NULL: none
} BackwardOpts;

// Returns the mean cross-entropy over target tokens (0 when there are none; NaN when the
// batch does not fit w: see workspace_new).
float model_forward(const Model *m, const Lora *lora, Workspace *w, const Batch *b, const ForwardOpts *o);
// Needs a preceding forward with train = 1. Accumulates into w->lora_grad / w->full_grad.
void model_backward(const Model *m, const Lora *lora, Workspace *w, const BackwardOpts *o);
// Runs layer l alone on x (the batch's B*T tokens, C each) into out, leaving the
// layer's intermediate values (inputs of every projection) in w->scratch. For
// calibration passes that go layer by layer (Antidote's Wanda statistics).
// -1 (nothing computed) when the batch does not fit w (workspace_check says why).
int model_layer_forward(const Model *m, const Lora *lora, Workspace *w, const Batch *b, int l, const float *x,
                        float *out);
// Embedding rows of n tokens of one sequence, at positions 0..n-1, into out (n, C) (OPT
// adds its learned positions).
void model_embed(const Model *m, const int *tokens, int n, float *out);
// Full logits (N, V) of the last forward's final hidden state (tests, judges).
void model_logits(const Model *m, const Workspace *w, float *logits);
// The LM head's cross-entropy on the final norm of N hidden states x (N, C) of any layer (the
// "logit lens"; RepNoise's harmful loss at every layer): returns the sum over the rows with a
// target (targets as Batch.targets; their number in *count). With dx, adds
// d(grad_scale * sum)/dx through the final norm. xn, dxn (N, C) and rstd (N) are scratch;
// w's LM-head chunk buffer is used (not between a forward and its backward's use of it: the
// backward pass does not read it).
double model_lens_ce(const Model *m, Workspace *w, const float *x, const int *targets, int N, float grad_scale,
                     float *dx, float *xn, float *dxn, float *rstd, int *count);
// The LM head on N final hidden states xf (N, C): logits (N, V), soft-capped when the model caps them.
// infer: generation's product (matmul_forward_infer).
void model_head(const Model *m, const float *xf, int N, float *logits, int infer);

// ---- inference with a KV cache (generation) ----------------------------------------
// The activations of the rows of one inference call: the LayerActs the training layer
// uses (reused by every layer; the LoRA A x of every projection shares one buffer), the
// residual stream and the final norm's output.
typedef struct {
    LayerActs layer;
    float *x, *xf;               // (n_max, C)
    int n_max, rank_cap;         // rows; LoRA rank the A x buffer holds (grown on first use)
} RowActs;

typedef struct {
    int max_T;
    float *k, *v;                // (L, max_T, NKV*HD)
    float *att;                  // (NH, max_T) attention scratch
    float *logits;               // (V) of the last token
    int n_max;                   // tokens per call capacity
    int len;                     // tokens in the cache
    RowActs rows;                // activations of up to n_max tokens of one call
} KVCache;

// max_T is capped at max_position_embeddings for learned positions (OPT).
KVCache *kvcache_new(const Model *m, int max_T, int n_max);
void kvcache_free(KVCache *c);
// Runs n tokens at positions c->len.. and appends them to the cache; writes the
// logits of the last token to c->logits (V). lora may be NULL.
void model_forward_cached(const Model *m, const Lora *lora, KVCache *c, const int *tokens, int n);
// Decoding several sequences together: one token for each of S <= d->S caches, appended
// at each cache's own position; each cache's logits (V) are written. Equal, bit for bit,
// to S calls of model_forward_cached with one token, with the weights read once.
typedef struct {
    int S;          // sequences per step, at most MATVEC_MAX_ROWS
    RowActs rows;   // activations of S tokens
    float *logits;  // (S, V)
} DecodeBatch;
DecodeBatch *decode_batch_new(const Model *m, int S);
void decode_batch_free(DecodeBatch *d);
void model_decode_batch(const Model *m, const Lora *lora, DecodeBatch *d, KVCache *const *cs, const int *tokens,
                        int S);
