#include "train/trainer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/atomic.h"
#include "io/peft.h"
#include "io/safetensors.h"
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
    free(s->ctx);
    free(s);
}

void train_log_free(TrainLog *l) {
    free(l->loss_curve);
    memset(l, 0, sizeof *l);
}

// ---- checkpoints: adapter + optimizer moments + the step counter -------------------
static int save_checkpoint(const char *dir, const Model *m, const Lora *l, const AdamState *st, const int64_t *tl,
                           int64_t step, const float *curve, const TrainOpts *o, Err *e) {
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    if (mkdir_p(tmp, e) || peft_save(l, m, tmp, o->base_model, e)) return -1;
    StWrite w[3] = {{"exp_avg", ST_F32, 1, {(int64_t)st->n}, st->m},
                    {"exp_avg_sq", ST_F32, 1, {(int64_t)st->n}, st->v},
                    {"loss_curve", ST_F32, 1, {step}, curve}};
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    if (st_write(path, w, step > 0 ? 3 : 2, NULL, 0, e)) return -1;
    json_t *j = json_object();
    json_object_set_new(j, "step", json_integer(step));
    json_t *a = json_array();
    for (int i = 0; i < l->n_layers; i++) json_array_append_new(a, json_integer(tl[i]));
    json_object_set_new(j, "layer_steps", a);
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    char *txt = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    int rc = write_file_atomic(path, txt, strlen(txt), e);
    free(txt);
    if (rc) return -1;
    // swap the finished folder in: the old checkpoint stays valid until this rename
    char old[4096];
    snprintf(old, sizeof old, "%s.old", dir);
    rename(dir, old);
    if (rename(tmp, dir)) return err_set(e, "%s: cannot move checkpoint into place", dir);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", old);
    if (system(cmd)) {}
    return 0;
}

static int64_t load_checkpoint(const char *dir, const Model *m, Lora *l, AdamState *st, int64_t *tl, float *curve,
                               int64_t max_curve, Err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    struct stat sb;
    if (stat(path, &sb)) return 0;  // nothing to resume
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return err_set(e, "%s: malformed checkpoint state: %s", path, je.text);
    int64_t step = json_integer_value(json_object_get(j, "step"));
    json_t *a = json_object_get(j, "layer_steps");
    for (int i = 0; i < l->n_layers; i++) tl[i] = json_integer_value(json_array_get(a, i));
    json_decref(j);
    Lora loaded;
    if (peft_load(&loaded, m, dir, e)) return -1;
    if (loaded.n_params != l->n_params) { lora_free(&loaded); return err_set(e, "%s: adapter shape differs from this run", dir); }
    memcpy(l->params, loaded.params, l->n_params * sizeof(float));
    lora_free(&loaded);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    StSet *s = st_open(path, e);
    if (!s) return -1;
    int64_t shape[1] = {(int64_t)st->n};
    int rc = st_read_f32(st_find(s, "exp_avg") ? st_find(s, "exp_avg") : st_get(s, 0), st->m, 1, shape, e);
    if (!rc) rc = st_read_f32(st_find(s, "exp_avg_sq"), st->v, 1, shape, e);
    const StTensor *c = st_find(s, "loss_curve");
    if (!rc && c && c->numel == step && step <= max_curve) rc = st_read_f32(c, curve, 1, NULL, e);
    st_close(s);
    return rc ? -1 : step;
}

int train_run(const Model *m, Lora *lora, const EncodedSet *data, const TrainOpts *o, StepMethod *method,
              TrainLog *log, Err *e) {
    memset(log, 0, sizeof *log);
    if (data->n == 0) return err_set(e, "training set is empty");
    int B = o->batch_size, L = m->cfg.n_layers;
    int64_t micro_per_epoch = (data->n + B - 1) / B;
    int64_t steps_per_epoch = (micro_per_epoch + o->grad_accum - 1) / o->grad_accum;
    int64_t total = steps_per_epoch * o->epochs;
    if (o->max_steps > 0 && o->max_steps < total) total = o->max_steps;
    int64_t warmup = (int64_t)(o->warmup_ratio * total + 0.999999);  // HF: ceil(ratio * total)
    int maxT = 1;
    for (int i = 0; i < data->n; i++) maxT = data->ex[i].n > maxT ? data->ex[i].n : maxT;
    Workspace *w = workspace_new(m, lora, B, maxT, 0);
    Batch b;
    batch_alloc(&b, B, maxT);
    AdamState st;
    adam_state_init(&st, lora->n_params);
    AdamW opt = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay};
    // parameter range of each layer (LoRA params are stored layer by layer)
    size_t *lstart = xcalloc(L + 1, sizeof(size_t));
    for (int l = 0; l < L; l++) {
        lstart[l] = (size_t)-1;
        for (int p = 0; p < N_PROJ; p++)
            if (lora->A[l * N_PROJ + p]) { lstart[l] = (size_t)(lora->A[l * N_PROJ + p] - lora->params); break; }
    }
    lstart[L] = lora->n_params;
    for (int l = L - 1; l >= 0; l--) if (lstart[l] == (size_t)-1) lstart[l] = lstart[l + 1];
    int64_t *layer_t = xcalloc(L, sizeof(int64_t));  // per-layer AdamW step (frozen layers do not step)
    log->loss_curve = xcalloc(total + 1, sizeof(float));
    int64_t step = 0;
    if (o->checkpoint_dir) {
        step = load_checkpoint(o->checkpoint_dir, m, lora, &st, layer_t, log->loss_curve, total, e);
        if (step < 0) goto fail;
        if (step > 0) fprintf(stderr, "%s: resuming from %s at step %lld/%lld\n", o->label, o->checkpoint_dir,
                              (long long)step, (long long)total);
    }
    int *perm = xmalloc(data->n * sizeof(int));
    int *idx = xmalloc(B * sizeof(int));
    Progress *pr = progress_new(o->label, total);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t cur_epoch = -1;
    for (; step < total; step++) {
        int64_t epoch = step / steps_per_epoch;
        if (epoch != cur_epoch) {  // a fresh seeded shuffle per epoch (resumable)
            Rng r;
            rng_seed(&r, o->seed * 1000003ULL + (uint64_t)epoch);
            for (int i = 0; i < data->n; i++) perm[i] = i;
            rng_shuffle_int(&r, perm, data->n);
            cur_epoch = epoch;
        }
        const int *trainable = method->begin_step ? method->begin_step(method, m, lora, step) : NULL;
        memset(w->lora_grad, 0, lora->n_params * sizeof(float));
        double loss = 0;
        int micro = 0;
        for (int a = 0; a < o->grad_accum; a++) {
            int64_t mb = (step % steps_per_epoch) * o->grad_accum + a;
            if (mb >= micro_per_epoch) break;
            int n = 0;
            for (int64_t i = mb * B; i < (mb + 1) * B && i < data->n; i++) idx[n++] = perm[i];
            batch_fill(&b, data, idx, n, 0);
            uint64_t seed = hash64(o->seed ^ hash64((uint64_t)step * 64 + a));
            loss += method->grad(method, m, lora, w, &b, 1.0f / o->grad_accum, seed);
            micro++;
        }
        loss /= micro;
        clip_grad_norm(w->lora_grad, lora->n_params, o->max_grad_norm);
        float lr = o->lr * schedule_factor(o->schedule, step, total, warmup);
        for (int l = 0; l < L; l++) {
            if (trainable && !trainable[l]) continue;
            st.t = ++layer_t[l];
            adamw_update(&opt, &st, lora->params, w->lora_grad, lstart[l], lstart[l + 1], lr);
        }
        log->loss_curve[step] = (float)loss;
        progress_update(pr, step + 1, "loss %.4f lr %.2e", loss, lr);
        if (o->checkpoint_dir && o->checkpoint_every > 0 && (step + 1) % o->checkpoint_every == 0 && step + 1 < total)
            if (save_checkpoint(o->checkpoint_dir, m, lora, &st, layer_t, step + 1, log->loss_curve, o, e)) {
                progress_done(pr);
                free(perm);
                free(idx);
                goto fail;
            }
    }
    progress_done(pr);
    free(perm);
    free(idx);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    log->seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    log->steps = total;
    log->n_curve = (int)total;
    int tail = total / 10 > 0 ? (int)(total / 10) : 1;
    for (int64_t i = total - tail; i < total; i++) log->final_loss += log->loss_curve[i] / tail;
    log->first_loss = log->loss_curve[0];
    log->workspace_bytes = w->bytes;
    if (o->checkpoint_dir && save_checkpoint(o->checkpoint_dir, m, lora, &st, layer_t, total, log->loss_curve, o, e))
        goto fail;
    workspace_free(w); batch_free(&b); adam_state_free(&st); free(lstart); free(layer_t);
    return 0;
fail:
    workspace_free(w); batch_free(&b); adam_state_free(&st); free(lstart); free(layer_t);
    return -1;
}
