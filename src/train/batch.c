#include "train/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tasks.h"

int encode_dataset(const Tokenizer *tok, int eos_id, const Dataset *d, int max_len, EncodedSet *out, Err *e) {
    memset(out, 0, sizeof *out);
    out->ex = xcalloc(d->n ? d->n : 1, sizeof(Encoded));
    out->n = d->n;
    out->max_len = max_len;
    const char *eos = tokenizer_piece(tok, eos_id);
    if (!eos) {
        encoded_free(out);  // on error the caller gets nothing to free
        return err_set(e, "tokenizer has no token for the model's eos id %d", eos_id);
    }
    for (int i = 0; i < d->n; i++) {
        char *prompt = prompt_alpaca(&d->rows[i]);
        size_t lp = strlen(prompt), lo = strlen(d->rows[i].output), le = strlen(eos);
        char *full = xmalloc(lp + lo + le + 1);
        memcpy(full, prompt, lp);
        memcpy(full + lp, d->rows[i].output, lo);
        memcpy(full + lp + lo, eos, le + 1);
        int *pids = NULL, *ids = NULL;
        int np = tokenizer_encode(tok, prompt, lp, 1, &pids);
        int n = tokenizer_encode(tok, full, lp + lo + le, 1, &ids);
        free(prompt);
        free(full);
        free(pids);
        if (n < 0 || np < 0) {
            free(ids);
            encoded_free(out);
            return err_set(e, "sample %d: tokenization failed", i + 1);
        }
        out->ex[i].ids = ids;
        out->ex[i].n = n > max_len ? max_len : n;
        out->ex[i].prompt_len = np;
        out->n_cut += n > max_len && n > np;
        out->n_no_answer += out->ex[i].n <= np;
        if (np > out->longest_prompt) out->longest_prompt = np;
    }
    return 0;
}

int encoded_check_answers(const EncodedSet *s, const char *what, char *buf, size_t cap, Err *e) {
    if (cap) buf[0] = 0;
    int kept = 0;  // from the rows themselves: sets built in code have no counts
    for (int i = 0; i < s->n; i++) kept += s->ex[i].n > s->ex[i].prompt_len;
    if (s->n && !kept)
        return err_set(e, "%s: none of the %d rows keeps an answer token after truncation to max_len %d (longest "
                       "prompt %d tokens): training would show loss 0 and learn nothing; raise --max-len",
                       what, s->n, s->max_len, s->longest_prompt);
    if (s->n_cut || s->n_no_answer)
        snprintf(buf, cap, "%s: %d of %d rows lose answer tokens to max_len %d (%d keep none: no loss on them); "
                 "longest prompt %d tokens", what, s->n_cut > s->n_no_answer ? s->n_cut : s->n_no_answer, s->n,
                 s->max_len, s->n_no_answer, s->longest_prompt);
    return 0;
}

void encoded_free(EncodedSet *s) {
    for (int i = 0; i < s->n; i++) free(s->ex[i].ids);
    free(s->ex);
    memset(s, 0, sizeof *s);
}

void batch_alloc(Batch *b, int B, int max_len) {
    b->B = B;
    b->T = max_len;
    b->tokens = xcalloc((size_t)B * max_len, sizeof(int));
    b->targets = xcalloc((size_t)B * max_len, sizeof(int));
    b->mask = xcalloc((size_t)B * max_len, sizeof(int));
}

void batch_free(Batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

void batch_fill(Batch *b, const EncodedSet *s, const int *idx, int n, int pad_id) {
    int T = 1;
    for (int r = 0; r < n; r++) T = s->ex[idx[r]].n > T ? s->ex[idx[r]].n : T;
    b->B = n;
    b->T = T;
    for (int r = 0; r < n; r++) {
        const Encoded *x = &s->ex[idx[r]];
        for (int t = 0; t < T; t++) {
            int i = r * T + t;
            b->tokens[i] = t < x->n ? x->ids[t] : pad_id;
            b->mask[i] = t < x->n;
            // position t predicts token t+1 when that token belongs to the target
            b->targets[i] = (t + 1 < x->n && t + 1 >= x->prompt_len) ? x->ids[t + 1] : -1;
        }
    }
}
