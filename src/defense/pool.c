// Side-data batches in random-order passes (defense/pool.h).
#include "defense/pool.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/rng.h"

void pool_sampler_init(PoolSampler *p, const EncodedSet *set, int k, uint64_t seed) {
    p->set = set;
    p->k = k < set->n ? k : set->n;
    p->seed = seed;
    p->pass = -1;
    p->redraw_from = INT64_MAX;
    p->perm = xmalloc((set->n ? set->n : 1) * sizeof(int));
    p->idx = xmalloc((p->k ? p->k : 1) * sizeof(int));
    p->max_T = 1;
    for (int i = 0; i < set->n; i++) p->max_T = set->ex[i].n > p->max_T ? set->ex[i].n : p->max_T;
    batch_alloc(&p->b, p->k ? p->k : 1, p->max_T);
}

void pool_sampler_free(PoolSampler *p) {
    free(p->perm);
    free(p->idx);
    batch_free(&p->b);
}

const Batch *pool_sampler_batch(PoolSampler *p, int64_t d) {
    int n = p->set->n;
    int64_t per_pass = (n + p->k - 1) / p->k;
    int64_t pass = d / per_pass, at = (d % per_pass) * p->k;
    if (d >= p->redraw_from) pass = per_pass + d - p->redraw_from, at = 0;  // passes above any ordinary one
    if (pass != p->pass) {
        Rng r;
        rng_seed(&r, hash64(p->seed ^ hash64((uint64_t)pass + 1)));
        for (int i = 0; i < n; i++) p->perm[i] = i;
        rng_shuffle_int(&r, p->perm, n);
        p->pass = pass;
    }
    int m = 0;
    for (int64_t i = at; i < at + p->k && i < n; i++) p->idx[m++] = p->perm[i];
    batch_fill(&p->b, p->set, p->idx, m, 0);
    return &p->b;
}
