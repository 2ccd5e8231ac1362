// A whole experiment as data: the JSON config of `antibody pipeline` (docs/pipeline.md).
// The stages' settings are the structs of pipeline/settings.h (one table per stage, one
// check); pipeline_config_default fills the reference defaults, the loader overrides what
// the file states and refuses unknown keys by file and key, pipeline_config_to_json writes a
// config back (--print-config) that the loader reads to the same settings.
#pragma once
#include <signal.h>
#include <stdint.h>

#include "data/source.h"
#include "pipeline/presets.h"
#include "pipeline/settings.h"
#include "pipeline/stages.h"
#include "world/world.h"

#define PIPE_MAX_METHODS 16
#define PIPE_MAX_SWEEP 16
#define PIPE_MAX_SEEDS 16

typedef enum { SWEEP_P, SWEEP_N, SWEEP_LR, SWEEP_EPOCHS, SWEEP_COUNT } SweepKind;
const char *sweep_name(SweepKind k);

typedef enum { POST_NONE, POST_ANTIDOTE, POST_RANDOM_PRUNE, POST_COUNT } PostMethod;

typedef struct {
    char name[64];       // as written: "sft", "vaccine+antidote", "sft+lisa", "none", ...
    AlignMethod align;   // ALIGN_NONE: no alignment
    FtDefense ft;        // the fine-tuning stage's defense (FT_NONE: plain SFT)
    PostMethod post;
} MethodSpec;

typedef struct {
    char *base_model;    // model folder (config.json, safetensors, tokenizer.json)
    char *output;        // output folder
    // the generated demo world as the data source (data sources below are then ignored)
    int use_world;
    WorldOptions world;
    // world mode, the config's "base_training": train a base model on the world into
    // base_model when that folder has none (the demo's recipe; docs/world.md)
    int has_base_training;
    BaseModelOptions base_training;
    // real data (data/source.h), indexed by DataRole
    DataSource data[ROLE_COUNT];
    TaskKind task;       // the benign task (world mode: the world's split of that task)
    int exclude_overlap; // "drop_overlap": no training row's prompt occurs among the HS prompts
    // experiment
    MethodSpec methods[PIPE_MAX_METHODS];
    int n_methods;
    // the runs' seeds (docs/statistics.md): the whole experiment runs once per seed, and seed s
    // is every stage's seed in that run (adapter initialisation, data order, dropout, the
    // mixture's shuffle, T-Vaccine's layer draws, random Vaccine's noise, random pruning)
    uint64_t seeds[PIPE_MAX_SEEDS];
    int n_seeds;
    SweepKind sweep;
    double sweep_values[PIPE_MAX_SWEEP];
    int n_sweep;
    // the paper whose scripts' settings apply before the config's own values (PRESET_NONE: none)
    Preset preset;
    // stage settings; align[m] per AlignMethod (defaults of that method + the config's overrides)
    AlignOpts align[ALIGN_COUNT];
    FinetuneOpts finetune;   // n, p, mix_seed (the config's top-level "seed") and training
    AntidoteOpts antidote;
    // evaluation
    char *judge_spec;        // "judge": a judge spec (pipeline/judges.h)
    EvalSettings eval;
    const volatile sig_atomic_t *interrupt;  // set by the command line's signal handler: the training stage
                                             // checkpoints and stops, no further stage starts (not a setting)
} PipelineConfig;

// Reference defaults: methods sft and vaccine, sweep p over 0, 0.05, 0.1, 0.2 (n 1000),
// task sst2, judge "keyword", world not used.
void pipeline_config_default(PipelineConfig *c);
void pipeline_config_free(PipelineConfig *c);
// Sets a string field (copied; NULL clears). For building configs in code.
void pipeline_config_set(char **field, const char *value);
// Parses "ALIGN[+FT][+POST]" (ALIGN: none|sft|vaccine|tvaccine|random-vaccine|booster|repnoise|tar; FT, the
// fine-tuning defense: lisa|ldifs; POST: antidote|random-prune).
int method_spec_parse(const char *s, MethodSpec *m, Err *e);
// The fine-tuning run a method uses: "ALIGN" or "ALIGN+FT" (its folder under finetune/).
void method_finetune_key(AlignMethod a, FtDefense ft, char *buf, size_t cap);
// Sets the task and every stage's settings to the defaults of that task (finetune_opts_default's
// per-task rules) and of c->preset.
void pipeline_config_set_task(PipelineConfig *c, TaskKind task);
// Sets every stage's settings to its defaults for c->task, then preset p's values over them
// (pipeline/presets.h): what a config's "preset" (or `pipeline --preset`) does before its
// own keys apply.
void pipeline_config_set_preset(PipelineConfig *c, Preset p);
// The settings of the run of seed s: c with s as every stage's seed (out gets the same
// pointers as c; nothing to free).
void pipeline_config_for_seed(const PipelineConfig *c, uint64_t s, PipelineConfig *out);
// The fine-tuning settings of sweep value k (the sweep applied to c->finetune).
void pipeline_finetune_opts(const PipelineConfig *c, int k, FinetuneOpts *o);

// Loads path over the defaults. Errors name the file and the key ("cfg.json: finetune.lr:
// expected a number").
int pipeline_config_load(const char *path, PipelineConfig *c, Err *e);
// Same from a JSON text (name is used in messages).
int pipeline_config_parse(const char *text, const char *name, PipelineConfig *c, Err *e);
// Checks a config (the loader and the runner call it): every stage's settings through the
// settings tables, the sweep's values as the stage settings they become, the data sources.
int pipeline_config_check(const PipelineConfig *c, const char *name, Err *e);
// The config as JSON text (malloc'd), every setting resolved: what --print-config prints.
// pipeline_config_parse of it gives the same settings.
char *pipeline_config_to_json(const PipelineConfig *c);
