// antibody tokenize: show how a tokenizer.json splits text (ids and pieces), and
// batch modes used by the oracle tests (one process per tokenizer, many lines).
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

static const char USAGE[] =
    "usage: antibody tokenize TOKENIZER_JSON_OR_MODEL_DIR [--no-special] [TEXT | -]\n"
    "       antibody tokenize TOKENIZER_JSON_OR_MODEL_DIR --jsonl [--no-special]\n"
    "       antibody tokenize TOKENIZER_JSON_OR_MODEL_DIR --decode [--skip-special]\n"
    "       antibody tokenize TOKENIZER_JSON_OR_MODEL_DIR --stream [--skip-special]\n"
    "\n"
    "Encodes TEXT (or standard input with -) with a Hugging Face tokenizer.json and prints\n"
    "the ids, then one line per token: id, piece, and the text it decodes to.\n"
    "  --no-special    do not add the post-processor's special tokens (e.g. BOS)\n"
    "  --jsonl         batch: read one JSON string per line (or a JSON array of byte values\n"
    "                  for raw, possibly invalid UTF-8), print one JSON array of ids per line\n"
    "  --decode        batch: read one JSON array of ids per line, print the decoded text as\n"
    "                  one JSON string per line\n"
    "  --stream        batch: like --decode, but print the JSON array of the pieces a\n"
    "                  streaming decoder emits (one push per id, then finish)\n"
    "  --skip-special  with --decode/--stream: leave special tokens out\n"
    "\n"
    "       antibody tokenize --train TEXT_FILE --vocab-size N [--special TOKEN]... --out TOKENIZER_JSON\n"
    "Trains a byte-level BPE (GPT-2 style) on the lines of TEXT_FILE; special tokens get ids 0, 1, ...\n";

static int fail(const char *msg) { return cli_fail("tokenize", msg); }

static void print_json_string(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    char *out = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    printf("%s\n", out ? out : "null");
    free(out);
    json_decref(j);
}

// Reads a whole stream into memory.
static char *read_all(FILE *f, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    *n = len;
    return buf;
}

// antibody tokenize --train: one text per line of the file.
static int run_train(const Args *a) {
    const char *file = arg_str(a, "train", NULL), *out = arg_str(a, "out", NULL);
    const Flag *sp = arg_get(a, "special");
    int vocab = arg_int(a, "vocab-size", 0);
    if (!out || vocab <= 0 || a->n_pos) { fputs(USAGE, stderr); return 2; }
    FILE *f = fopen(file, "rb");
    if (!f) { fprintf(stderr, "antibody tokenize: %s: cannot open\n", file); return 1; }
    size_t n;
    char *all = read_all(f, &n);
    fclose(f);
    if (!all) { fprintf(stderr, "antibody tokenize: %s: cannot read\n", file); return 1; }
    all = realloc(all, n + 1);
    all[n] = 0;
    int n_texts = 0, cap = 1024;
    const char **texts = (const char **)malloc(sizeof(char *) * (size_t)cap);
    for (char *p = all, *nl; p < all + n; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(all + n - p));
        if (!nl) nl = all + n;
        *nl = 0;
        if (n_texts == cap) texts = (const char **)realloc(texts, sizeof(char *) * (size_t)(cap *= 2));
        texts[n_texts++] = p;
    }
    Err e = {{0}};
    int rc = tokenizer_train_bpe(texts, n_texts, vocab, sp->values, sp->n_values, out, &e);
    free((void *)texts);
    free(all);
    if (rc) return fail(e.msg);
    printf("wrote %s\n", out);
    return 0;
}

static int run_jsonl(const Tokenizer *t, int add_special) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        char *text = NULL;
        size_t n = 0;
        if (json_is_string(j)) {
            n = json_string_length(j);
            text = malloc(n + 1);
            memcpy(text, json_string_value(j), n);
        } else if (json_is_array(j)) {
            n = json_array_size(j);
            text = malloc(n + 1);
            for (size_t i = 0; i < n; i++) text[i] = (char)json_integer_value(json_array_get(j, i));
        } else {
            fprintf(stderr, "antibody tokenize: stdin line %ld: expected a JSON string or byte array\n", lineno);
            json_decref(j);
            free(line);
            return 1;
        }
        int *ids;
        int k = tokenizer_encode(t, text, n, add_special, &ids);
        if (k < 0) {
            fprintf(stderr, "antibody tokenize: stdin line %ld: regex match limit exceeded\n", lineno);
            free(text); json_decref(j); free(line);
            return 1;
        }
        putchar('[');
        for (int i = 0; i < k; i++) printf(i ? ", %d" : "%d", ids[i]);
        printf("]\n");
        free(ids);
        free(text);
        json_decref(j);
    }
    free(line);
    return 0;
}

static int run_decode(const Tokenizer *t, int skip_special, int stream) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY, &jerr);
        if (!json_is_array(j)) {
            fprintf(stderr, "antibody tokenize: stdin line %ld: expected a JSON array of ids\n", lineno);
            json_decref(j);
            free(line);
            return 1;
        }
        int n = (int)json_array_size(j);
        int *ids = malloc(sizeof(int) * (size_t)(n ? n : 1));
        for (int i = 0; i < n; i++) ids[i] = (int)json_integer_value(json_array_get(j, (size_t)i));
        if (!stream) {
            size_t len;
            char *s = tokenizer_decode_len(t, ids, n, skip_special, &len);
            print_json_string(s, len);
            free(s);
        } else {
            TokenStream *ts = tokstream_new(t, skip_special);
            json_t *arr = json_array();
            for (int i = 0; i <= n; i++) {
                size_t len;
                char *piece = i < n ? tokstream_push_len(ts, ids[i], &len) : tokstream_finish_len(ts, &len);
                json_array_append_new(arr, json_stringn(piece, len));
                free(piece);
            }
            char *out = json_dumps(arr, 0);
            printf("%s\n", out ? out : "null");
            free(out);
            json_decref(arr);
            tokstream_free(ts);
        }
        free(ids);
        json_decref(j);
    }
    free(line);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    static const Flag flags[] = {{"no-special", 0}, {"skip-special", 0}, {"jsonl", 0}, {"decode", 0}, {"stream", 0},
                                 {"train", 1}, {"vocab-size", 1}, {"special", 1, .repeat = 1}, {"out", 1}, {NULL}};
    Args a = {"tokenize"};
    args_add(&a, flags);
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    if (arg_get(&a, "train")->value) return run_train(&a);
    if (arg_str(&a, "out", NULL) || arg_str(&a, "vocab-size", NULL) || arg_get(&a, "special")->n_values)
        return cli_fail("tokenize", "--out, --vocab-size and --special go with --train (see --help)");
    if (a.n_pos < 1 || a.n_pos > 2 || arg_flag(&a, "jsonl") + arg_flag(&a, "decode") + arg_flag(&a, "stream") > 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *path = a.pos[0], *text = a.n_pos > 1 ? a.pos[1] : NULL;
    int add_special = !arg_flag(&a, "no-special"), skip_special = arg_flag(&a, "skip-special");
    int mode = arg_flag(&a, "jsonl") ? 1 : arg_flag(&a, "decode") ? 2 : arg_flag(&a, "stream") ? 3 : 0;
    Err e = {{0}};
    Tokenizer *t = tokenizer_load(path, &e);
    if (!t) return fail(e.msg);
    if (mode == 1) rc = run_jsonl(t, add_special);
    else if (mode >= 2) rc = run_decode(t, skip_special, mode == 3);
    else {
        size_t n;
        char *owned = NULL;
        if (!text || !strcmp(text, "-")) {
            owned = read_all(stdin, &n);
            if (!owned) { tokenizer_free(t); return fail("cannot read standard input"); }
            text = owned;
        } else {
            n = strlen(text);
        }
        int *ids;
        int k = tokenizer_encode(t, text, n, add_special, &ids);
        if (k < 0) rc = fail("regex match limit exceeded");
        else {
            printf("%d tokens: [", k);
            for (int i = 0; i < k; i++) printf(i ? ", %d" : "%d", ids[i]);
            printf("]\n");
            for (int i = 0; i < k; i++) {
                const char *p = tokenizer_piece(t, ids[i]);
                size_t len;
                char *d = tokenizer_decode_len(t, &ids[i], 1, 0, &len);
                json_t *jp = json_string(p ? p : ""), *jd = json_stringn(d, len);
                char *sp = json_dumps(jp, JSON_ENCODE_ANY), *sd = jd ? json_dumps(jd, JSON_ENCODE_ANY) : NULL;
                printf("%7d  %-24s %s%s\n", ids[i], sp ? sp : "?", sd ? sd : "?", tokenizer_is_special(t, ids[i]) ? "  (special)" : "");
                free(sp); free(sd); free(d);
                json_decref(jp); json_decref(jd);
            }
            free(ids);
        }
        free(owned);
    }
    tokenizer_free(t);
    return rc;
}
