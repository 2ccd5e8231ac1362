// Vaccine: perturbation-aware alignment (SPEC section 4), its random-noise ablation,
// and T-Vaccine, the layer-targeted variant (SPEC section 5). Each is a StepMethod
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

// T-Vaccine. Every K steps, layer probabilities P_l = ||g_l|| / sum_k ||g_k|| from the
// gradients on a harmful batch; every J steps, S distinct layers sampled with P; only
// they are trained and perturbed, and no backward pass runs below the lowest of them.
typedef struct {
    float rho;
    int K, J, S;
    int B;                    // harmful batch size for the probability pass
    const EncodedSet *harmful;
    int reference_quirk;      // > 26 layers: a sampled layer i > 0 also activates i-1 (on by default)
} TVaccineOpts;

StepMethod *tvaccine_method_new(const Model *m, int B, int T, const TVaccineOpts *o, uint64_t seed);
// Samples S distinct layers without replacement with probabilities P (sum 1) into
// active[L] (1/0); applies the > 26 layer quirk when asked. Exposed for tests.
void tvaccine_sample_layers(Rng *r, const float *P, int L, int S, int quirk, int *active);
// The current probabilities / active layers of a T-Vaccine method (tests, reports).
const float *tvaccine_probs(const StepMethod *s);
const int *tvaccine_active(const StepMethod *s);
