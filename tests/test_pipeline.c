// Pipeline configs (defaults, overrides, errors naming file and key) and a tiny end-to-end
// experiment on the generated world with a tiny random base model: every table file is
// written, and a second run skips every finished stage (stage counts in results.json).
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/atomic.h"
#include "io/hf_checkpoint.h"
#include "io/hf_config.h"
#include "io/model_dir.h"
#include "io/peft.h"
#include "pipeline/fingerprint.h"
#include "pipeline/pipeline.h"
#include "testing.h"
#include "util/log.h"

static char tmp_root[] = "/tmp/antibody_test_pipeline_XXXXXX";

static void write_text(const char *path, const char *text) {
    Err e;
    if (write_file_atomic(path, text, strlen(text), &e)) fprintf(stderr, "%s\n", e.msg);
}

// Loads text as a config file; returns the loader's status, message in e.
static int load_text(const char *text, PipelineConfig *c, Err *e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/cfg.json", tmp_root);
    write_text(path, text);
    pipeline_config_default(c);
    return pipeline_config_load(path, c, e);
}

static void expect_error(const char *text, const char *needle) {
    PipelineConfig c;
    Err e = {0};
    int rc = load_text(text, &c, &e);
    CHECK(rc == -1 && strstr(e.msg, "cfg.json") && strstr(e.msg, needle), "want error with \"%s\", got rc %d: %s",
          needle, rc, e.msg);
    pipeline_config_free(&c);
}

#define WORLD_HEAD "{\"base_model\": \"m\", \"output\": \"o\", \"world\": {}, "

static void test_config(void) {
    PipelineConfig c;
    Err e = {0};
    int rc = load_text(WORLD_HEAD
                       "\"methods\": [\"none\", \"sft+antidote\", \"tvaccine+random-prune\"],"
                       "\"sweep\": {\"name\": \"lr\", \"values\": [1e-5, 1e-4]},"
                       "\"align\": {\"vaccine\": {\"rho\": 5}, \"lr\": 0.002, \"tv_S\": 3, \"targets\": \"q,v\"},"
                       "\"finetune\": {\"n\": 300, \"p\": 0.2, \"epochs\": 3, \"schedule\": \"linear\"},"
                       "\"antidote\": {\"dense_ratio\": 0.2, \"full_mode\": true},"
                       "\"eval\": {\"n_harmful\": 50, \"hs_max_new\": 64, \"hed\": false}, \"judge\": \"world\"}",
                       &c, &e);
    CHECK(rc == 0, "load: %s", e.msg);
    CHECK(c.n_methods == 3 && c.methods[0].align == ALIGN_NONE && c.methods[1].align == ALIGN_SFT &&
          c.methods[1].post == POST_ANTIDOTE && c.methods[2].align == ALIGN_TVACCINE &&
          c.methods[2].post == POST_RANDOM_PRUNE);
    CHECK(c.sweep == SWEEP_LR && c.n_sweep == 2 && c.sweep_values[1] == 1e-4);
    // shared align keys reach every method; per-method objects win whatever the key order
    CHECK(c.align[ALIGN_VACCINE].rho == 5 && c.align[ALIGN_SFT].train.lr == 0.002f &&
          c.align[ALIGN_VACCINE].train.lr == 0.002f && c.align[ALIGN_TVACCINE].tv_S == 3);
    CHECK(c.align[ALIGN_TVACCINE].rho == 3 && c.align[ALIGN_TVACCINE].train.batch_size == 10, "T-Vaccine defaults kept");
    CHECK(c.align[ALIGN_SFT].targets == ((1 << P_Q) | (1 << P_V)));
    CHECK(c.finetune.n == 300 && c.finetune.p == 0.2 && c.finetune.train.epochs == 3 && c.finetune.train.schedule == SCHED_LINEAR);
    CHECK(c.finetune.train.lr == 1e-5f && c.finetune.alpha == 1, "finetune defaults");
    CHECK(c.antidote.dense_ratio == 0.2 && c.antidote.full_mode == 1 && c.antidote.n_samples == 2000);
    CHECK(c.eval.n_harmful == 50 && c.eval.opts.hs_max_new == 64 && c.eval.hed_enabled == 0 && c.eval.n_task == 500);
    CHECK(!strcmp(c.judge_spec, "world") && c.use_world);
    pipeline_config_free(&c);

    // GSM8K: fine-tuning alpha 0.5 unless stated
    rc = load_text(WORLD_HEAD "\"world\": {\"task\": \"math\"}}", &c, &e);
    CHECK(rc == 0 && c.finetune.alpha == 0.5f, "gsm8k alpha %g: %s", c.finetune.alpha, e.msg);
    pipeline_config_free(&c);
    rc = load_text(WORLD_HEAD "\"world\": {\"task\": \"math\"}, \"finetune\": {\"alpha\": 2}}", &c, &e);
    CHECK(rc == 0 && c.finetune.alpha == 2, "explicit alpha kept");
    pipeline_config_free(&c);

    expect_error(WORLD_HEAD "\"finetune\": {\"lr\": \"fast\"}}", "finetune.lr: expected a number");
    expect_error(WORLD_HEAD "\"align\": {\"vaccine\": {\"rhoo\": 1}}}", "align.vaccine.rhoo: unknown key");
    expect_error(WORLD_HEAD "\"methods\": [\"sft\", \"magic+antidote\"]}", "magic");
    expect_error(WORLD_HEAD "\"methods\": [\"sft+glue\"]}", "glue");
    expect_error(WORLD_HEAD "\"sweep\": {\"name\": \"temperature\", \"values\": [1]}}", "sweep.name");
    expect_error(WORLD_HEAD "\"sweep\": {\"name\": \"p\", \"values\": [0.5, 2]}}", "p = 2");
    // a sweep value is range-checked before it becomes the setting's int or float (fuzz finding:
    // 7.8e16 epochs was converted to int first, undefined behaviour)
    expect_error(WORLD_HEAD "\"sweep\": {\"name\": \"epochs\", \"values\": [2, 77777777777777716]}}", "out of range");
    expect_error(WORLD_HEAD "\"sweep\": {\"name\": \"n\", \"values\": [-3e12]}}", "out of range");
    expect_error(WORLD_HEAD "\"sweep\": {\"name\": \"lr\", \"values\": [1e300]}}", "out of range");
    expect_error(WORLD_HEAD "\"sweep\": {\"name\": \"epochs\", \"values\": [2.5]}}", "not a whole number");
    expect_error(WORLD_HEAD "\"eval\": {\"n_harmful\": -3}}", "eval.n_harmful");
    expect_error(WORLD_HEAD "\"world\": {\"n_align\": \"ten\"}}", "world.n_align");
    expect_error(WORLD_HEAD "\"bogus\": 1}", "bogus: unknown key");
    expect_error("{\"output\": \"o\", \"world\": {}}", "base_model");
    expect_error("{\"base_model\": \"m\",\n \"output\": }", "cfg.json:2:");
    expect_error("{\"base_model\": \"m\", \"output\": \"o\", \"data\": {\"task\": \"sst2\"}}", "data.alignment");
    expect_error("{\"base_model\": \"m\", \"output\": \"o\", \"data\": {\"harmful\": {\"fields\": \"x\"}}}",
                 "data.harmful.path");
    expect_error(WORLD_HEAD "\"data\": {\"task\": \"poetry\"}}", "data.task");
    expect_error(WORLD_HEAD "\"finetune\": {\"targets\": \"q,zz\"}}", "finetune.targets");

    PipelineConfig none;
    pipeline_config_default(&none);
    CHECK(pipeline_config_load("/nonexistent/cfg.json", &none, &e) == -1 && strstr(e.msg, "/nonexistent/cfg.json"),
          "missing file named: %s", e.msg);
    pipeline_config_free(&none);
}

// A tiny random model folder of a family ("llama", "opt" pre-norm, "opt-post" post-norm,
// "gemma2": a window of 8 keys on layer 0, both soft-caps, head_dim 12 != dim / heads;
// "classifier": a Llama sequence classifier) with stories260K's tokenizer.
static int make_family_dir(const char *dir, const char *family, Err *e) {
    Config c = {.vocab_size = 512, .dim = 16, .hidden_dim = 32, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1,
                .head_dim = 8, .max_seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = 1,
                .bos_id = 1, .n_eos = 1, .eos_ids = {2}, .pad_id = -1};
    strcpy(c.arch, "LlamaForCausalLM");
    strcpy(c.model_type, "llama");
    if (!strncmp(family, "opt", 3)) {
        strcpy(c.arch, "OPTForCausalLM");
        strcpy(c.model_type, "opt");
        c.opt = 1;
        c.n_kv_heads = c.n_heads;
        c.norm_after = c.no_final_norm = !strcmp(family, "opt-post");
    }
    if (!strcmp(family, "gemma2")) {
        strcpy(c.arch, "Gemma2ForCausalLM");
        strcpy(c.model_type, "gemma2");
        c.gemma = 2;
        c.sandwich_norms = 1;
        c.head_dim = 12;
        c.query_scalar = 10.0f;
        c.attn_softcap = 5.0f;
        c.final_softcap = 10.0f;
        c.sliding_window = 8;
        c.sliding[0] = 1;
    }
    if (!strcmp(family, "classifier")) {
        strcpy(c.arch, "LlamaForSequenceClassification");
        c.num_labels = 2;
    }
    Model m;
    model_init_random(&m, &c, 3);
    int rc = model_save(&m, dir, MAT_F32, 0, e);
    model_free(&m);
    if (rc) return -1;
    char tokdir[4096];
    snprintf(tokdir, sizeof tokdir, "%s/models/stories260k-hf", shared_dir());
    return model_dir_copy_tokenizer(tokdir, dir, e);
}

static int make_model_dir(const char *dir, Err *e) { return make_family_dir(dir, "llama", e); }

static int file_exists(const char *dir, const char *name) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat s;
    return stat(p, &s) == 0 && s.st_size > 0;
}

static json_t *results(const char *out) {
    char p[4400];
    snprintf(p, sizeof p, "%s/results.json", out);
    json_error_t je;
    return json_load_file(p, 0, &je);
}

static int count_of(json_t *r, const char *key) { return (int)json_integer_value(json_object_get(r, key)); }

// What the library reported through the log callback.
typedef struct {
    int n[LOG_RESULT + 1];
    int table;  // the results table came as a LOG_RESULT
} Seen;

static void collect(LogLevel level, const char *msg, void *ctx) {
    Seen *s = ctx;
    s->n[level]++;
    if (level == LOG_RESULT && strstr(msg, "vaccine+antidote")) s->table = 1;
}

// A tiny experiment on the world (a model folder made by make_model_dir), built in code as
// the demo does: methods none, sft, vaccine+antidote, tvaccine; p = 0 and 0.5; one seed (42).
static void tiny_config(PipelineConfig *c, const char *model, const char *out) {
    Err e = {0};
    pipeline_config_default(c);
    pipeline_config_set(&c->base_model, model);
    pipeline_config_set(&c->output, out);
    pipeline_config_set(&c->judge_spec, "world");
    c->use_world = 1;
    c->world = (WorldOptions){.seed = 7, .n_base = 4, .n_align = 6, .n_harmful = 6, .n_realign = 4,
                             .n_test_harmful = 5, .n_task_train = 8, .n_task_test = 4};
    c->eval.n_harmful = 3;  // heads of the world's held-out prompts and task tests
    c->eval.n_task = 3;
    const char *methods[] = {"none", "sft", "vaccine+antidote", "tvaccine"};
    c->n_methods = 4;
    for (int i = 0; i < 4; i++) CHECK(method_spec_parse(methods[i], &c->methods[i], &e) == 0, "%s", e.msg);
    c->sweep = SWEEP_P;
    c->n_sweep = 2;
    c->sweep_values[0] = 0;
    c->sweep_values[1] = 0.5;
    c->finetune.n = 6;
    for (int m = 0; m < ALIGN_COUNT; m++) {
        c->align[m].train.max_steps = 2;
        c->align[m].train.batch_size = 2;
        c->align[m].train.max_len = 160;  // the world's harmful prompts are ~140 tokens here: answers must survive
        c->align[m].rank = 2;
        c->align[m].tv_K = 1;
        c->align[m].tv_J = 1;
        c->align[m].tv_S = 1;
        c->align[m].tv_pool = 2;
    }
    c->finetune.train.max_steps = 2;
    c->finetune.train.batch_size = 2;
    c->finetune.train.max_len = 240;  // task prompts up to ~210 tokens
    c->finetune.rank = 2;
    c->antidote.n_samples = 2;
    c->antidote.max_len = 96;
    c->eval.n_align = 2;
    c->eval.opts.hs_max_new = c->eval.opts.fa_max_new = 4;
    c->eval.opts.max_len = 96;
    c->eval.opts.batch_size = 1;
    c->eval.opts.hed_batches = 2;
}

// Issue 13 item 8: the dry run of c: the number of stages it says would run (-1 on error),
// after checking that each stage that would run says why with one of the given words.
static int planned_runs(const PipelineConfig *c, int *n_stages, const char *why) {
    PipelinePlan p;
    Err e = {0};
    int rc = pipeline_plan(c, &p, &e), runs = 0;
    CHECK(rc == 0 && !p.problem, "plan: %s %s", e.msg, p.problem ? p.problem : "");
    for (int i = 0; i < p.n; i++) {
        runs += p.stages[i].runs;
        if (p.stages[i].runs && why)
            CHECK(strstr(p.stages[i].why, why) || strstr(p.stages[i].why, "inputs."), "%s: %s", p.stages[i].what,
                  p.stages[i].why);
    }
    *n_stages = p.n;
    plan_free(&p);
    return rc ? -1 : runs;
}

static void test_end_to_end(void) {
    char model[4200], out[4200];
    snprintf(model, sizeof model, "%s/base", tmp_root);
    snprintf(out, sizeof out, "%s/run", tmp_root);
    Err e = {0};
    if (make_model_dir(model, &e)) { CHECK(0, "model: %s", e.msg); return; }
    PipelineConfig c;
    tiny_config(&c, model, out);
    // 3 alignments + 2 sweep values x (4 fine-tunings + 1 antidote + 4 evaluations)
    int total = 3 + 2 * (4 + 1 + 4), n_planned = 0;
    // The dry run first: every stage would run, nothing is created.
    CHECK(planned_runs(&c, &n_planned, "not run yet") == total && n_planned == total, "dry run of a new experiment: %d",
          n_planned);
    CHECK(access(out, F_OK) != 0, "the dry run created %s", out);
    PipelineStats st;
    Seen seen = {{0}, 0};
    log_set(collect, &seen, 0);
    int rc = pipeline_run_stats(&c, &st, &e);
    log_set(NULL, NULL, 0);
    CHECK(rc == 0, "pipeline: %s", e.msg);
    CHECK(seen.n[LOG_INFO] >= 2 * total && seen.n[LOG_PROGRESS_DONE] > 0 && seen.n[LOG_RESULT] == 1 && seen.table,
          "reports through the callback: %d info, %d progress, %d results", seen.n[LOG_INFO],
          seen.n[LOG_PROGRESS_DONE], seen.n[LOG_RESULT]);
    CHECK(st.stages_run == total && st.stages_skipped == 0, "first run: %d run, %d skipped", st.stages_run,
          st.stages_skipped);
    const char *files[] = {"results.md", "results.csv", "results_table.json", "hs.svg", "fa.svg", "results.json",
                           "seed=42/align/vaccine/done.json", "seed=42/align/vaccine/adapter_model.safetensors",
                           "seed=42/finetune/none/p=0.5/adapter_model.safetensors",
                           "seed=42/post/vaccine+antidote/p=0/done.json", "seed=42/eval/tvaccine/p=0.5/harmful.jsonl",
                           "seed=42/eval/tvaccine/p=0.5/task.jsonl", "seed=42/eval/sft/p=0/summary.json",
                           "world/align.jsonl",
                           // issue 13 item 6: a per-step log and a loss plot in every training output
                           "seed=42/align/vaccine/train_log.jsonl", "seed=42/align/vaccine/loss.svg",
                           "seed=42/finetune/none/p=0.5/train_log.jsonl", "seed=42/finetune/sft/p=0/loss.svg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) CHECK(file_exists(out, files[i]), "missing %s", files[i]);
    json_t *r = results(out);
    CHECK(r && count_of(r, "stages_run") == total && count_of(r, "stages_skipped") == 0, "results.json counts");
    json_t *runs = json_object_get(r, "runs");
    CHECK(json_array_size(runs) == 8, "runs %zu", json_array_size(runs));
    for (size_t i = 0; i < json_array_size(runs); i++) {
        json_t *s = json_array_get(runs, i);
        double hs = json_number_value(json_object_get(s, "harmful_score"));
        double fa = json_number_value(json_object_get(s, "finetune_accuracy"));
        CHECK(hs >= 0 && hs <= 100 && fa >= 0 && fa <= 100, "run %zu HS %g FA %g", i, hs, fa);
        CHECK(json_integer_value(json_object_get(s, "harmful_total")) == 3, "3 HS prompts");
        CHECK(json_integer_value(json_object_get(s, "task_total")) == 3, "3 task rows");
        CHECK(json_is_number(json_object_get(s, "harmful_embedding_drift")), "HED in run %zu", i);
        CHECK(json_is_false(json_object_get(s, "drop_overlap")), "overlap policy recorded");
    }
    json_decref(r);
    char *csv = read_file(strcat(strcpy((char[4400]){0}, out), "/results.csv"), NULL, &e);
    CHECK(csv && strstr(csv, "vaccine+antidote") && strstr(csv, "tvaccine") && strstr(csv, "none"), "csv rows");
    CHECK(csv && strstr(csv, "ft_first_loss") && strstr(csv, "ft_final_loss"), "loss columns in results.csv");
    free(csv);

    // Second run: every stage is found done (the dry run says so first).
    CHECK(planned_runs(&c, &n_planned, NULL) == 0 && n_planned == total, "dry run after the run keeps every stage");
    rc = pipeline_run_stats(&c, &st, &e);
    CHECK(rc == 0 && st.stages_run == 0 && st.stages_skipped == total, "rerun: %d run, %d skipped (%s)", st.stages_run,
          st.stages_skipped, e.msg);
    r = results(out);
    CHECK(r && count_of(r, "stages_run") == 0 && count_of(r, "stages_skipped") == total, "results.json after rerun");
    json_decref(r);

    // An unfinished stage (no marker) is redone, and only it.
    char p[4400];
    snprintf(p, sizeof p, "%s/seed=42/eval/sft/p=0.5/done.json", out);
    CHECK(unlink(p) == 0, "unlink marker");
    CHECK(planned_runs(&c, &n_planned, "unfinished") == 1, "dry run: the stage without a marker runs");
    // With no callback the library writes nothing on stdout or stderr.
    char quiet[4400];
    snprintf(quiet, sizeof quiet, "%s/quiet.txt", tmp_root);
    fflush(stdout);
    fflush(stderr);
    int out_fd = dup(1), err_fd = dup(2), q = open(quiet, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(q, 1);
    dup2(q, 2);
    rc = pipeline_run_stats(&c, &st, &e);
    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    close(q);
    close(out_fd);
    close(err_fd);
    struct stat qs;
    CHECK(stat(quiet, &qs) == 0 && qs.st_size == 0, "library printed %lld bytes", (long long)qs.st_size);
    CHECK(rc == 0 && st.stages_run == 1 && st.stages_skipped == total - 1, "after removing a marker: %d run",
          st.stages_run);

    // Issue 13 item 1: a changed setting re-runs exactly the stages it reaches. finetune.lr:
    // every fine-tuning, the Antidote stages and every evaluation (8 + 2 + 8), not the 3
    // alignments; eval.max_new: only the 8 evaluations.
    c.finetune.train.lr *= 2;
    CHECK(planned_runs(&c, &n_planned, "settings.lr") == 18, "dry run: finetune.lr changed");
    rc = pipeline_run_stats(&c, &st, &e);
    CHECK(rc == 0 && st.stages_run == 18 && st.stages_skipped == 3, "finetune.lr changed: %d run, %d skipped (%s)",
          st.stages_run, st.stages_skipped, e.msg);
    c.eval.opts.hs_max_new = 3;
    CHECK(planned_runs(&c, &n_planned, "settings.hs_max_new") == 8, "dry run: eval.hs_max_new changed");
    rc = pipeline_run_stats(&c, &st, &e);
    CHECK(rc == 0 && st.stages_run == 8 && st.stages_skipped == 13, "eval.max_new changed: %d run, %d skipped (%s)",
          st.stages_run, st.stages_skipped, e.msg);
    snprintf(p, sizeof p, "%s/seed=42/finetune/sft/p=0/fingerprint.json", out);
    json_error_t je;
    json_t *f = json_load_file(p, 0, &je);
    CHECK(f && json_is_string(json_object_get(f, "fingerprint")) &&
          json_number_value(json_object_get(json_object_get(f, "settings"), "lr")) > 0 &&
          strlen(json_string_value(json_object_get(json_object_get(f, "inputs"), "align_adapter"))) == 64,
          "fingerprint.json records settings and inputs");
    json_decref(f);
    pipeline_config_free(&c);
}

// Issue 13 item 8: what the dry run says of each stage: rows, steps = epochs x
// ceil(ceil(rows / batch) / grad_accum) (or max_steps), tokens and an estimated time from a
// timed step; a stage whose rows keep no answer token is the problem that would stop the run.
static void test_dry_run(void) {
    char model[4200], out[4200];
    snprintf(model, sizeof model, "%s/base3", tmp_root);
    snprintf(out, sizeof out, "%s/run3", tmp_root);
    Err e = {0};
    if (make_model_dir(model, &e)) { CHECK(0, "model: %s", e.msg); return; }
    PipelineConfig c;
    tiny_config(&c, model, out);
    c.finetune.train.max_steps = 0;  // 6 rows, batch 2, 2 micro-batches a step: 2 steps an epoch, 20 epochs
    c.finetune.train.grad_accum = 2;
    PipelinePlan p;
    CHECK(pipeline_plan(&c, &p, &e) == 0 && !p.problem, "plan: %s", e.msg);
    CHECK(p.model && strstr(p.model, "2 layers, dim 16") && p.data && strstr(p.data, "alignment"), "model and data lines");
    CHECK(p.timed_rows == 2 && p.timed_tokens > 0 && p.timed_seconds > 0, "a step was timed: %d rows, %d tokens, %g s",
          p.timed_rows, p.timed_tokens, p.timed_seconds);
    int n_ft = 0, n_align = 0;
    for (int i = 0; i < p.n; i++) {
        const PlanStage *s = &p.stages[i];
        if (s->kind == PLAN_FINETUNE) {
            n_ft++;
            CHECK(s->rows == 6 && s->epochs == 20 && s->batch_size == 2 && s->grad_accum == 2 && s->steps == 40 &&
                      s->tokens > 0 && s->seconds > 0,
                  "%s: rows %d, steps %lld, tokens %lld, %g s", s->what, s->rows, (long long)s->steps,
                  (long long)s->tokens, s->seconds);
        } else if (s->kind == PLAN_ALIGN) {
            n_align++;
            CHECK(s->steps == 2 && s->rows > 0 && s->seconds > 0, "%s: steps %lld (max_steps 2)", s->what,
                  (long long)s->steps);
        } else {
            CHECK(s->seconds < 0 && s->steps == 0 && s->rows > 0, "%s: not a training stage", s->what);
        }
    }
    CHECK(n_ft == 8 && n_align == 3, "stages: %d fine-tunings, %d alignments", n_ft, n_align);
    // Vaccine's step is two passes: its estimate per token is twice SFT's
    const PlanStage *sft = NULL, *vac = NULL;
    for (int i = 0; i < p.n; i++) {
        if (!strncmp(p.stages[i].what, "align sft ", 10)) sft = &p.stages[i];
        if (!strncmp(p.stages[i].what, "align vaccine ", 14)) vac = &p.stages[i];
    }
    CHECK(sft && vac && close_enough(vac->seconds / vac->tokens_run, 2 * sft->seconds / sft->tokens_run, 1e-9, 0),
          "Vaccine counts two passes");
    AlignOpts po[4];
    align_opts_default(&po[0], ALIGN_SFT);
    align_opts_default(&po[1], ALIGN_TVACCINE);
    align_opts_default(&po[2], ALIGN_BOOSTER);
    align_opts_default(&po[3], ALIGN_TAR);
    po[3].tar_inner_steps = 4;
    CHECK(plan_passes(&po[0]) == 1 && plan_passes(&po[1]) == 2 && plan_passes(&po[2]) == 3 && plan_passes(&po[3]) == 6,
          "passes per method");
    plan_free(&p);
    // answers cut away entirely: the plan names the stage that would stop the run
    c.finetune.train.max_len = 8;
    CHECK(pipeline_plan(&c, &p, &e) == 0 && p.problem && strstr(p.problem, "finetune") &&
              strstr(p.problem, "no row keeps an answer token"),
          "problem: %s", p.problem ? p.problem : e.msg);
    plan_free(&p);
    CHECK(access(out, F_OK) != 0, "the dry runs created %s", out);
    // a model folder that does not exist fails before any folder is made, run or dry run
    pipeline_config_set(&c.base_model, "/nonexistent/model");
    CHECK(pipeline_plan(&c, &p, &e) == -1 && strstr(e.msg, "/nonexistent/model/config.json"), "plan: %s", e.msg);
    plan_free(&p);
    CHECK(pipeline_run(&c, &e) == -1 && strstr(e.msg, "/nonexistent/model/config.json") && access(out, F_OK) != 0,
          "run: %s", e.msg);
    pipeline_config_free(&c);
}

// Issue 18 item 1: a list of seeds runs the experiment once per seed, each in seed=<s>/ with
// that seed in every stage's settings (so in its fingerprint); the table is over the seeds.
// (The config's seed keys: tests/test_settings.c.)
static void test_seeds(void) {
    char model[4200], out[4200];
    snprintf(model, sizeof model, "%s/base2", tmp_root);
    snprintf(out, sizeof out, "%s/run2", tmp_root);
    Err e = {0};
    if (make_model_dir(model, &e)) { CHECK(0, "model: %s", e.msg); return; }
    PipelineConfig c;
    tiny_config(&c, model, out);  // sft and vaccine at p = 0.5, seeds 3 and 4
    c.n_methods = 2;
    CHECK(method_spec_parse("sft", &c.methods[0], &e) == 0 && method_spec_parse("vaccine", &c.methods[1], &e) == 0);
    c.sweep_values[0] = 0.5;
    c.n_sweep = 1;
    c.n_seeds = 2;
    c.seeds[0] = 3;
    c.seeds[1] = 4;
    PipelineStats st;
    int rc = pipeline_run_stats(&c, &st, &e);
    CHECK(rc == 0 && st.stages_run == 2 * (2 + 2 + 2), "two seeds: %d stages run (%s)", st.stages_run, e.msg);
    json_t *res = results(out), *runs = json_object_get(res, "runs");
    CHECK(json_array_size(runs) == 4 && json_array_size(json_object_get(res, "seeds")) == 2 &&
              json_is_string(json_object_get(res, "determinism")), "results.json: 4 runs, 2 seeds");
    int seen[2] = {0, 0};
    for (size_t i = 0; i < json_array_size(runs); i++) {
        json_int_t s = json_integer_value(json_object_get(json_array_get(runs, i), "seed"));
        if (s == 3 || s == 4) seen[s - 3]++;
    }
    CHECK(seen[0] == 2 && seen[1] == 2, "each run's summary names its seed: %d %d", seen[0], seen[1]);
    json_t *agg = json_object_get(res, "aggregate"), *row = json_array_get(json_object_get(agg, "rows"), 0);
    json_t *cell = json_object_get(json_array_get(json_object_get(row, "cells"), 0), "HS");
    CHECK(json_integer_value(json_object_get(cell, "n")) == 2 && json_array_size(json_object_get(cell, "per_seed")) == 2 &&
              json_array_size(json_object_get(agg, "comparisons")) == 1,
          "the table is over both seeds, with vaccine against sft");
    json_decref(res);
    // each seed's stages record it in their fingerprint, and train other adapters
    char pa[4400], pb[4400];
    snprintf(pa, sizeof pa, "%s/seed=3/align/sft/fingerprint.json", out);
    snprintf(pb, sizeof pb, "%s/seed=4/align/sft/fingerprint.json", out);
    json_error_t je;
    json_t *fa = json_load_file(pa, 0, &je), *fb = json_load_file(pb, 0, &je);
    CHECK(fa && fb && json_integer_value(json_object_get(json_object_get(fa, "settings"), "seed")) == 3 &&
              json_integer_value(json_object_get(json_object_get(fb, "settings"), "seed")) == 4 &&
              strcmp(fp_hex(fa), fp_hex(fb)),
          "fingerprints of seed 3 and 4 differ by the seed");
    json_decref(fa);
    json_decref(fb);
    snprintf(pa, sizeof pa, "%s/seed=3/finetune/sft/p=0.5/fingerprint.json", out);
    fa = json_load_file(pa, 0, &je);
    CHECK(fa && json_integer_value(json_object_get(json_object_get(fa, "settings"), "seed")) == 3, "fine-tuning seed");
    json_decref(fa);
    size_t na = 0, nb = 0;
    snprintf(pa, sizeof pa, "%s/seed=3/align/sft/adapter_model.safetensors", out);
    snprintf(pb, sizeof pb, "%s/seed=4/align/sft/adapter_model.safetensors", out);
    char *a = read_file(pa, &na, &e), *b = read_file(pb, &nb, &e);
    CHECK(a && b && na == nb && memcmp(a, b, na) != 0, "seed 3 and seed 4 trained the same adapter");
    free(a);
    free(b);
    pipeline_config_free(&c);
}

// Issue 13 item 4: an --out that is a file is refused before any work (here, before the
// missing model folder would be noticed).
static void test_out_checked_first(void) {
    char file[4200];
    snprintf(file, sizeof file, "%s/plain_file", tmp_root);
    write_text(file, "x");
    Dataset d;
    dataset_init(&d);
    dataset_add(&d, "q", "", "a", NULL, NULL, 0);
    AlignOpts ao;
    align_opts_default(&ao, ALIGN_SFT);
    FinetuneOpts fo;
    finetune_opts_default(&fo, TASK_SST2);
    AntidoteOpts an;
    antidote_opts_default(&an);
    Err e = {0};
    CHECK(stage_align("/nonexistent/model", NULL, 0, &d, NULL, &ao, file, NULL, &e) == -1 && strstr(e.msg, "not a folder"),
          "align: %s", e.msg);
    CHECK(stage_finetune("/nonexistent/model", NULL, &d, NULL, &fo, file, NULL, &e) == -1 && strstr(e.msg, "not a folder"),
          "finetune: %s", e.msg);
    CHECK(stage_antidote("/nonexistent/model", NULL, "/nonexistent/ft", &d, &an, file, &e) == -1 &&
          strstr(e.msg, "not a folder"), "antidote: %s", e.msg);
    dataset_free(&d);
}

// Issue 13 item 1: fingerprints differ with any setting or input, say what differs, and
// claiming a folder keeps a matching run, refuses or discards another one.
static json_t *fp_of(double lr, const char *data) {
    json_t *st = json_object(), *in = json_object();
    json_object_set_new(st, "lr", json_real(lr));
    json_object_set_new(st, "epochs", json_integer(3));
    json_object_set_new(in, "data", json_string(data));
    return fp_new("finetune", st, in);
}

static void test_fingerprint(void) {
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111",
               *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
    json_t *a = fp_of(1e-5, h1), *a2 = fp_of(1e-5, h1), *b = fp_of(1e-4, h1), *c = fp_of(1e-5, h2);
    CHECK(!strcmp(fp_hex(a), fp_hex(a2)) && strcmp(fp_hex(a), fp_hex(b)) && strcmp(fp_hex(a), fp_hex(c)),
          "same settings and inputs, same fingerprint; any change, another");
    char why[512];
    fp_diff(a, b, why, sizeof why);
    CHECK(!strcmp(why, "settings.lr: 1e-5 -> 0.0001"), "diff: %s", why);
    fp_diff(a, c, why, sizeof why);
    CHECK(!strcmp(why, "inputs.data: 111111111111 -> 222222222222"), "diff: %s", why);
    char dir[4200], ck[4300], p[4400];
    snprintf(dir, sizeof dir, "%s/fpstage", tmp_root);
    snprintf(ck, sizeof ck, "%s.checkpoint", dir);
    Err e = {0};
    CHECK(mkdir_p(dir, &e) == 0 && mkdir_p(ck, &e) == 0, "%s", e.msg);
    snprintf(p, sizeof p, "%s/trainer_state.json", ck);
    write_text(p, "{}");
    CHECK(fp_claim(dir, ck, a, 0, why, sizeof why, &e) == -1, "a checkpoint without a fingerprint is refused");
    CHECK(fp_claim(dir, ck, a, 1, why, sizeof why, &e) == 1 && access(ck, F_OK) != 0, "discarded: %s", e.msg);
    CHECK(fp_claim(dir, ck, a2, 0, why, sizeof why, &e) == 0 && !*why, "the same run claims again: %s", e.msg);
    snprintf(p, sizeof p, "%s/done.json", dir);
    write_text(p, "{}");
    CHECK(fp_claim(dir, ck, b, 0, why, sizeof why, &e) == -1 && strstr(e.msg, "settings.lr: 1e-5 -> 0.0001") &&
          strstr(e.msg, "--overwrite"), "refused with what differs: %s", e.msg);
    CHECK(access(p, F_OK) == 0, "a refused claim removes nothing");
    CHECK(fp_claim(dir, ck, b, 1, why, sizeof why, &e) == 1 && access(p, F_OK) != 0 && strstr(why, "lr"),
          "discard removes the earlier run's done.json: %s", why);
    json_t *rec = fp_read(dir);
    CHECK(rec && !strcmp(fp_hex(rec), fp_hex(b)), "the new fingerprint is recorded");
    json_decref(rec);
    json_decref(a); json_decref(a2); json_decref(b); json_decref(c);
}

// The adapter in dir, loaded for m (rank, alpha and tensors as written).
static int load_adapter(const Model *m, const char *dir, Lora *l) {
    Err e = {0};
    int rc = peft_load(l, m, dir, &e);
    CHECK(rc == 0, "%s: %s", dir, e.msg);
    return rc;
}

static json_t *eval_adapters(const char *out, const char *method) {
    char p[4400];
    snprintf(p, sizeof p, "%s/seed=42/eval/%s/p=0.5/summary.json", out, method);
    json_error_t je;
    json_t *s = json_load_file(p, 0, &je);
    CHECK(s != NULL, "%s: %s", p, je.text);
    json_t *a = s ? json_incref(json_object_get(s, "adapters")) : NULL;
    json_decref(s);
    return a;
}

// Issue 14 item 7: single LoRA. Fine-tuning starts from the alignment adapter itself (not
// merged; its rank, alpha and tensors), and the evaluation merges exactly that one adapter.
static void test_single_lora(void) {
    char model[4200], al[4200], ft[4200], ft2[4200];
    snprintf(model, sizeof model, "%s/base_single", tmp_root);
    snprintf(al, sizeof al, "%s/single_align", tmp_root);
    snprintf(ft, sizeof ft, "%s/single_ft", tmp_root);
    snprintf(ft2, sizeof ft2, "%s/single_ft2", tmp_root);
    Err e = {0};
    if (make_model_dir(model, &e)) { CHECK(0, "model: %s", e.msg); return; }
    Dataset d;
    dataset_init(&d);
    dataset_add(&d, "Say hello.", "", "hello there", NULL, NULL, 0);
    dataset_add(&d, "Say bye.", "", "bye now", NULL, NULL, 0);
    AlignOpts ao;
    align_opts_default(&ao, ALIGN_SFT);
    ao.rank = 3;  // the fine-tuning default is rank 8: a fresh adapter would not have rank 3
    ao.train.max_steps = 2;
    ao.train.batch_size = 2;
    ao.train.warmup_ratio = 0;
    CHECK(stage_align(model, NULL, 0, &d, NULL, &ao, al, NULL, &e) == 0, "align: %s", e.msg);
    FinetuneOpts fo;
    finetune_opts_default(&fo, TASK_NONE);
    fo.single_lora = 1;
    fo.train.batch_size = 2;
    fo.train.max_steps = 1;
    fo.train.warmup_ratio = 1;  // the one step is the warmup's first: learning rate 0, nothing moves
    CHECK(stage_finetune(model, al, &d, NULL, &fo, ft, NULL, &e) == 0, "finetune: %s", e.msg);
    fo.train.max_steps = 2;
    fo.train.warmup_ratio = 0;
    fo.train.lr = 1e-2f;
    CHECK(stage_finetune(model, al, &d, NULL, &fo, ft2, NULL, &e) == 0, "finetune: %s", e.msg);
    LoadedModel lm;
    if (model_dir_open(&lm, model, MAT_F32, NULL, 0, &e)) { CHECK(0, "%s", e.msg); dataset_free(&d); return; }
    Lora la, lf, lt;
    if (!load_adapter(&lm.model, al, &la) && !load_adapter(&lm.model, ft, &lf) && !load_adapter(&lm.model, ft2, &lt)) {
        CHECK(lf.rank == 3 && lf.alpha == la.alpha && lf.targets == la.targets && lf.n_params == la.n_params &&
                  !memcmp(lf.params, la.params, la.n_params * sizeof(float)),
              "a zero-rate step saves the alignment adapter unchanged (rank %d)", lf.rank);
        double diff = 0;
        for (size_t i = 0; i < la.n_params && lt.n_params == la.n_params; i++) diff += fabs(lt.params[i] - la.params[i]);
        CHECK(lt.rank == 3 && diff > 0, "two real steps move it (|change| %g)", diff);
        lora_free(&la);
        lora_free(&lf);
        lora_free(&lt);
    }
    model_dir_close(&lm);
    fo.single_lora = 1;
    CHECK(stage_finetune(model, NULL, &d, NULL, &fo, ft2, NULL, &e) == -1 && strstr(e.msg, "single_lora"),
          "without an alignment adapter: %s", e.msg);
    dataset_free(&d);

    // the pipeline: one adapter merged for evaluation (also after Antidote), no HED
    char out[4200];
    snprintf(out, sizeof out, "%s/single_run", tmp_root);
    PipelineConfig c;
    tiny_config(&c, model, out);
    const char *methods[] = {"sft", "sft+antidote"};
    c.n_methods = 2;
    for (int i = 0; i < 2; i++) CHECK(method_spec_parse(methods[i], &c.methods[i], &e) == 0, "%s", e.msg);
    c.n_sweep = 1;
    c.sweep_values[0] = 0.5;
    c.finetune.single_lora = 1;
    c.finetune.rank = 4;
    CHECK(pipeline_run(&c, &e) == 0, "pipeline: %s", e.msg);
    char want[4400];
    json_t *a = eval_adapters(out, "sft");
    snprintf(want, sizeof want, "%s/seed=42/finetune/sft/p=0.5", out);
    CHECK(json_array_size(a) == 1 && !strcmp(json_string_value(json_array_get(a, 0)), want), "sft: one adapter, %s",
          want);
    json_decref(a);
    a = eval_adapters(out, "sft+antidote");
    snprintf(want, sizeof want, "%s/seed=42/post/sft+antidote/p=0.5", out);
    CHECK(json_array_size(a) == 1 && !strcmp(json_string_value(json_array_get(a, 0)), want),
          "sft+antidote: one adapter, %s", want);
    json_decref(a);
    snprintf(want, sizeof want, "%s/seed=42/finetune/sft/p=0.5/adapter_config.json", out);
    json_error_t je;
    json_t *cfg = json_load_file(want, 0, &je);
    CHECK(cfg && json_integer_value(json_object_get(cfg, "r")) == c.align[ALIGN_SFT].rank,
          "the fine-tuned adapter has the alignment adapter's rank");
    json_decref(cfg);
    pipeline_config_free(&c);
}

// Runs fn in a child process with stdout and stderr going to a file; returns the child's exit
// status (-1 when it did not exit, e.g. it aborted) and the bytes it wrote in *written.
static int quiet_child(int (*fn)(void), long long *written) {
    char path[4400];
    snprintf(path, sizeof path, "%s/child_output.txt", tmp_root);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int q = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(q, 1);
        dup2(q, 2);
        int rc = fn();
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    struct stat st;
    *written = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Each returns 0 when the library behaved (an error value, nothing printed or set), else 1.
static int openblas_missing(void) {  // was: a message on stderr and abort()
    setenv("ANTIBODY_BLAS", "/nonexistent/libopenblas.so", 1);
    Err e = {0};
    if (blas_init(&e) != -1 || !strstr(e.msg, "/nonexistent/libopenblas.so")) return 1;
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {0};
    blas_sgemm(0, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);  // oneDNN runs, and says why
    return c[0] == 1 && c[3] == 4 && strstr(blas_name(), "could not be loaded") ? 0 : 1;
}

static int openblas_environment(void) {  // was: setenv("OPENBLAS_CORETYPE") inside the library
    setenv("ANTIBODY_BLAS", "openblas", 1);
    unsetenv("OPENBLAS_CORETYPE");
    Err e = {0};
    if (blas_init(&e)) return 0;  // no OpenBLAS on this machine: nothing to check
    return getenv("OPENBLAS_CORETYPE") ? 1 : 0;
}

static int batch_larger_than_planned(void) {  // was: abort()
    Config c = {.vocab_size = 8, .dim = 4, .hidden_dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                .head_dim = 2, .max_seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .bos_id = -1,
                .pad_id = -1, .n_eos = 1};
    Model m;
    model_init_random(&m, &c, 1);
    Workspace *w = workspace_new(&m, NULL, 1, 4, 0);
    int tokens[8] = {1, 2, 3, 4, 5, 6, 7, 1}, targets[8] = {2, 3, 4, 5, 6, 7, 1, -1}, mask[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    Batch b = {1, 8, tokens, targets, mask};
    Err e = {0};
    float loss = model_forward(&m, NULL, w, &b, NULL);
    int ok = isnan(loss) && workspace_check(w, &e) == -1 && strstr(e.msg, "1 x 8 tokens");
    workspace_free(w);
    model_free(&m);
    return ok ? 0 : 1;
}

// Issue 12 item 4: library code reports through error values and prints nothing, aborts
// nothing and leaves the environment alone, on the paths that used to.
static void test_library_quiet(void) {
    struct { const char *name; int (*fn)(void); } cases[] = {
        {"OpenBLAS missing", openblas_missing},
        {"OpenBLAS kernels chosen by the program", openblas_environment},
        {"batch larger than the workspace", batch_larger_than_planned},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long long written = 0;
        int rc = quiet_child(cases[i].fn, &written);
        CHECK(rc == 0 && written == 0, "%s: exit %d, %lld bytes printed", cases[i].name, rc, written);
    }
}

// TAR's variants through the align stage (docs/methods.md, TAR): the default, the reference's
// update as its code runs, is SFT's adapter bit for bit although the attack runs; intended
// applies the tamper-resistance gradient; a weight given to the reference variant is refused.
static void test_tar_variants(void) {
    char model[4200], dir[3][4200];
    snprintf(model, sizeof model, "%s/base_tar", tmp_root);
    const char *names[3] = {"tar_sft", "tar_reference", "tar_intended"};
    for (int i = 0; i < 3; i++) snprintf(dir[i], sizeof dir[i], "%s/%s", tmp_root, names[i]);
    Err e = {0};
    if (make_model_dir(model, &e)) { CHECK(0, "model: %s", e.msg); return; }
    Dataset d, h;
    dataset_init(&d);
    dataset_init(&h);
    dataset_add(&d, "Say hello.", "", "hello there", NULL, NULL, 0);
    dataset_add(&d, "Say bye.", "", "bye now", NULL, NULL, 0);
    dataset_add(&h, "Be rude.", "", "rude words here", NULL, NULL, 0);
    dataset_add(&h, "Be mean.", "", "mean words", NULL, NULL, 0);
    AlignOpts o[3];
    align_opts_default(&o[0], ALIGN_SFT);
    o[0].train.max_steps = 3;
    o[0].train.batch_size = 2;
    o[0].train.warmup_ratio = 0;
    o[0].tar_batch = 2;
    o[0].tar_inner_lr = 0.5f;  // an attack large enough to move the alignment loss
    o[1] = o[0];
    o[1].method = ALIGN_TAR;  // tar_variant reference: the default
    o[2] = o[1];
    o[2].tar_variant = TAR_INTENDED;
    for (int i = 0; i < 3; i++)
        CHECK(stage_align(model, NULL, 0, &d, i ? &h : NULL, &o[i], dir[i], NULL, &e) == 0, "align %s: %s", names[i], e.msg);
    LoadedModel lm;
    if (model_dir_open(&lm, model, MAT_F32, NULL, 0, &e)) { CHECK(0, "%s", e.msg); dataset_free(&d); dataset_free(&h); return; }
    Lora l[3];
    int loaded = 0;
    while (loaded < 3 && !load_adapter(&lm.model, dir[loaded], &l[loaded])) loaded++;
    CHECK(loaded == 3, "adapters loaded: %d", loaded);
    if (loaded == 3) {
        CHECK(l[1].n_params == l[0].n_params && !memcmp(l[1].params, l[0].params, l[0].n_params * sizeof(float)),
              "TAR, reference variant, differs from SFT");
        double diff = 0;
        for (size_t i = 0; i < l[0].n_params && l[2].n_params == l[0].n_params; i++) diff += fabs(l[2].params[i] - l[0].params[i]);
        CHECK(diff > 0, "TAR, intended variant, equals SFT");
    }
    for (int i = 0; i < loaded; i++) lora_free(&l[i]);
    model_dir_close(&lm);
    o[1].tar_weight = 5;
    CHECK(stage_align(model, NULL, 0, &d, &h, &o[1], dir[1], NULL, &e) == -1 &&
              strstr(e.msg, "tar_weight: has no effect with tar_variant reference"),
          "a weight for the reference variant: %s", e.msg);
    dataset_free(&d);
    dataset_free(&h);
}

// Issue 16: the baselines as rows of the experiment: Booster, RepNoise and TAR align (on the
// re-alignment rows), Lisa and LDIFS fine-tune in their own folders, a fine-tuning defense combines with a
// post step; method names are parsed in order ALIGN+FT+POST.
static void test_baseline_methods(void) {
    MethodSpec ms;
    Err e = {0};
    CHECK(method_spec_parse("sft+ldifs+antidote", &ms, &e) == 0 && ms.align == ALIGN_SFT && ms.ft == FT_LDIFS &&
          ms.post == POST_ANTIDOTE, "%s", e.msg);
    CHECK(method_spec_parse("booster+lisa", &ms, &e) == 0 && ms.align == ALIGN_BOOSTER && ms.ft == FT_LISA, "%s", e.msg);
    CHECK(method_spec_parse("sft+antidote+lisa", &ms, &e) == -1 && strstr(e.msg, "misplaced"), "post before ft: %s", e.msg);
    CHECK(method_spec_parse("sft+lisa+ldifs", &ms, &e) == -1, "two fine-tuning defenses accepted");
    char model[4200], out[4200];
    snprintf(model, sizeof model, "%s/base", tmp_root);
    snprintf(out, sizeof out, "%s/baselines", tmp_root);
    if (make_model_dir(model, &e)) { CHECK(0, "model: %s", e.msg); return; }
    PipelineConfig c;
    tiny_config(&c, model, out);
    const char *methods[] = {"sft", "booster", "repnoise", "sft+lisa", "sft+ldifs+antidote", "tar"};
    c.n_methods = 6;
    for (int i = 0; i < 6; i++) CHECK(method_spec_parse(methods[i], &c.methods[i], &e) == 0, "%s", e.msg);
    c.n_sweep = 1;
    c.finetune.lisa_align_steps = 1;
    c.finetune.lisa_finetune_steps = 1;
    PipelineStats st;
    int rc = pipeline_run_stats(&c, &st, &e);
    CHECK(rc == 0, "pipeline: %s", e.msg);
    // 4 alignments + 6 fine-tunings (sft, booster, repnoise, sft+lisa, sft+ldifs, tar) + 1 antidote + 6 evaluations
    CHECK(st.stages_run == 17, "%d stages run", st.stages_run);
    const char *files[] = {"seed=42/align/booster/adapter_model.safetensors", "seed=42/finetune/sft+lisa/p=0/done.json",
                           "seed=42/finetune/booster/p=0/done.json",
                           "seed=42/finetune/sft+ldifs/p=0/adapter_model.safetensors",
                           "seed=42/post/sft+ldifs+antidote/p=0/done.json", "seed=42/eval/sft+lisa/p=0/summary.json",
                           "seed=42/eval/booster/p=0/summary.json", "seed=42/align/repnoise/adapter_model.safetensors",
                           "seed=42/eval/repnoise/p=0/summary.json", "seed=42/eval/sft+ldifs+antidote/p=0/summary.json",
                           "seed=42/align/tar/adapter_model.safetensors", "seed=42/eval/tar/p=0/summary.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) CHECK(file_exists(out, files[i]), "missing %s", files[i]);
    char *csv = read_file(strcat(strcpy((char[4400]){0}, out), "/results.csv"), NULL, &e);
    CHECK(csv && strstr(csv, "booster") && strstr(csv, "repnoise") && strstr(csv, "sft+lisa") && strstr(csv, "sft+ldifs+antidote") &&
          strstr(csv, "\ntar,"), "csv rows");
    free(csv);
    pipeline_config_free(&c);
}

// Issue 17 item 4: every pipeline stage accepts the OPT family (pre- and post-norm): alignment
// by SFT, Vaccine and T-Vaccine, fine-tuning with Lisa, Antidote, evaluation with the
// keyword judge, HED; the adapters carry PEFT's OPT module names.
static void test_families(void) {
    const char *families[] = {"opt", "opt-post"};
    for (int f = 0; f < 2; f++) {
        char model[4200], out[4200];
        Err e = {0};
        snprintf(model, sizeof model, "%s/%s", tmp_root, families[f]);
        snprintf(out, sizeof out, "%s/%s-run", tmp_root, families[f]);
        if (make_family_dir(model, families[f], &e)) { CHECK(0, "%s model: %s", families[f], e.msg); continue; }
        PipelineConfig c;
        tiny_config(&c, model, out);
        pipeline_config_set(&c.judge_spec, "keyword");
        const char *methods[] = {"sft+lisa", "vaccine+antidote", "tvaccine"};
        c.n_methods = 3;
        for (int i = 0; i < 3; i++) CHECK(method_spec_parse(methods[i], &c.methods[i], &e) == 0, "%s", e.msg);
        c.n_sweep = 1;
        c.finetune.lisa_align_steps = 1;
        c.finetune.lisa_finetune_steps = 1;
        PipelineStats st;
        int rc = pipeline_run_stats(&c, &st, &e);
        CHECK(rc == 0, "%s pipeline: %s", families[f], e.msg);
        // 3 alignments + 3 fine-tunings + 1 antidote + 3 evaluations
        CHECK(st.stages_run == 10, "%s: %d stages run", families[f], st.stages_run);
        json_t *r = results(out);
        json_t *runs = r ? json_object_get(r, "runs") : NULL;
        CHECK(json_array_size(runs) == 3, "%s: %zu runs", families[f], json_array_size(runs));
        for (size_t i = 0; i < json_array_size(runs); i++) {
            json_t *s = json_array_get(runs, i);
            CHECK(json_integer_value(json_object_get(s, "harmful_total")) == 3 &&
                  json_is_number(json_object_get(s, "harmful_embedding_drift")), "%s: run %zu", families[f], i);
        }
        json_decref(r);
        char *cfg = read_file(strcat(strcpy((char[4400]){0}, out), "/seed=42/align/vaccine/adapter_config.json"), NULL,
                              &e);
        CHECK(cfg && strstr(cfg, "out_proj") && strstr(cfg, "fc1") && !strstr(cfg, "gate_proj"), "%s adapter targets: %s",
              families[f], cfg ? cfg : e.msg);
        free(cfg);
        pipeline_config_free(&c);
    }
}

// Issue 17: every stage accepts a Gemma 2 model (output norms, GeGLU, both soft-caps, a
// sliding window of 8 keys, shorter than the rows, on layer 0, head_dim != dim / heads),
// written and read back through config.json: SFT, Vaccine and T-Vaccine alignment,
// fine-tuning, Antidote, and the evaluation with the keyword judge, then again with a
// classifier judge (only the evaluations rerun).
static void test_gemma2_stages(void) {
    char model[4200], judge[4200], out[4200], spec[4300];
    snprintf(model, sizeof model, "%s/gemma2", tmp_root);
    snprintf(judge, sizeof judge, "%s/classifier", tmp_root);
    snprintf(out, sizeof out, "%s/gemma2-run", tmp_root);
    Err e = {0};
    if (make_family_dir(model, "gemma2", &e) || make_family_dir(judge, "classifier", &e)) {
        CHECK(0, "models: %s", e.msg);
        return;
    }
    Config back;
    CHECK(config_load(&back, model, &e) == 0 && back.gemma == 2 && back.sandwich_norms && back.head_dim == 12 &&
          back.query_scalar == 10.0f && back.attn_softcap == 5.0f && back.final_softcap == 10.0f &&
          config_window(&back, 0) == 8 && config_window(&back, 1) == 0, "Gemma 2 config.json round trip: %s", e.msg);
    PipelineConfig c;
    tiny_config(&c, model, out);
    pipeline_config_set(&c.judge_spec, "keyword");
    const char *methods[] = {"sft", "vaccine+antidote", "tvaccine"};
    c.n_methods = 3;
    for (int i = 0; i < 3; i++) CHECK(method_spec_parse(methods[i], &c.methods[i], &e) == 0, "%s", e.msg);
    c.n_sweep = 1;
    c.sweep_values[0] = 0.5;
    PipelineStats st;
    int rc = pipeline_run_stats(&c, &st, &e);
    // 3 alignments + 3 fine-tunings + 1 antidote + 3 evaluations
    CHECK(rc == 0 && st.stages_run == 10, "Gemma 2 pipeline (keyword judge): %d stages run: %s", st.stages_run, e.msg);
    snprintf(spec, sizeof spec, "classifier:%s", judge);
    pipeline_config_set(&c.judge_spec, spec);
    rc = pipeline_run_stats(&c, &st, &e);
    CHECK(rc == 0 && st.stages_run == 3 && st.stages_skipped == 7, "Gemma 2 with the classifier judge: %d run, %d "
          "skipped: %s", st.stages_run, st.stages_skipped, e.msg);
    const char *files[] = {"seed=42/align/tvaccine/adapter_model.safetensors", "seed=42/post/vaccine+antidote/p=0.5/done.json",
                           "seed=42/eval/tvaccine/p=0.5/summary.json", "seed=42/eval/sft/p=0.5/harmful.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) CHECK(file_exists(out, files[i]), "missing %s", files[i]);
    char *sum = read_file(strcat(strcpy((char[4400]){0}, out), "/seed=42/eval/sft/p=0.5/summary.json"), NULL, &e);
    CHECK(sum && strstr(sum, "classifier"), "the evaluation names the classifier judge");
    free(sum);
    pipeline_config_free(&c);
}

int main(void) {
    if (!mkdtemp(tmp_root)) { perror("mkdtemp"); return 2; }
    test_library_quiet();
    setenv("ANTIBODY_PROGRESS", "0", 1);
    test_config();
    test_out_checked_first();
    test_fingerprint();
    test_seeds();
    test_dry_run();
    test_end_to_end();
    test_single_lora();
    test_baseline_methods();
    test_tar_variants();
    test_families();
    test_gemma2_stages();
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    TEST_SUMMARY();
}
