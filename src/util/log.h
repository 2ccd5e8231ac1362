// Messages from library code to the program that runs it. The library never prints, exits
// or aborts on a user's error: it returns errors as values (util/err.h) and reports progress
// and results through the callback the program installs (src/cli installs one that writes
// stderr and stdout). With no callback installed, messages are dropped.
#pragma once

typedef enum {
    LOG_INFO,           // what a stage is doing or did ("pipeline [3/20] finetune sft p=0.1: started")
    LOG_WARN,           // something the user should know about the result
    LOG_PROGRESS,       // a progress line; on a terminal the next one replaces it
    LOG_PROGRESS_DONE,  // the last line of a progress
    LOG_RESULT,         // a result meant for standard output (the pipeline's table)
} LogLevel;

typedef void (*LogFn)(LogLevel level, const char *msg, void *ctx);

// Installs fn (NULL: drop messages). interactive: the messages go to a terminal (progress
// redraws in place and may come often).
void log_set(LogFn fn, void *ctx, int interactive);
int log_interactive(void);
void log_msg(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
