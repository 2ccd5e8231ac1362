// SIGINT/SIGTERM during training: the first signal sets a flag the training loop reads
// (TrainOpts.interrupt), which checkpoints after the current step and stops; a second
// signal ends the process at once. Only the command line handles signals.
#pragma once
#include <signal.h>

extern volatile sig_atomic_t cli_interrupted;
// At the start of main, before any other thread exists (threads inherit the mask): blocks
// SIGINT and SIGTERM and starts the one thread that waits for them. Until
// cli_catch_interrupts they end the process as by default. -1 if the thread could not start
// (the signals then keep their default action).
int cli_signals_init(void);
// From now on the first SIGINT/SIGTERM sets cli_interrupted instead of ending the process.
void cli_catch_interrupts(void);
// After a command failed: when a signal stopped it, prints how to resume (the same
// command line again) and returns 130, else returns rc.
int cli_interrupt_exit(const char *cmd, int rc);
