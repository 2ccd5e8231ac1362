// RepNoise (docs/methods.md, RepNoise): alignment that keeps the loss on safe rows, ascends the
// loss on harmful rows and pushes the harmful rows' hidden states toward Gaussian noise. A
// StepMethod for the shared training loop.
#pragma once
#include "defense/pool.h"
#include "train/trainer.h"

typedef struct {
    float alpha;                // weight of the harmful-loss ascent term -alpha log(H) (0.1)
    float beta;                 // weight of the noise distance (0.001)
    int batch;                  // harmful rows per micro-batch (the training batch size, as the reference)
    int grad_accum;             // the run's micro-batches per optimizer step (the draw index)
    int layer_ce;               // 1: H also counts the loss at every layer's hidden state (the Booster and
                                // T-Vaccine code); 0: the final logits' loss alone (the Antidote code)
    int bf16_labels;            // 1: the harmful loss's target ids rounded to bf16, as the Booster and
                                // T-Vaccine code computes them; 0: the exact ids
    const EncodedSet *harmful;  // harmful prompt + harmful answer rows
    uint64_t seed;              // harmful batch draws, the noise, dropout of the harmful pass
} RepNoiseOpts;

// Per micro-batch, with a fresh batch of harmful rows paired row by row with the safe batch:
// R + beta * (1/L) sum_l MMD(masked harmful MLP output of layer l, masked N(0,1) noise)
//   - alpha * log(H) (docs/methods.md, RepNoise). Sized for safe batches of at most B rows
// of T tokens. NULL without an adapter or harmful rows.
StepMethod *repnoise_method_new(const Model *m, const Lora *l, int B, int T, const RepNoiseOpts *o);

// The terms of the last micro-batch (tests, the parity driver).
typedef struct {
    double retain;      // R: the safe rows' loss
    double harmful;     // H (0 when alpha is 0)
    double noise;       // (1/L) sum_l MMD_l (0 when beta is 0)
    int n_harm, n_safe; // tokens each loss counts (with those whose logits the mask zeroes)
} RepNoiseTerms;
RepNoiseTerms repnoise_terms(const StepMethod *s);
// The harmful batch of the last micro-batch.
const Batch *repnoise_harmful_batch(const StepMethod *s);
// The noise layer l was compared with in the last micro-batch ((B*T, C) of its harmful batch,
// 0 where the mask is 0), regenerated into out.
void repnoise_noise(const StepMethod *s, int l, float *out);

// The positions a RepNoise loss counts (docs/methods.md, RepNoise): keep[r*T+t] = 1 where row r
// of x has a real token and row r of y (if there is one) does not have the same token at t.
void repnoise_diff_mask(const Batch *x, const Batch *y, int *keep);
// The targets of the masked cross-entropy on x (docs/methods.md, RepNoise): position t of a row
// predicts token t+1 when keep[t+1] and that token (rounded to bf16 with bf16_labels, unless the
// rounded id is not below V) is not 0; when keep[t] is 0 too the reference's logits there are
// zeroed, a constant loss of ln V without gradient: such positions are counted in *n_zero and
// get target -1. Returns the positions with a target.
int repnoise_targets(const Batch *x, const int *keep, int bf16_labels, int V, int *targets, int *n_zero);
