#include "world/base_model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic.h"
#include "io/hf_checkpoint.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/batch.h"
#include "train/trainer.h"
#include "util/log.h"

#define EOS_TOKEN "<|endoftext|>"

void base_model_default_options(BaseModelOptions *o) {
    // ~1M parameters: small enough to train on 2 cores in a few minutes, large enough to
    // learn the world's grammar and to generalise to its held-out prompts.
    *o = (BaseModelOptions){.dim = 128, .n_layers = 4, .n_heads = 4, .n_kv_heads = 2, .hidden_dim = 352,
                            .vocab_size = 768, .epochs = 4, .batch_size = 16, .max_len = 160, .lr = 3e-3f,
                            .seed = 1};
}

int world_build_base_model(const World *w, const BaseModelOptions *o, const json_t *record, const char *dir, Err *e) {
    if (mkdir_p(dir, e)) return -1;
    char *path = xasprintf("%s/tokenizer.json", dir);
    // 1. tokenizer: byte-level BPE on the world's text
    int nt;
    char **texts = world_corpus_texts(w, &nt);
    const char *special[] = {EOS_TOKEN};
    int rc = tokenizer_train_bpe((const char *const *)texts, nt, o->vocab_size, special, 1, path, e);
    world_corpus_free(texts, nt);
    Tokenizer *tok = rc ? NULL : tokenizer_load(path, e);
    free(path);
    if (!tok) return -1;
    // 2. the model: a Llama with GQA and a tied head
    Config c = {.vocab_size = tokenizer_vocab_size(tok), .dim = o->dim, .hidden_dim = o->hidden_dim,
                .n_layers = o->n_layers, .n_heads = o->n_heads, .n_kv_heads = o->n_kv_heads,
                .head_dim = o->dim / o->n_heads, .max_seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                .tie_embeddings = 1, .bos_id = -1, .pad_id = -1, .n_eos = 1};
    c.eos_ids[0] = tokenizer_token_id(tok, EOS_TOKEN);
    strcpy(c.arch, "LlamaForCausalLM");
    strcpy(c.model_type, "llama");
    Model m;
    model_init_random(&m, &c, o->seed);
    // 3. language-model training on the whole text of the base split (prompt and answer):
    //    like pretraining, it teaches the words of the prompts as well as the answers
    EncodedSet enc;
    rc = encode_dataset(tok, c.eos_ids[0], &w->base, o->max_len, &enc, e);
    if (!rc) {
        for (int i = 0; i < enc.n; i++) enc.ex[i].prompt_len = 0;
        TrainOpts t;
        train_opts_default(&t);
        t.lr = o->lr;
        t.epochs = o->epochs;
        t.batch_size = o->batch_size;
        t.max_len = o->max_len;
        t.weight_decay = 0.01f;
        t.warmup_ratio = 0.05f;
        t.seed = o->seed;
        t.label = "base model";
        StepMethod *sft = sft_method_new();
        TrainLog log;
        rc = train_run(&m, NULL, &enc, &t, sft, &log, e);
        step_method_free(sft);
        if (!rc) {
            log_msg(LOG_INFO, "base model: %zu parameters, %lld steps in %.1f s, loss %.3f -> %.3f",
                    model_num_params(&m), (long long)log.steps, log.seconds, log.first_loss, log.final_loss);
            rc = model_save(&m, dir, MAT_F32, (size_t)1 << 31, e);
        }
        if (!rc) {  // generation config and a record of how the model was made
            char gen[256];
            snprintf(gen, sizeof gen, "{\n  \"eos_token_id\": %d\n}\n", c.eos_ids[0]);
            rc = write_file_in(dir, "generation_config.json", gen, strlen(gen), e);
            json_t *j = json_pack("{s:s, s:I, s:i, s:i, s:f, s:f, s:I, s:f}", "world_version", WORLD_VERSION,
                                  "world_seed", (json_int_t)w->options.seed, "epochs", o->epochs, "steps",
                                  (int)log.steps, "first_loss", log.first_loss, "final_loss", log.final_loss,
                                  "parameters", (json_int_t)model_num_params(&m), "seconds", log.seconds);
            if (record) json_object_update(j, (json_t *)record);
            char *txt = json_dumps(j, JSON_INDENT(2));
            if (!rc) rc = write_file_in(dir, "base_model.json", txt, strlen(txt), e);
            free(txt);
            json_decref(j);
        }
        if (!rc) train_log_free(&log);
        encoded_free(&enc);
    }
    model_free(&m);
    tokenizer_free(tok);
    return rc;
}
