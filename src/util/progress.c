#include "util/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/log.h"

struct Progress {
    char *label;
    int64_t total, done;
    double start, last_draw;
    int tty, drawn;
    char extra[256];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_format_duration(double s, char *buf, size_t cap) {
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(buf, cap, "%lds", t);
    else if (t < 3600) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
}

Progress *progress_new(const char *label, int64_t total) {
    Progress *p = xcalloc(1, sizeof(Progress));
    p->label = xstrdup(label);
    p->total = total;
    p->tty = log_interactive();
    p->start = now_s();
    p->last_draw = -1e9;
    return p;
}

static void draw(Progress *p, int final) {
    double el = now_s() - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char els[32], eta[32], line[512];
    progress_format_duration(el, els, sizeof els);
    int k = 0;
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        if (frac < 0) frac = 0;
        if (rate > 0 && !final) progress_format_duration((double)(p->total - p->done) / rate, eta, sizeof eta);
        else strcpy(eta, "-");
        if (p->tty) {
            char bar[31];
            int fill = (int)(frac * 30 + 0.5);
            for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
            bar[30] = '\0';
            k = snprintf(line, sizeof line, "%s [%s] %5.1f%% %lld/%lld", p->label, bar, 100 * frac,
                         (long long)p->done, (long long)p->total);
        } else {
            k = snprintf(line, sizeof line, "%s: %lld/%lld (%.1f%%)", p->label, (long long)p->done,
                         (long long)p->total, 100 * frac);
        }
        k += snprintf(line + k, sizeof line - (size_t)k, " %.*f/s %s%s%s", rate < 10 ? 2 : rate < 100 ? 1 : 0, rate, els,
                      final ? "" : " eta ", final ? "" : eta);
    } else {
        k = snprintf(line, sizeof line, "%s: %lld %.*f/s %s", p->label, (long long)p->done,
                     rate < 10 ? 2 : rate < 100 ? 1 : 0, rate, els);
    }
    if (p->extra[0] && k < (int)sizeof line) snprintf(line + k, sizeof line - (size_t)k, " | %s", p->extra);
    log_msg(final ? LOG_PROGRESS_DONE : LOG_PROGRESS, "%s", line);
    p->drawn = 1;
}

void progress_update(Progress *p, int64_t done, const char *extra_fmt, ...) {
    if (!p) return;
    p->done = done;
    if (extra_fmt) {
        va_list ap;
        va_start(ap, extra_fmt);
        vsnprintf(p->extra, sizeof p->extra, extra_fmt, ap);
        va_end(ap);
    }
    double t = now_s();
    if (p->tty) {
        if (t - p->last_draw < 0.1) return;
    } else {
        if (t - p->last_draw < 10.0) return;  // by time only: a log gets no line per item
    }
    p->last_draw = t;
    draw(p, 0);
}

void progress_done(Progress *p) {
    if (!p) return;
    draw(p, 1);
    free(p->label);
    free(p);
}
