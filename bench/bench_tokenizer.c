// Tokenizer throughput: encode (and decode) a ~10 MB text built by repeating
// ../shared/tokenizers/corpus.txt, with the SmolLM byte-level BPE (49k) and the
// Llama-2 SentencePiece-style BPE (32k). Prints MB/s; run from the repo root.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(const char *shared, const char *rel, const char *text, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", shared, rel);
    Err e = {{0}};
    double t0 = now();
    Tokenizer *t = tokenizer_load(path, &e);
    if (!t) { fprintf(stderr, "bench_tokenizer: %s\n", e.msg); return 1; }
    double t1 = now();
    int *ids;
    int k = tokenizer_encode(t, text, n, 0, &ids);
    double t2 = now();
    size_t dn;
    char *d = tokenizer_decode_len(t, ids, k, 0, &dn);
    double t3 = now();
    double mb = (double)n / 1e6;
    printf("%-42s load %.2fs  encode %.2f MB in %.2fs = %.1f MB/s (%d tokens, %.2f bytes/token)  decode %.1f MB/s%s\n",
           rel, t1 - t0, mb, t2 - t1, mb / (t2 - t1), k, (double)n / k, mb / (t3 - t2),
           dn == n && !memcmp(d, text, n) ? "  round trip ok" : "");
    free(d);
    free(ids);
    tokenizer_free(t);
    return 0;
}

int main(int argc, char **argv) {
    const char *shared = getenv("ANTIBODY_SHARED") ? getenv("ANTIBODY_SHARED") : "../shared";
    size_t target = argc > 1 ? (size_t)atol(argv[1]) : 10u * 1000 * 1000;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/corpus.txt", shared);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "bench_tokenizer: %s: cannot open\n", path); return 1; }
    static char chunk[1 << 20];
    size_t cn = fread(chunk, 1, sizeof chunk, f);
    fclose(f);
    char *text = malloc(target + cn);
    size_t n = 0;
    while (n < target) { memcpy(text + n, chunk, cn); n += cn; }
    int rc = bench(shared, "tokenizers/smollm-135m/tokenizer.json", text, n);
    rc |= bench(shared, "tokenizers/llama2/tokenizer.json", text, n);
    free(text);
    return rc;
}
