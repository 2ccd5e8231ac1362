// Data sources: loader, harmful-row filter and row range, one rule for every entry point.
#include "data/source.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/load.h"
#include "data/mix.h"

static const char *const ROLE_NAMES[ROLE_COUNT] = {"alignment", "harmful", "realign", "task_train", "task_test",
                                                   "eval_harmful"};
// Loader flags per role: answers needed for training rows; rows of files that do not mark
// safety count as harmful where the role is harmful.
static const unsigned ROLE_FLAGS[ROLE_COUNT] = {DATA_NEED_OUTPUT, DATA_NEED_OUTPUT | DATA_ALL_HARMFUL,
                                                DATA_NEED_OUTPUT | DATA_ALL_HARMFUL, DATA_NEED_OUTPUT, 0,
                                                DATA_ALL_HARMFUL};

const char *data_role_name(DataRole r) { return ROLE_NAMES[r]; }

void data_source_init(DataSource *s, DataRole role) {
    *s = (DataSource){.filter = role == ROLE_EVAL_HARMFUL ? FILTER_HARMFUL : FILTER_ALL, .n = -1};
}

void data_source_free(DataSource *s, DataRole role) {
    free(s->path);
    free(s->fields);
    free(s->format);
    data_source_init(s, role);
}

void data_source_set_path(DataSource *s, const char *path) {
    free(s->path);
    s->path = path ? xstrdup(path) : NULL;
}

static int is_auto(const char *format) { return !format || !strcasecmp(format, "auto"); }

int data_source_check(const DataSource *s, Err *e) {
    if (!is_auto(s->format) && strcasecmp(s->format, "advbench") && task_from_name(s->format) == TASK_NONE)
        return err_set(e, "format: unknown format \"%s\" (auto, advbench, " TASK_NAMES_HELP ")", s->format);
    if (s->offset < 0) return err_set(e, "offset: must be >= 0 (got %d)", s->offset);
    if (s->n < -1) return err_set(e, "n: must be >= 0, or -1 for all rows (got %d)", s->n);
    return 0;
}

int data_source_load(const DataSource *s, DataRole role, TaskKind task, Dataset *out, Err *e) {
    if (!s->path) return err_set(e, "data.%s: no file given", ROLE_NAMES[role]);
    Err ce;
    if (data_source_check(s, &ce)) return err_set(e, "%s: data.%s.%.900s", s->path, ROLE_NAMES[role], ce.msg);
    int task_role = role == ROLE_TASK_TRAIN || role == ROLE_TASK_TEST;
    TaskKind as_task = TASK_NONE;
    if (!is_auto(s->format)) as_task = task_from_name(s->format);
    else if (task_role && !s->format && !s->fields) as_task = task;
    Dataset all;
    dataset_init(&all);
    int rc;
    if (as_task != TASK_NONE) rc = data_load_task(as_task, s->path, &all, e);
    else if (!is_auto(s->format)) rc = data_load_advbench(s->path, &all, e);
    else {
        FieldMap fm;
        Err fe;
        if (fieldmap_parse(s->fields, &fm, &fe)) {
            dataset_free(&all);
            return err_set(e, "data.%s.fields: %.900s", ROLE_NAMES[role], fe.msg);
        }
        rc = data_load(s->path, &fm, ROLE_FLAGS[role], &all, e);
        fieldmap_free(&fm);
    }
    if (rc) { dataset_free(&all); return -1; }
    int kept = 0, added = 0;
    for (int i = 0; i < all.n && (s->n < 0 || added < s->n); i++) {
        if (s->filter != FILTER_ALL && !all.rows[i].harmful != !s->filter) continue;
        if (kept++ < s->offset) continue;
        dataset_add_sample(out, &all.rows[i]);
        added++;
    }
    dataset_free(&all);
    if (!added) return err_set(e, "%s: data.%s: no rows left after filter/offset/n", s->path, ROLE_NAMES[role]);
    return 0;
}
