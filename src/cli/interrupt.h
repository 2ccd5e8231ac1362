// SIGINT/SIGTERM during training: the first signal sets a flag the training loop reads
// (TrainOpts.interrupt), which checkpoints after the current step and stops; a second
// signal ends the process at once. Only the command line installs handlers.
#pragma once
#include <signal.h>

extern volatile sig_atomic_t cli_interrupted;
// Installs the handlers (once per process).
void cli_catch_interrupts(void);
// After a command failed: when a signal stopped it, prints how to resume (the same
// command line again) and returns 130, else returns rc.
int cli_interrupt_exit(const char *cmd, int rc);
