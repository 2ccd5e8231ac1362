#include "util/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

#define HUGE_PAGE ((size_t)2 << 20)

void *huge_alloc(size_t n) {
    size_t len = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (!len) len = HUGE_PAGE;
    // map one huge page more, then unmap the unaligned head and the tail
    uint8_t *p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "antibody: out of memory (%zu bytes)\n", n);
        abort();
    }
    size_t head = (size_t)(-(uintptr_t)p & (HUGE_PAGE - 1));
    if (head) munmap(p, head);
    if (HUGE_PAGE - head) munmap(p + head + len, HUGE_PAGE - head);
    p += head;
    madvise(p, len, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 kB
    return p;
}

void huge_free(void *p, size_t n) {
    if (!p) return;
    size_t len = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    munmap(p, len ? len : HUGE_PAGE);
}
