// The dry run (`antibody pipeline CONFIG --dry-run`, docs/pipeline.md, "Dry run"): the runner
// walks its stages exactly as a run would, but records each one here instead of running it:
// its rows, optimizer steps, whether its fingerprint keeps it or why it would run, the
// answers its data loses to max_len, and an estimated time. Nothing on disk is created or
// changed: no folder, no lock, no fingerprint.
#pragma once
#include <jansson.h>
#include <stdint.h>

#include "io/model_dir.h"
#include "pipeline/settings.h"
#include "train/batch.h"

typedef enum { PLAN_ALIGN, PLAN_FINETUNE, PLAN_POST, PLAN_EVAL } PlanKind;

typedef struct {
    PlanKind kind;
    char *what;          // the stage as the run names it ("finetune sft p=0.1 seed=42")
    char *dir;           // its folder
    char fp[65];         // the fingerprint it would record
    int runs;            // 1: it would run; 0: kept (done already with the same fingerprint)
    char *why;           // why it runs or is kept ("not run yet", "settings.lr: 1e-05 -> 2e-05", ...)
    int rows;            // rows it trains on, prunes with (Antidote's samples) or evaluates (prompts + task rows)
    // training stages (PLAN_ALIGN, PLAN_FINETUNE); 0 for the others
    int epochs, batch_size, grad_accum, max_len;
    int64_t steps;       // optimizer steps: epochs x ceil(ceil(rows / batch) / grad_accum), capped by max_steps
    int64_t tokens;      // tokens of its rows after truncation, one epoch (0: not tokenised)
    double tokens_run;   // tokens it trains on: tokens x epochs, or the share of that max_steps leaves
    double passes;       // forward/backward passes per micro-batch relative to SFT (Vaccine: 2)
    double seconds;      // estimated time (< 0: not estimated)
    char *answers;       // the line on answers cut by max_len (train/batch.h), "" when every answer is whole
} PlanStage;

typedef struct {
    LoadedModel lm;      // the base model, opened once to tokenise and to time a step
    int have_model;
    char *model;         // what the model check found ("llama, 2 layers, dim 16, ...")
    int base_to_build;   // world mode: the base model does not exist yet and would be trained first
    char *data;          // rows per data set, as the run reports them
    PlanStage *stages;
    int n, cap;
    // the timing behind the estimates: one SFT forward + backward of timed_rows rows
    // (timed_tokens tokens) of the first training stage took timed_seconds
    int timed_rows, timed_tokens;
    double timed_seconds;
    char *problem;       // the first problem that would stop the run (e.g. no answer token left), or NULL
    // private: the first training stage's rows, tokenised, and its batch size (for the timing)
    EncodedSet timing_set_;
    int timing_batch_;
} PipelinePlan;

void plan_init(PipelinePlan *p);
void plan_free(PipelinePlan *p);

// Opens the base model (config.json, weights, tokenizer: the checks a stage makes when it loads it).
int plan_open_model(PipelinePlan *p, const char *dir, MatType weights, Err *e);

// Records a stage with the fingerprint fp (taken) it would record in dir, deciding from what
// dir holds whether it would run, as the runner does (a read-only fp_claim, pipeline/fingerprint.h).
// A training stage gives its rows and settings (data, t; passes: plan_passes), the others
// data NULL and their row count in rows.
int plan_add(PipelinePlan *p, PlanKind kind, const char *what, const char *dir, json_t *fp, const Dataset *data,
             const TrainOpts *t, double passes, int rows, Err *e);
// The fingerprint the stage planned in dir would record ("" when none is planned there): the
// upstream input of the stages after it.
void plan_stage_fp(const PipelinePlan *p, const char *dir, char out[65]);
// Forward/backward passes of a method's training step relative to SFT's: SFT 1, Vaccine and
// random Vaccine 2 (a gradient pass, then a pass with the perturbation), T-Vaccine 2 (an
// upper bound: its passes cover the sampled layers), Booster 3 (the alignment pass and two
// passes on a harmful batch, counted as the same size), RepNoise 2 (a harmful batch and the
// training batch; its per-layer LM heads are not counted), TAR 2 + tar_inner_steps (the
// attack's passes on harmful batches, the attacked pass and the outer one).
double plan_passes(const AlignOpts *o);
// Times one SFT step on a batch of the first training stage's rows and fills each training
// stage's estimate: seconds per token x its tokens over its steps x its passes.
int plan_estimate(PipelinePlan *p, Err *e);
// Estimated seconds of the stages that would run (training stages; Antidote and evaluation
// are not estimated).
double plan_total_seconds(const PipelinePlan *p);
