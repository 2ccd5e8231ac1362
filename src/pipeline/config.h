// A whole experiment as data: the JSON config of `antibody pipeline` (docs/pipeline.md).
// Every field has the reference default; pipeline_config_default fills them, the loader
// overrides what the file states and refuses unknown keys by file and key.
#pragma once
#include <signal.h>
#include <stdint.h>

#include "eval/evaluate.h"
#include "eval/fa.h"
#include "pipeline/stages.h"
#include "world/world.h"

#define PIPE_MAX_METHODS 16
#define PIPE_MAX_SWEEP 16

// One data file: rows [offset, offset + n) after the optional harmful filter.
typedef struct {
    char *path;          // NULL = not given
    char *fields;        // FieldMap spec ("instruction=prompt,...") or NULL
    char *format;        // "auto" (data_load), "sst2", "agnews", "gsm8k", "advbench"
    int filter;          // -1 all rows, 1 only harmful rows (is_safe = false), 0 only safe rows
    int offset, n;       // n < 0: all
} DataSource;

typedef enum { SWEEP_P, SWEEP_N, SWEEP_LR, SWEEP_EPOCHS } SweepKind;
const char *sweep_name(SweepKind k);

typedef enum { POST_NONE, POST_ANTIDOTE, POST_RANDOM_PRUNE } PostMethod;

typedef struct {
    char name[64];       // as written: "sft", "vaccine+antidote", "none", ...
    int align;           // AlignMethod, or -1 for "none" (no alignment)
    PostMethod post;
} MethodSpec;

typedef struct {
    char *base_model;    // model folder (config.json, safetensors, tokenizer.json)
    char *output;        // output folder
    uint64_t seed;       // data mixing seed
    // the generated demo world as the data source (data sources below are then ignored)
    int use_world;
    WorldOptions world;
    char *world_task;    // "sst", "topic" or "math"
    // real data
    DataSource align_data, harmful_data, realign_data, task_train, task_test, eval_harmful;
    TaskKind task;
    int drop_overlap;    // drop training rows whose prompt occurs among the HS prompts (SPEC 10)
    // experiment
    MethodSpec methods[PIPE_MAX_METHODS];
    int n_methods;
    SweepKind sweep;
    double sweep_values[PIPE_MAX_SWEEP];
    int n_sweep;
    int ft_n;            // fine-tuning samples (1000)
    double ft_p;         // harmful ratio (0.1)
    // stage options; align[m] per AlignMethod (defaults of that method + the config's overrides)
    AlignOpts align[4];
    FinetuneOpts finetune;
    AntidoteOpts antidote;
    // evaluation
    char *judge;         // judge spec (eval/judges.h)
    int eval_n_harmful, eval_n_task, eval_n_align;  // 500, 500, 100
    int eval_hed;        // compute HED (1)
    EvalOpts eval;
    const volatile sig_atomic_t *interrupt;  // set by the command line's signal handler: the training stage
                                             // checkpoints and stops, no further stage starts (not a setting)
} PipelineConfig;

// Reference defaults: methods sft and vaccine, sweep p over 0, 0.05, 0.1, 0.2 (n 1000),
// judge "keyword", world not used.
void pipeline_config_default(PipelineConfig *c);
void pipeline_config_free(PipelineConfig *c);
// Sets a string field (copied; NULL clears). For building configs in code.
void pipeline_config_set(char **field, const char *value);
// Parses "ALIGN[+POST]" (ALIGN: none|sft|vaccine|tvaccine|random-vaccine; POST: antidote|random-prune).
int method_spec_parse(const char *s, MethodSpec *m, Err *e);

// Loads path over the defaults. Errors name the file and the key ("cfg.json: finetune.lr:
// expected a number").
int pipeline_config_load(const char *path, PipelineConfig *c, Err *e);
// Same from a JSON text (name is used in messages).
int pipeline_config_parse(const char *text, const char *name, PipelineConfig *c, Err *e);
// Checks a config built in code (the loader calls it too).
int pipeline_config_check(const PipelineConfig *c, const char *name, Err *e);
