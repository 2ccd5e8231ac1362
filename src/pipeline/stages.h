// The three stages of the harmful fine-tuning threat model (docs/methods.md, Stages), each a
// function from model folders + data to an adapter or model folder on disk. The CLI
// commands (align, finetune, antidote) and the pipeline runner call these.
#pragma once
#include "data/dataset.h"
#include "pipeline/settings.h"

// ---- stage 1: alignment ------------------------------------------------------------
typedef struct {
    TrainLog log;
    size_t peak_rss_bytes;   // process peak resident memory after the stage
    size_t workspace_bytes;  // activation + gradient buffers the stage planned
} StageReport;

// Merges the adapters merge[0..n_merge) into the base (none for the papers' setting), then
// trains an alignment adapter on align_set (harmful prompt + safe answer); T-Vaccine also
// needs harmful (harmful prompt + harmful answer) for its layer probabilities. Training
// checkpoints go to out_dir.checkpoint. `antibody align` and `antibody train` (= align
// --method sft) and the pipeline all run this.
int stage_align(const char *base_dir, const char *const *merge, int n_merge, const Dataset *align_set,
                const Dataset *harmful, const AlignOpts *o, const char *out_dir, StageReport *r, Err *e);

// ---- stage 2: user fine-tuning (the attack) ----------------------------------------
// Merges the alignment adapter (if any) into the base, trains a fresh adapter on data with
// o->defense (plain SFT, Lisa or LDIFS; Lisa also needs guide, harmful prompt + safe answer
// rows, NULL otherwise). With o->single_lora the alignment adapter (required) is not merged
// but trained on, as the reference's single-LoRA option: out_dir gets it with its own rank,
// alpha and targets.
int stage_finetune(const char *base_dir, const char *align_adapter, const Dataset *data, const Dataset *guide,
                   const FinetuneOpts *o, const char *out_dir, StageReport *r, Err *e);

// ---- stage 3: Antidote (post-fine-tuning pruning) -----------------------------------
// LoRA mode writes the pruned fine-tuning adapter to out_dir; full mode writes the
// pruned merged model (config, safetensors, tokenizer) to out_dir.
int stage_antidote(const char *base_dir, const char *align_adapter, const char *ft_adapter, const Dataset *realign,
                   const AntidoteOpts *o, const char *out_dir, Err *e);
