// The experiment runner behind `antibody pipeline` (issue 4 item 6, docs/pipeline.md): for
// each method, alignment once; for each swept value, harmful mixing + fine-tuning, optional
// Antidote / random pruning, then HS and FA (plus alignment loss and HED). Every stage writes
// its outputs into its own folder and then a done.json marker; a restarted run skips marked
// stages, and an interrupted training stage resumes from its checkpoint folder.
#pragma once
#include <jansson.h>
#include "pipeline/config.h"
#include "pipeline/plan.h"

typedef struct {
    int stages_run;       // stages executed by this call
    int stages_skipped;   // stages found finished (done.json) and skipped
} PipelineStats;

// Runs the experiment of c (after checking the config and the model folder, before any folder
// is created); writes under c->output: results.md, results.csv, results_table.json,
// hs.svg, fa.svg, results.json (every run's summary and the stage counts). stats may be NULL.
int pipeline_run_stats(const PipelineConfig *c, PipelineStats *stats, Err *e);
int pipeline_run(const PipelineConfig *c, Err *e);
// World mode with base_training: trains the base model on the world into c->base_model
// unless that folder has one (base_model.json); pipeline_run calls it first. A folder made
// with other world or base_training settings (or by a version that did not record them)
// is refused; one made by another commit, thread count or kernel ISA is reused with a
// warning: those train a different model from the same settings (docs/reliability.md).
int pipeline_build_base(const PipelineConfig *c, Err *e);
// What decides the base model's weights besides the code: {"world": ..., "base_training": ...}.
json_t *pipeline_base_settings(const PipelineConfig *c);

// The dry run (docs/pipeline.md, "Dry run"): checks the config, the model folder (config.json,
// weights, tokenizer) and every data file (loaded and tokenised), then walks the stages the
// run would take and records each in p (plan.h) with its rows, steps, whether its fingerprint
// keeps it, and an estimated time from one timed training step. Creates and changes nothing
// on disk. p is initialised here; free it with plan_free, also after an error.
int pipeline_plan(const PipelineConfig *c, PipelinePlan *p, Err *e);
