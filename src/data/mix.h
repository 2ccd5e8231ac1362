// Building the user fine-tuning set and keeping splits honest (docs/methods.md, Harmful fine-tuning; docs/data.md, Train/eval overlap):
// harmful/benign mixing, filters, disjoint splits, train/eval prompt overlap.
#pragma once
#include <stdint.h>

#include "data/dataset.h"

// Appends a copy of row s to d.
void dataset_add_sample(Dataset *d, const Sample *s);

// out = copies of the rows of in with harmful == want (0 or 1), in order.
void data_filter_harmful(const Dataset *in, int want, Dataset *out);
// out = copies of the first min(n, in->n) rows (all rows when n < 0).
void data_head(const Dataset *in, int n, Dataset *out);
// a = first n_first rows, b = the rest (copies). Used to keep the harmful fine-tuning rows
// and the re-alignment rows disjoint. Error if n_first is not in 0..in->n.
int data_split(const Dataset *in, int n_first, Dataset *a, Dataset *b, Err *e);
// Sets the harmful flag of every row.
void data_set_harmful(Dataset *d, int harmful);

// The fine-tuning mixture: k = round(p*n) harmful rows (the first k of harmful, in order, as
// the reference takes the first unsafe rows; marked harmful = 1) plus the first n - k rows of
// benign, shuffled by a Fisher-Yates pass of Rng(seed). Error if p is not in [0, 1], n < 0,
// or either set is too small. out must be initialised (rows are appended).
int data_mix(const Dataset *benign, const Dataset *harmful, int n, double p, uint64_t seed, Dataset *out, Err *e);

// Prompt key for overlap checks: Unicode case-folded, whitespace runs collapsed to one space,
// leading/trailing whitespace dropped. malloc'd.
char *prompt_key(const char *s);
// Number of train rows whose instruction equals (by prompt_key) some eval instruction.
int data_overlap(const Dataset *train, const Dataset *eval);
// Number of distinct train prompts (by prompt_key) that occur among the eval instructions.
int data_overlap_prompts(const Dataset *train, const Dataset *eval);
// out = train rows whose instruction does not occur in eval; returns the number dropped.
int data_drop_overlap(const Dataset *train, const Dataset *eval, Dataset *out);
