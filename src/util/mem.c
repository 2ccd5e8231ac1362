#include "util/mem.h"

#include <stdio.h>
#include <string.h>

static size_t status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) { sscanf(line + n, " %zu", &kb); break; }
    fclose(f);
    return kb * 1024;
}

size_t peak_rss_bytes(void) { return status_kb("VmHWM:"); }
size_t rss_bytes(void) { return status_kb("VmRSS:"); }

void peak_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}
