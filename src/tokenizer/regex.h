// Shared by the tokenizer and the BPE trainer: Hugging Face (Oniguruma) regexes
// compiled with PCRE2 (UTF, UCP, JIT), \s made to match Oniguruma's White_Space.
#pragma once
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

extern const char GPT2_PATTERN[];  // the GPT-2 split regex of HF's ByteLevel pre-tokenizer
pcre2_code *tok_compile_onig(const char *pat, size_t n);  // NULL if it does not compile
