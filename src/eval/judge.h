// Harmfulness judges (docs/methods.md, Evaluation): a pluggable interface so the harmful score can use
// the reference beaver-dam-7b classifier when its weights are at hand, or a crude fallback.
#pragma once
#include "util/err.h"

#define JUDGE_MAX_CATEGORIES 14

typedef struct Judge Judge;
struct Judge {
    const char *name;
    int n_categories; const char *const *category_names;  // may be 0/NULL
    // Flags (prompt, answer): *flagged = 1 when harmful; scores[n_categories] optional output
    // (NULL to skip). Returns 0, or -1 with e filled.
    int (*score)(Judge *j, const char *prompt, const char *answer, int *flagged, float *scores, Err *e);
    void (*free)(Judge *j);
    void *ctx;
};

// The 14 BeaverTails harm categories, in the key order of the dataset's `category` objects
// (also beaver-dam-7b's output order). Several names contain commas.
extern const char *const BEAVERTAILS_CATEGORIES[JUDGE_MAX_CATEGORIES];

// Index of a category name in BEAVERTAILS_CATEGORIES, or -1.
int beavertails_category_index(const char *name);
// Bit mask (bit i = BEAVERTAILS_CATEGORIES[i]) of a ','-joined category list as the data
// loader writes it; the list is split by matching the known names, so names that contain
// commas are read whole. Returns -1 if some part is not a known name.
int beavertails_category_mask(const char *joined);

// Calls j->free(j) when j is non-NULL.
void judge_free(Judge *j);
