// The log callback: the one way library code talks to the user.
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/err.h"

// The sink the program installed: process-wide like the program's stderr it stands for.
static LogFn sink;
static void *sink_ctx;
static int sink_interactive;

void log_set(LogFn fn, void *ctx, int interactive) {
    sink = fn;
    sink_ctx = ctx;
    sink_interactive = interactive;
}

int log_interactive(void) { return sink_interactive; }

void log_msg(LogLevel level, const char *fmt, ...) {
    if (!sink) return;
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof small) { sink(level, small, sink_ctx); return; }
    char *big = xmalloc((size_t)n + 1);  // long messages (the results table) in full
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sink(level, big, sink_ctx);
    free(big);
}
