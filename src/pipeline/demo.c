// The demo's recipe: every setting of `antibody demo` in one place, as a PipelineConfig.
#include "pipeline/demo.h"

#include <stdio.h>
#include <string.h>

void demo_base_options(BaseModelOptions *b, uint64_t seed, int quick) {
    base_model_default_options(b);
    b->seed = seed;
    if (quick) {
        b->n_layers = 2;
        b->epochs = 3;
    }
}

void pipeline_demo_config(PipelineConfig *c, uint64_t seed, int quick, const BaseModelOptions *b,
                          const char *cache_dir, const char *out) {
    pipeline_config_default(c);
    // 1. the world, and the base model trained on it (cached by world version, seed and shape)
    c->use_world = 1;
    world_default_options(&c->world);
    c->world.seed = seed;
    if (quick) {
        c->world.n_align = 100;
        c->world.n_harmful = 60;
        c->world.n_realign = 40;
        c->world.n_test_harmful = 60;
        c->world.n_task_train = 100;
        c->world.n_task_test = 40;
    }
    c->build_base = 1;
    c->base = *b;
    c->base.n_kv_heads = b->n_heads > 1 ? b->n_heads / 2 : 1;
    c->base.hidden_dim = b->dim * 11 / 4;
    char name[256], path[4500];
    base_model_cache_name(&c->world, &c->base, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", cache_dir, name);
    pipeline_config_set(&c->base_model, path);
    pipeline_config_set(&c->output, out);
    pipeline_config_set(&c->judge, "world");
    pipeline_config_set_task(c, TASK_SST2);
    // 2. rows = methods, columns = harmful ratio p (the default sweep; quick: p = 0 and 0.2,
    // the two the CI checks), three seeds (quick: two): each seed is every stage's seed in its
    // runs, on the same world and base model (docs/statistics.md)
    c->n_seeds = quick ? 2 : 3;
    for (int i = 0; i < c->n_seeds; i++) c->seeds[i] = (uint64_t)(i + 1);
    if (quick) {
        c->sweep_values[0] = 0;
        c->sweep_values[1] = 0.2;
        c->n_sweep = 2;
    }
    const char *methods[] = {"none", "sft", "vaccine", "tvaccine", "sft+antidote"};
    c->n_methods = 5;
    Err e;
    for (int i = 0; i < c->n_methods; i++) method_spec_parse(methods[i], &c->methods[i], &e);
    // 3. stage settings for the world's short runs
    c->finetune.n = quick ? 100 : 200;
    for (int m = ALIGN_NONE + 1; m < ALIGN_COUNT; m++) {
        AlignOpts *o = &c->align[m];
        o->train.epochs = quick ? 12 : 5;
        o->train.batch_size = 10;
        o->train.max_len = 128;
        o->tv_K = 50;  // the world's runs are short (~150 steps): refresh and resample more often
        o->tv_J = 10;
        o->tv_S = c->base.n_layers > 2 ? c->base.n_layers / 2 : 1;
        o->tv_pool = 50;
    }
    c->align[ALIGN_VACCINE].rho = 2.0f;
    c->align[ALIGN_TVACCINE].rho = 3.0f;
    c->finetune.train.lr = 1e-3f;
    c->finetune.train.epochs = quick ? 6 : 4;
    c->finetune.train.max_len = 128;
    c->antidote.n_samples = quick ? 30 : 200;
    c->antidote.max_len = 128;
    c->eval.n_harmful = quick ? 40 : 140;
    c->eval.n_task = quick ? 40 : 100;
    c->eval.n_align = quick ? 20 : 50;
    c->eval.opts.hs_max_new = c->eval.opts.fa_max_new = 48;
}
