// tokenizer.json, incremental decoding of a growing id sequence (the file split of src/tokenizer/: internal.h).
#include "tokenizer/internal.h"

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
