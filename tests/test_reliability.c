// Reliability (docs/reliability.md): checkpoints that survive kill -9 leftovers and
// refuse hostile contents, and the output-folder lock.
#include <errno.h>
#include <omp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic.h"
#include "io/dir_lock.h"
#include "io/dir_replace.h"
#include "io/hf_checkpoint.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "pipeline/config.h"
#include "data/load.h"
#include "tokenizer/tokenizer.h"
#include "train/batch.h"
#include "util/intparse.h"
#include "testing.h"
#include "train/trainer.h"
#include "util/rng.h"

static Config cfg(void) {
    Config c = {.vocab_size = 29, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .head_dim = 4, .max_seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = 1};
    strcpy(c.arch, "LlamaForCausalLM");
    strcpy(c.model_type, "llama");
    return c;
}

static void data(EncodedSet *s, int n) {
    Rng r;
    rng_seed(&r, 7);
    s->n = n;
    s->max_len = 10;
    s->ex = xcalloc(n, sizeof(Encoded));
    for (int i = 0; i < n; i++) {
        int len = 5 + (int)rng_below(&r, 5);
        s->ex[i].ids = xmalloc(len * sizeof(int));
        for (int t = 0; t < len; t++) s->ex[i].ids[t] = 1 + (int)rng_below(&r, 28);
        s->ex[i].n = len;
        s->ex[i].prompt_len = 2;
    }
}

static TrainOpts opts(int steps) {
    TrainOpts o;
    train_opts_default(&o);
    o.batch_size = 4;
    o.epochs = 100;
    o.max_steps = steps;
    o.lr = 5e-2f;
    o.label = "test";
    return o;
}

static void touch(const char *dir, const char *name) {
    char p[4300];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) { fputs("partial", f); fclose(f); }
}

static int exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

static char root[] = "/tmp/antibody_reliability_XXXXXX";

static const char *path_of(const char *name) {
    static char p[8][4200];
    static int k;
    char *r = p[k++ % 8];
    snprintf(r, 4200, "%s/%s", root, name);
    return r;
}

// Rewrites DIR/checkpoint.safetensors with one tensor replaced by `len` floats (or I64).
static void rewrite_checkpoint(const char *dir, const char *victim, int64_t len, StDtype dt, int64_t fill) {
    char p[4300];
    snprintf(p, sizeof p, "%s/checkpoint.safetensors", dir);
    Err e;
    StSet *s = st_open(p, &e);
    CHECK(s != NULL, "%s", e.msg);
    if (!s) return;
    int n = st_count(s);
    StWrite *w = xcalloc(n, sizeof(StWrite));
    void *big = xcalloc((size_t)len, 8);
    for (int64_t i = 0; i < len; i++)
        if (dt == ST_I64) ((int64_t *)big)[i] = fill;
    for (int i = 0; i < n; i++) {
        const StTensor *t = st_get(s, i);
        w[i] = (StWrite){t->name, t->dtype, t->ndim, {t->shape[0]}, t->data};
        if (!strcmp(t->name, victim)) w[i] = (StWrite){t->name, dt, 1, {len}, big};
    }
    char out[4300];
    snprintf(out, sizeof out, "%s/rewritten", dir);
    CHECK(st_write(out, w, n, NULL, 0, &e) == 0, "%s", e.msg);
    st_close(s);
    CHECK(rename(out, p) == 0);
    free(big);
    free(w);
}

static void test_checkpoints(void) {
    Config c = cfg();
    Model m;
    model_init_random(&m, &c, 3);
    EncodedSet d;
    data(&d, 8);
    StepMethod *sft = sft_method_new();
    Err e;
    TrainLog log;
    const char *ck = path_of("ck");
    char tmp[4200], old[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", ck);
    snprintf(old, sizeof old, "%s.old", ck);

    // the reference: 6 steps without interruption
    Lora ref, l;
    lora_init(&ref, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    TrainOpts straight = opts(6);
    CHECK(train_run(&m, &ref, &d, &straight, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    TrainOpts part = straight;
    part.checkpoint_dir = ck;
    part.checkpoint_every = 1;
    part.stop_after = 3;

    // 1. what a kill during a save leaves (temp files in DIR.tmp, a half-removed DIR.old)
    //    does not block the next saves, and is cleaned up
    touch(tmp, "checkpoint.safetensors.tmp.AbCdEf");
    touch(old, "trainer_state.json.tmp.XyZ123");
    lora_init(&l, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    CHECK(train_run(&m, &l, &d, &part, sft, &log, &e) == 1, "save after an earlier kill failed: %s", e.msg);
    train_log_free(&log);
    CHECK(!exists(tmp) && !exists(old), "leftovers of the earlier kill are still there");
    lora_free(&l);

    // 2. a kill between the two renames of a save: DIR is gone, DIR.old is the last
    //    complete checkpoint; the next run resumes from it and ends identical
    CHECK(rename(ck, old) == 0);
    lora_init(&l, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 77);  // a fresh process: everything comes from the checkpoint
    TrainOpts other = part;
    other.seed = 999;  // a different run must see (and refuse) the checkpoint in DIR.old, not start over
    other.stop_after = 0;
    CHECK(train_run(&m, &l, &d, &other, sft, &log, &e) == -1 && strstr(e.msg, "different run"),
          "the checkpoint left in %s was ignored: %s", old, e.msg);
    part.stop_after = 0;
    CHECK(train_run(&m, &l, &d, &part, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    int same = memcmp(ref.params, l.params, ref.n_params * sizeof(float)) == 0;
    CHECK(same, "resumed from DIR.old differs from the uninterrupted run");
    CHECK(!exists(old) && !exists(tmp), "rotation left folders behind");
    lora_free(&l);

    // 3. hostile checkpoint contents are refused by name, never read past a buffer
    part.stop_after = 3;
    dir_remove_flat(ck, &e);
    lora_init(&l, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    CHECK(train_run(&m, &l, &d, &part, sft, &log, &e) == 1, "%s", e.msg);
    train_log_free(&log);
    part.stop_after = 0;
    rewrite_checkpoint(ck, "loss_curve", 100000, ST_F32, 0);  // longer than the run (6 steps)
    CHECK(train_run(&m, &l, &d, &part, sft, &log, &e) == -1 && strstr(e.msg, "loss_curve"),
          "a loss curve longer than the run was accepted: %s", e.msg);
    rewrite_checkpoint(ck, "loss_curve", 3, ST_F32, 0);
    rewrite_checkpoint(ck, "tensor_steps", 3, ST_I64, 1);
    CHECK(train_run(&m, &l, &d, &part, sft, &log, &e) == -1 && strstr(e.msg, "tensor_steps"), "%s", e.msg);
    int64_t nt = 0;
    {
        char p[4300];
        snprintf(p, sizeof p, "%s/checkpoint.safetensors", ck);
        StSet *s = st_open(p, &e);
        nt = s ? st_find(s, "params") ? 2 * 2 * N_PROJ : 0 : 0;
        st_close(s);
    }
    rewrite_checkpoint(ck, "tensor_steps", nt, ST_I64, -5);
    CHECK(train_run(&m, &l, &d, &part, sft, &log, &e) == -1 && strstr(e.msg, "tensor_steps"), "%s", e.msg);
    lora_free(&l);

    // 4. errors say which path and why (a folder inside DIR.tmp cannot be unlinked, even by root)
    dir_remove_flat(ck, &e);
    mkdir(tmp, 0755);
    touch(path_of("ck.tmp/sub"), "x");
    lora_init(&l, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    part.stop_after = 3;
    CHECK(train_run(&m, &l, &d, &part, sft, &log, &e) == -1 && strstr(e.msg, path_of("ck.tmp/sub")) &&
              strstr(e.msg, strerror(EISDIR)),
          "%s", e.msg);
    lora_free(&l);

    lora_free(&ref);
    step_method_free(sft);
    encoded_free(&d);
    model_free(&m);
}

static void test_lock(void) {
    const char *dir = path_of("out");
    DirLock a, b;
    Err e;
    CHECK(dir_lock(&a, dir, &e) == 0, "%s", e.msg);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CHECK(dir_lock(&b, dir, &e) == -1 && strstr(e.msg, dir) && strstr(e.msg, pid),
          "a second lock on a held folder: %s", e.msg);
    dir_unlock(&b);  // a failed lock is safe to release
    dir_unlock(&a);
    CHECK(!exists(path_of("out/.antibody.lock")), "lock file left behind");
    CHECK(dir_lock(&b, dir, &e) == 0, "released lock not retaken: %s", e.msg);
    dir_unlock(&b);
}

// Results are bit-identical run to run at a given thread count; across thread counts they
// may differ in the last bits (docs/reliability.md, "Threads"), so runs pin the count.
static void test_threads(void) {
    Config c = cfg();
    Model m;
    model_init_random(&m, &c, 3);
    EncodedSet d;
    data(&d, 8);
    StepMethod *sft = sft_method_new();
    TrainOpts o = opts(4);
    Err e;
    TrainLog log;
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        Lora a, b;
        lora_init(&a, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
        lora_init(&b, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
        CHECK(train_run(&m, &a, &d, &o, sft, &log, &e) == 0, "%s", e.msg);
        train_log_free(&log);
        CHECK(train_run(&m, &b, &d, &o, sft, &log, &e) == 0, "%s", e.msg);
        train_log_free(&log);
        CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "two runs at %d threads differ", threads);
        lora_free(&a);
        lora_free(&b);
    }
    omp_set_num_threads(saved);
    step_method_free(sft);
    encoded_free(&d);
    model_free(&m);
}

// Integers are parsed exactly and refused when they do not fit where they go.
static void test_integers(void) {
    int64_t v = 0;
    CHECK(int_parse("2147483647", 0, INT32_MAX, &v) == INT_OK && v == INT32_MAX);
    CHECK(int_parse("2147483648", 0, INT32_MAX, &v) == INT_OUT_OF_RANGE);
    CHECK(int_parse("99999999999999999999", 0, INT64_MAX, &v) == INT_OUT_OF_RANGE);
    CHECK(int_parse("12x", 0, 100, &v) == INT_NOT_INTEGER && int_parse(" 1", 0, 100, &v) == INT_NOT_INTEGER);
    CHECK(int_parse("-", -5, 5, &v) == INT_NOT_INTEGER && int_parse("-5", -5, 5, &v) == INT_OK && v == -5);
    json_t *j = json_real(3.0), *k = json_real(3.5), *big = json_real(1e30);
    CHECK(json_int(j, 0, 10, &v) == INT_OK && v == 3);
    CHECK(json_int(k, 0, 10, &v) == INT_NOT_INTEGER && json_int(big, 0, INT64_MAX, &v) == INT_NOT_INTEGER);
    json_decref(j); json_decref(k); json_decref(big);
    // a pipeline config's epochs of 2^40 used to wrap to 0 steps (and a table was published)
    static const char *const bad_configs[] = {
        "{\"base_model\": \"m\", \"align\": {\"epochs\": 1099511627776}}",
        "{\"base_model\": \"m\", \"align\": {\"rank\": 2147483648}}",
        "{\"base_model\": \"m\", \"finetune\": {\"n\": 4294967297}}",
    };
    for (size_t i = 0; i < sizeof bad_configs / sizeof *bad_configs; i++) {
        PipelineConfig c;
        pipeline_config_default(&c);
        Err e = {0};
        int rc = pipeline_config_parse(bad_configs[i], "cfg.json", &c, &e);
        CHECK(rc != 0 && strstr(e.msg, "cfg.json") && strstr(e.msg, "2147483647"), "accepted %s: %s", bad_configs[i], e.msg);
        pipeline_config_free(&c);
    }
}

// Error paths free what they allocated (this binary also runs under LeakSanitizer).
static void test_error_paths(void) {
    char p[4300];
    snprintf(p, sizeof p, "%s/bad.jsonl", root);
    FILE *f = fopen(p, "wb");
    fputs("{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"c\", \"output\": \"d\"}\n{\"instruction\": 5}\n", f);
    fclose(f);
    FieldMap fm;
    Err e;
    CHECK(fieldmap_parse(NULL, &fm, &e) == 0);
    Dataset d;
    dataset_init(&d);
    CHECK(data_load(p, &fm, DATA_NEED_OUTPUT, &d, &e) != 0 && strstr(e.msg, "bad.jsonl"), "%s", e.msg);
    dataset_free(&d);
    fieldmap_free(&fm);
    // an EOS id the vocabulary does not have
    char tp[4300];
    snprintf(tp, sizeof tp, "%s/models/stories260k-hf/tokenizer.json", shared_dir());
    Tokenizer *tok = tokenizer_load(tp, &e);
    CHECK(tok != NULL, "%s", e.msg);
    if (!tok) return;
    dataset_init(&d);
    dataset_add(&d, "hi", "", "there", NULL, NULL, 0);
    EncodedSet enc;
    CHECK(encode_dataset(tok, 1 << 20, &d, 64, &enc, &e) != 0 && strstr(e.msg, "eos"), "%s", e.msg);
    dataset_free(&d);
    tokenizer_free(tok);
}

static void copy_model_file(const char *to_dir, const char *name) {
    char a[4300], b[4300], cmd[9000];
    snprintf(a, sizeof a, "%s/models/stories260k-hf/%s", shared_dir(), name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", a, b);
    CHECK(system(cmd) == 0);
}

// A FIFO (or any non-regular file) named as an input is refused at once, never opened
// for a read that blocks forever (an alarm ends the test if one does).
static void test_fifos(void) {
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json"};
    alarm(120);
    for (int i = 0; i < 3; i++) {
        char dir[4200], p[4300];
        snprintf(dir, sizeof dir, "%s/fifo%d", root, i);
        mkdir(dir, 0755);
        for (int j = 0; j < 3; j++) {
            snprintf(p, sizeof p, "%s/%s", dir, files[j]);
            if (j == i) CHECK(mkfifo(p, 0644) == 0);
            else copy_model_file(dir, files[j]);
        }
        Err e = {0};
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (i < 2) {
            Model m;
            CHECK(model_load(&m, dir, MAT_F32, &e) != 0 && strstr(e.msg, p) && strstr(e.msg, "regular"), "%s", e.msg);
        } else {
            Tokenizer *t = tokenizer_load(p, &e);
            CHECK(!t && strstr(e.msg, p) && strstr(e.msg, "regular"), "%s", e.msg);
        }
    }
    char p[4300];
    snprintf(p, sizeof p, "%s/fifo_rows.jsonl", root);
    CHECK(mkfifo(p, 0644) == 0);
    Dataset d;
    dataset_init(&d);
    Err e = {0};
    CHECK(data_load(p, NULL, 0, &d, &e) != 0 && strstr(e.msg, "regular"), "%s", e.msg);
    dataset_free(&d);
    alarm(0);
}

// NaN/Inf in weights or adapters and an absurd lora_alpha are refused by name.
static void test_non_finite(void) {
    Config c = cfg();
    c.n_eos = 1;
    Model m, back;
    model_init_random(&m, &c, 3);
    ((float *)m.layers[1].w[P_UP].data)[7] = INFINITY;
    Err e = {0};
    for (int bf16 = 0; bf16 < 2; bf16++) {
        const char *dir = path_of(bf16 ? "inf_bf16" : "inf_f32");
        CHECK(model_save(&m, dir, bf16 ? MAT_BF16 : MAT_F32, (size_t)1 << 30, &e) == 0, "%s", e.msg);
        CHECK(model_load(&back, dir, bf16 ? MAT_BF16 : MAT_F32, &e) != 0 && strstr(e.msg, "model.layers.1.mlp.up_proj.weight") &&
                  strstr(e.msg, "Inf"),
              "Inf weight accepted (%s): %s", bf16 ? "bf16" : "f32", e.msg);
    }
    ((float *)m.layers[1].w[P_UP].data)[7] = 0.0f;
    Lora l, l2;
    lora_init(&l, &m, 2, 4.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    l.B[0][1] = NAN;
    const char *ad = path_of("nan_adapter");
    CHECK(peft_save(&l, &m, ad, "base", &e) == 0, "%s", e.msg);
    CHECK(peft_load(&l2, &m, ad, &e) != 0 && strstr(e.msg, "lora_B") && strstr(e.msg, "NaN"), "NaN adapter accepted: %s", e.msg);
    l.B[0][1] = 0.0f;
    l.alpha = 1e30f;
    CHECK(peft_save(&l, &m, ad, "base", &e) == 0, "%s", e.msg);
    CHECK(peft_load(&l2, &m, ad, &e) != 0 && strstr(e.msg, "lora_alpha"), "lora_alpha 1e30 accepted: %s", e.msg);
    lora_free(&l);
    model_free(&m);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

// Sizes and ids in config.json and tokenizer.json are checked by key before anything is
// sized from them, and positions past max_position_embeddings are computed, never read
// past a table.
static void test_sizes(void) {
    Config c = cfg();
    c.n_eos = 1;
    c.eos_ids[0] = 2;
    Model m, back;
    model_init_random(&m, &c, 3);
    const char *dir = path_of("sizes");
    Err e = {0};
    CHECK(model_save(&m, dir, MAT_F32, (size_t)1 << 30, &e) == 0, "%s", e.msg);
    char p[4300], text[2048];
    snprintf(p, sizeof p, "%s/config.json", dir);
    static const char *const cases[][2] = {
        // a small file that claims 2^24 x 2^17 embeddings: refused by shape, not by an 8 TB allocation
        {"\"vocab_size\": 16777216, \"hidden_size\": 131072, \"num_attention_heads\": 4, \"head_dim\": 4", "model.embed_tokens.weight"},
        {"\"vocab_size\": 29, \"hidden_size\": 1099511627776, \"num_attention_heads\": 4, \"head_dim\": 4", "hidden_size"},
        {"\"vocab_size\": 29, \"hidden_size\": 16, \"num_attention_heads\": 4, \"head_dim\": 4, \"eos_token_id\": 4294967298", "eos_token_id"},
        {"\"vocab_size\": 29, \"hidden_size\": 16, \"num_attention_heads\": 4, \"head_dim\": 4, \"eos_token_id\": [2, 29]", "eos_token_id"},
        {"\"vocab_size\": 29, \"hidden_size\": 16, \"num_attention_heads\": 4096, \"head_dim\": 4096", "head_dim"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(text, sizeof text,
                 "{\"model_type\": \"llama\", \"architectures\": [\"LlamaForCausalLM\"], %s, \"intermediate_size\": 24, "
                 "\"num_hidden_layers\": 2, \"num_key_value_heads\": 2, \"max_position_embeddings\": 64}",
                 cases[i][0]);
        write_text(p, text);
        int rc = model_load(&back, dir, MAT_F32, &e);
        CHECK(rc != 0 && strstr(e.msg, cases[i][1]), "case %zu accepted or unnamed: %s", i, e.msg);
        if (!rc) model_free(&back);
    }
    // tokenizer ids: one beyond the int range (was truncated to another id), one far beyond the file's tokens
    static const char *const toks[] = {"4294967297", "100000000"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/tok%d.json", root, i);
        snprintf(text, sizeof text,
                 "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": %s, \"content\": \"<x>\", \"special\": true}], "
                 "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []}}",
                 toks[i]);
        write_text(p, text);
        Tokenizer *t = tokenizer_load(p, &e);
        CHECK(!t && strstr(e.msg, p), "added token id %s accepted: %s", toks[i], e.msg);
        tokenizer_free(t);
    }
    // training past max_position_embeddings: the same as with room to spare (RoPE is computed per position)
    EncodedSet d;
    data(&d, 8);  // rows of 5-9 tokens
    StepMethod *sft = sft_method_new();
    TrainOpts o = opts(3);
    TrainLog log;
    Lora a, b;
    lora_init(&a, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    lora_init(&b, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    CHECK(train_run(&m, &a, &d, &o, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    Model short_m;
    c.max_seq_len = 3;
    model_init_random(&short_m, &c, 3);
    CHECK(train_run(&short_m, &b, &d, &o, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0, "max_position_embeddings 3 changed training");
    lora_free(&a);
    lora_free(&b);
    step_method_free(sft);
    encoded_free(&d);
    model_free(&short_m);
    model_free(&m);
}

int main(void) {
    setenv("ANTIBODY_PROGRESS", "0", 1);
    if (!mkdtemp(root)) { perror(root); return 1; }
    test_checkpoints();
    test_lock();
    test_integers();
    test_threads();
    test_error_paths();
    test_fifos();
    test_non_finite();
    test_sizes();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", root, root);
    CHECK(system(cmd) == 0);
    TEST_SUMMARY();
}
