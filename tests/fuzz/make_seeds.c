// Writes the tiny files the fuzz seeds are made of (tests/fuzz/seeds.sh assembles them
// with files from ../shared): a tiny model folder (single file and sharded), a PEFT
// adapter for it, and a training checkpoint of it.
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io/peft.h"
#include "io/hf_checkpoint.h"
#include "train/trainer.h"

Config fuzz_tiny_config(void);
void fuzz_tiny_data(EncodedSet *s);

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: make_seeds OUT_DIR\n"); return 2; }
    setenv("ANTIBODY_PROGRESS", "0", 1);
    char p[4096];
    Err e;
    Config c = fuzz_tiny_config();
    Model m;
    model_init_random(&m, &c, 1);
    snprintf(p, sizeof p, "%s/model", argv[1]);
    if (model_save(&m, p, MAT_F32, (size_t)1 << 30, &e)) goto fail;
    snprintf(p, sizeof p, "%s/sharded", argv[1]);
    if (model_save(&m, p, MAT_BF16, 3000, &e)) goto fail;
    Lora l;
    lora_init(&l, &m, 2, 4.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    for (size_t i = 0; i < l.n_params; i++) l.params[i] = 0.01f * (float)(i % 7);
    snprintf(p, sizeof p, "%s/adapter", argv[1]);
    if (peft_save(&l, &m, p, "tiny", &e)) goto fail;
    EncodedSet d;
    fuzz_tiny_data(&d);
    TrainOpts o;
    train_opts_default(&o);
    o.batch_size = 4;
    o.max_steps = 2;
    o.epochs = 10;
    o.seed = 7;
    o.stop_after = 1;
    snprintf(p, sizeof p, "%s/ck", argv[1]);
    o.checkpoint_dir = p;
    StepMethod *sft = sft_method_new();
    TrainLog log;
    if (train_run(&m, &l, &d, &o, sft, &log, &e) != 1) goto fail;
    train_log_free(&log);
    step_method_free(sft);
    lora_free(&l);
    encoded_free(&d);
    model_free(&m);
    return 0;
fail:
    fprintf(stderr, "make_seeds: %s\n", e.msg);
    return 1;
}
