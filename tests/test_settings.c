// The settings model (pipeline/settings.h): the command-line flags and the pipeline config
// resolve the same inputs to the same settings and refuse the same bad values with the same
// message; task names and their aliases resolve alike everywhere; the demo's recipe prints
// as a config that reads back to itself; the alignment methods are one enum; data sources
// select rows by one rule; library code reports through the log callback; Hugging Face's
// names are aliases; unknown names get a "did you mean".
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/source.h"
#include "kernels/kernels.h"
#include "util/atomic.h"
#include "pipeline/demo.h"
#include "pipeline/fingerprint.h"
#include "pipeline/pipeline.h"
#include "util/suggest.h"
#include "testing.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/version.h"

static char tmp_root[] = "/tmp/antibody_test_settings_XXXXXX";
static char exe[4200];

// Runs `antibody ARGS`; returns the exit status, stdout in out, stderr in err (malloc'd).
static int run_cli(const char *args, char **out, char **err) {
    char of[4300], ef[4300];
    snprintf(of, sizeof of, "%s/stdout.txt", tmp_root);
    snprintf(ef, sizeof ef, "%s/stderr.txt", tmp_root);
    char *cmd = xasprintf("%s %s > %s 2> %s", exe, args, of, ef);
    int rc = system(cmd);
    free(cmd);
    Err e;
    *out = read_file(of, NULL, &e);
    *err = read_file(ef, NULL, &e);
    return rc;
}

#define HEAD "{\"base_model\": \"m\", \"output\": \"o\", "

// Parses a config text over the defaults; returns the loader's status.
static int parse(const char *text, PipelineConfig *c, Err *e) {
    pipeline_config_default(c);
    return pipeline_config_parse(text, "cfg.json", c, e);
}

static char *settings_text(const SettingTable *t, const void *obj) {
    json_t *j = settings_to_json(t, obj, 0);
    char *s = settings_json_text(j);
    json_decref(j);
    return s;
}

// The flags and the config give the same resolved settings (the config's as its first seed's run).
static void same_settings(const char *flags, const char *config, const SettingTable *t, size_t offset, int method) {
    char *out, *err;
    int rc = run_cli(flags, &out, &err);
    CHECK(rc == 0, "%s: %s", flags, err);
    PipelineConfig all, c;
    Err e = {0};
    CHECK(parse(config, &all, &e) == 0, "%s: %s", config, e.msg);
    pipeline_config_for_seed(&all, all.seeds[0], &c);
    const void *obj = (const char *)&c + offset + (method >= 0 ? (size_t)method * sizeof(AlignOpts) : 0);
    char *want = settings_text(t, obj);
    CHECK(out && !strcmp(out, want), "%s differs from the config's settings:\n%s\nvs\n%s", flags, out, want);
    free(want);
    free(out);
    free(err);
    pipeline_config_free(&all);
}

static void test_flags_equal_config(void) {
    same_settings("finetune --print-settings --task gsm8k --lr 2e-4 --batch-size 4 --targets q,v --bf16 --n 300 "
                  "--p 0.2 --mix-seed 7 --seed 7 --schedule linear",
                  HEAD "\"data\": {\"task\": \"gsm8k\"}, \"seed\": 7, \"finetune\": {\"lr\": 2e-4, \"batch_size\": 4, "
                       "\"targets\": \"q,v\", \"bf16\": true, \"n\": 300, \"p\": 0.2, \"schedule\": \"linear\"}, "
                       "\"world\": {}}",
                  &FINETUNE_SETTINGS, offsetof(PipelineConfig, finetune), -1);
    // the GSM8K alpha rule applies through both (world task "math" is GSM8K)
    same_settings("finetune --print-settings --task math", HEAD "\"world\": {\"task\": \"math\"}}", &FINETUNE_SETTINGS,
                  offsetof(PipelineConfig, finetune), -1);
    same_settings("align --print-settings --method tvaccine --rho 4 --tv-k 5 --epochs 3 --weight_decay 0",
                  HEAD "\"world\": {}, \"align\": {\"tvaccine\": {\"rho\": 4, \"tv_K\": 5, \"epochs\": 3, "
                       "\"weight_decay\": 0}}}",
                  &ALIGN_SETTINGS, offsetof(PipelineConfig, align), ALIGN_TVACCINE);
    same_settings("antidote --print-settings --full --samples 7 --dense-ratio 0.25 --seed 3",
                  HEAD "\"world\": {}, \"seeds\": [3], \"antidote\": {\"full_mode\": true, \"n_samples\": 7, "
                       "\"dense_ratio\": 0.25}}",
                  &ANTIDOTE_SETTINGS, offsetof(PipelineConfig, antidote), -1);
    same_settings("eval --print-settings --n 7 --hs-max-new 9 --hed=false --n-task 3",
                  HEAD "\"world\": {}, \"eval\": {\"n_harmful\": 7, \"hs_max_new\": 9, \"hed\": false, \"n_task\": 3}}",
                  &EVAL_SETTINGS, offsetof(PipelineConfig, eval), -1);
    // train is the SFT alignment stage: the same settings as align --method sft
    char *o1, *e1, *o2, *e2;
    int r1 = run_cli("train --print-settings --lr 1e-4 --epochs 2", &o1, &e1);
    int r2 = run_cli("align --print-settings --method sft --lr 1e-4 --epochs 2", &o2, &e2);
    CHECK(r1 == 0 && r2 == 0 && o1 && o2 && !strcmp(o1, o2), "train and align sft differ:\n%s\n%s", o1, o2);
    CHECK(o1 && strstr(o1, "\"method\": \"sft\""), "train resolves to the SFT method");
    free(o1); free(e1); free(o2); free(e2);
    r1 = run_cli("train --print-settings --method vaccine", &o1, &e1);
    CHECK(r1 != 0 && e1 && strstr(e1, "align --method"), "train refuses other methods: %s", e1);
    free(o1); free(e1);
}

// Flag names write '-' where keys write '_' (--dense-ratio, dense_ratio).
static void key_style(char *s) {
    for (char *p = s; *p; p++)
        if (*p == '-' && p > s && p[-1] >= 'a' && p[-1] <= 'z' && p[1] >= 'a' && p[1] <= 'z') *p = '_';
}

// Both front-ends refuse the value, with the same words (the name written as a key).
static void same_refusal(const char *flags, const char *config, const char *why) {
    char *out, *err;
    int rc = run_cli(flags, &out, &err);
    if (err) key_style(err);
    CHECK(rc != 0 && err && strstr(err, why), "flags %s: rc %d, %s", flags, rc, err);
    PipelineConfig c;
    Err e = {0};
    rc = parse(config, &c, &e);
    CHECK(rc != 0 && strstr(e.msg, "cfg.json") && strstr(e.msg, why), "config %s: rc %d, %s", config, rc, e.msg);
    pipeline_config_free(&c);
    free(out);
    free(err);
}

static void test_refused_alike(void) {
    same_refusal("finetune --print-settings --epochs 0", HEAD "\"world\": {}, \"finetune\": {\"epochs\": 0}}",
                 "epochs: must be >= 1 (got 0)");
    same_refusal("finetune --print-settings --lr 0", HEAD "\"world\": {}, \"finetune\": {\"lr\": 0}}",
                 "lr: must be > 0 (got 0)");
    same_refusal("align --print-settings --lr -1", HEAD "\"world\": {}, \"align\": {\"lr\": -1}}",
                 "lr: must be > 0 (got -1)");
    same_refusal("align --print-settings --method vaccine --dropout 1",
                 HEAD "\"world\": {}, \"align\": {\"vaccine\": {\"dropout\": 1}}}", "dropout: must be in [0, 1) (got 1)");
    same_refusal("finetune --print-settings --p 1.5", HEAD "\"world\": {}, \"finetune\": {\"p\": 1.5}}",
                 "p: must be in [0, 1] (got 1.5)");
    same_refusal("finetune --print-settings --warmup-ratio 2", HEAD "\"world\": {}, \"finetune\": {\"warmup_ratio\": 2}}",
                 "must be in [0, 1] (got 2)");
    same_refusal("antidote --print-settings --dense-ratio 1.5",
                 HEAD "\"world\": {}, \"antidote\": {\"dense_ratio\": 1.5}}", "dense_ratio: must be in [0, 1] (got 1.5)");
    same_refusal("eval --print-settings --hs-max-new 0", HEAD "\"world\": {}, \"eval\": {\"hs_max_new\": 0}}",
                 "hs_max_new: must be >= 1 (got 0)");
    same_refusal("finetune --print-settings --schedule fast", HEAD "\"world\": {}, \"finetune\": {\"schedule\": \"fast\"}}",
                 "unknown schedule \"fast\"");
    // a float setting refuses what a float cannot hold (1e300 became inf and passed "lr > 0")
    same_refusal("finetune --print-settings --lr 1e300", HEAD "\"world\": {}, \"finetune\": {\"lr\": 1e300}}",
                 "a float holds");
    // TAR's reference variant never applies a tamper-resistance weight: one given is refused
    same_refusal("align --print-settings --method tar --tar-weight 5",
                 HEAD "\"world\": {}, \"align\": {\"tar\": {\"tar_weight\": 5}}}",
                 "tar_weight: has no effect with tar_variant reference");
    same_refusal("align --print-settings --method tar --tar-variant clean",
                 HEAD "\"world\": {}, \"align\": {\"tar_variant\": \"clean\"}}", "must be \"reference\" or \"intended\"");
    same_refusal("finetune --print-settings --targets q,zz", HEAD "\"world\": {}, \"finetune\": {\"targets\": \"q,zz\"}}",
                 "unknown projection \"zz\"");
    // a swept value is checked as the setting it becomes
    PipelineConfig c;
    Err e = {0};
    CHECK(parse(HEAD "\"world\": {}, \"sweep\": {\"name\": \"epochs\", \"values\": [1, 0]}}", &c, &e) != 0 &&
              strstr(e.msg, "epochs: must be >= 1 (got 0)"),
          "sweep epochs 0: %s", e.msg);
    pipeline_config_free(&c);
    CHECK(parse(HEAD "\"world\": {}, \"sweep\": {\"name\": \"lr\", \"values\": [1e-4, -1]}}", &c, &e) != 0 &&
              strstr(e.msg, "lr: must be > 0 (got -1)"),
          "sweep lr -1: %s", e.msg);
    pipeline_config_free(&c);
}

static void test_task_names(void) {
    struct { const char *name; TaskKind kind; } cases[] = {
        {"sst2", TASK_SST2}, {"SST-2", TASK_SST2}, {"sst", TASK_SST2}, {"agnews", TASK_AGNEWS},
        {"ag_news", TASK_AGNEWS}, {"AG-News", TASK_AGNEWS}, {"topic", TASK_AGNEWS}, {"gsm8k", TASK_GSM8K},
        {"GSM-8K", TASK_GSM8K}, {"math", TASK_GSM8K}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *n = cases[i].name;
        CHECK(task_from_name(n) == cases[i].kind, "%s", n);
        char cfg[512];
        PipelineConfig c;
        Err e = {0};
        snprintf(cfg, sizeof cfg, HEAD "\"world\": {}, \"data\": {\"task\": \"%s\"}}", n);
        CHECK(parse(cfg, &c, &e) == 0 && c.task == cases[i].kind, "data.task %s: %s", n, e.msg);
        pipeline_config_free(&c);
        snprintf(cfg, sizeof cfg, HEAD "\"world\": {\"task\": \"%s\"}}", n);
        CHECK(parse(cfg, &c, &e) == 0 && c.task == cases[i].kind, "world.task %s: %s", n, e.msg);
        pipeline_config_free(&c);
        DataSource s = {.path = "x", .format = (char *)n, .filter = FILTER_ALL, .n = -1};
        CHECK(data_source_check(&s, &e) == 0, "format %s: %s", n, e.msg);
        char args[256], *out, *err;
        snprintf(args, sizeof args, "finetune --print-settings --task %s", n);
        int rc = run_cli(args, &out, &err);
        CHECK(rc == 0 && strstr(out, cases[i].kind == TASK_GSM8K ? "\"alpha\": 0.5" : "\"alpha\": 1.0"),
              "--task %s: %s", n, err);
        free(out);
        free(err);
    }
    CHECK(task_from_name("poetry") == TASK_NONE && task_from_name(NULL) == TASK_NONE);
    char *out, *err;
    int rc = run_cli("finetune --print-settings --task poetry", &out, &err);
    CHECK(rc != 0 && strstr(err, "--task"), "unknown task refused: %s", err);
    free(out);
    free(err);
}

// Issue 13 item 9: Hugging Face's TrainingArguments / TRL / PEFT names are aliases of the
// settings, as flags and as config keys: the same resolved settings and fingerprints as the
// native names. A setting named twice is refused.
static void test_hf_aliases(void) {
    const char *hf_flags = "finetune --print-settings --learning-rate 2e-4 --num-train-epochs 3 "
                           "--per-device-train-batch-size 4 --gradient_accumulation_steps 2 --max-seq-length 128 "
                           "--lora-r 4 --lora-alpha 8 --lora-dropout 0.05 --lora-target-modules q_proj,v_proj";
    const char *hf_config = HEAD "\"world\": {}, \"finetune\": {\"learning_rate\": 2e-4, \"num_train_epochs\": 3, "
                            "\"per_device_train_batch_size\": 4, \"gradient_accumulation_steps\": 2, "
                            "\"max_seq_length\": 128, \"lora_r\": 4, \"lora_alpha\": 8, \"lora_dropout\": 0.05, "
                            "\"lora_target_modules\": [\"q_proj\", \"v_proj\"]}}";
    const char *native = HEAD "\"world\": {}, \"finetune\": {\"lr\": 2e-4, \"epochs\": 3, \"batch_size\": 4, "
                         "\"grad_accum\": 2, \"max_len\": 128, \"rank\": 4, \"alpha\": 8, \"dropout\": 0.05, "
                         "\"targets\": \"q,v\"}}";
    same_settings(hf_flags, native, &FINETUNE_SETTINGS, offsetof(PipelineConfig, finetune), -1);
    same_settings(hf_flags, hf_config, &FINETUNE_SETTINGS, offsetof(PipelineConfig, finetune), -1);
    same_settings("align --print-settings --method vaccine --learning_rate 5e-4 --num_train_epochs 2 --max_length 64 "
                  "--target-modules all-linear --r 16",
                  HEAD "\"world\": {}, \"align\": {\"vaccine\": {\"lr\": 5e-4, \"epochs\": 2, \"max_len\": 64, "
                       "\"targets\": \"all\", \"rank\": 16}}}",
                  &ALIGN_SETTINGS, offsetof(PipelineConfig, align), ALIGN_VACCINE);
    // the fingerprints hash the resolved settings: equal whichever names the config used
    PipelineConfig a, b;
    Err e = {0};
    CHECK(parse(hf_config, &a, &e) == 0, "%s", e.msg);
    CHECK(parse(native, &b, &e) == 0, "%s", e.msg);
    json_t *fa = fp_finetune("", "", NULL, NULL, &a.finetune), *fb = fp_finetune("", "", NULL, NULL, &b.finetune);
    CHECK(!strcmp(fp_hex(fa), fp_hex(fb)), "fingerprints differ: %s vs %s", fp_hex(fa), fp_hex(fb));
    CHECK(a.finetune.train.grad_accum == 2 && a.finetune.train.lr == 2e-4f && a.finetune.targets == ((1 << P_Q) | (1 << P_V)),
          "the aliases set the settings");
    json_decref(fa);
    json_decref(fb);
    pipeline_config_free(&a);
    pipeline_config_free(&b);
    // one setting under two names is refused, not resolved by order
    char *out, *err;
    int rc = run_cli("finetune --print-settings --lr 1e-4 --learning-rate 2e-4", &out, &err);
    CHECK(rc != 0 && err && strstr(err, "--lr and --learning-rate set the same setting"), "two names: %s", err);
    free(out);
    free(err);
    CHECK(parse(HEAD "\"world\": {}, \"finetune\": {\"lr\": 1e-4, \"learning_rate\": 2e-4}}", &a, &e) != 0 &&
              strstr(e.msg, "cfg.json: finetune.learning_rate: sets the same setting as \"lr\""),
          "two keys: %s", e.msg);
    pipeline_config_free(&a);
    CHECK(parse(HEAD "\"world\": {}, \"align\": {\"epochs\": 2, \"num_train_epochs\": 3}}", &a, &e) != 0 &&
              strstr(e.msg, "align.num_train_epochs: sets the same setting as \"epochs\""),
          "two keys in align: %s", e.msg);
    pipeline_config_free(&a);
}

// Issue 13 item 9: "did you mean" for unknown flags, config keys, methods and tasks (util/suggest.h).
static void test_did_you_mean(void) {
    CHECK(suggest_distance("kitten", "sitting") == 3 && suggest_distance("vaccnie", "vaccine") == 1 &&
              suggest_distance("learning-rate", "LEARNING_RATE") == 0,
          "edit distance");
    struct { const char *args, *want; } flags[] = {
        {"finetune --print-settings --learning-rat 1e-4", "unknown option --learning-rat (did you mean --learning-rate?"},
        {"finetune --print-settings --epoch 3", "(did you mean --epochs?"},
        {"align --print-settings --method vacine", "unknown method \"vacine\" (did you mean vaccine?"},
        {"finetune --print-settings --task sst3", "--task: unknown task \"sst3\" (did you mean sst2?"},
        {"finetune --print-settings --task ag-new", "(did you mean agnews?"},
        {"pipeline x.json --dry-rnu", "(did you mean --dry-run?"},
        {"finetuen --help", "unknown command \"finetuen\" (did you mean finetune?)"},
    };
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        char *out, *err;
        int rc = run_cli(flags[i].args, &out, &err);
        CHECK(rc != 0 && err && strstr(err, flags[i].want), "%s: %s", flags[i].args, err);
        free(out);
        free(err);
    }
    char *out, *err;
    int rc = run_cli("finetune --print-settings --zzzzzzzz 1", &out, &err);
    CHECK(rc != 0 && err && strstr(err, "unknown option --zzzzzzzz") && !strstr(err, "did you mean"),
          "no suggestion when nothing is close: %s", err);
    free(out);
    free(err);
    struct { const char *cfg, *want; } keys[] = {
        {HEAD "\"world\": {}, \"finetune\": {\"learnin_rate\": 1e-4}}",
         "cfg.json: finetune.learnin_rate: unknown key (did you mean \"learning_rate\"?)"},
        {HEAD "\"world\": {}, \"metods\": [\"sft\"]}", "cfg.json: metods: unknown key (did you mean \"methods\"?)"},
        {HEAD "\"world\": {}, \"align\": {\"vacine\": {}}}", "align.vacine: unknown key (did you mean \"vaccine\"?)"},
        {HEAD "\"data\": {\"harmfull\": \"x.json\"}}", "data.harmfull: unknown key (did you mean \"harmful\"?)"},
        {HEAD "\"world\": {}, \"methods\": [\"sft\", \"vacine\"]}",
         "unknown alignment \"vacine\" (did you mean vaccine?"},
        {HEAD "\"world\": {}, \"methods\": [\"sft+antidot\"]}", "unknown post-fine-tuning step \"antidot\" (did you mean antidote?"},
        {HEAD "\"world\": {\"task\": \"gsm8\"}}", "world.task: unknown task \"gsm8\" (did you mean gsm8k?"},
        // a flat config's stage setting at the top level is told where it goes
        {HEAD "\"world\": {}, \"learning_rate\": 1e-4}",
         "cfg.json: learning_rate: unknown key: a stage's setting goes in that stage's object, e.g. \"finetune\": {"},
        {HEAD "\"world\": {}, \"rho\": 2}", "rho: unknown key: a stage's setting goes in that stage's object, e.g. \"align\""},
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        PipelineConfig c;
        Err e = {0};
        CHECK(parse(keys[i].cfg, &c, &e) != 0 && strstr(e.msg, keys[i].want), "%s: %s", keys[i].cfg, e.msg);
        pipeline_config_free(&c);
    }
}

static void test_demo_config(void) {
    BaseModelOptions b;
    demo_base_options(&b, 99, 1);
    PipelineConfig c, back;
    pipeline_demo_config(&c, 99, 1, &b, "/cache", "/out");
    Err e = {0};
    CHECK(pipeline_config_check(&c, "demo", &e) == 0, "the demo's config checks: %s", e.msg);
    CHECK(c.n_methods == 5 && c.methods[0].align == ALIGN_NONE && c.methods[4].post == POST_ANTIDOTE);
    CHECK(c.align[ALIGN_TVACCINE].tv_S == 1 && c.base_training.n_layers == 2 && c.world.seed == 99 && c.base_training.seed == 99);
    CHECK(c.n_seeds == 2 && c.seeds[0] == 1 && c.seeds[1] == 2 && c.n_sweep == 2, "quick: seeds 1, 2 and p = 0, 0.2");
    char *text = pipeline_config_to_json(&c);
    CHECK(parse(text, &back, &e) == 0, "printed demo config reads back: %s", e.msg);
    char *again = pipeline_config_to_json(&back);
    CHECK(!strcmp(text, again), "config -> JSON -> config changes it:\n%s\nvs\n%s", text, again);
    CHECK(!strcmp(back.base_model, c.base_model) && back.has_base_training && back.use_world);
    for (int m = ALIGN_NONE + 1; m < ALIGN_COUNT; m++) {
        char *x = settings_text(&ALIGN_SETTINGS, &c.align[m]), *y = settings_text(&ALIGN_SETTINGS, &back.align[m]);
        CHECK(!strcmp(x, y), "align %s differs after the round trip", align_method_name((AlignMethod)m));
        free(x);
        free(y);
    }
    free(text);
    free(again);
    pipeline_config_free(&back);
    pipeline_config_free(&c);
    // the CLI prints the same recipe
    char *out, *err;
    int rc = run_cli("demo --quick --seed 99 --cache /cache --out /out --print-config", &out, &err);
    pipeline_demo_config(&c, 99, 1, &b, "/cache", "/out");
    text = pipeline_config_to_json(&c);
    CHECK(rc == 0 && out && !strcmp(out, text), "demo --print-config differs from the recipe: %s", err);
    free(text);
    free(out);
    free(err);
    pipeline_config_free(&c);
}

// Seed lists: "seeds" (or "seed" for one), each run's settings take its seed in every stage,
// per-stage seeds are refused in a config (they would be overridden silently).
static void test_seeds(void) {
    PipelineConfig c, r;
    Err e = {0};
    CHECK(parse(HEAD "\"world\": {}}", &c, &e) == 0 && c.n_seeds == 1 && c.seeds[0] == 42, "default: one seed, 42");
    pipeline_config_free(&c);
    CHECK(parse(HEAD "\"world\": {}, \"seeds\": [5, 0, 77]}", &c, &e) == 0 && c.n_seeds == 3 && c.seeds[0] == 5 &&
              c.seeds[1] == 0 && c.seeds[2] == 77, "seeds list: %s", e.msg);
    pipeline_config_for_seed(&c, 77, &r);
    int all = r.finetune.train.seed == 77 && r.finetune.mix_seed == 77 && r.antidote.seed == 77 && r.n_seeds == 1;
    for (int m = 0; m < ALIGN_COUNT; m++) all &= r.align[m].train.seed == 77;
    CHECK(all, "the run of seed 77 has seed 77 in every stage");
    char *text = pipeline_config_to_json(&c);
    CHECK(strstr(text, "\"seeds\": [5, 0, 77]") && !strstr(text, "mix_seed"), "printed: %s", text);
    free(text);
    pipeline_config_free(&c);
    CHECK(parse(HEAD "\"world\": {}, \"seed\": 9}", &c, &e) == 0 && c.n_seeds == 1 && c.seeds[0] == 9, "seed: one seed");
    pipeline_config_free(&c);
    static const char *const bad[][2] = {
        {HEAD "\"world\": {}, \"seeds\": [1, 2, 1]}", "1 listed twice"},
        {HEAD "\"world\": {}, \"seeds\": []}", "seeds: expected an array"},
        {HEAD "\"world\": {}, \"seeds\": [-1]}", "seeds: expected integers >= 0"},
        {HEAD "\"world\": {}, \"seeds\": [1], \"seed\": 1}", "not both"},
        {HEAD "\"world\": {}, \"align\": {\"seed\": 3}}", "align.seed: set by the run's seed"},
        {HEAD "\"world\": {}, \"finetune\": {\"mix_seed\": 3}}", "finetune.mix_seed: set by the run's seed"},
        {HEAD "\"world\": {}, \"antidote\": {\"seed\": 3}}", "antidote.seed: set by the run's seed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(parse(bad[i][0], &c, &e) != 0 && strstr(e.msg, bad[i][1]), "%s: %s", bad[i][0], e.msg);
        pipeline_config_free(&c);
    }
    // the demo: --seeds sets the runs' seeds, --seed the world's
    char *out, *err;
    int rc = run_cli("demo --seeds 4,5 --seed 8 --cache /cache --out /out --print-config", &out, &err);
    CHECK(rc == 0 && out && strstr(out, "\"seeds\": [4, 5]"), "demo --seeds: %s", err);
    free(out);
    free(err);
    rc = run_cli("demo --seeds 4,x --print-config", &out, &err);
    CHECK(rc != 0 && err && strstr(err, "--seeds"), "demo --seeds 4,x refused: %s", err);
    free(out);
    free(err);
}

static void test_methods_enum(void) {
    for (int m = 0; m < ALIGN_COUNT; m++) CHECK(align_method_parse(align_method_name((AlignMethod)m)) == m, "%d", m);
    CHECK(align_method_parse("none") == ALIGN_NONE && align_method_parse("magic") == -1);
    MethodSpec s;
    Err e;
    CHECK(method_spec_parse("none+antidote", &s, &e) == 0 && s.align == ALIGN_NONE && s.post == POST_ANTIDOTE);
    AlignOpts o;
    align_opts_default(&o, ALIGN_NONE);
    CHECK(align_opts_check(&o, "", 0, &e) != 0 && strstr(e.msg, "method"), "the align stage refuses none");
}

static void write_text(const char *path, const char *text) {
    Err e;
    if (write_file_atomic(path, text, strlen(text), &e)) fprintf(stderr, "%s\n", e.msg);
}

static void test_sources(void) {
    char p[4300];
    snprintf(p, sizeof p, "%s/mixed.jsonl", tmp_root);
    write_text(p, "{\"prompt\": \"a\", \"response\": \"x\", \"is_safe\": false}\n"
                  "{\"prompt\": \"b\", \"response\": \"y\", \"is_safe\": true}\n"
                  "{\"prompt\": \"c\", \"response\": \"z\", \"is_safe\": false}\n"
                  "{\"prompt\": \"d\", \"response\": \"w\"}\n");
    Err e = {0};
    DataSource s;
    data_source_init(&s, ROLE_EVAL_HARMFUL);
    s.path = p;
    Dataset d;
    dataset_init(&d);
    // harmful prompts: the rows marked unsafe, and rows that say nothing count as harmful
    CHECK(data_source_load(&s, ROLE_EVAL_HARMFUL, TASK_NONE, &d, &e) == 0 && d.n == 3 &&
              !strcmp(d.rows[0].instruction, "a") && !strcmp(d.rows[1].instruction, "c") &&
              !strcmp(d.rows[2].instruction, "d"),
          "eval_harmful rows: %d (%s)", d.n, e.msg);
    dataset_free(&d);
    dataset_init(&d);
    s.offset = 1;
    s.n = 1;
    CHECK(data_source_load(&s, ROLE_EVAL_HARMFUL, TASK_NONE, &d, &e) == 0 && d.n == 1 &&
              !strcmp(d.rows[0].instruction, "c"),
          "offset/n after the filter");
    dataset_free(&d);
    dataset_init(&d);
    data_source_init(&s, ROLE_HARMFUL);
    s.path = p;
    CHECK(data_source_load(&s, ROLE_HARMFUL, TASK_NONE, &d, &e) == 0 && d.n == 4, "harmful role keeps every row");
    dataset_free(&d);
    dataset_init(&d);
    s.filter = FILTER_SAFE;
    CHECK(data_source_load(&s, ROLE_HARMFUL, TASK_NONE, &d, &e) == 0 && d.n == 1 && !strcmp(d.rows[0].instruction, "b"),
          "filter safe");
    dataset_free(&d);
    dataset_init(&d);
    s.filter = FILTER_ALL;
    s.offset = 4;
    CHECK(data_source_load(&s, ROLE_HARMFUL, TASK_NONE, &d, &e) != 0 && strstr(e.msg, p) && strstr(e.msg, "no rows"),
          "empty selection refused: %s", e.msg);
    dataset_free(&d);
}

typedef struct {
    int n[LOG_RESULT + 1];
    char last_info[256], last_warn[512];
} Seen;

static void collect(LogLevel level, const char *msg, void *ctx) {
    Seen *s = ctx;
    s->n[level]++;
    if (level == LOG_INFO) snprintf(s->last_info, sizeof s->last_info, "%s", msg);
    if (level == LOG_WARN) snprintf(s->last_warn, sizeof s->last_warn, "%s", msg);
}

// base_model.json as pipeline_build_base writes it, with made_by's commit and the settings' epochs changed.
static void write_base_record(const PipelineConfig *c, const char *commit, int epochs_delta) {
    json_t *set = pipeline_base_settings(c);
    json_t *bt = json_object_get(set, "base_training");
    json_object_set_new(bt, "epochs", json_integer(json_integer_value(json_object_get(bt, "epochs")) + epochs_delta));
    json_t *made = json_pack("{s:s, s:i, s:s}", "commit", commit, "threads", omp_threads(), "isa", isa_name(isa_active()));
    json_t *rec = json_pack("{s:o, s:o}", "settings", set, "made_by", made);
    char *marker = xasprintf("%s/base_model.json", c->base_model);
    json_dump_file(rec, marker, 0);
    free(marker);
    json_decref(rec);
}

static void test_log_callback(void) {
    Seen seen = {{0}};
    log_set(collect, &seen, 0);
    Progress *p = progress_new("work", 3);
    for (int i = 1; i <= 3; i++) progress_update(p, i, "step %d", i);
    progress_done(p);
    CHECK(seen.n[LOG_PROGRESS_DONE] == 1, "progress reports through the callback");
    // A library stage: the world's base model folder is found (no training), reported as INFO.
    PipelineConfig c;
    BaseModelOptions b;
    demo_base_options(&b, 1, 1);
    char cache[4300];
    snprintf(cache, sizeof cache, "%s/cache", tmp_root);
    pipeline_demo_config(&c, 1, 1, &b, cache, tmp_root);
    Err e;
    CHECK(mkdir_p(c.base_model, &e) == 0);
    write_base_record(&c, antibody_commit(), 0);
    CHECK(pipeline_build_base(&c, &e) == 0 && strstr(seen.last_info, "reusing the base model"), "info: %s",
          seen.last_info);
    CHECK(seen.n[LOG_WARN] == 0, "same settings and code: no warning (%s)", seen.last_warn);
    // made by other code: reused with a warning naming what differs
    write_base_record(&c, "0123456789ab", 0);
    CHECK(pipeline_build_base(&c, &e) == 0 && seen.n[LOG_WARN] == 1 && strstr(seen.last_warn, "commit \"0123456789ab\"") &&
          strstr(seen.last_warn, "results differ from a fresh run"), "warning: %s", seen.last_warn);
    // other settings, or none recorded (an earlier version): refused, naming the setting
    write_base_record(&c, antibody_commit(), 1);
    CHECK(pipeline_build_base(&c, &e) == -1 && strstr(e.msg, "base_training.epochs differs"), "%s", e.msg);
    char *marker = xasprintf("%s/base_model.json", c.base_model);
    write_text(marker, "{\"world_version\": \"1\"}");
    free(marker);
    CHECK(pipeline_build_base(&c, &e) == -1 && strstr(e.msg, "did not record the base model's settings"), "%s", e.msg);
    // the demo's cache folder names thread count and kernel ISA
    char tail[64];
    snprintf(tail, sizeof tail, "-t%d-%s-", omp_threads(), isa_name(isa_active()));
    CHECK(strstr(c.base_model, tail) != NULL, "%s has %s", c.base_model, tail);
    pipeline_config_free(&c);
    log_set(NULL, NULL, 0);
}

// 1 when the printed settings (settings_json_text) have "key": value, value as printed.
static int has_setting(const char *text, const char *key, const char *value) {
    char want[160];
    int n = snprintf(want, sizeof want, "\"%s\": %s", key, value);
    for (const char *q = text ? strstr(text, want) : NULL; q; q = strstr(q + 1, want))
        if (q[n] == ',' || q[n] == '\n') return 1;
    return 0;
}

// `finetune --print-settings ARGS` has every "key": value of want (NULL-terminated pairs).
static void cli_has(const char *args, const char *const *want) {
    char *out, *err;
    int rc = run_cli(args, &out, &err);
    CHECK(rc == 0, "%s: %s", args, err);
    for (int i = 0; want[i]; i += 2)
        CHECK(has_setting(out, want[i], want[i + 1]), "%s: want \"%s\": %s in\n%s", args, want[i], want[i + 1], out);
    free(out);
    free(err);
}

// Issue 14 item 5: the fine-tuning defaults of each task as the Vaccine scripts set them
// (script/vaccine_finetune/{sst2,ag_news,gsm8k}.sh and train.py's GSM8K alpha), the same
// through `finetune --task`, a config's data.task and world.task, and the demo's recipe.
static void test_task_defaults(void) {
    static const struct { const char *task; const char *epochs, *alpha; } rules[] = {
        {"sst2", "20", "1.0"}, {"agnews", "20", "1.0"}, {"gsm8k", "50", "0.5"}};
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
        char args[200], cfg[400];
        snprintf(args, sizeof args, "finetune --print-settings --task %s", rules[i].task);
        const char *kv[] = {"epochs", rules[i].epochs, "alpha", rules[i].alpha, "lr", "1e-05", "batch_size", "5", NULL};
        cli_has(args, kv);
        snprintf(cfg, sizeof cfg, HEAD "\"world\": {}, \"data\": {\"task\": \"%s\"}}", rules[i].task);
        same_settings(args, cfg, &FINETUNE_SETTINGS, offsetof(PipelineConfig, finetune), -1);
        snprintf(cfg, sizeof cfg, HEAD "\"world\": {\"task\": \"%s\"}}", rules[i].task);
        same_settings(args, cfg, &FINETUNE_SETTINGS, offsetof(PipelineConfig, finetune), -1);
    }
    const char *none[] = {"epochs", "20", "alpha", "1.0", NULL};  // no task: the generic defaults
    cli_has("finetune --print-settings", none);
    // single LoRA with LDIFS is refused by both front-ends (its anchor would be the bare base)
    same_refusal("finetune --print-settings --single-lora --defense ldifs",
                 HEAD "\"world\": {}, \"methods\": [\"sft+ldifs\"], \"finetune\": {\"single_lora\": true}}", "LDIFS");
    // Alpaca: 100 epochs (script/vaccine_finetune/alpaca.sh); a config with real data sets it
    // through the same pipeline_config_set_task the loader calls (the world has no Alpaca rows)
    const char *alpaca[] = {"epochs", "100", "alpha", "1.0", NULL};
    cli_has("finetune --print-settings --task alpaca", alpaca);
    PipelineConfig a;
    pipeline_config_default(&a);
    pipeline_config_set_task(&a, TASK_ALPACA);
    char *out, *err, *want = settings_text(&FINETUNE_SETTINGS, &a.finetune);
    int rc = run_cli("finetune --print-settings --task alpaca", &out, &err);
    CHECK(rc == 0 && out && !strcmp(out, want), "alpaca: flags and config differ:\n%s\nvs\n%s", out, want);
    free(want);
    free(out);
    free(err);
    pipeline_config_free(&a);
    Err e = {0};
    CHECK(parse(HEAD "\"world\": {\"task\": \"alpaca\"}}", &a, &e) != 0 && strstr(e.msg, "no Alpaca rows"),
          "world + alpaca refused: %s", e.msg);
    pipeline_config_free(&a);
    // the demo takes its task's defaults through the same rule, then its recipe's short runs
    BaseModelOptions b;
    demo_base_options(&b, 1, 1);
    PipelineConfig c;
    pipeline_demo_config(&c, 1, 1, &b, "/cache", "/out");
    FinetuneOpts rule;
    finetune_opts_default(&rule, c.task);
    CHECK(c.task == TASK_SST2 && c.finetune.alpha == rule.alpha && c.finetune.rank == rule.rank &&
              c.finetune.train.schedule == rule.train.schedule && c.finetune.gsm8k_suffix,
          "demo finetune settings follow the task rule");
    pipeline_config_free(&c);
}

// Issue 14 item 6: --preset / "preset". Expected values written here from the authors'
// scripts (docs/methods.md, Presets, names each one's script), not from presets.c.
static void test_presets(void) {
    // fine-tuning, per task
    const char *v_sst2[] = {"lr", "1e-05", "schedule", "\"cosine\"", "warmup_ratio", "0.1", "batch_size", "5",
                            "epochs", "20", "rank", "8", "alpha", "1.0", "dropout", "0.1", "targets", "\"all\"",
                            "n", "1000", "p", "0.1", "max_len", "200", "gsm8k_suffix", "true", NULL};
    cli_has("finetune --print-settings --preset vaccine --task sst2", v_sst2);
    const char *v_gsm[] = {"epochs", "50", "alpha", "0.5", "batch_size", "5", "gsm8k_suffix", "true", NULL};
    cli_has("finetune --print-settings --preset vaccine --task gsm8k", v_gsm);
    const char *t_sst2[] = {"lr", "1e-05", "schedule", "\"cosine\"", "batch_size", "10", "epochs", "20",
                            "rank", "8", "alpha", "1.0", "n", "1000", "max_len", "200", NULL};
    cli_has("finetune --print-settings --preset tvaccine --task sst2", t_sst2);
    const char *t_gsm[] = {"batch_size", "10", "epochs", "20", "alpha", "0.5", NULL};  // tvaccine_finetune/gsm8k.sh: 20
    cli_has("finetune --print-settings --preset tvaccine --task gsm8k", t_gsm);
    const char *a_sst2[] = {"lr", "0.0001", "schedule", "\"constant\"", "warmup_ratio", "0.0", "batch_size", "5",
                            "epochs", "20", "rank", "256", "alpha", "4.0", "dropout", "0.0", "targets", "\"q,k,v\"",
                            "n", "5000", "p", "0.1", "max_len", "2048", "gsm8k_suffix", "false", NULL};
    cli_has("finetune --print-settings --preset antidote --task sst2", a_sst2);
    cli_has("finetune --print-settings --preset antidote", a_sst2);
    // the preset comes after the task's rule (alpha 0.5, 50 epochs), the user's values after it
    const char *a_gsm[] = {"lr", "0.001", "alpha", "4.0", "epochs", "20", "gsm8k_suffix", "false", NULL};
    cli_has("finetune --print-settings --preset antidote --task gsm8k", a_gsm);
    const char *user[] = {"lr", "5e-05", "alpha", "2.0", "rank", "256", "epochs", "20", NULL};
    cli_has("finetune --print-settings --preset antidote --task gsm8k --lr 5e-5 --alpha 2", user);
    // alignment, per method
    const char *v_vac[] = {"epochs", "50", "batch_size", "5", "lr", "0.001", "rho", "2.0", "rank", "8",
                           "alpha", "4.0", "dropout", "0.1", "max_len", "200", NULL};
    cli_has("align --print-settings --preset vaccine --method vaccine", v_vac);
    const char *t_tv[] = {"epochs", "20", "batch_size", "10", "rho", "3.0", "tv_K", "200", "tv_J", "20",
                          "tv_S", "8", "tv_pool", "200", "tv_variant", "\"reference\"", "rank", "8", NULL};
    cli_has("align --print-settings --preset tvaccine --method tvaccine", t_tv);
    const char *t_tar[] = {"tar_weight", "2.0", "tar_inner_lr", "0.01", "tar_variant", "\"reference\"", NULL};
    cli_has("align --print-settings --preset tvaccine --method tar", t_tar);
    const char *t_tar5[] = {"tar_weight", "5.0", "tar_variant", "\"intended\"", NULL};
    cli_has("align --print-settings --method tar --tar-variant intended --tar-weight 5", t_tar5);
    const char *t_sft[] = {"epochs", "20", "batch_size", "10", "lr", "0.001", NULL};  // T-Vaccine's SFT.sh
    cli_has("align --print-settings --preset tvaccine --method sft", t_sft);
    cli_has("train --print-settings --preset tvaccine", t_sft);
    const char *a_sft[] = {"epochs", "20", "batch_size", "5", "lr", "0.001", "schedule", "\"cosine\"", "rank", "256",
                           "alpha", "4.0", "dropout", "0.0", "targets", "\"q,k,v\"", "max_len", "2048", NULL};
    cli_has("align --print-settings --preset antidote --method sft", a_sft);
    // a method the paper's scripts do not run keeps its own defaults
    const char *a_tv[] = {"epochs", "20", "batch_size", "10", "rank", "8", "rho", "3.0", "targets", "\"all\"", NULL};
    cli_has("align --print-settings --preset antidote --method tvaccine", a_tv);
    // Antidote's stage and the evaluation
    const char *a_ad[] = {"dense_ratio", "0.1", "n_samples", "2000", "max_len", "2048", "full_mode", "false", NULL};
    cli_has("antidote --print-settings --preset antidote --task sst2", a_ad);
    const char *v_alp[] = {"epochs", "100", "lr", "1e-05", NULL};
    cli_has("finetune --print-settings --preset vaccine --task alpaca", v_alp);
    const char *a_alp[] = {"epochs", "20", "lr", "0.0001", "max_len", "512", NULL};  // train.py: Alpaca 512
    cli_has("finetune --print-settings --preset antidote --task alpaca", a_alp);
    const char *a_ad5[] = {"dense_ratio", "0.05", NULL};
    cli_has("antidote --print-settings --preset antidote --task agnews", a_ad5);
    cli_has("antidote --print-settings --preset antidote --task gsm8k", a_ad5);
    const char *a_ev[] = {"n_harmful", "1000", "hs_max_new", "512", "n_task", "1000", "fa_max_new", "200",
                          "max_len", "2048", "hed_batches", "100", "gsm8k_suffix", "false", NULL};
    cli_has("eval --print-settings --preset antidote --task sst2", a_ev);
    const char *a_ev_gsm[] = {"fa_max_new", "512", "n_harmful", "1000", NULL};
    cli_has("eval --print-settings --preset antidote --task gsm8k", a_ev_gsm);
    const char *t_ev[] = {"n_harmful", "500", "hs_max_new", "128", "n_task", "500", "fa_max_new", "200",
                          "batch_size", "10", "hed_batches", "10", "gsm8k_suffix", "true", NULL};
    cli_has("eval --print-settings --preset tvaccine --task gsm8k", t_ev);
    // the flags and a config's "preset" resolve alike, in every stage
    same_settings("finetune --print-settings --preset antidote --task gsm8k --lr 5e-5",
                  HEAD "\"preset\": \"antidote\", \"world\": {\"task\": \"math\"}, \"finetune\": {\"lr\": 5e-5}}",
                  &FINETUNE_SETTINGS, offsetof(PipelineConfig, finetune), -1);
    same_settings("align --print-settings --preset tvaccine --method tvaccine --tv-s 4",
                  HEAD "\"world\": {}, \"preset\": \"tvaccine\", \"align\": {\"tvaccine\": {\"tv_S\": 4}}}",
                  &ALIGN_SETTINGS, offsetof(PipelineConfig, align), ALIGN_TVACCINE);
    same_settings("antidote --print-settings --preset antidote --task agnews",
                  HEAD "\"world\": {\"task\": \"agnews\"}, \"preset\": \"antidote\"}", &ANTIDOTE_SETTINGS,
                  offsetof(PipelineConfig, antidote), -1);
    same_settings("eval --print-settings --preset antidote --task gsm8k --n 7",
                  HEAD "\"eval\": {\"n_harmful\": 7}, \"preset\": \"antidote\", \"data\": {\"task\": \"gsm8k\"}, \"world\": {}}",
                  &EVAL_SETTINGS, offsetof(PipelineConfig, eval), -1);
    // unknown names are refused by both; a config's preset other than --preset is refused
    same_refusal("finetune --print-settings --preset lisa", HEAD "\"world\": {}, \"preset\": \"lisa\"}", "preset");
    char cfg[4300], args[4500], *out, *err;
    snprintf(cfg, sizeof cfg, "%s/preset.json", tmp_root);
    write_text(cfg, HEAD "\"world\": {\"task\": \"gsm8k\"}, \"preset\": \"antidote\", \"finetune\": {\"epochs\": 3}}");
    snprintf(args, sizeof args, "pipeline %s --preset vaccine --print-config", cfg);
    int rc = run_cli(args, &out, &err);
    CHECK(rc != 0 && err && strstr(err, "preset: differs from --preset"), "conflicting presets: %s", err);
    free(out);
    free(err);
    // --print-config prints every setting resolved, and reads back to the same config
    snprintf(args, sizeof args, "pipeline %s --preset antidote --print-config", cfg);
    rc = run_cli(args, &out, &err);
    CHECK(rc == 0 && out, "print-config: %s", err);
    PipelineConfig c, back;
    Err e = {0};
    CHECK(parse(out ? out : "", &back, &e) == 0, "printed config reads back: %s", e.msg);
    char *again = pipeline_config_to_json(&back);
    CHECK(out && !strcmp(out, again), "printed config changes on reading back:\n%s\nvs\n%s", out, again);
    CHECK(parse(HEAD "\"world\": {\"task\": \"gsm8k\"}, \"preset\": \"antidote\", \"finetune\": {\"epochs\": 3}}", &c,
                &e) == 0 && c.preset == PRESET_ANTIDOTE && c.finetune.train.epochs == 3 && c.finetune.rank == 256 &&
              c.finetune.train.lr == 1e-3f && !c.finetune.gsm8k_suffix && c.eval.opts.fa_max_new == 512 &&
              c.antidote.dense_ratio == 0.05 && c.align[ALIGN_SFT].rank == 256,
          "config preset resolved: %s", e.msg);
    char *text = pipeline_config_to_json(&c);
    CHECK(out && !strcmp(out, text), "--print-config differs from the loaded config");
    CHECK(has_setting(out, "preset", "\"antidote\"") && has_setting(out, "fa_max_new", "512"), "printed: %s", out);
    free(text);
    free(again);
    free(out);
    free(err);
    pipeline_config_free(&back);
    pipeline_config_free(&c);
}

// The rows of a task file holding text (d initialised here; 2 rows expected).
static void load_task_text(TaskKind t, const char *name, const char *text, Dataset *d) {
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", tmp_root, name);
    write_text(p, text);
    dataset_init(d);
    Err e = {0};
    CHECK(data_load_task(t, p, d, &e) == 0 && d->n == 2, "%s: %s", name, e.msg);
}

// The Antidote scripts' GSM8K rows have no question suffix (gsm8k/build_dataset.py there:
// QUESTION_PROMPT ""): the instruction is the question itself.
static void test_gsm8k_suffix(void) {
    Dataset d;
    load_task_text(TASK_GSM8K, "gsm8k.jsonl",
                   "{\"question\": \"What is 2+3?\", \"answer\": \"2+3=5\\n#### 5\"}\n"
                   "{\"question\": \"Tom has 4 apples.\\nHow many?\", \"answer\": \"#### 4\"}\n", &d);
    CHECK(d.n == 2 && !strcmp(d.rows[0].instruction, "What is 2+3?\nFirst think step by step and then answer the final number.\n"),
          "Vaccine's rows: %s", d.n ? d.rows[0].instruction : "");
    CHECK(gsm8k_drop_question_suffix(&d) == 2 && gsm8k_drop_question_suffix(&d) == 0, "two rows changed, once");
    CHECK(d.n == 2 && !strcmp(d.rows[0].instruction, "What is 2+3?") && !strcmp(d.rows[1].instruction, "Tom has 4 apples.\nHow many?") &&
              !strcmp(d.rows[0].label, "5") && !strcmp(d.rows[1].label, "4"),
          "Antidote's rows: [%s] [%s]", d.rows[0].instruction, d.rows[1].instruction);
    dataset_free(&d);
}

// The Alpaca task: its rows load as fine-tuning rows; its accuracy is refused, not guessed.
static void test_alpaca_task(void) {
    Dataset d;
    load_task_text(TASK_ALPACA, "alpaca.json",
                   "[{\"instruction\": \"Name a color.\", \"input\": \"\", \"output\": \"Blue.\"},"
                   " {\"instruction\": \"Add.\", \"input\": \"2 and 3\", \"output\": \"5\"}]", &d);
    CHECK(d.n == 2 && !strcmp(d.rows[1].input, "2 and 3") && !strcmp(d.rows[1].output, "5"), "alpaca rows");
    Err e = {0};
    char *answers[2] = {"Blue.", "5"};
    TaskSummary ts;
    CHECK(eval_score_task(&d, answers, TASK_ALPACA, NULL, &ts, &e) == -1 && strstr(e.msg, "AlpacaEval"),
          "no FA for alpaca: %s", e.msg);
    dataset_free(&d);
}

// Integers in a config are read exactly; a whole-number real (HF's "num_train_epochs": 3.0) is that integer.
// setting_set_json with a value made for the call (v is consumed).
static int set_json(const Setting *s, void *obj, json_t *v, Err *e) {
    int rc = setting_set_json(s, obj, v, e);
    json_decref(v);
    return rc;
}

static void test_json_integers(void) {
    AlignOpts o;
    align_opts_default(&o, ALIGN_SFT);
    const Setting *ep = settings_find(&ALIGN_SETTINGS, "num_train_epochs");
    Err e;
    CHECK(ep && set_json(ep, &o, json_real(3.0), &e) == 0 && o.train.epochs == 3, "3.0 epochs: %s", e.msg);
    CHECK(set_json(ep, &o, json_real(2.5), &e) == -1 && strstr(e.msg, "whole number, got 2.5"), "%s", e.msg);
    CHECK(set_json(ep, &o, json_integer((json_int_t)1 << 40), &e) == -1 && strstr(e.msg, "in [-2147483648, 2147483647]"),
          "%s", e.msg);
    CHECK(set_json(ep, &o, json_string("3"), &e) == -1 && strstr(e.msg, "expected an integer"), "%s", e.msg);
    FinetuneOpts f;
    finetune_opts_default(&f, TASK_NONE);
    const Setting *ms = settings_find(&FINETUNE_SETTINGS, "mix_seed");
    json_int_t big = ((json_int_t)1 << 60) + 1;  // not a double: exact only without rounding
    CHECK(ms && set_json(ms, &f, json_integer(big), &e) == 0 && f.mix_seed == (uint64_t)big, "seed 2^60+1: %s", e.msg);
}

int main(int argc, char **argv) {
    if (!mkdtemp(tmp_root)) { perror("mkdtemp"); return 2; }
    // the CLI of the same build: <build>/tests/test_settings -> <build>/antibody
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 20);
    char *slash = k > 0 ? strstr(exe, "/tests/test_settings") : NULL;
    if (slash) strcpy(slash, "/antibody");
    else snprintf(exe, sizeof exe, "build/antibody");
    test_json_integers();
    test_flags_equal_config();
    test_refused_alike();
    test_hf_aliases();
    test_did_you_mean();
    test_task_names();
    test_demo_config();
    test_methods_enum();
    test_seeds();
    test_sources();
    test_log_callback();
    test_task_defaults();
    test_presets();
    test_gsm8k_suffix();
    test_alpaca_task();
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    TEST_SUMMARY();
}
