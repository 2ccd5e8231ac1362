// Llama- and OPT-family configuration as Hugging Face's config.json states it.
#pragma once
#include "util/err.h"

#define MAX_EOS 4

typedef struct {
    char arch[64];          // "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", ...
    char model_type[32];    // "llama", "qwen2", "mistral", "opt"
    int vocab_size;
    int dim;                // hidden_size
    int hidden_dim;         // intermediate_size (OPT: ffn_dim)
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int max_seq_len;        // max_position_embeddings
    float norm_eps;         // rms_norm_eps (OPT: torch LayerNorm's 1e-5)
    float rope_theta;
    int tie_embeddings;     // tie_word_embeddings
    int qkv_bias;           // attention_bias (llama) or implied by qwen2
    // OPT (model_type "opt"): LayerNorm with bias, learned positions (offset 2), ReLU
    // fc1/fc2 MLP (no gate), a bias on every projection, no RoPE.
    int opt;
    int norm_after;         // OPT do_layer_norm_before = false: each norm follows its residual add
    int no_final_norm;      // OPT without final_layer_norm (post-norm, or _remove_final_layer_norm)
    int bos_id;             // -1 when unset
    int eos_ids[MAX_EOS];   // eos_token_id may be a list
    int n_eos;
    int pad_id;             // -1 when unset
    int num_labels;         // >0 for *ForSequenceClassification checkpoints (the judge)
} Config;

// Reading and writing config.json is io/hf_config.h.

static inline int config_is_eos(const Config *c, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return 0;
}
