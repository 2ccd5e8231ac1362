// The demo's recipe: every setting of `antibody demo` in one place, as a PipelineConfig.
#include "pipeline/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "pipeline/pipeline.h"
#include "util/sha256.h"

void demo_base_options(BaseModelOptions *b, uint64_t seed, int quick) {
    base_model_default_options(b);
    b->seed = seed;
    if (quick) {
        b->n_layers = 2;
        b->epochs = 3;
    }
}

// The cache folder: world version, seed and shape to read, then what else decides the
// weights: thread count, kernel ISA and a hash of every world and base-training setting.
static char *base_cache_path(const PipelineConfig *c, const char *cache_dir) {
    json_t *set = pipeline_base_settings(c);
    char *text = settings_json_text(set), hex[65];
    Sha256 h;
    sha256_init(&h);
    sha256_update(&h, text, strlen(text));
    sha256_hex(&h, hex);
    free(text);
    json_decref(set);
    const WorldOptions *w = &c->world;
    const BaseModelOptions *o = &c->base_training;
    return xasprintf("%s/world%s-s%llu-n%d-d%d-l%d-h%d-v%d-e%d-t%d-%s-%.8s", cache_dir, WORLD_VERSION,
                     (unsigned long long)w->seed, w->n_base, o->dim, o->n_layers, o->n_heads, o->vocab_size, o->epochs,
                     omp_threads(), isa_name(isa_active()), hex);
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
    c->has_base_training = 1;
    c->base_training = *b;
    c->base_training.n_kv_heads = b->n_heads > 1 ? b->n_heads / 2 : 1;
    c->base_training.hidden_dim = b->dim * 11 / 4;
    pipeline_config_set(&c->base_model, NULL);
    c->base_model = base_cache_path(c, cache_dir);
    pipeline_config_set(&c->output, out);
    pipeline_config_set(&c->judge_spec, "world");
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
        o->tv_S = c->base_training.n_layers > 2 ? c->base_training.n_layers / 2 : 1;
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
