// Batches drawn from a side data set (Booster's harmful rows, Lisa's alignment rows) as the
// references draw them: a DataLoader over a RandomSampler that starts a new random order when
// a pass is used up, batches of k rows, the last batch of a pass shorter (drop_last false).
// The d-th batch is a function of (seed, d) alone, so a resumed run draws what the
// uninterrupted one would have. Loaders that keep no iterator once it is used up (the
// T-Vaccine repository's) make every batch from redraw_from on the first k rows of a new
// random order.
#pragma once
#include "train/batch.h"

typedef struct {
    const EncodedSet *set;
    int k;             // rows per batch
    uint64_t seed;
    int64_t pass;      // the pass whose order perm holds (-1: none yet)
    int *perm;         // [set->n]
    int *idx;          // [k]
    int max_T;         // longest row of the set
    int64_t redraw_from;  // draws d >= this each start a new random order (INT64_MAX: never)
    Batch b;           // the last batch drawn
} PoolSampler;

void pool_sampler_init(PoolSampler *p, const EncodedSet *set, int k, uint64_t seed);
void pool_sampler_free(PoolSampler *p);
// The d-th batch (d >= 0), right-padded as the trainer pads.
const Batch *pool_sampler_batch(PoolSampler *p, int64_t d);
