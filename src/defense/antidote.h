// Antidote (SPEC section 7): after harmful fine-tuning, prune the weights with the
// largest Wanda score |W_ij| * ||X_:,j|| measured on harmful (re-alignment) data.
#pragma once
#include "model/model.h"
#include "train/batch.h"
#include "util/rng.h"

// mask[i*cols + j] = 1 for the k = floor(cols * dense_ratio) entries of row i with the
// largest score |W_ij| * act[j] (ties: the lower column index first).
void wanda_mask(const float *W, int rows, int cols, const float *act, float dense_ratio, unsigned char *mask);
// The ablation: the same count per row, chosen uniformly at random.
void random_mask(Rng *r, int rows, int cols, float dense_ratio, unsigned char *mask);

typedef struct {
    float dense_ratio;
    int random;        // random pruning instead of Wanda
    int full_mode;     // 0: prune the adapter's A and B; 1: prune the model's own matrices
    int targets;       // full mode: which projections (default q,k,v)
    uint64_t seed;
} PruneOpts;

typedef struct {
    size_t pruned, total;  // entries set to zero / entries considered
} PruneReport;

// Layer by layer (calibration activations propagated through each layer as pruned),
// zeroes the harmful weights of lora (LoRA mode; m holds the merged aligned base) or of
// m itself (full mode; lora may be NULL and m must hold the fully merged model).
int antidote_prune(Model *m, Lora *lora, const EncodedSet *calib, const PruneOpts *o, PruneReport *r, Err *e);
