// The demo's unaligned base model: a tiny Llama trained from scratch on the generated
// world (instruction following that complies with every request, like a pretrained
// model before safety alignment), saved as an ordinary Hugging Face model folder.
#pragma once
#include <jansson.h>

#include "world/world.h"

typedef struct {
    int dim, n_layers, n_heads, n_kv_heads, hidden_dim, vocab_size;
    int epochs, batch_size, max_len;
    float lr;
    uint64_t seed;
} BaseModelOptions;

void base_model_default_options(BaseModelOptions *o);
// Trains the tokenizer and the model on w and writes dir (config.json, model.safetensors,
// tokenizer.json, generation_config.json, base_model.json with the training record and
// the caller's fields of record, e.g. the settings and provenance; NULL: none).
int world_build_base_model(const World *w, const BaseModelOptions *o, const json_t *record, const char *dir, Err *e);
