// libFuzzer harness: safetensors files and sharded indexes (io/safetensors.c).
// Input: a single .safetensors file, or (when it holds PART_SEP) an index JSON followed by
// up to three shards named model-0000i-of-00003.safetensors.
#include "fuzz.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[4];
    size_t len[4];
    int k = fuzz_split(data, n, part, len, 4);
    const char *path;
    if (k == 1) {
        path = fuzz_file("one.safetensors", data, n);
    } else {
        path = fuzz_file("model.safetensors.index.json", part[0], len[0]);
        for (int i = 1; i < 4; i++) {
            char name[64];
            snprintf(name, sizeof name, "model-%05d-of-00003.safetensors", i);
            if (i < k) fuzz_file(name, part[i], len[i]);
            else fuzz_remove(name);
        }
    }
    Err e = {0};
    StSet *s = st_open(path, &e);
    fuzz_check_err(!s, &e);
    for (int i = 0; i < st_count(s); i++) {
        const StTensor *t = st_get(s, i);
        if (st_find(s, t->name) != t) abort();
        float *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        st_read_f32(t, buf, t->ndim, shape, &e);
        shape[0] = t->ndim ? shape[0] + 1 : 1;  // a wrong expected shape must be refused
        if (st_read_f32(t, buf, t->ndim ? t->ndim : 1, shape, &e) == 0) abort();
        st_f32_view(t, t->ndim, t->shape, &e);
        free(buf);
    }
    st_metadata(s, "format");
    st_close(s);
    return 0;
}
