// Fine-tuning mixtures, splits and train/eval overlap (docs/methods.md, Harmful fine-tuning; docs/data.md, Train/eval overlap).
#include "data/mix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "util/rng.h"

void dataset_add_sample(Dataset *d, const Sample *s) {
    dataset_add(d, s->instruction, s->input, s->output, s->label, s->category, s->harmful);
}

void data_filter_harmful(const Dataset *in, int want, Dataset *out) {
    for (int i = 0; i < in->n; i++)
        if (!in->rows[i].harmful == !want) dataset_add_sample(out, &in->rows[i]);
}

void data_head(const Dataset *in, int n, Dataset *out) {
    int m = (n < 0 || n > in->n) ? in->n : n;
    for (int i = 0; i < m; i++) dataset_add_sample(out, &in->rows[i]);
}

int data_split(const Dataset *in, int n_first, Dataset *a, Dataset *b, Err *e) {
    if (n_first < 0 || n_first > in->n)
        return err_set(e, "split: cannot take %d rows of a set of %d", n_first, in->n);
    for (int i = 0; i < in->n; i++) dataset_add_sample(i < n_first ? a : b, &in->rows[i]);
    return 0;
}

void data_set_harmful(Dataset *d, int harmful) {
    for (int i = 0; i < d->n; i++) d->rows[i].harmful = harmful;
}

int data_mix(const Dataset *benign, const Dataset *harmful, int n, double p, uint64_t seed, Dataset *out, Err *e) {
    if (!(p >= 0.0 && p <= 1.0)) return err_set(e, "mix: harmful ratio %g is not in [0, 1]", p);
    if (n < 0) return err_set(e, "mix: sample count %d is negative", n);
    int k = (int)llround(p * (double)n);
    if (k > harmful->n) return err_set(e, "mix: need %d harmful rows (p=%g, n=%d), have %d", k, p, n, harmful->n);
    if (n - k > benign->n) return err_set(e, "mix: need %d benign rows (p=%g, n=%d), have %d", n - k, p, n, benign->n);
    int *order = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) order[i] = i;  // 0..k-1 harmful, k..n-1 benign
    Rng r;
    rng_seed(&r, seed);
    rng_shuffle_int(&r, order, n);
    for (int i = 0; i < n; i++) {
        int j = order[i];
        if (j < k) {
            dataset_add_sample(out, &harmful->rows[j]);
            out->rows[out->n - 1].harmful = 1;
        } else {
            dataset_add_sample(out, &benign->rows[j - k]);
        }
    }
    free(order);
    return 0;
}

// ---------------------------------------------------------------------------- overlap

char *prompt_key(const char *s) {
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, 0, &folded,
                                      UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
    const char *src = s;
    if (n >= 0) src = (const char *)folded;  // invalid UTF-8: fall back to ASCII folding of the raw bytes
    char *out = xmalloc(strlen(src) + 1), *w = out;
    int space = 0;
    for (const char *p = src; *p; p++) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') { space = 1; continue; }
        if (space && w > out) *w++ = ' ';
        space = 0;
        *w++ = (n < 0 && c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    *w = '\0';
    free(folded);
    return out;
}

// Open-addressing set of prompt keys.
typedef struct {
    char **slot;
    size_t cap;
} KeySet;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 0x100000001b3ULL; }
    return h;
}

static void keyset_build(KeySet *ks, const Dataset *d) {
    ks->cap = 16;
    while (ks->cap < (size_t)d->n * 2 + 1) ks->cap *= 2;
    ks->slot = xcalloc(ks->cap, sizeof(char *));
    for (int i = 0; i < d->n; i++) {
        char *k = prompt_key(d->rows[i].instruction);
        size_t h = fnv1a(k) & (ks->cap - 1);
        while (ks->slot[h] && strcmp(ks->slot[h], k)) h = (h + 1) & (ks->cap - 1);
        if (ks->slot[h]) free(k);
        else ks->slot[h] = k;
    }
}

// Returns the stored slot index of key, or -1.
static long keyset_find(const KeySet *ks, const char *k) {
    size_t h = fnv1a(k) & (ks->cap - 1);
    while (ks->slot[h]) {
        if (!strcmp(ks->slot[h], k)) return (long)h;
        h = (h + 1) & (ks->cap - 1);
    }
    return -1;
}

static void keyset_free(KeySet *ks) {
    for (size_t i = 0; i < ks->cap; i++) free(ks->slot[i]);
    free(ks->slot);
}

int data_overlap(const Dataset *train, const Dataset *eval) {
    KeySet ks;
    keyset_build(&ks, eval);
    int hits = 0;
    for (int i = 0; i < train->n; i++) {
        char *k = prompt_key(train->rows[i].instruction);
        hits += keyset_find(&ks, k) >= 0;
        free(k);
    }
    keyset_free(&ks);
    return hits;
}

int data_overlap_prompts(const Dataset *train, const Dataset *eval) {
    KeySet ev, tr;
    keyset_build(&ev, eval);
    keyset_build(&tr, train);
    int hits = 0;
    for (size_t i = 0; i < tr.cap; i++)
        if (tr.slot[i]) hits += keyset_find(&ev, tr.slot[i]) >= 0;
    keyset_free(&ev);
    keyset_free(&tr);
    return hits;
}

int data_drop_overlap(const Dataset *train, const Dataset *eval, Dataset *out) {
    KeySet ks;
    keyset_build(&ks, eval);
    int dropped = 0;
    for (int i = 0; i < train->n; i++) {
        char *k = prompt_key(train->rows[i].instruction);
        if (keyset_find(&ks, k) >= 0) dropped++;
        else dataset_add_sample(out, &train->rows[i]);
        free(k);
    }
    keyset_free(&ks);
    return dropped;
}
