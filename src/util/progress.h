// Progress reporting for long work (training epochs, evaluation sweeps), through the log
// callback (util/log.h: LOG_PROGRESS lines, LOG_PROGRESS_DONE at the end).
// Interactive sink (a terminal): a line with a bar, percent, rate, elapsed and ETA, at most
// ~10 a second, each replacing the last. Otherwise (logs, CI): the first item, then a plain
// line at most every 10 seconds (never one per item), and one at the end.
#pragma once
#include <stdint.h>
#include <stddef.h>

typedef struct Progress Progress;

// total <= 0 means unknown (no bar, percent or ETA).
Progress *progress_new(const char *label, int64_t total);
// done = items finished so far; extra_fmt (may be NULL) is printf-formatted and appended,
// e.g. progress_update(p, step, "loss %.4f", loss).
void progress_update(Progress *p, int64_t done, const char *extra_fmt, ...) __attribute__((format(printf, 3, 4)));
// Prints the final line (always, unless silenced) and frees p.
void progress_done(Progress *p);

// Formats seconds as "42s", "3m05s" or "2h07m" into buf (for callers' own summaries).
void progress_format_duration(double seconds, char *buf, size_t cap);
