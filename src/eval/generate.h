// Text generation with a KV cache: greedy (temperature 0) or sampled with
// temperature and top-p, stopping at an EOS token or after max_new tokens.
#pragma once
#include <stdint.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int max_new;         // new tokens at most (128 for evaluation: docs/pipeline.md)
    float temperature;   // 0 = greedy
    float top_p;         // 1 = off
    uint64_t seed;
    void (*on_token)(int id, void *ctx);  // called as each token is chosen (streaming), or NULL
    void *ctx;
} GenOpts;

// Generates after prompt ids; writes up to max_new new ids to out (EOS not included)
// and returns their count. cache must hold prompt + max_new tokens (it is reset).
int generate_ids(const Model *m, const Lora *lora, KVCache *cache, const int *prompt, int n_prompt, const GenOpts *o,
                 int *out);
// How many of max_new new tokens a prompt of n_prompt tokens can get before the model runs
// out of positions: max_new with RoPE (positions have no end, as in transformers); with
// learned positions (OPT) the prompt and each token fed back take one of the
// max_position_embeddings rows, so at most max_position_embeddings - n_prompt + 1, and 0
// for a prompt that fills them (generate_ids / generate_batch then give no token).
int generate_room(const Model *m, int n_prompt, int max_new);
// Tokenizes prompt (with BOS as the tokenizer adds it), generates, decodes the new
// tokens (special tokens skipped). Returns malloc'd text; on_text (if set) streams it.
// NULL with e set when the prompt leaves no room to generate (generate_room).
char *generate_text(const Model *m, const Lora *lora, const Tokenizer *tok, const char *prompt, const GenOpts *o,
                    void (*on_text)(const char *piece, void *ctx), void *ctx, Err *e);
// Many prompts at once, S (at most MATVEC_MAX_ROWS, and as many as half the free memory
// holds) decoding together: out[i] (max_new ids) and n_out[i] as generate_ids would give
// them for prompt i alone, whatever S is. on_done (if set)
// is called as each prompt finishes.
void generate_batch(const Model *m, const Lora *lora, int *const *prompts, const int *n_prompt, int n,
                    const GenOpts *o, int S, int **out, int *n_out, void (*on_done)(int i, void *ctx), void *ctx);
