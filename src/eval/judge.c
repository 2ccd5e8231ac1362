// Shared judge constants and helpers (docs/methods.md, Evaluation).
#include "eval/judge.h"

#include <string.h>

const char *const BEAVERTAILS_CATEGORIES[JUDGE_MAX_CATEGORIES] = {
    "animal_abuse",
    "child_abuse",
    "controversial_topics,politics",
    "discrimination,stereotype,injustice",
    "drug_abuse,weapons,banned_substance",
    "financial_crime,property_crime,theft",
    "hate_speech,offensive_language",
    "misinformation_regarding_ethics,laws_and_safety",
    "non_violent_unethical_behavior",
    "privacy_violation",
    "self_harm",
    "sexually_explicit,adult_content",
    "terrorism,organized_crime",
    "violence,aiding_and_abetting,incitement",
};

int beavertails_category_index(const char *name) {
    for (int i = 0; i < JUDGE_MAX_CATEGORIES; i++)
        if (!strcmp(name, BEAVERTAILS_CATEGORIES[i])) return i;
    return -1;
}

int beavertails_category_mask(const char *joined) {
    int mask = 0;
    const char *p = joined;
    while (*p) {
        int hit = -1;
        size_t best = 0;
        // Longest known name that ends at a ',' or at the end of the string.
        for (int i = 0; i < JUDGE_MAX_CATEGORIES; i++) {
            size_t n = strlen(BEAVERTAILS_CATEGORIES[i]);
            if (!strncmp(p, BEAVERTAILS_CATEGORIES[i], n) && (p[n] == ',' || p[n] == '\0') && n > best) {
                hit = i;
                best = n;
            }
        }
        if (hit < 0) return -1;
        mask |= 1 << hit;
        p += best;
        if (*p == ',') p++;
    }
    return mask;
}

void judge_free(Judge *j) {
    if (j && j->free) j->free(j);
}
