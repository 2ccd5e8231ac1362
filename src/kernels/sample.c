// Picking the next token from a row of logits: greedy (the first maximum) or sampled
// from softmax(logits / temperature) within the top-p nucleus.
#include <math.h>
#include <stdlib.h>

#include "kernels/kernels.h"
#include "util/err.h"

int logits_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct { float p; int i; } ProbIdx;
static int cmp_desc(const void *a, const void *b) {
    float x = ((const ProbIdx *)a)->p, y = ((const ProbIdx *)b)->p;
    return x < y ? 1 : x > y ? -1 : 0;
}

// Samples from softmax(logits / temperature) restricted to the top-p nucleus.
int logits_sample(float *logits, int n, float temperature, float top_p, Rng *r) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) { logits[i] = expf((logits[i] - mx) / temperature); sum += logits[i]; }
    double u = rng_uniform(r);
    if (top_p >= 1.0f) {
        double c = 0;
        for (int i = 0; i < n; i++) { c += logits[i] / sum; if (u < c) return i; }
        return n - 1;
    }
    ProbIdx *pi = xmalloc(n * sizeof *pi);
    for (int i = 0; i < n; i++) pi[i] = (ProbIdx){(float)(logits[i] / sum), i};
    qsort(pi, n, sizeof *pi, cmp_desc);
    double c = 0;
    int k = 0;
    while (k < n && c < top_p) c += pi[k++].p;
    double v = u * c, acc = 0;
    int pick = pi[k - 1].i;
    for (int i = 0; i < k; i++) { acc += pi[i].p; if (v < acc) { pick = pi[i].i; break; } }
    free(pi);
    return pick;
}
