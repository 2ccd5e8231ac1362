// tokenizer.json, the BPE model (merges by rank, byte fallback, word cache), encoding (the file split of src/tokenizer/: internal.h).
#include "tokenizer/internal.h"

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
        tok_pre_step(&t->pre[i], &c->mt, in, sp, o, osp, &c->segs);
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
    tok_matcher_init(&c.mt);
    if (t->cache_words) strmap_init(&c.cache, n / 8 < 64 ? 64 : (n / 8 > 65536 ? 65536 : n / 8));  // grows as needed
    IVec out = {0};
    PieceVec outer = {0}, inner = {0};
    split_added(t, clean, n, 0, &outer);
    for (int p = 0; p < outer.n; p++) {
        Piece pc = outer.v[p];
        if (pc.id >= 0) { ivec_push(&out, pc.id); continue; }
        size_t nn;
        char *norm = tok_normalize(t, &c.mt, clean + pc.a, pc.b - pc.a, &nn);
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
    tok_matcher_free(&c.mt);
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
