// Instruction samples as every stage sees them (docs/methods.md, Prompt and loss): an Alpaca-style
// instruction/input/output triple plus what evaluation needs to score it.
#pragma once
#include "util/err.h"

typedef struct {
    char *instruction;  // the request (harmful prompt, task instruction, ...)
    char *input;        // optional context ("" when none)
    char *output;       // target answer ("" for evaluation-only prompts)
    char *label;        // reference answer for fine-tune accuracy ("positive", "World", "42"; "" if none)
    char *category;     // harm category for harmful rows ("" otherwise)
    int harmful;        // 1 when the row is a harmful request (whatever its answer)
} Sample;

typedef struct {
    Sample *rows;
    int n, cap;
} Dataset;

void dataset_init(Dataset *d);
// Copies the strings (NULL is stored as "").
void dataset_add(Dataset *d, const char *instruction, const char *input, const char *output,
                 const char *label, const char *category, int harmful);
void dataset_free(Dataset *d);
// SHA-256 of every field of every row, in order (fingerprints, provenance).
void dataset_sha256(const Dataset *d, char hex[65]);
