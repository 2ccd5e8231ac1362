// Booster (docs/methods.md, Booster): alignment that attenuates the harmful perturbation. A
// StepMethod for the shared training loop.
#pragma once
#include "defense/pool.h"
#include "train/trainer.h"

typedef struct {
    float lambda;               // weight of the regulariser (5)
    float alpha;                // size of the normalised harmful step (0.1)
    int batch;                  // harmful rows per step (10)
    int grad_accum;             // the run's micro-batches per optimizer step (the draw index)
    const EncodedSet *harmful;  // harmful prompt + harmful answer rows
    uint64_t seed;              // harmful batch order, dropout of the harmful passes
} BoosterOpts;

// Per micro-batch: the alignment gradient plus lambda * (g_h(w) - g_h(w - alpha g_h(w) / ||g_h(w)||))
// on one harmful batch (g_h: gradient of the harmful loss). NULL without an adapter or
// harmful rows.
StepMethod *booster_method_new(const Model *m, const Lora *l, const BoosterOpts *o);
