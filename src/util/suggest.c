// Edit-distance suggestions for unknown names (util/suggest.h).
#include "util/suggest.h"

#include <stdio.h>
#include <string.h>

#define MAX_NAME 64

static char fold(char c) {
    if (c == '-') return '_';
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int suggest_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > MAX_NAME || m > MAX_NAME) return 1 << 20;
    // three rows of the dynamic programme (optimal string alignment distance)
    int prev2[MAX_NAME + 1], prev[MAX_NAME + 1], cur[MAX_NAME + 1];
    for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int cost = fold(a[i - 1]) != fold(b[j - 1]);
            int d = prev[j - 1] + cost;
            if (prev[j] + 1 < d) d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) && fold(a[i - 2]) == fold(b[j - 1]) &&
                prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
        memcpy(prev2, prev, (m + 1) * sizeof *prev);
        memcpy(prev, cur, (m + 1) * sizeof *cur);
    }
    return prev[m];
}

void suggest_init(Suggest *s, const char *word) {
    s->word = word;
    s->best = NULL;
    s->dist = 1 << 20;
}

void suggest_add(Suggest *s, const char *cand) {
    if (!cand || !s->word) return;
    int d = suggest_distance(s->word, cand);
    if (d < s->dist) {
        s->dist = d;
        s->best = cand;
    }
}

const char *suggest_result(const Suggest *s) {
    if (!s->best || s->dist == 0) return s->dist == 0 ? s->best : NULL;
    int len = (int)strlen(s->word), limit = len / 3;
    if (limit < 1) limit = 1;
    if (limit > 3) limit = 3;
    return s->dist <= limit ? s->best : NULL;
}

const char *suggest_hint(const Suggest *s, char *buf, size_t cap) {
    const char *best = suggest_result(s);
    if (best) snprintf(buf, cap, "did you mean %s? ", best);
    else if (cap) buf[0] = '\0';
    return buf;
}
