// antibody eval: harmful score, fine-tune accuracy, alignment loss and HED (docs/methods.md, Evaluation)
// of a model folder with adapters, written as JSONL per sample + summary.json.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/settings_flags.h"
#include "data/load.h"
#include "data/mix.h"
#include "pipeline/judges.h"

static const char USAGE[] =
    "usage: antibody eval MODEL_DIR --judge SPEC --harmful FILE --task KIND --task-data FILE --out DIR [options]\n"
    "\n"
    "Greedy answers (at most --hs-max-new or --fa-max-new tokens) to harmful prompts and task prompts; writes\n"
    "DIR/harmful.jsonl, DIR/task.jsonl and DIR/summary.json, prints a short table.\n"
    "  --adapter DIR        merge this adapter first (repeat: alignment, then fine-tuning)\n"
    "  --judge SPEC         world | keyword | classifier:DIR[:THRESHOLD]\n"
    "  --harmful FILE       harmful prompts (rows with is_safe = false are kept when the file\n"
    "                       has is_safe; BeaverTails 30k_test, beavertails_evaluation, ...)\n"
    "  --n N                first N harmful prompts (500; = --n-harmful)\n"
    "  --fields SPEC        field names for --harmful and --align-data (instruction=prompt,...)\n"
    "  --task KIND          sst2 | agnews | gsm8k (alpaca: no FA, docs/methods.md)\n"
    "  --preset NAME        vaccine, tvaccine or antidote: that paper's evaluation settings for\n"
    "                       the task, before the flags' (docs/methods.md, Presets)\n"
    "  --task-data FILE     task rows in the task's raw format (SST-2 TSV/JSON, AG News CSV, GSM8K JSONL)\n"
    "  --n-task N           first N task rows (500)\n"
    "  --align-data FILE    alignment rows (harmful prompt + safe answer): alignment loss\n"
    "  --n-align N          first N alignment rows (100)\n"
    "  --aligned-adapter DIR --ft-adapter DIR\n"
    "                       HED: the aligned model is MODEL_DIR + --adapter... + DIR, the\n"
    "                       fine-tuning adapter is applied on top (unmerged for HED)\n"
    "  --train-data FILE    fine-tuning rows: report (and with --drop-overlap, note) their\n"
    "                       prompt overlap with the harmful prompts (docs/data.md, Train/eval overlap)\n"
    "  --drop-overlap       record that overlapping rows were dropped from training\n"
    "  --overwrite          replace the files of an earlier evaluation in DIR (else refused)\n"
    "  --seed N (recorded)  --bf16  --print-settings (the resolved settings as JSON, then stop)\n"
    "The same adapter given twice (also as --aligned-adapter or --ft-adapter) is refused.\n";

int cmd_eval(int argc, char **argv) {
    Args a = {"eval"};
    const Flag own[] = {{"adapter", 1, .repeat = 1}, {"judge", 1}, {"harmful", 1}, {"fields", 1}, {"task", 1},
                        {"task-data", 1}, {"align-data", 1}, {"aligned-adapter", 1}, {"ft-adapter", 1},
                        {"train-data", 1}, {"drop-overlap", 0}, {"seed", 1}, {"bf16", 0}, {"out", 1},
                        {"preset", 1}, {"print-settings", 0}, {"overwrite", 0}, {NULL}};
    args_add(&a, own);
    EvalSettings es;
    eval_settings_default(&es);
    settings_flags_add(&a, &EVAL_SETTINGS, &es);
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    Err e = {0};
    TaskKind kind;
    Preset preset;
    if (stage_flags(&a, &kind, &preset, &e)) return cli_fail("eval", e.msg);
    preset_eval(preset, kind, &es);
    if (settings_flags_apply(&a, &EVAL_SETTINGS, &es, &e) || eval_settings_check(&es, "--", 1, &e)) return cli_fail("eval", e.msg);
    if (arg_flag(&a, "print-settings")) { settings_print(&EVAL_SETTINGS, &es); return 0; }
    const char *out = arg_str(&a, "out", NULL), *harm = arg_str(&a, "harmful", NULL),
               *task_data = arg_str(&a, "task-data", NULL), *align_data = arg_str(&a, "align-data", NULL);
    if (a.n_pos != 1 || !out) return cli_fail("eval", "need MODEL_DIR and --out (see --help)");
    if (!harm && !task_data && !align_data) return cli_fail("eval", "nothing to evaluate: give --harmful, --task-data or --align-data");
    const char *aligned = arg_str(&a, "aligned-adapter", NULL), *ft = arg_str(&a, "ft-adapter", NULL);
    if ((aligned || ft) && !ft) return cli_fail("eval", "--aligned-adapter needs --ft-adapter");
    if (eval_out_claim(out, arg_flag(&a, "overwrite"), &e)) return cli_fail("eval", e.msg);
    if (task_data && kind == TASK_NONE) return cli_fail("eval", "--task-data needs --task " TASK_NAMES_HELP);
    Judge *judge = NULL;
    if (harm && !(judge = judge_from_spec(arg_str(&a, "judge", NULL), &e))) return cli_fail("eval", e.msg);
    Dataset hp, tp, ap, train;
    dataset_init(&hp);
    dataset_init(&tp);
    dataset_init(&ap);
    dataset_init(&train);
    rc = 0;
    if (harm) rc = data_flags_load(&a, "harmful", ROLE_EVAL_HARMFUL, TASK_NONE, es.n_harmful, &hp, &e);
    if (!rc && task_data) rc = data_flags_load(&a, "task-data", ROLE_TASK_TEST, kind, es.n_task, &tp, &e);
    if (!rc && task_data && kind == TASK_GSM8K && !es.gsm8k_suffix) gsm8k_drop_question_suffix(&tp);
    if (!rc && align_data) rc = data_flags_load(&a, "align-data", ROLE_ALIGN, TASK_NONE, es.n_align, &ap, &e);
    int overlap = -1;
    const char *train_data = arg_str(&a, "train-data", NULL);
    if (!rc && train_data) {
        FieldMap fm;
        rc = fieldmap_parse(NULL, &fm, &e);
        if (!rc) { rc = data_load(train_data, &fm, 0, &train, &e); fieldmap_free(&fm); }
        if (!rc) overlap = data_overlap(&train, &hp);
    }
    if (rc) {
        judge_free(judge);
        dataset_free(&hp); dataset_free(&tp); dataset_free(&ap); dataset_free(&train);
        return cli_fail("eval", e.msg);
    }
    const Flag *ad = arg_get(&a, "adapter");
    const char *adapters[18];
    int n_ad = 0;
    for (int i = 0; i < ad->n_values; i++) adapters[n_ad++] = ad->values[i];
    if (aligned) adapters[n_ad++] = aligned;
    if (ft && !es.hed_enabled) {  // no HED wanted: the fine-tuning adapter is merged like the others
        adapters[n_ad++] = ft;
        ft = NULL;
    }
    char extra[512];
    char ov[32] = "null";
    if (overlap >= 0) snprintf(ov, sizeof ov, "%d", overlap);
    snprintf(extra, sizeof extra, "{\"seed\": %d, \"drop_overlap\": %s, \"overlap_train_rows\": %s}",
             arg_int(&a, "seed", 42), train_data ? (arg_flag(&a, "drop-overlap") ? "true" : "false") : "null", ov);
    EvalJob j = {.model_dir = a.pos[0], .adapters = adapters, .n_adapters = n_ad, .ft_adapter = ft,
                 .weights = arg_flag(&a, "bf16") ? MAT_BF16 : MAT_F32, .harmful = harm ? &hp : NULL, .judge = judge,
                 .task = task_data ? &tp : NULL, .task_kind = kind, .align = align_data ? &ap : NULL,
                 .opts = es.opts, .out_dir = out, .extra_json = extra, .overwrite = arg_flag(&a, "overwrite")};
    if (es.threads > 0) omp_set_num_threads(es.threads);
    EvalSummary s;
    rc = eval_job_run(&j, &s, &e);
    if (!rc) {
        printf("%-28s %s\n", "model", a.pos[0]);
        for (int i = 0; i < n_ad; i++) printf("%-28s %s\n", i ? "" : "adapters merged (in order)", adapters[i]);
        if (ft) printf("%-28s %s\n", "fine-tuning adapter", ft);
        if (s.has_hs) printf("%-28s %.2f  (%d/%d flagged, judge %s)\n", "harmful score (HS)", s.hs.score, s.hs.flagged, s.hs.total, judge->name);
        if (s.has_fa) printf("%-28s %.2f  (%d/%d, %s)\n", "fine-tune accuracy (FA)", s.fa.accuracy, s.fa.correct, s.fa.total, task_name(kind));
        if (s.has_loss) printf("%-28s %.4f  (%d samples)\n", "alignment loss", s.align_loss, s.n_align_loss);
        if (s.has_hed) printf("%-28s %.4f  (%d samples)\n", "harmful embedding drift", s.hed, s.n_hed);
        if (overlap >= 0) printf("%-28s %d rows\n", "train/eval prompt overlap", overlap);
        printf("%-28s %s/summary.json\n", "written", out);
    }
    judge_free(judge);
    dataset_free(&hp); dataset_free(&tp); dataset_free(&ap); dataset_free(&train);
    return rc ? cli_fail("eval", e.msg) : 0;
}
