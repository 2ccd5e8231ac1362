// Model weights: the arena every weight lives in (sized from the config), random
// initialisation, parameter counts. Reading and writing checkpoints is io/hf_checkpoint.c.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/mem.h"
#include "util/rng.h"

const char *const PROJ_NAMES[N_PROJ] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

// OPT's module names (its MLP is fc1 -> ReLU -> fc2: up and down, no gate).
static const char *const OPT_PROJ_NAMES[N_PROJ] = {"q_proj", "k_proj", "v_proj", "out_proj", NULL, "fc1", "fc2"};

int proj_from_name(const char *s) {
    static const char *const short_names[N_PROJ] = {"q", "k", "v", "o", "gate", "up", "down"};
    for (int p = 0; p < N_PROJ; p++)
        if (!strcmp(s, short_names[p]) || !strcmp(s, PROJ_NAMES[p]) || (OPT_PROJ_NAMES[p] && !strcmp(s, OPT_PROJ_NAMES[p])))
            return p;
    return -1;
}

int proj_mask_of(const Config *c) { return c->opt ? PROJ_ALL & ~(1 << P_GATE) : PROJ_ALL; }

int proj_mask_for(const Config *c, int mask, Err *e) {
    if (mask == PROJ_ALL) return proj_mask_of(c);
    if (mask & ~proj_mask_of(c))
        return err_set(e, "an %s model has no gate projection (its MLP is fc1, fc2: targets up, down)", c->model_type);
    return mask;
}

const char *proj_hf_name(const Config *c, int p) { return c->opt ? OPT_PROJ_NAMES[p] : PROJ_NAMES[p]; }

void proj_module(char *buf, size_t cap, const Config *c, int l, int p) {
    if (c->opt) snprintf(buf, cap, "model.decoder.layers.%d.%s%s", l, p <= P_O ? "self_attn." : "", proj_hf_name(c, p));
    else snprintf(buf, cap, "model.layers.%d.%s.%s", l, p <= P_O ? "self_attn" : "mlp", PROJ_NAMES[p]);
}

int proj_mask_parse(const char *list, Err *e) {
    if (!strcmp(list, "all")) return (1 << N_PROJ) - 1;
    int mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int p = proj_from_name(tok);
        if (p < 0) return err_set(e, "unknown projection \"%s\" (use q,k,v,o,gate,up,down)", tok);
        mask |= 1 << p;
    }
    if (!mask) return err_set(e, "empty projection list");
    return mask;
}

void proj_dims(const Config *c, int p, int *out, int *in) {
    int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    switch (p) {
    case P_Q: *out = q; *in = c->dim; break;
    case P_K: case P_V: *out = kv; *in = c->dim; break;
    case P_O: *out = c->dim; *in = q; break;
    case P_GATE: *out = c->opt ? 0 : c->hidden_dim; *in = c->opt ? 0 : c->dim; break;
    case P_UP: *out = c->hidden_dim; *in = c->dim; break;
    default: *out = c->dim; *in = c->hidden_dim; break;
    }
}

// Lays out every tensor in the arena (pass 1 with base NULL only counts bytes).
static size_t layout(Model *m, MatType wt, char *base) {
    const Config *c = &m->cfg;
    size_t off = 0, esz = wt == MAT_BF16 ? 2 : 4;
#define TAKE(bytes) (off += ((bytes) + 63) & ~(size_t)63, base ? base + off - (((bytes) + 63) & ~(size_t)63) : NULL)
    m->embed = (Mat){wt, TAKE((size_t)c->vocab_size * c->dim * esz), c->vocab_size, c->dim};
    if (c->tie_embeddings) m->lm_head = m->embed;
    else m->lm_head = (Mat){wt, TAKE((size_t)c->vocab_size * c->dim * esz), c->vocab_size, c->dim};
    m->final_norm = c->no_final_norm ? NULL : (float *)TAKE((size_t)c->dim * 4);
    m->final_norm_b = c->opt && !c->no_final_norm ? (float *)TAKE((size_t)c->dim * 4) : NULL;
    m->pos_embed = c->opt ? (float *)TAKE(((size_t)c->max_seq_len + 2) * c->dim * 4) : NULL;
    m->score = c->num_labels > 0 ? (float *)TAKE((size_t)c->num_labels * c->dim * 4) : NULL;
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        for (int p = 0; p < N_PROJ; p++) {
            int out, in;
            proj_dims(c, p, &out, &in);
            L->w[p] = (Mat){wt, out ? TAKE((size_t)out * in * esz) : NULL, out, in};
            L->bias[p] = out && (c->opt || (c->qkv_bias && p < 3)) ? (float *)TAKE((size_t)out * 4) : NULL;
        }
        L->attn_norm = (float *)TAKE((size_t)c->dim * 4);
        L->mlp_norm = (float *)TAKE((size_t)c->dim * 4);
        L->attn_norm_b = c->opt ? (float *)TAKE((size_t)c->dim * 4) : NULL;
        L->mlp_norm_b = c->opt ? (float *)TAKE((size_t)c->dim * 4) : NULL;
        L->attn_out_norm = c->sandwich_norms ? (float *)TAKE((size_t)c->dim * 4) : NULL;
        L->mlp_out_norm = c->sandwich_norms ? (float *)TAKE((size_t)c->dim * 4) : NULL;
    }
#undef TAKE
    return off;
}

float model_embed_scale(const Config *c, MatType wt) {
    float sq = (float)sqrt((double)c->dim);  // Gemma: transformers' normalizer, a tensor of the weights' dtype
    return !c->gemma ? 1.0f : wt == MAT_BF16 ? bf16_to_float(float_to_bf16(sq)) : sq;
}

void model_plan(Model *m, const Config *c, MatType wt) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->embed_scale = model_embed_scale(c, wt);
    m->layers = xcalloc(c->n_layers, sizeof(LayerWeights));
    m->arena_bytes = layout(m, wt, NULL);
}

void model_alloc_planned(Model *m, MatType wt) {
    const Config *c = &m->cfg;
    m->arena = huge_alloc(m->arena_bytes);  // streamed once per generated token
    layout(m, wt, m->arena);
    m->rope_inv_freq = xmalloc((size_t)(c->head_dim / 2) * sizeof(float));
    rope_inv_freq(m->rope_inv_freq, c->head_dim, c->rope_theta);
}

void model_alloc(Model *m, const Config *c, MatType wt) {
    model_plan(m, c, wt);
    model_alloc_planned(m, wt);
}

void model_free(Model *m) {
    huge_free(m->arena, m->arena_bytes);
    free(m->layers);
    free(m->rope_inv_freq);
    memset(m, 0, sizeof *m);
}

void model_init_random(Model *m, const Config *c, uint64_t seed) {
    model_alloc(m, c, MAT_F32);
    Rng r;
    rng_seed(&r, seed);
    size_t VC = (size_t)c->vocab_size * c->dim;  // the arena is f32 here
    vec_normal(m->embed.data, VC, 0.02f, &r);
    if (!c->tie_embeddings) vec_normal(m->lm_head.data, VC, 0.02f, &r);
    float one = c->gemma ? 0.0f : 1.0f;  // Gemma's norms scale by 1 + w
    if (m->final_norm) vec_fill(m->final_norm, c->dim, one);  // LayerNorm biases stay 0
    if (m->pos_embed) vec_normal(m->pos_embed, ((size_t)c->max_seq_len + 2) * c->dim, 0.02f, &r);
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        for (int p = 0; p < N_PROJ; p++)
            if (L->w[p].rows) vec_normal(L->w[p].data, (size_t)L->w[p].rows * L->w[p].cols, 0.02f, &r);
        vec_fill(L->attn_norm, c->dim, one);
        vec_fill(L->mlp_norm, c->dim, one);
        if (L->attn_out_norm) vec_fill(L->attn_out_norm, c->dim, one);
        if (L->mlp_out_norm) vec_fill(L->mlp_out_norm, c->dim, one);
    }
}

size_t model_num_params(const Model *m) {
    const Config *c = &m->cfg;
    int nb = c->opt ? 2 : 1;  // norm weights (and LayerNorm biases)
    size_t n = (size_t)c->vocab_size * c->dim * (c->tie_embeddings ? 1 : 2) + (c->no_final_norm ? 0 : nb * c->dim);
    if (c->opt) n += ((size_t)c->max_seq_len + 2) * c->dim;
    for (int p = 0; p < N_PROJ; p++) {
        int out, in;
        proj_dims(c, p, &out, &in);
        n += (size_t)c->n_layers * out * in;
        if (m->layers && m->layers[0].bias[p]) n += (size_t)c->n_layers * out;
    }
    n += (size_t)c->n_layers * (c->sandwich_norms ? 4 : 2 * nb) * c->dim;
    return n;
}
