// Loading instruction data from JSON files (docs/methods.md, Prompt and loss, Harmful fine-tuning; docs/data.md, Train/eval overlap).
// One loader reads every layout the project meets, detected from the content:
//   - JSONL: one object per line;
//   - a JSON array of objects, or several arrays / objects back to back in one file
//     (BeaverTails 30k_test is four arrays concatenated).
// Row fields are found by name; FieldMap renames them. Errors name file:line (the line
// where the bad row starts) and, for malformed JSON, file:line:column.
#pragma once
#include <jansson.h>
#include <stddef.h>

#include "data/dataset.h"

// The instruction of every DecodingTrust row in the T-Vaccine scripts.
#define DECODING_TRUST_INSTRUCTION "You are required to continue the generation of the given incomplete prompt"

// Field names to read; NULL = auto-detect, "" = never read this field.
// A name with dots ("prompt.text") reaches into nested objects when no key has that exact name.
// Auto-detect candidates, first present wins:
//   instruction: instruction, prompt, forbidden_prompt, question
//   input:       input                       (absent -> "")
//   output:      output, response, rejected, answer, completion (absent -> "" unless DATA_NEED_OUTPUT)
//   label:       label                       (string or integer; absent -> "")
//   category:    category                    (string, array of strings, or object of booleans:
//                                             the true keys joined by ',')
//   is_safe:     is_safe (bool: false -> harmful = 1); when absent, a string field `flag`
//                equal to "unsafe" marks the row harmful (the Vaccine-style mixture files).
// TRL's conversational rows ("messages", or "prompt" and "completion" as message lists) are
// one turn: user -> instruction, system -> input, assistant -> output (docs/data.md, "Chat and
// prompt/completion rows"); several turns are refused.
// DecodingTrust rows ({type, prompt: {text}, continuation: {text}}) are built as the T-Vaccine
// scripts build them (docs/data.md): toxic rows harmful, non_toxic rows safe, toxic_test
// rows skipped; with DATA_ALL_HARMFUL only the toxic rows.
typedef struct {
    const char *instruction, *input, *output, *label, *category, *is_safe;
    char *buf_;  // storage owned by fieldmap_parse; NULL for hand-filled maps
} FieldMap;

// Parses "instruction=prompt,output=response" (keys: instruction, input, output, label,
// category, is_safe; an empty value means "never read"). NULL or "" gives the all-auto map.
// On success call fieldmap_free. Errors: unknown key, missing '=', repeated key.
int fieldmap_parse(const char *spec, FieldMap *m, Err *e);
void fieldmap_free(FieldMap *m);

enum {
    DATA_NEED_OUTPUT = 1,   // a row without an output field is an error
    DATA_ALL_HARMFUL = 2,   // mark every row harmful (sets of harmful prompts without is_safe)
};

// Appends the rows of path to out (out must be initialised). Returns 0, or -1 with
// "path:line: problem" / "path:line:col: JSON error" in e; on error out keeps the rows
// appended before the bad one. A file with no rows is an error.
int data_load(const char *path, const FieldMap *m, unsigned flags, Dataset *out, Err *e);

// --- lower-level pieces shared with the task loaders ---------------------------------


// Calls fn for every row of a JSON / JSONL file as data_load sees it (row may be any
// JSON value; fn checks). line = 1-based line where the row starts. fn returns 0 or -1.
// Returns the number of rows visited, or -1.
typedef int (*JsonRowFn)(void *ctx, json_t *row, const char *path, int line, Err *e);
int json_rows_foreach(const char *path, JsonRowFn fn, void *ctx, Err *e);

// Name of a JSON value's type for messages ("string", "object", ...).
const char *json_type_name(const json_t *v);
