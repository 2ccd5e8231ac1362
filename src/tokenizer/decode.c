// tokenizer.json, ids to text through the decoder chain (the file split of src/tokenizer/: internal.h).
#include "tokenizer/internal.h"

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
            char *r = st->lit ? tok_replace_literal(st->lit, st->lit_len, in->v[i].s, in->v[i].n, st->text, st->text_len, &m)
                              : tok_replace_all(mt, st->re, in->v[i].s, in->v[i].n, st->text, st->text_len, &m);
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
        tok_matcher_init(&mt);
        for (int k = 0; k < t->n_dec; k++) {
            decode_step(&t->dec[k], &mt, &cur, &next);
            tokvec_free(&cur);
            cur = next;
            next = (TokVec){0};
        }
        tok_matcher_free(&mt);
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
