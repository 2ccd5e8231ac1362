// The experiment runner (issue 4 item 6; docs/methods.md, Stages, Harmful fine-tuning, Evaluation; docs/data.md, Train/eval overlap). Layout under output/,
// the runs of each seed s in their own folder (docs/statistics.md):
//   seed=<s>/align/<align>/                  alignment adapter + done.json (shared by every method using it)
//   seed=<s>/finetune/<align>/<sweep>=<v>/   fine-tuning adapter + done.json
//   seed=<s>/post/<method>/<sweep>=<v>/      pruned adapter (or model, full mode) + done.json
//   seed=<s>/eval/<method>/<sweep>=<v>/      harmful.jsonl, task.jsonl, summary.json, done.json
//   world/                                   the generated world's splits (world mode)
//   results.{md,csv}, results_table.json, hs.svg, fa.svg, results.json
#include "pipeline/pipeline.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "data/load.h"
#include "data/source.h"
#include "data/mix.h"
#include "data/tasks.h"
#include "kernels/kernels.h"
#include "pipeline/judges.h"
#include "eval/report.h"
#include "util/atomic.h"
#include "io/dir_lock.h"
#include "io/provenance.h"
#include "pipeline/fingerprint.h"
#include "io/model_dir.h"
#include "io/outputs.h"
#include "pipeline/stages.h"
#include "util/log.h"
#include "util/progress.h"
#include "world/base_model.h"

typedef struct {
    Dataset align, harmful, realign, task_train, task_test, eval_harmful, align_eval;
    TaskKind task;
    int overlap_harmful, overlap_realign, overlap_align;  // rows sharing a prompt with the HS prompts
    int dropped;                                          // rows dropped for that (drop_overlap)
} Data;

static void data_free_all(Data *d) {
    dataset_free(&d->align);
    dataset_free(&d->harmful);
    dataset_free(&d->realign);
    dataset_free(&d->task_train);
    dataset_free(&d->task_test);
    dataset_free(&d->eval_harmful);
    dataset_free(&d->align_eval);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void copy_into(Dataset *dst, const Dataset *src) {
    dataset_init(dst);
    for (int i = 0; i < src->n; i++) dataset_add_sample(dst, &src->rows[i]);
}

static void take_head(Dataset *d, int n) {
    if (n < 0 || n >= d->n) return;
    Dataset h;
    dataset_init(&h);
    data_head(d, n, &h);
    dataset_free(d);
    *d = h;
}

static int drop_overlapping(Dataset *train, const Dataset *eval) {
    Dataset kept;
    dataset_init(&kept);
    int dropped = data_drop_overlap(train, eval, &kept);
    dataset_free(train);
    *train = kept;
    return dropped;
}

// The data sets of the run; world mode generates the world and, with write_world, writes its
// splits to OUTPUT/world (a dry run writes nothing).
static int load_data(const PipelineConfig *c, int write_world, Data *d, Err *e) {
    memset(d, 0, sizeof *d);
    dataset_init(&d->align);
    dataset_init(&d->harmful);
    dataset_init(&d->realign);
    dataset_init(&d->task_train);
    dataset_init(&d->task_test);
    dataset_init(&d->eval_harmful);
    dataset_init(&d->align_eval);
    if (c->use_world) {
        World w;
        if (world_generate(&c->world, &w, e)) return -1;
        if (write_world) {
            char *dir = xasprintf("%s/world", c->output);
            int rc = world_write(&w, dir, e);
            free(dir);
            if (rc) { world_free(&w); return -1; }
        }
        const Dataset *tr = &w.sst_train, *te = &w.sst_test;
        d->task = c->task;
        if (c->task == TASK_AGNEWS) { tr = &w.topic_train; te = &w.topic_test; }
        if (c->task == TASK_GSM8K) { tr = &w.math_train; te = &w.math_test; }
        copy_into(&d->align, &w.align);
        copy_into(&d->harmful, &w.harmful);
        copy_into(&d->realign, &w.realign);
        copy_into(&d->task_train, tr);
        copy_into(&d->task_test, te);
        copy_into(&d->eval_harmful, &w.test_harmful);
        world_free(&w);
    } else {
        d->task = c->task;
        Dataset *dst[ROLE_COUNT] = {&d->align, &d->harmful, &d->realign, &d->task_train, &d->task_test, &d->eval_harmful};
        for (int r = 0; r < ROLE_COUNT; r++)
            if (c->data[r].path && data_source_load(&c->data[r], (DataRole)r, c->task, dst[r], e)) {
                data_free_all(d);
                return -1;
            }
    }
    // the GSM8K questions as the preset's scripts build them (docs/methods.md, Presets)
    if (d->task == TASK_GSM8K && !c->finetune.gsm8k_suffix) gsm8k_drop_question_suffix(&d->task_train);
    if (d->task == TASK_GSM8K && !c->eval.gsm8k_suffix) gsm8k_drop_question_suffix(&d->task_test);
    take_head(&d->eval_harmful, c->eval.n_harmful);
    take_head(&d->task_test, c->eval.n_task);
    // docs/data.md, Train/eval overlap: report train/eval prompt overlap; drop it only when asked.
    d->overlap_harmful = data_overlap(&d->harmful, &d->eval_harmful);
    d->overlap_realign = data_overlap(&d->realign, &d->eval_harmful);
    d->overlap_align = data_overlap(&d->align, &d->eval_harmful);
    if (c->exclude_overlap) {
        d->dropped = drop_overlapping(&d->harmful, &d->eval_harmful) + drop_overlapping(&d->realign, &d->eval_harmful) +
                     drop_overlapping(&d->align, &d->eval_harmful);
    }
    data_head(&d->align, c->eval.n_align, &d->align_eval);
    return 0;
}

// ---- stage bookkeeping -------------------------------------------------------------------

typedef struct {
    const PipelineConfig *c;
    PipelineStats st;
    int index, total;
    double t0;
    char base[65];  // content hash of the base model (every stage's input)
    PipelinePlan *plan;  // a dry run: each stage is recorded in the plan, none runs
} Runner;

static int is_done(const char *dir) {
    char *p = xasprintf("%s/done.json", dir);
    struct stat s;
    int done = stat(p, &s) == 0;
    free(p);
    return done;
}

static int mark_done(const char *dir, json_t *info, Err *e) {
    char *text = json_dumps(info, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int rc = write_file_in(dir, "done.json", text, strlen(text), e);
    free(text);
    return rc;
}

// Announces a stage with its fingerprint fp (taken); returns 1 when it is done already with
// the same fingerprint (counted as skipped). A stage whose settings or inputs changed loses
// its earlier outputs and checkpoint and runs again, saying what changed (docs/pipeline.md,
// "Fingerprints"); its own fingerprint then changes the inputs of every stage downstream.
static int stage_begin(Runner *r, const char *what, const char *dir, json_t *fp, int trains, Err *e) {
    if (r->c->interrupt && *r->c->interrupt) { json_decref(fp); return err_set(e, "interrupted before %s", what); }
    r->index++;
    char why[700], *ck = xasprintf("%s.checkpoint", dir);
    int rc = fp_claim(dir, trains ? ck : NULL, fp, 1, why, sizeof why, e);
    free(ck);
    json_decref(fp);
    if (rc < 0) return -1;
    if (rc == 0 && is_done(dir)) {
        r->st.stages_skipped++;
        log_msg(LOG_INFO, "pipeline [%d/%d] %s: done already with these settings and inputs (%s), skipped", r->index,
                r->total, what, dir);
        return 1;
    }
    if (rc == 1) log_msg(LOG_INFO, "pipeline [%d/%d] %s: runs again: %s (%s)", r->index, r->total, what, why, dir);
    else log_msg(LOG_INFO, "pipeline [%d/%d] %s: started (%s)", r->index, r->total, what, dir);
    r->t0 = now_s();
    return 0;
}

// The fingerprint recorded by the stage in dir ("" when none): a downstream stage's input.
static void recorded_fp(const char *dir, char out[65]) {
    json_t *f = fp_read(dir);
    snprintf(out, 65, "%s", f && fp_hex(f) ? fp_hex(f) : "");
    json_decref(f);
}

// The fingerprint of the upstream stage in dir as the stages after it see it: the recorded
// one, or in a dry run the one it would record.
static void upstream_fp(const Runner *r, const char *dir, char out[65]) {
    if (r->plan) plan_stage_fp(r->plan, dir, out);
    else recorded_fp(dir, out);
}

static int stage_end(Runner *r, const char *what, const char *dir, json_t *info, Err *e) {
    double dt = now_s() - r->t0;
    json_object_set_new(info, "stage", json_string(what));
    json_object_set_new(info, "seconds", json_real(dt));
    int rc = mark_done(dir, info, e);
    json_decref(info);
    if (rc) return -1;
    r->st.stages_run++;
    char buf[32];
    progress_format_duration(dt, buf, sizeof buf);
    log_msg(LOG_INFO, "pipeline [%d/%d] %s: finished in %s\n", r->index, r->total, what, buf);
    return 0;
}

static json_t *report_json(const StageReport *rep) {
    json_t *o = json_object();
    json_object_set_new(o, "steps", json_integer(rep->log.steps));
    json_object_set_new(o, "first_loss", json_real(rep->log.first_loss));
    json_object_set_new(o, "final_loss", json_real(rep->log.final_loss));
    json_object_set_new(o, "train_seconds", json_real(rep->log.seconds));
    json_object_set_new(o, "peak_rss_bytes", json_integer((json_int_t)rep->peak_rss_bytes));
    return o;
}

static void sweep_label(const PipelineConfig *c, int k, char *buf, size_t cap) {
    snprintf(buf, cap, "%s=%g", sweep_name(c->sweep), c->sweep_values[k]);
}

// ---- the run -------------------------------------------------------------------------------

// The stages' folders under the output folder (allocated: paths of any length).
static char *align_dir(const PipelineConfig *c, AlignMethod a) {
    return xasprintf("%s/align/%s", c->output, align_method_name(a));
}
static char *finetune_dir(const PipelineConfig *c, AlignMethod a, FtDefense ft, const char *sw) {
    char key[80];
    method_finetune_key(a, ft, key, sizeof key);
    return xasprintf("%s/finetune/%s/%s", c->output, key, sw);
}
static char *post_dir(const PipelineConfig *c, const MethodSpec *m, const char *sw) {
    return xasprintf("%s/post/%s/%s", c->output, m->name, sw);
}

static int align_in(Runner *r, const Data *d, AlignMethod a, const char *dir, Err *e) {
    const PipelineConfig *c = r->c;
    int b;
    char what[128];
    snprintf(what, sizeof what, "align %s seed=%llu", align_method_name(a), (unsigned long long)c->seeds[0]);
    if (!d->align.n) return err_set(e, "alignment %s: the alignment set is empty", align_method_name(a));
    AlignOpts o = c->align[a];
    o.train.interrupt = c->interrupt;
    json_t *fp = fp_align(r->base, "", &d->align, &d->realign, &o);
    if (r->plan) return plan_add(r->plan, PLAN_ALIGN, what, dir, fp, &d->align, &o.train, plan_passes(&o), 0, e);
    if ((b = stage_begin(r, what, dir, fp, 1, e))) return b > 0 ? 0 : -1;
    StageReport rep;
    memset(&rep, 0, sizeof rep);
    if (stage_align(c->base_model, NULL, 0, &d->align, &d->realign, &o, dir, &rep, e)) return -1;
    json_t *info = report_json(&rep);
    train_log_free(&rep.log);
    return stage_end(r, what, dir, info, e);
}

static int run_align(Runner *r, const Data *d, AlignMethod a, Err *e) {
    char *dir = align_dir(r->c, a);
    int rc = align_in(r, d, a, dir, e);
    free(dir);
    return rc;
}

// ad: the alignment's folder (its adapter is the fine-tuning's starting point).
static int finetune_in(Runner *r, const Data *d, AlignMethod a, FtDefense ftd, int k, const char *sw, const char *dir,
                       const char *ad, Err *e) {
    const PipelineConfig *c = r->c;
    int b;
    char what[200], key[80];
    method_finetune_key(a, ftd, key, sizeof key);
    snprintf(what, sizeof what, "finetune %s %s seed=%llu", key, sw, (unsigned long long)c->seeds[0]);
    FinetuneOpts o;
    pipeline_finetune_opts(c, k, &o);
    o.defense = ftd;
    o.train.interrupt = c->interrupt;
    if (a == ALIGN_NONE) o.single_lora = 0;  // no alignment adapter to train on: a fresh one
    const Dataset *guide = ftd == FT_LISA ? &d->align : NULL;
    int n = o.n;
    double p = o.p;
    Dataset mix;
    dataset_init(&mix);
    if (data_mix(&d->task_train, &d->harmful, n, p, o.mix_seed, &mix, e)) { dataset_free(&mix); return -1; }
    char up[65] = "";
    if (a != ALIGN_NONE) upstream_fp(r, ad, up);
    json_t *fp = fp_finetune(r->base, up, &mix, guide, &o);
    if (r->plan) {
        int rc = plan_add(r->plan, PLAN_FINETUNE, what, dir, fp, &mix, &o.train, 1, 0, e);
        dataset_free(&mix);
        return rc;
    }
    if ((b = stage_begin(r, what, dir, fp, 1, e))) {
        dataset_free(&mix);
        return b > 0 ? 0 : -1;
    }
    StageReport rep;
    memset(&rep, 0, sizeof rep);
    int rc = stage_finetune(c->base_model, a != ALIGN_NONE ? ad : NULL, &mix, guide, &o, dir, &rep, e);
    int n_harm = 0;
    for (int i = 0; i < mix.n; i++) n_harm += mix.rows[i].harmful;
    dataset_free(&mix);
    if (rc) return -1;
    json_t *info = report_json(&rep);
    train_log_free(&rep.log);
    json_object_set_new(info, "n", json_integer(n));
    json_object_set_new(info, "p", json_real(p));
    json_object_set_new(info, "harmful_rows", json_integer(n_harm));
    json_object_set_new(info, "lr", json_real(o.train.lr));
    json_object_set_new(info, "epochs", json_integer(o.train.epochs));
    return stage_end(r, what, dir, info, e);
}

static int run_finetune(Runner *r, const Data *d, AlignMethod a, FtDefense ftd, int k, Err *e) {
    char sw[64];
    sweep_label(r->c, k, sw, sizeof sw);
    char *dir = finetune_dir(r->c, a, ftd, sw), *ad = align_dir(r->c, a);
    int rc = finetune_in(r, d, a, ftd, k, sw, dir, ad, e);
    free(dir);
    free(ad);
    return rc;
}

// ad, ft: the folders of the alignment and of the fine-tuning it prunes.
static int post_in(Runner *r, const Data *d, const MethodSpec *m, const char *sw, const char *dir, const char *ad,
                   const char *ft, Err *e) {
    const PipelineConfig *c = r->c;
    int b;
    char what[160];
    snprintf(what, sizeof what, "%s %s %s seed=%llu", m->post == POST_ANTIDOTE ? "antidote" : "random-prune", m->name, sw,
             (unsigned long long)c->seeds[0]);
    if (!d->realign.n) return err_set(e, "%s: the re-alignment set is empty", m->name);
    AntidoteOpts o = c->antidote;
    o.score = m->post == POST_RANDOM_PRUNE ? PRUNE_RANDOM : PRUNE_WANDA;
    char up_a[65] = "", up_f[65];
    if (m->align != ALIGN_NONE) upstream_fp(r, ad, up_a);
    upstream_fp(r, ft, up_f);
    json_t *fp = fp_antidote(r->base, up_a, up_f, &d->realign, &o);
    if (r->plan)
        return plan_add(r->plan, PLAN_POST, what, dir, fp, NULL, NULL, 0,
                        d->realign.n < o.n_samples ? d->realign.n : o.n_samples, e);
    if ((b = stage_begin(r, what, dir, fp, 0, e)))
        return b > 0 ? 0 : -1;
    if (mkdir_p(dir, e)) return -1;
    // single LoRA: the fine-tuning adapter holds the alignment, nothing is merged under it
    int merge_align = m->align != ALIGN_NONE && !c->finetune.single_lora;
    if (stage_antidote(c->base_model, merge_align ? ad : NULL, ft, &d->realign, &o, dir, e)) return -1;
    json_t *info = json_object();
    json_object_set_new(info, "dense_ratio", json_real(o.dense_ratio));
    json_object_set_new(info, "score", json_string(o.score == PRUNE_RANDOM ? "random" : "wanda"));
    json_object_set_new(info, "full_mode", json_boolean(o.full_mode));
    return stage_end(r, what, dir, info, e);
}

static int run_post(Runner *r, const Data *d, const MethodSpec *m, int k, Err *e) {
    char sw[64];
    sweep_label(r->c, k, sw, sizeof sw);
    char *dir = post_dir(r->c, m, sw), *ad = align_dir(r->c, m->align), *ft = finetune_dir(r->c, m->align, m->ft, sw);
    int rc = post_in(r, d, m, sw, dir, ad, ft, e);
    free(dir);
    free(ad);
    free(ft);
    return rc;
}

static char *summary_extras(const PipelineConfig *c, const Data *d, const MethodSpec *m, int k) {
    json_t *o = json_object();
    json_object_set_new(o, "method", json_string(m->name));
    json_object_set_new(o, "sweep", json_string(sweep_name(c->sweep)));
    json_object_set_new(o, "sweep_value", json_real(c->sweep_values[k]));
    json_object_set_new(o, "seed", json_integer((json_int_t)c->seeds[0]));
    json_object_set_new(o, "drop_overlap", json_boolean(c->exclude_overlap));
    json_object_set_new(o, "overlap_harmful_rows", json_integer(d->overlap_harmful));
    json_object_set_new(o, "overlap_realign_rows", json_integer(d->overlap_realign));
    json_object_set_new(o, "overlap_alignment_rows", json_integer(d->overlap_align));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

// ad: the alignment's folder; ft: the fine-tuning's (or the post-fine-tuning step's) folder.
static int eval_in(Runner *r, const Data *d, const MethodSpec *m, int k, const char *sw, const char *dir, const char *ad,
                   const char *ft, Judge *judge, Err *e) {
    const PipelineConfig *c = r->c;
    int b;
    char what[160];
    snprintf(what, sizeof what, "eval %s %s seed=%llu", m->name, sw, (unsigned long long)c->seeds[0]);
    char up_a[65] = "", up_f[65];
    if (m->align != ALIGN_NONE) upstream_fp(r, ad, up_a);
    upstream_fp(r, ft, up_f);
    json_t *ex = json_object();
    json_object_set_new(ex, "judge", json_string(c->judge_spec));
    json_object_set_new(ex, "hed", json_boolean(c->eval.hed_enabled));
    json_object_set_new(ex, "full_mode", json_boolean(m->post != POST_NONE && c->antidote.full_mode));
    json_object_set_new(ex, "weights", json_string(c->finetune.weights == MAT_BF16 ? "bf16" : "f32"));
    json_t *fp = fp_eval(r->base, up_a, up_f, &d->eval_harmful, &d->task_test, d->align_eval.n ? &d->align_eval : NULL,
                         &c->eval.opts, ex);
    if (r->plan) return plan_add(r->plan, PLAN_EVAL, what, dir, fp, NULL, NULL, 0, d->eval_harmful.n + d->task_test.n, e);
    if ((b = stage_begin(r, what, dir, fp, 0, e))) return b > 0 ? 0 : -1;
    const char *ads[1] = {ad}, *both[2] = {ad, ft};
    // single LoRA: the fine-tuned adapter continues the alignment adapter, so it is the one
    // adapter merged (docs/methods.md, Harmful fine-tuning)
    int merge_align = m->align != ALIGN_NONE && !c->finetune.single_lora;
    EvalJob j = {.model_dir = c->base_model, .adapters = ads, .n_adapters = merge_align, .ft_adapter = ft,
                 .weights = c->finetune.weights, .harmful = &d->eval_harmful, .judge = judge,
                 .task = d->task == TASK_ALPACA ? NULL : &d->task_test,  // no FA rule for Alpaca
                 .task_kind = d->task, .align = d->align_eval.n ? &d->align_eval : NULL,
                 .opts = c->eval.opts, .out_dir = dir, .overwrite = 1,  // not done: its files are leftovers
                 .model_sha256 = r->base};
    if (m->post != POST_NONE && c->antidote.full_mode) {  // the pruned merged model stands alone
        j.model_dir = ft;
        j.n_adapters = 0;
        j.ft_adapter = NULL;
    }
    if (c->eval.hed_enabled && j.ft_adapter && c->finetune.single_lora && m->align != ALIGN_NONE)
        log_msg(LOG_WARN, "%s: no HED with single_lora: the fine-tuned adapter replaces the alignment adapter "
                "instead of adding to it, so the drift from the aligned model is not computed", what);
    if ((!c->eval.hed_enabled || (c->finetune.single_lora && m->align != ALIGN_NONE)) && j.ft_adapter) {
        // No HED: merge the adapter up front, alignment loss still computed.
        j.adapters = merge_align ? both : both + 1;
        j.n_adapters = merge_align ? 2 : 1;
        j.ft_adapter = NULL;
    }
    char label[200];
    snprintf(label, sizeof label, "%s", what);
    j.opts.label = label;
    char *extra = summary_extras(c, d, m, k);
    j.extra_json = extra;
    EvalSummary s;
    int rc = eval_job_run(&j, &s, e);
    free(extra);
    if (rc) return -1;
    if (s.has_fa) log_msg(LOG_INFO, "pipeline: %s: HS %.1f  FA %.1f", what, s.hs.score, s.fa.accuracy);
    else log_msg(LOG_INFO, "pipeline: %s: HS %.1f  (no FA for %s)", what, s.hs.score, task_name(d->task));
    json_t *info = json_object();
    json_object_set_new(info, "harmful_score", json_real(s.hs.score));
    if (s.has_fa) json_object_set_new(info, "finetune_accuracy", json_real(s.fa.accuracy));
    return stage_end(r, what, dir, info, e);
}

static int run_eval(Runner *r, const Data *d, const MethodSpec *m, int k, Judge *judge, Err *e) {
    const PipelineConfig *c = r->c;
    char sw[64];
    sweep_label(c, k, sw, sizeof sw);
    char *dir = xasprintf("%s/eval/%s/%s", c->output, m->name, sw), *ad = align_dir(c, m->align),
         *ft = m->post != POST_NONE ? post_dir(c, m, sw) : finetune_dir(c, m->align, m->ft, sw);
    int rc = eval_in(r, d, m, k, sw, dir, ad, ft, judge, e);
    free(dir);
    free(ad);
    free(ft);
    return rc;
}

// The folder of the runs of seed s (malloc'd).
static char *seed_dir(const PipelineConfig *c, uint64_t s) {
    return xasprintf("%s/seed=%llu", c->output, (unsigned long long)s);
}

// Reads seed=<s>/eval/<method>/<sweep>/summary.json (written by this run or an earlier one).
static json_t *read_summary(const PipelineConfig *c, uint64_t seed, const MethodSpec *m, int k, Err *e) {
    char sw[64];
    sweep_label(c, k, sw, sizeof sw);
    char *p = xasprintf("%s/seed=%llu/eval/%s/%s/summary.json", c->output, (unsigned long long)seed, m->name, sw);
    json_error_t je;
    json_t *o = json_load_file(p, 0, &je);
    if (!o) err_set(e, "%s: %s", p, je.text);
    free(p);
    return o;
}

// The fine-tuning's record (done.json) behind method m's results of seed s, or NULL.
static json_t *read_finetune_record(const PipelineConfig *c, uint64_t seed, const MethodSpec *m, int k) {
    char sw[64];
    sweep_label(c, k, sw, sizeof sw);
    char key[80];
    method_finetune_key(m->align, m->ft, key, sizeof key);
    char *p = xasprintf("%s/seed=%llu/finetune/%s/%s/done.json", c->output, (unsigned long long)seed, key, sw);
    json_error_t je;
    json_t *o = json_load_file(p, 0, &je);
    free(p);
    return o;
}

static int plot_hs(const Table *t, const char *path, Err *e) { return table_plot_svg(t, "HS", path, e); }
static int plot_fa(const Table *t, const char *path, Err *e) { return table_plot_svg(t, "FA", path, e); }

// Writes one of the results files OUT/name with write (table_write_markdown, ...).
static int write_table_file(const PipelineConfig *c, const Table *t, const char *name,
                            int (*write)(const Table *, const char *, Err *), Err *e) {
    char *p = xasprintf("%s/%s", c->output, name);
    int rc = write(t, p, e);
    free(p);
    return rc;
}

// What a re-run reproduces (docs/statistics.md), recorded with the results.
static const char DETERMINISM[] =
    "bit-identical on a re-run with the same binary, the same CPU type and the same thread count; not across CPUs "
    "whose kernels differ (e.g. AVX-512 vs AVX2) or across thread counts, where float rounding differs and training "
    "amplifies it: compare such runs through the spread over seeds";

// Version, commit, BLAS, threads, ISA, CPU, date and the content hash of every data set and
// of the base model the run used.
static json_t *data_provenance(const PipelineConfig *c, const Data *d) {
    json_t *p = provenance_new(), *in = json_object();
    const Dataset *sets[] = {&d->align, &d->harmful, &d->realign, &d->task_train, &d->task_test, &d->eval_harmful};
    static const char *const names[] = {"alignment", "harmful", "realign", "task_train", "task_test", "eval_harmful"};
    char hex[65];
    for (int i = 0; i < 6; i++)
        if (sets[i]->n) { dataset_sha256(sets[i], hex); json_object_set_new(in, names[i], json_string(hex)); }
    if (c->base_model && !folder_sha256(c->base_model, hex, &(Err){0}))
        json_object_set_new(in, "base_model", json_string(hex));
    json_object_set_new(p, "inputs", in);
    return p;
}

// Every run's summary (seed by seed) into the table and into runs, with its fine-tuning's loss.
static int collect_runs(const PipelineConfig *c, Table *t, json_t *runs, Err *e) {
    static const char *const keys[][2] = {{"harmful_score", "HS"}, {"finetune_accuracy", "FA"},
                                           {"alignment_loss", "align_loss"}, {"harmful_embedding_drift", "HED"}};
    static const char *const losses[][2] = {{"first_loss", "ft_first_loss"}, {"final_loss", "ft_final_loss"}};
    for (int mi = 0; mi < c->n_methods; mi++)
        for (int k = 0; k < c->n_sweep; k++)
            for (int si = 0; si < c->n_seeds; si++) {
                uint64_t seed = c->seeds[si];
                json_t *s = read_summary(c, seed, &c->methods[mi], k, e);
                if (!s) return -1;
                for (int q = 0; q < 4; q++) {
                    json_t *v = json_object_get(s, keys[q][0]);
                    if (json_is_number(v)) table_set(t, c->methods[mi].name, seed, k, keys[q][1], json_number_value(v));
                }
                // the fine-tuning stage's loss (first step, mean of the last 10% of steps): a run that
                // did not learn shows here, next to its scores
                json_t *ft = read_finetune_record(c, seed, &c->methods[mi], k);
                for (int q = 0; q < 2; q++) {
                    json_t *v = ft ? json_object_get(ft, losses[q][0]) : NULL;
                    if (!json_is_number(v)) continue;
                    table_set(t, c->methods[mi].name, seed, k, losses[q][1], json_number_value(v));
                    json_object_set(s, losses[q][1], v);
                }
                json_decref(ft);
                json_array_append_new(runs, s);
            }
    return 0;
}

// results.json: the experiment, the aggregate table, provenance and every run.
static json_t *results_json(const Runner *r, const Data *d, const Table *t, json_t *runs) {
    const PipelineConfig *c = r->c;
    json_t *o = json_object();
    json_object_set_new(o, "base_model", json_string(c->base_model));
    json_object_set_new(o, "task", json_string(task_name(d->task)));
    json_object_set_new(o, "judge", json_string(c->judge_spec));
    json_object_set_new(o, "sweep", json_string(sweep_name(c->sweep)));
    json_t *vals = json_array();
    for (int k = 0; k < c->n_sweep; k++) json_array_append_new(vals, json_real(c->sweep_values[k]));
    json_object_set_new(o, "sweep_values", vals);
    json_t *ms = json_array();
    for (int mi = 0; mi < c->n_methods; mi++) json_array_append_new(ms, json_string(c->methods[mi].name));
    json_object_set_new(o, "methods", ms);
    json_t *seeds = json_array();
    for (int si = 0; si < c->n_seeds; si++) json_array_append_new(seeds, json_integer((json_int_t)c->seeds[si]));
    json_object_set_new(o, "seeds", seeds);
    json_object_set_new(o, "world", json_boolean(c->use_world));
    json_object_set_new(o, "drop_overlap", json_boolean(c->exclude_overlap));
    json_object_set_new(o, "overlap_harmful_rows", json_integer(d->overlap_harmful));
    json_object_set_new(o, "overlap_realign_rows", json_integer(d->overlap_realign));
    json_object_set_new(o, "overlap_alignment_rows", json_integer(d->overlap_align));
    json_object_set_new(o, "rows_dropped_for_overlap", json_integer(d->dropped));
    json_object_set_new(o, "stages_run", json_integer(r->st.stages_run));
    json_object_set_new(o, "stages_skipped", json_integer(r->st.stages_skipped));
    char *agg = table_json(t);
    json_object_set_new(o, "aggregate", json_loads(agg, 0, NULL));
    free(agg);
    json_object_set_new(o, "determinism", json_string(DETERMINISM));
    json_object_set_new(o, "provenance", data_provenance(c, d));
    json_object_set_new(o, "runs", json_incref(runs));
    return o;
}

static int write_results(Runner *r, const Data *d, Err *e) {
    const PipelineConfig *c = r->c;
    char title[256];
    snprintf(title, sizeof title, "Harmful score (HS) and fine-tune accuracy (FA), task %s", task_name(d->task));
    Table *t = table_new(title, sweep_name(c->sweep), c->n_sweep, c->sweep_values, c->n_seeds, c->seeds);
    char note[512];
    snprintf(note, sizeof note,
             "Judge: %s. Train/eval prompt overlap: %d harmful fine-tuning rows, %d re-alignment rows, %d alignment "
             "rows; %s.",
             c->judge_spec, d->overlap_harmful, d->overlap_realign, d->overlap_align,
             c->exclude_overlap ? "overlapping rows dropped" : "kept (paper setting)");
    table_set_note(t, note);
    json_t *runs = json_array();
    int rc = collect_runs(c, t, runs, e);
    // every defense against SFT, seed by seed (not "none": no alignment is not a defense)
    for (int mi = 0; mi < c->n_methods; mi++)
        if (!strcmp(c->methods[mi].name, "sft"))
            for (int j = 0; j < c->n_methods; j++)
                if (strcmp(c->methods[j].name, "sft") && strcmp(c->methods[j].name, "none"))
                    table_compare(t, c->methods[j].name, "sft");
    if (!rc) rc = write_table_file(c, t, "results.md", table_write_markdown, e);
    if (!rc) rc = write_table_file(c, t, "results.csv", table_write_csv, e);
    if (!rc) rc = write_table_file(c, t, "results_table.json", table_write_json, e);
    if (!rc) rc = write_table_file(c, t, "hs.svg", plot_hs, e);
    if (!rc) rc = write_table_file(c, t, "fa.svg", plot_fa, e);
    if (!rc) {
        char *shown = table_text(t);
        log_msg(LOG_RESULT, "%s", shown);
        free(shown);
        json_t *o = results_json(r, d, t, runs);
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(o);
        rc = write_file_in(c->output, "results.json", text, strlen(text), e);
        free(text);
    }
    json_decref(runs);
    table_free(t);
    return rc;
}

json_t *pipeline_base_settings(const PipelineConfig *c) {
    json_t *o = json_object();
    json_object_set_new(o, "world", settings_to_json(&WORLD_SETTINGS, &c->world, 1));
    json_object_set_new(o, "base_training", settings_to_json(&BASE_SETTINGS, &c->base_training, 1));
    return o;
}

// Reuse of an existing base model: refused when it was trained with other settings,
// a warning when by other code.
static int check_base_record(const PipelineConfig *c, const char *marker, Err *e) {
    json_t *rec = read_json(marker, 0, e);
    if (!rec) return -1;
    json_t *want = pipeline_base_settings(c), *have = json_object_get(rec, "settings");
    int rc = 0;
    if (!have) {
        rc = err_set(e, "%s: made by an antibody that did not record the base model's settings; remove %s to train it "
                     "again", marker, c->base_model);
    } else if (!json_equal(want, have)) {
        const char *sec, *key = NULL;
        json_t *sv;
        json_object_foreach(want, sec, sv) {
            const char *k;
            json_t *v;
            json_object_foreach(sv, k, v) if (!json_equal(v, json_object_get(json_object_get(have, sec), k))) { key = k; break; }
            if (key) break;
        }
        rc = err_set(e, "%s: this base model was trained with other settings (%s.%s differs); remove the folder to "
                     "train it again, or name another base_model folder", c->base_model, key ? sec : "settings",
                     key ? key : "?");
    } else {
        json_t *now = provenance_new(), *then = json_object_get(rec, "made_by");
        const char *what[] = {"commit", "threads", "isa"};
        for (int i = 0; i < 3; i++) {
            json_t *a = json_object_get(now, what[i]), *b = then ? json_object_get(then, what[i]) : NULL;
            if (b && json_equal(a, b)) continue;
            char *sa = json_dumps(a, JSON_ENCODE_ANY), *sb = b ? json_dumps(b, JSON_ENCODE_ANY) : NULL;
            log_msg(LOG_WARN, "the base model in %s was trained with %s %s, this run has %s %s: the same settings give "
                    "a different model there, so results differ from a fresh run (remove the folder to train it again)",
                    c->base_model, what[i], sb ? sb : "(not recorded)", what[i], sa);
            free(sa);
            free(sb);
        }
        json_decref(now);
    }
    json_decref(want);
    json_decref(rec);
    return rc;
}

// World mode with base_training and no base model in base_model yet: the run trains it first.
static int base_to_build(const PipelineConfig *c) {
    if (!c->use_world || !c->has_base_training) return 0;
    char *marker = xasprintf("%s/base_model.json", c->base_model);
    struct stat sb;
    int absent = stat(marker, &sb) != 0;
    free(marker);
    return absent;
}

int pipeline_build_base(const PipelineConfig *c, Err *e) {
    if (!c->use_world || !c->has_base_training) return 0;
    char *marker = xasprintf("%s/base_model.json", c->base_model);
    struct stat sb;
    if (!stat(marker, &sb)) {
        int rc = check_base_record(c, marker, e);
        if (!rc) log_msg(LOG_INFO, "pipeline: reusing the base model in %s", c->base_model);
        free(marker);
        return rc;
    }
    free(marker);
    World w;
    if (world_generate(&c->world, &w, e)) return -1;
    log_msg(LOG_INFO, "pipeline: training the base model (cached in %s)", c->base_model);
    json_t *rec = json_object();
    json_object_set_new(rec, "settings", pipeline_base_settings(c));
    json_object_set_new(rec, "made_by", provenance_new());
    int rc = world_build_base_model(&w, &c->base_training, rec, c->base_model, e);
    json_decref(rec);
    world_free(&w);
    return rc;
}

// The data sets in one line, as the run reports them (malloc'd).
static char *data_summary(const PipelineConfig *c, const Data *d) {
    return xasprintf("%d alignment, %d harmful, %d re-alignment, %d task train, %d task test (%s), %d harmful eval "
                     "prompts; overlap with eval prompts: %d/%d/%d rows%s",
                     d->align.n, d->harmful.n, d->realign.n, d->task_train.n, d->task_test.n, task_name(d->task),
                     d->eval_harmful.n, d->overlap_harmful, d->overlap_realign, d->overlap_align,
                     c->exclude_overlap ? " (dropped)" : " (kept)");
}

// A runner for c with the stage count of its progress lines.
static Runner runner_new(const PipelineConfig *c, PipelinePlan *plan) {
    // Distinct alignments and (alignment, fine-tuning defense) pairs in use; "none" fine-tunes
    // the base itself.
    int used[ALIGN_COUNT] = {0}, used_ft[ALIGN_COUNT][FT_COUNT] = {{0}};
    int n_post = 0, n_align = 0, n_ft = 0;
    for (int i = 0; i < c->n_methods; i++) {
        used[c->methods[i].align] = 1;
        used_ft[c->methods[i].align][c->methods[i].ft] = 1;
        n_post += c->methods[i].post != POST_NONE;
    }
    for (int a = 0; a < ALIGN_COUNT; a++) {
        n_align += used[a] && a != ALIGN_NONE;
        for (int f = 0; f < FT_COUNT; f++) n_ft += used_ft[a][f];
    }
    Runner r = {c, {0, 0}, 0, c->n_seeds * (n_align + c->n_sweep * (n_ft + n_post + c->n_methods)), 0, "", plan};
    return r;
}

// Every stage of every seed, in order (a dry run records them instead).
static int run_stages(Runner *r, const Data *d, Judge *judge, Err *e) {
    const PipelineConfig *c = r->c;
    int used[ALIGN_COUNT] = {0}, used_ft[ALIGN_COUNT][FT_COUNT] = {{0}};
    for (int i = 0; i < c->n_methods; i++) {
        used[c->methods[i].align] = 1;
        used_ft[c->methods[i].align][c->methods[i].ft] = 1;
    }
    int rc = 0;
    for (int si = 0; si < c->n_seeds && !rc; si++) {
        // the runs of one seed: the config with that seed in every stage, in seed=<s>/
        PipelineConfig cs;
        char *out = seed_dir(c, c->seeds[si]);
        pipeline_config_for_seed(c, c->seeds[si], &cs);
        cs.output = out;
        r->c = &cs;
        for (int a = ALIGN_NONE + 1; a < ALIGN_COUNT && !rc; a++)
            if (used[a]) rc = run_align(r, d, (AlignMethod)a, e);
        for (int k = 0; k < c->n_sweep && !rc; k++) {
            for (int a = ALIGN_NONE + 1; a <= ALIGN_COUNT && !rc; a++)  // ALIGN_NONE last
                for (int f = 0; f < FT_COUNT && !rc; f++)
                    if (used_ft[a % ALIGN_COUNT][f]) rc = run_finetune(r, d, (AlignMethod)(a % ALIGN_COUNT), (FtDefense)f, k, e);
            for (int i = 0; i < c->n_methods && !rc; i++)
                if (c->methods[i].post != POST_NONE) rc = run_post(r, d, &c->methods[i], k, e);
            for (int i = 0; i < c->n_methods && !rc; i++) rc = run_eval(r, d, &c->methods[i], k, judge, e);
        }
        r->c = c;
        free(out);
    }
    return rc;
}

static int run_locked(const PipelineConfig *c, PipelineStats *stats, Err *e) {
    double t0 = now_s();
    Data d;
    if (load_data(c, 1, &d, e)) return -1;
    char *summary = data_summary(c, &d);
    log_msg(LOG_INFO, "pipeline: data: %s", summary);
    free(summary);
    Judge *judge = judge_from_spec(c->judge_spec, e);
    if (!judge) { data_free_all(&d); return -1; }
    Runner r = runner_new(c, NULL);
    if (folder_sha256(c->base_model, r.base, e)) { judge_free(judge); data_free_all(&d); return -1; }
    int rc = run_stages(&r, &d, judge, e);
    if (!rc) rc = write_results(&r, &d, e);
    if (!rc) {
        char buf[32];
        progress_format_duration(now_s() - t0, buf, sizeof buf);
        log_msg(LOG_INFO, "pipeline: %d stages run, %d skipped, %s; results in %s/results.md", r.st.stages_run,
                r.st.stages_skipped, buf, c->output);
    }
    judge_free(judge);
    data_free_all(&d);
    if (stats) *stats = r.st;
    return rc;
}

// Before any folder is made: the config, then the model folder (unless the run builds it).
static int check_before_work(const PipelineConfig *c, Err *e) {
    if (pipeline_config_check(c, "pipeline config", e)) return -1;
    return base_to_build(c) ? 0 : model_dir_check(c->base_model, e);
}

// The output folder is locked for the whole run (docs/reliability.md).
int pipeline_run_stats(const PipelineConfig *c, PipelineStats *stats, Err *e) {
    if (check_before_work(c, e)) return -1;
    if (pipeline_build_base(c, e)) return -1;
    DirLock lk;
    if (dir_lock(&lk, c->output, e)) return -1;
    int rc = run_locked(c, stats, e);
    dir_unlock(&lk);
    return rc;
}

int pipeline_run(const PipelineConfig *c, Err *e) { return pipeline_run_stats(c, NULL, e); }

int pipeline_plan(const PipelineConfig *c, PipelinePlan *p, Err *e) {
    plan_init(p);
    if (check_before_work(c, e) || out_dir_usable(c->output, e)) return -1;
    p->base_to_build = base_to_build(c);
    if (c->use_world && c->has_base_training && !p->base_to_build) {  // a cached base model made with other settings is refused
        char *marker = xasprintf("%s/base_model.json", c->base_model);
        int rc = check_base_record(c, marker, e);
        free(marker);
        if (rc) return -1;
    }
    if (!p->base_to_build && plan_open_model(p, c->base_model, c->finetune.weights, e)) return -1;
    Data d;
    if (load_data(c, 0, &d, e)) return -1;
    p->data = data_summary(c, &d);
    Judge *judge = judge_from_spec(c->judge_spec, e);  // checked as the run would (a classifier's folder is read)
    if (!judge) { data_free_all(&d); return -1; }
    judge_free(judge);
    Runner r = runner_new(c, p);
    int rc = p->base_to_build ? 0 : folder_sha256(c->base_model, r.base, e);
    if (!rc) rc = run_stages(&r, &d, NULL, e);
    if (!rc) rc = plan_estimate(p, e);
    data_free_all(&d);
    return rc;
}
