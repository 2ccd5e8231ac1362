// tokenizer.json, the normalizer chain (the file split of src/tokenizer/: internal.h).
#include "tokenizer/internal.h"

// Replaces every match of re in s with rep (HF NormalizedString::replace).
char *tok_replace_all(Matcher *mt, const pcre2_code *re, const char *s, size_t n, const char *rep, size_t rep_len, size_t *out_n) {
    SegVec segs = {0};
    tok_find_matches(mt, re, s, n, &segs);
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
char *tok_replace_literal(const char *lit, size_t lit_len, const char *s, size_t n, const char *rep, size_t rep_len, size_t *out_n) {
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

char *tok_normalize(const Tokenizer *t, Matcher *mt, const char *s, size_t n, size_t *out_n) {
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
            next = st->lit ? tok_replace_literal(st->lit, st->lit_len, cur, n, st->text, st->text_len, &m)
                           : tok_replace_all(mt, st->re, cur, n, st->text, st->text_len, &m);
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
