// File paths near the system's limit (4095 bytes): a path built from a folder and a file
// name is never cut short to fit a buffer (which would write or read a different file);
// it reaches the system whole, which refuses it.
#include <dirent.h>
#include <unistd.h>

#include "io/dir_replace.h"
#include "io/hf_checkpoint.h"
#include "io/hf_config.h"
#include "io/model_dir.h"
#include "io/peft.h"
#include "testing.h"
#include "util/atomic.h"

// Creates a folder whose path is `len` bytes long (components of at most 200) under base.
static char *long_dir(const char *base, size_t len) {
    char *p = xmalloc(len + 1);
    size_t n = (size_t)snprintf(p, len + 1, "%s", base);
    while (n < len) {
        size_t part = len - n - 1 < 200 ? len - n - 1 : 200;
        p[n++] = '/';
        memset(p + n, 'd', part);
        n += part;
        p[n] = 0;
    }
    return p;
}

// Number of entries in dir other than . and .. (-1 if it cannot be read)
static int n_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *x; (x = readdir(d));)
        if (strcmp(x->d_name, ".") && strcmp(x->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_long_paths(void) {
    char base[] = "/tmp/antibody_paths_XXXXXX";
    CHECK(mkdtemp(base) != NULL, "mkdtemp");
    // "dir/config.json" is 4097 bytes: one past what a 4096-byte buffer can hold
    char *dir = long_dir(base, 4097 - strlen("/config.json"));
    Err e = {{0}};
    CHECK(mkdir_p(dir, &e) == 0, "mkdir_p of a %zu-byte path: %s", strlen(dir), e.msg);
    Config c = {.vocab_size = 8, .dim = 4, .hidden_dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                .head_dim = 2, .max_seq_len = 8, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .bos_id = -1,
                .pad_id = -1, .n_eos = 1};
    strcpy(c.arch, "LlamaForCausalLM");
    strcpy(c.model_type, "llama");
    e.msg[0] = 0;
    CHECK(config_save(&c, dir, "float32", &e) == -1, "config.json past the path limit is refused");
    Model m;
    model_init_random(&m, &c, 1);
    Lora l;
    lora_init(&l, &m, 2, 4, 0, 1 << P_Q, 1);
    e.msg[0] = 0;
    CHECK(peft_save(&l, &m, dir, "base", &e) == -1, "adapter past the path limit is refused");
    e.msg[0] = 0;
    CHECK(model_save(&m, dir, MAT_F32, 0, &e) == -1, "model past the path limit is refused");
    CHECK(n_entries(dir) == 0, "nothing written under a shortened name (%d entries)", n_entries(dir));
    // Cut to 4095 bytes, "dir/config.json" would be "dir/config.js": a file there must not be read.
    char *cut = xasprintf("%s/config.js", dir);
    CHECK(strlen(cut) == 4095, "cut path %zu bytes", strlen(cut));
    FILE *f = fopen(cut, "w");
    CHECK(f != NULL, "create %zu-byte path", strlen(cut));
    if (f) {
        fputs("{\"model_type\": \"llama\", \"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 8, "
              "\"hidden_size\": 4, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
              "\"num_attention_heads\": 2, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000}\n", f);
        fclose(f);
    }
    Config got;
    CHECK(config_load(&got, dir, &e) == -1, "config.json past the path limit is not read from a shortened name");
    unlink(cut);
    free(cut);
    lora_free(&l);
    model_free(&m);
    free(dir);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    CHECK(system(cmd) == 0, "cleanup");
}

// A checkpoint folder whose DIR.old and DIR.tmp are one byte past the limit: refused with the
// whole name (a 4096-byte buffer cut them to DIR.ol and DIR.tm, and a folder DIR.tm was made).
static void test_long_checkpoint_dir(void) {
    char base[] = "/tmp/antibody_paths_XXXXXX";
    CHECK(mkdtemp(base) != NULL, "mkdtemp");
    char *dir = long_dir(base, 4096 - strlen(".old"));
    Err e = {{0}};
    CHECK(mkdir_p(dir, &e) == 0, "mkdir_p of a %zu-byte path: %s", strlen(dir), e.msg);
    char *parent = xstrdup(dir);
    *strrchr(parent, '/') = 0;
    e.msg[0] = 0;
    CHECK(dir_stage(dir, "trainer_state.json", &e) == -1 && strstr(e.msg, ".old: ") &&
              strstr(e.msg, "too long"), "DIR.old past the path limit is refused by name: %s", e.msg);
    CHECK(n_entries(parent) == 1, "nothing made under a shortened name (%d entries)", n_entries(parent));
    e.msg[0] = 0;
    CHECK(dir_replace(dir, &e) == -1 && strstr(e.msg, ".old"), "dir_replace refuses by name: %s", e.msg);
    CHECK(n_entries(parent) == 1 && n_entries(dir) == 0, "dir_replace moved nothing");
    free(parent);
    free(dir);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    test_long_paths();
    test_long_checkpoint_dir();
    TEST_SUMMARY();
}
