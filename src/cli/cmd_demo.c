// antibody demo: the papers' main experiment on the generated world, with the real
// stages underneath: the demo's recipe (pipeline/demo.c) is a pipeline config, run by the
// pipeline. The flags below scale the recipe; --print-config prints it for
// `antibody pipeline`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "kernels/kernels.h"
#include "pipeline/demo.h"
#include "pipeline/pipeline.h"
#include "util/progress.h"

static const char USAGE[] =
    "usage: antibody demo [--out DIR] [options]\n"
    "\n"
    "Runs the whole pipeline on a generated safety world with no model, data or network:\n"
    "builds the world, trains (or reuses) a tiny base model, then aligns, fine-tunes with\n"
    "harmful ratios p = 0, 0.05, 0.1, 0.2, applies Antidote and evaluates. Prints the table\n"
    "and writes DIR/results.md, results.json, hs.svg, fa.svg. Re-running resumes.\n"
    "  --out DIR        results folder (default antibody-demo)\n"
    "  --cache DIR      where base models are kept (default ~/.cache/antibody/demo)\n"
    "  --seed N         the world's and the base model's seed (default 1234)\n"
    "  --seeds LIST     the runs' seeds, comma-separated (default 1,2,3; --quick 1,2): the\n"
    "                   experiment runs once per seed and the table shows mean ± sd over them\n"
    "                   and each defense's difference to SFT with a 95% t interval\n"
    "                   (docs/statistics.md)\n"
    "  --quick          tiny sizes (the CI test): fewer samples, steps and evaluation prompts\n"
    "  --dim N --layers N --heads N --base-epochs N   scale the base model\n"
    "  --n N            fine-tuning samples (default 200)\n"
    "  --align-epochs N --ft-epochs N --ft-lr X     stage lengths and attack strength\n"
    "  --rho X          Vaccine's perturbation norm (T-Vaccine uses --tv-rho)\n"
    "  --tv-rho X --tv-s N\n"
    "  --eval-n N       harmful prompts evaluated (default 140)\n"
    "  --base-only      build (or find) the base model, print its folder and stop\n"
    "  --print-config   print the experiment as a pipeline config (JSON) and stop: save it,\n"
    "                   edit it and run it with `antibody pipeline FILE`\n";

// The demo's recipe (pipeline/demo.c) with the recipe flags over it.
static void demo_config_from_flags(const Args *a, uint64_t seed, int quick, const char *out, PipelineConfig *c) {
    const char *home = getenv("HOME");
    char *cache = arg_str(a, "cache", NULL) ? xstrdup(arg_str(a, "cache", NULL))
                                            : xasprintf("%s/.cache/antibody/demo", home ? home : ".");
    BaseModelOptions bo;
    demo_base_options(&bo, seed, quick);
    bo.dim = arg_int(a, "dim", bo.dim);
    bo.n_layers = arg_int(a, "layers", bo.n_layers);
    bo.n_heads = arg_int(a, "heads", bo.n_heads);
    bo.epochs = arg_int(a, "base-epochs", bo.epochs);
    pipeline_demo_config(c, seed, quick, &bo, cache, out);
    free(cache);
    c->finetune.n = arg_int(a, "n", c->finetune.n);
    for (int m = ALIGN_NONE + 1; m < ALIGN_COUNT; m++) {
        c->align[m].train.epochs = arg_int(a, "align-epochs", c->align[m].train.epochs);
        c->align[m].tv_S = arg_int(a, "tv-s", c->align[m].tv_S);
    }
    c->align[ALIGN_VACCINE].rho = (float)arg_double(a, "rho", c->align[ALIGN_VACCINE].rho);
    c->align[ALIGN_TVACCINE].rho = (float)arg_double(a, "tv-rho", c->align[ALIGN_TVACCINE].rho);
    c->finetune.train.lr = (float)arg_double(a, "ft-lr", c->finetune.train.lr);
    c->finetune.train.epochs = arg_int(a, "ft-epochs", c->finetune.train.epochs);
    c->eval.n_harmful = arg_int(a, "eval-n", c->eval.n_harmful);
}

// --seeds "1,2,3": 1 to 16 integers >= 0.
static int parse_seed_list(const char *list, PipelineConfig *c, Err *e) {
    const char *s = list;
    c->n_seeds = 0;
    for (;;) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || *s == '-' || (*end && *end != ',') || c->n_seeds == PIPE_MAX_SEEDS)
            return err_set(e, "--seeds: expected 1 to 16 integers >= 0, comma-separated (got \"%.200s\")", list);
        c->seeds[c->n_seeds++] = (uint64_t)v;
        if (!*end) return 0;
        s = end + 1;
    }
}

int cmd_demo(int argc, char **argv) {
    Args a = {"demo"};
    const Flag own[] = {{"out", 1}, {"cache", 1}, {"seed", 1}, {"seeds", 1}, {"quick", 0}, {"dim", 1}, {"layers", 1}, {"heads", 1},
                        {"base-epochs", 1}, {"n", 1}, {"align-epochs", 1}, {"ft-epochs", 1}, {"ft-lr", 1}, {"rho", 1},
                        {"tv-rho", 1}, {"tv-s", 1}, {"eval-n", 1}, {"base-only", 0}, {"print-config", 0}, {NULL}};
    args_add(&a, own);
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    int quick = arg_flag(&a, "quick");
    uint64_t seed = (uint64_t)arg_int(&a, "seed", 1234);
    const char *out = arg_str(&a, "out", "antibody-demo");
    PipelineConfig c;
    demo_config_from_flags(&a, seed, quick, out, &c);
    Err e = {0};
    rc = arg_str(&a, "seeds", NULL) ? parse_seed_list(arg_str(&a, "seeds", NULL), &c, &e) : 0;
    if (!rc) rc = pipeline_config_check(&c, "antibody demo", &e);
    if (!rc && arg_flag(&a, "print-config")) {
        char *text = pipeline_config_to_json(&c);
        fputs(text, stdout);
        free(text);
        pipeline_config_free(&c);
        return 0;
    }
    if (!rc)
        fprintf(stderr, "antibody demo: world v%s seed %llu, base model %s, %s, %d threads\n", WORLD_VERSION,
                (unsigned long long)seed, c.base_model, blas_name(), omp_threads());
    if (!rc && arg_flag(&a, "base-only")) {  // the pipeline builds it otherwise
        rc = pipeline_build_base(&c, &e);
        if (!rc) printf("%s\n", c.base_model);
        pipeline_config_free(&c);
        return rc ? cli_fail("demo", e.msg) : 0;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!rc) rc = cmd_pipeline_run(&c, "demo");
    else rc = cli_fail("demo", e.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pipeline_config_free(&c);
    if (rc) return rc;
    char buf[64];
    progress_format_duration((t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec), buf, sizeof buf);
    fprintf(stderr, "antibody demo: pipeline took %s; seed %llu, world v%s; table in %s/results.md, plots %s/hs.svg "
            "and %s/fa.svg, every answer under %s/seed=*/eval\n", buf, (unsigned long long)seed, WORLD_VERSION, out, out, out, out);
    return 0;
}
