// The tiny model shared by the PEFT and checkpoint harnesses and their seed generator.
#include <string.h>

#include "model/model.h"

Config fuzz_tiny_config(void);
Config fuzz_tiny_config(void) {
    Config c = {.vocab_size = 32, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .head_dim = 4, .max_seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = 1};
    strcpy(c.arch, "LlamaForCausalLM");
    strcpy(c.model_type, "llama");
    c.n_eos = 1;
    c.eos_ids[0] = 2;
    c.bos_id = 1;
    return c;
}

#include "train/batch.h"

// Four short rows of token ids below the tiny vocabulary.
void fuzz_tiny_data(EncodedSet *s);
void fuzz_tiny_data(EncodedSet *s) {
    s->n = 4;
    s->max_len = 8;
    s->ex = xcalloc(4, sizeof(Encoded));
    for (int i = 0; i < 4; i++) {
        s->ex[i].n = 5 + i;
        s->ex[i].ids = xmalloc(8 * sizeof(int));
        for (int t = 0; t < 8; t++) s->ex[i].ids[t] = 3 + (i * 7 + t * 5) % 29;
        s->ex[i].prompt_len = 2;
    }
}
