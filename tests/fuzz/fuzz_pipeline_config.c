// libFuzzer harness: pipeline configs (pipeline/config.c), parsed from text as
// `antibody pipeline CONFIG.json` reads them.
#include "fuzz.h"
#include "pipeline/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *text = malloc(n + 1);
    memcpy(text, data, n);
    text[n] = '\0';
    PipelineConfig c;
    pipeline_config_default(&c);
    Err e = {0};
    int rc = pipeline_config_parse(text, "fuzz.json", &c, &e);
    fuzz_check_err(rc != 0, &e);
    pipeline_config_free(&c);
    free(text);
    return 0;
}
