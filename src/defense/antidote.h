// Antidote (docs/methods.md, Antidote): after harmful fine-tuning, prune the weights with the
// largest Wanda score |W_ij| * ||X_:,j|| measured on harmful (re-alignment) data.
#pragma once
#include "model/model.h"
#include "train/batch.h"
#include "util/rng.h"

// The masks themselves (wanda_row_count, wanda_mask, random_mask) are kernels
// (kernels/kernels.h, kernels/prune.c).

typedef struct {
    double dense_ratio;
    int random;        // random pruning instead of Wanda
    int full_mode;     // 0: prune the adapter's A and B; 1: prune the model's own matrices
    int targets;       // full mode: which projections (default q,k,v)
    uint64_t seed;
} PruneOpts;

typedef struct {
    size_t pruned, total;  // entries set to zero / entries considered
} PruneReport;

// Layer by layer, zeroes the harmful weights of lora (LoRA mode; m holds the merged aligned
// base) or of m itself (full mode; lora may be NULL and m must hold the fully merged model).
// The calibration activations reach each layer through the unpruned layers below it, as
// in the reference, which applies every mask at the end. With no calibration samples
// (calib NULL or empty) the score is |W| alone (the reference's sample_num = 0).
int antidote_prune(Model *m, Lora *lora, const EncodedSet *calib, const PruneOpts *o, PruneReport *r, Err *e);
// Calibration samples run through a layer together, padded to the longest of them, up to
// ANTIDOTE_CALL_TOKENS tokens per call (at least one sample; shortest samples first, so
// that a call pads little): the layer's products work on hundreds of rows instead of one
// sample's. Causal attention never reads past a row's own tokens and the statistics skip
// the padding, so each sample is computed as when it runs alone (batch 1, the reference).
#define ANTIDOTE_CALL_TOKENS 2048
// antidote_prune with at most call_tokens tokens per layer call (tests: 1 = one sample at a time).
int antidote_prune_calls(Model *m, Lora *lora, const EncodedSet *calib, const PruneOpts *o, int call_tokens,
                         PruneReport *r, Err *e);
