// libFuzzer harness: the dataset loaders (data/load.c, data/tasks.c). The first byte picks
// the loader and the file name (which decides JSON, JSONL, TSV or CSV); the rest is the file.
#include "data/load.h"
#include "data/tasks.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    int which = data[0] % 7;
    static const char *const names[7] = {"rows.json", "rows.jsonl", "rows.jsonl", "sst2.tsv",
                                         "agnews.csv", "gsm8k.jsonl", "sst2.jsonl"};
    const char *path = fuzz_file(names[which], data + 1, n - 1);
    Dataset d;
    dataset_init(&d);
    Err e = {0};
    int rc;
    if (which <= 2) {
        FieldMap fm;
        if (fieldmap_parse(which == 2 ? "instruction=question,output=answer,input=context" : NULL, &fm, &e)) abort();
        rc = data_load(path, &fm, which == 1 ? DATA_NEED_OUTPUT : 0, &d, &e);
        fieldmap_free(&fm);
    } else if (which == 3 || which == 6) {
        rc = data_load_sst2(path, &d, &e);
    } else if (which == 4) {
        rc = data_load_agnews(path, &d, &e);
    } else {
        rc = data_load_gsm8k(path, &d, &e);
    }
    fuzz_check_err(rc != 0, &e);
    dataset_free(&d);
    return 0;
}
