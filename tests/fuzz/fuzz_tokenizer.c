// libFuzzer harness: tokenizer.json (tokenizer/) and encode/decode of text through it.
// Input: tokenizer.json PART_SEP text. The text is encoded, the ids decoded, streamed
// back token by token, and every id up to the vocabulary size looked up.
// The stream gets at most STREAM_IDS ids (a generation's length): a decoder that does not
// keep the decoded prefix (e.g. Strip) makes the stream re-decode every id held since the
// last emitted piece on each push, as Hugging Face's DecodeStream does, which is quadratic
// in the number of ids; a 4 KB text made the harness take 2 s per input under ASan.
#include "fuzz.h"
#include "tokenizer/tokenizer.h"

enum { STREAM_IDS = 512 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[2];
    size_t len[2];
    int k = fuzz_split(data, n, part, len, 2);
    const char *path = fuzz_file("tokenizer.json", part[0], len[0]);
    Err e = {0};
    Tokenizer *t = tokenizer_load(path, &e);
    fuzz_check_err(!t, &e);
    if (!t) return 0;
    const char *text = k > 1 ? (const char *)part[1] : "Hello world! <s> 12 \xe4\xbd\xa0\xe5\xa5\xbd \xff";
    size_t tlen = k > 1 ? len[1] : strlen(text);
    int *ids = NULL;
    int m = tokenizer_encode(t, text, tlen, 1, &ids);
    int V = tokenizer_vocab_size(t);
    for (int i = 0; i < m; i++)
        if (ids[i] < 0 || ids[i] >= V) abort();
    size_t dlen;
    free(tokenizer_decode_len(t, ids, m, 0, &dlen));
    free(tokenizer_decode(t, ids, m, 1));
    TokenStream *s = tokstream_new(t, 1);
    for (int i = 0; i < m && i < STREAM_IDS; i++) free(tokstream_push(s, ids[i]));
    free(tokstream_finish(s));
    tokstream_free(s);
    for (int id = -1; id <= V && id < 4096; id++) {
        const char *p = tokenizer_piece(t, id);
        if (p) tokenizer_token_id(t, p);
        tokenizer_is_special(t, id);
    }
    int pre[8];
    tokenizer_prefix_ids(t, pre, 8);
    free(ids);
    tokenizer_free(t);
    return 0;
}
