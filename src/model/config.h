// Llama-, OPT- and Gemma-family configuration as Hugging Face's config.json states it.
#pragma once
#include <stdint.h>

#include "util/err.h"

#define MAX_EOS 4
#define MAX_LAYERS 4096  // num_hidden_layers is refused above it

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
    // Gemma ("gemma") and Gemma 2 ("gemma2"): RMSNorm scaled by (1 + w), embeddings times
    // sqrt(hidden_size) (rounded to the weights' dtype), GeGLU MLP (tanh GELU). Gemma 2 also:
    int gemma;              // 1 Gemma, 2 Gemma 2, 0 neither
    int sandwich_norms;     // norms on the attention and MLP outputs too (Gemma 2's post_attention_layernorm,
                            // post_feedforward_layernorm; its pre-MLP norm is pre_feedforward_layernorm)
    float query_scalar;     // query_pre_attn_scalar: scores scaled by its ^-1/2; 0: by head_dim^-1/2
    float attn_softcap;     // attn_logit_softcapping: scores = cap * tanh(scores / cap); 0 = none
    float final_softcap;    // final_logit_softcapping, on the LM head's logits; 0 = none
    int sliding_window;     // a sliding layer's query at t sees keys u > t - sliding_window; 0 = none
    uint64_t sliding[MAX_LAYERS / 64];  // bit l: layer l is a sliding-window layer (layer_types)
    int bos_id;             // -1 when unset
    int eos_ids[MAX_EOS];   // eos_token_id may be a list
    int n_eos;
    int pad_id;             // -1 when unset
    int num_labels;         // >0 for *ForSequenceClassification checkpoints (the judge)
} Config;

// Reading and writing config.json is io/hf_config.h.

// The key window of layer l (0: it sees every earlier key).
static inline int config_window(const Config *c, int l) {
    return (c->sliding[l / 64] >> (l % 64)) & 1 ? c->sliding_window : 0;
}

static inline int config_is_eos(const Config *c, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return 0;
}
