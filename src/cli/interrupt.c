#include "cli/interrupt.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t cli_interrupted;
static volatile sig_atomic_t catching;

static sigset_t stop_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

// The one thread that receives SIGINT and SIGTERM (every other thread blocks them). A
// signal handler would run on whichever thread the kernel picks, in the middle of its
// work; oneDNN's SGEMM interrupted that way corrupted the heap (tests/test_cli.c, the
// interrupted training), so nothing is interrupted: the first signal of a command that
// catches them sets the flag, any other takes the default action at once.
static void *watch_signals(void *arg) {
    (void)arg;
    static const char msg[] = "\nantibody: stopping after the current step with a checkpoint (send the signal again "
                              "to quit at once)\n";
    sigset_t set = stop_signals();
    for (;;) {
        int sig;
        if (sigwait(&set, &sig)) continue;
        if (catching && !cli_interrupted) {
            cli_interrupted = 1;
            ssize_t w = write(2, msg, sizeof msg - 1);
            (void)w;
            continue;
        }
        signal(sig, SIG_DFL);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
    }
    return NULL;
}

int cli_signals_init(void) {
    sigset_t set = stop_signals();
    if (pthread_sigmask(SIG_BLOCK, &set, NULL)) return -1;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, watch_signals, NULL);
    pthread_attr_destroy(&attr);
    if (rc) {  // no watcher: the signals keep their default action
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        return -1;
    }
    return 0;
}

void cli_catch_interrupts(void) { catching = 1; }

int cli_interrupt_exit(const char *cmd, int rc) {
    if (!cli_interrupted) return rc;
    fprintf(stderr, "antibody %s: interrupted; run the same command again to resume from the checkpoint\n", cmd);
    return 130;
}
