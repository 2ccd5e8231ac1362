// antibody: one program, one subcommand per pipeline step. main only dispatches.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "kernels/kernels.h"
#include "util/log.h"
#include "util/suggest.h"
#include "util/version.h"

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
    {"train", cmd_train, "SFT of a LoRA adapter on instruction data (= align --method sft)"},
    {"tokenize", cmd_tokenize, "show token ids and pieces of a text"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: antibody COMMAND [options]   (antibody COMMAND --help for each; antibody --version)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].help);
}

// OpenMP threads that wait for work spin by default, taking cores other processes need
// and slowing everyone (us included) when the machine is busy. OpenMP reads its wait policy
// when the library loads, before main, so a busy machine re-executes this program once with
// OMP_WAIT_POLICY=PASSIVE; an idle one keeps the spinning default (passive waiting costs 2x
// on an idle machine: docs/performance.md, "Under load"). Busy means: other processes are
// runnable right now on at least half the cores (the kernel's count of runnable tasks in
// /proc/loadavg, less this one, the median of 5 looks 5 ms apart). The load average is not
// used: it still counts the runs that ended in the last minute. A user's OMP_WAIT_POLICY or
// GOMP_SPINCOUNT wins. Results do not depend on it.
static int others_runnable(void) {
    int seen[5], n = 0;
    for (int i = 0; i < 5; i++) {
        if (i) usleep(5000);
        FILE *f = fopen("/proc/loadavg", "r");
        if (!f) return 0;
        int running = 0;
        if (fscanf(f, "%*s %*s %*s %d/", &running) == 1) seen[n++] = running - 1;
        fclose(f);
    }
    if (!n) return 0;
    for (int i = 1; i < n; i++)  // insertion sort of at most 5
        for (int j = i; j > 0 && seen[j] < seen[j - 1]; j--) { int t = seen[j]; seen[j] = seen[j - 1]; seen[j - 1] = t; }
    return seen[n / 2];
}

static void wait_policy_for_load(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1 || 2 * others_runnable() < ncpu) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // on failure, go on as we are
}

// The library's messages (util/log.h): results on stdout, the rest on stderr; progress
// redrawn in place on a terminal; ANTIBODY_PROGRESS=0 silences progress.
static void log_to_terminal(LogLevel level, const char *msg, void *ctx) {
    int tty = *(const int *)ctx;
    switch (level) {
    case LOG_RESULT: fputs(msg, stdout); fflush(stdout); return;
    case LOG_PROGRESS:
    case LOG_PROGRESS_DONE: {
        const char *env = getenv("ANTIBODY_PROGRESS");
        if (env && !strcmp(env, "0")) return;
        if (tty) fprintf(stderr, "\r\033[K%s%s", msg, level == LOG_PROGRESS_DONE ? "\n" : "");
        else fprintf(stderr, "%s\n", msg);
        break;
    }
    case LOG_WARN: fprintf(stderr, "warning: %s\n", msg); break;
    case LOG_INFO: fprintf(stderr, "%s\n", msg); break;
    }
    fflush(stderr);
}

// OpenBLAS (ANTIBODY_BLAS=openblas) picks its kernels from OPENBLAS_CORETYPE once, when it
// is loaded, and Debian 12's 0.3.21 falls back to generic kernels 4-6x slower on CPUs newer
// than it knows (src/kernels/blas.c): set the kernels this CPU runs unless the user chose.
static void openblas_kernels_for_cpu(void) {
    const char *core = blas_openblas_coretype();
    if (core) setenv("OPENBLAS_CORETYPE", core, 0);
}

static int run_command(const Command *c, int argc, char **argv) {
    Err e;
    if (blas_init(&e)) {
        fprintf(stderr, "antibody: %s\n", e.msg);
        return 2;
    }
    int rc = c->run(argc, argv);
    char *profile = blas_profile_text();  // builds with -DANTIBODY_GEMM_PROFILE (docs/performance.md)
    if (profile) fputs(profile, stderr);
    free(profile);
    return rc;
}

int main(int argc, char **argv) {
    openblas_kernels_for_cpu();
    wait_policy_for_load(argv);
    cli_signals_init();  // before OpenMP or oneDNN start threads
    static int tty;
    tty = isatty(fileno(stderr));
    log_set(log_to_terminal, &tty, tty);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *isa = isa_env_problem();  // a forced instruction set the CPU cannot run is refused, not ignored
    if (isa) {
        fprintf(stderr, "antibody: %s\n", isa);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        Err e;
        if (blas_init(&e)) fprintf(stderr, "antibody: %s\n", e.msg);
        printf("antibody %s (commit %s, %s, %d threads)\n", antibody_version(), antibody_commit(), blas_name(),
               omp_threads());
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return run_command(&COMMANDS[i], argc - 1, argv + 1);
    Suggest sg;
    suggest_init(&sg, argv[1]);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) suggest_add(&sg, COMMANDS[i].name);
    if (suggest_result(&sg))
        fprintf(stderr, "antibody: unknown command \"%s\" (did you mean %s?)\n", argv[1], suggest_result(&sg));
    else
        fprintf(stderr, "antibody: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
