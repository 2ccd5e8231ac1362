// Parses config.json (Hugging Face LlamaConfig / Qwen2Config / MistralConfig / OPTConfig /
// GemmaConfig / Gemma2Config).
// Every key that would change the computation is either implemented or refused.
#include "io/hf_config.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/atomic.h"
#include "util/intparse.h"

// An integer key in [0, hi], parsed exactly: an absurd size is refused by name before
// anything is sized from it (docs/reliability.md).
static int get_int(json_t *root, const char *key, int *out, int required, int64_t hi, const char *path, Err *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return err_set(e, "%s: missing required key \"%s\"", path, key);
        return 0;
    }
    int64_t x;
    char why[96];
    int rc = json_int(v, 0, hi, &x);
    if (rc) return err_set(e, "%s: \"%s\" %s", path, key, int_problem(rc, 0, hi, why, sizeof why));
    *out = (int)x;
    return 0;
}

// A token id key (bos/eos/pad): absent or null leaves *out; else in [0, vocab).
static int get_id(json_t *v, const char *key, int vocab, int *out, const char *path, Err *e) {
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    char why[96];
    int rc = json_int(v, 0, vocab - 1, &x);
    if (rc) return err_set(e, "%s: \"%s\" %s (the vocabulary has %d tokens)", path, key, int_problem(rc, 0, vocab - 1, why, sizeof why), vocab);
    *out = (int)x;
    return 0;
}

static int get_float(json_t *root, const char *key, float *out, const char *path, Err *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return err_set(e, "%s: \"%s\" must be a number", path, key);
    *out = (float)json_number_value(v);
    return 0;
}

static int truthy(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    return v && json_is_true(v);
}

// model_type and architecture: the families antibody runs.
static int read_family(Config *c, json_t *root, const char *path, Err *e) {
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt)) return err_set(e, "%s: missing \"model_type\"", path);
    snprintf(c->model_type, sizeof c->model_type, "%s", json_string_value(mt));
    if (strcmp(c->model_type, "llama") && strcmp(c->model_type, "qwen2") && strcmp(c->model_type, "mistral") &&
        strcmp(c->model_type, "opt") && strcmp(c->model_type, "gemma") && strcmp(c->model_type, "gemma2"))
        return err_set(e, "%s: unsupported model_type \"%s\" (supported: llama, qwen2, mistral, opt, gemma, gemma2)",
                       path, c->model_type);
    c->opt = !strcmp(c->model_type, "opt");
    c->gemma = !strcmp(c->model_type, "gemma") ? 1 : !strcmp(c->model_type, "gemma2") ? 2 : 0;
    json_t *archs = json_object_get(root, "architectures");
    const char *arch = json_is_array(archs) && json_array_size(archs) > 0
                           ? json_string_value(json_array_get(archs, 0)) : NULL;
    snprintf(c->arch, sizeof c->arch, "%s", arch ? arch : "LlamaForCausalLM");
    if (!strstr(c->arch, "ForCausalLM") && !strstr(c->arch, "ForSequenceClassification"))
        return err_set(e, "%s: unsupported architecture \"%s\"", path, c->arch);
    if (c->opt && strcmp(c->arch, "OPTForCausalLM") && strcmp(c->arch, "OPTForSequenceClassification"))
        return err_set(e, "%s: unsupported OPT architecture \"%s\" (only OPTForCausalLM and OPTForSequenceClassification)",
                       path, c->arch);
    const char *gemma_arch = c->gemma == 1 ? "GemmaForCausalLM" : "Gemma2ForCausalLM";
    if (c->gemma && strcmp(c->arch, gemma_arch))
        return err_set(e, "%s: unsupported %s architecture \"%s\" (only %s)", path, c->model_type, c->arch, gemma_arch);
    return 0;
}

// A boolean key: absent or null leaves *out.
static int get_bool(json_t *root, const char *key, int *out, const char *path, Err *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return err_set(e, "%s: \"%s\" must be true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

// OPTConfig's keys in place of read_sizes, read_rope and read_layer_options (defaults as
// transformers' OPTConfig). What antibody does not compute is refused by name:
// project_in/project_out (OPT-350M), activations other than ReLU, enable_bias=false,
// LayerNorms without weights.
static int read_opt(Config *c, json_t *root, const char *path, Err *e) {
    if (get_int(root, "vocab_size", &c->vocab_size, 1, 1 << 24, path, e) ||
        get_int(root, "hidden_size", &c->dim, 1, 1 << 17, path, e) ||
        get_int(root, "ffn_dim", &c->hidden_dim, 1, 1 << 20, path, e) ||
        get_int(root, "num_hidden_layers", &c->n_layers, 1, 1 << 12, path, e) ||
        get_int(root, "num_attention_heads", &c->n_heads, 1, 1 << 12, path, e))
        return -1;
    c->max_seq_len = 2048;  // sizes the learned position table: bounded, and checked against the file
    if (get_int(root, "max_position_embeddings", &c->max_seq_len, 1, 1 << 20, path, e)) return -1;
    int before = 1, remove_final = 0, bias = 1, affine = 1, proj = c->dim;
    if (get_bool(root, "do_layer_norm_before", &before, path, e) ||
        get_bool(root, "_remove_final_layer_norm", &remove_final, path, e) ||
        get_bool(root, "enable_bias", &bias, path, e) ||
        get_bool(root, "layer_norm_elementwise_affine", &affine, path, e) ||
        get_int(root, "word_embed_proj_dim", &proj, 0, 1 << 17, path, e))
        return -1;
    if (proj != c->dim)
        return err_set(e, "%s: word_embed_proj_dim %d differs from hidden_size %d (OPT-350M's project_in/project_out) "
                       "is not supported", path, proj, c->dim);
    if (!bias) return err_set(e, "%s: enable_bias=false is not supported", path);
    if (!affine) return err_set(e, "%s: layer_norm_elementwise_affine=false is not supported", path);
    json_t *act = json_object_get(root, "activation_function");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "relu")))
        return err_set(e, "%s: activation_function \"%s\" is not supported (only relu)", path,
                       json_is_string(act) ? json_string_value(act) : "?");
    c->norm_after = !before;
    c->no_final_norm = !before || remove_final;  // OPTDecoder has a final LayerNorm only then
    c->n_kv_heads = c->n_heads;
    if (c->dim % c->n_heads)
        return err_set(e, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    c->norm_eps = 1e-5f;       // torch.nn.LayerNorm's default, which OPT uses
    c->rope_theta = 10000.0f;  // unused: no RoPE
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tie_embeddings = tie ? json_is_true(tie) : 1;
    return 0;
}

// Sizes, norm epsilon and RoPE base, with transformers' defaults.
static int read_sizes(Config *c, json_t *root, const char *path, Err *e) {
    if (get_int(root, "vocab_size", &c->vocab_size, 1, 1 << 24, path, e) ||
        get_int(root, "hidden_size", &c->dim, 1, 1 << 17, path, e) ||
        get_int(root, "intermediate_size", &c->hidden_dim, 1, 1 << 20, path, e) ||
        get_int(root, "num_hidden_layers", &c->n_layers, 1, 1 << 12, path, e) ||
        get_int(root, "num_attention_heads", &c->n_heads, 1, 1 << 12, path, e))
        return -1;
    c->n_kv_heads = c->n_heads;
    if (get_int(root, "num_key_value_heads", &c->n_kv_heads, 0, 1 << 12, path, e)) return -1;
    c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    if (get_int(root, "head_dim", &c->head_dim, 0, 1 << 12, path, e)) return -1;
    c->max_seq_len = 2048;
    if (get_int(root, "max_position_embeddings", &c->max_seq_len, 0, INT_MAX, path, e)) return -1;
    c->norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    if (get_float(root, "rms_norm_eps", &c->norm_eps, path, e) || get_float(root, "rope_theta", &c->rope_theta, path, e))
        return -1;
    return 0;
}

// RoPE variants: the default one is implemented, scaled ones are refused.
static int read_rope(Config *c, json_t *root, const char *path, Err *e) {
    // Newer configs keep rope_theta under rope_parameters.
    json_t *rp = json_object_get(root, "rope_parameters");
    if (json_is_object(rp)) {
        json_t *rt = json_object_get(rp, "rope_type");
        if (rt && json_is_string(rt) && strcmp(json_string_value(rt), "default"))
            return err_set(e, "%s: rope_parameters.rope_type \"%s\" is not supported yet (only default RoPE)", path,
                           json_string_value(rt));
        if (get_float(rp, "rope_theta", &c->rope_theta, path, e)) return -1;
    }
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        json_t *t = json_object_get(rs, "rope_type");
        if (!t) t = json_object_get(rs, "type");
        const char *ty = json_is_string(t) ? json_string_value(t) : "?";
        if (strcmp(ty, "default"))
            return err_set(e, "%s: rope_scaling \"%s\" (e.g. Llama-3.1 scaling) is not supported yet; refusing rather "
                           "than computing wrong positions", path, ty);
    }
    return 0;
}

// The rest of the computation: activation, biases, sliding windows, tied embeddings.
static int read_layer_options(Config *c, json_t *root, const char *path, Err *e) {
    json_t *act = json_object_get(root, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return err_set(e, "%s: hidden_act \"%s\" is not supported (only silu)", path,
                       json_is_string(act) ? json_string_value(act) : "?");
    if (truthy(root, "mlp_bias")) return err_set(e, "%s: mlp_bias=true is not supported", path);
    int tp = 1;
    if (get_int(root, "pretraining_tp", &tp, 0, INT_MAX, path, e)) return -1;
    json_t *sw = json_object_get(root, "sliding_window");
    if (sw && !json_is_null(sw) && truthy(root, "use_sliding_window"))
        return err_set(e, "%s: use_sliding_window=true is not supported", path);
    // Mistral applies its window only beyond sliding_window tokens; we never run that long.
    if (!strcmp(c->model_type, "mistral") && json_is_integer(sw) && json_integer_value(sw) < c->max_seq_len &&
        json_integer_value(sw) < 4096)
        return err_set(e, "%s: sliding_window %lld is not supported", path, (long long)json_integer_value(sw));
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tie_embeddings = tie ? json_is_true(tie) : 1;  // PretrainedConfig default is true
    c->qkv_bias = !strcmp(c->model_type, "qwen2");
    // Llama's attention_bias also puts a bias on o_proj, which antibody does not model.
    if (!c->qkv_bias && truthy(root, "attention_bias")) return err_set(e, "%s: attention_bias=true is not supported", path);
    return 0;
}

// A soft-cap key of Gemma 2: absent takes transformers' default, null turns it off.
static int get_softcap(json_t *root, const char *key, float dflt, float *out, const char *path, Err *e) {
    json_t *v = json_object_get(root, key);
    *out = !v ? dflt : 0.0f;
    if (get_float(root, key, out, path, e)) return -1;
    if (!(*out >= 0.0f) || !isfinite(*out)) return err_set(e, "%s: \"%s\" must be a positive number or null", path, key);
    return 0;
}

// GemmaConfig / Gemma2Config keys after read_sizes and read_rope (transformers' defaults
// where a key is absent: head_dim 256, num_key_value_heads 16 (Gemma) or 4 (Gemma 2)).
// What antibody does not compute is refused by name: other activations, attention_bias,
// bidirectional attention, layer types other than sliding and full attention.
static int read_gemma(Config *c, json_t *root, const char *path, Err *e) {
    int g2 = c->gemma == 2;
    if (!json_object_get(root, "head_dim")) c->head_dim = 256;
    if (!json_object_get(root, "num_key_value_heads")) c->n_kv_heads = g2 ? 4 : 16;
    // Gemma reads hidden_act (its legacy "gelu" meaning the tanh approximation); Gemma 2 hidden_activation
    const char *key = g2 ? "hidden_activation" : "hidden_act";
    json_t *act = json_object_get(root, key);
    const char *an = json_is_string(act) ? json_string_value(act) : act && !json_is_null(act) ? "?" : "gelu_pytorch_tanh";
    if (strcmp(an, "gelu_pytorch_tanh") && (g2 || strcmp(an, "gelu")))
        return err_set(e, "%s: %s \"%s\" is not supported (only gelu_pytorch_tanh)", path, key, an);
    if (truthy(root, "attention_bias")) return err_set(e, "%s: attention_bias=true is not supported", path);
    if (truthy(root, "use_bidirectional_attention"))
        return err_set(e, "%s: use_bidirectional_attention=true is not supported", path);
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tie_embeddings = tie ? json_is_true(tie) : 1;
    if (!g2) return 0;
    c->sandwich_norms = 1;
    c->query_scalar = 256.0f;
    if (get_float(root, "query_pre_attn_scalar", &c->query_scalar, path, e)) return -1;
    if (!(c->query_scalar > 0.0f) || !isfinite(c->query_scalar))
        return err_set(e, "%s: \"query_pre_attn_scalar\" must be > 0", path);
    if (get_softcap(root, "attn_logit_softcapping", 50.0f, &c->attn_softcap, path, e) ||
        get_softcap(root, "final_logit_softcapping", 30.0f, &c->final_softcap, path, e))
        return -1;
    json_t *sw = json_object_get(root, "sliding_window");
    c->sliding_window = sw ? 0 : 4096;
    if (get_int(root, "sliding_window", &c->sliding_window, 0, INT_MAX, path, e)) return -1;
    if (sw && !json_is_null(sw) && c->sliding_window < 1)
        return err_set(e, "%s: \"sliding_window\" must be >= 1 or null", path);
    json_t *types = json_object_get(root, "layer_types");
    if (types && !json_is_null(types) && (!json_is_array(types) || (int)json_array_size(types) != c->n_layers))
        return err_set(e, "%s: \"layer_types\" must list one type for each of the %d layers", path, c->n_layers);
    for (int l = 0; l < c->n_layers; l++) {
        int slide = !(l % 2);  // Gemma2Config's default: layer 0 slides, then every other one
        if (json_is_array(types)) {
            const char *t = json_string_value(json_array_get(types, l));
            if (!t || (strcmp(t, "sliding_attention") && strcmp(t, "full_attention")))
                return err_set(e, "%s: layer_types[%d] \"%s\" is not supported (sliding_attention, full_attention)", path,
                               l, t ? t : "?");
            slide = !strcmp(t, "sliding_attention");
        }
        if (slide) c->sliding[l / 64] |= 1ull << (l % 64);
    }
    return 0;
}

// Special token ids (bos, pad, eos) and a classifier's label count.
static int read_ids_and_labels(Config *c, json_t *root, const char *path, Err *e) {
    c->bos_id = -1;
    c->pad_id = -1;
    json_t *eos = json_object_get(root, "eos_token_id"), *p = json_object_get(root, "pad_token_id");
    if (get_id(json_object_get(root, "bos_token_id"), "bos_token_id", c->vocab_size, &c->bos_id, path, e)) return -1;
    if (json_is_integer(p) && json_integer_value(p) >= 0 && json_integer_value(p) < c->vocab_size)
        c->pad_id = (int)json_integer_value(p);  // only recorded; an unusable pad id is not needed
    if (json_is_array(eos)) {
        size_t i; json_t *x;
        if (json_array_size(eos) > MAX_EOS) return err_set(e, "%s: \"eos_token_id\" lists more than %d ids", path, MAX_EOS);
        json_array_foreach(eos, i, x)
            if (get_id(x, "eos_token_id", c->vocab_size, &c->eos_ids[c->n_eos++], path, e)) return -1;
    } else if (eos && !json_is_null(eos)) {
        if (get_id(eos, "eos_token_id", c->vocab_size, &c->eos_ids[c->n_eos++], path, e)) return -1;
    }
    json_t *nl = json_object_get(root, "id2label");
    if (strstr(c->arch, "ForSequenceClassification")) {
        c->num_labels = 2;
        if (json_is_object(nl)) c->num_labels = (int)json_object_size(nl);
        if (get_int(root, "num_labels", &c->num_labels, 0, 1 << 16, path, e)) return -1;
    }
    return 0;
}

// The shapes fit together (heads divide, RoPE pairs, positive sizes).
static int check_shapes(const Config *c, const char *path, Err *e) {
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->vocab_size <= 0 || c->hidden_dim <= 0)
        return err_set(e, "%s: sizes must be positive", path);
    if ((int64_t)c->n_heads * c->head_dim > (1 << 20))
        return err_set(e, "%s: num_attention_heads %d x head_dim %d is larger than any supported model", path, c->n_heads,
                       c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return err_set(e, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_heads,
                       c->n_kv_heads);
    if (!c->opt && c->head_dim % 2) return err_set(e, "%s: head_dim %d must be even for RoPE", path, c->head_dim);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0)) return err_set(e, "%s: rms_norm_eps and rope_theta must be > 0", path);
    return 0;
}

static int parse_config(Config *c, const char *path, const char *dir, Err *e) {
    memset(c, 0, sizeof *c);
    json_t *root = read_json(path, 0, e);
    if (!root) {
        if (access(path, F_OK) != 0)
            return err_set(e, "%s: cannot open (is %s a Hugging Face model folder?)", path, dir);
        return -1;
    }
    int rc = !json_is_object(root) ? err_set(e, "%s: not a JSON object", path)
             : read_family(c, root, path, e) ||
                     (c->opt     ? read_opt(c, root, path, e)
                      : c->gemma ? read_sizes(c, root, path, e) || read_rope(c, root, path, e) ||
                                       read_gemma(c, root, path, e)
                                 : read_sizes(c, root, path, e) || read_rope(c, root, path, e) ||
                                       read_layer_options(c, root, path, e)) ||
                     read_ids_and_labels(c, root, path, e) || check_shapes(c, path, e)
                 ? -1
                 : 0;
    json_decref(root);
    return rc;
}

int config_load(Config *c, const char *dir, Err *e) {
    char *path = xasprintf("%s/config.json", dir);
    int rc = parse_config(c, path, dir, e);
    free(path);
    return rc;
}

int config_save(const Config *c, const char *dir, const char *torch_dtype, Err *e) {
    json_t *r = json_object();
    json_t *archs = json_array();
    json_array_append_new(archs, json_string(c->arch));
    json_object_set_new(r, "architectures", archs);
    json_object_set_new(r, "model_type", json_string(c->model_type));
    json_object_set_new(r, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(r, "hidden_size", json_integer(c->dim));
    if (c->opt) {
        json_object_set_new(r, "ffn_dim", json_integer(c->hidden_dim));
        json_object_set_new(r, "num_hidden_layers", json_integer(c->n_layers));
        json_object_set_new(r, "num_attention_heads", json_integer(c->n_heads));
        json_object_set_new(r, "max_position_embeddings", json_integer(c->max_seq_len));
        json_object_set_new(r, "word_embed_proj_dim", json_integer(c->dim));
        json_object_set_new(r, "do_layer_norm_before", json_boolean(!c->norm_after));
        json_object_set_new(r, "_remove_final_layer_norm", json_boolean(!c->norm_after && c->no_final_norm));
        json_object_set_new(r, "activation_function", json_string("relu"));
        json_object_set_new(r, "enable_bias", json_true());
        json_object_set_new(r, "layer_norm_elementwise_affine", json_true());
        json_object_set_new(r, "tie_word_embeddings", json_boolean(c->tie_embeddings));
        goto ids;
    }
    json_object_set_new(r, "intermediate_size", json_integer(c->hidden_dim));
    json_object_set_new(r, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(r, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(r, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(r, "head_dim", json_integer(c->head_dim));
    json_object_set_new(r, "max_position_embeddings", json_integer(c->max_seq_len));
    json_object_set_new(r, "rms_norm_eps", json_real(c->norm_eps));
    json_object_set_new(r, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(r, c->gemma == 2 ? "hidden_activation" : "hidden_act",
                        json_string(c->gemma ? "gelu_pytorch_tanh" : "silu"));
    json_object_set_new(r, "tie_word_embeddings", json_boolean(c->tie_embeddings));
    if (strcmp(c->model_type, "qwen2")) json_object_set_new(r, "attention_bias", json_boolean(c->qkv_bias));
    if (!c->gemma) json_object_set_new(r, "mlp_bias", json_false());
    if (c->gemma == 2) {
        float q = c->query_scalar;  // an int in Gemma2Config
        json_object_set_new(r, "query_pre_attn_scalar", q == floorf(q) ? json_integer((json_int_t)q) : json_real(q));
        json_object_set_new(r, "attn_logit_softcapping", c->attn_softcap > 0 ? json_real(c->attn_softcap) : json_null());
        json_object_set_new(r, "final_logit_softcapping", c->final_softcap > 0 ? json_real(c->final_softcap) : json_null());
        json_object_set_new(r, "sliding_window", c->sliding_window > 0 ? json_integer(c->sliding_window) : json_null());
        json_t *types = json_array();
        for (int l = 0; l < c->n_layers; l++)
            json_array_append_new(types, json_string((c->sliding[l / 64] >> (l % 64)) & 1 ? "sliding_attention"
                                                                                           : "full_attention"));
        json_object_set_new(r, "layer_types", types);
    }
ids:
    if (c->bos_id >= 0) json_object_set_new(r, "bos_token_id", json_integer(c->bos_id));
    if (c->n_eos == 1) json_object_set_new(r, "eos_token_id", json_integer(c->eos_ids[0]));
    else if (c->n_eos > 1) {
        json_t *a = json_array();
        for (int i = 0; i < c->n_eos; i++) json_array_append_new(a, json_integer(c->eos_ids[i]));
        json_object_set_new(r, "eos_token_id", a);
    }
    if (c->pad_id >= 0) json_object_set_new(r, "pad_token_id", json_integer(c->pad_id));
    json_object_set_new(r, "torch_dtype", json_string(torch_dtype));
    char *text = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(r);
    int rc = write_file_in(dir, "config.json", text, strlen(text), e);
    free(text);
    return rc;
}
