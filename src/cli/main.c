// antibody: one program, one subcommand per pipeline step. main only dispatches.
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "kernels/kernels.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} Command;

static const Command COMMANDS[] = {
    {"demo", cmd_demo, "the whole pipeline on a generated world, no model or network needed"},
    {"align", cmd_align, "stage 1: safety alignment (SFT, Vaccine, T-Vaccine), writes a PEFT adapter"},
    {"finetune", cmd_finetune, "stage 2: user fine-tuning on benign data mixed with harmful data"},
    {"antidote", cmd_antidote, "stage 3: prune harmful weights after fine-tuning (Wanda on harmful data)"},
    {"eval", cmd_eval, "harmful score, fine-tune accuracy, alignment loss, HED of a model + adapters"},
    {"pipeline", cmd_pipeline, "a whole experiment from a JSON config: methods x sweep, results tables"},
    {"generate", cmd_generate, "generate text from a model (+ adapters) and a prompt"},
    {"train", cmd_train, "supervised LoRA fine-tuning on instruction data, writes a PEFT adapter"},
    {"tokenize", cmd_tokenize, "show token ids and pieces of a text"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: antibody COMMAND [options]   (antibody COMMAND --help for each)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *isa = isa_env_problem();  // a forced instruction set the CPU cannot run is refused, not ignored
    if (isa) {
        fprintf(stderr, "antibody: %s\n", isa);
        return 2;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "antibody: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
