// Fine-tune accuracy rules (docs/methods.md, Evaluation); see answers.h for the reference behaviour kept.
#include "data/answers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }

// Next match of -?\d+\.?\d* in s[0..n) at or after *i (Python re.findall semantics:
// leftmost match, scanning on). Returns 1 and the match [*a, *b), or 0.
static int next_number(const char *s, size_t n, size_t *i, size_t *a, size_t *b) {
    for (size_t k = *i; k < n; k++) {
        size_t j = k;
        if (s[j] == '-') j++;
        if (j >= n || !is_digit(s[j])) continue;
        *a = k;
        while (j < n && is_digit(s[j])) j++;
        if (j < n && s[j] == '.') {
            j++;
            while (j < n && is_digit(s[j])) j++;
        }
        *b = j;
        *i = j;
        return 1;
    }
    return 0;
}

int gsm8k_extract(const char *answer, char *num, size_t cap) {
    if (cap) num[0] = '\0';
    size_t n = strlen(answer);
    char *s = xmalloc(n + 1);
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (answer[k] != ',') s[m++] = answer[k];
    s[m] = '\0';
    size_t a = 0, b = 0, i = 0, la = 0, lb = 0;
    int found = 0;
    while (next_number(s, m, &i, &a, &b)) { la = a; lb = b; found = 1; }
    if (!found) { free(s); return -1; }
    const char *p = strstr(s, "The final answer is: ");
    if (p) {
        size_t start = (size_t)(p - s) + strlen("The final answer is: ");
        const char *q = strstr(s + start, "The final answer is: ");  // Python split: segment[1] ends here
        size_t end = q ? (size_t)(q - s) : m;
        size_t j = start;
        if (next_number(s, end, &j, &a, &b)) { la = a; lb = b; }
    }
    size_t len = lb - la;
    if (cap) {
        if (len >= cap) len = cap - 1;
        memcpy(num, s + la, len);
        num[len] = '\0';
    }
    free(s);
    return 0;
}

int fa_correct(TaskKind t, const char *answer, const char *label) {
    if (!answer || !label) return -1;
    switch (t) {
    case TASK_SST2: {
        const char *w1, *w2;
        if (!strcmp(label, "positive") || !strcmp(label, "Positive") || !strcmp(label, "1")) { w1 = "positive"; w2 = "Positive"; }
        else if (!strcmp(label, "negative") || !strcmp(label, "Negative") || !strcmp(label, "0")) { w1 = "negative"; w2 = "Negative"; }
        else return -1;
        return strstr(answer, w1) || strstr(answer, w2);
    }
    case TASK_AGNEWS: {
        static const char *const names[4] = {"World", "Sports", "Business", "Sci/Tech"};
        static const char *const alt[4] = {"world", "sports", "business", "sci"};
        for (int k = 0; k < 4; k++)
            if (!strcasecmp(label, names[k])) return strstr(answer, names[k]) || strstr(answer, alt[k]);
        return -1;
    }
    case TASK_GSM8K: {
        char pa[128], pl[128];
        if (gsm8k_extract(label, pl, sizeof pl)) return -1;
        if (gsm8k_extract(answer, pa, sizeof pa)) return 0;
        return strtod(pa, NULL) == strtod(pl, NULL);
    }
    case TASK_ALPACA:  // no rule: AlpacaEval's judge
    case TASK_NONE: break;
    }
    return -1;
}
