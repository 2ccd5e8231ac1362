// libFuzzer harness: training checkpoints (train/trainer.c) resumed by train_run on a
// fixed tiny model. Input: trainer_state.json PART_SEP checkpoint.safetensors.
#include "fuzz.h"
#include "io/dir_replace.h"
#include "train/trainer.h"

Config fuzz_tiny_config(void);
void fuzz_tiny_data(EncodedSet *s);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static Model m;
    static EncodedSet d;
    static int ready;
    if (!ready) {
        Config c = fuzz_tiny_config();
        model_init_random(&m, &c, 1);
        fuzz_tiny_data(&d);
        setenv("ANTIBODY_PROGRESS", "0", 1);
        ready = 1;
    }
    const uint8_t *part[2];
    size_t len[2];
    int k = fuzz_split(data, n, part, len, 2);
    char ck[300];
    snprintf(ck, sizeof ck, "%s/ck", fuzz_dir());
    Err e = {0};
    if (dir_remove_flat(ck, &e)) abort();
    mkdir(ck, 0755);
    fuzz_file("ck/trainer_state.json", part[0], len[0]);
    if (k > 1) fuzz_file("ck/checkpoint.safetensors", part[1], len[1]);
    Lora l;
    lora_init(&l, &m, 2, 4.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    TrainOpts o;
    train_opts_default(&o);
    o.batch_size = 4;
    o.max_steps = 2;
    o.epochs = 10;
    o.seed = 7;
    o.checkpoint_dir = ck;
    o.label = "fuzz";
    StepMethod *sft = sft_method_new();
    TrainLog log;
    int rc = train_run(&m, &l, &d, &o, sft, &log, &e);
    fuzz_check_err(rc < 0, &e);
    if (rc >= 0) train_log_free(&log);
    step_method_free(sft);
    lora_free(&l);
    return 0;
}
