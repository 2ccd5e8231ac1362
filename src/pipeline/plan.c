// The dry run's record of the stages (docs/pipeline.md, "Dry run"); see plan.h.
#include "pipeline/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/outputs.h"
#include "pipeline/fingerprint.h"

void plan_init(PipelinePlan *p) { memset(p, 0, sizeof *p); }

void plan_free(PipelinePlan *p) {
    if (p->have_model) model_dir_close(&p->lm);
    for (int i = 0; i < p->n; i++) {
        free(p->stages[i].what);
        free(p->stages[i].dir);
        free(p->stages[i].why);
        free(p->stages[i].answers);
    }
    free(p->stages);
    free(p->model);
    free(p->data);
    free(p->problem);
    if (p->timing_set_.ex) encoded_free(&p->timing_set_);
    memset(p, 0, sizeof *p);
}

int plan_open_model(PipelinePlan *p, const char *dir, MatType weights, Err *e) {
    if (model_dir_open(&p->lm, dir, weights, NULL, 0, e)) return -1;
    p->have_model = 1;
    const Config *c = &p->lm.model.cfg;
    p->model = xasprintf("%s (%s): %d layers, dim %d, %d heads (%d key/value), MLP %d, vocabulary %d, %.1fM "
                         "parameters, %s weights; tokenizer.json with %d tokens, EOS id %d",
                         dir, c->model_type, c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->hidden_dim,
                         c->vocab_size, model_num_params(&p->lm.model) / 1e6, weights == MAT_BF16 ? "bf16" : "f32",
                         tokenizer_vocab_size(p->lm.tok), p->lm.eos_id);
    return 0;
}

double plan_passes(const AlignOpts *o) {
    AlignMethod m = o->method;
    if (m == ALIGN_BOOSTER) return 3.0;  // the alignment pass and two passes on a harmful batch
    if (m == ALIGN_TAR) return 2.0 + o->tar_inner_steps;  // the attack's steps, the attacked and the outer pass
    // RepNoise: a pass on a harmful batch of the training batch's size, then the safe batch
    return m == ALIGN_VACCINE || m == ALIGN_RANDOM_VACCINE || m == ALIGN_TVACCINE || m == ALIGN_REPNOISE ? 2.0 : 1.0;
}

static int exists(const char *dir, const char *name) {
    char *p = name ? xasprintf("%s/%s", dir, name) : xasprintf("%s", dir);
    int r = access(p, F_OK) == 0;
    free(p);
    return r;
}

// What the runner's stage_begin would decide for dir (pipeline/fingerprint.h, fp_claim),
// without touching it: 0 kept, 1 runs; why says which and why.
static int decide(const char *dir, int trains, const json_t *fp, char **why) {
    json_t *rec = fp_read(dir);
    int same = rec && fp_hex(rec) && !strcmp(fp_hex(rec), fp_hex(fp)), runs = 1;
    char *ck = xasprintf("%s.checkpoint", dir);
    if (same && exists(dir, "done.json")) {
        *why = xstrdup("done already with these settings and inputs: kept");
        runs = 0;
    } else if (same) {
        *why = xstrdup(trains && exists(ck, NULL) ? "unfinished: resumes from its checkpoint" : "unfinished: runs");
    } else if (rec) {
        char diff[700];
        fp_diff(rec, fp, diff, sizeof diff);
        *why = xasprintf("runs again: %s", diff);
    } else if (exists(dir, "done.json") || exists(dir, "adapter_model.safetensors") || exists(dir, "summary.json") ||
               (trains && exists(ck, NULL))) {
        *why = xstrdup("runs again: files of an earlier run without a fingerprint");
    } else {
        *why = xstrdup("not run yet");
    }
    free(ck);
    json_decref(rec);
    return runs;
}

static void note_problem(PipelinePlan *p, const char *what, const char *msg) {
    if (!p->problem) p->problem = xasprintf("%s: %s", what, msg);
}

// Rows, steps and tokens of a training stage; its cut answers.
static int plan_training(PipelinePlan *p, PlanStage *s, const Dataset *data, const TrainOpts *t, Err *e) {
    s->rows = data->n;
    s->epochs = t->epochs;
    s->batch_size = t->batch_size;
    s->grad_accum = t->grad_accum;
    s->max_len = t->max_len;
    s->steps = train_total_steps(data->n, t);
    TrainOpts uncapped = *t;
    uncapped.max_steps = 0;
    int64_t all = train_total_steps(data->n, &uncapped);
    double share = all ? (double)s->steps / (double)all : 0;  // of the epochs, what max_steps leaves
    if (!p->have_model) { s->answers = xstrdup(""); return 0; }  // no tokenizer yet (the base model is built first)
    EncodedSet enc;
    if (encode_dataset(p->lm.tok, p->lm.eos_id, data, t->max_len, &enc, e)) return -1;
    for (int i = 0; i < enc.n; i++) s->tokens += enc.ex[i].n;
    s->tokens_run = (double)s->tokens * t->epochs * share;
    char line[512];
    Err ce;
    if (encoded_check_answers(&enc, s->what, line, sizeof line, &ce)) {  // the run would refuse this stage
        s->answers = xstrdup(ce.msg);
        if (s->runs) note_problem(p, s->what, "no row keeps an answer token (see its line)");
    } else {
        s->answers = xstrdup(line);
    }
    if (s->runs && !p->timing_set_.ex && enc.n) {  // the first stage that would train is the one timed
        p->timing_set_ = enc;
        p->timing_batch_ = t->batch_size;
    } else {
        encoded_free(&enc);
    }
    return 0;
}

int plan_add(PipelinePlan *p, PlanKind kind, const char *what, const char *dir, json_t *fp, const Dataset *data,
             const TrainOpts *t, double passes, int rows, Err *e) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->stages = xrealloc(p->stages, (size_t)p->cap * sizeof *p->stages);
    }
    PlanStage *s = &p->stages[p->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->what = xstrdup(what);
    s->dir = xstrdup(dir);
    s->passes = passes;
    s->rows = rows;
    s->seconds = -1;
    snprintf(s->fp, sizeof s->fp, "%s", fp_hex(fp) ? fp_hex(fp) : "");
    Err ue;
    if (out_dir_usable(dir, &ue)) {  // the run would stop here
        s->runs = 1;
        s->why = xstrdup(ue.msg);
        note_problem(p, what, ue.msg);
    } else if (p->base_to_build) {
        s->runs = 1;
        s->why = xstrdup("runs: the base model is trained first");
    } else {
        s->runs = decide(dir, data != NULL, fp, &s->why);
    }
    json_decref(fp);
    if (data && t) return plan_training(p, s, data, t, e);
    s->answers = xstrdup("");
    return 0;
}

void plan_stage_fp(const PipelinePlan *p, const char *dir, char out[65]) {
    out[0] = '\0';
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->stages[i].dir, dir)) snprintf(out, 65, "%s", p->stages[i].fp);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// One SFT forward + backward on the first rows of the timed set with the default LoRA (rank
// 8 on every projection, dropout 0.1): seconds per call, repeated for at least 0.5 s when a
// call is short, after one untimed call (the first call pays for page faults and JIT).
static int time_step(PipelinePlan *p) {
    const EncodedSet *enc = &p->timing_set_;
    int n = enc->n < p->timing_batch_ ? enc->n : p->timing_batch_, T = 1, tokens = 0;
    int *idx = xmalloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) {
        idx[i] = i;
        T = enc->ex[i].n > T ? enc->ex[i].n : T;
        tokens += enc->ex[i].n;
    }
    Model *m = &p->lm.model;
    Lora lora;
    lora_init(&lora, m, 8, 16, 0.1f, (1 << N_PROJ) - 1, 1);
    Workspace *w = workspace_new(m, &lora, n, T, 0);
    Batch b;
    batch_alloc(&b, n, T);
    batch_fill(&b, enc, idx, n, 0);
    StepMethod *sft = sft_method_new();
    double t0 = now_s();
    sft->grad(sft, m, &lora, w, &b, 1.0f, 1);
    double first = now_s() - t0, total = 0;
    int reps = 0;
    if (first > 5) {  // a large model: the one call is the measure
        total = first;
        reps = 1;
    }
    while (total < 0.5 && reps < 100) {
        t0 = now_s();
        sft->grad(sft, m, &lora, w, &b, 1.0f, 1);
        total += now_s() - t0;
        reps++;
    }
    step_method_free(sft);
    batch_free(&b);
    workspace_free(w);
    lora_free(&lora);
    free(idx);
    p->timed_rows = n;
    p->timed_tokens = tokens;
    p->timed_seconds = total / reps;
    return 0;
}

int plan_estimate(PipelinePlan *p, Err *e) {
    (void)e;
    if (!p->have_model || !p->timing_set_.ex) return 0;  // nothing would train, or no model to time yet
    if (time_step(p)) return -1;
    double per_token = p->timed_tokens ? p->timed_seconds / p->timed_tokens : 0;
    for (int i = 0; i < p->n; i++) {
        PlanStage *s = &p->stages[i];
        if (s->tokens_run > 0) s->seconds = s->tokens_run * per_token * s->passes;
    }
    return 0;
}

double plan_total_seconds(const PipelinePlan *p) {
    double t = 0;
    for (int i = 0; i < p->n; i++)
        if (p->stages[i].runs && p->stages[i].seconds > 0) t += p->stages[i].seconds;
    return t;
}
