// Vaccine: perturbation-aware alignment (docs/methods.md, Vaccine), its random-noise ablation,
// and T-Vaccine, the layer-targeted variant (docs/methods.md, T-Vaccine). Each is a StepMethod
// for the shared training loop.
#pragma once
#include "train/batch.h"
#include "train/trainer.h"
#include "util/rng.h"

// One (B*T, C) buffer per perturbed layer: first the recorded gradient dL/dh_l, then,
// scaled in place, the perturbation eps_l. Buffers come from a pool handed to the
// layers that need one, so T-Vaccine holds only as many as it has active layers.
typedef struct {
    int L;
    size_t cap;        // floats per buffer (B*T*C)
    float **pool;      // allocated buffers
    int n_pool;
    float **g;         // [L] buffer of layer l this step, or NULL
    const float **eps; // [L] the same buffers as the forward reads them (NULL = no perturbation)
} Perturbation;

void perturbation_init(Perturbation *p, const Model *m, int B, int T);
void perturbation_free(Perturbation *p);
// Hands buffers to the layers with include[l] (NULL = all) and takes them from the rest.
void perturbation_assign(Perturbation *p, const int *include);
// eps_l = rho * g_l / (G + 1e-7), G = sqrt(sum over the assigned layers of ||g_l||^2),
// on the first n floats of each buffer. Returns G.
double vaccine_perturbation(Perturbation *p, float rho, size_t n);

// The Vaccine step: pass 1 records the attention-output gradients (no parameter
// gradients), pass 2 trains on the forward perturbed by eps.
StepMethod *vaccine_method_new(const Model *m, int B, int T, float rho);
// Ablation: one pass with N(0, rho) noise (variance rho) added to every attention output.
StepMethod *random_vaccine_method_new(const Model *m, int B, int T, float rho, uint64_t seed);

// T-Vaccine (docs/methods.md). Every K steps, layer probabilities P_l = ||g_l|| / sum_k ||g_k||
// from the attention-output gradients of one harmful row (batch 1, drawn at random from
// the pool); every J steps, S distinct layers sampled with P. Only the sampled layers are
// perturbed and their attention adapters (q, k, v, o) trained; what else trains depends on
// the variant.
typedef enum {
    TV_REFERENCE,  // the authors' code: every layer's MLP adapters (gate, up, down) train at every
                   // step, so the trained pass back-propagates to the first layer
    TV_LEAN,       // memory-lean: only the sampled layers' adapters train and no backward pass
                   // runs below the lowest of them
} TVaccineVariant;

typedef struct {
    float rho;
    int K, J, S;
    const EncodedSet *harmful;  // the probability pool (the first 200 harmful rows by default)
    TVaccineVariant variant;
} TVaccineOpts;

StepMethod *tvaccine_method_new(const Model *m, int B, int T, const TVaccineOpts *o, uint64_t seed);
// Samples S distinct layers without replacement with probabilities P (sum 1) into
// active[L] (1/0). Exposed for tests.
void tvaccine_sample_layers(Rng *r, const float *P, int L, int S, int *active);
// The layers whose activations a step keeps (the rest are recomputed in the backward pass):
// the sampled ones and, in models deeper than 26 layers, the layer below each (as the
// reference's checkpointing does; it changes memory and time, not the numbers).
void tvaccine_kept_layers(const int *active, int L, int *keep);
// The current probabilities / sampled layers / trained projections ([L] bitmasks of
// 1 << P_*) of a T-Vaccine method (tests, reports).
const float *tvaccine_probs(const StepMethod *s);
const int *tvaccine_active(const StepMethod *s);
const int *tvaccine_trainable(const StepMethod *s);
