// Antidote (SPEC section 7): after harmful fine-tuning, prune the weights with the
// largest Wanda score |W_ij| * ||X_:,j|| measured on harmful (re-alignment) data.
#pragma once
#include "model/model.h"
#include "train/batch.h"
#include "util/rng.h"

// Entries pruned per row, as the reference's sort-and-keep computes it (docs/methods.md):
// cols - floor(cols * (1 - dense_ratio)), in double precision (a rank-8 B at 0.1: 1).
int wanda_row_count(int cols, double dense_ratio);
// mask[i*cols + j] = 1 for the wanda_row_count entries of row i with the largest score
// |W_ij| * act[j] (act NULL: |W_ij|, magnitude only). Ties are broken as the reference's
// stable ascending sort does: among equal scores the higher column is pruned first.
void wanda_mask(const float *W, int rows, int cols, const float *act, double dense_ratio, unsigned char *mask);
// The ablation: floor(rows * cols * dense_ratio) entries of the whole tensor, uniformly at random.
void random_mask(Rng *r, int rows, int cols, double dense_ratio, unsigned char *mask);

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
