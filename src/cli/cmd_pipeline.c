// antibody pipeline CONFIG.json: a whole experiment (docs/pipeline.md).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/settings_flags.h"
#include "pipeline/pipeline.h"
#include "util/progress.h"

static const char USAGE[] =
    "usage: antibody pipeline CONFIG.json [--output DIR] [--base-model DIR] [--preset NAME] [--print-config]\n"
    "                                      [--dry-run]\n"
    "\n"
    "Runs alignment, harmful fine-tuning, Antidote and evaluation for every method and swept\n"
    "value of the config; writes results.md/.csv/.json, hs.svg, fa.svg under the output folder.\n"
    "Finished stages (done.json) are skipped when the same command runs again; an interrupted\n"
    "training stage resumes from its checkpoint. See docs/pipeline.md for the config keys.\n"
    "  --output DIR       override the config's output folder\n"
    "  --base-model DIR   override the config's model folder (e.g. the path `antibody demo --base-only` prints)\n"
    "  --preset NAME      vaccine, tvaccine or antidote: that paper's settings under the config's\n"
    "                     own (= \"preset\" in the config; docs/methods.md, Presets)\n"
    "  --print-config     print the config with every setting resolved (JSON) and stop\n"
    "  --dry-run          check the model, tokenizer and every data file, print the stages with their rows,\n"
    "                     steps, which would run or be kept (fingerprints) and an estimated time; creates\n"
    "                     nothing (docs/pipeline.md, \"Dry run\")\n"
    "Settings accept Hugging Face's names too (learning_rate, num_train_epochs, per_device_train_batch_size,\n"
    "gradient_accumulation_steps, max_seq_length, lora_r, lora_alpha, lora_dropout, lora_target_modules).\n";

int cmd_pipeline_run(PipelineConfig *c, const char *cmd) {
    if (c->eval.threads > 0) omp_set_num_threads(c->eval.threads);
    c->interrupt = &cli_interrupted;
    cli_catch_interrupts();
    Err e = {0};
    return pipeline_run(c, &e) ? cli_interrupt_exit(cmd, cli_fail(cmd, e.msg)) : 0;
}

// Prints the plan of a dry run; returns the exit code (1 when the run would stop).
static int print_plan(const PipelineConfig *c, const PipelinePlan *p, const char *config) {
    printf("antibody pipeline %s --dry-run: nothing was created or changed\n", config);
    if (p->model) printf("model:  %s\n", p->model);
    if (p->base_to_build)
        printf("model:  %s does not exist yet: the run trains it on the world first (base_training); rows are "
               "not tokenised and no time is estimated before it exists\n", c->base_model);
    printf("data:   %s\n", p->data);
    printf("stages (output %s):\n", c->output);
    printf("  %3s  %-40s %6s %7s %6s %6s %8s %9s  %s\n", "#", "stage", "rows", "epochs", "batch", "accum", "steps",
           "estimate", "status");
    int runs = 0;
    for (int i = 0; i < p->n; i++) {
        const PlanStage *s = &p->stages[i];
        char est[32] = "-", ep[16] = "-", bs[16] = "-", ga[16] = "-", st[32] = "-";
        if (s->seconds >= 0) progress_format_duration(s->seconds, est, sizeof est);
        if (s->kind == PLAN_ALIGN || s->kind == PLAN_FINETUNE) {
            snprintf(ep, sizeof ep, "%d", s->epochs);
            snprintf(bs, sizeof bs, "%d", s->batch_size);
            snprintf(ga, sizeof ga, "%d", s->grad_accum);
            snprintf(st, sizeof st, "%lld", (long long)s->steps);
        }
        printf("  %3d  %-40s %6d %7s %6s %6s %8s %9s  %s\n", i + 1, s->what, s->rows, ep, bs, ga, st,
               s->runs ? est : "-", s->why);
        if (*s->answers) printf("         %s\n", s->answers);
        runs += s->runs;
    }
    printf("%d of %d stages would run, %d kept (done already with the same settings and inputs).\n", runs, p->n,
           p->n - runs);
    if (p->timed_rows) {
        char total[32];
        progress_format_duration(plan_total_seconds(p), total, sizeof total);
        printf("estimated time of the training stages that run: %s. From one timed SFT forward + backward on this "
               "machine (%d rows, %d tokens of the first training stage: %.3g s, %.3g ms per token) x each stage's "
               "tokens over its steps x its passes (Vaccine, random Vaccine, T-Vaccine, RepNoise: 2; Booster: 3; TAR: 2 + its attack steps); Antidote and evaluation "
               "are not estimated.\n", total, p->timed_rows, p->timed_tokens, p->timed_seconds,
               1e3 * p->timed_seconds / (p->timed_tokens ? p->timed_tokens : 1));
    } else if (!runs) {
        printf("nothing would run: every stage is done with these settings and inputs.\n");
    } else {
        printf("no time estimated: no training stage would run, or the base model does not exist yet.\n");
    }
    if (p->problem) {
        fprintf(stderr, "antibody pipeline: the run would stop: %s\n", p->problem);
        return 1;
    }
    return 0;
}

int cmd_pipeline(int argc, char **argv) {
    Args a = {"pipeline"};
    const Flag own[] = {{"output", 1}, {"base-model", 1}, {"preset", 1}, {"print-config", 0}, {"dry-run", 0}, {NULL}};
    args_add(&a, own);
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    if (a.n_pos != 1) return cli_fail("pipeline", "need CONFIG.json (see --help)");
    PipelineConfig c;
    pipeline_config_default(&c);
    Err e = {0};
    TaskKind task;  // pipeline has no --task: the config names it
    if (stage_flags(&a, &task, &c.preset, &e)) {  // the preset applies in the loader, after the task
        pipeline_config_free(&c);
        return cli_fail("pipeline", e.msg);
    }
    const char *out = arg_str(&a, "output", NULL), *base = arg_str(&a, "base-model", NULL);
    if (out) pipeline_config_set(&c.output, out);
    if (base) pipeline_config_set(&c.base_model, base);
    rc = pipeline_config_load(a.pos[0], &c, &e);
    if (rc) {
        pipeline_config_free(&c);
        return cli_fail("pipeline", e.msg);
    }
    if (out) pipeline_config_set(&c.output, out);
    if (base) pipeline_config_set(&c.base_model, base);
    if (arg_flag(&a, "print-config")) {
        char *text = pipeline_config_to_json(&c);
        fputs(text, stdout);
        free(text);
    } else if (arg_flag(&a, "dry-run")) {
        PipelinePlan p;
        rc = pipeline_plan(&c, &p, &e) ? cli_fail("pipeline", e.msg) : print_plan(&c, &p, a.pos[0]);
        plan_free(&p);
    } else {
        rc = cmd_pipeline_run(&c, "pipeline");
    }
    pipeline_config_free(&c);
    return rc;
}
