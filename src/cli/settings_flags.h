// A stage's settings as command-line flags: every setting of a table (pipeline/settings.h)
// is a flag named after its key (and aliases), parsed and checked by the same functions
// the pipeline config uses.
#pragma once
#include "cli/args.h"
#include "data/source.h"
#include "pipeline/presets.h"
#include "pipeline/settings.h"

// Declares a flag per setting of t (key and aliases); switches (bool) take no value. Adds
// t's settings with their values in defaults to the --help text.
void settings_flags_add(Args *a, const SettingTable *t, const void *defaults);
// Stores the flags given for t's settings into obj. Returns 0, or -1 with "--name: problem".
int settings_flags_apply(const Args *a, const SettingTable *t, void *obj, Err *e);
// What a stage's defaults depend on, read before its other settings: the command's --task
// (TASK_NONE when not given or not a flag of the command) and --preset (PRESET_NONE when not
// given). Returns 0, or -1 with a message in e for an unknown name.
int stage_flags(const Args *a, TaskKind *task, Preset *preset, Err *e);
// Prints the resolved settings of obj as JSON on stdout (--print-settings).
void settings_print(const SettingTable *t, const void *obj);

// Loads every file given to the repeated flag `name` as a source of role (--fields applies
// to each; task: the task the task roles are read as) and appends the rows to out
// (initialised). The pipeline's data.* sources load through the same data_source_load.
int data_flags_load(const Args *a, const char *name, DataRole role, TaskKind task, int n, Dataset *out, Err *e);
