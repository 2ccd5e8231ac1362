// libFuzzer harness: PEFT adapters (io/peft.c) for a fixed tiny model.
// Input: adapter_config.json PART_SEP adapter_model.safetensors.
#include "fuzz.h"
#include "io/peft.h"
#include "model/model.h"

// The tiny model the seeds were made for (tests/fuzz/make_seeds.c).
Config fuzz_tiny_config(void);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static Model m;
    static int ready;
    if (!ready) {
        Config c = fuzz_tiny_config();
        model_init_random(&m, &c, 1);
        ready = 1;
    }
    const uint8_t *part[2];
    size_t len[2];
    int k = fuzz_split(data, n, part, len, 2);
    fuzz_file("adapter_config.json", part[0], len[0]);
    if (k > 1) fuzz_file("adapter_model.safetensors", part[1], len[1]);
    else fuzz_remove("adapter_model.safetensors");
    Lora l;
    Err e = {0};
    int rc = peft_load(&l, &m, fuzz_dir(), &e);
    fuzz_check_err(rc != 0, &e);
    if (rc == 0) lora_free(&l);
    return 0;
}
