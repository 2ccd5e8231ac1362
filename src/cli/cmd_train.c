// antibody train: supervised LoRA fine-tuning on an instruction file (SPEC section 2),
// writing a PEFT adapter.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/train_flags.h"
#include "data/load.h"
#include "eval/report.h"
#include "io/dir_lock.h"
#include "io/model_dir.h"
#include "io/outputs.h"
#include "io/provenance.h"
#include "pipeline/fingerprint.h"
#include "util/sha256.h"
#include "io/peft.h"

static const char USAGE[] =
    "usage: antibody train MODEL_DIR --data FILE --out ADAPTER_DIR [options]\n"
    "\n"
    "SFT of a fresh LoRA adapter on JSON/JSONL instruction data (Alpaca rows\n"
    "instruction/input/output, prompt/response rows, BeaverTails rows), loss on the\n"
    "answer tokens only. Writes adapter_config.json + adapter_model.safetensors (PEFT).\n"
    "  --data FILE        training rows (repeat to concatenate)\n"
    "  --fields SPEC      rename fields, e.g. instruction=question,output=answer\n"
    "  --adapter DIR      merge this adapter into the base first (repeat: in order)\n"
    "  --out DIR          where the adapter goes (checkpoints in DIR/checkpoint)\n"
    TRAIN_FLAGS_HELP
    "Defaults: SPEC section 3 (lr 1e-3, wd 0.1, warmup 0.1, cosine, batch 5, rank 8, alpha 4,\n"
    "dropout 0.1, all seven projections), 1 epoch.\n";

static int train_locked(Args *ap, StageDefaults *dp, const char *out);

int cmd_train(int argc, char **argv) {
    Flag flags[] = {{"data", 1, .repeat = 1}, {"fields", 1}, {"adapter", 1, .repeat = 1}, {"out", 1}, TRAIN_FLAGS};
    Args a = {"train", flags, sizeof flags / sizeof *flags};
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    const Flag *data = arg_get(&a, "data");
    const char *out = arg_str(&a, "out", NULL);
    if (a.n_pos != 1 || !data->n_values || !out) return cli_fail("train", "need MODEL_DIR, --data and --out (see --help)");
    StageDefaults d = {.rank = 8, .alpha = 4, .dropout = 0.1f, .targets = (1 << N_PROJ) - 1};
    train_opts_default(&d.train);
    if (train_flags_apply(&a, &d)) return 2;
    Err e;
    if (out_dir_usable(out, &e)) return cli_fail("train", e.msg);  // before any work
    DirLock lk;  // the output folder is this run's until it ends (docs/reliability.md)
    if (dir_lock(&lk, out, &e)) return cli_fail("train", e.msg);
    rc = train_locked(&a, &d, out);
    dir_unlock(&lk);
    return rc;
}

static int train_locked(Args *ap, StageDefaults *dp, const char *out) {
    Args a = *ap;
    StageDefaults d = *dp;
    const Flag *data = arg_get(&a, "data"), *ad = arg_get(&a, "adapter");
    Err e;
    int rc;
    FieldMap fm;
    if (fieldmap_parse(arg_str(&a, "fields", NULL), &fm, &e)) return cli_fail("train", e.msg);
    Dataset ds;
    dataset_init(&ds);
    for (int i = 0; i < data->n_values; i++)
        if (data_load(data->values[i], &fm, DATA_NEED_OUTPUT, &ds, &e)) { fieldmap_free(&fm); return cli_fail("train", e.msg); }
    fieldmap_free(&fm);
    // the fingerprint of this run (train = SFT alignment): --out holding another run is refused
    AlignOpts ao;
    align_opts_default(&ao, ALIGN_SFT);
    ao.train = d.train; ao.rank = d.rank; ao.targets = d.targets; ao.alpha = d.alpha; ao.dropout = d.dropout;
    ao.weights = arg_flag(&a, "bf16") ? MAT_BF16 : MAT_F32;
    char hb[65], hm[65] = "", ck0[4300], why[700];
    Sha256 sh;
    sha256_init(&sh);
    rc = folder_sha256(a.pos[0], hb, &e);
    for (int i = 0; !rc && i < ad->n_values; i++) {
        char h[65];
        if (!(rc = folder_sha256(ad->values[i], h, &e))) sha256_update(&sh, h, 64);
    }
    if (!rc && ad->n_values) sha256_hex(&sh, hm);
    snprintf(ck0, sizeof ck0, "%s/checkpoint", out);
    json_t *fp = rc ? NULL : fp_align(hb, hm, &ds, NULL, &ao);
    if (!rc) rc = fp_claim(out, ck0, fp, arg_flag(&a, "overwrite"), why, sizeof why, &e) < 0 ? -1 : 0;
    json_decref(fp);
    if (rc) { dataset_free(&ds); return cli_fail("train", e.msg); }
    if (*why) fprintf(stderr, "antibody train: --overwrite: the earlier run in %s is discarded (%s)\n", out, why);
    LoadedModel lm;
    if (model_dir_open(&lm, a.pos[0], arg_flag(&a, "bf16") ? MAT_BF16 : MAT_F32, ad->values, ad->n_values, &e)) {
        dataset_free(&ds);
        return cli_fail("train", e.msg);
    }
    EncodedSet enc;
    rc = encode_dataset(lm.tok, lm.eos_id, &ds, d.train.max_len, &enc, &e);
    dataset_free(&ds);
    if (rc) { model_dir_close(&lm); return cli_fail("train", e.msg); }
    Lora lora;
    lora_init(&lora, &lm.model, d.rank, d.alpha, d.dropout, d.targets, d.train.seed);
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/checkpoint", out);
    d.train.checkpoint_dir = ck;
    d.train.base_model = a.pos[0];
    char logp[4200];
    snprintf(logp, sizeof logp, "%s/train_log.jsonl", out);
    d.train.log_path = logp;
    d.train.interrupt = &cli_interrupted;
    cli_catch_interrupts();
    StepMethod *sft = sft_method_new();
    TrainLog log;
    rc = train_run(&lm.model, &lora, &enc, &d.train, sft, &log, &e);
    if (!rc) rc = peft_save(&lora, &lm.model, out, a.pos[0], &e);
    if (!rc) {
        snprintf(logp, sizeof logp, "%s/loss.svg", out);
        rc = plot_loss_svg(log.loss_curve, log.n_curve, "train", logp, &e);
    }
    if (!rc)
        fprintf(stderr, "train: %lld steps in %.1f s, loss %.4f -> %.4f, adapter in %s\n", (long long)log.steps,
                log.seconds, log.first_loss, log.final_loss, out);
    step_method_free(sft);
    train_log_free(&log);
    lora_free(&lora);
    encoded_free(&enc);
    model_dir_close(&lm);
    return rc ? cli_interrupt_exit("train", cli_fail("train", e.msg)) : 0;
}
