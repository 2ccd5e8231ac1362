// The settings model (docs/pipeline.md, "Settings"): one plain struct per stage holding every
// resolved setting of that stage, the defaults, and one table that names each setting once
// with its type and valid range. Every entry point fills these structs and calls the same
// check, so a value is refused (or accepted) the same way wherever it comes from:
//   - command-line flags (src/cli/settings_flags.c): --key, dashes or underscores;
//   - the pipeline's JSON config (pipeline/config.c): "key" in the stage's object;
//   - the demo: a PipelineConfig built by pipeline_demo_config (pipeline/demo.c), printable
//     with `antibody demo --print-config` and runnable with `antibody pipeline`.
// Order of resolution, the same for every front-end: stage defaults (*_opts_default) ->
// per-task rules (finetune_opts_default's task argument) -> preset -> the user's values ->
// *_check.
// Where additions go:
//   - per-task defaults (e.g. GSM8K fine-tuning alpha 0.5): finetune_opts_default (settings.c);
//   - presets (a paper's hyperparameters): pipeline/presets.c, applied after the defaults
//     and before the user's values, by every front-end;
//   - aliases (e.g. Hugging Face's learning_rate, issue 13): Setting.alias in the tables;
//   - fingerprints and --print-config: settings_to_json walks the same tables.
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "data/tasks.h"
#include "defense/vaccine.h"
#include "eval/evaluate.h"
#include "model/model.h"
#include "train/trainer.h"
#include "world/base_model.h"

// ---- the stages' settings ------------------------------------------------------------------

// The alignment methods; "none" (no alignment) is a method of the experiment, not of the
// align stage. Arrays over methods are indexed by AlignMethod and sized ALIGN_COUNT.
typedef enum { ALIGN_NONE, ALIGN_SFT, ALIGN_VACCINE, ALIGN_TVACCINE, ALIGN_RANDOM_VACCINE, ALIGN_BOOSTER, ALIGN_REPNOISE, ALIGN_TAR, ALIGN_COUNT } AlignMethod;
const char *align_method_name(AlignMethod m);  // "none", "sft", "vaccine", "tvaccine", "random-vaccine", "booster", "repnoise", "tar"
int align_method_parse(const char *s);         // AlignMethod, or -1 if unknown

// TAR's update (docs/methods.md, TAR): the reference's code as it runs trains on the
// alignment gradient alone (its tamper-resistance gradient never reaches the optimizer);
// TAR_INTENDED applies g_a + tar_weight * g_tr, the sum its code writes.
typedef enum { TAR_REFERENCE, TAR_INTENDED } TarVariant;

typedef struct {
    AlignMethod method;
    float rho;            // Vaccine 2, T-Vaccine 3 (docs/methods.md); random vaccine: noise variance
    int tv_K, tv_J, tv_S; // T-Vaccine: probability refresh, resample interval, layers sampled (200, 20, 8)
    int tv_pool;          // T-Vaccine harmful pool size (200)
    TVaccineVariant tv_variant;  // TV_REFERENCE (default) or TV_LEAN (docs/methods.md)
    float booster_lambda, booster_alpha;  // Booster: regulariser weight 5, harmful step 0.1
    int booster_batch, booster_pool;      // Booster: harmful rows per step 10, of the first 5000
    float repnoise_alpha, repnoise_beta;  // RepNoise: harmful-loss ascent weight 0.1, noise weight 0.001
    int repnoise_pool;                    // RepNoise: harmful rows drawn from (the first 5000)
    int repnoise_layer_ce, repnoise_bf16_labels;  // RepNoise: the reference's per-layer harmful losses and
                                                  // bf16-rounded harmful labels (1, 1; docs/methods.md)
    float tar_weight, tar_inner_lr;       // TAR: tamper-resistance weight 2, attack SGD lr 0.01
    int tar_inner_steps;                  // TAR: attack steps per micro-batch 1
    int tar_batch, tar_pool;              // TAR: harmful rows per attack step 10, of the first 2000
    TarVariant tar_variant;               // TAR: TAR_REFERENCE (default) or TAR_INTENDED
    int rank, targets;    // LoRA: rank 8, all seven projections
    float alpha, dropout; // alpha 4, dropout 0.1
    MatType weights;      // base weights in f32 or bf16
    TrainOpts train;      // lr 1e-3, wd 0.1, warmup 0.1, cosine, batch 5, 50 epochs (T-Vaccine: batch 10, 20 epochs;
                          // Booster: lr 5e-4, constant, no warmup, batch 10, 20 epochs;
                          // RepNoise: lr 5e-4, constant, no warmup, batch 5, 20 epochs; TAR: batch 10, 20 epochs)
} AlignOpts;

// Harmful rows (harmful prompt + harmful answer) the method draws from: the first tv_pool
// (T-Vaccine), booster_pool (Booster), repnoise_pool (RepNoise) or tar_pool (TAR); 0 for a
// method that reads none.
int align_harmful_pool(const AlignOpts *o);

// The fine-tuning stage's defenses (docs/methods.md, Lisa, LDIFS): the provider's training
// of the user's data; "none" is plain SFT.
typedef enum { FT_NONE, FT_LISA, FT_LDIFS, FT_COUNT } FtDefense;
const char *ft_defense_name(FtDefense d);  // "none", "lisa", "ldifs"
int ft_defense_parse(const char *s);       // FtDefense, or -1 if unknown

typedef struct {
    int rank, targets;
    float alpha, dropout;   // alpha 1 (0.5 for GSM8K), dropout 0.1
    MatType weights;
    TrainOpts train;        // lr 1e-5 (Vaccine) / 1e-4 (Antidote), 20 epochs (GSM8K 50), batch 5
    int n;                  // the mixture: n rows (1000), round(p * n) of them harmful (p 0.1),
    double p;               // shuffled with mix_seed (42); the pipeline's top-level "seed"
    uint64_t mix_seed;
    int single_lora;        // keep training the alignment adapter instead of merging it (0)
    int gsm8k_suffix;       // GSM8K questions end with GSM8K_QUESTION_SUFFIX (1; Antidote's scripts: 0)
    FtDefense defense;      // none (plain SFT), lisa or ldifs (pipeline: the method's "+lisa", "+ldifs")
    float lisa_rho;         // Lisa: proximal weight (1)
    int lisa_align_steps, lisa_finetune_steps;  // Lisa: steps of each state (100, 900)
    int lisa_guide;         // Lisa: alignment rows drawn from (the first 10000)
    float ldifs_rho;        // LDIFS: feature-distance weight (1e-4)
} FinetuneOpts;

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

typedef struct {
    int n_harmful, n_task, n_align;  // rows evaluated: HS prompts (500), FA rows (500), alignment rows (100)
    int hed_enabled;                 // "hed": compute HED (1)
    int threads;                     // OpenMP threads the command line sets (0: all)
    int gsm8k_suffix;                // GSM8K questions end with GSM8K_QUESTION_SUFFIX (1)
    EvalOpts opts;                   // generation length, alignment-loss / HED batching
} EvalSettings;

// Defaults. The fine-tuning defaults depend on the task (TASK_NONE: a generic task): GSM8K
// trains 50 epochs with LoRA alpha 0.5, as the Vaccine scripts (docs/methods.md, Harmful
// fine-tuning).
void align_opts_default(AlignOpts *o, AlignMethod m);
void finetune_opts_default(FinetuneOpts *o, TaskKind task);
void antidote_opts_default(AntidoteOpts *o);
void eval_settings_default(EvalSettings *s);

// ---- the tables ----------------------------------------------------------------------------

typedef enum {
    SET_INT, SET_U64, SET_I64, SET_FLOAT, SET_DOUBLE, SET_BOOL,
    SET_SCHEDULE,  // cosine | linear | constant
    SET_TARGETS,   // projection list "q,k,v,o,gate,up,down" or "all"
    SET_BF16,      // bool: MatType MAT_BF16 / MAT_F32
    SET_ALIGN,     // an alignment method name
    SET_PRUNE,     // wanda | random
    SET_TV_VARIANT,  // reference | lean (TVaccineVariant)
    SET_TAR_VARIANT, // reference | intended (TarVariant)
    SET_FT_DEFENSE,  // none | lisa | ldifs (FtDefense)
} SettingType;

enum {
    SET_MIN_OPEN = 1,   // value > min (else >= min)
    SET_MAX_OPEN = 2,   // value < max (else <= max)
    SET_NO_CONFIG = 4,  // a flag only: the pipeline config sets it another way (e.g. the method)
};

typedef struct {
    const char *key;       // config key; the flag is --key ('_' and '-' alike, case-insensitive)
    const char *alias[3];  // other accepted names, in flags and configs
    SettingType type;
    size_t offset;         // in the stage struct
    double min, max;       // valid range of numbers
    unsigned flags;
    const char *help;
} Setting;

typedef struct {
    const char *name;      // "align", "finetune", "antidote", "eval", "base"
    const Setting *items;
    int n;
} SettingTable;

extern const SettingTable ALIGN_SETTINGS, FINETUNE_SETTINGS, ANTIDOTE_SETTINGS, EVAL_SETTINGS;
extern const SettingTable BASE_SETTINGS;   // BaseModelOptions (world/base_model.h)
extern const SettingTable WORLD_SETTINGS;  // WorldOptions (world/world.h)

// The setting named name (key or alias; '-' = '_', case-insensitive), or NULL.
const Setting *settings_find(const SettingTable *t, const char *name);
// 1 when a[0..n) and b name the same setting or flag ('-' = '_', case-insensitive).
int setting_name_equal(const char *a, size_t n, const char *b);
// A key as a flag name: "batch_size" -> "batch-size", "tv_K" -> "tv-k".
void setting_flag_name(const char *key, char *buf, size_t cap);
// 1 when name names setting s.
int setting_is_named(const Setting *s, const char *name);
// Stores a value given as text (a flag's value; a bool flag gives "1") or as JSON (numbers,
// strings, booleans by type). Errors say what was expected ("expected a number"), without
// the setting's name: the front-end adds it.
int setting_set_text(const Setting *s, void *obj, const char *text, Err *e);
int setting_set_json(const Setting *s, void *obj, json_t *v, Err *e);
// The one validation of every setting in t: "<prefix><name>: must be > 0 (got 0)". With
// flag_names the name is written as a flag (batch-size), else as the key (batch_size).
int settings_check(const SettingTable *t, const void *obj, const char *prefix, int flag_names, Err *e);
// Every setting of t as a JSON object (key -> value), in table order: what --print-config
// prints and what a fingerprint hashes. Floats are written as their shortest decimal.
// config_keys_only leaves out the settings a config sets another way (SET_NO_CONFIG).
json_t *settings_to_json(const SettingTable *t, const void *obj, int config_keys_only);

// JSON text with two-space indentation, keys in order, and every real written as the
// shortest decimal that reads back to it (0.05, not 0.050000000000000003); malloc'd.
char *settings_json_text(const json_t *v);

// ---- checks of whole stages ------------------------------------------------------------------
// The table check plus the rules between settings. prefix and flag_names as settings_check.
int align_opts_check(const AlignOpts *o, const char *prefix, int flag_names, Err *e);
int finetune_opts_check(const FinetuneOpts *o, const char *prefix, int flag_names, Err *e);
int antidote_opts_check(const AntidoteOpts *o, const char *prefix, int flag_names, Err *e);
int eval_settings_check(const EvalSettings *s, const char *prefix, int flag_names, Err *e);
