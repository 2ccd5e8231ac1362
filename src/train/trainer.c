#include "train/trainer.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/atomic.h"
#include "io/dir_replace.h"
#include "io/safetensors.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/rng.h"

void train_opts_default(TrainOpts *o) {
    memset(o, 0, sizeof *o);
    o->lr = 1e-3f;
    o->weight_decay = 0.1f;
    o->warmup_ratio = 0.1f;
    o->max_grad_norm = 1.0f;  // Hugging Face Trainer's default
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->schedule = SCHED_COSINE;
    o->batch_size = 5;
    o->grad_accum = 1;
    o->epochs = 1;
    o->max_len = 200;
    o->seed = 42;
    o->label = "train";
    o->checkpoint_minutes = 10;  // a kill or power loss costs at most this much work
}

// ---- SFT -------------------------------------------------------------------------
static float sft_grad(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b, float loss_scale,
                      uint64_t seed) {
    ForwardOpts fo = {.train = 1, .dropout_seed = seed, .loss_scale = loss_scale};
    float loss = model_forward(m, l, w, b, &fo);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(m, l, w, &bo);
    return loss;
}

StepMethod *sft_method_new(void) {
    StepMethod *s = xcalloc(1, sizeof *s);
    s->name = "sft";
    s->grad = sft_grad;
    return s;
}

void step_method_free(StepMethod *s) {
    if (!s) return;
    if (s->release) s->release(s);
    free(s->ctx);
    free(s);
}

void train_log_free(TrainLog *l) {
    free(l->loss_curve);
    memset(l, 0, sizeof *l);
}

// ---- the tensors being trained ---------------------------------------------------
typedef struct {
    float *p, *g;     // parameters and their gradient buffer
    size_t n, off;    // size, offset in the flat optimizer state
    int layer;        // -1 when not part of a layer (embeddings, head, final norm)
    int proj;         // P_* of a projection's tensors, -1 for norm weights and the rest
    float wd;         // weight decay (none for norm weights, as HF's Trainer)
    int64_t t;        // AdamW steps taken by this tensor (frozen tensors do not step)
} Group;

typedef struct {
    Group *g;
    int n, cap;
    size_t total;
} Groups;

static void group_add(Groups *gs, float *p, float *g, size_t n, int layer, int proj, float wd) {
    if (gs->n == gs->cap) gs->g = xrealloc(gs->g, (gs->cap = gs->cap ? 2 * gs->cap : 64) * sizeof(Group));
    gs->g[gs->n++] = (Group){p, g, n, gs->total, layer, proj, wd, 0};
    gs->total += n;
}

// LoRA: one group per targeted matrix. Full: every weight of the model.
static void build_groups(Groups *gs, Model *m, Lora *lora, Workspace *w, float wd) {
    const Config *c = &m->cfg;
    memset(gs, 0, sizeof *gs);
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < N_PROJ; p++) {
            if (lora) {
                float *A = lora->A[l * N_PROJ + p], *B = lora->B[l * N_PROJ + p];
                if (!A) continue;
                int out, in;
                proj_dims(c, p, &out, &in);
                group_add(gs, A, w->lora_grad + (A - lora->params), (size_t)lora->rank * in, l, p, wd);
                group_add(gs, B, w->lora_grad + (B - lora->params), (size_t)lora->rank * out, l, p, wd);
            } else {
                Mat *W = &m->layers[l].w[p];
                group_add(gs, W->data, w->full_grad[l * N_PROJ + p], (size_t)W->rows * W->cols, l, p, wd);
            }
        }
    if (lora) return;
    size_t C = c->dim, V = c->vocab_size;
    group_add(gs, m->embed.data, w->embed_grad, V * C, -1, -1, wd);
    if (!c->tie_embeddings) group_add(gs, m->lm_head.data, w->head_grad, V * C, -1, -1, wd);
    for (int l = 0; l < c->n_layers; l++) {
        group_add(gs, m->layers[l].attn_norm, w->norm_grad + (size_t)2 * l * C, C, l, -1, 0.0f);
        group_add(gs, m->layers[l].mlp_norm, w->norm_grad + (size_t)(2 * l + 1) * C, C, l, -1, 0.0f);
    }
    group_add(gs, m->final_norm, w->norm_grad + (size_t)2 * c->n_layers * C, C, -1, -1, 0.0f);
}

static void zero_grads(Groups *gs) {
    for (int i = 0; i < gs->n; i++) memset(gs->g[i].g, 0, gs->g[i].n * sizeof(float));
}

static double clip_groups(Groups *gs, float max_norm) {
    GradSpan s[gs->n > 0 ? gs->n : 1];
    for (int i = 0; i < gs->n; i++) s[i] = (GradSpan){gs->g[i].g, gs->g[i].n};
    return clip_grad_norm_spans(s, gs->n, max_norm);
}

// ---- checkpoints: every trained tensor, the optimizer moments and the step counters,
// written to DIR.tmp and renamed over DIR so a crash leaves the last good one.
static float *flat_params(const Groups *gs) {
    float *f = xmalloc((gs->total ? gs->total : 1) * sizeof(float));
    for (int i = 0; i < gs->n; i++) memcpy(f + gs->g[i].off, gs->g[i].p, gs->g[i].n * sizeof(float));
    return f;
}

static int save_checkpoint(const char *dir, const Groups *gs, const float *m1, const float *m2, int64_t step,
                           const float *curve, uint64_t seed, const StepMethod *method, Err *e) {
    if (dir_stage(dir, "trainer_state.json", e)) return -1;
    float *flat = flat_params(gs);
    int64_t *ts = xmalloc((gs->n ? gs->n : 1) * sizeof(int64_t));
    for (int i = 0; i < gs->n; i++) ts[i] = gs->g[i].t;
    StWrite w[6] = {{"params", ST_F32, 1, {(int64_t)gs->total}, flat},
                    {"exp_avg", ST_F32, 1, {(int64_t)gs->total}, m1},
                    {"exp_avg_sq", ST_F32, 1, {(int64_t)gs->total}, m2},
                    {"tensor_steps", ST_I64, 1, {gs->n}, ts},
                    {"loss_curve", ST_F32, 1, {step}, curve},
                    {"method_state", ST_F32, 1, {(int64_t)method->n_state}, method->state}};
    char *tmp = xasprintf("%s.tmp", dir), *path = xasprintf("%s/checkpoint.safetensors", tmp);
    int rc = st_write(path, w, method->n_state ? 6 : 5, NULL, 0, e);
    free(path);
    free(flat);
    free(ts);
    if (!rc) {
        json_t *j = json_object();
        json_object_set_new(j, "step", json_integer(step));
        json_object_set_new(j, "seed", json_integer((json_int_t)seed));
        json_object_set_new(j, "n_params", json_integer((json_int_t)gs->total));
        char *txt = json_dumps(j, JSON_INDENT(2));
        json_decref(j);
        rc = write_file_in(tmp, "trainer_state.json", txt, strlen(txt), e);
        free(txt);
    }
    free(tmp);
    if (rc) return -1;
    // the previous checkpoint stays whole until the new one is (io/dir_replace.h)
    return dir_replace(dir, e);
}

// Returns the step to resume from (0 when there is no checkpoint) or -1.
static int64_t load_checkpoint(const char *dir, Groups *gs, float *m1, float *m2, float *curve, int64_t total,
                               uint64_t seed, StepMethod *method, Err *e) {
    int found = dir_recover(dir, "trainer_state.json", e);  // a kill between the two renames of a save left DIR.old
    if (found <= 0) return found;
    char *path = xasprintf("%s/trainer_state.json", dir);
    size_t len;
    char *text = read_file(path, &len, e);
    if (!text) { free(path); return -1; }
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    free(text);
    if (!j) {
        err_set(e, "%s: malformed checkpoint state: %s", path, je.text);
        free(path);
        return -1;
    }
    free(path);
    int64_t step = json_integer_value(json_object_get(j, "step"));
    int64_t np = json_integer_value(json_object_get(j, "n_params"));
    uint64_t s = (uint64_t)json_integer_value(json_object_get(j, "seed"));
    json_decref(j);
    if (np != (int64_t)gs->total || s != seed || step < 0 || step > total)
        return err_set(e, "%s: checkpoint belongs to a different run (size, seed or length differ); remove it to "
                       "start over", dir);
    path = xasprintf("%s/checkpoint.safetensors", dir);
    StSet *st = st_open(path, e);
    if (!st) { free(path); return -1; }
    float *flat = xmalloc((gs->total ? gs->total : 1) * sizeof(float));
    int64_t shape[1] = {(int64_t)gs->total}, tshape[1] = {gs->n};
    const StTensor *tp = st_find(st, "params"), *ta = st_find(st, "exp_avg"), *tb = st_find(st, "exp_avg_sq"),
                   *tt = st_find(st, "tensor_steps"), *tc = st_find(st, "loss_curve");
    int rc = !tp || !ta || !tb || !tt || !tc ? err_set(e, "%s: incomplete checkpoint", path) : 0;
    if (!rc) rc = st_read_f32_finite(tp, flat, 1, shape, e);
    if (!rc) rc = st_read_f32_finite(ta, m1, 1, shape, e);
    if (!rc) rc = st_read_f32_finite(tb, m2, 1, shape, e);
    if (!rc && (tt->dtype != ST_I64 || tt->ndim != 1 || tt->shape[0] != tshape[0]))
        rc = err_set(e, "%s: tensor_steps must be I64 of shape [%lld]", path, (long long)tshape[0]);
    if (!rc) {
        const int64_t *ts = tt->data;
        for (int i = 0; i < gs->n && !rc; i++) {
            memcpy(&gs->g[i].t, ts + i, sizeof(int64_t));
            if (gs->g[i].t < 0 || gs->g[i].t > step)
                rc = err_set(e, "%s: tensor_steps[%d] = %lld is outside [0, %lld]", path, i, (long long)gs->g[i].t,
                             (long long)step);
        }
        for (int i = 0; i < gs->n; i++) memcpy(gs->g[i].p, flat + gs->g[i].off, gs->g[i].n * sizeof(float));
        int64_t cshape[1] = {step};  // the curve holds one loss per step taken: never more than the run's
        if (!rc && step > 0) rc = st_read_f32(tc, curve, 1, cshape, e);
        if (!rc && method->n_state) {
            const StTensor *ms = st_find(st, "method_state");
            int64_t mshape[1] = {(int64_t)method->n_state};
            rc = ms ? st_read_f32_finite(ms, method->state, 1, mshape, e)
                    : err_set(e, "%s: the checkpoint has no state of method %s", path, method->name);
        }
    }
    free(flat);
    free(path);
    st_close(st);
    return rc ? -1 : step;
}

// ---- the per-step JSONL log ------------------------------------------------------------
// Opens path for appending after its records of steps 1..step (a resumed run continues the
// log of the run it resumes; records of steps past the checkpoint are dropped).
static FILE *log_open(const char *path, int64_t step, Err *e) {
    if (step == 0) {
        FILE *f = fopen(path, "w");
        if (!f) err_set(e, "%s: cannot write", path);
        return f;
    }
    size_t n = 0;
    char *text = read_file(path, &n, NULL);
    size_t keep = 0;
    for (char *line = text; line && *line;) {  // keep whole lines up to the record of `step`
        char *nl = strchr(line, '\n');
        if (!nl) break;
        json_error_t je;
        json_t *r = json_loadb(line, (size_t)(nl - line), 0, &je);
        int64_t s = r ? json_integer_value(json_object_get(r, "step")) : 0;
        json_decref(r);
        if (!r || s > step) break;
        keep = (size_t)(nl + 1 - text);
        line = nl + 1;
    }
    int had = text != NULL;
    free(text);
    FILE *f = fopen(path, had ? "r+" : "w");
    if (!f || (had && (ftruncate(fileno(f), (off_t)keep) || fseek(f, (long)keep, SEEK_SET)))) {
        if (f) fclose(f);
        err_set(e, "%s: cannot write", path);
        return NULL;
    }
    return f;
}

static double secs_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) + 1e-9 * (t.tv_nsec - t0->tv_nsec);
}

int64_t train_total_steps(int64_t rows, const TrainOpts *o) {
    int64_t micro_per_epoch = (rows + o->batch_size - 1) / o->batch_size;
    int64_t total = (micro_per_epoch + o->grad_accum - 1) / o->grad_accum * o->epochs;
    return o->max_steps > 0 && o->max_steps < total ? o->max_steps : total;
}

int train_run(Model *m, Lora *lora, const EncodedSet *data, const TrainOpts *o, StepMethod *method, TrainLog *log,
              Err *e) {
    memset(log, 0, sizeof *log);
    if (data->n == 0) return err_set(e, "training set is empty");
    if (encoded_check_answers(data, o->label, NULL, 0, e)) return -1;
    if (!lora && m->embed.type != MAT_F32) return err_set(e, "full training needs f32 weights");
    // The system refuses path strings of PATH_MAX bytes or more: say so now, not at the first checkpoint.
    if (o->checkpoint_dir && strlen(o->checkpoint_dir) + sizeof ".tmp/checkpoint.safetensors" > PATH_MAX)
        return err_set(e, "%s: checkpoint folder path is too long (its files' paths exceed the system's %d bytes)",
                       o->checkpoint_dir, PATH_MAX);
    int B = o->batch_size;
    int64_t micro_per_epoch = (data->n + B - 1) / B;
    int64_t steps_per_epoch = (micro_per_epoch + o->grad_accum - 1) / o->grad_accum;
    int64_t total = train_total_steps(data->n, o);
    int64_t warmup = (int64_t)ceil(o->warmup_ratio * total);  // HF: ceil(ratio * total)
    int maxT = 1;
    for (int i = 0; i < data->n; i++) maxT = data->ex[i].n > maxT ? data->ex[i].n : maxT;
    if (method->max_T > maxT) maxT = method->max_T;
    if (m->cfg.opt && !lora)
        return err_set(e, "full training of an OPT model is not supported (its biases would stay frozen); train a LoRA adapter");
    if (m->cfg.sandwich_norms && !lora)
        return err_set(e, "full training of a Gemma 2 model is not supported (its output norms would stay frozen); "
                       "train a LoRA adapter");
    Workspace *w = workspace_new(m, lora, method->max_B > B ? method->max_B : B, maxT, lora ? 0 : ((1 << N_PROJ) - 1) | FULL_EMBED_NORMS);
    Batch b;
    batch_alloc(&b, B, maxT);
    Groups gs;
    build_groups(&gs, m, lora, w, o->weight_decay);
    float *m1 = xcalloc(gs.total ? gs.total : 1, sizeof(float)), *m2 = xcalloc(gs.total ? gs.total : 1, sizeof(float));
    AdamW opt = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay};
    log->loss_curve = xcalloc(total + 1, sizeof(float));
    int *perm = xmalloc(data->n * sizeof(int)), *idx = xmalloc(B * sizeof(int));
    Progress *pr = NULL;
    FILE *logf = NULL;
    int rc = -1;
    int64_t step = 0;
    if (o->checkpoint_dir) {
        step = load_checkpoint(o->checkpoint_dir, &gs, m1, m2, log->loss_curve, total, o->seed, method, e);
        if (step < 0) goto done;
        if (step > 0)
            log_msg(LOG_INFO, "%s: resuming from %s at step %lld/%lld", o->label, o->checkpoint_dir, (long long)step,
                    (long long)total);
    }
    if (o->log_path && !(logf = log_open(o->log_path, step, e))) goto done;
    pr = progress_new(o->label, total);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double last_ck = 0, last_step = 0;
    int64_t cur_epoch = -1;
    for (; step < total; step++) {
        int64_t epoch = step / steps_per_epoch;
        if (epoch != cur_epoch) {  // a fresh seeded shuffle per epoch (so resuming replays it)
            Rng r;
            rng_seed(&r, o->seed * 1000003ULL + (uint64_t)epoch);
            for (int i = 0; i < data->n; i++) perm[i] = i;
            rng_shuffle_int(&r, perm, data->n);
            cur_epoch = epoch;
        }
        const int *trainable = method->begin_step ? method->begin_step(method, m, lora, w, step) : NULL;
        zero_grads(&gs);
        double loss = 0;
        int micro = 0;
        int64_t tokens = 0;
        for (int a = 0; a < o->grad_accum; a++) {
            int64_t mb = (step % steps_per_epoch) * o->grad_accum + a;
            if (mb >= micro_per_epoch) break;
            int n = 0;
            for (int64_t i = mb * B; i < (mb + 1) * B && i < data->n; i++) idx[n++] = perm[i];
            batch_fill(&b, data, idx, n, 0);
            for (int i = 0; i < n; i++) tokens += data->ex[idx[i]].n;
            uint64_t seed = hash64(o->seed ^ hash64((uint64_t)step * 64 + a));
            loss += method->grad(method, m, lora, w, &b, 1.0f / o->grad_accum, seed);
            micro++;
        }
        if (workspace_check(w, e)) goto done;  // a batch the method's own planning did not fit
        loss /= micro;
        double gnorm = clip_groups(&gs, o->max_grad_norm);
        float lr = o->lr * schedule_factor(o->schedule, step, total, warmup);
        for (int i = 0; i < gs.n; i++) {
            Group *g = &gs.g[i];
            if (trainable && g->layer >= 0 && !(trainable[g->layer] & (g->proj >= 0 ? 1 << g->proj : PROJ_ALL)))
                continue;  // frozen: no step at all
            adamw_update(&opt, g->p, g->g, m1 + g->off, m2 + g->off, g->n, lr, g->wd, ++g->t);
        }
        log->loss_curve[step] = (float)loss;
        progress_update(pr, step + 1, "loss %.4f lr %.2e", loss, lr);
        double now = secs_since(&t0);
        if (logf) {
            fprintf(logf,
                    "{\"step\": %lld, \"epoch\": %.4f, \"loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g, "
                    "\"tokens\": %lld, \"tokens_per_s\": %.1f, \"elapsed_s\": %.3f}\n",
                    (long long)(step + 1), (double)(step + 1) / steps_per_epoch, loss, lr, gnorm, (long long)tokens,
                    now > last_step ? tokens / (now - last_step) : 0.0, now);
            fflush(logf);
        }
        last_step = now;
        int pause = o->stop_after > 0 && step + 1 == o->stop_after && step + 1 < total;
        int stop = o->interrupt && *o->interrupt && step + 1 < total;
        int due = (o->checkpoint_every > 0 && (step + 1) % o->checkpoint_every == 0) ||
                  (o->checkpoint_minutes > 0 && now - last_ck >= 60 * o->checkpoint_minutes);
        if (o->checkpoint_dir && step + 1 < total && (pause || stop || due)) {
            if (save_checkpoint(o->checkpoint_dir, &gs, m1, m2, step + 1, log->loss_curve, o->seed, method, e)) goto done;
            last_ck = now;
        }
        if (stop) {
            if (o->checkpoint_dir)
                err_set(e, "%s: interrupted after step %lld of %lld; checkpoint saved in %s", o->label,
                        (long long)(step + 1), (long long)total, o->checkpoint_dir);
            else
                err_set(e, "%s: interrupted after step %lld of %lld (no checkpoint folder)", o->label,
                        (long long)(step + 1), (long long)total);
            goto done;
        }
        if (pause) {
            log->steps = step + 1;
            rc = 1;  // stopped early on purpose; the checkpoint holds the state
            goto done;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    log->seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    log->steps = total;
    log->n_curve = (int)total;
    int tail = total / 10 > 0 ? (int)(total / 10) : 1;
    for (int64_t i = total - tail; i < total; i++) log->final_loss += log->loss_curve[i] / tail;
    log->first_loss = log->loss_curve[0];
    log->workspace_bytes = w->bytes;
    if (o->checkpoint_dir && save_checkpoint(o->checkpoint_dir, &gs, m1, m2, total, log->loss_curve, o->seed, method, e))
        goto done;
    rc = 0;
done:
    if (logf) fclose(logf);
    if (rc < 0) train_log_free(log);  // on error the caller gets nothing to free
    if (pr) progress_done(pr);
    workspace_free(w);
    batch_free(&b);
    free(gs.g); free(m1); free(m2); free(perm); free(idx);
    return rc;
}
