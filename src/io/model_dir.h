// A Hugging Face model folder as antibody uses it: config.json + safetensors weights
// + tokenizer.json, with PEFT adapters merged in order (alignment, then fine-tuning).
#pragma once
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    Model model;
    Tokenizer *tok;
    int eos_id;     // the model's first EOS id
} LoadedModel;

// The checks that need no weights read: config.json (an architecture antibody runs), the
// safetensors headers, tokenizer.json present (with how to make one from tokenizer.model).
// The pipeline makes them before it creates any folder.
int model_dir_check(const char *dir, Err *e);
int model_dir_open(LoadedModel *lm, const char *dir, MatType wt, const char *const *adapters, int n_adapters, Err *e);
void model_dir_close(LoadedModel *lm);
// Copies tokenizer.json and the tokenizer/generation configs next to a saved model.
int model_dir_copy_tokenizer(const char *from_dir, const char *to_dir, Err *e);
