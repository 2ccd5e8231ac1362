#include "cli/interrupt.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t cli_interrupted;

static void on_signal(int sig) {
    static const char msg[] = "\nantibody: stopping after the current step with a checkpoint (send the signal again "
                              "to quit at once)\n";
    cli_interrupted = 1;
    ssize_t w = write(2, msg, sizeof msg - 1);  // async-signal-safe
    (void)w;
}

void cli_catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;  // the second signal takes the default action
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupt_exit(const char *cmd, int rc) {
    if (!cli_interrupted) return rc;
    fprintf(stderr, "antibody %s: interrupted; run the same command again to resume from the checkpoint\n", cmd);
    return 130;
}
