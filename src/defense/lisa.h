// Lisa (docs/methods.md, Lisa): fine-tuning that alternates between alignment rows and the
// user's rows, each state pulled toward the weights the other state ended with. A
// StepMethod for the shared training loop.
#pragma once
#include "defense/pool.h"
#include "train/trainer.h"

typedef struct {
    float rho;                  // proximal weight (1)
    int align_steps;            // micro-batches on alignment rows per cycle (100)
    int finetune_steps;         // micro-batches on the user's rows per cycle (900)
    double proximal_after;      // the proximal term applies after this many micro-batches
                                // (the reference: 0.1 * micro-batches per epoch * epochs)
    int batch;                  // alignment rows per micro-batch (the training batch size)
    int grad_accum;             // the run's micro-batches per optimizer step
    const EncodedSet *guide;    // alignment rows (harmful prompt + safe answer); none: no alignment state
    uint64_t seed;              // order of the alignment rows
} LisaOpts;

// NULL without an adapter. The anchor (the weights of the last state switch) is the
// method's checkpointed state.
StepMethod *lisa_method_new(const Model *m, const Lora *l, const LisaOpts *o);
// 1 when micro-batch j is an alignment step.
int lisa_is_alignment(const LisaOpts *o, int64_t j);
// The proximal term rho/2 ||p - anchor||^2; adds scale * rho * (p - anchor) to grad (tmp:
// n floats of scratch). At p == anchor it is 0 and grad is left bit for bit as it was.
double lisa_proximal(const float *p, const float *anchor, float *grad, float *tmp, size_t n, float rho, float scale);
