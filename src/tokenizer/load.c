// tokenizer.json, reading tokenizer.json into a Tokenizer (the file split of src/tokenizer/: internal.h).
#include <limits.h>

#include "tokenizer/internal.h"

static int bool_field(json_t *o, const char *key, int dflt, int *out, const char *path, const char *where, Err *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = dflt; return 0; }
    if (!json_is_boolean(v)) return err_set(e, "%s: %s.%s must be true or false", path, where, key);
    *out = json_is_true(v);
    return 0;
}

static int int_field(json_t *o, const char *key, int dflt, int *out, const char *path, const char *where, Err *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = dflt; return 0; }
    if (!json_is_integer(v)) return err_set(e, "%s: %s.%s must be an integer", path, where, key);
    if (json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX)  // never truncated to another id
        return err_set(e, "%s: %s.%s = %lld does not fit an int", path, where, key, (long long)json_integer_value(v));
    *out = (int)json_integer_value(v);
    return 0;
}

// A string field; *out NULL when absent or null (if allowed).
static int str_field(json_t *o, const char *key, int required, const char **out, size_t *len, const char *path, const char *where, Err *e) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (len) *len = 0;
    if (!v || json_is_null(v)) {
        if (required) return err_set(e, "%s: %s.%s is missing", path, where, key);
        return 0;
    }
    if (!json_is_string(v)) return err_set(e, "%s: %s.%s must be a string", path, where, key);
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return 0;
}

// HF pattern object {"String": "..."} or {"Regex": "..."}.
static pcre2_code *pattern_field(json_t *o, const char *path, const char *where, Err *e) {
    json_t *p = json_object_get(o, "pattern");
    if (!json_is_object(p)) { err_set(e, "%s: %s.pattern must be an object with \"String\" or \"Regex\"", path, where); return NULL; }
    json_t *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    if (json_is_string(s)) return tok_compile_re(json_string_value(s), json_string_length(s), 1, path, where, e);
    if (json_is_string(r)) return tok_compile_re(json_string_value(r), json_string_length(r), 0, path, where, e);
    err_set(e, "%s: %s.pattern must hold a \"String\" or \"Regex\" string", path, where);
    return NULL;
}

// The String of a pattern object, if it is one (for the memmem fast path).
static char *literal_field(json_t *o, size_t *len) {
    json_t *s = json_object_get(json_object_get(o, "pattern"), "String");
    if (!json_is_string(s) || json_string_length(s) == 0) return NULL;
    *len = json_string_length(s);
    char *r = xmalloc(*len + 1);
    memcpy(r, json_string_value(s), *len + 1);
    return r;
}

static int one_char(const char *s, size_t n, uint32_t *cp) {
    if (!s || n == 0) return 0;
    int l = utf8_decode(s, cp);
    return (size_t)l == n;
}

// Metaspace prepend_scheme, or the older add_prefix_space flag.
static int prepend_scheme_field(json_t *o, int *out, const char *path, const char *where, Err *e) {
    const char *ps;
    if (str_field(o, "prepend_scheme", 0, &ps, NULL, path, where, e)) return -1;
    if (ps) {
        if (!strcmp(ps, "always")) *out = PS_ALWAYS;
        else if (!strcmp(ps, "first")) *out = PS_FIRST;
        else if (!strcmp(ps, "never")) *out = PS_NEVER;
        else return err_set(e, "%s: %s.prepend_scheme \"%s\" is not one of always/first/never", path, where, ps);
        return 0;
    }
    int aps = 1;
    if (bool_field(o, "add_prefix_space", 1, &aps, path, where, e)) return -1;
    *out = aps ? PS_ALWAYS : PS_NEVER;
    return 0;
}

static int metaspace_replacement(json_t *o, uint32_t *cp, char *rep, size_t *rep_len, const char *path, const char *where, Err *e) {
    const char *r;
    size_t n;
    if (str_field(o, "replacement", 0, &r, &n, path, where, e)) return -1;
    if (!r) { r = "\xE2\x96\x81"; n = 3; }
    if (!one_char(r, n, cp)) return err_set(e, "%s: %s.replacement must be one character", path, where);
    if (rep) { memcpy(rep, r, n); *rep_len = n; }
    return 0;
}


static int load_normalizer(Tokenizer *t, json_t *n, const char *path, Err *e) {
    if (!n || json_is_null(n)) return 0;
    if (!json_is_object(n)) return err_set(e, "%s: normalizer must be an object or null", path);
    const char *type;
    if (str_field(n, "type", 1, &type, NULL, path, "normalizer", e)) return -1;
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(n, "normalizers"), *x;
        size_t i;
        if (!json_is_array(arr)) return err_set(e, "%s: normalizer Sequence.normalizers must be an array", path);
        json_array_foreach(arr, i, x) if (load_normalizer(t, x, path, e)) return -1;
        return 0;
    }
    NormStep s = {0};
    if (!strcmp(type, "Prepend")) {
        const char *p;
        size_t len;
        if (str_field(n, "prepend", 1, &p, &len, path, "normalizer Prepend", e)) return -1;
        s.kind = N_PREPEND;
        s.text = xmalloc(len + 1);
        memcpy(s.text, p, len + 1);
        s.text_len = len;
    } else if (!strcmp(type, "Replace")) {
        const char *c;
        size_t len;
        if (str_field(n, "content", 1, &c, &len, path, "normalizer Replace", e)) return -1;
        s.kind = N_REPLACE;
        if (!(s.re = pattern_field(n, path, "normalizer Replace", e))) return -1;
        s.lit = literal_field(n, &s.lit_len);
        s.text = xmalloc(len + 1);
        memcpy(s.text, c, len + 1);
        s.text_len = len;
    } else if (!strcmp(type, "NFC")) s.kind = N_NFC;
    else if (!strcmp(type, "NFD")) s.kind = N_NFD;
    else if (!strcmp(type, "NFKC")) s.kind = N_NFKC;
    else if (!strcmp(type, "NFKD")) s.kind = N_NFKD;
    else return err_set(e, "%s: normalizer type \"%s\" is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD)", path, type);
    t->norm = xrealloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *t->norm);
    t->norm[t->n_norm++] = s;
    return 0;
}

static int behavior_value(const char *b, int *out) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++) if (!strcmp(b, names[i])) { *out = i; return 0; }
    return -1;
}

static int load_pre(Tokenizer *t, json_t *p, const char *path, Err *e) {
    if (!p || json_is_null(p)) return 0;
    if (!json_is_object(p)) return err_set(e, "%s: pre_tokenizer must be an object or null", path);
    const char *type;
    if (str_field(p, "type", 1, &type, NULL, path, "pre_tokenizer", e)) return -1;
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "pretokenizers"), *x;
        size_t i;
        if (!json_is_array(arr)) return err_set(e, "%s: pre_tokenizer Sequence.pretokenizers must be an array", path);
        json_array_foreach(arr, i, x) if (load_pre(t, x, path, e)) return -1;
        return 0;
    }
    PreStep s = {0};
    if (!strcmp(type, "Split")) {
        const char *b;
        s.kind = P_SPLIT;
        if (str_field(p, "behavior", 1, &b, NULL, path, "pre_tokenizer Split", e)) return -1;
        if (behavior_value(b, &s.behavior)) return err_set(e, "%s: pre_tokenizer Split behavior \"%s\" is not supported", path, b);
        if (bool_field(p, "invert", 0, &s.invert, path, "pre_tokenizer Split", e)) return -1;
        if (!(s.re = pattern_field(p, path, "pre_tokenizer Split", e))) return -1;
    } else if (!strcmp(type, "ByteLevel")) {
        int use_regex = 1;
        s.kind = P_BYTELEVEL;
        if (bool_field(p, "add_prefix_space", 1, &s.add_prefix_space, path, "pre_tokenizer ByteLevel", e)) return -1;
        if (bool_field(p, "use_regex", 1, &use_regex, path, "pre_tokenizer ByteLevel", e)) return -1;
        if (use_regex && !(s.re = tok_compile_re(GPT2_PATTERN, strlen(GPT2_PATTERN), 0, path, "ByteLevel", e))) return -1;
    } else if (!strcmp(type, "Digits")) {
        s.kind = P_DIGITS;
        if (bool_field(p, "individual_digits", 0, &s.individual, path, "pre_tokenizer Digits", e)) return -1;
    } else if (!strcmp(type, "Metaspace")) {
        s.kind = P_METASPACE;
        if (metaspace_replacement(p, &s.rep_cp, s.rep, &s.rep_len, path, "pre_tokenizer Metaspace", e)) return -1;
        if (prepend_scheme_field(p, &s.prepend_scheme, path, "pre_tokenizer Metaspace", e)) return -1;
        if (bool_field(p, "split", 1, &s.split, path, "pre_tokenizer Metaspace", e)) return -1;
    } else {
        return err_set(e, "%s: pre_tokenizer type \"%s\" is not supported (supported: Sequence, Split, ByteLevel, Digits, Metaspace)", path, type);
    }
    t->pre = xrealloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *t->pre);
    t->pre[t->n_pre++] = s;
    return 0;
}

static int load_decoder(Tokenizer *t, json_t *d, const char *path, Err *e) {
    if (!d || json_is_null(d)) return 0;
    if (!json_is_object(d)) return err_set(e, "%s: decoder must be an object or null", path);
    t->has_decoder = 1;
    const char *type;
    if (str_field(d, "type", 1, &type, NULL, path, "decoder", e)) return -1;
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(d, "decoders"), *x;
        size_t i;
        if (!json_is_array(arr)) return err_set(e, "%s: decoder Sequence.decoders must be an array", path);
        json_array_foreach(arr, i, x) if (load_decoder(t, x, path, e)) return -1;
        return 0;
    }
    DecStep s = {0};
    if (!strcmp(type, "Replace")) {
        const char *c;
        size_t len;
        s.kind = D_REPLACE;
        if (str_field(d, "content", 1, &c, &len, path, "decoder Replace", e)) return -1;
        if (!(s.re = pattern_field(d, path, "decoder Replace", e))) return -1;
        s.lit = literal_field(d, &s.lit_len);
        s.text = xmalloc(len + 1);
        memcpy(s.text, c, len + 1);
        s.text_len = len;
    } else if (!strcmp(type, "ByteFallback")) s.kind = D_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) s.kind = D_FUSE;
    else if (!strcmp(type, "ByteLevel")) s.kind = D_BYTELEVEL;
    else if (!strcmp(type, "Strip")) {
        const char *c;
        size_t len;
        s.kind = D_STRIP;
        if (str_field(d, "content", 1, &c, &len, path, "decoder Strip", e)) return -1;
        if (!one_char(c, len, &s.strip_cp)) return err_set(e, "%s: decoder Strip.content must be one character", path);
        if (int_field(d, "start", 0, &s.start, path, "decoder Strip", e)) return -1;
        if (int_field(d, "stop", 0, &s.stop, path, "decoder Strip", e)) return -1;
    } else if (!strcmp(type, "Metaspace")) {
        s.kind = D_METASPACE;
        if (metaspace_replacement(d, &s.rep_cp, NULL, NULL, path, "decoder Metaspace", e)) return -1;
        if (prepend_scheme_field(d, &s.prepend_scheme, path, "decoder Metaspace", e)) return -1;
    } else {
        return err_set(e, "%s: decoder type \"%s\" is not supported (supported: Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace)", path, type);
    }
    t->dec = xrealloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *t->dec);
    t->dec[t->n_dec++] = s;
    return 0;
}

static int load_post(Tokenizer *t, json_t *p, const char *path, Err *e) {
    if (!p || json_is_null(p)) return 0;
    if (!json_is_object(p)) return err_set(e, "%s: post_processor must be an object or null", path);
    const char *type;
    if (str_field(p, "type", 1, &type, NULL, path, "post_processor", e)) return -1;
    if (!strcmp(type, "ByteLevel")) return 0;  // only trims offsets; ids unchanged
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "processors"), *x;
        size_t i;
        if (!json_is_array(arr)) return err_set(e, "%s: post_processor Sequence.processors must be an array", path);
        json_array_foreach(arr, i, x) if (load_post(t, x, path, e)) return -1;
        return 0;
    }
    if (strcmp(type, "TemplateProcessing"))
        return err_set(e, "%s: post_processor type \"%s\" is not supported (supported: TemplateProcessing, ByteLevel, Sequence)", path, type);
    if (t->tmpl) return err_set(e, "%s: more than one TemplateProcessing post_processor", path);
    json_t *single = json_object_get(p, "single"), *specials = json_object_get(p, "special_tokens"), *item;
    if (!json_is_array(single)) return err_set(e, "%s: post_processor TemplateProcessing.single must be an array", path);
    if (specials && !json_is_object(specials)) return err_set(e, "%s: post_processor TemplateProcessing.special_tokens must be an object", path);
    IVec v = {0};
    size_t i;
    int n_seq = 0;
    json_array_foreach(single, i, item) {
        json_t *st = json_object_get(item, "SpecialToken"), *sq = json_object_get(item, "Sequence");
        if (json_is_object(sq)) {
            const char *id = json_string_value(json_object_get(sq, "id"));
            if (!id || strcmp(id, "A")) { free(v.v); return err_set(e, "%s: post_processor TemplateProcessing.single refers to sequence \"%s\" (only A is possible)", path, id ? id : "?"); }
            ivec_push(&v, -1);
            n_seq++;
        } else if (json_is_object(st)) {
            const char *name = json_string_value(json_object_get(st, "id"));
            json_t *sp = name ? json_object_get(specials, name) : NULL, *ids = sp ? json_object_get(sp, "ids") : NULL, *x;
            size_t j;
            if (!json_is_array(ids)) { free(v.v); return err_set(e, "%s: post_processor TemplateProcessing special token \"%s\" is not in special_tokens", path, name ? name : "?"); }
            json_array_foreach(ids, j, x) {
                if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT_MAX) { free(v.v); return err_set(e, "%s: post_processor TemplateProcessing special token \"%s\" has a bad id", path, name); }
                ivec_push(&v, (int)json_integer_value(x));
            }
        } else {
            free(v.v);
            return err_set(e, "%s: post_processor TemplateProcessing.single item %zu is neither SpecialToken nor Sequence", path, i);
        }
    }
    if (n_seq != 1) { free(v.v); return err_set(e, "%s: post_processor TemplateProcessing.single must contain $A once", path); }
    t->tmpl = v.v;
    t->n_tmpl = v.n;
    return 0;
}


static int load_model(Tokenizer *t, json_t *m, const char *path, Err *e) {
    if (!json_is_object(m)) return err_set(e, "%s: \"model\" is missing or not an object", path);
    const char *type;
    if (str_field(m, "type", 0, &type, NULL, path, "model", e)) return -1;
    if (type && strcmp(type, "BPE")) return err_set(e, "%s: model type \"%s\" is not supported (only BPE)", path, type);
    json_t *dropout = json_object_get(m, "dropout");
    if (dropout && !json_is_null(dropout)) return err_set(e, "%s: model.dropout is set (BPE dropout is random; only null is supported)", path);
    const char *cp, *ew, *unk;
    if (str_field(m, "continuing_subword_prefix", 0, &cp, NULL, path, "model", e)) return -1;
    if (str_field(m, "end_of_word_suffix", 0, &ew, NULL, path, "model", e)) return -1;
    if (cp && *cp) return err_set(e, "%s: model.continuing_subword_prefix \"%s\" is not supported", path, cp);
    if (ew && *ew) return err_set(e, "%s: model.end_of_word_suffix \"%s\" is not supported", path, ew);
    if (str_field(m, "unk_token", 0, &unk, NULL, path, "model", e)) return -1;
    if (bool_field(m, "fuse_unk", 0, &t->fuse_unk, path, "model", e)) return -1;
    if (bool_field(m, "byte_fallback", 0, &t->byte_fallback, path, "model", e)) return -1;
    if (bool_field(m, "ignore_merges", 0, &t->ignore_merges, path, "model", e)) return -1;

    json_t *vocab = json_object_get(m, "vocab"), *merges = json_object_get(m, "merges"), *v;
    if (!json_is_object(vocab)) return err_set(e, "%s: model.vocab is missing or not an object", path);
    if (merges && !json_is_null(merges) && !json_is_array(merges)) return err_set(e, "%s: model.merges must be an array", path);
    strmap_init(&t->vocab, json_object_size(vocab));
    const char *key;
    int max_id = -1;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0x7ffffff)
            return err_set(e, "%s: model.vocab[\"%s\"] must be a non-negative integer id", path, key);
        int id = (int)json_integer_value(v);
        strmap_put(&t->vocab, key, strlen(key), id);
        if (id > max_id) max_id = id;
    }
    t->n_ids = max_id + 1;
    t->unk_id = -1;
    if (unk) {
        t->unk_id = strmap_get(&t->vocab, unk, strlen(unk));
        if (t->unk_id < 0) return err_set(e, "%s: model.unk_token \"%s\" is not in the vocab", path, unk);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_ids[b] = strmap_get(&t->vocab, name, 6);
    }
    size_t n_merges = merges && json_is_array(merges) ? json_array_size(merges) : 0;
    pairmap_init(&t->merges, n_merges);
    char *joined = NULL;
    size_t joined_cap = 0;
    for (size_t i = 0; i < n_merges; i++) {
        json_t *mg = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(mg)) {
            a = json_string_value(mg);
            const char *sp = strchr(a, ' ');
            if (!sp) { free(joined); return err_set(e, "%s: model.merges[%zu] \"%s\" is not \"left right\"", path, i, a); }
            la = (size_t)(sp - a);
            b = sp + 1;
            lb = strlen(b);
            if (memchr(b, ' ', lb)) { free(joined); return err_set(e, "%s: model.merges[%zu] \"%s\" has more than two parts", path, i, a); }
        } else if (json_is_array(mg) && json_array_size(mg) == 2 && json_is_string(json_array_get(mg, 0)) && json_is_string(json_array_get(mg, 1))) {
            a = json_string_value(json_array_get(mg, 0));
            la = json_string_length(json_array_get(mg, 0));
            b = json_string_value(json_array_get(mg, 1));
            lb = json_string_length(json_array_get(mg, 1));
        } else {
            free(joined);
            return err_set(e, "%s: model.merges[%zu] must be a \"left right\" string or a [left, right] pair of strings", path, i);
        }
        if (la + lb + 1 > joined_cap) { joined_cap = (la + lb + 1) * 2; joined = xrealloc(joined, joined_cap); }
        memcpy(joined, a, la);
        memcpy(joined + la, b, lb);
        int ia = strmap_get(&t->vocab, a, la), ib = strmap_get(&t->vocab, b, lb), ij = strmap_get(&t->vocab, joined, la + lb);
        if (ia < 0 || ib < 0 || ij < 0) {
            const char *which = ia < 0 ? a : ib < 0 ? b : joined;
            int wl = (int)(ia < 0 ? la : ib < 0 ? lb : la + lb);
            err_set(e, "%s: model.merges[%zu] (\"%.*s\" + \"%.*s\") refers to token \"%.*s\" which is not in the vocab",
                    path, i, (int)la, a, (int)lb, b, wl, which);
            free(joined);
            return -1;
        }
        pairmap_put(&t->merges, ia, ib, (int)i, ij);  // a repeated pair keeps the later rank, as HF's HashMap collect does
    }
    free(joined);
    return 0;
}

static int load_added(Tokenizer *t, json_t *arr, const char *path, Err *e) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return err_set(e, "%s: added_tokens must be an array", path);
    size_t i;
    json_t *x;
    t->added = xcalloc(json_array_size(arr) + 1, sizeof *t->added);
    json_array_foreach(arr, i, x) {
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (!json_is_object(x)) return err_set(e, "%s: %s must be an object", path, where);
        AddedTok a = {0};
        const char *c;
        int id = -1;
        if (str_field(x, "content", 1, &c, &a.len, path, where, e)) return -1;
        if (int_field(x, "id", -1, &id, path, where, e)) return -1;
        if (id < 0) return err_set(e, "%s: %s.id is missing or negative", path, where);
        if (id > 0x7ffffff) return err_set(e, "%s: %s.id %d is larger than any vocabulary", path, where, id);
        if (bool_field(x, "special", 0, &a.special, path, where, e) || bool_field(x, "lstrip", 0, &a.lstrip, path, where, e) ||
            bool_field(x, "rstrip", 0, &a.rstrip, path, where, e) || bool_field(x, "single_word", 0, &a.single_word, path, where, e) ||
            bool_field(x, "normalized", !a.special, &a.normalized, path, where, e))
            return -1;
        if (a.len == 0) continue;  // HF ignores empty added tokens
        a.id = id;
        a.content = xmalloc(a.len + 1);
        memcpy(a.content, c, a.len + 1);
        t->added[t->n_added++] = a;
        if (id >= t->n_ids) t->n_ids = id + 1;
    }
    return 0;
}

static void build_tables(Tokenizer *t) {
    t->pieces = xcalloc((size_t)t->n_ids, sizeof *t->pieces);
    t->piece_lens = xcalloc((size_t)t->n_ids, sizeof *t->piece_lens);
    t->special = xcalloc((size_t)t->n_ids, 1);
    for (size_t i = 0; i < t->vocab.cap; i++) {
        if (!t->vocab.hashes[i]) continue;
        int id = t->vocab.vals[i];
        size_t len = t->vocab.lens[i];
        free(t->pieces[id]);  // two pieces with one id: HF keeps one of them; so do we
        t->pieces[id] = xmalloc(len + 1);
        memcpy(t->pieces[id], t->vocab.arena + t->vocab.offs[i], len);
        t->pieces[id][len] = 0;
        t->piece_lens[id] = len;
    }
    strmap_init(&t->added_map, (size_t)t->n_added + 1);
    for (int i = 0; i < t->n_added; i++) {
        AddedTok *a = &t->added[i];
        free(t->pieces[a->id]);
        t->pieces[a->id] = xstrdup(a->content);
        t->piece_lens[a->id] = a->len;
        t->special[a->id] = (unsigned char)a->special;
        strmap_put(&t->added_map, a->content, a->len, a->id);
    }
}

static char *resolve_path(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + 32;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/tokenizer.json", path);
        return p;
    }
    return xstrdup(path);
}

Tokenizer *tokenizer_load(const char *path_in, Err *e) {
    char *path = resolve_path(path_in);
    struct stat st;  // only regular files: opening a FIFO would block
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        err_set(e, "%s: not a regular file", path);
        free(path);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) err_set(e, "%s: cannot open", path);
        else { fclose(f); err_set(e, "%s: invalid JSON at line %d column %d: %s", path, jerr.line, jerr.column, jerr.text); }
        free(path);
        return NULL;
    }
    Tokenizer *t = xcalloc(1, sizeof *t);
    int rc = -1;
    if (!json_is_object(root)) { err_set(e, "%s: top level must be a JSON object", path); goto done; }
    json_t *trunc = json_object_get(root, "truncation"), *pad = json_object_get(root, "padding");
    if (trunc && !json_is_null(trunc)) { err_set(e, "%s: truncation is set (not supported; set it to null)", path); goto done; }
    if (pad && !json_is_null(pad)) { err_set(e, "%s: padding is set (not supported; set it to null)", path); goto done; }
    if (load_model(t, json_object_get(root, "model"), path, e)) goto done;
    if (load_added(t, json_object_get(root, "added_tokens"), path, e)) goto done;
    if (load_normalizer(t, json_object_get(root, "normalizer"), path, e)) goto done;
    if (load_pre(t, json_object_get(root, "pre_tokenizer"), path, e)) goto done;
    if (load_post(t, json_object_get(root, "post_processor"), path, e)) goto done;
    if (load_decoder(t, json_object_get(root, "decoder"), path, e)) goto done;
    // The id table is sized by the largest id: it may not exceed the tokens the file holds,
    // so a stray id of 10^8 cannot ask for a gigabyte (docs/reliability.md).
    size_t n_tokens = json_object_size(json_object_get(json_object_get(root, "model"), "vocab")) + (size_t)t->n_added;
    if ((size_t)t->n_ids > n_tokens + 1024) {
        err_set(e, "%s: token ids go up to %d but the file holds %zu tokens (ids must be dense)", path, t->n_ids - 1, n_tokens);
        goto done;
    }
    build_tables(t);
    for (int i = 0; i < t->n_tmpl; i++)
        if (t->tmpl[i] >= t->n_ids) { err_set(e, "%s: post_processor template id %d is outside the vocab", path, t->tmpl[i]); goto done; }
    // Normalized added tokens are matched in normalized text by their normalized form.
    Matcher mt;
    tok_matcher_init(&mt);
    for (int i = 0; i < t->n_added; i++) {
        AddedTok *a = &t->added[i];
        if (a->normalized) a->match = tok_normalize(t, &mt, a->content, a->len, &a->match_len);
        else { a->match = xstrdup(a->content); a->match_len = a->len; }
    }
    tok_matcher_free(&mt);
    for (int i = 0; i < t->n_pre; i++)
        if (t->pre[i].kind != P_METASPACE || t->pre[i].split) t->cache_words = 1;
    rc = 0;
done:
    json_decref(root);
    free(path);
    if (rc) { tokenizer_free(t); return NULL; }
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    if (t->pieces) for (int i = 0; i < t->n_ids; i++) free(t->pieces[i]);
    free(t->pieces); free(t->piece_lens); free(t->special);
    if (t->vocab.hashes) strmap_free(&t->vocab);
    if (t->added_map.hashes) strmap_free(&t->added_map);
    if (t->merges.keys) pairmap_free(&t->merges);
    for (int i = 0; i < t->n_added; i++) { free(t->added[i].content); free(t->added[i].match); }
    free(t->added);
    for (int i = 0; i < t->n_norm; i++) { free(t->norm[i].text); free(t->norm[i].lit); pcre2_code_free(t->norm[i].re); }
    free(t->norm);
    for (int i = 0; i < t->n_pre; i++) pcre2_code_free(t->pre[i].re);
    free(t->pre);
    for (int i = 0; i < t->n_dec; i++) { free(t->dec[i].text); free(t->dec[i].lit); pcre2_code_free(t->dec[i].re); }
    free(t->dec);
    free(t->tmpl);
    free(t);
}
