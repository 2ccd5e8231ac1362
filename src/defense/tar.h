// TAR (docs/methods.md, TAR): tamper-resistant alignment, training against a simulated
// harmful fine-tuning attack. A StepMethod for the shared training loop.
#pragma once
#include "defense/pool.h"
#include "train/trainer.h"

typedef struct {
    float weight;               // weight of the tamper-resistance gradient (2)
    float inner_lr;             // SGD learning rate of the simulated attack (0.01)
    int inner_steps;            // SGD steps of the simulated attack per micro-batch (1)
    int batch;                  // harmful rows per attack step (10)
    int grad_accum;             // the run's micro-batches per optimizer step (the draw index)
    const EncodedSet *harmful;  // harmful prompt + harmful answer rows
    uint64_t seed;              // harmful batch order
} TarOpts;

// Per micro-batch, with h the mean harmful loss and a the alignment batch's mean loss:
// w_0 = w, w_{k+1} = w_k - inner_lr * dh/dw(w_k) on harmful batch k (k < inner_steps); the
// optimizer gets da/dw(w) + weight * da/dw(w_K) (first order: the attacked adapter's
// gradient, applied at w). The adapter is restored exactly before the alignment pass.
// NULL without an adapter or harmful rows.
StepMethod *tar_method_new(const Model *m, const Lora *l, const TarOpts *o);
// The last micro-batch's losses: h(w_k) on harmful batch k for k < inner_steps, then the
// tamper-resistance loss a(w_K) (inner_steps + 1 values).
const float *tar_losses(const StepMethod *s);
