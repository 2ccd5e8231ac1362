// The three stages of the harmful fine-tuning threat model (SPEC section 1), each a
// function from model folders + data to an adapter or model folder on disk. The CLI
// commands (align, finetune, antidote) and the pipeline runner call these.
#pragma once
#include "data/dataset.h"
#include "defense/vaccine.h"
#include "model/model.h"
#include "train/trainer.h"

// ---- stage 1: alignment ------------------------------------------------------------
typedef enum { ALIGN_SFT, ALIGN_VACCINE, ALIGN_TVACCINE, ALIGN_RANDOM_VACCINE } AlignMethod;
const char *align_method_name(AlignMethod m);
int align_method_parse(const char *s);  // "sft", "vaccine", "tvaccine", "random-vaccine"; -1 if unknown

typedef struct {
    AlignMethod method;
    float rho;            // Vaccine 2, T-Vaccine 3 (SPEC 4, 5); random vaccine: noise variance
    int tv_K, tv_J, tv_S; // T-Vaccine: probability refresh, resample interval, layers sampled (200, 20, 8)
    int tv_pool;          // T-Vaccine harmful pool size (200)
    TVaccineVariant tv_variant;  // TV_REFERENCE (default) or TV_LEAN (docs/methods.md)
    int rank, targets;    // LoRA: rank 8, all seven projections
    float alpha, dropout; // alpha 4, dropout 0.1
    MatType weights;      // base weights in f32 or bf16
    TrainOpts train;      // SPEC 3 defaults (T-Vaccine: batch 10, 20 epochs)
} AlignOpts;

void align_opts_default(AlignOpts *o, AlignMethod m);

typedef struct {
    TrainLog log;
    size_t peak_rss_bytes;   // process peak resident memory after the stage
    size_t workspace_bytes;  // activation + gradient buffers the stage planned
} StageReport;

// Trains an alignment adapter on align_set (harmful prompt + safe answer); T-Vaccine also
// needs harmful (harmful prompt + harmful answer) for its layer probabilities.
int stage_align(const char *base_dir, const Dataset *align_set, const Dataset *harmful, const AlignOpts *o,
                const char *out_dir, StageReport *r, Err *e);

// ---- stage 2: user fine-tuning (the attack) ----------------------------------------
typedef struct {
    int rank, targets;
    float alpha, dropout;   // alpha 1 (0.5 for GSM8K), dropout 0.1
    MatType weights;
    TrainOpts train;        // lr 1e-5 (Vaccine) / 1e-4 (Antidote), 20 epochs, batch 5
} FinetuneOpts;

void finetune_opts_default(FinetuneOpts *o);

// Merges the alignment adapter (if any) into the base, trains a fresh adapter on data.
int stage_finetune(const char *base_dir, const char *align_adapter, const Dataset *data, const FinetuneOpts *o,
                   const char *out_dir, StageReport *r, Err *e);

// ---- stage 3: Antidote (post-fine-tuning pruning) -----------------------------------
typedef enum { PRUNE_WANDA, PRUNE_RANDOM } PruneScore;
typedef struct {
    double dense_ratio;     // fraction pruned (0.1; per row: docs/methods.md); double as the reference's
    PruneScore score;
    int full_mode;          // 0: prune the fine-tuning adapter's A and B; 1: prune merged q,k,v
    int targets;            // full mode: projections to prune (q,k,v)
    int n_samples;          // re-alignment samples (2000); 0 or none given: magnitude-only pruning
    int max_len;
    uint64_t seed;          // random pruning
    MatType weights;
} AntidoteOpts;

void antidote_opts_default(AntidoteOpts *o);

// LoRA mode writes the pruned fine-tuning adapter to out_dir; full mode writes the
// pruned merged model (config, safetensors, tokenizer) to out_dir.
int stage_antidote(const char *base_dir, const char *align_adapter, const char *ft_adapter, const Dataset *realign,
                   const AntidoteOpts *o, const char *out_dir, Err *e);
