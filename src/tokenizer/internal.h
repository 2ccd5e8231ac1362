// The parts of tokenizer.json's pipeline shared by the files of src/tokenizer/ (added
// tokens -> normalizer -> pre-tokenizer -> BPE model -> post-processor; decode: id ->
// piece -> decoder chain), following Hugging Face `tokenizers`. Private to this folder.
#pragma once
#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "tokenizer/regex.h"
#include "tokenizer/strmap.h"
#include "tokenizer/tokenizer.h"
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

static inline void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static inline void ivec_push(IVec *v, int x) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = x;
}
static inline void span_push(SpanVec *v, size_t off, size_t len, int first) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = (Span){off, len, first};
}
static inline void seg_push(SegVec *v, size_t a, size_t b, int match) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->v = xrealloc(v->v, (size_t)v->cap * sizeof *v->v); }
    v->v[v->n++] = (Seg){a, b, match};
}

// Per-call matching state (pcre2 match data is not shareable between threads).
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    int failed;
} Matcher;

// ---- shared between the files
// regex.c
void tok_apply_behavior(SegVec *segs, int behavior, int invert);
pcre2_code *tok_compile_re(const char *pat, size_t n, int literal, const char *path, const char *where, Err *e);
void tok_find_matches(Matcher *mt, const pcre2_code *re, const char *s, size_t n, SegVec *out);
void tok_matcher_free(Matcher *m);
void tok_matcher_init(Matcher *m);
// normalize.c
char *tok_normalize(const Tokenizer *t, Matcher *mt, const char *s, size_t n, size_t *out_n);
char *tok_replace_all(Matcher *mt, const pcre2_code *re, const char *s, size_t n, const char *rep, size_t rep_len, size_t *out_n);
char *tok_replace_literal(const char *lit, size_t lit_len, const char *s, size_t n, const char *rep, size_t rep_len, size_t *out_n);
// pretokenize.c
void tok_pre_step(const PreStep *st, Matcher *mt, const Buf *in, const SpanVec *sp, Buf *out, SpanVec *osp, SegVec *segs);
