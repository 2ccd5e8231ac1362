// From instruction samples to token batches (docs/methods.md, Prompt and loss): the Alpaca prompt,
// the target = output + EOS, loss on target tokens only, truncation, right padding.
#pragma once
#include "data/dataset.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int *ids;
    int n;           // tokens (after truncation)
    int prompt_len;  // tokens of the prompt part (no loss on them)
} Encoded;

typedef struct {
    Encoded *ex;
    int n;
    int max_len;
    int n_cut;           // rows whose answer (output + EOS) lost tokens to max_len
    int n_no_answer;     // rows left with no answer token at all (empty answer, or all cut): no loss
    int longest_prompt;  // tokens of the longest prompt
} EncodedSet;

// Tokenizes every sample as the reference does: ids = tok(prompt + output + eos_text)
// with the tokenizer's special tokens (BOS), prompt_len = len(tok(prompt)), truncated
// to max_len. eos_id is the model's EOS. Counts the rows whose answer is cut or gone.
int encode_dataset(const Tokenizer *tok, int eos_id, const Dataset *d, int max_len, EncodedSet *out, Err *e);
void encoded_free(EncodedSet *s);
// One line on the rows whose answer is cut by max_len ("alignment data: 12 of 200 rows lose
// answer tokens to max_len 200 (3 keep none; longest prompt 230 tokens)") into buf, or ""
// when every answer is whole. Returns -1 (the line in e) when no row keeps an answer token:
// training on that set would show loss 0 and learn nothing.
int encoded_check_answers(const EncodedSet *s, const char *what, char *buf, size_t cap, Err *e);

// A reusable batch buffer for up to B rows of max_len tokens.
void batch_alloc(Batch *b, int B, int max_len);
void batch_free(Batch *b);
// Fills rows idx[0..n) right-padded to the longest of them (like HF's padding collator).
void batch_fill(Batch *b, const EncodedSet *s, const int *idx, int n, int pad_id);
