// Bad input files: every loader (config, weights, tokenizer, PEFT adapter, model folder)
// returns an error value naming the file on one line, never crashes; and the CLI
// (`antibody generate` on the same folders) exits non-zero with exactly one stderr line
// naming the file.
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/model_dir.h"
#include "io/hf_checkpoint.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "testing.h"
#include "tokenizer/tokenizer.h"

static char root[] = "/tmp/antibody_bad_input_XXXXXX";
static char base[4096];  // ../shared/models/stories260k-hf

static void write_text(const char *dir, const char *name, const char *text) {
    char p[4500];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); return; }
    fwrite(text, 1, strlen(text), f);
    fclose(f);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name, long truncate_to) {
    char a[4500], b[4500];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    mkdir(to_dir, 0755);
    FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
    if (!in || !out) { perror(a); if (in) fclose(in); if (out) fclose(out); return; }
    char buf[65536];
    long done = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (truncate_to >= 0 && done + (long)n > truncate_to) n = (size_t)(truncate_to - done);
        fwrite(buf, 1, n, out);
        done += (long)n;
        if (truncate_to >= 0 && done >= truncate_to) break;
    }
    fclose(in);
    fclose(out);
}

static char *dirpath(const char *name) {
    static char p[8][4200];
    static int k;
    char *r = p[k++ % 8];
    snprintf(r, 4200, "%s/%s", root, name);
    return r;
}

// The error is one line and names `needle` (a file or folder path).
static void check_msg(const char *what, int failed, const Err *e, const char *needle) {
    CHECK(failed, "%s: accepted", what);
    CHECK(e->msg[0] && !strchr(e->msg, '\n'), "%s: message not one line: %s", what, e->msg);
    CHECK(strstr(e->msg, needle) != NULL, "%s: message does not name %s: %s", what, needle, e->msg);
}

// Runs the CLI; checks exit status != 0 and exactly one stderr line naming needle.
static void check_cli(const char *what, const char *args, const char *needle) {
    // the CLI of the same build as this test: <build>/tests/test_bad_input -> <build>/antibody
    char exe[4200] = {0}, cmd[9000], errf[4300];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 20);
    char *slash = k > 0 ? strstr(exe, "/tests/test_bad_input") : NULL;
    if (slash) strcpy(slash, "/antibody");
    else snprintf(exe, sizeof exe, "build/antibody");
    snprintf(errf, sizeof errf, "%s/stderr.txt", root);
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null 2> %s", exe, args, errf);
    int rc = system(cmd);
    FILE *f = fopen(errf, "r");
    char text[8192] = {0};
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = 0;
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) != 0 && WEXITSTATUS(rc) < 128, "%s: CLI status %d", what, rc);
    CHECK(lines == 1 && text[n - 1] == '\n', "%s: CLI wrote %d stderr lines: %s", what, lines, text);
    CHECK(strstr(text, needle) != NULL, "%s: CLI message does not name %s: %s", what, needle, text);
}

static const char *GOOD_CONFIG =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":172,"
    "\"num_hidden_layers\":5,\"num_attention_heads\":8,\"num_key_value_heads\":4,\"vocab_size\":512,"
    "\"max_position_embeddings\":512,\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":true,\"bos_token_id\":1,"
    "\"eos_token_id\":2}";

static void model_case(const char *name, const char *config, long st_bytes, int with_tokenizer, const char *needle_file) {
    char *d = dirpath(name);
    mkdir(d, 0755);
    if (config) write_text(d, "config.json", config);
    if (st_bytes != 0) copy_file(base, d, "model.safetensors", st_bytes);
    if (with_tokenizer) copy_file(base, d, "tokenizer.json", -1);
    char needle[4400];
    snprintf(needle, sizeof needle, "%s%s%s", d, needle_file ? "/" : "", needle_file ? needle_file : "");
    Err e = {0};
    Model m;
    int rc = model_load(&m, d, MAT_F32, &e);
    if (!rc) model_free(&m);
    check_msg(name, rc != 0, &e, needle);
    LoadedModel lm;
    Err e2 = {0};
    rc = model_dir_open(&lm, d, MAT_F32, NULL, 0, &e2);
    if (!rc) model_dir_close(&lm);
    check_msg(name, rc != 0, &e2, needle);
    char args[4400];
    snprintf(args, sizeof args, "generate %s --prompt hi --max-new 2", d);
    check_cli(name, args, needle);
}

static void adapter_case(const char *name, const char *config, int write_st, const char *needle_file) {
    char *d = dirpath(name);
    mkdir(d, 0755);
    if (config) write_text(d, "adapter_config.json", config);
    if (write_st) {  // q_proj A with the wrong shape
        float zeros[64 * 8] = {0};
        char p[4400];
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", d);
        StWrite t[2] = {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 32}, zeros},
                        {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", ST_F32, 2, {64, 8}, zeros}};
        Err e = {0};
        if (st_write(p, t, 2, NULL, 0, &e)) fprintf(stderr, "%s\n", e.msg);
    }
    char needle[4400];
    snprintf(needle, sizeof needle, "%s/%s", d, needle_file);
    Model m;
    Err e = {0};
    if (model_load(&m, base, MAT_F32, &e)) { CHECK(0, "base: %s", e.msg); return; }
    Lora l;
    int rc = peft_load(&l, &m, d, &e);
    if (!rc) lora_free(&l);
    check_msg(name, rc != 0, &e, needle);
    model_free(&m);
    char args[9000];
    snprintf(args, sizeof args, "generate %s --adapter %s --prompt hi --max-new 2", base, d);
    check_cli(name, args, needle);
}

int main(void) {
    snprintf(base, sizeof base, "%s/models/stories260k-hf", shared_dir());
    CHECK(mkdtemp(root) != NULL);

    model_case("no_config", NULL, -1, 1, "config.json");
    model_case("bad_json", "{\"model_type\": \"llama\", ", -1, 1, "config.json");
    model_case("not_object", "[1, 2]", -1, 1, "config.json");
    model_case("gpt2", "{\"model_type\":\"gpt2\",\"hidden_size\":8}", -1, 1, "config.json");
    model_case("no_sizes", "{\"model_type\":\"llama\"}", -1, 1, "config.json");
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "%.*s,\"attention_bias\":true}", (int)strlen(GOOD_CONFIG) - 1, GOOD_CONFIG);
    model_case("attention_bias", cfg, -1, 1, "config.json");
    snprintf(cfg, sizeof cfg, "%.*s,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}}", (int)strlen(GOOD_CONFIG) - 1,
             GOOD_CONFIG);
    model_case("rope_scaling", cfg, -1, 1, "config.json");
    snprintf(cfg, sizeof cfg, "%.*s,\"num_key_value_heads\":3}", (int)strlen(GOOD_CONFIG) - 1, GOOD_CONFIG);
    model_case("kv_heads", cfg, -1, 1, "config.json");
    model_case("no_weights", GOOD_CONFIG, 0, 1, NULL);
    model_case("truncated_weights", GOOD_CONFIG, 3000, 1, "model.safetensors");
    model_case("header_only", GOOD_CONFIG, 6, 1, "model.safetensors");
    snprintf(cfg, sizeof cfg, "%.*s,\"tie_word_embeddings\":false}", (int)strlen(GOOD_CONFIG) - 1, GOOD_CONFIG);
    model_case("missing_lm_head", cfg, -1, 1, NULL);
    snprintf(cfg, sizeof cfg, "%.*s,\"hidden_size\":32}", (int)strlen(GOOD_CONFIG) - 1, GOOD_CONFIG);
    model_case("wrong_shape", cfg, -1, 1, NULL);

    // tokenizer
    char *td = dirpath("bad_tokenizer");
    write_text(td, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
    Err e = {0};
    Tokenizer *t = tokenizer_load(td, &e);
    if (t) tokenizer_free(t);
    check_msg("bad tokenizer", t == NULL, &e, "tokenizer.json");
    char *nt = dirpath("no_tokenizer");
    copy_file(base, nt, "config.json", -1);
    copy_file(base, nt, "model.safetensors", -1);
    LoadedModel lm;
    Err e2 = {0};
    int rc = model_dir_open(&lm, nt, MAT_F32, NULL, 0, &e2);
    if (!rc) model_dir_close(&lm);
    check_msg("no tokenizer.json", rc != 0, &e2, "tokenizer.json");
    char args[4400];
    snprintf(args, sizeof args, "generate %s --prompt hi --max-new 2", nt);
    check_cli("no tokenizer.json", args, "tokenizer.json");
    // GPT-2's slow files only (the released OPTs): named, with the conversion
    write_text(nt, "vocab.json", "{}");
    write_text(nt, "merges.txt", "#version: 0.2\n");
    rc = model_dir_open(&lm, nt, MAT_F32, NULL, 0, &e2);
    if (!rc) model_dir_close(&lm);
    check_msg("vocab.json + merges.txt only", rc != 0 && strstr(e2.msg, "vocab.json + merges.txt") &&
              strstr(e2.msg, "save_pretrained"), &e2, "no tokenizer.json");
    copy_file(base, td, "config.json", -1);
    copy_file(base, td, "model.safetensors", -1);
    snprintf(args, sizeof args, "generate %s --prompt hi --max-new 2", td);
    check_cli("bad tokenizer", args, "tokenizer.json");

    // PEFT adapters
    adapter_case("adapter_missing", NULL, 0, "adapter_config.json");
    adapter_case("adapter_bad_json", "{\"r\": ", 0, "adapter_config.json");
    adapter_case("adapter_not_lora", "{\"peft_type\":\"IA3\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"q_proj\"]}", 0,
                 "adapter_config.json");
    adapter_case("adapter_dora", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"q_proj\"],\"use_dora\":true}",
                 0, "adapter_config.json");
    adapter_case("adapter_bad_module", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"lm_head\"]}", 0,
                 "adapter_config.json");
    adapter_case("adapter_no_weights", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"q_proj\"]}", 0,
                 "adapter_model.safetensors");
    adapter_case("adapter_wrong_shape", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"q_proj\"]}", 1,
                 "adapter_model.safetensors");

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    TEST_SUMMARY();
}
