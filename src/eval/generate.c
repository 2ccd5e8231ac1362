#include "eval/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/rng.h"

// Resets the cache and runs the prompt through it in chunks; 0 if it cannot be generated from.
static int prefill(const Model *m, const Lora *lora, KVCache *c, const int *prompt, int n_prompt) {
    c->len = 0;
    if (n_prompt <= 0 || n_prompt >= c->max_T) return 0;
    for (int i = 0; i < n_prompt; i += c->n_max) {
        int k = n_prompt - i < c->n_max ? n_prompt - i : c->n_max;
        model_forward_cached(m, lora, c, prompt + i, k);
    }
    return 1;
}

// The next token from the cache's logits: greedy, or sampled with the options.
static int pick(const Config *cfg, KVCache *c, const GenOpts *o, Rng *r) {
    return o->temperature <= 0 ? logits_argmax(c->logits, cfg->vocab_size)
                               : logits_sample(c->logits, cfg->vocab_size, o->temperature, o->top_p, r);
}

int generate_ids(const Model *m, const Lora *lora, KVCache *c, const int *prompt, int n_prompt, const GenOpts *o,
                 int *out) {
    const Config *cfg = &m->cfg;
    Rng r;
    rng_seed(&r, o->seed);
    int n = 0;
    if (!prefill(m, lora, c, prompt, n_prompt)) return 0;
    while (n < o->max_new) {
        int next = pick(cfg, c, o, &r);
        if (config_is_eos(cfg, next)) break;
        out[n++] = next;
        if (o->on_token) o->on_token(next, o->ctx);
        if (c->len >= c->max_T) break;
        model_forward_cached(m, lora, c, &next, 1);
    }
    return n;
}

// How many sequences of up to max_T tokens fit beside the model: their KV caches and row
// buffers within half the memory the system has free (at least one).
static int sequences_that_fit(const Model *m, int S, int max_T) {
    const Config *c = &m->cfg;
    size_t C = c->dim, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim,
           F = c->hidden_dim, T = max_T < c->max_seq_len ? max_T : c->max_seq_len;
    size_t per = 4 * (2 * (size_t)c->n_layers * T * KV + 64 * (4 * C + 3 * Q + 3 * F + KV) + c->vocab_size +
                      (size_t)c->n_heads * T);
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return S;
    size_t fit = (size_t)pages * (size_t)page / 2 / per;
    return fit < 1 ? 1 : fit < (size_t)S ? (int)fit : S;
}

// Continuous batching: up to S sequences decode together (the weights are read once per
// step for all of them); a finished sequence's slot takes the next prompt. Each prompt
// goes through exactly the steps generate_ids would take (prefill alone, then one token
// per step, the same stopping rules and, when sampling, its own generator seeded with
// o->seed), and model_decode_batch computes each row as a single-sequence call would, so
// the outputs are those of generate_ids, prompt by prompt.
void generate_batch(const Model *m, const Lora *lora, int *const *prompts, const int *n_prompt, int n,
                    const GenOpts *o, int S, int **out, int *n_out, void (*on_done)(int i, void *ctx), void *ctx) {
    const Config *cfg = &m->cfg;
    int max_T = 1;
    for (int i = 0; i < n; i++) {
        int need = n_prompt[i] + o->max_new + 1;
        max_T = need > max_T ? need : max_T;
    }
    S = S > n ? n : S;  // no more slots than prompts, and no more than memory holds
    DecodeBatch *d = decode_batch_new(m, sequences_that_fit(m, S < 1 ? 1 : S, max_T));
    S = d->S;
    KVCache *cache[MATVEC_MAX_ROWS], *step[MATVEC_MAX_ROWS];
    int idx[MATVEC_MAX_ROWS], tok[MATVEC_MAX_ROWS];
    Rng rng[MATVEC_MAX_ROWS];
    for (int s = 0; s < S; s++) cache[s] = kvcache_new(m, max_T, 64), idx[s] = -1;
    int next = 0;
    for (;;) {
        for (int s = 0; s < S; s++)
            while (idx[s] < 0 && next < n) {  // a free slot takes the next prompt and prefills it
                int i = next++;
                n_out[i] = 0;
                if (o->max_new <= 0 || !prefill(m, lora, cache[s], prompts[i], n_prompt[i])) {
                    if (on_done) on_done(i, ctx);
                    continue;
                }
                rng_seed(&rng[s], o->seed);
                idx[s] = i;
            }
        int ns = 0;
        for (int s = 0; s < S; s++) {  // each live sequence picks its token; some finish here
            int i = idx[s];
            if (i < 0) continue;
            KVCache *c = cache[s];
            int t = pick(cfg, c, o, &rng[s]);
            int done = config_is_eos(cfg, t);
            if (!done) {
                out[i][n_out[i]++] = t;
                done = n_out[i] >= o->max_new || c->len >= c->max_T;
            }
            if (done) {
                idx[s] = -1;
                if (on_done) on_done(i, ctx);
            } else {
                step[ns] = c;
                tok[ns++] = t;
            }
        }
        if (!ns) {
            if (next >= n) break;
            continue;
        }
        model_decode_batch(m, lora, d, step, tok, ns);
    }
    for (int s = 0; s < S; s++) kvcache_free(cache[s]);
    decode_batch_free(d);
}

int generate_room(const Model *m, int n_prompt, int max_new) {
    int L = m->cfg.max_seq_len;
    if (!m->pos_embed) return max_new;
    if (n_prompt >= L) return 0;
    return max_new < L - n_prompt + 1 ? max_new : L - n_prompt + 1;
}

// Streams whole UTF-8 characters to the caller as tokens arrive.
typedef struct { TokenStream *ts; void (*on_text)(const char *, void *); void *ctx; } Streamer;
static void stream_token(int id, void *p) {
    Streamer *s = p;
    char *piece = tokstream_push(s->ts, id);
    s->on_text(piece, s->ctx);
    free(piece);
}

char *generate_text(const Model *m, const Lora *lora, const Tokenizer *tok, const char *prompt, const GenOpts *o,
                    void (*on_text)(const char *piece, void *ctx), void *ctx, Err *e) {
    int *ids = NULL;
    int n = tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids);
    if (n < 0) n = 0;
    if (o->max_new > 0 && generate_room(m, n, o->max_new) <= 0) {
        free(ids);
        err_set(e, "the prompt has %d tokens and the model's learned positions end at %d (max_position_embeddings): "
                   "no room to generate", n, m->cfg.max_seq_len);
        return NULL;
    }
    int maxT = n + o->max_new + 1;
    KVCache *c = kvcache_new(m, maxT, n > 64 ? 64 : (n > 0 ? n : 1));
    int *out = xmalloc((o->max_new + 1) * sizeof(int));
    GenOpts go = *o;
    Streamer st = {on_text ? tokstream_new(tok, 1) : NULL, on_text, ctx};
    if (on_text) { go.on_token = stream_token; go.ctx = &st; }
    int k = generate_ids(m, lora, c, ids, n, &go, out);
    if (on_text) {
        char *rest = tokstream_finish(st.ts);
        on_text(rest, ctx);
        free(rest);
        tokstream_free(st.ts);
    }
    char *text = tokenizer_decode(tok, out, k, 1);
    free(out);
    free(ids);
    kvcache_free(c);
    return text;
}
