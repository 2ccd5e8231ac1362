// tokenizer.json, Hugging Face (Oniguruma) patterns compiled with PCRE2, matching (the file split of src/tokenizer/: internal.h).
#include "tokenizer/internal.h"

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

pcre2_code *tok_compile_re(const char *pat, size_t n, int literal, const char *path, const char *where, Err *e) {
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
    return tok_compile_re(pat, n, 0, "", "", NULL);
}

const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";


void tok_matcher_init(Matcher *m) {
    m->md = pcre2_match_data_create(1, NULL);
    m->mc = pcre2_match_context_create(NULL);
    m->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (m->js) pcre2_jit_stack_assign(m->mc, NULL, m->js);
    m->failed = 0;
}
void tok_matcher_free(Matcher *m) {
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mc);
    if (m->js) pcre2_jit_stack_free(m->js);
}

// Covers s[0..n) with match / non-match segments, as HF's Pattern::find_matches.
void tok_find_matches(Matcher *mt, const pcre2_code *re, const char *s, size_t n, SegVec *out) {
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
void tok_apply_behavior(SegVec *segs, int behavior, int invert) {
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
