// tokenizer.json (BPE) loading, encoding and decoding, following the Hugging Face
// `tokenizers` pipeline: added tokens -> normalizer -> pre-tokenizer -> BPE model
// -> post-processor; decode: id -> piece -> decoder chain.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <limits.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "tokenizer/regex.h"
#include "tokenizer/strmap.h"
#include "tokenizer/utf8.h"

// ---------------------------------------------------------------- pipeline parts

typedef struct {
    char *content;  // as written in the file
    size_t len;
    char *match;    // what is searched for: content, or normalized content if normalized
    size_t match_len;
    int id, special, lstrip, rstrip, single_word, normalized;
} AddedTok;

enum { N_PREPEND, N_REPLACE, N_NFC, N_NFD, N_NFKC, N_NFKD };
typedef struct {
    int kind;
    char *text;       // Prepend: the prefix; Replace: the replacement
    size_t text_len;
    pcre2_code *re;   // Replace: the pattern (String patterns compiled literally)
    char *lit;        // Replace with a String pattern: the string (searched with memmem)
    size_t lit_len;
} NormStep;

enum { P_SPLIT, P_BYTELEVEL, P_DIGITS, P_METASPACE };
enum { B_REMOVED, B_ISOLATED, B_MERGED_PREV, B_MERGED_NEXT, B_CONTIGUOUS };
enum { PS_ALWAYS, PS_FIRST, PS_NEVER };
typedef struct {
    int kind;
    pcre2_code *re;   // Split pattern; ByteLevel regex (NULL when use_regex false)
    int behavior, invert;
    int add_prefix_space;
    int individual;   // Digits
    char rep[8];      // Metaspace replacement (one character)
    size_t rep_len;
    uint32_t rep_cp;
    int prepend_scheme, split;
} PreStep;

enum { D_REPLACE, D_BYTEFALLBACK, D_FUSE, D_STRIP, D_BYTELEVEL, D_METASPACE };
typedef struct {
    int kind;
    pcre2_code *re;   // Replace pattern
    char *lit;        // Replace with a String pattern: the string
    size_t lit_len;
    char *text;       // Replace content
    size_t text_len;
    uint32_t strip_cp;
    int start, stop;
    uint32_t rep_cp;  // Metaspace
    int prepend_scheme;
} DecStep;

struct Tokenizer {
    int n_ids;                 // 1 + largest id
    char **pieces;             // id -> piece (added token content wins), NULL for holes
    size_t *piece_lens;
    unsigned char *special;    // id -> special added token
    StrMap vocab;              // model vocabulary
    StrMap added_map;          // added token content -> id
    PairMap merges;            // (left id, right id) -> (rank, merged id)
    int unk_id, fuse_unk, byte_fallback, ignore_merges;
    int byte_ids[256];         // <0xNN> pieces, -1 when absent
    AddedTok *added;
    int n_added;
    NormStep *norm;
    int n_norm;
    PreStep *pre;
    int n_pre;
    DecStep *dec;
    int n_dec, has_decoder;
    int *tmpl;                 // single template: -1 = $A, else a token id
    int n_tmpl;
    int cache_words;           // a pre-tokenizer splits words: cache BPE per word
};

// --------------------------------------------------------------- small vectors

typedef struct { char *s; size_t n, cap; } Buf;
typedef struct { int *v; int n, cap; } IVec;
typedef struct { size_t off, len; int first; } Span;
typedef struct { Span *v; int n, cap; } SpanVec;
typedef struct { size_t a, b; int match; } Seg;
typedef struct { Seg *v; int n, cap; } SegVec;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void ivec_push(IVec *v, int x) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = x;
}
static void span_push(SpanVec *v, size_t off, size_t len, int first) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = (Span){off, len, first};
}
static void seg_push(SegVec *v, size_t a, size_t b, int match) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = (Seg){a, b, match};
}

// ------------------------------------------------------------------- regexes

// Oniguruma (HF) and PCRE2 agree on the patterns tokenizers use except for \s:
// Oniguruma's is the Unicode White_Space property (with U+0085, without U+180E),
// PCRE2's differs; rewrite \s and \S as that explicit set.
#define WHITE_SPACE "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static char *onig_to_pcre2(const char *pat, size_t n, size_t *out_n) {
    Buf b = {0};
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            const char *r = NULL;
            if (d == 's') r = in_class ? WHITE_SPACE : "[" WHITE_SPACE "]";
            else if (d == 'S' && !in_class) r = "[^" WHITE_SPACE "]";
            if (r) buf_put(&b, r, strlen(r));
            else buf_put(&b, pat + i, 2);
            i++;
            continue;
        }
        if (c == '[' && !in_class) in_class = 1;
        else if (c == ']' && in_class) in_class = 0;
        buf_put(&b, &c, 1);
    }
    if (!b.s) buf_put(&b, "", 0);
    *out_n = b.n;
    return b.s;
}

static pcre2_code *compile_re(const char *pat, size_t n, int literal, const char *path, const char *where, Err *e) {
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re;
    if (literal) {
        re = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_UTF | PCRE2_LITERAL, &errcode, &erroff, NULL);
    } else {
        size_t m;
        char *p = onig_to_pcre2(pat, n, &m);
        re = pcre2_compile((PCRE2_SPTR)p, m, PCRE2_UTF | PCRE2_UCP, &errcode, &erroff, NULL);
        free(p);
    }
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        err_set(e, "%s: %s: cannot compile pattern \"%.*s\": %s", path, where, (int)(n > 200 ? 200 : n), pat, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    return re;
}

pcre2_code *tok_compile_onig(const char *pat, size_t n) {
    return compile_re(pat, n, 0, "", "", NULL);
}

const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Per-call matching state (pcre2 match data is not shareable between threads).
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    int failed;
} Matcher;

static void matcher_init(Matcher *m) {
    m->md = pcre2_match_data_create(1, NULL);
    m->mc = pcre2_match_context_create(NULL);
    m->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (m->js) pcre2_jit_stack_assign(m->mc, NULL, m->js);
    m->failed = 0;
}
static void matcher_free(Matcher *m) {
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mc);
    if (m->js) pcre2_jit_stack_free(m->js);
}

// Covers s[0..n) with match / non-match segments, as HF's Pattern::find_matches.
static void find_matches(Matcher *mt, const pcre2_code *re, const char *s, size_t n, SegVec *out) {
    out->n = 0;
    if (n == 0) { seg_push(out, 0, 0, 0); return; }
    size_t pos = 0, prev = 0;
    while (pos <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, mt->md, mt->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) { mt->failed = 1; break; }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(mt->md);
        size_t a = ov[0], b = ov[1];
        if (prev != a) seg_push(out, prev, a, 0);
        seg_push(out, a, b, 1);
        prev = b;
        if (b == a) {  // empty match: step over one character
            if (b >= n) break;
            uint32_t cp;
            pos = b + (size_t)utf8_decode(s + b, &cp);
        } else {
            pos = b;
        }
    }
    if (prev != n) seg_push(out, prev, n, 0);
}

// Applies a split behaviour to match segments (HF SplitDelimiterBehavior);
// the result segments are pieces to keep (match flag unused).
static void apply_behavior(SegVec *segs, int behavior, int invert) {
    if (invert)
        for (int i = 0; i < segs->n; i++) segs->v[i].match = !segs->v[i].match;
    Seg *v = segs->v;
    int n = segs->n, k = 0, prev_match = 0;
    switch (behavior) {
    case B_REMOVED:
        for (int i = 0; i < n; i++) if (!v[i].match) v[k++] = v[i];
        break;
    case B_ISOLATED:
        k = n;
        break;
    case B_MERGED_PREV:
        for (int i = 0; i < n; i++) {
            if (v[i].match && !prev_match && k > 0) v[k - 1].b = v[i].b;
            else v[k++] = v[i];
            prev_match = v[i].match;
        }
        break;
    case B_MERGED_NEXT: {
        // Right to left, merging a match into the piece after it.
        Seg *tmp = xmalloc((size_t)(n ? n : 1) * sizeof *tmp);
        int m = 0;
        for (int i = n - 1; i >= 0; i--) {
            if (v[i].match && !prev_match && m > 0) tmp[m - 1].a = v[i].a;
            else tmp[m++] = v[i];
            prev_match = v[i].match;
        }
        for (int i = 0; i < m; i++) v[i] = tmp[m - 1 - i];
        k = m;
        free(tmp);
        break;
    }
    case B_CONTIGUOUS:
        for (int i = 0; i < n; i++) {
            if (v[i].match == prev_match && k > 0) v[k - 1].b = v[i].b;
            else v[k++] = v[i];
            prev_match = v[i].match;
        }
        break;
    }
    segs->n = k;
}

// ---------------------------------------------------------------- JSON helpers

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
    if (json_is_string(s)) return compile_re(json_string_value(s), json_string_length(s), 1, path, where, e);
    if (json_is_string(r)) return compile_re(json_string_value(r), json_string_length(r), 0, path, where, e);
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

// ---------------------------------------------------------------- loading parts

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
        if (use_regex && !(s.re = compile_re(GPT2_PATTERN, strlen(GPT2_PATTERN), 0, path, "ByteLevel", e))) return -1;
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

static char *normalize(const Tokenizer *t, Matcher *mt, const char *s, size_t n, size_t *out_n);

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
    matcher_init(&mt);
    for (int i = 0; i < t->n_added; i++) {
        AddedTok *a = &t->added[i];
        if (a->normalized) a->match = normalize(t, &mt, a->content, a->len, &a->match_len);
        else { a->match = xstrdup(a->content); a->match_len = a->len; }
    }
    matcher_free(&mt);
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

// ------------------------------------------------------------------ normalizing

// Replaces every match of re in s with rep (HF NormalizedString::replace).
static char *replace_all(Matcher *mt, const pcre2_code *re, const char *s, size_t n, const char *rep, size_t rep_len, size_t *out_n) {
    SegVec segs = {0};
    find_matches(mt, re, s, n, &segs);
    Buf b = {0};
    buf_put(&b, "", 0);
    for (int i = 0; i < segs.n; i++) {
        if (segs.v[i].match) buf_put(&b, rep, rep_len);
        else buf_put(&b, s + segs.v[i].a, segs.v[i].b - segs.v[i].a);
    }
    free(segs.v);
    *out_n = b.n;
    return b.s;
}

// Same for a literal (non-empty) pattern: left-to-right, non-overlapping.
static char *replace_literal(const char *lit, size_t lit_len, const char *s, size_t n, const char *rep, size_t rep_len, size_t *out_n) {
    Buf b = {0};
    buf_put(&b, "", 0);
    const char *p = s, *end = s + n, *m;
    while ((m = memmem(p, (size_t)(end - p), lit, lit_len)) != NULL) {
        buf_put(&b, p, (size_t)(m - p));
        buf_put(&b, rep, rep_len);
        p = m + lit_len;
    }
    buf_put(&b, p, (size_t)(end - p));
    *out_n = b.n;
    return b.s;
}

static char *unicode_normalize(const char *s, size_t n, int kind, size_t *out_n) {
    int opts = UTF8PROC_STABLE;
    if (kind == N_NFC) opts |= UTF8PROC_COMPOSE;
    else if (kind == N_NFD) opts |= UTF8PROC_DECOMPOSE;
    else if (kind == N_NFKC) opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    else opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &out, (utf8proc_option_t)opts);
    if (r < 0) {  // cannot happen on sanitized input; keep the text unchanged
        char *c = xmalloc(n + 1);
        memcpy(c, s, n);
        c[n] = 0;
        *out_n = n;
        return c;
    }
    *out_n = (size_t)r;
    return (char *)out;
}

static char *normalize(const Tokenizer *t, Matcher *mt, const char *s, size_t n, size_t *out_n) {
    char *cur = xmalloc(n + 1);
    memcpy(cur, s, n);
    cur[n] = 0;
    for (int i = 0; i < t->n_norm; i++) {
        const NormStep *st = &t->norm[i];
        char *next;
        size_t m = n;
        if (st->kind == N_PREPEND) {
            if (n == 0) continue;  // HF prepends only to non-empty text
            next = xmalloc(n + st->text_len + 1);
            memcpy(next, st->text, st->text_len);
            memcpy(next + st->text_len, cur, n + 1);
            m = n + st->text_len;
        } else if (st->kind == N_REPLACE) {
            next = st->lit ? replace_literal(st->lit, st->lit_len, cur, n, st->text, st->text_len, &m)
                           : replace_all(mt, st->re, cur, n, st->text, st->text_len, &m);
        } else {
            next = unicode_normalize(cur, n, st->kind, &m);
        }
        free(cur);
        cur = next;
        n = m;
    }
    *out_n = n;
    return cur;
}

// ---------------------------------------------------------------- pre-tokenizing

// One pre-tokenizer step over all spans of in; writes the new text and spans.
static void pre_step(const PreStep *st, Matcher *mt, const Buf *in, const SpanVec *sp, Buf *out, SpanVec *osp, SegVec *segs) {
    out->n = 0;
    buf_put(out, "", 0);
    osp->n = 0;
    for (int k = 0; k < sp->n; k++) {
        const char *s = in->s + sp->v[k].off;
        size_t n = sp->v[k].len;
        int first = sp->v[k].first;
        if (st->kind == P_SPLIT || st->kind == P_DIGITS) {
            if (st->kind == P_SPLIT) {
                find_matches(mt, st->re, s, n, segs);
                apply_behavior(segs, st->behavior, st->invert);
            } else {
                segs->n = 0;
                size_t last = 0, i = 0;
                while (i < n) {
                    uint32_t cp;
                    int l = utf8_decode(s + i, &cp);
                    if (uni_is_numeric(cp)) {
                        if (last < i) seg_push(segs, last, i, 0);
                        seg_push(segs, i, i + (size_t)l, 1);
                        last = i + (size_t)l;
                    }
                    i += (size_t)l;
                }
                if (last < n) seg_push(segs, last, n, 0);
                apply_behavior(segs, st->individual ? B_ISOLATED : B_CONTIGUOUS, 0);
            }
            size_t base = out->n;
            buf_put(out, s, n);
            for (int j = 0; j < segs->n; j++)
                if (segs->v[j].b > segs->v[j].a) span_push(osp, base + segs->v[j].a, segs->v[j].b - segs->v[j].a, first && segs->v[j].a == 0);
        } else if (st->kind == P_BYTELEVEL) {
            // Optional prefix space, GPT-2 regex split, then every byte -> its unicode stand-in.
            char *tmp = NULL;
            if (st->add_prefix_space && (n == 0 || s[0] != ' ')) {
                tmp = xmalloc(n + 2);
                tmp[0] = ' ';
                memcpy(tmp + 1, s, n);
                s = tmp;
                n++;
            }
            if (st->re) {
                find_matches(mt, st->re, s, n, segs);
            } else {
                segs->n = 0;
                seg_push(segs, 0, n, 1);
            }
            for (int j = 0; j < segs->n; j++) {
                size_t a = segs->v[j].a, b = segs->v[j].b;
                if (b == a) continue;
                size_t base = out->n;
                for (size_t i = a; i < b; i++) {
                    char u[4];
                    int l = utf8_encode(bytelevel_cp((unsigned char)s[i]), u);
                    buf_put(out, u, (size_t)l);
                }
                span_push(osp, base, out->n - base, first && a == 0);
            }
            free(tmp);
        } else {  // P_METASPACE
            size_t base = out->n;
            int pre = n > 0 && (st->prepend_scheme == PS_ALWAYS || (st->prepend_scheme == PS_FIRST && first));
            if (pre && n >= st->rep_len && memcmp(s, st->rep, st->rep_len) == 0) pre = 0;
            // A leading space becomes the replacement, so it counts as "starts with" too.
            if (pre && s[0] == ' ') pre = 0;
            if (pre) buf_put(out, st->rep, st->rep_len);
            for (size_t i = 0; i < n; i++) {
                if (s[i] == ' ') buf_put(out, st->rep, st->rep_len);
                else buf_put(out, s + i, 1);
            }
            size_t len = out->n - base;
            if (!st->split) {
                if (len) span_push(osp, base, len, first);
                continue;
            }
            // Split before every replacement character (MergedWithNext).
            segs->n = 0;
            const char *w = out->s + base;
            size_t last = 0;
            for (size_t i = 0; i < len;) {
                uint32_t cp;
                int l = utf8_decode(w + i, &cp);
                if (cp == st->rep_cp) {
                    if (last < i) seg_push(segs, last, i, 0);
                    seg_push(segs, i, i + (size_t)l, 1);
                    last = i + (size_t)l;
                }
                i += (size_t)l;
            }
            if (last < len) seg_push(segs, last, len, 0);
            apply_behavior(segs, B_MERGED_NEXT, 0);
            for (int j = 0; j < segs->n; j++)
                if (segs->v[j].b > segs->v[j].a) span_push(osp, base + segs->v[j].a, segs->v[j].b - segs->v[j].a, first && segs->v[j].a == 0);
        }
    }
}

// ----------------------------------------------------------------------- BPE

typedef struct { int rank, pos, id; } HeapItem;

typedef struct {
    Matcher mt;
    StrMap cache;      // word -> offset in cache_ids ([count, ids...])
    IVec cache_ids;
    int *sym, *prev, *next;
    unsigned char *alive;
    int sym_cap;
    HeapItem *heap;
    int heap_n, heap_cap;
    SegVec segs;
    Buf bufs[2];
    SpanVec spans[2];
} EncCtx;

static int heap_less(const HeapItem *a, const HeapItem *b) { return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos); }

static void heap_push(EncCtx *c, HeapItem it) {
    if (c->heap_n == c->heap_cap) { c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 64; c->heap = xrealloc(c->heap, (size_t)c->heap_cap * sizeof *c->heap); }
    int i = c->heap_n++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!heap_less(&it, &c->heap[p])) break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = it;
}

static HeapItem heap_pop(EncCtx *c) {
    HeapItem top = c->heap[0], last = c->heap[--c->heap_n];
    int i = 0, n = c->heap_n;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        const HeapItem *best = &last;
        if (l < n && heap_less(&c->heap[l], best)) { m = l; best = &c->heap[l]; }
        if (r < n && heap_less(&c->heap[r], best)) m = r;
        if (m == i) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (n) c->heap[i] = last;
    return top;
}

static void add_sym(EncCtx *c, int *n, int id) {
    if (*n == c->sym_cap) {
        c->sym_cap = c->sym_cap ? c->sym_cap * 2 : 256;
        c->sym = xrealloc(c->sym, (size_t)c->sym_cap * sizeof *c->sym);
        c->prev = xrealloc(c->prev, (size_t)c->sym_cap * sizeof *c->prev);
        c->next = xrealloc(c->next, (size_t)c->sym_cap * sizeof *c->next);
        c->alive = xrealloc(c->alive, (size_t)c->sym_cap);
    }
    c->sym[*n] = id;
    (*n)++;
}

static void push_pair(const Tokenizer *t, EncCtx *c, int pos) {
    int nx = c->next[pos], rank, id;
    if (nx >= 0 && pairmap_get(&t->merges, c->sym[pos], c->sym[nx], &rank, &id)) heap_push(c, (HeapItem){rank, pos, id});
}

// BPE of one pre-tokenized word (HF BPE::merge_word + Word::merge_all), appended to out.
static void bpe_word(const Tokenizer *t, EncCtx *c, const char *w, size_t n, IVec *out) {
    int use_cache = t->cache_words && n <= 256;
    if (use_cache) {
        int at = strmap_get(&c->cache, w, n);
        if (at >= 0) {
            for (int i = 0; i < c->cache_ids.v[at]; i++) ivec_push(out, c->cache_ids.v[at + 1 + i]);
            return;
        }
    }
    int ns = 0;
    int whole = t->ignore_merges ? strmap_get(&t->vocab, w, n) : -1;
    if (whole >= 0) {
        add_sym(c, &ns, whole);
    } else {
        int unk_pending = 0;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int l = utf8_decode(w + i, &cp);
            int id = strmap_get(&t->vocab, w + i, (size_t)l);
            if (id >= 0) {
                if (unk_pending) { add_sym(c, &ns, t->unk_id); unk_pending = 0; }
                add_sym(c, &ns, id);
            } else {
                int ok = t->byte_fallback;
                for (int j = 0; ok && j < l; j++) ok = t->byte_ids[(unsigned char)w[i + j]] >= 0;
                if (ok) {
                    // As HF: byte pieces go in without flushing a pending unknown.
                    for (int j = 0; j < l; j++) add_sym(c, &ns, t->byte_ids[(unsigned char)w[i + j]]);
                } else if (t->unk_id >= 0) {
                    if (unk_pending && !t->fuse_unk) add_sym(c, &ns, t->unk_id);
                    unk_pending = 1;
                }
            }
            i += (size_t)l;
        }
        if (unk_pending) add_sym(c, &ns, t->unk_id);
        for (int i = 0; i < ns; i++) {
            c->prev[i] = i - 1;
            c->next[i] = i + 1 < ns ? i + 1 : -1;
            c->alive[i] = 1;
        }
        c->heap_n = 0;
        for (int i = 0; i + 1 < ns; i++) push_pair(t, c, i);
        while (c->heap_n) {
            HeapItem top = heap_pop(c);
            int pos = top.pos;
            if (!c->alive[pos]) continue;
            int nx = c->next[pos], rank, id;
            if (nx < 0) continue;
            if (!pairmap_get(&t->merges, c->sym[pos], c->sym[nx], &rank, &id) || id != top.id) continue;
            c->sym[pos] = id;
            c->alive[nx] = 0;
            c->next[pos] = c->next[nx];
            if (c->next[nx] >= 0) c->prev[c->next[nx]] = pos;
            if (c->prev[pos] >= 0) push_pair(t, c, c->prev[pos]);
            push_pair(t, c, pos);
        }
    }
    int start = out->n;
    for (int i = 0; i < ns; i = c->next[i]) {
        ivec_push(out, c->sym[i]);
        if (c->next[i] < 0 || whole >= 0) break;
    }
    if (use_cache) {
        int at = c->cache_ids.n;
        ivec_push(&c->cache_ids, out->n - start);
        for (int i = start; i < out->n; i++) ivec_push(&c->cache_ids, out->v[i]);
        strmap_put(&c->cache, w, n, at);
    }
}

// Normalized text of one piece between added tokens -> pre-tokenize -> BPE.
static void encode_plain(const Tokenizer *t, EncCtx *c, const char *s, size_t n, int first, IVec *out) {
    Buf *in = &c->bufs[0], *o = &c->bufs[1];
    SpanVec *sp = &c->spans[0], *osp = &c->spans[1];
    in->n = 0;
    buf_put(in, s, n);
    sp->n = 0;
    if (n) span_push(sp, 0, n, first);
    for (int i = 0; i < t->n_pre; i++) {
        pre_step(&t->pre[i], &c->mt, in, sp, o, osp, &c->segs);
        Buf tb = *in; *in = *o; *o = tb;
        SpanVec ts = *sp; *sp = *osp; *osp = ts;
    }
    for (int i = 0; i < sp->n; i++) bpe_word(t, c, in->s + sp->v[i].off, sp->v[i].len, out);
    // Keep the caller-visible buffers pointing at the swapped storage.
    c->bufs[0] = *in; c->bufs[1] = *o; c->spans[0] = *sp; c->spans[1] = *osp;
}

static int is_word_at_end(const char *s, size_t n) {
    if (n == 0) return 0;
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    uint32_t cp;
    utf8_decode(s + i, &cp);
    return uni_is_word(cp);
}

// Finds added tokens (leftmost-longest, non-overlapping) whose normalized flag is
// `normalized` in s, calling emit for plain pieces and tokens in order (HF find_matches).
typedef struct { size_t a, b; int id; } Piece;
typedef struct { Piece *v; int n, cap; } PieceVec;

static void piece_push(PieceVec *v, size_t a, size_t b, int id) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 16; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = (Piece){a, b, id};
}

static void split_added(const Tokenizer *t, const char *s, size_t n, int normalized, PieceVec *out) {
    out->n = 0;
    size_t start_offset = 0, i = 0;
    int any = 0;
    for (int k = 0; k < t->n_added; k++) any |= t->added[k].normalized == normalized;
    while (any && i < n) {
        const AddedTok *best = NULL;
        for (int k = 0; k < t->n_added; k++) {
            const AddedTok *a = &t->added[k];
            if (a->normalized != normalized || a->match_len == 0 || a->match_len > n - i) continue;
            if ((unsigned char)a->match[0] != (unsigned char)s[i] || memcmp(a->match, s + i, a->match_len)) continue;
            if (!best || a->match_len > best->match_len) best = a;
        }
        if (!best) { i++; continue; }
        size_t start = i, stop = i + best->match_len;
        i = stop;
        if (best->single_word) {
            uint32_t cp = 0;
            int start_space = start == 0 || !is_word_at_end(s, start);
            int stop_space = stop == n || (utf8_decode(s + stop, &cp), !uni_is_word(cp));
            if (!start_space || !stop_space) continue;
        }
        if (best->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t p = ns - 1;
                while (p > 0 && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
                uint32_t cp;
                utf8_decode(s + p, &cp);
                if (!uni_is_whitespace(cp)) break;
                ns = p;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (best->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int l = utf8_decode(s + stop, &cp);
                if (!uni_is_whitespace(cp)) break;
                stop += (size_t)l;
            }
            i = stop > i ? stop : i;
        }
        if (start_offset < start) piece_push(out, start_offset, start, -1);
        piece_push(out, start, stop, best->id);
        start_offset = stop;
    }
    if (start_offset < n || n == 0) piece_push(out, start_offset, n, -1);
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_special, int **ids) {
    size_t n;
    char *clean = utf8_sanitize(text ? text : "", text ? len : 0, &n);
    EncCtx c;
    memset(&c, 0, sizeof c);
    matcher_init(&c.mt);
    if (t->cache_words) strmap_init(&c.cache, n / 8 < 64 ? 64 : (n / 8 > 65536 ? 65536 : n / 8));  // grows as needed
    IVec out = {0};
    PieceVec outer = {0}, inner = {0};
    split_added(t, clean, n, 0, &outer);
    for (int p = 0; p < outer.n; p++) {
        Piece pc = outer.v[p];
        if (pc.id >= 0) { ivec_push(&out, pc.id); continue; }
        size_t nn;
        char *norm = normalize(t, &c.mt, clean + pc.a, pc.b - pc.a, &nn);
        split_added(t, norm, nn, 1, &inner);
        for (int q = 0; q < inner.n; q++) {
            Piece ip = inner.v[q];
            if (ip.id >= 0) ivec_push(&out, ip.id);
            else encode_plain(t, &c, norm + ip.a, ip.b - ip.a, pc.a == 0 && ip.a == 0, &out);
        }
        free(norm);
    }
    int failed = c.mt.failed;
    free(outer.v); free(inner.v);
    free(clean);
    matcher_free(&c.mt);
    if (t->cache_words) strmap_free(&c.cache);
    free(c.cache_ids.v); free(c.sym); free(c.prev); free(c.next); free(c.alive); free(c.heap); free(c.segs.v);
    for (int i = 0; i < 2; i++) { free(c.bufs[i].s); free(c.spans[i].v); }
    if (failed) { free(out.v); *ids = NULL; return -1; }
    if (add_special && t->tmpl) {
        IVec full = {0};
        for (int i = 0; i < t->n_tmpl; i++) {
            if (t->tmpl[i] >= 0) ivec_push(&full, t->tmpl[i]);
            else for (int j = 0; j < out.n; j++) ivec_push(&full, out.v[j]);
        }
        free(out.v);
        out = full;
    }
    if (!out.v) out.v = xmalloc(sizeof(int));
    *ids = out.v;
    return out.n;
}

// ------------------------------------------------------------------- decoding

typedef struct { char *s; size_t n; } Tok;
typedef struct { Tok *v; int n, cap; } TokVec;

static void tok_push(TokVec *v, const char *s, size_t n) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 16; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    char *c = xmalloc(n + 1);
    memcpy(c, s, n);
    c[n] = 0;
    v->v[v->n++] = (Tok){c, n};
}
static void tok_push_owned(TokVec *v, char *s, size_t n) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 16; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = (Tok){s, n};
}
static void tokvec_free(TokVec *v) {
    for (int i = 0; i < v->n; i++) free(v->v[i].s);
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

static int byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static void flush_bytes(TokVec *out, Buf *bytes) {
    if (!bytes->n) return;
    if (utf8_valid_prefix(bytes->s, bytes->n) == bytes->n) tok_push(out, bytes->s, bytes->n);
    else for (size_t i = 0; i < bytes->n; i++) tok_push(out, "\xEF\xBF\xBD", 3);
    bytes->n = 0;
}

static void decode_step(const DecStep *st, Matcher *mt, TokVec *in, TokVec *out) {
    Buf b = {0};
    buf_put(&b, "", 0);
    switch (st->kind) {
    case D_REPLACE:
        for (int i = 0; i < in->n; i++) {
            size_t m;
            char *r = st->lit ? replace_literal(st->lit, st->lit_len, in->v[i].s, in->v[i].n, st->text, st->text_len, &m)
                              : replace_all(mt, st->re, in->v[i].s, in->v[i].n, st->text, st->text_len, &m);
            tok_push_owned(out, r, m);
        }
        break;
    case D_BYTEFALLBACK:
        for (int i = 0; i < in->n; i++) {
            int v = byte_piece(in->v[i].s, in->v[i].n);
            if (v >= 0) {
                char ch = (char)v;
                buf_put(&b, &ch, 1);
            } else {
                flush_bytes(out, &b);
                tok_push(out, in->v[i].s, in->v[i].n);
            }
        }
        flush_bytes(out, &b);
        break;
    case D_FUSE:
        for (int i = 0; i < in->n; i++) buf_put(&b, in->v[i].s, in->v[i].n);
        tok_push(out, b.s, b.n);
        break;
    case D_STRIP:
        for (int i = 0; i < in->n; i++) {
            const char *s = in->v[i].s;
            size_t n = in->v[i].n, a = 0, z = n;
            int nchars = 0;
            for (size_t j = 0; j < n; nchars++) { uint32_t cp; j += (size_t)utf8_decode(s + j, &cp); }
            int start_cut = 0, stop_cut = 0;
            while (start_cut < st->start && a < n) {
                uint32_t cp;
                int l = utf8_decode(s + a, &cp);
                if (cp != st->strip_cp) break;
                a += (size_t)l;
                start_cut++;
            }
            size_t zz = n;
            while (stop_cut < st->stop && zz > 0) {
                size_t p = zz - 1;
                while (p > 0 && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
                uint32_t cp;
                utf8_decode(s + p, &cp);
                if (cp != st->strip_cp) break;
                zz = p;
                stop_cut++;
            }
            // HF keeps chars().skip(start_cut).take(byte_len - start_cut - stop_cut).
            long keep = (long)n - start_cut - stop_cut, have = nchars - start_cut;
            if (keep < have) {
                z = a;
                for (long k = 0; k < keep; k++) { uint32_t cp; z += (size_t)utf8_decode(s + z, &cp); }
            }
            tok_push(out, s + a, z - a);
        }
        break;
    case D_BYTELEVEL:
        for (int i = 0; i < in->n; i++) {
            const char *s = in->v[i].s;
            size_t n = in->v[i].n, start = b.n;
            int ok = 1;
            for (size_t j = 0; j < n;) {
                uint32_t cp;
                j += (size_t)utf8_decode(s + j, &cp);
                int by = bytelevel_byte(cp);
                if (by < 0) { ok = 0; break; }
                char ch = (char)by;
                buf_put(&b, &ch, 1);
            }
            if (!ok) { b.n = start; buf_put(&b, s, n); }
        }
        {
            size_t m;
            char *r = utf8_sanitize(b.s, b.n, &m);
            tok_push_owned(out, r, m);
        }
        break;
    case D_METASPACE:
        for (int i = 0; i < in->n; i++) {
            Buf t = {0};
            buf_put(&t, "", 0);
            const char *s = in->v[i].s;
            for (size_t j = 0; j < in->v[i].n;) {
                uint32_t cp;
                int l = utf8_decode(s + j, &cp);
                if (cp == st->rep_cp) {
                    if (!(i == 0 && st->prepend_scheme != PS_NEVER)) buf_put(&t, " ", 1);
                } else {
                    buf_put(&t, s + j, (size_t)l);
                }
                j += (size_t)l;
            }
            tok_push_owned(out, t.s, t.n);
        }
        break;
    }
    free(b.s);
}

char *tokenizer_decode_len(const Tokenizer *t, const int *ids, int n, int skip_special, size_t *len) {
    TokVec cur = {0}, next = {0};
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->pieces[id]) continue;
        if (skip_special && t->special[id]) continue;
        tok_push(&cur, t->pieces[id], t->piece_lens[id]);
    }
    Buf b = {0};
    buf_put(&b, "", 0);
    if (!t->has_decoder) {
        for (int i = 0; i < cur.n; i++) {
            if (i) buf_put(&b, " ", 1);
            buf_put(&b, cur.v[i].s, cur.v[i].n);
        }
    } else {
        Matcher mt;
        matcher_init(&mt);
        for (int k = 0; k < t->n_dec; k++) {
            decode_step(&t->dec[k], &mt, &cur, &next);
            tokvec_free(&cur);
            cur = next;
            next = (TokVec){0};
        }
        matcher_free(&mt);
        for (int i = 0; i < cur.n; i++) buf_put(&b, cur.v[i].s, cur.v[i].n);
    }
    tokvec_free(&cur);
    if (len) *len = b.n;
    return b.s;
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special) {
    return tokenizer_decode_len(t, ids, n, skip_special, NULL);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->n_ids; }

int tokenizer_token_id(const Tokenizer *t, const char *piece) {
    size_t n = strlen(piece);
    int id = strmap_get(&t->added_map, piece, n);
    return id >= 0 ? id : strmap_get(&t->vocab, piece, n);
}

const char *tokenizer_piece(const Tokenizer *t, int id) {
    return id >= 0 && id < t->n_ids ? t->pieces[id] : NULL;
}

int tokenizer_is_special(const Tokenizer *t, int id) { return id >= 0 && id < t->n_ids && t->special[id]; }

int tokenizer_prefix_ids(const Tokenizer *t, int *out, int max) {
    int k = 0;
    for (int i = 0; i < t->n_tmpl && t->tmpl[i] >= 0; i++, k++)
        if (k < max) out[k] = t->tmpl[i];
    return k;
}

// ------------------------------------------------------------------- streaming

// As HF's DecodeStream: decode a window [prefix ids + new ids], emit what grew past
// the prefix text once it does not end in an incomplete character (U+FFFD).
struct TokenStream {
    const Tokenizer *t;
    int skip_special;
    IVec ids;         // window: prefix ids then pending ids
    int prefix_n;     // ids forming the prefix
    char *prefix;     // decode of the prefix ids
    size_t prefix_len;
};

TokenStream *tokstream_new(const Tokenizer *t, int skip_special) {
    TokenStream *s = xcalloc(1, sizeof *s);
    s->t = t;
    s->skip_special = skip_special;
    s->prefix = xstrdup("");
    return s;
}

static int ends_incomplete(const char *s, size_t n) { return n >= 3 && memcmp(s + n - 3, "\xEF\xBF\xBD", 3) == 0; }

static char *emit_from(const char *text, size_t n, size_t from) {
    char *r = xmalloc(n - from + 1);
    memcpy(r, text + from, n - from);
    r[n - from] = 0;
    return r;
}

char *tokstream_push(TokenStream *s, int id) { return tokstream_push_len(s, id, NULL); }
char *tokstream_finish(TokenStream *s) { return tokstream_finish_len(s, NULL); }

char *tokstream_push_len(TokenStream *s, int id, size_t *len) {
    if (len) *len = 0;
    ivec_push(&s->ids, id);
    size_t n;
    char *text = tokenizer_decode_len(s->t, s->ids.v, s->ids.n, s->skip_special, &n);
    if (n <= s->prefix_len || ends_incomplete(text, n) || memcmp(text, s->prefix, s->prefix_len)) {
        free(text);
        return xstrdup("");
    }
    char *r = emit_from(text, n, s->prefix_len);
    if (len) *len = n - s->prefix_len;
    free(text);
    // The new prefix is the ids just emitted; older ones are no longer needed.
    int keep = s->ids.n - s->prefix_n;
    memmove(s->ids.v, s->ids.v + s->prefix_n, (size_t)keep * sizeof(int));
    s->ids.n = keep;
    s->prefix_n = keep;
    free(s->prefix);
    s->prefix = tokenizer_decode_len(s->t, s->ids.v, s->ids.n, s->skip_special, &s->prefix_len);
    return r;
}

char *tokstream_finish_len(TokenStream *s, size_t *len) {
    size_t n;
    char *text = tokenizer_decode_len(s->t, s->ids.v, s->ids.n, s->skip_special, &n);
    char *r;
    if (len) *len = 0;
    if (n >= s->prefix_len && memcmp(text, s->prefix, s->prefix_len) == 0) {
        r = emit_from(text, n, s->prefix_len);
        if (len) *len = n - s->prefix_len;
    } else {
        r = xstrdup("");
    }
    free(text);
    s->ids.n = 0;
    s->prefix_n = 0;
    free(s->prefix);
    s->prefix = xstrdup("");
    s->prefix_len = 0;
    return r;
}

void tokstream_free(TokenStream *s) {
    if (!s) return;
    free(s->ids.v);
    free(s->prefix);
    free(s);
}
