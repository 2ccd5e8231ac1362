// The pipeline config (docs/pipeline.md): defaults, JSON loading with strict keys, checks,
// and the config written back as JSON. Stage settings go through the settings tables
// (pipeline/settings.h), the same as the command-line flags.
#include "pipeline/config.h"

#include <jansson.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic.h"
#include "util/suggest.h"

static const char *const SWEEP_NAMES[SWEEP_COUNT] = {"p", "n", "lr", "epochs"};
static const char *const POST_NAMES[POST_COUNT] = {"", "antidote", "random-prune"};
static const char *const FILTER_NAMES[] = {"safe", "harmful"};  // by RowFilter (FILTER_ALL: "all")

const char *sweep_name(SweepKind k) { return SWEEP_NAMES[k]; }

void pipeline_config_set(char **field, const char *value) {
    free(*field);
    *field = value ? xstrdup(value) : NULL;
}

void pipeline_config_set_task(PipelineConfig *c, TaskKind task) {
    c->task = task;
    pipeline_config_set_preset(c, c->preset);
}

void pipeline_config_set_preset(PipelineConfig *c, Preset p) {
    c->preset = p;
    for (int m = 0; m < ALIGN_COUNT; m++) {
        align_opts_default(&c->align[m], (AlignMethod)m);
        preset_align(p, &c->align[m]);
    }
    finetune_opts_default(&c->finetune, c->task);
    preset_finetune(p, c->task, &c->finetune);
    antidote_opts_default(&c->antidote);
    preset_antidote(p, c->task, &c->antidote);
    eval_settings_default(&c->eval);
    preset_eval(p, c->task, &c->eval);
}

void pipeline_config_default(PipelineConfig *c) {
    memset(c, 0, sizeof *c);
    world_default_options(&c->world);
    base_model_default_options(&c->base_training);
    for (int r = 0; r < ROLE_COUNT; r++) data_source_init(&c->data[r], (DataRole)r);
    Err e;
    method_spec_parse("sft", &c->methods[0], &e);
    method_spec_parse("vaccine", &c->methods[1], &e);
    c->n_methods = 2;
    c->sweep = SWEEP_P;
    const double ps[] = {0, 0.05, 0.1, 0.2};
    for (int i = 0; i < 4; i++) c->sweep_values[i] = ps[i];
    c->n_sweep = 4;
    c->seeds[0] = 42;
    c->n_seeds = 1;
    c->task = TASK_SST2;
    pipeline_config_set_preset(c, PRESET_NONE);
    c->judge_spec = xstrdup("keyword");
}

void pipeline_config_free(PipelineConfig *c) {
    free(c->base_model);
    free(c->output);
    free(c->judge_spec);
    for (int r = 0; r < ROLE_COUNT; r++) data_source_free(&c->data[r], (DataRole)r);
    memset(c, 0, sizeof *c);
}

int method_spec_parse(const char *s, MethodSpec *m, Err *e) {
    memset(m, 0, sizeof *m);
    if (strlen(s) >= sizeof m->name) return err_set(e, "method \"%s\": name too long", s);
    strcpy(m->name, s);
    char buf[64];
    strcpy(buf, s);
    m->post = POST_NONE;
    m->ft = FT_NONE;
    char *plus = strchr(buf, '+');
    if (plus) *plus = '\0';
    // the steps after the alignment: at most one fine-tuning defense, then at most one post step
    for (char *t = plus ? plus + 1 : NULL; t;) {
        char *next = strchr(t, '+');
        if (next) *next++ = '\0';
        int p = -1, f = ft_defense_parse(t);
        for (int k = 1; k < POST_COUNT; k++)
            if (!strcmp(t, POST_NAMES[k])) p = k;
        if (f > FT_NONE && m->ft == FT_NONE && m->post == POST_NONE) {
            m->ft = (FtDefense)f;
        } else if (p > 0 && m->post == POST_NONE) {
            m->post = (PostMethod)p;
        } else if (p > 0 || f > FT_NONE) {
            return err_set(e, "method \"%s\": misplaced step \"%s\" (ALIGN, then at most one fine-tuning defense: "
                           "lisa or ldifs, then at most one of antidote, random-prune)", s, t);
        } else {
            Suggest sg;
            suggest_init(&sg, t);
            for (int k = 1; k < POST_COUNT; k++) suggest_add(&sg, POST_NAMES[k]);
            for (int k = FT_NONE + 1; k < FT_COUNT; k++) suggest_add(&sg, ft_defense_name((FtDefense)k));
            char hint[96];
            return err_set(e, "method \"%s\": unknown post-fine-tuning step \"%s\" (%santidote, random-prune; or a "
                           "fine-tuning defense before it: lisa, ldifs)", s, t, suggest_hint(&sg, hint, sizeof hint));
        }
        t = next;
    }
    int a = align_method_parse(buf);
    if (a < 0) {
        Suggest sg;
        suggest_init(&sg, buf);
        for (int k = 0; k < ALIGN_COUNT; k++) suggest_add(&sg, align_method_name((AlignMethod)k));
        char hint[96];
        return err_set(e, "method \"%s\": unknown alignment \"%s\" (%snone, sft, vaccine, tvaccine, random-vaccine, booster, repnoise, tar)", s, buf,
                       suggest_hint(&sg, hint, sizeof hint));
    }
    m->align = (AlignMethod)a;
    return 0;
}

void method_finetune_key(AlignMethod a, FtDefense ft, char *buf, size_t cap) {
    if (ft == FT_NONE) snprintf(buf, cap, "%s", align_method_name(a));
    else snprintf(buf, cap, "%s+%s", align_method_name(a), ft_defense_name(ft));
}

void pipeline_config_for_seed(const PipelineConfig *c, uint64_t s, PipelineConfig *out) {
    *out = *c;
    for (int m = 0; m < ALIGN_COUNT; m++) out->align[m].train.seed = s;
    out->finetune.train.seed = s;
    out->finetune.mix_seed = s;
    out->antidote.seed = s;
    out->seeds[0] = s;
    out->n_seeds = 1;
}

void pipeline_finetune_opts(const PipelineConfig *c, int k, FinetuneOpts *o) {
    *o = c->finetune;
    double v = c->sweep_values[k];
    switch (c->sweep) {
    case SWEEP_P: o->p = v; break;
    case SWEEP_N: o->n = (int)v; break;
    case SWEEP_LR: o->train.lr = (float)v; break;
    case SWEEP_EPOCHS: o->train.epochs = (int)v; break;
    case SWEEP_COUNT: break;
    }
}

// ---- JSON reading: every error names the file and the dotted key ---------------------------

typedef struct {
    const char *file;
    Err *e;
    json_t *root;  // the whole config (the seeds' two spellings are read together)
} Ctx;

static int bad(Ctx *x, const char *where, const char *key, const char *what) {
    return err_set(x->e, "%s: %s%s%s: %s", x->file, where, *where ? "." : "", key, what);
}

static int get_obj(Ctx *x, const char *where, const char *key, json_t *v) {
    return json_is_object(v) ? 0 : bad(x, where, key, "expected an object");
}

static int get_str(Ctx *x, const char *where, const char *key, json_t *v, const char **out) {
    if (!json_is_string(v)) return bad(x, where, key, "expected a string");
    *out = json_string_value(v);
    return 0;
}

static int get_bool(Ctx *x, const char *where, const char *key, json_t *v, int *out) {
    if (!json_is_boolean(v)) return bad(x, where, key, "expected true or false");
    *out = json_is_true(v);
    return 0;
}

// "unknown key", with the known key of that object closest to k when one is close (a typo):
// the settings of t (keys and aliases) and names (NULL-terminated); either may be NULL.
static int unknown(Ctx *x, const char *w, const char *k, const SettingTable *t, const char *const *names) {
    Suggest sg;
    suggest_init(&sg, k);
    for (int i = 0; t && i < t->n; i++) {
        if (t->items[i].flags & SET_NO_CONFIG) continue;
        suggest_add(&sg, t->items[i].key);
        for (int a = 0; a < 3; a++) suggest_add(&sg, t->items[i].alias[a]);
    }
    for (; names && *names; names++) suggest_add(&sg, *names);
    if (!suggest_result(&sg)) return bad(x, w, k, "unknown key");
    char what[128];
    snprintf(what, sizeof what, "unknown key (did you mean \"%.80s\"?)", suggest_result(&sg));
    return bad(x, w, k, what);
}

static const char *const SOURCE_KEYS[] = {"path", "fields", "format", "filter", "offset", "n", NULL};
static const char *const SWEEP_KEYS[] = {"name", "values", NULL};
static const char *const TASK_KEY[] = {"task", NULL};

// One key of a settings table: 1 handled, 0 not a key of t, -1 error.
static int table_key(Ctx *x, const char *where, const SettingTable *t, void *obj, const char *k, json_t *v) {
    const Setting *s = settings_find(t, k);
    if (!s) return 0;
    if (s->flags & SET_NO_CONFIG)
        return bad(x, where, k, s->type == SET_U64 ? "set by the run's seed: use the top-level \"seeds\" (docs/pipeline.md)"
                                                  : "set another way in a pipeline config (docs/pipeline.md)");
    Err se;
    if (setting_set_json(s, obj, v, &se)) return bad(x, where, k, se.msg);
    return 1;
}

// Refuses two keys of obj that name one setting of t ("lr" and "learning_rate").
static int named_twice(Ctx *x, const char *where, const SettingTable *t, json_t *obj) {
    const char *k, *k2;
    json_t *v, *v2;
    json_object_foreach(obj, k, v) {
        const Setting *s = settings_find(t, k);
        if (!s) continue;
        json_object_foreach(obj, k2, v2) {
            if (k2 == k) break;
            if (settings_find(t, k2) == s) {
                char what[160];
                snprintf(what, sizeof what, "sets the same setting as \"%.60s\": give one of them", k2);
                return bad(x, where, k, what);
            }
        }
    }
    return 0;
}

// Every key of obj through table t (where names the object in messages).
static int table_object(Ctx *x, const char *where, const SettingTable *t, void *dst, json_t *obj) {
    const char *k;
    json_t *v;
    if (named_twice(x, where, t, obj)) return -1;
    json_object_foreach(obj, k, v) {
        int r = table_key(x, where, t, dst, k, v);
        if (r < 0) return -1;
        if (r == 0) return unknown(x, where, k, t, NULL);
    }
    return 0;
}

// ---- the sections: one reader per top-level key (v: the key's value) ------------------------

static int parse_align(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    if (get_obj(x, "", key, obj)) return -1;
    const char *k;
    json_t *v;
    // Shared keys first, then the per-method objects, whatever their order in the file.
    if (named_twice(x, "align", &ALIGN_SETTINGS, obj)) return -1;
    json_object_foreach(obj, k, v) {
        if (align_method_parse(k) > ALIGN_NONE) continue;
        for (int m = ALIGN_NONE + 1; m < ALIGN_COUNT; m++) {
            int r = table_key(x, "align", &ALIGN_SETTINGS, &c->align[m], k, v);
            if (r < 0) return -1;
            if (r == 0) {
                const char *names[ALIGN_COUNT] = {NULL};  // the per-method objects' names
                for (int a = ALIGN_NONE + 1; a < ALIGN_COUNT; a++) names[a - 1] = align_method_name((AlignMethod)a);
                return unknown(x, "align", k, &ALIGN_SETTINGS, names);
            }
        }
    }
    json_object_foreach(obj, k, v) {
        int m = align_method_parse(k);
        if (m <= ALIGN_NONE) continue;
        char where[64];
        snprintf(where, sizeof where, "align.%s", k);
        if (get_obj(x, "align", k, v) || table_object(x, where, &ALIGN_SETTINGS, &c->align[m], v)) return -1;
    }
    return 0;
}

static int parse_source(Ctx *x, DataRole role, json_t *v, DataSource *s) {
    const char *key = data_role_name(role);
    char where[64];
    snprintf(where, sizeof where, "data.%s", key);
    data_source_free(s, role);
    if (json_is_string(v)) { data_source_set_path(s, json_string_value(v)); return 0; }
    if (!json_is_object(v)) return bad(x, "data", key, "expected a file path or an object {path, fields, format, filter, offset, n}");
    const char *k;
    json_t *f;
    json_object_foreach(v, k, f) {
        const char *str = "";
        if (!strcmp(k, "path") || !strcmp(k, "fields") || !strcmp(k, "format")) {
            if (get_str(x, where, k, f, &str)) return -1;
            pipeline_config_set(!strcmp(k, "path") ? &s->path : !strcmp(k, "fields") ? &s->fields : &s->format, str);
        } else if (!strcmp(k, "filter")) {
            if (get_str(x, where, k, f, &str)) return -1;
            if (!strcmp(str, "harmful")) s->filter = FILTER_HARMFUL;
            else if (!strcmp(str, "safe")) s->filter = FILTER_SAFE;
            else if (!strcmp(str, "all")) s->filter = FILTER_ALL;
            else return bad(x, where, k, "expected \"harmful\", \"safe\" or \"all\"");
        } else if (!strcmp(k, "offset") || !strcmp(k, "n")) {
            if (!json_is_integer(f)) return bad(x, where, k, "expected an integer");
            json_int_t i = json_integer_value(f);
            if (i < -1 || i > 1000000000) return bad(x, where, k, "out of range");
            *(!strcmp(k, "offset") ? &s->offset : &s->n) = (int)i;
        } else {
            return unknown(x, where, k, NULL, SOURCE_KEYS);
        }
    }
    if (!s->path) return bad(x, where, "path", "missing");
    Err se;
    if (data_source_check(s, &se)) return err_set(x->e, "%s: %s.%s", x->file, where, se.msg);
    return 0;
}

static int parse_task(Ctx *x, const char *where, json_t *v, TaskKind *out) {
    const char *str = "";
    if (get_str(x, where, "task", v, &str)) return -1;
    Err te;
    if ((*out = task_from_name(str)) == TASK_NONE && task_unknown(str, &te)) return bad(x, where, "task", te.msg);
    return 0;
}

static int parse_data(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    if (get_obj(x, "", key, obj)) return -1;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int role = -1;
        for (int r = 0; r < ROLE_COUNT; r++)
            if (!strcmp(k, data_role_name((DataRole)r))) role = r;
        if (role >= 0) {
            if (parse_source(x, (DataRole)role, v, &c->data[role])) return -1;
        } else if (!strcmp(k, "task")) {
            if (parse_task(x, "data", v, &c->task)) return -1;
        } else if (!strcmp(k, "drop_overlap")) {
            if (get_bool(x, "data", k, v, &c->exclude_overlap)) return -1;
        } else {
            const char *names[ROLE_COUNT + 3] = {"task", "drop_overlap"};
            for (int r = 0; r < ROLE_COUNT; r++) names[2 + r] = data_role_name((DataRole)r);
            return unknown(x, "data", k, NULL, names);
        }
    }
    return 0;
}

static int parse_world(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    if (get_obj(x, "", key, obj)) return -1;
    c->use_world = 1;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (!strcmp(k, "task")) {
            if (parse_task(x, "world", v, &c->task)) return -1;
            continue;
        }
        int r = table_key(x, "world", &WORLD_SETTINGS, &c->world, k, v);
        if (r < 0) return -1;
        if (r == 0) return unknown(x, "world", k, &WORLD_SETTINGS, TASK_KEY);
    }
    return 0;
}

static int parse_base_training(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    c->has_base_training = 1;
    return get_obj(x, "", key, obj) || table_object(x, key, &BASE_SETTINGS, &c->base_training, obj) ? -1 : 0;
}

static int parse_finetune(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    return get_obj(x, "", key, obj) || table_object(x, key, &FINETUNE_SETTINGS, &c->finetune, obj) ? -1 : 0;
}

static int parse_antidote(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    return get_obj(x, "", key, obj) || table_object(x, key, &ANTIDOTE_SETTINGS, &c->antidote, obj) ? -1 : 0;
}

static int parse_eval(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    return get_obj(x, "", key, obj) || table_object(x, key, &EVAL_SETTINGS, &c->eval, obj) ? -1 : 0;
}

static int parse_sweep(Ctx *x, const char *key, json_t *obj, PipelineConfig *c) {
    if (get_obj(x, "", key, obj)) return -1;
    json_t *name = json_object_get(obj, "name"), *values = json_object_get(obj, "values");
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) if (strcmp(k, "name") && strcmp(k, "values")) return unknown(x, "sweep", k, NULL, SWEEP_KEYS);
    if (!name) return bad(x, "sweep", "name", "missing (p, n, lr or epochs)");
    const char *s = "";
    if (get_str(x, "sweep", "name", name, &s)) return -1;
    int kind = -1;
    for (int i = 0; i < SWEEP_COUNT; i++)
        if (!strcmp(s, SWEEP_NAMES[i])) kind = i;
    if (kind < 0) return bad(x, "sweep", "name", "expected p, n, lr or epochs");
    c->sweep = (SweepKind)kind;
    if (!json_is_array(values) || json_array_size(values) == 0 || json_array_size(values) > PIPE_MAX_SWEEP)
        return bad(x, "sweep", "values", "expected an array of 1 to 16 numbers");
    c->n_sweep = (int)json_array_size(values);
    for (int i = 0; i < c->n_sweep; i++) {
        json_t *e = json_array_get(values, i);
        if (!json_is_number(e)) return bad(x, "sweep", "values", "expected numbers");
        c->sweep_values[i] = json_number_value(e);
    }
    return 0;
}

// "seeds": [s, ...] (1 to 16 distinct integers >= 0), or "seed": s for one seed.
// Both spellings are read together, from the root, whichever key brought us here.
static int parse_seeds(Ctx *x, const char *key, json_t *v, PipelineConfig *c) {
    json_t *list = json_object_get(x->root, "seeds"), *one = json_object_get(x->root, "seed");
    if (list && one) return bad(x, "", "seed", "give \"seeds\" or \"seed\", not both");
    if (one) list = json_pack("[O]", one);
    else json_incref(list);
    int rc = 0;
    if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > PIPE_MAX_SEEDS)
        rc = bad(x, "", one ? "seed" : "seeds", "expected an array of 1 to 16 integers >= 0");
    for (size_t i = 0; !rc && i < json_array_size(list); i++) {
        json_t *s = json_array_get(list, i);
        if (!json_is_integer(s) || json_integer_value(s) < 0) rc = bad(x, "", one ? "seed" : "seeds", "expected integers >= 0");
        else c->seeds[i] = (uint64_t)json_integer_value(s);
    }
    if (!rc) c->n_seeds = (int)json_array_size(list);
    json_decref(list);
    return rc;
}

static int parse_methods(Ctx *x, const char *key, json_t *v, PipelineConfig *c) {
    if (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > PIPE_MAX_METHODS)
        return bad(x, "", key, "expected an array of 1 to 16 method names");
    c->n_methods = (int)json_array_size(v);
    for (int m = 0; m < c->n_methods; m++) {
        json_t *it = json_array_get(v, m);
        if (!json_is_string(it)) return bad(x, "", key, "expected method names (strings)");
        Err me;
        if (method_spec_parse(json_string_value(it), &c->methods[m], &me))
            return err_set(x->e, "%s: methods: %.900s", x->file, me.msg);
    }
    return 0;
}

// base_model, output, judge: strings.
static int parse_string(Ctx *x, const char *key, json_t *v, PipelineConfig *c) {
    const char *s = "";
    if (get_str(x, "", key, v, &s)) return -1;
    pipeline_config_set(!strcmp(key, "base_model") ? &c->base_model : !strcmp(key, "output") ? &c->output : &c->judge_spec, s);
    return 0;
}

// "preset" is read before the other keys (find_preset).
static int parse_preset_read(Ctx *x, const char *key, json_t *v, PipelineConfig *c) { return 0; }

static const struct {
    const char *key;
    int (*parse)(Ctx *x, const char *key, json_t *v, PipelineConfig *c);
} SECTIONS[] = {
    {"base_model", parse_string}, {"output", parse_string},     {"judge", parse_string},
    {"seeds", parse_seeds},       {"seed", parse_seeds},        {"world", parse_world},
    {"base_training", parse_base_training},                     {"data", parse_data},
    {"methods", parse_methods},   {"sweep", parse_sweep},       {"align", parse_align},
    {"finetune", parse_finetune}, {"antidote", parse_antidote}, {"eval", parse_eval},
    {"preset", parse_preset_read},
};

// An unknown top-level key; a stage's setting written at the top (as flat configs such as
// axolotl's do: "learning_rate": ..., "lora_r": ...) is told which object it belongs in.
static int top_level_unknown(Ctx *x, const char *k) {
    const SettingTable *tables[] = {&FINETUNE_SETTINGS, &ALIGN_SETTINGS, &ANTIDOTE_SETTINGS, &EVAL_SETTINGS};
    for (int i = 0; i < 4; i++) {
        const Setting *s = settings_find(tables[i], k);
        if (!s || (s->flags & SET_NO_CONFIG)) continue;
        char what[200];
        snprintf(what, sizeof what, "unknown key: a stage's setting goes in that stage's object, e.g. "
                 "\"%s\": {\"%.60s\": ...} (docs/pipeline.md)", tables[i]->name, k);
        return bad(x, "", k, what);
    }
    const char *names[sizeof SECTIONS / sizeof *SECTIONS + 1] = {NULL};
    for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++) names[i] = SECTIONS[i].key;
    return unknown(x, "", k, NULL, names);
}

// One top-level key: its section's reader; "_..." and "comment" are comments.
static int parse_key(Ctx *x, const char *k, json_t *v, PipelineConfig *c) {
    for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++)
        if (!strcmp(k, SECTIONS[i].key)) return SECTIONS[i].parse(x, k, v, c);
    if (k[0] == '_' || !strcmp(k, "comment")) return 0;
    return top_level_unknown(x, k);
}

// The task decides stage defaults (the per-task rules), so it is read before everything else.
static int find_task(Ctx *x, json_t *root, PipelineConfig *c) {
    json_t *world = json_object_get(root, "world"), *data = json_object_get(root, "data");
    json_t *wt = json_is_object(world) ? json_object_get(world, "task") : NULL;
    json_t *dt = json_is_object(data) ? json_object_get(data, "task") : NULL;
    TaskKind task = c->task;
    if (wt && parse_task(x, "world", wt, &task)) return -1;
    if (!wt && dt && parse_task(x, "data", dt, &task)) return -1;
    if (task != c->task || wt || dt) pipeline_config_set_task(c, task);
    return 0;
}

// The preset sets stage defaults too (after the task's rules), so it is read next. A preset
// already set (`pipeline --preset`) and another one in the file are refused.
static int find_preset(Ctx *x, json_t *root, PipelineConfig *c) {
    json_t *v = json_object_get(root, "preset");
    Preset p = c->preset;
    if (v) {
        const char *s = "";
        if (get_str(x, "", "preset", v, &s)) return -1;
        int q = preset_parse(s);
        if (q < 0) return bad(x, "", "preset", "unknown preset (" PRESET_NAMES_HELP ")");
        if (p != PRESET_NONE && p != (Preset)q) return bad(x, "", "preset", "differs from --preset");
        p = (Preset)q;
    }
    if (p != PRESET_NONE) pipeline_config_set_preset(c, p);
    return 0;
}

int pipeline_config_parse(const char *text, const char *name, PipelineConfig *c, Err *e) {
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    if (!root) return err_set(e, "%s:%d:%d: %s", name, je.line, je.column, je.text);
    if (!json_is_object(root)) { json_decref(root); return err_set(e, "%s: expected a JSON object", name); }
    Ctx x = {name, e, root};
    int rc = find_task(&x, root, c);
    if (!rc) rc = find_preset(&x, root, c);
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (rc) break;
        rc = parse_key(&x, k, v, c);
    }
    json_decref(root);
    if (rc) return -1;
    return pipeline_config_check(c, name, e);
}

int pipeline_config_load(const char *path, PipelineConfig *c, Err *e) {
    char *text = read_file(path, NULL, e);
    if (!text) return -1;
    size_t L = strlen(path), k = strspn(text, " \t\r\n");
    if ((L > 5 && !strcmp(path + L - 5, ".yaml")) || (L > 4 && !strcmp(path + L - 4, ".yml")) ||
        (text[k] && text[k] != '{')) {
        free(text);
        return err_set(e, "%s: configs are JSON (a {...} object, docs/pipeline.md), not YAML or other text", path);
    }
    int rc = pipeline_config_parse(text, path, c, e);
    free(text);
    return rc;
}

// ---- checks -------------------------------------------------------------------------------

// The experiment's lists: required folders, methods, sweep values and seeds (no duplicates).
static int check_lists(const PipelineConfig *c, const char *name, Err *e) {
    if (!c->base_model) return err_set(e, "%s: base_model: missing (the model folder to align)", name);
    if (!c->output) return err_set(e, "%s: output: missing (the results folder)", name);
    if (!c->n_methods) return err_set(e, "%s: methods: empty", name);
    if (!c->n_sweep) return err_set(e, "%s: sweep.values: empty", name);
    if (c->n_seeds < 1 || c->n_seeds > PIPE_MAX_SEEDS) return err_set(e, "%s: seeds: expected 1 to 16 seeds", name);
    for (int i = 0; i < c->n_seeds; i++)
        for (int j = 0; j < i; j++)
            if (c->seeds[i] == c->seeds[j])
                return err_set(e, "%s: seeds: %llu listed twice", name, (unsigned long long)c->seeds[i]);
    for (int i = 0; i < c->n_methods; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(c->methods[i].name, c->methods[j].name))
                return err_set(e, "%s: methods: \"%s\" listed twice", name, c->methods[i].name);
    return 0;
}

// Stage settings: the same checks as the command-line flags, and every swept value as the
// fine-tuning setting it becomes.
static int check_stages(const PipelineConfig *c, const char *name, Err *e) {
    char prefix[300];
    for (int m = ALIGN_NONE + 1; m < ALIGN_COUNT; m++) {
        snprintf(prefix, sizeof prefix, "%.200s: align.%s.", name, align_method_name((AlignMethod)m));
        if (align_opts_check(&c->align[m], prefix, 0, e)) return -1;
    }
    snprintf(prefix, sizeof prefix, "%.200s: finetune.", name);
    if (finetune_opts_check(&c->finetune, prefix, 0, e)) return -1;
    for (int i = 0; i < c->n_methods; i++) {  // each method's fine-tuning, with its defense
        FinetuneOpts o = c->finetune;
        o.defense = c->methods[i].ft;
        if (c->methods[i].align == ALIGN_NONE) o.single_lora = 0;  // as the runner does
        snprintf(prefix, sizeof prefix, "%.200s: methods: %s: finetune.", name, c->methods[i].name);
        if (finetune_opts_check(&o, prefix, 0, e)) return -1;
    }
    for (int k = 0; k < c->n_sweep; k++) {
        // the value's type first: pipeline_finetune_opts converts it to the setting's int or float
        double v = c->sweep_values[k];
        int whole = c->sweep == SWEEP_N || c->sweep == SWEEP_EPOCHS;
        if (whole && v != floor(v))
            return err_set(e, "%s: sweep.values: %s = %g is not a whole number", name, sweep_name(c->sweep), v);
        if (!(fabs(v) <= (whole ? (double)INT_MAX : (double)FLT_MAX)))
            return err_set(e, "%s: sweep.values: %s = %g is out of range", name, sweep_name(c->sweep), v);
        FinetuneOpts o;
        pipeline_finetune_opts(c, k, &o);
        snprintf(prefix, sizeof prefix, "%.200s: sweep.values: %s = %g: finetune.", name, sweep_name(c->sweep), v);
        if (finetune_opts_check(&o, prefix, 0, e)) return -1;
    }
    snprintf(prefix, sizeof prefix, "%.200s: antidote.", name);
    if (antidote_opts_check(&c->antidote, prefix, 0, e)) return -1;
    snprintf(prefix, sizeof prefix, "%.200s: eval.", name);
    return eval_settings_check(&c->eval, prefix, 0, e);
}

// World mode: the world's task, its sizes and the base model's training.
static int check_world(const PipelineConfig *c, const char *name, Err *e) {
    char prefix[300];
    if (c->task == TASK_ALPACA) return err_set(e, "%s: world.task: the world has no Alpaca rows (sst2, agnews, gsm8k)", name);
    snprintf(prefix, sizeof prefix, "%.200s: world.", name);
    if (settings_check(&WORLD_SETTINGS, &c->world, prefix, 0, e)) return -1;
    snprintf(prefix, sizeof prefix, "%.200s: base_training.", name);
    if (c->has_base_training && settings_check(&BASE_SETTINGS, &c->base_training, prefix, 0, e)) return -1;
    return 0;
}

// Real data: every source given is valid, and the methods' stages have the files they read.
static int check_data(const PipelineConfig *c, const char *name, Err *e) {
    Err se;
    if (c->has_base_training) return err_set(e, "%s: base_training: only with \"world\" (the base model is trained on the world)", name);
    for (int r = 0; r < ROLE_COUNT; r++)
        if (c->data[r].path && data_source_check(&c->data[r], &se))
            return err_set(e, "%s: data.%s.%.900s", name, data_role_name((DataRole)r), se.msg);
    int need_align = 0, need_realign = 0;
    for (int i = 0; i < c->n_methods; i++) {
        need_align |= c->methods[i].align != ALIGN_NONE || c->methods[i].ft == FT_LISA;
        need_realign |= c->methods[i].post != POST_NONE || align_harmful_pool(&c->align[c->methods[i].align]);
    }
    if (need_align && !c->data[ROLE_ALIGN].path) return err_set(e, "%s: data.alignment: missing (harmful prompt + safe answer rows)", name);
    if (need_realign && !c->data[ROLE_REALIGN].path)
        return err_set(e, "%s: data.realign: missing (harmful prompt + harmful answer rows for Antidote / T-Vaccine / Booster / RepNoise / TAR)", name);
    if (!c->data[ROLE_HARMFUL].path) return err_set(e, "%s: data.harmful: missing (harmful fine-tuning rows)", name);
    if (!c->data[ROLE_TASK_TRAIN].path) return err_set(e, "%s: data.task_train: missing (benign task rows)", name);
    if (!c->data[ROLE_TASK_TEST].path && c->task != TASK_ALPACA)  // Alpaca: no FA (docs/methods.md)
        return err_set(e, "%s: data.task_test: missing (task rows for fine-tune accuracy)", name);
    if (!c->data[ROLE_EVAL_HARMFUL].path) return err_set(e, "%s: data.eval_harmful: missing (harmful evaluation prompts)", name);
    return 0;
}

int pipeline_config_check(const PipelineConfig *c, const char *name, Err *e) {
    if (check_lists(c, name, e) || check_stages(c, name, e)) return -1;
    return c->use_world ? check_world(c, name, e) : check_data(c, name, e);
}

// ---- writing ------------------------------------------------------------------------------

static json_t *source_json(const DataSource *s) {
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(s->path));
    if (s->fields) json_object_set_new(o, "fields", json_string(s->fields));
    if (s->format) json_object_set_new(o, "format", json_string(s->format));
    json_object_set_new(o, "filter", json_string(s->filter == FILTER_ALL ? "all" : FILTER_NAMES[s->filter]));
    json_object_set_new(o, "offset", json_integer(s->offset));
    json_object_set_new(o, "n", json_integer(s->n));
    return o;
}

char *pipeline_config_to_json(const PipelineConfig *c) {
    json_t *o = json_object();
    if (c->base_model) json_object_set_new(o, "base_model", json_string(c->base_model));
    if (c->output) json_object_set_new(o, "output", json_string(c->output));
    if (c->preset != PRESET_NONE) json_object_set_new(o, "preset", json_string(preset_name(c->preset)));
    if (c->use_world) {
        json_t *w = settings_to_json(&WORLD_SETTINGS, &c->world, 1);
        json_object_set_new(w, "task", json_string(task_name(c->task)));
        json_object_set_new(o, "world", w);
        if (c->has_base_training)
            json_object_set_new(o, "base_training", settings_to_json(&BASE_SETTINGS, &c->base_training, 1));
    }
    json_t *d = json_object();
    json_object_set_new(d, "task", json_string(task_name(c->task)));
    json_object_set_new(d, "drop_overlap", json_boolean(c->exclude_overlap));
    for (int r = 0; r < ROLE_COUNT; r++)
        if (!c->use_world && c->data[r].path) json_object_set_new(d, data_role_name((DataRole)r), source_json(&c->data[r]));
    json_object_set_new(o, "data", d);
    json_t *ms = json_array();
    for (int i = 0; i < c->n_methods; i++) json_array_append_new(ms, json_string(c->methods[i].name));
    json_object_set_new(o, "methods", ms);
    json_t *seeds = json_array();
    for (int i = 0; i < c->n_seeds; i++) json_array_append_new(seeds, json_integer((json_int_t)c->seeds[i]));
    json_object_set_new(o, "seeds", seeds);
    json_t *vals = json_array();
    for (int k = 0; k < c->n_sweep; k++) json_array_append_new(vals, json_real(c->sweep_values[k]));
    json_object_set_new(o, "sweep", json_pack("{s:s, s:o}", "name", sweep_name(c->sweep), "values", vals));
    json_t *al = json_object();
    for (int m = ALIGN_NONE + 1; m < ALIGN_COUNT; m++)
        json_object_set_new(al, align_method_name((AlignMethod)m), settings_to_json(&ALIGN_SETTINGS, &c->align[m], 1));
    json_object_set_new(o, "align", al);
    json_object_set_new(o, "finetune", settings_to_json(&FINETUNE_SETTINGS, &c->finetune, 1));
    json_object_set_new(o, "antidote", settings_to_json(&ANTIDOTE_SETTINGS, &c->antidote, 1));
    json_object_set_new(o, "judge", json_string(c->judge_spec ? c->judge_spec : "keyword"));
    json_object_set_new(o, "eval", settings_to_json(&EVAL_SETTINGS, &c->eval, 1));
    char *text = settings_json_text(o);
    json_decref(o);
    return text;
}
