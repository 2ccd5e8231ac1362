// libFuzzer harness: a model folder, config.json + model.safetensors (io/hf_config.c, io/hf_checkpoint.c,
// model/weights.c). Input: config.json PART_SEP model.safetensors. Loaded in f32 and bf16.
#include "fuzz.h"
#include "io/hf_checkpoint.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[2];
    size_t len[2];
    int k = fuzz_split(data, n, part, len, 2);
    fuzz_file("config.json", part[0], len[0]);
    if (k > 1) fuzz_file("model.safetensors", part[1], len[1]);
    else fuzz_remove("model.safetensors");
    for (int bf16 = 0; bf16 < 2; bf16++) {
        Model m;
        Err e = {0};
        int rc = model_load(&m, fuzz_dir(), bf16 ? MAT_BF16 : MAT_F32, &e);
        fuzz_check_err(rc != 0, &e);
        if (rc == 0) model_free(&m);
    }
    return 0;
}
