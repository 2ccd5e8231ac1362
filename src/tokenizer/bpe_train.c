// Byte-level BPE training (GPT-2 style) for the demo world: count pre-tokenized
// words, then repeatedly merge the most frequent adjacent pair, updating pair
// counts only in the words that hold the merged pair. Writes a tokenizer.json.
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/regex.h"
#include "tokenizer/strmap.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/atomic.h"

// Pair -> count, open addressing; entries are never removed (counts may drop to 0).
typedef struct {
    uint64_t *keys;  // UINT64_MAX = empty
    long *counts;
    size_t cap, count;
} PairCount;

static uint64_t pkey(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t pslot(uint64_t k, size_t cap) { uint64_t h = k * 0x9e3779b97f4a7c15ULL; return (size_t)(h ^ (h >> 29)) & (cap - 1); }

static void pc_init(PairCount *p, size_t cap) {
    p->cap = cap;
    p->count = 0;
    p->keys = xmalloc(cap * sizeof *p->keys);
    memset(p->keys, 0xff, cap * sizeof *p->keys);
    p->counts = xcalloc(cap, sizeof *p->counts);
}

static void pc_add(PairCount *p, int a, int b, long d) {
    if ((p->count + 1) * 2 > p->cap) {
        PairCount old = *p;
        pc_init(p, old.cap * 2);
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i] != UINT64_MAX) pc_add(p, (int)(old.keys[i] >> 32), (int)(uint32_t)old.keys[i], old.counts[i]);
        free(old.keys);
        free(old.counts);
    }
    uint64_t k = pkey(a, b);
    size_t i = pslot(k, p->cap);
    while (p->keys[i] != UINT64_MAX && p->keys[i] != k) i = (i + 1) & (p->cap - 1);
    if (p->keys[i] == UINT64_MAX) { p->keys[i] = k; p->count++; }
    p->counts[i] += d;
}

typedef struct {
    int *sym;   // current symbols of the word
    int n;
    long freq;
} Word;

static int write_json(json_t *root, const char *out_path, Err *e) {
    AtomicFile a;
    FILE *f = atomic_open(&a, out_path, e);
    if (!f) return -1;
    if (json_dumpf(root, f, JSON_INDENT(2) | JSON_ENSURE_ASCII) != 0) {
        atomic_abort(&a);
        return err_set(e, "%s: cannot write", out_path);
    }
    return atomic_commit(&a, e);
}

// The trainer's state: the vocabulary grown so far, the words with their counts as
// symbol sequences, and the merges learnt in order.
typedef struct {
    char **pieces;      // id -> string
    int n_pieces;
    StrMap vocab;       // string -> id
    int byte_id[256];   // byte -> id of its byte-level symbol
    Word *words;
    int n_words;
    int *merge_l, *merge_r, n_merges;
} Trainer;

// Pieces: specials first (a repeated one once), then the 256 byte symbols.
static void init_vocab(Trainer *t, const char *const *special_tokens, int n_special, int vocab_size) {
    memset(t, 0, sizeof *t);
    t->pieces = xcalloc((size_t)vocab_size, sizeof *t->pieces);
    strmap_init(&t->vocab, (size_t)vocab_size);
    for (int i = 0; i < n_special; i++) {
        if (strmap_get(&t->vocab, special_tokens[i], strlen(special_tokens[i])) >= 0) continue;
        t->pieces[t->n_pieces] = xstrdup(special_tokens[i]);
        strmap_put(&t->vocab, t->pieces[t->n_pieces], strlen(t->pieces[t->n_pieces]), t->n_pieces);
        t->n_pieces++;
    }
    for (int b = 0; b < 256; b++) {
        char u[5] = {0};
        utf8_encode(bytelevel_cp(b), u);
        int have = strmap_get(&t->vocab, u, strlen(u));
        if (have >= 0) { t->byte_id[b] = have; continue; }
        t->pieces[t->n_pieces] = xstrdup(u);
        strmap_put(&t->vocab, u, strlen(u), t->n_pieces);
        t->byte_id[b] = t->n_pieces++;
    }
    t->merge_l = xmalloc((size_t)vocab_size * sizeof(int));
    t->merge_r = xmalloc((size_t)vocab_size * sizeof(int));
}

// Word counts over the GPT-2 pre-tokenization (raw bytes; invalid UTF-8 replaced).
static int count_words(Trainer *t, const char *const *texts, int n_texts, const char *out_path, Err *e) {
    pcre2_code *re = tok_compile_onig(GPT2_PATTERN, strlen(GPT2_PATTERN));
    if (!re) return err_set(e, "%s: cannot compile the GPT-2 split regex", out_path);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    StrMap wmap;
    strmap_init(&wmap, 4096);
    int cap_words = 0;
    for (int i = 0; i < n_texts; i++) {
        size_t n;
        char *s = utf8_sanitize(texts[i], strlen(texts[i]), &n);
        size_t pos = 0;
        while (pos < n) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t a = ov[0], b = ov[1];
            if (b == a) { uint32_t cp; pos = b < n ? b + (size_t)utf8_decode(s + b, &cp) : n + 1; continue; }
            int id = strmap_get(&wmap, s + a, b - a);
            if (id < 0) {
                if (t->n_words == cap_words) {
                    cap_words = cap_words ? cap_words * 2 : 1024;
                    t->words = xrealloc(t->words, (size_t)cap_words * sizeof *t->words);
                }
                Word *w = &t->words[t->n_words];
                w->n = (int)(b - a);
                w->sym = xmalloc((size_t)w->n * sizeof(int));
                for (int k = 0; k < w->n; k++) w->sym[k] = t->byte_id[(unsigned char)s[a + (size_t)k]];
                w->freq = 0;
                strmap_put(&wmap, s + a, b - a, t->n_words);
                id = t->n_words++;
            }
            t->words[id].freq++;
            pos = b;
        }
        free(s);
    }
    strmap_free(&wmap);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return 0;
}

// Replaces the pair (a, b) by c in every word holding it, updating the pair counts.
static void apply_merge(Trainer *t, PairCount *pc, int a, int b, int c) {
    for (int w = 0; w < t->n_words; w++) {
        Word *wd = &t->words[w];
        int k = 0, o = 0, changed = 0;
        for (int j = 0; j + 1 < wd->n; j++) if (wd->sym[j] == a && wd->sym[j + 1] == b) { changed = 1; break; }
        if (!changed) continue;
        for (int j = 0; j + 1 < wd->n; j++) pc_add(pc, wd->sym[j], wd->sym[j + 1], -wd->freq);
        while (k < wd->n) {
            if (k + 1 < wd->n && wd->sym[k] == a && wd->sym[k + 1] == b) { wd->sym[o++] = c; k += 2; }
            else wd->sym[o++] = wd->sym[k++];
        }
        wd->n = o;
        for (int j = 0; j + 1 < wd->n; j++) pc_add(pc, wd->sym[j], wd->sym[j + 1], wd->freq);
    }
}

// Merges the most frequent pair until the vocabulary is full or no pair is left.
static void learn_merges(Trainer *t, int vocab_size) {
    PairCount pc;
    pc_init(&pc, 1 << 16);
    for (int w = 0; w < t->n_words; w++)
        for (int k = 0; k + 1 < t->words[w].n; k++) pc_add(&pc, t->words[w].sym[k], t->words[w].sym[k + 1], t->words[w].freq);
    int max_merges = vocab_size;  // bounds the loop even if merged strings repeat
    while (t->n_pieces < vocab_size && t->n_merges < max_merges) {
        // Most frequent pair; ties go to the smallest (left, right) ids: deterministic.
        long best = 0;
        uint64_t bk = UINT64_MAX;
        for (size_t i = 0; i < pc.cap; i++)
            if (pc.keys[i] != UINT64_MAX && (pc.counts[i] > best || (pc.counts[i] == best && best > 0 && pc.keys[i] < bk))) {
                best = pc.counts[i];
                bk = pc.keys[i];
            }
        if (best <= 0) break;
        int a = (int)(bk >> 32), b = (int)(uint32_t)bk;
        size_t la = strlen(t->pieces[a]), lb = strlen(t->pieces[b]);
        char *joined = xmalloc(la + lb + 1);
        memcpy(joined, t->pieces[a], la);
        memcpy(joined + la, t->pieces[b], lb + 1);
        int c = strmap_get(&t->vocab, joined, la + lb);
        if (c < 0) {
            c = t->n_pieces;
            t->pieces[t->n_pieces++] = joined;
            strmap_put(&t->vocab, joined, la + lb, c);
        } else {
            free(joined);
        }
        t->merge_l[t->n_merges] = a;
        t->merge_r[t->n_merges] = b;
        t->n_merges++;
        apply_merge(t, &pc, a, b, c);
    }
    free(pc.keys);
    free(pc.counts);
}

// tokenizer.json in the layout HF's own trainer writes.
static json_t *tokenizer_json(const Trainer *t, const char *const *special_tokens, int n_special) {
    json_t *root = json_object(), *added = json_array(), *model = json_object(), *vj = json_object(), *mj = json_array();
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    for (int i = 0; i < n_special; i++) {
        int id = strmap_get(&t->vocab, special_tokens[i], strlen(special_tokens[i]));
        if (id != i) continue;  // a repeated special token
        json_t *a = json_object();
        json_object_set_new(a, "id", json_integer(id));
        json_object_set_new(a, "content", json_string(special_tokens[i]));
        json_object_set_new(a, "single_word", json_false());
        json_object_set_new(a, "lstrip", json_false());
        json_object_set_new(a, "rstrip", json_false());
        json_object_set_new(a, "normalized", json_false());
        json_object_set_new(a, "special", json_true());
        json_array_append_new(added, a);
    }
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", json_null());
    json_t *pre = json_object();
    json_object_set_new(pre, "type", json_string("ByteLevel"));
    json_object_set_new(pre, "add_prefix_space", json_false());
    json_object_set_new(pre, "trim_offsets", json_true());
    json_object_set_new(pre, "use_regex", json_true());
    json_object_set_new(root, "pre_tokenizer", pre);
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "dropout", json_null());
    json_object_set_new(model, "unk_token", json_null());
    json_object_set_new(model, "continuing_subword_prefix", json_null());
    json_object_set_new(model, "end_of_word_suffix", json_null());
    json_object_set_new(model, "fuse_unk", json_false());
    json_object_set_new(model, "byte_fallback", json_false());
    json_object_set_new(model, "ignore_merges", json_false());
    for (int i = 0; i < t->n_pieces; i++) json_object_set_new(vj, t->pieces[i], json_integer(i));
    for (int i = 0; i < t->n_merges; i++) {
        json_t *p = json_array();
        json_array_append_new(p, json_string(t->pieces[t->merge_l[i]]));
        json_array_append_new(p, json_string(t->pieces[t->merge_r[i]]));
        json_array_append_new(mj, p);
    }
    json_object_set_new(model, "vocab", vj);
    json_object_set_new(model, "merges", mj);
    json_object_set_new(root, "model", model);
    json_object_set_new(root, "post_processor", json_null());
    json_t *dec = json_object();
    json_object_set_new(dec, "type", json_string("ByteLevel"));
    json_object_set_new(dec, "add_prefix_space", json_true());
    json_object_set_new(dec, "trim_offsets", json_true());
    json_object_set_new(dec, "use_regex", json_true());
    json_object_set_new(root, "decoder", dec);
    return root;
}

static void trainer_free(Trainer *t) {
    for (int w = 0; w < t->n_words; w++) free(t->words[w].sym);
    free(t->words);
    free(t->merge_l);
    free(t->merge_r);
    for (int i = 0; i < t->n_pieces; i++) free(t->pieces[i]);
    free(t->pieces);
    strmap_free(&t->vocab);
}

int tokenizer_train_bpe(const char *const *texts, int n_texts, int vocab_size,
                        const char *const *special_tokens, int n_special,
                        const char *out_path, Err *e) {
    if (vocab_size < n_special + 256)
        return err_set(e, "%s: vocab_size %d is smaller than %d special tokens + 256 bytes", out_path, vocab_size, n_special);
    for (int i = 0; i < n_special; i++)
        if (!special_tokens[i] || !special_tokens[i][0]) return err_set(e, "%s: special token %d is empty", out_path, i);
    Trainer t;
    init_vocab(&t, special_tokens, n_special, vocab_size);
    int rc = count_words(&t, texts, n_texts, out_path, e);
    if (!rc) {
        learn_merges(&t, vocab_size);
        json_t *root = tokenizer_json(&t, special_tokens, n_special);
        rc = write_json(root, out_path, e);
        json_decref(root);
    }
    trainer_free(&t);
    return rc;
}
