// antibody align | finetune | antidote: the three stages of SPEC section 1 as commands.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "io/provenance.h"
#include "pipeline/fingerprint.h"
#include "cli/train_flags.h"
#include "data/load.h"
#include "data/mix.h"
#include "data/tasks.h"
#include "pipeline/stages.h"

// Loads every --NAME file into d (rows remapped by --fields).
static int load_files(const Args *a, const char *name, unsigned flags, Dataset *d) {
    const Flag *f = arg_get(a, name);
    Err e;
    FieldMap fm;
    if (fieldmap_parse(arg_str(a, "fields", NULL), &fm, &e)) return cli_fail(a->cmd, e.msg);
    dataset_init(d);
    for (int i = 0; i < f->n_values; i++)
        if (data_load(f->values[i], &fm, flags, d, &e)) { fieldmap_free(&fm); return cli_fail(a->cmd, e.msg); }
    fieldmap_free(&fm);
    return 0;
}

// Claims --out for the run with fingerprint fp (taken) before any work: a folder holding a
// run with other settings or inputs is refused (what differs is named) unless --overwrite.
static int claim_out(const char *cmd, const char *out, json_t *fp, int overwrite) {
    char ck[4300], why[700];
    Err e;
    snprintf(ck, sizeof ck, "%s.checkpoint", out);
    int rc = fp_claim(out, ck, fp, overwrite, why, sizeof why, &e);
    json_decref(fp);
    if (rc < 0) return cli_fail(cmd, e.msg);
    if (rc == 1) fprintf(stderr, "antibody %s: --overwrite: the earlier run in %s is discarded (%s)\n", cmd, out, why);
    return 0;
}

// Content hashes of the base model and, when given, an adapter it starts from.
static int input_hashes(const char *cmd, const char *base, const char *adapter, char hb[65], char ha[65]) {
    Err e;
    ha[0] = 0;
    if (folder_sha256(base, hb, &e) || (adapter && folder_sha256(adapter, ha, &e))) return cli_fail(cmd, e.msg);
    return 0;
}

static void report(const char *what, const StageReport *r, const char *out) {
    fprintf(stderr, "%s: %lld steps in %.1f s, loss %.4f -> %.4f, peak memory %.1f MB, adapter in %s\n", what,
            (long long)r->log.steps, r->log.seconds, r->log.first_loss, r->log.final_loss, r->peak_rss_bytes / 1e6, out);
}

static const char ALIGN_USAGE[] =
    "usage: antibody align MODEL_DIR --data FILE --out ADAPTER_DIR [--method sft|vaccine|tvaccine|random-vaccine]\n"
    "\n"
    "Stage 1: safety alignment on harmful prompts with safe answers (SPEC 3-5), writing a\n"
    "PEFT adapter. Defaults are the reference ones: AdamW lr 1e-3, wd 0.1, warmup 0.1, cosine,\n"
    "batch 5, 50 epochs, LoRA rank 8 alpha 4 dropout 0.1 on all seven projections;\n"
    "Vaccine rho 2; T-Vaccine rho 3, batch 10, 20 epochs, K 200, J 20, S 8.\n"
    "  --data FILE         alignment rows (repeat to concatenate)\n"
    "  --harmful FILE      harmful prompt + harmful answer rows (T-Vaccine's probability pass)\n"
    "  --fields SPEC       rename fields, e.g. instruction=prompt,output=response\n"
    "  --rho X             perturbation norm (random-vaccine: noise variance)\n"
    "  --tv-k N --tv-j N --tv-s N --tv-pool N   T-Vaccine intervals, layers, harmful pool\n"
    "  --tv-variant reference|lean   T-Vaccine: the authors' (MLP adapters of every layer train\n"
    "                      each step) or memory-lean (sampled layers only; docs/methods.md)\n"
    TRAIN_FLAGS_HELP;

int cmd_align(int argc, char **argv) {
    Flag flags[] = {{"data", 1, .repeat = 1}, {"harmful", 1, .repeat = 1}, {"fields", 1}, {"out", 1}, {"method", 1},
                    {"rho", 1}, {"tv-k", 1}, {"tv-j", 1}, {"tv-s", 1}, {"tv-pool", 1}, {"tv-variant", 1}, TRAIN_FLAGS};
    Args a = {"align", flags, sizeof flags / sizeof *flags};
    int rc = args_parse(&a, argc, argv, ALIGN_USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    const char *out = arg_str(&a, "out", NULL);
    if (a.n_pos != 1 || !arg_get(&a, "data")->n_values || !out) return cli_fail("align", "need MODEL_DIR, --data and --out");
    int method = align_method_parse(arg_str(&a, "method", "sft"));
    if (method < 0) return cli_fail("align", "--method must be sft, vaccine, tvaccine or random-vaccine");
    AlignOpts o;
    align_opts_default(&o, method);
    StageDefaults d = {o.train, o.rank, o.targets, o.alpha, o.dropout};
    if (train_flags_apply(&a, &d)) return 2;
    o.train = d.train; o.rank = d.rank; o.targets = d.targets; o.alpha = d.alpha; o.dropout = d.dropout;
    o.rho = (float)arg_double(&a, "rho", o.rho);
    o.tv_K = arg_int(&a, "tv-k", o.tv_K);
    o.tv_J = arg_int(&a, "tv-j", o.tv_J);
    o.tv_S = arg_int(&a, "tv-s", o.tv_S);
    o.tv_pool = arg_int(&a, "tv-pool", o.tv_pool);
    const char *tvv = arg_str(&a, "tv-variant", "reference");
    if (strcmp(tvv, "reference") && strcmp(tvv, "lean")) return cli_fail("align", "--tv-variant must be reference or lean");
    o.tv_variant = strcmp(tvv, "lean") ? TV_REFERENCE : TV_LEAN;
    o.weights = arg_flag(&a, "bf16") ? MAT_BF16 : MAT_F32;
    if (method == ALIGN_TVACCINE && !arg_get(&a, "harmful")->n_values)
        return cli_fail("align", "T-Vaccine needs --harmful (harmful prompt + harmful answer rows)");
    Dataset data, harm;
    if (load_files(&a, "data", DATA_NEED_OUTPUT, &data)) return 1;
    if (load_files(&a, "harmful", DATA_NEED_OUTPUT, &harm)) { dataset_free(&data); return 1; }
    StageReport r;
    Err e;
    char hb[65], ha[65];
    if (input_hashes("align", a.pos[0], NULL, hb, ha) ||
        claim_out("align", out, fp_align(hb, "", &data, &harm, &o), arg_flag(&a, "overwrite"))) {
        dataset_free(&data);
        dataset_free(&harm);
        return 1;
    }
    o.train.interrupt = &cli_interrupted;
    cli_catch_interrupts();
    rc = stage_align(a.pos[0], &data, &harm, &o, out, &r, &e);
    if (!rc) { report(align_method_name(method), &r, out); train_log_free(&r.log); }
    dataset_free(&data);
    dataset_free(&harm);
    return rc ? cli_interrupt_exit("align", cli_fail("align", e.msg)) : 0;
}

static const char FT_USAGE[] =
    "usage: antibody finetune MODEL_DIR --out ADAPTER_DIR [--align-adapter DIR] (--data FILE | --benign FILE --harmful FILE --n N --p P)\n"
    "\n"
    "Stage 2, the attack surface: merges the alignment adapter into the base, then trains\n"
    "a fresh adapter on the user's data. With --benign/--harmful the data is mixed here:\n"
    "round(p*n) harmful rows + the rest benign, shuffled with --seed (SPEC 6).\n"
    "Defaults: lr 1e-5, 20 epochs, batch 5, LoRA rank 8 alpha 1 dropout 0.1.\n"
    "  --task sst2|agnews|gsm8k   read --benign as that task's raw file (TSV/CSV/JSONL)\n"
    TRAIN_FLAGS_HELP;

int cmd_finetune(int argc, char **argv) {
    Flag flags[] = {{"data", 1, .repeat = 1}, {"benign", 1, .repeat = 1}, {"harmful", 1, .repeat = 1}, {"n", 1},
                    {"p", 1}, {"task", 1}, {"fields", 1}, {"out", 1}, {"align-adapter", 1}, TRAIN_FLAGS};
    Args a = {"finetune", flags, sizeof flags / sizeof *flags};
    int rc = args_parse(&a, argc, argv, FT_USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    const char *out = arg_str(&a, "out", NULL);
    if (a.n_pos != 1 || !out) return cli_fail("finetune", "need MODEL_DIR and --out");
    FinetuneOpts o;
    finetune_opts_default(&o);
    StageDefaults d = {o.train, o.rank, o.targets, o.alpha, o.dropout};
    if (train_flags_apply(&a, &d)) return 2;
    o.train = d.train; o.rank = d.rank; o.targets = d.targets; o.alpha = d.alpha; o.dropout = d.dropout;
    o.weights = arg_flag(&a, "bf16") ? MAT_BF16 : MAT_F32;
    Dataset data;
    Err e;
    if (arg_get(&a, "data")->n_values) {
        if (load_files(&a, "data", DATA_NEED_OUTPUT, &data)) return 1;
    } else {
        Dataset benign, harm;
        const char *task = arg_str(&a, "task", NULL);
        if (!arg_get(&a, "benign")->n_values || !arg_get(&a, "harmful")->n_values)
            return cli_fail("finetune", "give --data, or --benign and --harmful with --n and --p");
        if (task) {
            dataset_init(&benign);
            const char *path = arg_get(&a, "benign")->values[0];
            int (*loader)(const char *, Dataset *, Err *) = !strcmp(task, "sst2") ? data_load_sst2
                                                           : !strcmp(task, "agnews") ? data_load_agnews
                                                           : !strcmp(task, "gsm8k") ? data_load_gsm8k : NULL;
            if (!loader) return cli_fail("finetune", "--task must be sst2, agnews or gsm8k");
            if (loader(path, &benign, &e)) return cli_fail("finetune", e.msg);
        } else if (load_files(&a, "benign", DATA_NEED_OUTPUT, &benign)) {
            return 1;
        }
        if (load_files(&a, "harmful", DATA_NEED_OUTPUT | DATA_ALL_HARMFUL, &harm)) { dataset_free(&benign); return 1; }
        dataset_init(&data);
        rc = data_mix(&benign, &harm, arg_int(&a, "n", 1000), arg_double(&a, "p", 0.1), o.train.seed, &data, &e);
        dataset_free(&benign);
        dataset_free(&harm);
        if (rc) return cli_fail("finetune", e.msg);
    }
    StageReport r;
    o.train.interrupt = &cli_interrupted;
    cli_catch_interrupts();
    char hb[65], ha[65];
    if (input_hashes("finetune", a.pos[0], arg_str(&a, "align-adapter", NULL), hb, ha) ||
        claim_out("finetune", out, fp_finetune(hb, ha, &data, &o), arg_flag(&a, "overwrite"))) {
        dataset_free(&data);
        return 1;
    }
    rc = stage_finetune(a.pos[0], arg_str(&a, "align-adapter", NULL), &data, &o, out, &r, &e);
    if (!rc) { report("finetune", &r, out); train_log_free(&r.log); }
    dataset_free(&data);
    return rc ? cli_interrupt_exit("finetune", cli_fail("finetune", e.msg)) : 0;
}

static const char AD_USAGE[] =
    "usage: antibody antidote MODEL_DIR --ft-adapter DIR [--realign FILE] --out DIR [--align-adapter DIR]\n"
    "\n"
    "Stage 3: after fine-tuning, zero the weights with the largest Wanda score\n"
    "|W_ij| * ||X_:,j|| on harmful re-alignment data, per output row (SPEC 7). Without\n"
    "--realign (or with --samples 0) the score is |W_ij| alone, as the reference does.\n"
    "  --dense-ratio X   fraction pruned (0.1): cols - floor(cols * (1 - X)) per row (docs/methods.md)\n"
    "  --full            prune the merged model's projections instead of the adapter (writes a model)\n"
    "  --targets LIST    projections pruned in --full mode (q,k,v)\n"
    "  --random          random pruning (the ablation): floor(X * entries) of each tensor\n"
    "  --samples N       re-alignment samples used (2000)   --max-len N (200)   --seed N\n"
    "  --fields SPEC     rename fields of --realign rows    --bf16   keep weights in bf16\n"
    "  --overwrite       replace a run in --out made with other settings or inputs (else refused)\n";

int cmd_antidote(int argc, char **argv) {
    Flag flags[] = {{"ft-adapter", 1}, {"align-adapter", 1}, {"realign", 1, .repeat = 1}, {"out", 1}, {"fields", 1},
                    {"dense-ratio", 1}, {"full", 0}, {"targets", 1}, {"random", 0}, {"samples", 1}, {"max-len", 1},
                    {"seed", 1}, {"bf16", 0}, {"overwrite", 0}};
    Args a = {"antidote", flags, sizeof flags / sizeof *flags};
    int rc = args_parse(&a, argc, argv, AD_USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    const char *out = arg_str(&a, "out", NULL), *ft = arg_str(&a, "ft-adapter", NULL);
    if (a.n_pos != 1 || !out || !ft) return cli_fail("antidote", "need MODEL_DIR, --ft-adapter and --out");
    AntidoteOpts o;
    antidote_opts_default(&o);
    o.dense_ratio = arg_double(&a, "dense-ratio", o.dense_ratio);
    o.full_mode = arg_flag(&a, "full");
    o.score = arg_flag(&a, "random") ? PRUNE_RANDOM : PRUNE_WANDA;
    o.n_samples = arg_int(&a, "samples", o.n_samples);
    o.max_len = arg_int(&a, "max-len", o.max_len);
    o.seed = (uint64_t)arg_int(&a, "seed", (int)o.seed);
    o.weights = arg_flag(&a, "bf16") ? MAT_BF16 : MAT_F32;
    Err e;
    if (arg_str(&a, "targets", NULL) && (o.targets = proj_mask_parse(arg_str(&a, "targets", NULL), &e)) < 0)
        return cli_fail("antidote", e.msg);
    Dataset re;  // none given: an empty set, magnitude-only pruning
    if (load_files(&a, "realign", DATA_NEED_OUTPUT | DATA_ALL_HARMFUL, &re)) return 1;
    char hb[65], ha[65], hf[65], unused[65];
    if (input_hashes("antidote", a.pos[0], arg_str(&a, "align-adapter", NULL), hb, ha) ||
        input_hashes("antidote", ft, NULL, hf, unused) ||
        claim_out("antidote", out, fp_antidote(hb, ha, hf, &re, &o), arg_flag(&a, "overwrite"))) {
        dataset_free(&re);
        return 1;
    }
    rc = stage_antidote(a.pos[0], arg_str(&a, "align-adapter", NULL), ft, &re, &o, out, &e);
    dataset_free(&re);
    if (!rc) fprintf(stderr, "antidote: repaired %s written to %s\n", o.full_mode ? "model" : "adapter", out);
    return rc ? cli_fail("antidote", e.msg) : 0;
}
