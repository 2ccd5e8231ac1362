// The papers' presets (docs/methods.md, Presets): every value below is the one the authors'
// scripts pass or their train.py hard-codes; the comment names the script. Repositories:
// Vaccine = git-disl/Vaccine, T-Vaccine = Lslland/T-Vaccine, Antidote = git-disl/Antidote.
#include "pipeline/presets.h"

#include <string.h>

static const char *const PRESET_NAMES[PRESET_COUNT] = {"none", "vaccine", "tvaccine", "antidote"};

const char *preset_name(Preset p) { return p >= 0 && p < PRESET_COUNT ? PRESET_NAMES[p] : "?"; }

int preset_parse(const char *s) {
    for (int p = PRESET_NONE + 1; p < PRESET_COUNT; p++)
        if (s && !strcmp(s, PRESET_NAMES[p])) return p;
    return -1;
}

// The Hugging Face Trainer loop every script runs: AdamW with the Trainer's defaults
// (betas 0.9/0.999, eps 1e-8, gradient clipping 1.0), weight decay 0.1, no accumulation.
// Schedules: "cosine" warms up for warmup_ratio 0.1 of the steps; "constant" is
// transformers' get_constant_schedule, which ignores the scripts' --warmup_ratio 0.1.
static void trainer_loop(TrainOpts *t, float lr, Schedule s, int batch, int epochs, int max_len) {
    t->lr = lr;
    t->schedule = s;
    t->warmup_ratio = s == SCHED_CONSTANT ? 0.0f : 0.1f;
    t->weight_decay = 0.1f;
    t->beta1 = 0.9f;
    t->beta2 = 0.999f;
    t->eps = 1e-8f;
    t->max_grad_norm = 1.0f;
    t->grad_accum = 1;
    t->batch_size = batch;
    t->epochs = epochs;
    t->max_len = max_len;
}

#define QKV ((1 << P_Q) | (1 << P_K) | (1 << P_V))

// LoRA of a stage struct with fields rank, alpha, dropout, targets.
#define LORA_AS(o, r, a, d, t) ((o)->rank = (r), (o)->alpha = (a), (o)->dropout = (d), (o)->targets = (t))

// RepNoise's weights (the same in every script), its pool and which copy of the loss.
static void repnoise_as(AlignOpts *o, int pool, int booster_code) {
    o->repnoise_alpha = 0.1f;
    o->repnoise_beta = 1e-3f;
    o->repnoise_pool = pool;
    o->repnoise_layer_ce = booster_code;
    o->repnoise_bf16_labels = booster_code;
}

void preset_align(Preset p, AlignOpts *o) {
    AlignMethod m = o->method;
    switch (p) {
    case PRESET_VACCINE:
        // script/alignment/{SFT,Vaccine,random_Vaccine}.sh: 50 epochs, batch 5, lr 1e-3, cosine;
        // train.py: LoRA r 8, alpha 4, dropout 0.1 on all seven projections, model_max_length
        // 200; README: `Vaccine.sh 2` (rho 2).
        if (m != ALIGN_SFT && m != ALIGN_VACCINE && m != ALIGN_RANDOM_VACCINE) return;
        trainer_loop(&o->train, 1e-3f, SCHED_COSINE, 5, 50, 200);
        LORA_AS(o, 8, 4.0f, 0.1f, PROJ_ALL);
        if (m == ALIGN_VACCINE) o->rho = 2.0f;
        return;
    case PRESET_TVACCINE:
        // script/alignment/{SFT,Vaccine,T-Vaccine}.sh: 20 epochs, batch 10, lr 1e-3, cosine,
        // --max_length 200; train.py: LoRA r 8, alpha 4, dropout 0.1, all projections.
        // T-Vaccine.sh: S (lisa_activated_layers) 8, J (lisa_interval_steps) 20, K
        // (probability_steps) 200, prompt_data_size 200; README: `T-Vaccine.sh 3` (rho 3).
        // Vaccine.sh takes rho as an argument the README does not give: Vaccine's 2 stays.
        if (m == ALIGN_REPNOISE) {
            // Repnoise.sh: 20 epochs, batch 8, lr 1e-3, cosine, --max_length 100, alpha (rho) 0.1,
            // beta (lamb) 0.001, bad_sample_num 2000; its loss is the Booster repository's file.
            trainer_loop(&o->train, 1e-3f, SCHED_COSINE, 8, 20, 100);
            LORA_AS(o, 8, 4.0f, 0.1f, PROJ_ALL);
            repnoise_as(o, 2000, 1);
            return;
        }
        // Tar.sh runs the same loop; its TarTrainer (trainer.py) hard-codes the attack (one SGD
        // step of lr 0.01 on a batch of 10) and the weight 2; bad_sample_num 2000.
        if (m != ALIGN_SFT && m != ALIGN_VACCINE && m != ALIGN_TVACCINE && m != ALIGN_TAR) return;
        trainer_loop(&o->train, 1e-3f, SCHED_COSINE, 10, 20, 200);
        LORA_AS(o, 8, 4.0f, 0.1f, PROJ_ALL);
        if (m == ALIGN_TVACCINE) {
            o->rho = 3.0f;
            o->tv_S = 8;
            o->tv_J = 20;
            o->tv_K = 200;
            o->tv_pool = 200;
            o->tv_variant = TV_REFERENCE;
        }
        if (m == ALIGN_TAR) {
            o->tar_weight = 2.0f;
            o->tar_inner_lr = 0.01f;
            o->tar_inner_steps = 1;
            o->tar_batch = 10;
            o->tar_pool = 2000;
            o->tar_variant = TAR_REFERENCE;
        }
        return;
    case PRESET_ANTIDOTE:
        // script/alignment/{sft,vaccine}.sh: 20 epochs, batch 5, lr 1e-3, cosine; vaccine.sh
        // RHO default 2; train.py: LoRA r 256, alpha 4, dropout 0 on q, k, v, and
        // TrainingArguments.model_max_length 2048.
        if (m == ALIGN_REPNOISE) {
            // script/alignment/repNoise.sh: 20 epochs, batch 5, lr 1e-3, cosine, alpha (rho) 0.1,
            // beta (lamb) 0.001; train.py: 5000 harmful rows, model_max_length 256 for
            // rep_noise, the LoRA above; repnoise_loss.py: the final logits' loss alone, the
            // mask (and so the labels) boolean.
            trainer_loop(&o->train, 1e-3f, SCHED_COSINE, 5, 20, 256);
            LORA_AS(o, 256, 4.0f, 0.0f, QKV);
            repnoise_as(o, 5000, 0);
            return;
        }
        if (m != ALIGN_SFT && m != ALIGN_VACCINE) return;
        trainer_loop(&o->train, 1e-3f, SCHED_COSINE, 5, 20, 2048);
        LORA_AS(o, 256, 4.0f, 0.0f, QKV);
        if (m == ALIGN_VACCINE) o->rho = 2.0f;
        return;
    case PRESET_NONE:
    case PRESET_COUNT: return;
    }
}

void preset_finetune(Preset p, TaskKind task, FinetuneOpts *o) {
    switch (p) {
    case PRESET_VACCINE:
        // script/vaccine_finetune/{sst2,ag_news,gsm8k,alpaca}.sh: lr 1e-5, cosine, batch 5, 20
        // epochs (gsm8k.sh 50, alpaca.sh 100); train.py: LoRA r 8, alpha 1 (0.5 when the
        // benign set is GSM8K), dropout 0.1, all projections, model_max_length 200; README:
        // `sst2.sh 2 0.1 1000`.
        trainer_loop(&o->train, 1e-5f, SCHED_COSINE, 5, task == TASK_GSM8K ? 50 : task == TASK_ALPACA ? 100 : 20, 200);
        LORA_AS(o, 8, task == TASK_GSM8K ? 0.5f : 1.0f, 0.1f, PROJ_ALL);
        o->n = 1000;
        o->p = 0.1;
        o->gsm8k_suffix = 1;  // gsm8k/build_dataset.py: QUESTION_PROMPT "\nFirst think step by step..."
        return;
    case PRESET_TVACCINE:
        // script/tvaccine_finetune/{sst2,ag_news,gsm8k}.sh: lr 1e-5, cosine, batch 10, 20
        // epochs for every task (no Alpaca script: the same), --max_length 200; train.py: LoRA
        // r 8, alpha 1 (GSM8K 0.5), dropout 0.1, all projections; README: `sst2.sh 3 0.1 1000`.
        trainer_loop(&o->train, 1e-5f, SCHED_COSINE, 10, 20, 200);
        LORA_AS(o, 8, task == TASK_GSM8K ? 0.5f : 1.0f, 0.1f, PROJ_ALL);
        o->n = 1000;
        o->p = 0.1;
        o->gsm8k_suffix = 1;
        return;
    case PRESET_ANTIDOTE:
        // script/finetune/antidote_poison_ratio.sh (SST-2), antidote_agnews.sh,
        // antidote_poison_ratio_gsm8k.sh, antidote_alpaca.sh: sample_num 5000, 20 epochs,
        // batch 5, constant schedule, lr 1e-4 (GSM8K 1e-3); README: `antidote_poison_ratio.sh
        // 0.1`; train.py: a new LoRA r 256, alpha 4 (no GSM8K rule), dropout 0 on q, k, v;
        // model_max_length 2048 (512 when the benign set is Alpaca); gsm8k/build_dataset.py:
        // QUESTION_PROMPT "".
        trainer_loop(&o->train, task == TASK_GSM8K ? 1e-3f : 1e-4f, SCHED_CONSTANT, 5, 20, task == TASK_ALPACA ? 512 : 2048);
        LORA_AS(o, 256, 4.0f, 0.0f, QKV);
        o->n = 5000;
        o->p = 0.1;
        o->gsm8k_suffix = 0;
        return;
    case PRESET_NONE:
    case PRESET_COUNT: return;
    }
}

void preset_antidote(Preset p, TaskKind task, AntidoteOpts *o) {
    if (p != PRESET_ANTIDOTE) return;  // the other papers have no post-fine-tuning stage
    // script/finetune/antidote_poison_ratio.sh: dense_ratio 0.1 (antidote_agnews.sh and
    // antidote_poison_ratio_gsm8k.sh: 0.05;
    // antidote_alpaca.sh: 0.1), bad_sample_num 2000 harmful rows, batch 1; train.py:
    // model_max_length 2048 (Alpaca 512); the adapter is pruned (not --full_finetuning).
    o->dense_ratio = task == TASK_AGNEWS || task == TASK_GSM8K ? 0.05 : 0.1;
    o->n_samples = 2000;
    o->max_len = task == TASK_ALPACA ? 512 : 2048;
    o->full_mode = 0;
    o->targets = QKV;
}

void preset_eval(Preset p, TaskKind task, EvalSettings *s) {
    switch (p) {
    case PRESET_VACCINE:
    case PRESET_TVACCINE:
        // poison/evaluation/pred.py: the first 500 unsafe BeaverTails 30k_test prompts, 128
        // new tokens; {sst2,ag_news,gsm8k}/pred_eval.py: 500 rows, 200 new tokens; alignment
        // loss and HED run in the fine-tuning script: per_device_eval_batch_size (Vaccine's
        // vaccine_finetune/*.sh 5, T-Vaccine's tvaccine_finetune/*.sh 10), max length 200,
        // train.py's EmbeddingCallback track_batch_number 10.
        s->n_harmful = 500;
        s->opts.hs_max_new = 128;
        s->n_task = 500;
        s->opts.fa_max_new = task == TASK_ALPACA ? 512 : 200;  // alpaca/pred_eval.py: 512
        s->opts.batch_size = p == PRESET_TVACCINE ? 10 : 5;
        s->opts.hed_batches = 10;
        s->opts.max_len = 200;
        s->gsm8k_suffix = 1;
        break;
    case PRESET_ANTIDOTE:
        // poison/evaluation/pred.py: num_test_data 1000, max_new_tokens 512; sst2 and agnews
        // pred_eval.py: 1000 rows, 200 new tokens; gsm8k/pred_eval.py: num_test_data 1000,
        // max_new_tokens 512, QUESTION_PROMPT ""; per_device_eval_batch_size 5,
        // model_max_length 2048; HED: utils.py track_embedding's track_batch_number 100.
        s->n_harmful = 1000;
        s->opts.hs_max_new = 512;
        s->n_task = 1000;
        s->opts.fa_max_new = task == TASK_GSM8K || task == TASK_ALPACA ? 512 : 200;
        s->opts.batch_size = 5;
        s->opts.hed_batches = 100;
        s->opts.max_len = task == TASK_ALPACA ? 512 : 2048;
        s->gsm8k_suffix = 0;
        break;
    case PRESET_NONE:
    case PRESET_COUNT: break;
    }
}
