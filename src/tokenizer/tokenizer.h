// Hugging Face tokenizer.json (BPE model) in C: byte-level BPE (GPT-2, Llama-3,
// Qwen2, SmolLM) and SentencePiece-style BPE (Llama-2, TinyLlama, Mistral),
// exact to the token against the `tokenizers` library. See docs/tokenizer.md for
// what is supported and what is refused.
//
// Text in: any bytes. Invalid UTF-8 is first replaced the way Python's
// bytes.decode("utf-8", "replace") does (one U+FFFD per maximal invalid
// subpart), so encode(bytes) == HF encode(bytes.decode("utf-8", "replace")).
// Thread safety: a loaded Tokenizer is read-only; encode/decode may run
// concurrently on one Tokenizer (all scratch, the regex match data and the
// per-word cache live in the call).
#pragma once
#include <stddef.h>

#include "util/err.h"

typedef struct Tokenizer Tokenizer;

// path = a tokenizer.json file, or a directory holding one. NULL + e on error
// (the message names the file and the problem, including every refused feature).
Tokenizer *tokenizer_load(const char *path, Err *e);
void tokenizer_free(Tokenizer *t);

// Like HF Tokenizer.encode(text, add_special_tokens=add_special).ids.
// Returns the count and a malloc'd *ids (never NULL on success); -1 on an
// internal regex failure (match limit), with *ids = NULL.
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_special, int **ids);

// Like HF Tokenizer.decode(ids, skip_special_tokens=skip_special); ids outside
// the vocabulary are skipped, as HF does. Returns a malloc'd NUL-terminated string
// (the text itself may contain NUL bytes when a token decodes to one; use
// tokenizer_decode_len to get the length).
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special);
char *tokenizer_decode_len(const Tokenizer *t, const int *ids, int n, int skip_special, size_t *len);

int tokenizer_vocab_size(const Tokenizer *t);            // 1 + the largest id (model vocab and added tokens)
int tokenizer_token_id(const Tokenizer *t, const char *piece);  // -1 if absent (added tokens first)
const char *tokenizer_piece(const Tokenizer *t, int id);  // NULL if absent
int tokenizer_is_special(const Tokenizer *t, int id);     // 1 for special added tokens
// The ids the post-processor puts before/after the text when add_special is on
// (e.g. BOS for Llama-2); count returned, up to max written.
int tokenizer_prefix_ids(const Tokenizer *t, int *out, int max);

// Streaming decode for generation: push ids one at a time; each call returns the
// newly completed text (maybe ""), never a partial UTF-8 character, and the
// concatenation of all pushes plus finish equals tokenizer_decode of all ids.
typedef struct TokenStream TokenStream;
TokenStream *tokstream_new(const Tokenizer *t, int skip_special);
char *tokstream_push(TokenStream *s, int id);  // malloc'd newly complete text (maybe "")
char *tokstream_finish(TokenStream *s);        // what is left (malloc'd); the stream may be reused after
void tokstream_free(TokenStream *s);
// The same with the byte length of the returned text (which may contain NUL).
char *tokstream_push_len(TokenStream *s, int id, size_t *len);
char *tokstream_finish_len(TokenStream *s, size_t *len);

// Trains a byte-level BPE (GPT-2 style: ByteLevel pre-tokenizer with the GPT-2
// split regex, ByteLevel decoder) on texts and writes out_path atomically as a
// tokenizer.json that antibody and HF tokenizers load identically. The special
// tokens become added tokens with ids 0..n_special-1, then the 256 byte symbols,
// then merges until vocab_size. post_processor is null (no BOS added). Deterministic.
int tokenizer_train_bpe(const char *const *texts, int n_texts, int vocab_size,
                        const char *const *special_tokens, int n_special,
                        const char *out_path, Err *e);
