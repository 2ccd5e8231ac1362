// The settings model: defaults, the tables of every stage's settings, and their one check.
#include "pipeline/settings.h"

#include <errno.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/intparse.h"
#include "train/optim.h"
#include "util/suggest.h"

static const char *const ALIGN_NAMES[ALIGN_COUNT] = {"none", "sft", "vaccine", "tvaccine", "random-vaccine", "booster", "repnoise", "tar"};
static const char *const SCHEDULE_NAMES[] = {"constant", "cosine", "linear"};  // by Schedule
static const char *const PRUNE_NAMES[] = {"wanda", "random"};                   // by PruneScore
static const char *const TV_VARIANT_NAMES[] = {"reference", "lean"};             // by TVaccineVariant
static const char *const TAR_VARIANT_NAMES[] = {"reference", "intended"};        // by TarVariant
static const char *const FT_DEFENSE_NAMES[FT_COUNT] = {"none", "lisa", "ldifs"};

const char *align_method_name(AlignMethod m) { return m >= 0 && m < ALIGN_COUNT ? ALIGN_NAMES[m] : "?"; }

int align_method_parse(const char *s) {
    for (int i = 0; i < ALIGN_COUNT; i++)
        if (s && !strcmp(s, ALIGN_NAMES[i])) return i;
    return -1;
}

int align_harmful_pool(const AlignOpts *o) {
    switch (o->method) {
    case ALIGN_TVACCINE: return o->tv_pool;
    case ALIGN_BOOSTER: return o->booster_pool;
    case ALIGN_REPNOISE: return o->repnoise_pool;
    case ALIGN_TAR: return o->tar_pool;
    default: return 0;
    }
}

const char *ft_defense_name(FtDefense d) { return d >= 0 && d < FT_COUNT ? FT_DEFENSE_NAMES[d] : "?"; }

int ft_defense_parse(const char *s) {
    for (int i = 0; i < FT_COUNT; i++)
        if (s && !strcmp(s, FT_DEFENSE_NAMES[i])) return i;
    return -1;
}

// ---- defaults ----------------------------------------------------------------------------

void align_opts_default(AlignOpts *o, AlignMethod m) {
    memset(o, 0, sizeof *o);
    o->method = m;
    train_opts_default(&o->train);  // lr 1e-3, wd 0.1, warmup 0.1, cosine, batch 5
    o->train.epochs = 50;
    o->rho = m == ALIGN_TVACCINE ? 3.0f : 2.0f;
    o->tv_K = 200;
    o->tv_J = 20;
    o->tv_S = 8;
    o->tv_pool = 200;
    o->tv_variant = TV_REFERENCE;
    if (m == ALIGN_TVACCINE || m == ALIGN_TAR) {  // T-Vaccine.sh, Tar.sh: batch 10, 20 epochs
        o->train.batch_size = 10;
        o->train.epochs = 20;
    }
    o->booster_lambda = 5;
    o->booster_alpha = 0.1f;
    o->booster_batch = 10;
    o->booster_pool = 5000;
    o->repnoise_alpha = 0.1f;  // RepNoise: the Booster repository's repNoise.sh (docs/methods.md, RepNoise)
    o->repnoise_beta = 1e-3f;
    o->repnoise_pool = 5000;
    o->repnoise_layer_ce = 1;
    o->repnoise_bf16_labels = 1;
    if (m == ALIGN_REPNOISE) {
        o->train.lr = 5e-4f;
        o->train.schedule = SCHED_CONSTANT;
        o->train.warmup_ratio = 0;
        o->train.epochs = 20;
    }
    o->tar_weight = 2;  // TAR: the reference's TarTrainer (docs/methods.md, TAR)
    o->tar_inner_lr = 0.01f;
    o->tar_inner_steps = 1;
    o->tar_batch = 10;
    o->tar_pool = 2000;
    o->tar_variant = TAR_REFERENCE;
    if (m == ALIGN_BOOSTER) {  // Booster's script (docs/methods.md, Booster)
        o->train.lr = 5e-4f;
        o->train.schedule = SCHED_CONSTANT;
        o->train.warmup_ratio = 0;
        o->train.batch_size = 10;
        o->train.epochs = 20;
    }
    o->rank = 8;
    o->alpha = 4;
    o->dropout = 0.1f;
    o->targets = (1 << N_PROJ) - 1;
    o->weights = MAT_F32;
    o->train.label = align_method_name(m);
}

void finetune_opts_default(FinetuneOpts *o, TaskKind task) {
    memset(o, 0, sizeof *o);
    train_opts_default(&o->train);
    o->train.lr = 1e-5f;  // Vaccine's setting (Antidote's is 1e-4)
    o->train.epochs = 20;
    o->train.label = "finetune";
    o->rank = 8;
    o->alpha = 1;
    o->dropout = 0.1f;
    o->targets = (1 << N_PROJ) - 1;
    o->weights = MAT_F32;
    o->n = 1000;
    o->p = 0.1;
    o->mix_seed = 42;
    o->gsm8k_suffix = 1;
    o->defense = FT_NONE;
    o->lisa_rho = 1;  // the Booster repository's lr/epoch scripts (its poison-ratio scripts: 0.01)
    o->lisa_align_steps = 100;
    o->lisa_finetune_steps = 900;
    o->lisa_guide = 10000;
    o->ldifs_rho = 1e-4f;
    // Per-task rules (git-disl/Vaccine script/*_finetune/gsm8k.sh and train.py).
    if (task == TASK_GSM8K) {
        o->alpha = 0.5f;
        o->train.epochs = 50;
    }
    if (task == TASK_ALPACA) o->train.epochs = 100;  // script/vaccine_finetune/alpaca.sh
}

void antidote_opts_default(AntidoteOpts *o) {
    memset(o, 0, sizeof *o);
    o->dense_ratio = 0.1;
    o->score = PRUNE_WANDA;
    o->targets = (1 << P_Q) | (1 << P_K) | (1 << P_V);
    o->n_samples = 2000;
    o->max_len = 200;
    o->seed = 42;
    o->weights = MAT_F32;
}

void eval_settings_default(EvalSettings *s) {
    memset(s, 0, sizeof *s);
    s->n_harmful = 500;
    s->n_task = 500;
    s->n_align = 100;
    s->hed_enabled = 1;
    s->threads = 0;
    s->gsm8k_suffix = 1;
    eval_opts_default(&s->opts);
}

// ---- the tables --------------------------------------------------------------------------

#define INF HUGE_VAL
#define S_(key, type, T, field, lo, hi, fl, help) {key, {NULL}, type, offsetof(T, field), lo, hi, fl, help}
// A setting with aliases: the names Hugging Face's TrainingArguments, TRL's SFTConfig and PEFT's
// LoraConfig give it (learning_rate, lora_r, ...), accepted as flags and config keys alike.
#define A_(key, a0, a1, type, T, field, lo, hi, fl, help) {key, {a0, a1, NULL}, type, offsetof(T, field), lo, hi, fl, help}

// The training loop's settings (train/trainer.h) inside a stage struct T with member `train`.
#define TRAIN_SETTINGS(T)                                                                                  \
    A_("lr", "learning_rate", NULL, SET_FLOAT, T, train.lr, 0, INF, SET_MIN_OPEN, "peak learning rate"),                          \
    S_("weight_decay", SET_FLOAT, T, train.weight_decay, 0, INF, 0, "AdamW weight decay"),                 \
    S_("warmup_ratio", SET_FLOAT, T, train.warmup_ratio, 0, 1, 0, "warmup steps = ceil(ratio * total)"),   \
    S_("max_grad_norm", SET_FLOAT, T, train.max_grad_norm, 0, INF, 0, "gradient clipping (0: none)"),      \
    A_("beta1", "adam_beta1", NULL, SET_FLOAT, T, train.beta1, 0, 1, SET_MAX_OPEN, "AdamW beta1"),                             \
    A_("beta2", "adam_beta2", NULL, SET_FLOAT, T, train.beta2, 0, 1, SET_MAX_OPEN, "AdamW beta2"),                             \
    A_("eps", "adam_epsilon", NULL, SET_FLOAT, T, train.eps, 0, INF, SET_MIN_OPEN, "AdamW epsilon"),                             \
    S_("schedule", SET_SCHEDULE, T, train.schedule, 0, 0, 0, "cosine, linear or constant"),                \
    A_("batch_size", "per_device_train_batch_size", NULL, SET_INT, T, train.batch_size, 1, INT_MAX, 0, "rows per micro-batch"),                 \
    A_("grad_accum", "gradient_accumulation_steps", NULL, SET_INT, T, train.grad_accum, 1, INT_MAX, 0, "micro-batches per optimizer step"),     \
    A_("epochs", "num_train_epochs", NULL, SET_INT, T, train.epochs, 1, INT_MAX, 0, "passes over the data"),                         \
    S_("max_steps", SET_I64, T, train.max_steps, 0, INF, 0, "cap on optimizer steps (0: none)"),           \
    A_("max_len", "max_seq_length", "max_length", SET_INT, T, train.max_len, 2, INT_MAX, 0, "tokens per row (truncation)"),                \
    S_("seed", SET_U64, T, train.seed, 0, INF, SET_NO_CONFIG,                                              \
       "adapter initialisation, data order, dropout (pipeline: the run's seed)"),                         \
    S_("checkpoint_every", SET_INT, T, train.checkpoint_every, 0, INT_MAX, 0, "steps between checkpoints (0: by time only)"), \
    S_("checkpoint_minutes", SET_DOUBLE, T, train.checkpoint_minutes, 0, INF, 0,                              \
       "also checkpoint when this long passed since the last (0: off); Ctrl-C saves one and stops")

// LoRA and base-weight settings of a stage struct T.
#define LORA_SETTINGS(T)                                                                                   \
    A_("rank", "lora_r", "r", SET_INT, T, rank, 1, INT_MAX, 0, "LoRA rank"),                                              \
    A_("alpha", "lora_alpha", NULL, SET_FLOAT, T, alpha, -INF, INF, 0, "LoRA alpha (scale alpha / rank)"),                     \
    A_("dropout", "lora_dropout", NULL, SET_FLOAT, T, dropout, 0, 1, SET_MAX_OPEN, "LoRA dropout"),                              \
    A_("targets", "lora_target_modules", "target_modules", SET_TARGETS, T, targets, 0, 0, 0, "projections with LoRA (q,k,v,o,gate,up,down or all)"),\
    S_("bf16", SET_BF16, T, weights, 0, 0, 0, "keep base weights in bf16")

static const Setting ALIGN_ITEMS[] = {
    S_("method", SET_ALIGN, AlignOpts, method, 0, 0, SET_NO_CONFIG, "sft, vaccine, tvaccine, random-vaccine, booster, repnoise or tar"),
    TRAIN_SETTINGS(AlignOpts),
    LORA_SETTINGS(AlignOpts),
    S_("rho", SET_FLOAT, AlignOpts, rho, 0, INF, 0, "perturbation norm (random-vaccine: noise variance)"),
    S_("tv_K", SET_INT, AlignOpts, tv_K, 1, INT_MAX, 0, "T-Vaccine: steps between layer-probability refreshes"),
    S_("tv_J", SET_INT, AlignOpts, tv_J, 1, INT_MAX, 0, "T-Vaccine: steps between layer draws"),
    S_("tv_S", SET_INT, AlignOpts, tv_S, 1, INT_MAX, 0, "T-Vaccine: layers drawn"),
    S_("tv_pool", SET_INT, AlignOpts, tv_pool, 1, INT_MAX, 0, "T-Vaccine: harmful rows for the probabilities"),
    S_("tv_variant", SET_TV_VARIANT, AlignOpts, tv_variant, 0, 0, 0, "T-Vaccine: reference or lean (docs/methods.md)"),
    S_("booster_lambda", SET_FLOAT, AlignOpts, booster_lambda, 0, INF, 0, "Booster: weight of the harmful-perturbation regulariser"),
    S_("booster_alpha", SET_FLOAT, AlignOpts, booster_alpha, 0, INF, 0, "Booster: size of the normalised harmful step"),
    S_("booster_batch", SET_INT, AlignOpts, booster_batch, 1, INT_MAX, 0, "Booster: harmful rows per step"),
    S_("booster_pool", SET_INT, AlignOpts, booster_pool, 1, INT_MAX, 0, "Booster: harmful rows drawn from (the first ones)"),
    S_("repnoise_alpha", SET_FLOAT, AlignOpts, repnoise_alpha, 0, INF, 0, "RepNoise: weight of the harmful-loss ascent -log H"),
    S_("repnoise_beta", SET_FLOAT, AlignOpts, repnoise_beta, 0, INF, 0, "RepNoise: weight of the noise distance (MMD)"),
    S_("repnoise_pool", SET_INT, AlignOpts, repnoise_pool, 1, INT_MAX, 0, "RepNoise: harmful rows drawn from (the first ones)"),
    S_("repnoise_layer_ce", SET_BOOL, AlignOpts, repnoise_layer_ce, 0, 0, 0,
       "RepNoise: the harmful loss at every layer's hidden state too (Booster's code; Antidote's: false)"),
    S_("repnoise_bf16_labels", SET_BOOL, AlignOpts, repnoise_bf16_labels, 0, 0, 0,
       "RepNoise: harmful-loss labels rounded to bf16 as the Booster/T-Vaccine code does (docs/methods.md)"),
    S_("tar_weight", SET_FLOAT, AlignOpts, tar_weight, 0, INF, 0, "TAR: weight of the tamper-resistance gradient"),
    S_("tar_inner_lr", SET_FLOAT, AlignOpts, tar_inner_lr, 0, INF, 0, "TAR: learning rate of the simulated attack's SGD steps"),
    S_("tar_inner_steps", SET_INT, AlignOpts, tar_inner_steps, 0, 10000, 0, "TAR: SGD steps of the simulated attack per batch"),
    S_("tar_batch", SET_INT, AlignOpts, tar_batch, 1, INT_MAX, 0, "TAR: harmful rows per attack step"),
    S_("tar_pool", SET_INT, AlignOpts, tar_pool, 1, INT_MAX, 0, "TAR: harmful rows drawn from (the first ones)"),
    S_("tar_variant", SET_TAR_VARIANT, AlignOpts, tar_variant, 0, 0, 0,
       "TAR: reference (the update as its code runs: the alignment gradient) or intended (docs/methods.md)"),
};

static const Setting FINETUNE_ITEMS[] = {
    TRAIN_SETTINGS(FinetuneOpts),
    LORA_SETTINGS(FinetuneOpts),
    S_("n", SET_INT, FinetuneOpts, n, 1, INT_MAX, 0, "rows of the fine-tuning mixture"),
    S_("p", SET_DOUBLE, FinetuneOpts, p, 0, 1, 0, "harmful ratio of the mixture"),
    S_("mix_seed", SET_U64, FinetuneOpts, mix_seed, 0, INF, SET_NO_CONFIG, "shuffle of the mixture (pipeline: the run's seed)"),
    S_("single_lora", SET_BOOL, FinetuneOpts, single_lora, 0, 0, 0,
       "train the alignment adapter on instead of merging it (docs/methods.md)"),
    S_("gsm8k_suffix", SET_BOOL, FinetuneOpts, gsm8k_suffix, 0, 0, 0, "GSM8K questions end with \"First think step by step...\""),
    S_("defense", SET_FT_DEFENSE, FinetuneOpts, defense, 0, 0, SET_NO_CONFIG,
       "none, lisa or ldifs (docs/methods.md; pipeline: the method's +lisa / +ldifs)"),
    S_("lisa_rho", SET_FLOAT, FinetuneOpts, lisa_rho, 0, INF, 0, "Lisa: proximal weight"),
    S_("lisa_align_steps", SET_INT, FinetuneOpts, lisa_align_steps, 0, INT_MAX, 0, "Lisa: steps on alignment rows per cycle"),
    S_("lisa_finetune_steps", SET_INT, FinetuneOpts, lisa_finetune_steps, 0, INT_MAX, 0, "Lisa: steps on the user's rows per cycle"),
    S_("lisa_guide", SET_INT, FinetuneOpts, lisa_guide, 1, INT_MAX, 0, "Lisa: alignment rows drawn from (the first ones)"),
    S_("ldifs_rho", SET_FLOAT, FinetuneOpts, ldifs_rho, 0, INF, 0, "LDIFS: weight of the feature distance"),
};

static const Setting ANTIDOTE_ITEMS[] = {
    S_("dense_ratio", SET_DOUBLE, AntidoteOpts, dense_ratio, 0, 1, 0, "fraction of each row pruned"),
    {"full_mode", {"full"}, SET_BOOL, offsetof(AntidoteOpts, full_mode), 0, 0, 0,
     "prune the merged model's projections instead of the adapter"},
    S_("score", SET_PRUNE, AntidoteOpts, score, 0, 0, SET_NO_CONFIG, "wanda or random (the ablation)"),
    S_("targets", SET_TARGETS, AntidoteOpts, targets, 0, 0, 0, "projections pruned in full mode"),
    {"n_samples", {"samples"}, SET_INT, offsetof(AntidoteOpts, n_samples), 0, INT_MAX, 0,
     "re-alignment rows used (0: magnitude-only pruning)"},
    S_("max_len", SET_INT, AntidoteOpts, max_len, 2, INT_MAX, 0, "tokens per re-alignment row"),
    S_("seed", SET_U64, AntidoteOpts, seed, 0, INF, SET_NO_CONFIG, "random pruning (pipeline: the run's seed)"),
    S_("bf16", SET_BF16, AntidoteOpts, weights, 0, 0, 0, "keep base weights in bf16"),
};

static const Setting EVAL_ITEMS[] = {
    {"n_harmful", {"n"}, SET_INT, offsetof(EvalSettings, n_harmful), 0, INT_MAX, 0, "harmful prompts evaluated"},
    S_("n_task", SET_INT, EvalSettings, n_task, 0, INT_MAX, 0, "task rows evaluated"),
    S_("n_align", SET_INT, EvalSettings, n_align, 0, INT_MAX, 0, "alignment rows for alignment loss and HED"),
    S_("hed", SET_BOOL, EvalSettings, hed_enabled, 0, 0, 0, "compute the harmful embedding drift"),
    S_("threads", SET_INT, EvalSettings, threads, 0, INT_MAX, 0, "OpenMP threads (0: all)"),
    S_("gsm8k_suffix", SET_BOOL, EvalSettings, gsm8k_suffix, 0, 0, 0, "GSM8K questions end with \"First think step by step...\""),
    S_("hs_max_new", SET_INT, EvalSettings, opts.hs_max_new, 1, INT_MAX, 0, "new tokens of a harmful-prompt answer (pred.py: 128)"),
    S_("fa_max_new", SET_INT, EvalSettings, opts.fa_max_new, 1, INT_MAX, 0, "new tokens of a task answer (pred_eval.py: 200)"),
    S_("batch_size", SET_INT, EvalSettings, opts.batch_size, 1, INT_MAX, 0, "alignment loss / HED batch"),
    S_("hed_batches", SET_INT, EvalSettings, opts.hed_batches, 0, INT_MAX, 0, "HED batches"),
    S_("max_len", SET_INT, EvalSettings, opts.max_len, 2, INT_MAX, 0, "alignment loss / HED truncation"),
};

static const Setting BASE_ITEMS[] = {
    S_("dim", SET_INT, BaseModelOptions, dim, 1, INT_MAX, 0, "model width"),
    S_("n_layers", SET_INT, BaseModelOptions, n_layers, 1, INT_MAX, 0, "layers"),
    S_("n_heads", SET_INT, BaseModelOptions, n_heads, 1, INT_MAX, 0, "attention heads"),
    S_("n_kv_heads", SET_INT, BaseModelOptions, n_kv_heads, 1, INT_MAX, 0, "key/value heads"),
    S_("hidden_dim", SET_INT, BaseModelOptions, hidden_dim, 1, INT_MAX, 0, "MLP width"),
    S_("vocab_size", SET_INT, BaseModelOptions, vocab_size, 260, INT_MAX, 0, "BPE vocabulary"),
    S_("epochs", SET_INT, BaseModelOptions, epochs, 1, INT_MAX, 0, "training passes"),
    S_("batch_size", SET_INT, BaseModelOptions, batch_size, 1, INT_MAX, 0, "rows per batch"),
    S_("max_len", SET_INT, BaseModelOptions, max_len, 2, INT_MAX, 0, "tokens per row"),
    S_("lr", SET_FLOAT, BaseModelOptions, lr, 0, INF, SET_MIN_OPEN, "learning rate"),
    S_("seed", SET_U64, BaseModelOptions, seed, 0, INF, 0, "initialisation and data order"),
};

static const Setting WORLD_ITEMS[] = {
    S_("seed", SET_U64, WorldOptions, seed, 0, INF, 0, "the world's seed"),
    S_("n_base", SET_INT, WorldOptions, n_base, 0, INT_MAX, 0, "base-model corpus rows"),
    S_("n_align", SET_INT, WorldOptions, n_align, 0, INT_MAX, 0, "alignment rows"),
    S_("n_harmful", SET_INT, WorldOptions, n_harmful, 0, INT_MAX, 0, "harmful fine-tuning rows"),
    S_("n_realign", SET_INT, WorldOptions, n_realign, 0, INT_MAX, 0, "re-alignment rows"),
    S_("n_test_harmful", SET_INT, WorldOptions, n_test_harmful, 0, INT_MAX, 0, "held-out harmful prompts"),
    S_("n_task_train", SET_INT, WorldOptions, n_task_train, 0, INT_MAX, 0, "task training rows"),
    S_("n_task_test", SET_INT, WorldOptions, n_task_test, 0, INT_MAX, 0, "task test rows"),
};

#define TABLE(name, items) {name, items, (int)(sizeof items / sizeof *items)}
const SettingTable ALIGN_SETTINGS = TABLE("align", ALIGN_ITEMS);
const SettingTable FINETUNE_SETTINGS = TABLE("finetune", FINETUNE_ITEMS);
const SettingTable ANTIDOTE_SETTINGS = TABLE("antidote", ANTIDOTE_ITEMS);
const SettingTable EVAL_SETTINGS = TABLE("eval", EVAL_ITEMS);
const SettingTable BASE_SETTINGS = TABLE("base_training", BASE_ITEMS);
const SettingTable WORLD_SETTINGS = TABLE("world", WORLD_ITEMS);

// ---- names -------------------------------------------------------------------------------

int setting_name_equal(const char *a, size_t n, const char *b) {
    for (size_t i = 0; i < n; i++, b++) {
        char x = a[i] == '-' ? '_' : a[i], y = *b == '-' ? '_' : *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (!y || x != y) return 0;
    }
    return *b == '\0';
}

void setting_flag_name(const char *key, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", key);
    for (char *p = buf; *p; p++) {
        if (*p == '_') *p = '-';
        else if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    }
}

int setting_is_named(const Setting *s, const char *name) {
    if (setting_name_equal(name, strlen(name), s->key)) return 1;
    for (int k = 0; k < 3 && s->alias[k]; k++)
        if (setting_name_equal(name, strlen(name), s->alias[k])) return 1;
    return 0;
}

const Setting *settings_find(const SettingTable *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (setting_is_named(&t->items[i], name)) return &t->items[i];
    return NULL;
}

// ---- storing values ----------------------------------------------------------------------

#define AT(T, obj, s) ((T *)((char *)(obj) + (s)->offset))
#define AT_C(T, obj, s) ((const T *)((const char *)(obj) + (s)->offset))

static int is_integer_type(SettingType t) { return t == SET_INT || t == SET_U64 || t == SET_I64; }

// Stores a number (already parsed) into a numeric setting; integers must be whole and fit.
static int store_number(const Setting *s, void *obj, double v, Err *e) {
    if (is_integer_type(s->type)) {
        double lo = s->type == SET_INT ? INT_MIN : s->type == SET_U64 ? 0 : -9.2e18;
        double hi = s->type == SET_INT ? INT_MAX : 9.2e18;
        if (v != floor(v) || v < lo || v > hi)
            return err_set(e, "expected a whole number in [%.0f, %.0f], got %.17g", lo, hi, v);
    }
    if (s->type == SET_FLOAT && !(fabs(v) <= FLT_MAX))  // (float)1e300 would be inf, and "lr > 0" would pass
        return err_set(e, "expected a number a float holds (|x| <= %g), got %.17g", (double)FLT_MAX, v);
    switch (s->type) {
    case SET_INT: *AT(int, obj, s) = (int)v; break;
    case SET_U64: *AT(uint64_t, obj, s) = (uint64_t)v; break;
    case SET_I64: *AT(int64_t, obj, s) = (int64_t)v; break;
    case SET_FLOAT: *AT(float, obj, s) = (float)v; break;
    case SET_DOUBLE: *AT(double, obj, s) = v; break;
    default: return err_set(e, "not a number setting");
    }
    return 0;
}

static int store_word(const Setting *s, void *obj, const char *w, Err *e) {
    switch (s->type) {
    case SET_SCHEDULE: {
        int k = schedule_parse(w);
        if (k < 0) return err_set(e, "unknown schedule \"%s\" (cosine, linear, constant)", w);
        *AT(Schedule, obj, s) = (Schedule)k;
        return 0;
    }
    case SET_TARGETS: {
        Err pe;
        int mask = !strcmp(w, "all-linear") ? (1 << N_PROJ) - 1 : proj_mask_parse(w, &pe);  // PEFT's name for all
        if (mask <= 0) return err_set(e, "%s (expected a list like \"q,k,v,o,gate,up,down\" or \"all\")", pe.msg);
        *AT(int, obj, s) = mask;
        return 0;
    }
    case SET_ALIGN: {
        int m = align_method_parse(w);
        if (m < 0) {
            Suggest sg;
            suggest_init(&sg, w);
            for (int k = ALIGN_NONE + 1; k < ALIGN_COUNT; k++) suggest_add(&sg, ALIGN_NAMES[k]);
            char hint[96];
            return err_set(e, "unknown method \"%s\" (%ssft, vaccine, tvaccine, random-vaccine, booster, repnoise, tar)", w,
                           suggest_hint(&sg, hint, sizeof hint));
        }
        *AT(AlignMethod, obj, s) = (AlignMethod)m;
        return 0;
    }
    case SET_PRUNE:
        for (int k = 0; k < 2; k++)
            if (!strcmp(w, PRUNE_NAMES[k])) { *AT(PruneScore, obj, s) = (PruneScore)k; return 0; }
        return err_set(e, "unknown score \"%s\" (wanda, random)", w);
    case SET_TV_VARIANT:
        for (int k = 0; k < 2; k++)
            if (!strcmp(w, TV_VARIANT_NAMES[k])) { *AT(TVaccineVariant, obj, s) = (TVaccineVariant)k; return 0; }
        return err_set(e, "must be \"reference\" or \"lean\", got \"%s\"", w);
    case SET_TAR_VARIANT:
        for (int k = 0; k < 2; k++)
            if (!strcmp(w, TAR_VARIANT_NAMES[k])) { *AT(TarVariant, obj, s) = (TarVariant)k; return 0; }
        return err_set(e, "must be \"reference\" or \"intended\", got \"%s\"", w);
    case SET_FT_DEFENSE: {
        int d = ft_defense_parse(w);
        if (d < 0) return err_set(e, "unknown defense \"%s\" (none, lisa, ldifs)", w);
        *AT(FtDefense, obj, s) = (FtDefense)d;
        return 0;
    }
    default: return err_set(e, "expected a %s", s->type == SET_BOOL || s->type == SET_BF16 ? "boolean" : "number");
    }
}

static void store_bool(const Setting *s, void *obj, int b) {
    if (s->type == SET_BF16) *AT(MatType, obj, s) = b ? MAT_BF16 : MAT_F32;
    else *AT(int, obj, s) = b;
}

int setting_set_text(const Setting *s, void *obj, const char *text, Err *e) {
    if (s->type == SET_BOOL || s->type == SET_BF16) {
        if (!strcmp(text, "1") || !strcasecmp(text, "true")) store_bool(s, obj, 1);
        else if (!strcmp(text, "0") || !strcasecmp(text, "false")) store_bool(s, obj, 0);
        else return err_set(e, "expected true or false, got \"%s\"", text);
        return 0;
    }
    if (s->type >= SET_SCHEDULE && s->type != SET_BF16) return store_word(s, obj, text, e);
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v)) return err_set(e, "expected a number, got \"%s\"", text);
    return store_number(s, obj, v, e);
}

// PEFT's target_modules as a JSON list (["q_proj", "v_proj"]): the names joined by ','.
static int store_target_list(const Setting *s, void *obj, json_t *v, Err *e) {
    char list[256] = "";
    size_t i, k = 0;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x)) return err_set(e, "expected a string or a list of projection names");
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? "," : "", json_string_value(x));
        if (k >= sizeof list) return err_set(e, "projection list too long");
    }
    return store_word(s, obj, list, e);
}

int setting_set_json(const Setting *s, void *obj, json_t *v, Err *e) {
    switch (s->type) {
    case SET_BOOL:
    case SET_BF16:
        if (!json_is_boolean(v)) return err_set(e, "expected true or false");
        store_bool(s, obj, json_is_true(v));
        return 0;
    case SET_TARGETS:
        if (json_is_array(v)) return store_target_list(s, obj, v, e);
        // fall through
    case SET_SCHEDULE:
    case SET_ALIGN:
    case SET_PRUNE:
    case SET_TV_VARIANT:
    case SET_TAR_VARIANT:
    case SET_FT_DEFENSE:
        if (!json_is_string(v)) return err_set(e, "expected a string");
        return store_word(s, obj, json_string_value(v), e);
    default:
        if (is_integer_type(s->type)) {  // exactly (no rounding through a double); 3.0 reads as 3
            int64_t lo = s->type == SET_INT ? INT_MIN : s->type == SET_U64 ? 0 : INT64_MIN;
            int64_t hi = s->type == SET_INT ? INT_MAX : INT64_MAX, x;
            int rc = json_int(v, lo, hi, &x);
            if (rc == INT_OUT_OF_RANGE)
                return err_set(e, "expected a whole number in [%lld, %lld]", (long long)lo, (long long)hi);
            if (rc) return json_is_number(v) ? err_set(e, "expected a whole number, got %.17g", json_number_value(v))
                                             : err_set(e, "expected an integer");
            if (s->type == SET_INT) *AT(int, obj, s) = (int)x;
            else if (s->type == SET_U64) *AT(uint64_t, obj, s) = (uint64_t)x;
            else *AT(int64_t, obj, s) = x;
            return 0;
        }
        if (!json_is_number(v)) return err_set(e, "expected a number");
        return store_number(s, obj, json_number_value(v), e);
    }
}

// ---- the check ---------------------------------------------------------------------------

static double number_of(const Setting *s, const void *obj) {
    switch (s->type) {
    case SET_INT: return *AT_C(int, obj, s);
    case SET_U64: return (double)*AT_C(uint64_t, obj, s);
    case SET_I64: return (double)*AT_C(int64_t, obj, s);
    case SET_FLOAT: return *AT_C(float, obj, s);
    case SET_DOUBLE: return *AT_C(double, obj, s);
    default: return 0;
    }
}

int settings_check(const SettingTable *t, const void *obj, const char *prefix, int flag_names, Err *e) {
    for (int i = 0; i < t->n; i++) {
        const Setting *s = &t->items[i];
        char name[64];
        if (flag_names) setting_flag_name(s->key, name, sizeof name);
        else snprintf(name, sizeof name, "%s", s->key);
        if (s->type == SET_TARGETS) {
            int m = *AT_C(int, obj, s);
            if (m <= 0 || m >= (1 << N_PROJ)) return err_set(e, "%s%s: must name at least one projection", prefix, name);
            continue;
        }
        if (s->type > SET_DOUBLE) continue;  // the numbers come first in SettingType
        double v = number_of(s, obj);
        int lo_ok = s->flags & SET_MIN_OPEN ? v > s->min : v >= s->min;
        int hi_ok = s->flags & SET_MAX_OPEN ? v < s->max : v <= s->max;
        if (isnan(v) || !lo_ok || !hi_ok) {
            char range[96];
            if (s->max == INF || (is_integer_type(s->type) && s->max >= INT_MAX))
                snprintf(range, sizeof range, "must be %s %g", s->flags & SET_MIN_OPEN ? ">" : ">=", s->min);
            else
                snprintf(range, sizeof range, "must be in %c%g, %g%c", s->flags & SET_MIN_OPEN ? '(' : '[', s->min,
                         s->max, s->flags & SET_MAX_OPEN ? ')' : ']');
            return err_set(e, "%s%s: %s (got %g)", prefix, name, range, v);
        }
    }
    return 0;
}

// ---- printing ----------------------------------------------------------------------------

// The shortest decimal that reads back as the same float (as the same double for doubles).
static double shortest(double v, int is_float) {
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        double r = strtod(buf, NULL);
        if (is_float ? (float)r == (float)v : r == v) return r;
    }
    return v;
}

static char *targets_text(int mask, char *buf, size_t cap) {
    static const char *const short_names[N_PROJ] = {"q", "k", "v", "o", "gate", "up", "down"};
    if (mask == (1 << N_PROJ) - 1) { snprintf(buf, cap, "all"); return buf; }
    size_t k = 0;
    buf[0] = '\0';
    for (int p = 0; p < N_PROJ; p++)
        if (mask >> p & 1) k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? "," : "", short_names[p]);
    return buf;
}

json_t *settings_to_json(const SettingTable *t, const void *obj, int config_keys_only) {
    json_t *o = json_object();
    for (int i = 0; i < t->n; i++) {
        const Setting *s = &t->items[i];
        if (config_keys_only && (s->flags & SET_NO_CONFIG)) continue;
        char buf[64];
        json_t *v;
        switch (s->type) {
        case SET_INT: v = json_integer(*AT_C(int, obj, s)); break;
        case SET_U64: v = json_integer((json_int_t)*AT_C(uint64_t, obj, s)); break;
        case SET_I64: v = json_integer((json_int_t)*AT_C(int64_t, obj, s)); break;
        case SET_FLOAT: v = json_real(shortest(*AT_C(float, obj, s), 1)); break;
        case SET_DOUBLE: v = json_real(shortest(*AT_C(double, obj, s), 0)); break;
        case SET_BOOL: v = json_boolean(*AT_C(int, obj, s)); break;
        case SET_BF16: v = json_boolean(*AT_C(MatType, obj, s) == MAT_BF16); break;
        case SET_SCHEDULE: v = json_string(SCHEDULE_NAMES[*AT_C(Schedule, obj, s)]); break;
        case SET_TARGETS: v = json_string(targets_text(*AT_C(int, obj, s), buf, sizeof buf)); break;
        case SET_ALIGN: v = json_string(align_method_name(*AT_C(AlignMethod, obj, s))); break;
        case SET_PRUNE: v = json_string(PRUNE_NAMES[*AT_C(PruneScore, obj, s)]); break;
        case SET_TV_VARIANT: v = json_string(TV_VARIANT_NAMES[*AT_C(TVaccineVariant, obj, s)]); break;
        case SET_TAR_VARIANT: v = json_string(TAR_VARIANT_NAMES[*AT_C(TarVariant, obj, s)]); break;
        case SET_FT_DEFENSE: v = json_string(ft_defense_name(*AT_C(FtDefense, obj, s))); break;
        default: v = json_null(); break;
        }
        json_object_set_new(o, s->key, v);
    }
    return o;
}

// ---- whole stages ------------------------------------------------------------------------

int align_opts_check(const AlignOpts *o, const char *prefix, int flag_names, Err *e) {
    if (o->method <= ALIGN_NONE || o->method >= ALIGN_COUNT)
        return err_set(e, "%smethod: must be sft, vaccine, tvaccine, random-vaccine, booster, repnoise or tar", prefix);
    // The reference's TAR update never holds its tamper-resistance gradient: a weight other
    // than the default would be read and silently unused.
    AlignOpts d;
    align_opts_default(&d, ALIGN_TAR);
    if (o->method == ALIGN_TAR && o->tar_variant == TAR_REFERENCE && o->tar_weight != d.tar_weight) {
        const char *u = flag_names ? "-" : "_";
        return err_set(e, "%star%sweight: has no effect with tar%svariant reference, whose update is the alignment gradient "
                       "alone as the reference's code runs (docs/methods.md, TAR); set tar%svariant intended to apply it",
                       prefix, u, u, u);
    }
    return settings_check(&ALIGN_SETTINGS, o, prefix, flag_names, e);
}

int finetune_opts_check(const FinetuneOpts *o, const char *prefix, int flag_names, Err *e) {
    // LDIFS measures features against the model without the trained adapter: with single LoRA
    // that is the bare base, not the aligned model it means.
    if (o->single_lora && o->defense == FT_LDIFS)
        return err_set(e, "%ssingle%slora: LDIFS's reference features are the aligned model without the trained adapter, "
                          "which single LoRA does not have (docs/methods.md)", prefix, flag_names ? "-" : "_");
    return settings_check(&FINETUNE_SETTINGS, o, prefix, flag_names, e);
}

int antidote_opts_check(const AntidoteOpts *o, const char *prefix, int flag_names, Err *e) {
    return settings_check(&ANTIDOTE_SETTINGS, o, prefix, flag_names, e);
}

int eval_settings_check(const EvalSettings *s, const char *prefix, int flag_names, Err *e) {
    return settings_check(&EVAL_SETTINGS, s, prefix, flag_names, e);
}

// ---- JSON text -----------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t n, cap;
} Text;

static void put(Text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->cap) {
        while (t->n + n + 1 > t->cap) t->cap = t->cap ? t->cap * 2 : 256;
        t->s = xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = '\0';
}
static void puts_(Text *t, const char *s) { put(t, s, strlen(s)); }

static void dump(Text *t, const json_t *v, int depth) {
    char buf[64];
    if (json_is_object(v)) {
        if (!json_object_size(v)) { puts_(t, "{}"); return; }
        puts_(t, "{");
        const char *k;
        json_t *x;
        int first = 1;
        json_object_foreach((json_t *)v, k, x) {
            puts_(t, first ? "\n" : ",\n");
            first = 0;
            for (int i = 0; i <= depth; i++) puts_(t, "  ");
            json_t *key = json_string(k);
            char *ks = json_dumps(key, JSON_ENCODE_ANY);
            puts_(t, ks);
            free(ks);
            json_decref(key);
            puts_(t, ": ");
            dump(t, x, depth + 1);
        }
        puts_(t, "\n");
        for (int i = 0; i < depth; i++) puts_(t, "  ");
        puts_(t, "}");
    } else if (json_is_array(v)) {
        puts_(t, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) puts_(t, ", ");
            dump(t, json_array_get(v, i), depth + 1);
        }
        puts_(t, "]");
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        int p = 1;
        for (; p < 17; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, d);
            if (strtod(buf, NULL) == d) break;
        }
        snprintf(buf, sizeof buf, "%.*g", p, d);
        if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");  // stays a real when read back
        puts_(t, buf);
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        puts_(t, s ? s : "null");
        free(s);
    }
}

char *settings_json_text(const json_t *v) {
    Text t = {0};
    dump(&t, v, 0);
    puts_(&t, "\n");
    return t.s;
}
