// "Did you mean": the known name closest to a mistyped one (an unknown flag, config key,
// method or task name), by edit distance. Names compare case-insensitively with '-' = '_',
// so --learning_rat suggests learning-rate and "vacine" suggests vaccine.
#pragma once
#include <stddef.h>

typedef struct {
    const char *word;  // the unknown name
    const char *best;  // the closest candidate so far, or NULL
    int dist;
} Suggest;

void suggest_init(Suggest *s, const char *word);
// Offers one candidate (NULL is ignored).
void suggest_add(Suggest *s, const char *cand);
// The closest candidate when it is close enough to be a typo (at most one edit per three
// characters of the word, and at most 3), else NULL.
const char *suggest_result(const Suggest *s);
// "did you mean NAME? " (the result of suggest_result) into buf, or "" when there is none;
// returns buf. For messages that list the valid names after it.
const char *suggest_hint(const Suggest *s, char *buf, size_t cap);
// Edit distance (Levenshtein with adjacent transpositions) between a and b as above; a
// large number when either is longer than 64 characters.
int suggest_distance(const char *a, const char *b);
