// Hugging Face checkpoint folders: config.json + model.safetensors (single or sharded)
// in transformers' tensor names, read into and written from a Model (docs/formats.md).
#include "io/hf_checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/hf_config.h"
#include "io/safetensors.h"
#include "util/atomic.h"

// Reads one named tensor into a Mat or f32 vector, checking its shape and that every
// element is finite; with dst NULL only checks that it exists with that shape and a float
// dtype.
static int read_into(const StSet *s, const char *name, MatType type, void *dst, int rows, int cols, Err *e) {
    const StTensor *t = st_find(s, name);
    if (!t) return err_set(e, "checkpoint has no tensor \"%s\"", name);
    int64_t shape[2] = {rows, cols};
    int ndim = rows > 0 ? 2 : 1;
    if (ndim == 1) shape[0] = cols;
    if (!dst) return st_check_float(t, ndim, shape, e);
    size_t n = (size_t)(rows > 0 ? rows : 1) * cols;
    if (type == MAT_F32) return st_read_f32_finite(t, dst, ndim, shape, e);
    if (t->dtype == ST_BF16 && t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) {
        memcpy(dst, t->data, n * 2);  // bf16 stays bf16: no rounding at all
        const uint16_t *h = dst;
        for (size_t i = 0; i < n; i++)
            if ((h[i] & 0x7f80u) == 0x7f80u)  // exponent all ones: Inf or NaN
                return err_set(e, "%s: tensor '%s' holds %s at element %zu", t->file, t->name,
                               h[i] & 0x7fu ? "NaN" : "Inf", i);
        return 0;
    }
    float *tmp = xmalloc(n * sizeof(float));
    int rc = st_read_f32_finite(t, tmp, ndim, shape, e);
    if (!rc) f32_to_bf16(tmp, dst, n);
    free(tmp);
    return rc;
}

// The norms of a layer (attn_norm, mlp_norm, then Gemma 2's attn_out_norm, mlp_out_norm)
// under the family's names.
static const char *const *norm_names(const Config *c) {
    static const char *const llama[2] = {"input_layernorm", "post_attention_layernorm"};
    static const char *const opt[2] = {"self_attn_layer_norm", "final_layer_norm"};
    static const char *const gemma2[4] = {"input_layernorm", "pre_feedforward_layernorm", "post_attention_layernorm",
                                          "post_feedforward_layernorm"};
    return c->opt ? opt : c->sandwich_norms ? gemma2 : llama;
}

// Layer l's norm k (0..3, norm_names' order): its weight, or NULL when the model has none.
static float *layer_norm_weight(const LayerWeights *L, int k) {
    float *w[4] = {L->attn_norm, L->mlp_norm, L->attn_out_norm, L->mlp_out_norm};
    return w[k];
}

int model_load(Model *m, const char *dir, MatType wt, Err *e) {
    Config c;
    if (config_load(&c, dir, e)) return -1;
    StSet *s = st_open(dir, e);
    if (!s) return -1;
    model_plan(m, &c, wt);
    char name[256];
    int rc = 0;
    Err inner;
#define READ(nm, type, dst, r, cl)                                                         \
    do {                                                                                   \
        if (!rc && read_into(s, nm, type, dst, r, cl, &inner)) {                           \
            rc = err_set(e, "%s: %s", dir, inner.msg);                                     \
        }                                                                                  \
    } while (0)
    // pass 0 checks every tensor against the plan (a config's sizes never allocate more
    // than the file holds), pass 1 allocates and reads
    for (int pass = 0; pass < 2 && !rc; pass++) {
        if (pass == 1) model_alloc_planned(m, wt);
        const char *pre = c.opt ? "model.decoder." : "model.";  // OPTForCausalLM: model.decoder.*
        snprintf(name, sizeof name, "%sembed_tokens.weight", pre);
        READ(name, wt, m->embed.data, c.vocab_size, c.dim);
        // sequence-classification checkpoints have a score head instead of lm_head
        if (!c.tie_embeddings && !c.num_labels) READ("lm_head.weight", wt, m->lm_head.data, c.vocab_size, c.dim);
        if (m->pos_embed) READ("model.decoder.embed_positions.weight", MAT_F32, m->pos_embed, c.max_seq_len + 2, c.dim);
        snprintf(name, sizeof name, "%s", c.opt ? "model.decoder.final_layer_norm.weight" : "model.norm.weight");
        if (m->final_norm) READ(name, MAT_F32, m->final_norm, 0, c.dim);
        if (m->final_norm_b) READ("model.decoder.final_layer_norm.bias", MAT_F32, m->final_norm_b, 0, c.dim);
        if (m->score) READ("score.weight", MAT_F32, m->score, c.num_labels, c.dim);
        for (int l = 0; l < c.n_layers && !rc; l++) {
            LayerWeights *L = &m->layers[l];
            for (int p = 0; p < N_PROJ; p++) {
                if (!L->w[p].rows) continue;  // OPT has no gate
                char mod[160];
                proj_module(mod, sizeof mod, &c, l, p);
                snprintf(name, sizeof name, "%s.weight", mod);
                READ(name, wt, L->w[p].data, L->w[p].rows, L->w[p].cols);
                if (L->bias[p]) {
                    snprintf(name, sizeof name, "%s.bias", mod);
                    READ(name, MAT_F32, L->bias[p], 0, L->w[p].rows);
                }
            }
            const char *const *nn = norm_names(&c);
            for (int k = 0; k < (c.sandwich_norms ? 4 : 2); k++) {
                snprintf(name, sizeof name, "%slayers.%d.%s.weight", pre, l, nn[k]);
                READ(name, MAT_F32, layer_norm_weight(L, k), 0, c.dim);
                if (!c.opt) continue;
                snprintf(name, sizeof name, "%slayers.%d.%s.bias", pre, l, nn[k]);
                READ(name, MAT_F32, k ? L->mlp_norm_b : L->attn_norm_b, 0, c.dim);
            }
        }
    }
#undef READ
    st_close(s);
    if (rc) model_free(m);
    return rc;
}

// One StWrite per tensor, converting matrices to the requested dtype.
typedef struct {
    StWrite *w;
    int n;
    void **owned;
    int n_owned;
} SaveList;

static void save_add(SaveList *s, const char *name, MatType out, const void *data, MatType in, int rows, int cols) {
    StWrite *w = &s->w[s->n++];
    w->name = xstrdup(name);
    w->dtype = out == MAT_BF16 ? ST_BF16 : ST_F32;
    w->ndim = rows > 0 ? 2 : 1;
    w->shape[0] = rows > 0 ? rows : cols;
    w->shape[1] = cols;
    size_t n = (size_t)(rows > 0 ? rows : 1) * cols;
    if (out == in) { w->data = data; return; }
    void *buf = xmalloc(n * (out == MAT_BF16 ? 2 : 4));
    if (out == MAT_BF16) f32_to_bf16(data, buf, n);
    else bf16_to_f32(data, buf, n);
    s->owned[s->n_owned++] = buf;
    w->data = buf;
}

int model_save(const Model *m, const char *dir, MatType out, size_t max_shard_bytes, Err *e) {
    const Config *c = &m->cfg;
    if (mkdir_p(dir, e)) return -1;
    int cap = 8 + c->n_layers * 24;
    SaveList s = {xcalloc(cap, sizeof(StWrite)), 0, xcalloc(cap, sizeof(void *)), 0};
    char name[256];
    const char *pre = c->opt ? "model.decoder." : "model.";
    snprintf(name, sizeof name, "%sembed_tokens.weight", pre);
    save_add(&s, name, out, m->embed.data, m->embed.type, c->vocab_size, c->dim);
    if (m->pos_embed)
        save_add(&s, "model.decoder.embed_positions.weight", out, m->pos_embed, MAT_F32, c->max_seq_len + 2, c->dim);
    const char *const *nn = norm_names(c);
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        for (int k = 0; k < (c->sandwich_norms ? 4 : 2); k++) {  // attn_norm, the projections, the other norms
            snprintf(name, sizeof name, "%slayers.%d.%s.weight", pre, l, nn[k]);
            save_add(&s, name, out, layer_norm_weight(L, k), MAT_F32, 0, c->dim);
            if (c->opt) {
                snprintf(name, sizeof name, "%slayers.%d.%s.bias", pre, l, nn[k]);
                save_add(&s, name, out, k ? L->mlp_norm_b : L->attn_norm_b, MAT_F32, 0, c->dim);
            }
            for (int p = 0; p < N_PROJ && !k; p++) {
                if (!L->w[p].rows) continue;
                char mod[160];
                proj_module(mod, sizeof mod, c, l, p);
                snprintf(name, sizeof name, "%s.weight", mod);
                save_add(&s, name, out, L->w[p].data, L->w[p].type, L->w[p].rows, L->w[p].cols);
                if (L->bias[p]) {
                    snprintf(name, sizeof name, "%s.bias", mod);
                    save_add(&s, name, out, L->bias[p], MAT_F32, 0, L->w[p].rows);
                }
            }
        }
    }
    if (m->final_norm) {
        snprintf(name, sizeof name, "%s", c->opt ? "model.decoder.final_layer_norm.weight" : "model.norm.weight");
        save_add(&s, name, out, m->final_norm, MAT_F32, 0, c->dim);
    }
    if (m->final_norm_b) save_add(&s, "model.decoder.final_layer_norm.bias", out, m->final_norm_b, MAT_F32, 0, c->dim);
    if (!c->tie_embeddings)
        save_add(&s, "lm_head.weight", out, m->lm_head.data, m->lm_head.type, c->vocab_size, c->dim);
    if (m->score) save_add(&s, "score.weight", out, m->score, MAT_F32, c->num_labels, c->dim);
    int rc = st_write_sharded(dir, "model", s.w, s.n, max_shard_bytes, e);
    if (!rc) rc = config_save(c, dir, out == MAT_BF16 ? "bfloat16" : "float32", e);
    for (int i = 0; i < s.n; i++) free((char *)s.w[i].name);
    for (int i = 0; i < s.n_owned; i++) free(s.owned[i]);
    free(s.w);
    free(s.owned);
    return rc;
}
