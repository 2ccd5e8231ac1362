// The command line as a user meets it (issue 13): --version; a train into an --out holding
// a run with other settings is refused, naming what differs, and --overwrite replaces it;
// an --out that is a file is refused before any work; eval refuses an adapter given twice;
// SIGINT during training saves a checkpoint, exits 130 and says how to resume, and the
// same command resumes. Runs the binary beside the test (BUILD/antibody).
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/atomic.h"
#include "testing.h"

static char tmp[] = "/tmp/antibody_test_cli_XXXXXX";
static char bin[4096], model[4096];

// Runs "bin ARGS" with output in tmp/out.txt; returns the exit status and the output.
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
    char args[8192], path[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/out.txt", tmp);
    char *cmd = xasprintf("ANTIBODY_PROGRESS=0 '%s' %s > '%s' 2>&1", bin, args, path);
    int st = system(cmd);
    free(cmd);
    Err e;
    *out = read_file(path, NULL, &e);
    if (!*out) *out = strdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0, c;
    while (f && (c = fgetc(f)) != EOF) n += c == '\n';
    if (f) fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 2; }
    snprintf(bin, sizeof bin, "%s", argv[0]);
    char *slash = strrchr(bin, '/');
    snprintf(slash ? slash + 1 : bin, sizeof bin - (size_t)(slash ? slash + 1 - bin : 0), "../antibody");
    snprintf(model, sizeof model, "%s/models/stories260k-hf", shared_dir());
    char data[4200], text[4096] = "";
    snprintf(data, sizeof data, "%s/data.jsonl", tmp);
    for (int i = 0; i < 8; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "{\"instruction\": \"Say hi %d.\", \"output\": \"hi there, friend number %d\"}\n", i, i);
    Err e;
    CHECK(write_file_atomic(data, text, strlen(text), &e) == 0, "%s", e.msg);
    char *o;

    CHECK(run(&o, "--version") == 0 && strstr(o, "antibody ") && strstr(o, "commit "), "--version: %s", o);
    free(o);

    // item 1: a single command refuses an --out holding a run with other settings
    const char *common = "--data %s --max-steps 2 --batch-size 4 --out %s/run --checkpoint-minutes 0";
    char base[8192];
    snprintf(base, sizeof base, common, data, tmp);
    CHECK(run(&o, "train %s %s", model, base) == 0, "first run: %s", o);
    free(o);
    int rc = run(&o, "train %s %s --lr 0.01", model, base);
    CHECK(rc != 0 && strstr(o, "settings.lr: 0.001 -> 0.01") && strstr(o, "--overwrite"), "other lr refused: %s", o);
    free(o);
    char data2[4200];
    snprintf(data2, sizeof data2, "%s/data2.jsonl", tmp);
    char *num = strstr(text, "number 7");
    if (num) num[7] = '9';  // one answer changed
    CHECK(num && write_file_atomic(data2, text, strlen(text), &e) == 0, "%s", e.msg);
    char base2[8192];
    snprintf(base2, sizeof base2, common, data2, tmp);
    rc = run(&o, "train %s %s", model, base2);
    CHECK(rc != 0 && strstr(o, "inputs.data"), "other data refused: %s", o);
    free(o);
    CHECK(run(&o, "train %s %s --lr 0.01 --overwrite", model, base) == 0 && strstr(o, "discarded"), "--overwrite: %s", o);
    free(o);
    CHECK(run(&o, "train %s %s --lr 0.01", model, base) == 0, "same settings again: %s", o);
    free(o);

    // item 4: an --out that is a file, before any work (the model folder is not even read)
    CHECK(run(&o, "train /nonexistent --data %s --out %s", data, data) != 0 && strstr(o, "not a folder"), "%s", o);
    free(o);

    // item 3: the same adapter twice
    rc = run(&o, "eval %s --adapter %s/run --adapter %s/run/ --harmful %s --judge keyword --out %s/ev", model, tmp, tmp,
             data, tmp);
    CHECK(rc != 0 && strstr(o, "twice"), "adapter twice: %s", o);
    free(o);

    // every file given to eval is evaluated: --harmful, --task-data and --align-data are
    // single-file flags, and each of them once read no rows at all (HS 0/0, exit 0)
    char sst[4200], ev[4200];
    snprintf(sst, sizeof sst, "%s/sst2.tsv", tmp);
    CHECK(write_file_atomic(sst, "sentence\tlabel\nthe cat is happy\t1\nthe dog is sad\t0\n", 50, &e) == 0, "%s", e.msg);
    rc = run(&o, "eval %s --harmful %s --judge keyword --task sst2 --task-data %s --align-data %s --hs-max-new 2 "
             "--fa-max-new 2 --out %s/ev_rows", model, data, sst, data, tmp);
    CHECK(rc == 0 && strstr(o, "(0/8 flagged") == NULL, "eval: %s", o);
    free(o);
    snprintf(ev, sizeof ev, "%s/ev_rows/summary.json", tmp);
    char *sum = read_file(ev, NULL, &e);
    CHECK(sum && strstr(sum, "\"harmful_total\": 8") && strstr(sum, "\"task_total\": 2") &&
              strstr(sum, "\"alignment_loss\""),
          "summary counts every row: %s", sum ? sum : e.msg);
    free(sum);
    // a repeated flag past its capacity is refused, never dropped
    char many[17 * 4300] = "";
    for (int i = 0; i < 17; i++) snprintf(many + strlen(many), sizeof many - strlen(many), " --data %s", data);
    CHECK(run(&o, "train %s%s --out %s/many", model, many, tmp) != 0 && strstr(o, "more than 16"), "17 x --data: %s", o);
    free(o);

    // item 9: the usual mistakes get a way out
    char tsv[4200], yaml[4200], spm[4200];
    snprintf(tsv, sizeof tsv, "%s/rows.tsv", tmp);
    CHECK(write_file_atomic(tsv, "sentence\tlabel\nfine\t1\n", 20, &e) == 0, "%s", e.msg);
    CHECK(run(&o, "train %s --data %s --out %s/t1", model, tsv, tmp) != 0 && strstr(o, "--task"), "TSV: %s", o);
    free(o);
    snprintf(yaml, sizeof yaml, "%s/cfg.yaml", tmp);
    CHECK(write_file_atomic(yaml, "base_model: m\n", 14, &e) == 0, "%s", e.msg);
    CHECK(run(&o, "pipeline %s", yaml) != 0 && strstr(o, "configs are JSON"), "YAML: %s", o);
    free(o);
    snprintf(spm, sizeof spm, "%s/spm_model", tmp);
    char *cmd0 = xasprintf("mkdir -p '%s' && cp '%s'/config.json '%s'/model.safetensors '%s'/tokenizer.model '%s'/",
                           spm, model, model, model, spm);
    CHECK(system(cmd0) == 0, "copy");
    free(cmd0);
    CHECK(run(&o, "train %s --data %s --out %s/t2", spm, data, tmp) != 0 && strstr(o, "save_pretrained"),
          "tokenizer.model only: %s", o);
    free(o);

    // item 5: SIGINT checkpoints, exits 130 and says how to resume; the same command resumes
    char out5[4200], logp[4300], ck[4300];
    snprintf(out5, sizeof out5, "%s/long", tmp);
    snprintf(logp, sizeof logp, "%s/train_log.jsonl", out5);
    snprintf(ck, sizeof ck, "%s.checkpoint/trainer_state.json", out5);  // train = align sft: OUT.checkpoint
    char errp[4300];
    snprintf(errp, sizeof errp, "%s/long.txt", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(errp, "w", stderr);
        (void)f;
        setenv("ANTIBODY_PROGRESS", "0", 1);
        execl(bin, bin, "train", model, "--data", data, "--max-steps", "200", "--epochs", "100", "--batch-size", "2",
              "--out", out5,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 6000 && count_lines(logp) < 1; i++) usleep(10000);  // a step done (60 s at most)
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    char *err = read_file(errp, NULL, &e);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(err && strstr(err, "interrupted after step") && strstr(err, "run the same command again"), "%s", err);
    CHECK(access(ck, F_OK) == 0, "checkpoint saved on SIGINT");
    free(err);
    int steps = count_lines(logp);
    CHECK(steps >= 1 && steps < 200, "stopped after step %d", steps);
    rc = run(&o, "train %s --data %s --max-steps 200 --epochs 100 --batch-size 2 --out %s", model, data, out5);
    CHECK(rc == 0 && strstr(o, "resuming"), "the same command resumes: %s", o);
    free(o);
    CHECK(count_lines(logp) == 200, "the log holds each step once: %d", count_lines(logp));

    // Issue 13 item 8: the shipped example configs fail on their placeholder model path before
    // creating any folder (run from an empty folder, where their relative outputs would go), with
    // and without --dry-run.
    char repo[4096], exdir[4200], absbin[PATH_MAX];
    CHECK(getcwd(repo, sizeof repo) != NULL && realpath(bin, absbin) != NULL, "cwd, binary");
    snprintf(exdir, sizeof exdir, "%s/examples_run", tmp);
    CHECK(mkdir(exdir, 0755) == 0, "mkdir %s", exdir);
    const char *examples[][2] = {{"real_sst2.json", "/path/to/Llama-2-7b-hf"},
                                 {"demo/tvaccine_all.json", "antibody-demo-base"},
                                 {"demo/vaccine_rho3.json", "antibody-demo-base"}};
    for (int i = 0; i < 3; i++)
        for (int dry = 0; dry < 2; dry++) {
            char outp[4300];
            snprintf(outp, sizeof outp, "%s/out.txt", tmp);
            char *cmdx = xasprintf("cd '%s' && ANTIBODY_PROGRESS=0 '%s' pipeline '%s/examples/%s'%s > '%s' 2>&1", exdir,
                                   absbin, repo, examples[i][0], dry ? " --dry-run" : "", outp);
            int st = system(cmdx);
            free(cmdx);
            char *msg = read_file(outp, NULL, &e);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0 && msg && strstr(msg, examples[i][1]) && strstr(msg, "config.json"),
                  "%s%s: %s", examples[i][0], dry ? " --dry-run" : "", msg);
            free(msg);
            cmdx = xasprintf("test -z \"$(ls -A '%s')\"", exdir);
            CHECK(system(cmdx) == 0, "%s%s created a folder", examples[i][0], dry ? " --dry-run" : "");
            free(cmdx);
        }
    // The dry run on the real tiny model: the plan is printed, with Hugging Face names in the
    // config, and nothing is created.
    char cfg[4200], dry_out[4200];
    snprintf(cfg, sizeof cfg, "%s/dry.json", tmp);
    snprintf(dry_out, sizeof dry_out, "%s/dry", tmp);
    char *text2 = xasprintf(
             "{\"base_model\": \"%s\", \"output\": \"%s\", \"judge\": \"world\", \"methods\": [\"sft\"],"
             " \"world\": {\"seed\": 7, \"n_base\": 4, \"n_align\": 6, \"n_harmful\": 6, \"n_realign\": 4,"
             " \"n_test_harmful\": 5, \"n_task_train\": 8, \"n_task_test\": 4},"
             " \"sweep\": {\"name\": \"p\", \"values\": [0]},"
             " \"align\": {\"max_steps\": 2, \"per_device_train_batch_size\": 2, \"max_seq_length\": 512},"
             " \"finetune\": {\"n\": 6, \"learning_rate\": 1e-4, \"num_train_epochs\": 2, \"batch_size\": 2,"
             " \"max_len\": 512}, \"eval\": {\"n_harmful\": 3, \"n_task\": 3}}",
             model, dry_out);
    CHECK(write_file_atomic(cfg, text2, strlen(text2), &e) == 0, "%s", e.msg);
    free(text2);
    rc = run(&o, "pipeline %s --dry-run", cfg);
    CHECK(rc == 0 && strstr(o, "nothing was created") && strstr(o, "align sft seed=42") &&
              strstr(o, "finetune sft p=0 seed=42") && strstr(o, "eval sft p=0 seed=42") &&
              strstr(o, "3 of 3 stages would run") && strstr(o, "estimated time of the training stages that run"),
          "dry run: %s", o);
    CHECK(strstr(o, "not run yet") && access(dry_out, F_OK) != 0, "the dry run created %s: %s", dry_out, o);
    free(o);

    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    TEST_SUMMARY();
}
