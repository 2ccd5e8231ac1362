// antibody align | finetune | antidote: the three stages of docs/pipeline.md as commands.
// Each fills its stage's settings struct from the flags (cli/settings_flags.h: the same
// tables and checks as the pipeline config) and calls the stage function.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/settings_flags.h"
#include "data/mix.h"
#include "io/outputs.h"
#include "io/provenance.h"
#include "pipeline/fingerprint.h"
#include "pipeline/stages.h"
#include "util/sha256.h"

// Claims --out for the run with fingerprint fp (taken) before any work: a folder holding a
// run with other settings or inputs is refused (what differs is named) unless --overwrite.
static int claim_out(const char *cmd, const char *out, json_t *fp, int overwrite) {
    char why[700], *ck = xasprintf("%s.checkpoint", out);
    Err e;
    int rc = fp_claim(out, ck, fp, overwrite, why, sizeof why, &e);
    free(ck);
    json_decref(fp);
    if (rc < 0) return cli_fail(cmd, e.msg);
    if (rc == 1) fprintf(stderr, "antibody %s: --overwrite: the earlier run in %s is discarded (%s)\n", cmd, out, why);
    return 0;
}

// Content hashes of the base model and, when given, of the adapters it starts from ("" for
// none; several adapters hash as the hash of their hashes, in order).
static int input_hashes(const char *cmd, const char *base, const char *const *adapters, int n, char hb[65],
                        char ha[65]) {
    Err e;
    ha[0] = 0;
    if (folder_sha256(base, hb, &e)) return cli_fail(cmd, e.msg);
    if (n == 1) return folder_sha256(adapters[0], ha, &e) ? cli_fail(cmd, e.msg) : 0;
    Sha256 sh;
    sha256_init(&sh);
    for (int i = 0; i < n; i++) {
        char h[65];
        if (folder_sha256(adapters[i], h, &e)) return cli_fail(cmd, e.msg);
        sha256_update(&sh, h, 64);
    }
    if (n) sha256_hex(&sh, ha);
    return 0;
}

static void report(const char *what, const StageReport *r, const char *out) {
    fprintf(stderr, "%s: %lld steps in %.1f s, loss %.4f -> %.4f, peak memory %.1f MB, adapter in %s\n", what,
            (long long)r->log.steps, r->log.seconds, r->log.first_loss, r->log.final_loss, r->peak_rss_bytes / 1e6, out);
}

static const char ALIGN_USAGE[] =
    "usage: antibody align MODEL_DIR --data FILE --out ADAPTER_DIR [--method sft|vaccine|tvaccine|random-vaccine|booster|repnoise|tar]\n"
    "\n"
    "Stage 1: safety alignment on harmful prompts with safe answers (docs/methods.md), writing a\n"
    "PEFT adapter (training checkpoints in ADAPTER_DIR.checkpoint). Defaults are the reference\n"
    "ones: AdamW lr 1e-3, wd 0.1, warmup 0.1, cosine, batch 5, 50 epochs, LoRA rank 8 alpha 4\n"
    "dropout 0.1 on all seven projections; Vaccine rho 2; T-Vaccine rho 3, batch 10, 20 epochs,\n"
    "K 200, J 20, S 8; Booster lambda 5, alpha 0.1, 10 harmful rows per step of the first 5000,\n"
    "lr 5e-4, constant schedule, no warmup, batch 10, 20 epochs; RepNoise alpha 0.1, beta 0.001,\n"
    "harmful rows of the first 5000 as many as the batch, lr 5e-4, constant, no warmup, batch 5,\n"
    "20 epochs; TAR weight 2, one SGD attack step of lr 0.01 on 10 harmful rows of the first 2000,\n"
    "batch 10, 20 epochs, tar_variant reference: the update as the reference's code runs it, the\n"
    "alignment gradient alone (SFT's, with the attack's passes); --tar-variant intended applies the\n"
    "tamper-resistance gradient (docs/methods.md, TAR).\n"
    "  --preset NAME       vaccine, tvaccine or antidote: that paper's settings before the flags'\n"
    "                      (docs/methods.md, Presets)\n"
    "  --data FILE         alignment rows (repeat to concatenate)\n"
    "  --harmful FILE      harmful prompt + harmful answer rows (T-Vaccine's probability pass,\n"
    "                      Booster's regulariser, RepNoise's harmful loss and noise, TAR's\n"
    "                      simulated attack)\n"
    "  --fields SPEC       rename fields, e.g. instruction=prompt,output=response\n"
    "  --adapter DIR       merge this adapter into the base first (repeat: in order)\n"
    "  --print-settings    print the resolved settings as JSON and stop\n"
    "  --overwrite         replace a run in --out made with other settings or inputs (else refused)\n";

static const char TRAIN_USAGE[] =
    "usage: antibody train MODEL_DIR --data FILE --out ADAPTER_DIR [options]\n"
    "\n"
    "SFT of a fresh LoRA adapter on JSON/JSONL instruction data (Alpaca rows\n"
    "instruction/input/output, prompt/response rows, BeaverTails rows), loss on the\n"
    "answer tokens only: the SFT alignment stage, the same as `antibody align --method sft`\n"
    "(the same defaults, 50 epochs; checkpoints in ADAPTER_DIR.checkpoint). Writes\n"
    "adapter_config.json + adapter_model.safetensors (PEFT).\n"
    "  --data FILE         training rows (repeat to concatenate)\n"
    "  --preset NAME       vaccine, tvaccine or antidote (docs/methods.md, Presets)\n"
    "  --fields SPEC       rename fields, e.g. instruction=question,output=answer\n"
    "  --adapter DIR       merge this adapter into the base first (repeat: in order)\n"
    "  --print-settings    print the resolved settings as JSON and stop\n"
    "  --overwrite         replace a run in --out made with other settings or inputs (else refused)\n";

// align and train: the alignment stage. train is align with the method fixed to SFT.
static int run_align(const char *cmd, const char *usage, int argc, char **argv) {
    int is_train = !strcmp(cmd, "train");
    Args a = {cmd};
    const Flag own[] = {{"data", 1, .repeat = 1}, {"harmful", 1, .repeat = 1}, {"fields", 1}, {"out", 1},
                        {"adapter", 1, .repeat = 1}, {"preset", 1}, {"print-settings", 0}, {"overwrite", 0}, {NULL}};
    args_add(&a, own);
    AlignOpts o;
    align_opts_default(&o, ALIGN_SFT);
    settings_flags_add(&a, &ALIGN_SETTINGS, &o);
    int rc = args_parse(&a, argc, argv, usage);
    if (rc) return rc > 0 ? 0 : 2;
    // The method decides the defaults, so it is read first.
    const char *ms = arg_str(&a, "method", "sft");
    int method = align_method_parse(ms);
    Err e;
    if (method < 0 && setting_set_text(settings_find(&ALIGN_SETTINGS, "method"), &o, ms, &e)) {  // says what is close
        Err me;
        err_set(&me, "--method: %s", e.msg);
        return cli_fail(cmd, me.msg);
    }
    if (method <= ALIGN_NONE) return cli_fail(cmd, "--method must be sft, vaccine, tvaccine, random-vaccine, booster, repnoise or tar");
    if (is_train && method != ALIGN_SFT) return cli_fail(cmd, "train is the SFT alignment stage; use antibody align --method");
    TaskKind task;  // align has no --task
    Preset preset;
    if (stage_flags(&a, &task, &preset, &e)) return cli_fail(cmd, e.msg);
    align_opts_default(&o, (AlignMethod)method);
    preset_align(preset, &o);
    if (settings_flags_apply(&a, &ALIGN_SETTINGS, &o, &e) || align_opts_check(&o, "--", 1, &e)) return cli_fail(cmd, e.msg);
    if (arg_flag(&a, "print-settings")) { settings_print(&ALIGN_SETTINGS, &o); return 0; }
    const char *out = arg_str(&a, "out", NULL);
    if (a.n_pos != 1 || !arg_get(&a, "data")->n_values || !out) return cli_fail(cmd, "need MODEL_DIR, --data and --out (see --help)");
    if (align_harmful_pool(&o) && !arg_get(&a, "harmful")->n_values) {
        err_set(&e, "--method %s needs --harmful (harmful prompt + harmful answer rows)", align_method_name(o.method));
        return cli_fail(cmd, e.msg);
    }
    if (out_dir_usable(out, &e)) return cli_fail(cmd, e.msg);  // before any work
    Dataset data, harm;
    dataset_init(&data);
    dataset_init(&harm);
    rc = data_flags_load(&a, "data", ROLE_ALIGN, TASK_NONE, -1, &data, &e);
    if (!rc) rc = data_flags_load(&a, "harmful", ROLE_REALIGN, TASK_NONE, -1, &harm, &e);
    StageReport r;
    const Flag *ad = arg_get(&a, "adapter");
    char hb[65], ha[65];
    if (!rc && (input_hashes(cmd, a.pos[0], ad->values, ad->n_values, hb, ha) ||
                claim_out(cmd, out, fp_align(hb, ha, &data, &harm, &o), arg_flag(&a, "overwrite")))) {
        dataset_free(&data);
        dataset_free(&harm);
        return 1;
    }
    o.train.interrupt = &cli_interrupted;
    cli_catch_interrupts();
    if (!rc) rc = stage_align(a.pos[0], ad->values, ad->n_values, &data, &harm, &o, out, &r, &e);
    if (!rc) { report(align_method_name((AlignMethod)method), &r, out); train_log_free(&r.log); }
    dataset_free(&data);
    dataset_free(&harm);
    return rc ? cli_interrupt_exit(cmd, cli_fail(cmd, e.msg)) : 0;
}

int cmd_align(int argc, char **argv) { return run_align("align", ALIGN_USAGE, argc, argv); }
int cmd_train(int argc, char **argv) { return run_align("train", TRAIN_USAGE, argc, argv); }

static const char FT_USAGE[] =
    "usage: antibody finetune MODEL_DIR --out ADAPTER_DIR [--align-adapter DIR] (--data FILE | --benign FILE --harmful FILE --n N --p P)\n"
    "\n"
    "Stage 2, the attack surface: merges the alignment adapter into the base, then trains\n"
    "a fresh adapter on the user's data (--single-lora: trains the alignment adapter on\n"
    "instead, as the reference's single-LoRA option). With --benign/--harmful the data is mixed\n"
    "here: round(p*n) harmful rows + the rest benign, shuffled with --mix-seed (docs/pipeline.md).\n"
    "Defaults: lr 1e-5, 20 epochs (GSM8K 50, Alpaca 100), batch 5, LoRA rank 8 alpha 1 (GSM8K 0.5)\n"
    "dropout 0.1, n 1000, p 0.1, mix seed 42.\n"
    "The provider's defense while fine-tuning (--defense, docs/methods.md): none (plain SFT),\n"
    "lisa (alternates 100 steps on --guide rows with 900 on the user's, proximal weight 1) or\n"
    "ldifs (distance to the aligned model's MLP features, weight 1e-4).\n"
    "  --task sst2|agnews|gsm8k|alpaca   the benign task: --benign is read as its raw file\n"
    "                                    (TSV/CSV/JSONL/JSON) and its defaults apply\n"
    "  --preset NAME       vaccine, tvaccine or antidote: that paper's settings for the task,\n"
    "                      before the flags' (docs/methods.md, Presets)\n"
    "  --data FILE / --benign FILE / --harmful FILE   (repeat to concatenate)\n"
    "  --guide FILE        Lisa's alignment rows: harmful prompt + safe answer (repeat to concatenate)\n"
    "  --fields SPEC       rename fields of the JSON rows\n"
    "  --print-settings    print the resolved settings as JSON and stop\n"
    "  --overwrite         replace a run in --out made with other settings or inputs (else refused)\n";

int cmd_finetune(int argc, char **argv) {
    Args a = {"finetune"};
    const Flag own[] = {{"data", 1, .repeat = 1}, {"benign", 1, .repeat = 1}, {"harmful", 1, .repeat = 1}, {"task", 1},
                        {"guide", 1, .repeat = 1}, {"fields", 1}, {"out", 1}, {"align-adapter", 1}, {"preset", 1},
                        {"print-settings", 0}, {"overwrite", 0}, {NULL}};
    args_add(&a, own);
    FinetuneOpts o;
    finetune_opts_default(&o, TASK_NONE);
    settings_flags_add(&a, &FINETUNE_SETTINGS, &o);
    int rc = args_parse(&a, argc, argv, FT_USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    // The task and the preset decide the defaults, so they are read first.
    Err e;
    TaskKind task;
    Preset preset;
    if (stage_flags(&a, &task, &preset, &e)) return cli_fail("finetune", e.msg);
    finetune_opts_default(&o, task);
    preset_finetune(preset, task, &o);
    if (settings_flags_apply(&a, &FINETUNE_SETTINGS, &o, &e) || finetune_opts_check(&o, "--", 1, &e))
        return cli_fail("finetune", e.msg);
    if (arg_flag(&a, "print-settings")) { settings_print(&FINETUNE_SETTINGS, &o); return 0; }
    const char *out = arg_str(&a, "out", NULL);
    if (a.n_pos != 1 || !out) return cli_fail("finetune", "need MODEL_DIR and --out");
    if (o.defense == FT_LISA && !arg_get(&a, "guide")->n_values)
        return cli_fail("finetune", "Lisa needs --guide (harmful prompt + safe answer rows)");
    if (out_dir_usable(out, &e)) return cli_fail("finetune", e.msg);  // before any work
    Dataset data, guide;
    dataset_init(&data);
    dataset_init(&guide);
    if (arg_get(&a, "data")->n_values) {
        rc = data_flags_load(&a, "data", ROLE_ALIGN, TASK_NONE, -1, &data, &e);
    } else {
        if (!arg_get(&a, "benign")->n_values || !arg_get(&a, "harmful")->n_values)
            return cli_fail("finetune", "give --data, or --benign and --harmful with --n and --p");
        Dataset benign, harm;
        dataset_init(&benign);
        dataset_init(&harm);
        rc = data_flags_load(&a, "benign", ROLE_TASK_TRAIN, task, -1, &benign, &e);
        if (!rc && task == TASK_GSM8K && !o.gsm8k_suffix) gsm8k_drop_question_suffix(&benign);
        if (!rc) rc = data_flags_load(&a, "harmful", ROLE_HARMFUL, TASK_NONE, -1, &harm, &e);
        if (!rc) rc = data_mix(&benign, &harm, o.n, o.p, o.mix_seed, &data, &e);
        dataset_free(&benign);
        dataset_free(&harm);
    }
    if (!rc) rc = data_flags_load(&a, "guide", ROLE_ALIGN, TASK_NONE, -1, &guide, &e);
    StageReport r;
    const char *al = arg_str(&a, "align-adapter", NULL);
    char hb[65], ha[65];
    if (!rc && (input_hashes("finetune", a.pos[0], &al, al ? 1 : 0, hb, ha) ||
                claim_out("finetune", out, fp_finetune(hb, ha, &data, &guide, &o), arg_flag(&a, "overwrite")))) {
        dataset_free(&data);
        dataset_free(&guide);
        return 1;
    }
    o.train.interrupt = &cli_interrupted;
    cli_catch_interrupts();
    if (!rc) rc = stage_finetune(a.pos[0], arg_str(&a, "align-adapter", NULL), &data, &guide, &o, out, &r, &e);
    if (!rc) { report(o.defense == FT_NONE ? "finetune" : ft_defense_name(o.defense), &r, out); train_log_free(&r.log); }
    dataset_free(&data);
    dataset_free(&guide);
    return rc ? cli_interrupt_exit("finetune", cli_fail("finetune", e.msg)) : 0;
}

static const char AD_USAGE[] =
    "usage: antibody antidote MODEL_DIR --ft-adapter DIR [--realign FILE] --out DIR [--align-adapter DIR]\n"
    "\n"
    "Stage 3: after fine-tuning, zero the weights with the largest Wanda score\n"
    "|W_ij| * ||X_:,j|| on harmful re-alignment data, per output row (docs/methods.md). Without\n"
    "--realign (or with --samples 0) the score is |W_ij| alone, as the reference does.\n"
    "Defaults: dense ratio 0.1 (cols - floor(cols * (1 - X)) per row), adapter mode, 2000 samples\n"
    "of at most 200 tokens.\n"
    "  --random          random pruning (the ablation; = --score random): floor(X * entries) of each tensor\n"
    "  --preset NAME     vaccine, tvaccine or antidote (docs/methods.md, Presets), with\n"
    "  --task KIND       the fine-tuning task (sst2, agnews, gsm8k: the Antidote scripts' dense ratio)\n"
    "  --fields SPEC     rename fields of --realign rows\n"
    "  --print-settings  print the resolved settings as JSON and stop\n"
    "  --overwrite       replace a run in --out made with other settings or inputs (else refused)\n";

int cmd_antidote(int argc, char **argv) {
    Args a = {"antidote"};
    const Flag own[] = {{"ft-adapter", 1}, {"align-adapter", 1}, {"realign", 1, .repeat = 1}, {"out", 1},
                        {"fields", 1}, {"random", 0}, {"preset", 1}, {"task", 1}, {"print-settings", 0},
                        {"overwrite", 0}, {NULL}};
    args_add(&a, own);
    AntidoteOpts o;
    antidote_opts_default(&o);
    settings_flags_add(&a, &ANTIDOTE_SETTINGS, &o);
    int rc = args_parse(&a, argc, argv, AD_USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    Err e;
    TaskKind task;
    Preset preset;
    if (stage_flags(&a, &task, &preset, &e)) return cli_fail("antidote", e.msg);
    preset_antidote(preset, task, &o);
    if (arg_flag(&a, "random")) o.score = PRUNE_RANDOM;
    if (settings_flags_apply(&a, &ANTIDOTE_SETTINGS, &o, &e) || antidote_opts_check(&o, "--", 1, &e))
        return cli_fail("antidote", e.msg);
    if (arg_flag(&a, "print-settings")) { settings_print(&ANTIDOTE_SETTINGS, &o); return 0; }
    const char *out = arg_str(&a, "out", NULL), *ft = arg_str(&a, "ft-adapter", NULL);
    if (a.n_pos != 1 || !out || !ft) return cli_fail("antidote", "need MODEL_DIR, --ft-adapter and --out");
    if (out_dir_usable(out, &e)) return cli_fail("antidote", e.msg);  // before any work
    Dataset re;  // none given: an empty set, magnitude-only pruning
    dataset_init(&re);
    rc = data_flags_load(&a, "realign", ROLE_REALIGN, TASK_NONE, -1, &re, &e);
    const char *al = arg_str(&a, "align-adapter", NULL);
    char hb[65], ha[65], hf[65], unused[65];
    if (!rc && (input_hashes("antidote", a.pos[0], &al, al ? 1 : 0, hb, ha) ||
                input_hashes("antidote", ft, NULL, 0, hf, unused) ||
                claim_out("antidote", out, fp_antidote(hb, ha, hf, &re, &o), arg_flag(&a, "overwrite")))) {
        dataset_free(&re);
        return 1;
    }
    if (!rc) rc = stage_antidote(a.pos[0], arg_str(&a, "align-adapter", NULL), ft, &re, &o, out, &e);
    dataset_free(&re);
    if (!rc) fprintf(stderr, "antidote: repaired %s written to %s\n", o.full_mode ? "model" : "adapter", out);
    return rc ? cli_fail("antidote", e.msg) : 0;
}
