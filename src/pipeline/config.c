// The pipeline config (docs/pipeline.md): defaults, JSON loading with strict keys, checks.
#include "pipeline/config.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"
#include "train/optim.h"
#include "util/intparse.h"

static const char *const SWEEP_NAMES[] = {"p", "n", "lr", "epochs"};
const char *sweep_name(SweepKind k) { return SWEEP_NAMES[k]; }

void pipeline_config_set(char **field, const char *value) {
    free(*field);
    *field = value ? xstrdup(value) : NULL;
}

static void source_init(DataSource *s) { *s = (DataSource){.filter = -1, .n = -1}; }
static void source_free(DataSource *s) {
    free(s->path);
    free(s->fields);
    free(s->format);
    source_init(s);
}

void pipeline_config_default(PipelineConfig *c) {
    memset(c, 0, sizeof *c);
    c->seed = 42;
    world_default_options(&c->world);
    source_init(&c->align_data);
    source_init(&c->harmful_data);
    source_init(&c->realign_data);
    source_init(&c->task_train);
    source_init(&c->task_test);
    source_init(&c->eval_harmful);
    c->eval_harmful.filter = 1;  // the unsafe rows of BeaverTails 30k_test (SPEC 8)
    c->task = TASK_SST2;
    Err e;
    method_spec_parse("sft", &c->methods[0], &e);
    method_spec_parse("vaccine", &c->methods[1], &e);
    c->n_methods = 2;
    c->sweep = SWEEP_P;
    const double ps[] = {0, 0.05, 0.1, 0.2};
    for (int i = 0; i < 4; i++) c->sweep_values[i] = ps[i];
    c->n_sweep = 4;
    c->ft_n = 1000;
    c->ft_p = 0.1;
    for (int m = 0; m < 4; m++) align_opts_default(&c->align[m], (AlignMethod)m);
    finetune_opts_default(&c->finetune);
    antidote_opts_default(&c->antidote);
    c->judge = xstrdup("keyword");
    c->eval_n_harmful = 500;
    c->eval_n_task = 500;
    c->eval_n_align = 100;
    c->eval_hed = 1;
    eval_opts_default(&c->eval);
}

void pipeline_config_free(PipelineConfig *c) {
    free(c->base_model);
    free(c->output);
    free(c->world_task);
    free(c->judge);
    source_free(&c->align_data);
    source_free(&c->harmful_data);
    source_free(&c->realign_data);
    source_free(&c->task_train);
    source_free(&c->task_test);
    source_free(&c->eval_harmful);
    memset(c, 0, sizeof *c);
}

int method_spec_parse(const char *s, MethodSpec *m, Err *e) {
    memset(m, 0, sizeof *m);
    if (strlen(s) >= sizeof m->name) return err_set(e, "method \"%s\": name too long", s);
    strcpy(m->name, s);
    char buf[64];
    strcpy(buf, s);
    char *plus = strchr(buf, '+');
    m->post = POST_NONE;
    if (plus) {
        *plus = '\0';
        const char *post = plus + 1;
        if (!strcmp(post, "antidote")) m->post = POST_ANTIDOTE;
        else if (!strcmp(post, "random-prune")) m->post = POST_RANDOM_PRUNE;
        else return err_set(e, "method \"%s\": unknown post-fine-tuning step \"%s\" (antidote, random-prune)", s, post);
    }
    if (!strcmp(buf, "none")) m->align = -1;
    else if ((m->align = align_method_parse(buf)) < 0)
        return err_set(e, "method \"%s\": unknown alignment \"%s\" (none, sft, vaccine, tvaccine, random-vaccine)", s, buf);
    return 0;
}

// ---- JSON reading helpers: every error names the file and the dotted key ---------------

typedef struct {
    const char *file;
    Err *e;
} Ctx;

static int bad(Ctx *x, const char *where, const char *key, const char *what) {
    return err_set(x->e, "%s: %s%s%s: %s", x->file, where, *where ? "." : "", key, what);
}

static int get_num(Ctx *x, const char *where, const char *key, json_t *v, double *out) {
    if (!json_is_number(v)) return bad(x, where, key, "expected a number");
    *out = json_number_value(v);
    return 0;
}

// Exact and range-checked before it is stored: every integer setting is an int except the
// seeds (docs/reliability.md).
static int get_int(Ctx *x, const char *where, const char *key, json_t *v, int64_t lo, int64_t *out) {
    int64_t hi = strstr(key, "seed") ? INT64_MAX : INT_MAX;
    char m[96];
    int rc = json_int(v, lo, hi, out);
    return rc ? bad(x, where, key, int_problem(rc, lo, hi, m, sizeof m)) : 0;
}

static int get_bool(Ctx *x, const char *where, const char *key, json_t *v, int *out) {
    if (!json_is_boolean(v)) return bad(x, where, key, "expected true or false");
    *out = json_is_true(v);
    return 0;
}

static int get_str(Ctx *x, const char *where, const char *key, json_t *v, const char **out) {
    if (!json_is_string(v)) return bad(x, where, key, "expected a string");
    *out = json_string_value(v);
    return 0;
}

static int get_obj(Ctx *x, const char *where, const char *key, json_t *v) {
    return json_is_object(v) ? 0 : bad(x, where, key, "expected an object");
}

// TrainOpts keys: 1 handled, 0 not a training key, -1 error.
static int train_key(Ctx *x, const char *w, const char *k, json_t *v, TrainOpts *t) {
    double d = 0;
    int64_t i = 0;
    const char *s = "";
#define NUM(name, field) if (!strcmp(k, name)) { if (get_num(x, w, k, v, &d)) return -1; t->field = (float)d; return 1; }
#define INT(name, field, lo) if (!strcmp(k, name)) { if (get_int(x, w, k, v, lo, &i)) return -1; t->field = i; return 1; }
    NUM("lr", lr) NUM("weight_decay", weight_decay) NUM("warmup_ratio", warmup_ratio)
    NUM("max_grad_norm", max_grad_norm) NUM("beta1", beta1) NUM("beta2", beta2) NUM("eps", eps)
    INT("batch_size", batch_size, 1) INT("grad_accum", grad_accum, 1) INT("epochs", epochs, 0)
    INT("max_steps", max_steps, 0) INT("max_len", max_len, 2) INT("seed", seed, 0)
    INT("checkpoint_every", checkpoint_every, 0)
#undef NUM
#undef INT
    if (!strcmp(k, "schedule")) {
        if (get_str(x, w, k, v, &s)) return -1;
        int sc = schedule_parse(s);
        if (sc < 0) return bad(x, w, k, "unknown schedule (cosine, linear, constant)");
        t->schedule = (Schedule)sc;
        return 1;
    }
    return 0;
}

// LoRA + weight keys shared by align and finetune.
static int lora_key(Ctx *x, const char *w, const char *k, json_t *v, int *rank, int *targets, float *alpha,
                    float *dropout, MatType *weights) {
    double d = 0;
    int64_t i = 0;
    const char *s = "";
    if (!strcmp(k, "rank")) { if (get_int(x, w, k, v, 1, &i)) return -1; *rank = (int)i; return 1; }
    if (!strcmp(k, "alpha")) { if (get_num(x, w, k, v, &d)) return -1; *alpha = (float)d; return 1; }
    if (!strcmp(k, "dropout")) {
        if (get_num(x, w, k, v, &d)) return -1;
        if (d < 0 || d >= 1) return bad(x, w, k, "must be in [0, 1)");
        *dropout = (float)d;
        return 1;
    }
    if (!strcmp(k, "targets")) {
        if (get_str(x, w, k, v, &s)) return -1;
        Err pe;
        int mask = proj_mask_parse(s, &pe);
        if (mask <= 0) return bad(x, w, k, "expected a list like \"q,k,v,o,gate,up,down\" or \"all\"");
        *targets = mask;
        return 1;
    }
    if (!strcmp(k, "bf16")) {
        int b = 0;
        if (get_bool(x, w, k, v, &b)) return -1;
        *weights = b ? MAT_BF16 : MAT_F32;
        return 1;
    }
    return 0;
}

static int align_key(Ctx *x, const char *w, const char *k, json_t *v, AlignOpts *o) {
    double d = 0;
    int64_t i = 0;
    int r = train_key(x, w, k, v, &o->train);
    if (r) return r;
    if ((r = lora_key(x, w, k, v, &o->rank, &o->targets, &o->alpha, &o->dropout, &o->weights))) return r;
    if (!strcmp(k, "rho")) {
        if (get_num(x, w, k, v, &d)) return -1;
        if (d < 0) return bad(x, w, k, "must be >= 0");
        o->rho = (float)d;
        return 1;
    }
    if (!strcmp(k, "tv_K")) { if (get_int(x, w, k, v, 1, &i)) return -1; o->tv_K = (int)i; return 1; }
    if (!strcmp(k, "tv_J")) { if (get_int(x, w, k, v, 1, &i)) return -1; o->tv_J = (int)i; return 1; }
    if (!strcmp(k, "tv_S")) { if (get_int(x, w, k, v, 1, &i)) return -1; o->tv_S = (int)i; return 1; }
    if (!strcmp(k, "tv_pool")) { if (get_int(x, w, k, v, 1, &i)) return -1; o->tv_pool = (int)i; return 1; }
    if (!strcmp(k, "tv_variant")) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "reference") && strcmp(s, "lean"))) return bad(x, w, k, "must be \"reference\" or \"lean\"");
        o->tv_variant = strcmp(s, "lean") ? TV_REFERENCE : TV_LEAN;
        return 1;
    }
    return 0;
}

static int unknown(Ctx *x, const char *w, const char *k) { return bad(x, w, k, "unknown key"); }

static int parse_align(Ctx *x, json_t *obj, PipelineConfig *c) {
    const char *k;
    json_t *v;
    // Shared keys first, then the per-method objects, whatever their order in the file.
    json_object_foreach(obj, k, v) {
        if (align_method_parse(k) >= 0) continue;
        for (int m = 0; m < 4; m++) {
            int r = align_key(x, "align", k, v, &c->align[m]);
            if (r < 0) return -1;
            if (r == 0) return unknown(x, "align", k);
        }
    }
    json_object_foreach(obj, k, v) {
        int m = align_method_parse(k);
        if (m < 0) continue;
        char where[64];
        snprintf(where, sizeof where, "align.%s", k);
        if (get_obj(x, "align", k, v)) return -1;
        const char *k2;
        json_t *v2;
        json_object_foreach(v, k2, v2) {
            int r = align_key(x, where, k2, v2, &c->align[m]);
            if (r < 0) return -1;
            if (r == 0) return unknown(x, where, k2);
        }
    }
    return 0;
}

static int parse_finetune(Ctx *x, json_t *obj, PipelineConfig *c, int *alpha_set) {
    const char *k;
    json_t *v;
    FinetuneOpts *o = &c->finetune;
    json_object_foreach(obj, k, v) {
        double d = 0;
        int64_t i = 0;
        if (!strcmp(k, "n")) { if (get_int(x, "finetune", k, v, 0, &i)) return -1; c->ft_n = (int)i; continue; }
        if (!strcmp(k, "p")) {
            if (get_num(x, "finetune", k, v, &d)) return -1;
            if (d < 0 || d > 1) return bad(x, "finetune", k, "must be in [0, 1]");
            c->ft_p = d;
            continue;
        }
        if (!strcmp(k, "alpha")) *alpha_set = 1;
        int r = train_key(x, "finetune", k, v, &o->train);
        if (!r) r = lora_key(x, "finetune", k, v, &o->rank, &o->targets, &o->alpha, &o->dropout, &o->weights);
        if (r < 0) return -1;
        if (r == 0) return unknown(x, "finetune", k);
    }
    return 0;
}

static int parse_antidote(Ctx *x, json_t *obj, AntidoteOpts *o) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        double d = 0;
        int64_t i = 0;
        int b = 0;
        if (!strcmp(k, "dense_ratio")) {
            if (get_num(x, "antidote", k, v, &d)) return -1;
            if (d < 0 || d > 1) return bad(x, "antidote", k, "must be in [0, 1]");
            o->dense_ratio = d;
        } else if (!strcmp(k, "full_mode")) {
            if (get_bool(x, "antidote", k, v, &b)) return -1;
            o->full_mode = b;
        } else if (!strcmp(k, "targets")) {
            const char *s = "";
            Err pe;
            if (get_str(x, "antidote", k, v, &s)) return -1;
            int mask = proj_mask_parse(s, &pe);
            if (mask <= 0) return bad(x, "antidote", k, "expected a list like \"q,k,v\"");
            o->targets = mask;
        } else if (!strcmp(k, "n_samples")) {
            if (get_int(x, "antidote", k, v, 1, &i)) return -1;
            o->n_samples = (int)i;
        } else if (!strcmp(k, "max_len")) {
            if (get_int(x, "antidote", k, v, 2, &i)) return -1;
            o->max_len = (int)i;
        } else if (!strcmp(k, "seed")) {
            if (get_int(x, "antidote", k, v, 0, &i)) return -1;
            o->seed = (uint64_t)i;
        } else if (!strcmp(k, "bf16")) {
            if (get_bool(x, "antidote", k, v, &b)) return -1;
            o->weights = b ? MAT_BF16 : MAT_F32;
        } else {
            return unknown(x, "antidote", k);
        }
    }
    return 0;
}

static int parse_source(Ctx *x, const char *key, json_t *v, DataSource *s) {
    char where[64];
    snprintf(where, sizeof where, "data.%s", key);
    source_free(s);
    if (!strcmp(key, "eval_harmful")) s->filter = 1;
    if (json_is_string(v)) { s->path = xstrdup(json_string_value(v)); return 0; }
    if (!json_is_object(v)) return bad(x, "data", key, "expected a file path or an object {path, fields, format, filter, offset, n}");
    const char *k;
    json_t *f;
    json_object_foreach(v, k, f) {
        const char *str = "";
        int64_t i = 0;
        if (!strcmp(k, "path") || !strcmp(k, "fields") || !strcmp(k, "format")) {
            if (get_str(x, where, k, f, &str)) return -1;
            char **dst = !strcmp(k, "path") ? &s->path : !strcmp(k, "fields") ? &s->fields : &s->format;
            pipeline_config_set(dst, str);
            if (dst == &s->format && strcmp(str, "auto") && strcmp(str, "sst2") && strcmp(str, "agnews") &&
                strcmp(str, "gsm8k") && strcmp(str, "advbench"))
                return bad(x, where, k, "unknown format (auto, sst2, agnews, gsm8k, advbench)");
        } else if (!strcmp(k, "filter")) {
            if (get_str(x, where, k, f, &str)) return -1;
            if (!strcmp(str, "harmful")) s->filter = 1;
            else if (!strcmp(str, "safe")) s->filter = 0;
            else if (!strcmp(str, "all")) s->filter = -1;
            else return bad(x, where, k, "expected \"harmful\", \"safe\" or \"all\"");
        } else if (!strcmp(k, "offset")) {
            if (get_int(x, where, k, f, 0, &i)) return -1;
            s->offset = (int)i;
        } else if (!strcmp(k, "n")) {
            if (get_int(x, where, k, f, -1, &i)) return -1;
            s->n = (int)i;
        } else {
            return unknown(x, where, k);
        }
    }
    if (!s->path) return bad(x, where, "path", "missing");
    return 0;
}

static int parse_data(Ctx *x, json_t *obj, PipelineConfig *c) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        DataSource *s = !strcmp(k, "alignment")      ? &c->align_data
                        : !strcmp(k, "harmful")      ? &c->harmful_data
                        : !strcmp(k, "realign")      ? &c->realign_data
                        : !strcmp(k, "task_train")   ? &c->task_train
                        : !strcmp(k, "task_test")    ? &c->task_test
                        : !strcmp(k, "eval_harmful") ? &c->eval_harmful
                                                     : NULL;
        if (s) {
            if (parse_source(x, k, v, s)) return -1;
        } else if (!strcmp(k, "task")) {
            const char *str = "";
            if (get_str(x, "data", k, v, &str)) return -1;
            if ((c->task = task_from_name(str)) == TASK_NONE) return bad(x, "data", k, "unknown task (sst2, agnews, gsm8k)");
        } else if (!strcmp(k, "drop_overlap")) {
            if (get_bool(x, "data", k, v, &c->drop_overlap)) return -1;
        } else {
            return unknown(x, "data", k);
        }
    }
    return 0;
}

static int parse_world(Ctx *x, json_t *obj, PipelineConfig *c) {
    if (get_obj(x, "", "world", obj)) return -1;
    c->use_world = 1;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int64_t i = 0;
        int *dst = !strcmp(k, "n_base")           ? &c->world.n_base
                   : !strcmp(k, "n_align")        ? &c->world.n_align
                   : !strcmp(k, "n_harmful")      ? &c->world.n_harmful
                   : !strcmp(k, "n_realign")      ? &c->world.n_realign
                   : !strcmp(k, "n_test_harmful") ? &c->world.n_test_harmful
                   : !strcmp(k, "n_task_train")   ? &c->world.n_task_train
                   : !strcmp(k, "n_task_test")    ? &c->world.n_task_test
                                                  : NULL;
        if (dst) {
            if (get_int(x, "world", k, v, 0, &i)) return -1;
            *dst = (int)i;
        } else if (!strcmp(k, "seed")) {
            if (get_int(x, "world", k, v, 0, &i)) return -1;
            c->world.seed = (uint64_t)i;
        } else if (!strcmp(k, "task")) {
            const char *s = "";
            if (get_str(x, "world", k, v, &s)) return -1;
            if (strcmp(s, "sst") && strcmp(s, "topic") && strcmp(s, "math")) return bad(x, "world", k, "expected sst, topic or math");
            pipeline_config_set(&c->world_task, s);
        } else {
            return unknown(x, "world", k);
        }
    }
    return 0;
}

static int parse_eval(Ctx *x, json_t *obj, PipelineConfig *c) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int64_t i = 0;
        int *dst = !strcmp(k, "n_harmful")     ? &c->eval_n_harmful
                   : !strcmp(k, "n_task")      ? &c->eval_n_task
                   : !strcmp(k, "n_align")     ? &c->eval_n_align
                   : !strcmp(k, "max_new")     ? &c->eval.max_new
                   : !strcmp(k, "threads")     ? &c->eval.threads
                   : !strcmp(k, "batch_size")  ? &c->eval.batch_size
                   : !strcmp(k, "hed_batches") ? &c->eval.hed_batches
                   : !strcmp(k, "max_len")     ? &c->eval.max_len
                                               : NULL;
        if (dst) {
            if (get_int(x, "eval", k, v, 0, &i)) return -1;
            *dst = (int)i;
        } else if (!strcmp(k, "hed")) {
            if (get_bool(x, "eval", k, v, &c->eval_hed)) return -1;
        } else {
            return unknown(x, "eval", k);
        }
    }
    return 0;
}

static int parse_sweep(Ctx *x, json_t *obj, PipelineConfig *c) {
    if (get_obj(x, "", "sweep", obj)) return -1;
    json_t *name = json_object_get(obj, "name"), *values = json_object_get(obj, "values");
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) if (strcmp(k, "name") && strcmp(k, "values")) return unknown(x, "sweep", k);
    if (!name) return bad(x, "sweep", "name", "missing (p, n, lr or epochs)");
    const char *s = "";
    if (get_str(x, "sweep", "name", name, &s)) return -1;
    int kind = -1;
    for (int i = 0; i < 4; i++)
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

int pipeline_config_parse(const char *text, const char *name, PipelineConfig *c, Err *e) {
    Ctx x = {name, e};
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    if (!root) return err_set(e, "%s:%d:%d: %s", name, je.line, je.column, je.text);
    int rc = 0, alpha_set = 0;
    if (!json_is_object(root)) { json_decref(root); return err_set(e, "%s: expected a JSON object", name); }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        const char *s = "";
        int64_t i = 0;
        if (!strcmp(k, "base_model") || !strcmp(k, "output") || !strcmp(k, "judge")) {
            if ((rc = get_str(&x, "", k, v, &s))) break;
            pipeline_config_set(!strcmp(k, "base_model") ? &c->base_model : !strcmp(k, "output") ? &c->output : &c->judge, s);
        } else if (!strcmp(k, "seed")) {
            if ((rc = get_int(&x, "", k, v, 0, &i))) break;
            c->seed = (uint64_t)i;
        } else if (!strcmp(k, "world")) {
            if ((rc = parse_world(&x, v, c))) break;
        } else if (!strcmp(k, "data")) {
            if ((rc = get_obj(&x, "", k, v)) || (rc = parse_data(&x, v, c))) break;
        } else if (!strcmp(k, "methods")) {
            if (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > PIPE_MAX_METHODS) {
                rc = bad(&x, "", k, "expected an array of 1 to 16 method names");
                break;
            }
            c->n_methods = (int)json_array_size(v);
            for (int m = 0; m < c->n_methods && !rc; m++) {
                json_t *it = json_array_get(v, m);
                if (!json_is_string(it)) rc = bad(&x, "", k, "expected method names (strings)");
                else {
                    Err me;
                    if (method_spec_parse(json_string_value(it), &c->methods[m], &me))
                        rc = err_set(e, "%s: methods: %.900s", name, me.msg);
                }
            }
            if (rc) break;
        } else if (!strcmp(k, "sweep")) {
            if ((rc = parse_sweep(&x, v, c))) break;
        } else if (!strcmp(k, "align")) {
            if ((rc = get_obj(&x, "", k, v)) || (rc = parse_align(&x, v, c))) break;
        } else if (!strcmp(k, "finetune")) {
            if ((rc = get_obj(&x, "", k, v)) || (rc = parse_finetune(&x, v, c, &alpha_set))) break;
        } else if (!strcmp(k, "antidote")) {
            if ((rc = get_obj(&x, "", k, v)) || (rc = parse_antidote(&x, v, &c->antidote))) break;
        } else if (!strcmp(k, "eval")) {
            if ((rc = get_obj(&x, "", k, v)) || (rc = parse_eval(&x, v, c))) break;
        } else if (k[0] == '_' || !strcmp(k, "comment")) {
            continue;  // comments
        } else {
            rc = unknown(&x, "", k);
            break;
        }
    }
    json_decref(root);
    if (rc) return -1;
    // SPEC 1: fine-tuning alpha 0.5 for GSM8K unless the config says otherwise.
    int gsm = c->use_world ? (c->world_task && !strcmp(c->world_task, "math")) : c->task == TASK_GSM8K;
    if (gsm && !alpha_set) c->finetune.alpha = 0.5f;
    return pipeline_config_check(c, name, e);
}

int pipeline_config_load(const char *path, PipelineConfig *c, Err *e) {
    char *text = read_file(path, NULL, e);
    if (!text) return -1;
    int rc = pipeline_config_parse(text, path, c, e);
    free(text);
    return rc;
}

int pipeline_config_check(const PipelineConfig *c, const char *name, Err *e) {
    if (!c->base_model) return err_set(e, "%s: base_model: missing (the model folder to align)", name);
    if (!c->output) return err_set(e, "%s: output: missing (the results folder)", name);
    if (!c->n_methods) return err_set(e, "%s: methods: empty", name);
    if (!c->n_sweep) return err_set(e, "%s: sweep.values: empty", name);
    for (int i = 0; i < c->n_sweep; i++) {
        double v = c->sweep_values[i];
        if (c->sweep == SWEEP_P && (v < 0 || v > 1)) return err_set(e, "%s: sweep.values: p = %g is not in [0, 1]", name, v);
        if ((c->sweep == SWEEP_N || c->sweep == SWEEP_EPOCHS) && (v < 0 || v != floor(v)))
            return err_set(e, "%s: sweep.values: %s = %g is not a whole number >= 0", name, sweep_name(c->sweep), v);
        if (c->sweep == SWEEP_LR && !(v > 0)) return err_set(e, "%s: sweep.values: lr = %g must be > 0", name, v);
    }
    for (int i = 0; i < c->n_methods; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(c->methods[i].name, c->methods[j].name))
                return err_set(e, "%s: methods: \"%s\" listed twice", name, c->methods[i].name);
    if (!c->use_world) {
        int need_align = 0, need_realign = 0;
        for (int i = 0; i < c->n_methods; i++) {
            need_align |= c->methods[i].align >= 0;
            need_realign |= c->methods[i].post != POST_NONE || c->methods[i].align == ALIGN_TVACCINE;
        }
        if (need_align && !c->align_data.path) return err_set(e, "%s: data.alignment: missing (harmful prompt + safe answer rows)", name);
        if (need_realign && !c->realign_data.path)
            return err_set(e, "%s: data.realign: missing (harmful prompt + harmful answer rows for Antidote / T-Vaccine)", name);
        if (!c->harmful_data.path) return err_set(e, "%s: data.harmful: missing (harmful fine-tuning rows)", name);
        if (!c->task_train.path) return err_set(e, "%s: data.task_train: missing (benign task rows)", name);
        if (!c->task_test.path) return err_set(e, "%s: data.task_test: missing (task rows for fine-tune accuracy)", name);
        if (!c->eval_harmful.path) return err_set(e, "%s: data.eval_harmful: missing (harmful evaluation prompts)", name);
    }
    if (c->eval.max_new < 1) return err_set(e, "%s: eval.max_new: must be >= 1", name);
    if (c->eval.batch_size < 1 || c->eval.max_len < 2) return err_set(e, "%s: eval: batch_size >= 1 and max_len >= 2 needed", name);
    return 0;
}
