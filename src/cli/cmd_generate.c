// antibody generate: text from a model folder (+ merged PEFT adapters) and a prompt.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "data/tasks.h"
#include "eval/generate.h"
#include "io/model_dir.h"

static const char USAGE[] =
    "usage: antibody generate MODEL_DIR [--adapter DIR]... (--prompt TEXT | --instruction TEXT [--input TEXT])\n"
    "\n"
    "Generates a continuation with a KV cache and prints it as it is produced.\n"
    "  --adapter DIR      PEFT LoRA adapter to merge first (repeat: merged in order)\n"
    "  --prompt TEXT      raw prompt (the tokenizer adds BOS as the model expects)\n"
    "  --instruction TEXT wrap in the Alpaca template (docs/methods.md, Prompt and loss) instead\n"
    "  --input TEXT       the template's optional input\n"
    "  --max-new N        new tokens at most (default 128)\n"
    "  --temperature T    0 = greedy (default), > 0 samples\n"
    "  --top-p P          nucleus sampling (default 1 = off)\n"
    "  --seed S           sampling seed (default 0)\n"
    "  --bf16             keep weights in bf16 (half the memory)\n";

typedef struct { int pieces; struct timespec first; } Stream;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) + 1e-9 * (t.tv_nsec - t0->tv_nsec);
}

// One call per generated token (and one for the tail): prints it, counts it.
static void print_piece(const char *s, void *ctx) {
    Stream *st = ctx;
    if (st->pieces++ == 0) clock_gettime(CLOCK_MONOTONIC, &st->first);
    fputs(s, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    const Flag flags[] = {{"adapter", 1, .repeat = 1}, {"prompt", 1}, {"instruction", 1}, {"input", 1}, {"max-new", 1},
                          {"temperature", 1}, {"top-p", 1}, {"seed", 1}, {"bf16", 0}, {NULL}};
    Args a = {"generate"};
    args_add(&a, flags);
    int rc = args_parse(&a, argc, argv, USAGE);
    if (rc) return rc > 0 ? 0 : 2;
    if (a.n_pos != 1) return cli_fail("generate", "expected one MODEL_DIR (see --help)");
    const char *prompt = arg_str(&a, "prompt", NULL), *instr = arg_str(&a, "instruction", NULL);
    if (!prompt == !instr) return cli_fail("generate", "give exactly one of --prompt or --instruction");
    const Flag *ad = arg_get(&a, "adapter");
    LoadedModel lm;
    Err e;
    if (model_dir_open(&lm, a.pos[0], arg_flag(&a, "bf16") ? MAT_BF16 : MAT_F32, ad->values, ad->n_values, &e))
        return cli_fail("generate", e.msg);
    char *wrapped = NULL;
    if (instr) {
        Sample s = {(char *)instr, (char *)arg_str(&a, "input", ""), "", "", "", 0};
        wrapped = prompt_alpaca(&s);
        prompt = wrapped;
    }
    GenOpts o = {arg_int(&a, "max-new", 128), (float)arg_double(&a, "temperature", 0), (float)arg_double(&a, "top-p", 1),
                 (uint64_t)arg_int(&a, "seed", 0), NULL, NULL};
    Stream st = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *text = generate_text(&lm.model, NULL, lm.tok, prompt, &o, print_piece, &st, &e);
    if (!text) {
        free(wrapped);
        model_dir_close(&lm);
        return cli_fail("generate", e.msg);
    }
    double total = since(&t0), decode = st.pieces ? since(&st.first) : 0;
    int tokens = st.pieces > 0 ? st.pieces - 1 : 0;  // the last call is the stream's tail
    printf("\n");
    fprintf(stderr, "generate: %d tokens in %.2f s, %.1f tokens/s (first token after %.2f s)\n", tokens, total,
            tokens > 1 && decode > 0 ? (tokens - 1) / decode : 0.0, total - decode);
    free(text);
    free(wrapped);
    model_dir_close(&lm);
    return 0;
}
