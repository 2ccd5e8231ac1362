// antibody demo: the papers' main experiment on the generated world, with the real
// stages underneath. A tiny Llama is trained from scratch on the world (cached), then
// aligned (none, SFT, Vaccine, T-Vaccine), fine-tuned on the sentiment task mixed with
// harmful rows at p = 0, 0.05, 0.1, 0.2, repaired with Antidote (after SFT), and
// evaluated: harmful score by the world's exact judge, fine-tune accuracy on sentiment.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "kernels/kernels.h"
#include "pipeline/pipeline.h"
#include "util/progress.h"
#include "world/base_model.h"

static const char USAGE[] =
    "usage: antibody demo [--out DIR] [options]\n"
    "\n"
    "Runs the whole pipeline on a generated safety world with no model, data or network:\n"
    "builds the world, trains (or reuses) a tiny base model, then aligns, fine-tunes with\n"
    "harmful ratios p = 0, 0.05, 0.1, 0.2, applies Antidote and evaluates. Prints the table\n"
    "and writes DIR/results.md, results.json, hs.svg, fa.svg. Re-running resumes.\n"
    "  --out DIR        results folder (default antibody-demo)\n"
    "  --cache DIR      where base models are kept (default ~/.cache/antibody/demo)\n"
    "  --seed N         world and training seed (default 1234)\n"
    "  --quick          tiny sizes (the CI test): fewer samples, steps and evaluation prompts\n"
    "  --dim N --layers N --heads N --base-epochs N   scale the base model\n"
    "  --n N            fine-tuning samples (default 200)\n"
    "  --align-epochs N --ft-epochs N --ft-lr X     stage lengths and attack strength\n"
    "  --rho X          Vaccine's perturbation norm (T-Vaccine uses --tv-rho)\n"
    "  --tv-rho X --tv-s N\n"
    "  --eval-n N       harmful and task prompts evaluated (default 140 and 100)\n"
    "  --base-only      build (or find) the base model, print its folder and stop\n";

int cmd_demo(int argc, char **argv) {
    Flag flags[] = {{"out", 1}, {"cache", 1}, {"seed", 1}, {"quick", 0}, {"dim", 1}, {"layers", 1}, {"heads", 1},
                    {"base-epochs", 1}, {"n", 1}, {"align-epochs", 1}, {"ft-epochs", 1}, {"ft-lr", 1}, {"rho", 1},
                    {"tv-rho", 1}, {"tv-s", 1}, {"eval-n", 1}, {"base-only", 0}};
    Args a = {"demo", flags, sizeof flags / sizeof *flags};
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    int quick = arg_flag(&a, "quick");
    uint64_t seed = (uint64_t)arg_int(&a, "seed", 1234);
    const char *out = arg_str(&a, "out", "antibody-demo");
    Err e;

    // 1. the world
    WorldOptions wo;
    world_default_options(&wo);
    wo.seed = seed;
    if (quick) { wo.n_align = 100; wo.n_harmful = 60; wo.n_realign = 40; wo.n_test_harmful = 60; wo.n_task_train = 100; wo.n_task_test = 40; }

    // 2. the base model, cached by world version, seed and shape
    BaseModelOptions bo;
    base_model_default_options(&bo);
    bo.seed = seed;
    bo.dim = arg_int(&a, "dim", bo.dim);
    bo.n_layers = arg_int(&a, "layers", quick ? 2 : bo.n_layers);
    bo.n_heads = arg_int(&a, "heads", bo.n_heads);
    bo.n_kv_heads = bo.n_heads > 1 ? bo.n_heads / 2 : 1;
    bo.hidden_dim = bo.dim * 11 / 4;
    bo.epochs = arg_int(&a, "base-epochs", quick ? 3 : bo.epochs);
    char cache[4096], base[4096], name[256];
    const char *home = getenv("HOME");
    snprintf(cache, sizeof cache, "%s", arg_str(&a, "cache", NULL) ? arg_str(&a, "cache", NULL) : "");
    if (!cache[0]) snprintf(cache, sizeof cache, "%s/.cache/antibody/demo", home ? home : ".");
    base_model_cache_name(&wo, &bo, name, sizeof name);
    snprintf(base, sizeof base, "%s/%s", cache, name);
    fprintf(stderr, "antibody demo: world v%s seed %llu, base model %s, %s, %d threads\n", WORLD_VERSION,
            (unsigned long long)seed, name, blas_name(), omp_threads());
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/base_model.json", base);
    struct stat sb;
    if (stat(marker, &sb)) {
        World w;
        if (world_generate(&wo, &w, &e)) return cli_fail("demo", e.msg);
        fprintf(stderr, "antibody demo: training the base model (cached in %s)\n", base);
        rc = world_build_base_model(&w, &bo, base, &e);
        world_free(&w);
        if (rc) return cli_fail("demo", e.msg);
    } else {
        fprintf(stderr, "antibody demo: reusing the base model in %s\n", base);
    }
    if (arg_flag(&a, "base-only")) {
        printf("%s\n", base);
        return 0;
    }

    // 3. the experiment: rows = methods, columns = harmful ratio p
    PipelineConfig c;
    pipeline_config_default(&c);
    pipeline_config_set(&c.base_model, base);
    pipeline_config_set(&c.output, out);
    pipeline_config_set(&c.judge, "world");
    pipeline_config_set(&c.world_task, "sst");
    c.use_world = 1;
    c.world = wo;
    c.seed = seed;
    const char *methods[] = {"none", "sft", "vaccine", "tvaccine", "sft+antidote"};
    c.n_methods = 5;
    for (int i = 0; i < c.n_methods; i++)
        if (method_spec_parse(methods[i], &c.methods[i], &e)) return cli_fail("demo", e.msg);
    c.ft_n = arg_int(&a, "n", quick ? 100 : 200);
    int align_epochs = arg_int(&a, "align-epochs", quick ? 12 : 5);
    for (int m = 0; m < 4; m++) {
        AlignOpts *o = &c.align[m];
        o->train.epochs = align_epochs;
        o->train.batch_size = 10;
        o->train.max_len = 128;
        o->train.seed = seed;
        o->tv_K = 50;  // the world's runs are short (~150 steps): refresh and resample more often
        o->tv_J = 10;
        o->tv_S = arg_int(&a, "tv-s", bo.n_layers > 2 ? bo.n_layers / 2 : 1);
        o->tv_pool = 50;
    }
    c.align[ALIGN_VACCINE].rho = (float)arg_double(&a, "rho", 2.0);
    c.align[ALIGN_TVACCINE].rho = (float)arg_double(&a, "tv-rho", 3.0);
    c.finetune.train.lr = (float)arg_double(&a, "ft-lr", 1e-3);
    c.finetune.train.epochs = arg_int(&a, "ft-epochs", quick ? 6 : 4);
    c.finetune.train.max_len = 128;
    c.finetune.train.seed = seed;
    c.antidote.n_samples = quick ? 30 : 200;
    c.antidote.max_len = 128;
    c.eval_n_harmful = arg_int(&a, "eval-n", quick ? 40 : 140);
    c.eval_n_task = quick ? 40 : 100;
    c.eval_n_align = quick ? 20 : 50;
    c.eval.max_new = 48;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c.interrupt = &cli_interrupted;
    cli_catch_interrupts();
    rc = pipeline_run(&c, &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pipeline_config_free(&c);
    if (rc) return cli_interrupt_exit("demo", cli_fail("demo", e.msg));
    char buf[64];
    progress_format_duration((t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec), buf, sizeof buf);
    fprintf(stderr, "antibody demo: pipeline took %s; seed %llu, world v%s; table in %s/results.md, plots %s/hs.svg "
            "and %s/fa.svg, every answer under %s/eval\n", buf, (unsigned long long)seed, WORLD_VERSION, out, out, out, out);
    return 0;
}
