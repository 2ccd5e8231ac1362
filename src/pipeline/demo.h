// The demo's recipe (docs/demo.md) as a pipeline config: the generated world, a tiny base
// model trained on it, methods none / sft / vaccine / tvaccine / sft+antidote over the
// harmful ratios p = 0, 0.05, 0.1, 0.2, judged by the world's exact judge. `antibody demo`
// runs this config through the pipeline; `antibody demo --print-config` prints it for
// `antibody pipeline` (edit and run it there).
#pragma once
#include "pipeline/config.h"

// The recipe's base model for a seed (quick: the CI's reduced sizes).
void demo_base_options(BaseModelOptions *b, uint64_t seed, int quick);
// The whole experiment over c (defaults first): world and stage settings for seed and
// quick, the base model b (its key/value heads and MLP width follow its heads and width),
// cached in cache_dir under a name that identifies world version, seed, shape, thread
// count, kernel ISA and a hash of the world and base-training settings, results
// in out. T-Vaccine samples half the base model's layers.
void pipeline_demo_config(PipelineConfig *c, uint64_t seed, int quick, const BaseModelOptions *b,
                          const char *cache_dir, const char *out);
