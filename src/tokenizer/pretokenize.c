// tokenizer.json, the pre-tokenizer chain (the file split of src/tokenizer/: internal.h).
#include "tokenizer/internal.h"

// One pre-tokenizer step over all spans of in; writes the new text and spans.
void tok_pre_step(const PreStep *st, Matcher *mt, const Buf *in, const SpanVec *sp, Buf *out, SpanVec *osp, SegVec *segs) {
    out->n = 0;
    buf_put(out, "", 0);
    osp->n = 0;
    for (int k = 0; k < sp->n; k++) {
        const char *s = in->s + sp->v[k].off;
        size_t n = sp->v[k].len;
        int first = sp->v[k].first;
        if (st->kind == P_SPLIT || st->kind == P_DIGITS) {
            if (st->kind == P_SPLIT) {
                tok_find_matches(mt, st->re, s, n, segs);
                tok_apply_behavior(segs, st->behavior, st->invert);
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
                tok_apply_behavior(segs, st->individual ? B_ISOLATED : B_CONTIGUOUS, 0);
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
                tok_find_matches(mt, st->re, s, n, segs);
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
            tok_apply_behavior(segs, B_MERGED_NEXT, 0);
            for (int j = 0; j < segs->n; j++)
                if (segs->v[j].b > segs->v[j].a) span_push(osp, base + segs->v[j].a, segs->v[j].b - segs->v[j].a, first && segs->v[j].a == 0);
        }
    }
}
