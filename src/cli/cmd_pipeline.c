// antibody pipeline CONFIG.json: a whole experiment (docs/pipeline.md).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/settings_flags.h"
#include "pipeline/pipeline.h"

static const char USAGE[] =
    "usage: antibody pipeline CONFIG.json [--output DIR] [--base-model DIR] [--preset NAME] [--print-config]\n"
    "\n"
    "Runs alignment, harmful fine-tuning, Antidote and evaluation for every method and swept\n"
    "value of the config; writes results.md/.csv/.json, hs.svg, fa.svg under the output folder.\n"
    "Finished stages (done.json) are skipped when the same command runs again; an interrupted\n"
    "training stage resumes from its checkpoint. See docs/pipeline.md for the config keys.\n"
    "  --output DIR       override the config's output folder\n"
    "  --base-model DIR   override the config's model folder (e.g. the path `antibody demo --base-only` prints)\n"
    "  --preset NAME      vaccine, tvaccine or antidote: that paper's settings under the config's\n"
    "                     own (= \"preset\" in the config; docs/methods.md, Presets)\n"
    "  --print-config     print the config with every setting resolved (JSON) and stop\n";

int cmd_pipeline_run(PipelineConfig *c, const char *cmd) {
    if (c->eval.threads > 0) omp_set_num_threads(c->eval.threads);
    c->interrupt = &cli_interrupted;
    cli_catch_interrupts();
    Err e = {0};
    return pipeline_run(c, &e) ? cli_interrupt_exit(cmd, cli_fail(cmd, e.msg)) : 0;
}

int cmd_pipeline(int argc, char **argv) {
    Args a = {"pipeline"};
    const Flag own[] = {{"output", 1}, {"base-model", 1}, {"preset", 1}, {"print-config", 0}, {NULL}};
    args_add(&a, own);
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    if (a.n_pos != 1) return cli_fail("pipeline", "need CONFIG.json (see --help)");
    PipelineConfig c;
    pipeline_config_default(&c);
    Err e = {0};
    int preset = preset_flag(&a, &e);
    if (preset < 0) {
        pipeline_config_free(&c);
        return cli_fail("pipeline", e.msg);
    }
    c.preset = (Preset)preset;  // applied by the loader after the task, before the config's keys
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
    } else {
        rc = cmd_pipeline_run(&c, "pipeline");
    }
    pipeline_config_free(&c);
    return rc;
}
