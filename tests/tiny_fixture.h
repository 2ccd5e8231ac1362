// The tiny Llama and made-up rows the defense tests train on (tests/test_defenses.c,
// tests/test_baselines.c).
#pragma once
#include <math.h>
#include <string.h>

#include "model/model.h"
#include "train/batch.h"
#include "util/err.h"
#include "util/rng.h"

static inline Config tiny_config(int layers) {
    Config c = {.vocab_size = 31, .dim = 16, .hidden_dim = 24, .n_layers = layers, .n_heads = 4, .n_kv_heads = 2,
                .head_dim = 4, .max_seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = 1};
    strcpy(c.arch, "LlamaForCausalLM");
    strcpy(c.model_type, "llama");
    return c;
}

// A few made-up samples with prompt and answer parts.
static inline void tiny_data(EncodedSet *s, int n, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    s->n = n;
    s->max_len = 12;
    s->ex = xcalloc(n, sizeof(Encoded));
    for (int i = 0; i < n; i++) {
        int len = 6 + (int)rng_below(&r, 7);
        s->ex[i].ids = xmalloc(len * sizeof(int));
        for (int t = 0; t < len; t++) s->ex[i].ids[t] = 1 + (int)rng_below(&r, 30);
        s->ex[i].n = len;
        s->ex[i].prompt_len = 2 + (int)rng_below(&r, 3);
    }
}

static inline double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return d;
}
