// The stages as functions over folders: load, train or prune, write atomically.
#include "pipeline/stages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defense/antidote.h"
#include "defense/booster.h"
#include "defense/repnoise.h"
#include "defense/tar.h"
#include "defense/ldifs.h"
#include "defense/lisa.h"
#include "defense/vaccine.h"
#include "eval/report.h"
#include "util/atomic.h"
#include "io/dir_lock.h"
#include "io/model_dir.h"
#include "io/hf_checkpoint.h"
#include "io/outputs.h"
#include "io/peft.h"
#include "util/log.h"
#include "util/mem.h"

static int max_len_of(const EncodedSet *s) {
    int T = 1;
    for (int i = 0; i < s->n; i++) T = s->ex[i].n > T ? s->ex[i].n : T;
    return T;
}

// Trains a fresh adapter with the given method; shared by alignment and fine-tuning.
// Encodes a training set and reports (or, when no row keeps one, refuses) cut answers.
static int encode_checked(const LoadedModel *lm, const Dataset *data, int max_len, const char *what, EncodedSet *enc,
                          Err *e) {
    char line[512];
    if (encode_dataset(lm->tok, lm->eos_id, data, max_len, enc, e) || encoded_check_answers(enc, what, line, sizeof line, e)) {
        encoded_free(enc);
        return -1;
    }
    if (*line) log_msg(LOG_WARN, "%s", line);
    return 0;
}

// The adapter trained: a fresh one (rank, alpha, dropout, targets), or with start the adapter
// in that folder, trained on (its own rank, alpha, dropout and targets).
static int train_adapter(LoadedModel *lm, const char *base_dir, const Dataset *data, const char *what, TrainOpts *t,
                         int rank, float alpha, float dropout, int targets, const char *start,
                         StepMethod *(*make)(const Model *, const Lora *, int, int, void *), void *make_ctx,
                         const char *out_dir, StageReport *r, Err *e) {
    if (!start && (targets = proj_mask_for(&lm->model.cfg, targets, e)) < 0) return -1;
    EncodedSet enc;
    if (encode_checked(lm, data, t->max_len, what, &enc, e)) return -1;
    Lora lora;
    if (!start) {
        lora_init(&lora, &lm->model, rank, alpha, dropout, targets, t->seed);
    } else if (peft_load(&lora, &lm->model, start, e)) {
        encoded_free(&enc);
        return -1;
    }
    char *ck = xasprintf("%s.checkpoint", out_dir), *logp = xasprintf("%s/train_log.jsonl", out_dir),
         *svg = xasprintf("%s/loss.svg", out_dir);
    t->checkpoint_dir = ck;
    t->base_model = base_dir;
    t->log_path = logp;
    StepMethod *method = make(&lm->model, &lora, t->batch_size, max_len_of(&enc), make_ctx);
    TrainLog log;
    int rc = method ? train_run(&lm->model, &lora, &enc, t, method, &log, e) : err_set(e, "%s: no training method", out_dir);
    if (!rc) rc = peft_save(&lora, &lm->model, out_dir, base_dir, e);
    if (!rc) rc = plot_loss_svg(log.loss_curve, log.n_curve, t->label, svg, e);
    if (!rc && r) {
        r->log = log;
        r->workspace_bytes = log.workspace_bytes;
        r->peak_rss_bytes = peak_rss_bytes();
    } else if (!rc) {
        train_log_free(&log);
    }
    t->checkpoint_dir = t->log_path = NULL;  // freed here
    free(ck);
    free(logp);
    free(svg);
    step_method_free(method);
    lora_free(&lora);
    encoded_free(&enc);
    return rc;
}

typedef struct {
    const AlignOpts *o;
    const EncodedSet *harmful;
} AlignMake;

static StepMethod *make_align(const Model *m, const Lora *l, int B, int T, void *p) {
    AlignMake *a = p;
    const AlignOpts *o = a->o;
    switch (o->method) {
    case ALIGN_VACCINE: return vaccine_method_new(m, B, T, o->rho);
    case ALIGN_RANDOM_VACCINE: return random_vaccine_method_new(m, B, T, o->rho, o->train.seed);
    case ALIGN_TVACCINE: {
        TVaccineOpts tv = {o->rho, o->tv_K, o->tv_J, o->tv_S, a->harmful, o->tv_variant};
        return tvaccine_method_new(m, B, T, &tv, o->train.seed);
    }
    case ALIGN_BOOSTER: {
        BoosterOpts bo = {o->booster_lambda, o->booster_alpha, o->booster_batch, o->train.grad_accum, a->harmful,
                          o->train.seed};
        return booster_method_new(m, l, &bo);
    }
    case ALIGN_REPNOISE: {
        RepNoiseOpts ro = {.alpha = o->repnoise_alpha, .beta = o->repnoise_beta, .batch = o->train.batch_size,
                           .grad_accum = o->train.grad_accum, .layer_ce = o->repnoise_layer_ce,
                           .bf16_labels = o->repnoise_bf16_labels, .harmful = a->harmful, .seed = o->train.seed};
        return repnoise_method_new(m, l, B, T, &ro);
    }
    case ALIGN_TAR: {
        // the reference variant: weight 0, the update as the reference's code runs (docs/methods.md, TAR)
        TarOpts to = {.weight = o->tar_variant == TAR_INTENDED ? o->tar_weight : 0.0f, .inner_lr = o->tar_inner_lr,
                      .inner_steps = o->tar_inner_steps, .batch = o->tar_batch, .grad_accum = o->train.grad_accum,
                      .harmful = a->harmful, .seed = o->train.seed};
        if (o->tar_variant == TAR_REFERENCE)
            log_msg(LOG_WARN, "TAR, tar_variant reference: the update is the alignment gradient alone, as the reference's "
                              "code runs (its attack passes run and cost their time), i.e. SFT's; tar_variant intended "
                              "applies the tamper-resistance gradient (docs/methods.md, TAR)");
        return tar_method_new(m, l, &to);
    }
    case ALIGN_SFT: return sft_method_new();
    case ALIGN_NONE:
    case ALIGN_COUNT: break;  // refused by align_opts_check
    }
    return NULL;
}

typedef struct {
    const FinetuneOpts *o;
    const EncodedSet *guide;
    int n_rows;  // training rows (Lisa's 10% point)
} FinetuneMake;

static StepMethod *make_finetune(const Model *m, const Lora *l, int B, int T, void *p) {
    FinetuneMake *f = p;
    const FinetuneOpts *o = f->o;
    switch (o->defense) {
    case FT_LISA: {
        double micro_per_epoch = (f->n_rows + B - 1) / B;
        LisaOpts lo = {o->lisa_rho, o->lisa_align_steps, o->lisa_finetune_steps,
                       0.1 * micro_per_epoch * o->train.epochs, B, o->train.grad_accum, f->guide, o->train.seed};
        return lisa_method_new(m, l, &lo);
    }
    case FT_LDIFS: return ldifs_method_new(m, B, T, o->ldifs_rho);
    case FT_NONE:
    case FT_COUNT: break;
    }
    return sft_method_new();
}

static int stage_align_locked(const char *base_dir, const char *const *merge, int n_merge, const Dataset *align_set,
                              const Dataset *harmful, const AlignOpts *o, const char *out_dir, StageReport *r, Err *e) {
    peak_rss_reset();
    LoadedModel lm;
    if (model_dir_open(&lm, base_dir, o->weights, merge, n_merge, e)) return -1;
    EncodedSet henc = {0};
    int cap = align_harmful_pool(o);
    if (cap) {
        const char *who = align_method_name(o->method);
        if (!harmful || harmful->n == 0) { model_dir_close(&lm); return err_set(e, "%s needs harmful data", who); }
        Dataset pool = *harmful;
        if (pool.n > cap) pool.n = cap;
        char what[64];
        snprintf(what, sizeof what, "%s harmful pool", who);
        if (encode_checked(&lm, &pool, o->train.max_len, what, &henc, e)) {
            model_dir_close(&lm);
            return -1;
        }
    }
    AlignMake mk = {o, &henc};
    TrainOpts t = o->train;
    int rc = train_adapter(&lm, base_dir, align_set, "alignment data", &t, o->rank, o->alpha, o->dropout, o->targets, NULL, make_align, &mk,
                           out_dir, r, e);
    if (henc.ex) encoded_free(&henc);
    model_dir_close(&lm);
    return rc;
}

// The output folder is checked before any work and locked for the whole stage (docs/reliability.md).
int stage_align(const char *base_dir, const char *const *merge, int n_merge, const Dataset *align_set,
                const Dataset *harmful, const AlignOpts *o, const char *out_dir, StageReport *r, Err *e) {
    if (align_opts_check(o, "align.", 0, e)) return -1;
    DirLock lk;
    if (out_dir_usable(out_dir, e) || dir_lock(&lk, out_dir, e)) return -1;
    int rc = stage_align_locked(base_dir, merge, n_merge, align_set, harmful, o, out_dir, r, e);
    dir_unlock(&lk);
    return rc;
}

static int stage_finetune_locked(const char *base_dir, const char *align_adapter, const Dataset *data,
                                 const Dataset *guide, const FinetuneOpts *o, const char *out_dir, StageReport *r,
                                 Err *e) {
    peak_rss_reset();
    LoadedModel lm;
    const char *ads[1] = {align_adapter};
    // single LoRA: the alignment adapter is trained on, not merged (docs/methods.md)
    int merge = align_adapter && !o->single_lora;
    if (model_dir_open(&lm, base_dir, o->weights, ads, merge, e)) return -1;
    TrainOpts t = o->train;
    int n_harm = 0;
    for (int i = 0; i < data->n; i++) n_harm += data->rows[i].harmful != 0;
    log_msg(LOG_INFO, "finetune: mix of %d rows: %d benign, %d harmful (p = %.3f)", data->n, data->n - n_harm, n_harm,
            data->n ? (double)n_harm / data->n : 0.0);
    EncodedSet genc = {0};
    if (o->defense == FT_LISA) {
        if (!guide || guide->n == 0) { model_dir_close(&lm); return err_set(e, "Lisa needs alignment rows"); }
        Dataset g = *guide;
        if (g.n > o->lisa_guide) g.n = o->lisa_guide;
        if (encode_checked(&lm, &g, o->train.max_len, "Lisa alignment rows", &genc, e)) {
            model_dir_close(&lm);
            return -1;
        }
    }
    FinetuneMake mk = {o, &genc, data->n};
    int rc = train_adapter(&lm, base_dir, data, "fine-tuning data", &t, o->rank, o->alpha, o->dropout, o->targets,
                           o->single_lora ? align_adapter : NULL, make_finetune, &mk, out_dir, r, e);
    if (genc.ex) encoded_free(&genc);
    model_dir_close(&lm);
    return rc;
}

// The output folder is checked before any work and locked for the whole stage (docs/reliability.md).
int stage_finetune(const char *base_dir, const char *align_adapter, const Dataset *data, const Dataset *guide,
                   const FinetuneOpts *o, const char *out_dir, StageReport *r, Err *e) {
    if (finetune_opts_check(o, "finetune.", 0, e)) return -1;
    if (o->single_lora && !align_adapter)
        return err_set(e, "finetune.single_lora: needs an alignment adapter to train on (none given)");
    if (o->single_lora && o->defense == FT_LDIFS)  // its anchor would be the base without the alignment
        return err_set(e, "finetune.single_lora: LDIFS needs the aligned model apart from the trained adapter; "
                       "use a fresh adapter (single_lora false)");
    DirLock lk;
    if (out_dir_usable(out_dir, e) || dir_lock(&lk, out_dir, e)) return -1;
    int rc = stage_finetune_locked(base_dir, align_adapter, data, guide, o, out_dir, r, e);
    dir_unlock(&lk);
    return rc;
}

static int stage_antidote_locked(const char *base_dir, const char *align_adapter, const char *ft_adapter, const Dataset *realign,
                   const AntidoteOpts *o, const char *out_dir, Err *e) {
    LoadedModel lm;
    const char *ads[2] = {align_adapter, ft_adapter};
    int n_merge = align_adapter ? 1 : 0;
    const char *const *merge = align_adapter ? ads : NULL;
    if (o->full_mode) {  // prune the fully merged model
        n_merge = align_adapter ? 2 : 1;
        merge = align_adapter ? ads : ads + 1;
    }
    if (model_dir_open(&lm, base_dir, o->weights, merge, n_merge, e)) return -1;
    Lora ft = {0};
    if (!o->full_mode && peft_load(&ft, &lm.model, ft_adapter, e)) { model_dir_close(&lm); return -1; }
    Dataset cal = {0};  // no re-alignment data: magnitude-only pruning
    if (realign) cal = *realign;
    if (cal.n > o->n_samples) cal.n = o->n_samples;
    EncodedSet enc;
    int rc = encode_dataset(lm.tok, lm.eos_id, &cal, o->max_len, &enc, e);
    if (!rc) {
        PruneOpts po = {o->dense_ratio, o->score == PRUNE_RANDOM, o->full_mode, o->targets, o->seed};
        PruneReport rep;
        rc = antidote_prune(&lm.model, o->full_mode ? NULL : &ft, &enc, &po, &rep, e);
        if (!rc)
            log_msg(LOG_INFO, "antidote: pruned %zu of %zu weights (%.2f%%, %s, %s mode) on %d samples", rep.pruned,
                    rep.total, rep.total ? 100.0 * rep.pruned / rep.total : 0.0,
                    po.random ? "random" : enc.n ? "wanda" : "magnitude only",
                    o->full_mode ? "full" : "lora", enc.n);
        encoded_free(&enc);
    }
    if (!rc) {
        if (o->full_mode) {
            rc = model_save(&lm.model, out_dir, o->weights, (size_t)5 << 30, e);
            if (!rc) rc = model_dir_copy_tokenizer(base_dir, out_dir, e);
        } else {
            rc = peft_save(&ft, &lm.model, out_dir, base_dir, e);
        }
    }
    if (!o->full_mode) lora_free(&ft);
    model_dir_close(&lm);
    return rc;
}

// The output folder is checked before any work and locked for the whole stage (docs/reliability.md).
int stage_antidote(const char *base_dir, const char *align_adapter, const char *ft_adapter, const Dataset *realign,
                   const AntidoteOpts *o, const char *out_dir, Err *e) {
    if (antidote_opts_check(o, "antidote.", 0, e)) return -1;
    DirLock lk;
    if (out_dir_usable(out_dir, e) || dir_lock(&lk, out_dir, e)) return -1;
    int rc = stage_antidote_locked(base_dir, align_adapter, ft_adapter, realign, o, out_dir, e);
    dir_unlock(&lk);
    return rc;
}
