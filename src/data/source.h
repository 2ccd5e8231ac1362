// One data file as a stage reads it, and the one rule that turns it into rows: the
// loader (a task's raw format, AdvBench, or the JSON/JSONL row loader with a field map),
// then the harmful-row filter, then rows [offset, offset + n). The command-line flags
// (--data, --harmful, --realign, --task-data, ...) and the pipeline config's data.* entries
// both build DataSources and load them here, so every entry point selects rows the same way.
#pragma once
#include "data/dataset.h"
#include "data/tasks.h"

// What a file is for; decides the loader flags and the default filter.
typedef enum {
    ROLE_ALIGN,         // harmful prompt + safe answer (alignment, alignment loss, HED)
    ROLE_HARMFUL,       // harmful prompt + harmful answer, mixed into fine-tuning
    ROLE_REALIGN,       // harmful prompt + harmful answer (Antidote, T-Vaccine's pool)
    ROLE_TASK_TRAIN,    // benign task rows with answers
    ROLE_TASK_TEST,     // benign task rows scored for fine-tune accuracy
    ROLE_EVAL_HARMFUL,  // harmful prompts for the harmful score
    ROLE_COUNT
} DataRole;

// The config key of a role ("alignment", "harmful", "realign", "task_train", "task_test",
// "eval_harmful").
const char *data_role_name(DataRole r);

typedef enum { FILTER_ALL = -1, FILTER_SAFE = 0, FILTER_HARMFUL = 1 } RowFilter;

typedef struct {
    char *path;          // NULL = not given
    char *fields;        // FieldMap spec ("instruction=prompt,...") or NULL
    char *format;        // NULL or "auto" (data_load), a task name (task_from_name), or "advbench"
    RowFilter filter;    // rows kept by their harmful mark (rows of files without is_safe or
                         // flag count as harmful for the harmful roles)
    int offset, n;       // rows [offset, offset + n) after the filter; n < 0: all
} DataSource;

// The defaults of a role: no file, every row, except ROLE_EVAL_HARMFUL which keeps only
// harmful rows (the unsafe rows of BeaverTails 30k_test).
void data_source_init(DataSource *s, DataRole role);
void data_source_free(DataSource *s, DataRole role);
// Sets path (copied), keeping the other fields.
void data_source_set_path(DataSource *s, const char *path);
// Checks format and range values; errors name the field ("format: unknown ...").
int data_source_check(const DataSource *s, Err *e);

// Appends the selected rows of s to out (initialised). task: the task whose raw format the
// task roles are read in when s has neither format nor fields. Errors name the file; a
// source that leaves no row is an error.
int data_source_load(const DataSource *s, DataRole role, TaskKind task, Dataset *out, Err *e);
