// Presets: each paper's hyperparameters as its authors' scripts set them (docs/methods.md,
// Presets, lists every value with the script it comes from). A preset is applied to a
// stage's settings after the stage defaults and the per-task rules and before the user's
// values (pipeline/settings.h, order of resolution), by every front-end: `--preset` on
// align, train, finetune, antidote, eval and pipeline, and "preset" in a pipeline config.
#pragma once
#include "pipeline/settings.h"

typedef enum { PRESET_NONE, PRESET_VACCINE, PRESET_TVACCINE, PRESET_ANTIDOTE, PRESET_COUNT } Preset;
#define PRESET_NAMES_HELP "vaccine, tvaccine or antidote"

const char *preset_name(Preset p);  // "none", "vaccine", "tvaccine", "antidote"
int preset_parse(const char *s);    // a Preset other than PRESET_NONE, or -1

// Each sets what the paper's scripts set and leaves every other setting as it is. o holds
// the stage's defaults (align: of o->method; finetune: of the task) before the call.
// Alignment methods a paper's scripts do not run keep their own defaults.
void preset_align(Preset p, AlignOpts *o);
void preset_finetune(Preset p, TaskKind task, FinetuneOpts *o);
void preset_antidote(Preset p, TaskKind task, AntidoteOpts *o);
void preset_eval(Preset p, TaskKind task, EvalSettings *s);
