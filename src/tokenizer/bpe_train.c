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

int tokenizer_train_bpe(const char *const *texts, int n_texts, int vocab_size,
                        const char *const *special_tokens, int n_special,
                        const char *out_path, Err *e) {
    if (vocab_size < n_special + 256)
        return err_set(e, "%s: vocab_size %d is smaller than %d special tokens + 256 bytes", out_path, vocab_size, n_special);
    for (int i = 0; i < n_special; i++)
        if (!special_tokens[i] || !special_tokens[i][0]) return err_set(e, "%s: special token %d is empty", out_path, i);
    pcre2_code *re = tok_compile_onig(GPT2_PATTERN, strlen(GPT2_PATTERN));
    if (!re) return err_set(e, "%s: cannot compile the GPT-2 split regex", out_path);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);

    // Pieces: id -> string. Specials first, then the 256 byte symbols.
    int n_pieces = 0, cap_pieces = vocab_size;
    char **pieces = xcalloc((size_t)cap_pieces, sizeof *pieces);
    StrMap vocab;
    strmap_init(&vocab, (size_t)vocab_size);
    for (int i = 0; i < n_special; i++) {
        if (strmap_get(&vocab, special_tokens[i], strlen(special_tokens[i])) >= 0) continue;
        pieces[n_pieces] = xstrdup(special_tokens[i]);
        strmap_put(&vocab, pieces[n_pieces], strlen(pieces[n_pieces]), n_pieces);
        n_pieces++;
    }
    int byte_id[256];
    for (int b = 0; b < 256; b++) {
        char u[5] = {0};
        utf8_encode(bytelevel_cp(b), u);
        int have = strmap_get(&vocab, u, strlen(u));
        if (have >= 0) { byte_id[b] = have; continue; }
        pieces[n_pieces] = xstrdup(u);
        strmap_put(&vocab, u, strlen(u), n_pieces);
        byte_id[b] = n_pieces++;
    }

    // Word counts over the GPT-2 pre-tokenization (raw bytes; invalid UTF-8 replaced).
    StrMap wmap;
    strmap_init(&wmap, 4096);
    Word *words = NULL;
    int n_words = 0, cap_words = 0;
    for (int t = 0; t < n_texts; t++) {
        size_t n;
        char *s = utf8_sanitize(texts[t], strlen(texts[t]), &n);
        size_t pos = 0;
        while (pos < n) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t a = ov[0], b = ov[1];
            if (b == a) { uint32_t cp; pos = b < n ? b + (size_t)utf8_decode(s + b, &cp) : n + 1; continue; }
            int id = strmap_get(&wmap, s + a, b - a);
            if (id < 0) {
                if (n_words == cap_words) { cap_words = cap_words ? cap_words * 2 : 1024; words = xrealloc(words, (size_t)cap_words * sizeof *words); }
                Word *w = &words[n_words];
                w->n = (int)(b - a);
                w->sym = xmalloc((size_t)w->n * sizeof(int));
                for (int k = 0; k < w->n; k++) w->sym[k] = byte_id[(unsigned char)s[a + (size_t)k]];
                w->freq = 0;
                strmap_put(&wmap, s + a, b - a, n_words);
                id = n_words++;
            }
            words[id].freq++;
            pos = b;
        }
        free(s);
    }
    strmap_free(&wmap);
    pcre2_match_data_free(md);
    pcre2_code_free(re);

    PairCount pc;
    pc_init(&pc, 1 << 16);
    for (int w = 0; w < n_words; w++)
        for (int k = 0; k + 1 < words[w].n; k++) pc_add(&pc, words[w].sym[k], words[w].sym[k + 1], words[w].freq);

    int n_merges = 0, *merge_l = xmalloc((size_t)vocab_size * sizeof(int)), *merge_r = xmalloc((size_t)vocab_size * sizeof(int));
    int max_merges = vocab_size;  // bounds the loop even if merged strings repeat
    while (n_pieces < vocab_size && n_merges < max_merges) {
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
        size_t la = strlen(pieces[a]), lb = strlen(pieces[b]);
        char *joined = xmalloc(la + lb + 1);
        memcpy(joined, pieces[a], la);
        memcpy(joined + la, pieces[b], lb + 1);
        int c = strmap_get(&vocab, joined, la + lb);
        if (c < 0) {
            c = n_pieces;
            pieces[n_pieces++] = joined;
            strmap_put(&vocab, joined, la + lb, c);
        } else {
            free(joined);
        }
        merge_l[n_merges] = a;
        merge_r[n_merges] = b;
        n_merges++;
        // Apply the merge in every word holding the pair, updating neighbour counts.
        for (int w = 0; w < n_words; w++) {
            Word *wd = &words[w];
            int k = 0, o = 0, changed = 0;
            for (int j = 0; j + 1 < wd->n; j++) if (wd->sym[j] == a && wd->sym[j + 1] == b) { changed = 1; break; }
            if (!changed) continue;
            for (int j = 0; j + 1 < wd->n; j++) pc_add(&pc, wd->sym[j], wd->sym[j + 1], -wd->freq);
            while (k < wd->n) {
                if (k + 1 < wd->n && wd->sym[k] == a && wd->sym[k + 1] == b) { wd->sym[o++] = c; k += 2; }
                else wd->sym[o++] = wd->sym[k++];
            }
            wd->n = o;
            for (int j = 0; j + 1 < wd->n; j++) pc_add(&pc, wd->sym[j], wd->sym[j + 1], wd->freq);
        }
    }

    // tokenizer.json in the layout HF's own trainer writes.
    json_t *root = json_object(), *added = json_array(), *model = json_object(), *vj = json_object(), *mj = json_array();
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    for (int i = 0; i < n_special; i++) {
        int id = strmap_get(&vocab, special_tokens[i], strlen(special_tokens[i]));
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
    for (int i = 0; i < n_pieces; i++) json_object_set_new(vj, pieces[i], json_integer(i));
    for (int i = 0; i < n_merges; i++) {
        json_t *p = json_array();
        json_array_append_new(p, json_string(pieces[merge_l[i]]));
        json_array_append_new(p, json_string(pieces[merge_r[i]]));
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
    int rc = write_json(root, out_path, e);

    json_decref(root);
    for (int w = 0; w < n_words; w++) free(words[w].sym);
    free(words);
    free(pc.keys);
    free(pc.counts);
    free(merge_l);
    free(merge_r);
    for (int i = 0; i < n_pieces; i++) free(pieces[i]);
    free(pieces);
    strmap_free(&vocab);
    return rc;
}
