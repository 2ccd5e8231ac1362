#include "io/model_dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/atomic.h"
#include "io/outputs.h"
#include "io/peft.h"
#include "io/hf_checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"

// A folder with tokenizer.model but no tokenizer.json gets told how to make one.
// A folder with only the slow tokenizer's files: SentencePiece's tokenizer.model (Llama 2),
// or GPT-2's vocab.json + merges.txt (the released OPTs). Refused with the one-line
// conversion that writes the tokenizer.json antibody reads.
static int slow_tokenizer_only(const char *dir, Err *e) {
    char *path = xasprintf("%s/tokenizer.json", dir), *spm = xasprintf("%s/tokenizer.model", dir);
    char *vocab = xasprintf("%s/vocab.json", dir), *merges = xasprintf("%s/merges.txt", dir);
    const char *has = NULL;
    if (access(path, F_OK)) {
        if (!access(spm, F_OK)) has = "tokenizer.model (SentencePiece)";
        else if (!access(vocab, F_OK) && !access(merges, F_OK)) has = "vocab.json + merges.txt (GPT-2 BPE)";
    }
    int rc = has ? err_set(e, "%s: has %s but no tokenizer.json, which antibody reads; write one with transformers: "
                              "AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)", dir, has) : 0;
    free(path); free(spm); free(vocab); free(merges);
    return rc;
}

int model_dir_check(const char *dir, Err *e) {
    Config c;
    if (config_load(&c, dir, e)) return -1;
    StSet *st = st_open(dir, e);
    if (!st) return -1;
    st_close(st);
    if (slow_tokenizer_only(dir, e)) return -1;
    char *path = xasprintf("%s/tokenizer.json", dir);
    int rc = access(path, R_OK) ? err_set(e, "%s: cannot open", path) : 0;
    free(path);
    return rc;
}

int model_dir_open(LoadedModel *lm, const char *dir, MatType wt, const char *const *adapters, int n_adapters, Err *e) {
    memset(lm, 0, sizeof *lm);
    if (adapters_distinct(adapters, n_adapters, e)) return -1;
    if (model_load(&lm->model, dir, wt, e)) return -1;
    if (slow_tokenizer_only(dir, e)) { model_free(&lm->model); return -1; }
    char *path = xasprintf("%s/tokenizer.json", dir);
    lm->tok = tokenizer_load(path, e);
    free(path);
    if (!lm->tok) { model_free(&lm->model); return -1; }
    const Config *c = &lm->model.cfg;
    lm->eos_id = c->n_eos ? c->eos_ids[0] : -1;
    if (lm->eos_id < 0) { model_dir_close(lm); return err_set(e, "%s/config.json: no eos_token_id", dir); }
    if (tokenizer_vocab_size(lm->tok) > c->vocab_size) {
        err_set(e, "%s: tokenizer has %d tokens but the model's vocab_size is %d", dir, tokenizer_vocab_size(lm->tok),
                c->vocab_size);
        model_dir_close(lm);
        return -1;
    }
    for (int i = 0; i < n_adapters; i++) {
        Lora l;
        if (peft_load(&l, &lm->model, adapters[i], e)) { model_dir_close(lm); return -1; }
        lora_merge(&lm->model, &l);
        lora_free(&l);
    }
    return 0;
}

void model_dir_close(LoadedModel *lm) {
    model_free(&lm->model);
    tokenizer_free(lm->tok);
    lm->tok = NULL;
}

int model_dir_copy_tokenizer(const char *from, const char *to, Err *e) {
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "generation_config.json", "tokenizer.model"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *src = xasprintf("%s/%s", from, files[i]), *dst = xasprintf("%s/%s", to, files[i]);
        FILE *f = fopen(src, "rb");
        int rc = 0;
        if (f) {
            fclose(f);
            size_t n;
            char *buf = read_file(src, &n, e);
            rc = !buf || write_file_atomic(dst, buf, n, e) ? -1 : 0;
            free(buf);
        } else if (i == 0) {
            rc = err_set(e, "%s: cannot open", src);
        }  // the other files are optional
        free(src);
        free(dst);
        if (rc) return -1;
    }
    return 0;
}
