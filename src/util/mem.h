// Resident memory of this process, for the per-stage memory reports; and the allocation of
// large read-streamed buffers (the model's weights) in transparent huge pages.
#pragma once
#include <stddef.h>

size_t peak_rss_bytes(void);  // VmHWM: the high-water mark of resident memory
size_t rss_bytes(void);       // VmRSS now
void peak_rss_reset(void);    // restart the high-water mark (Linux clear_refs 5), so a stage measures its own peak

// n zeroed bytes, 2 MB aligned, advised into transparent huge pages (where the kernel offers
// them on request, THP "madvise"): generation streams every weight once per token, and
// with 4 kB pages a core read them 25-30% slower here (docs/performance.md). Aborts when
// out of memory, as xmalloc does. Freed with huge_free(p, n).
void *huge_alloc(size_t n);
void huge_free(void *p, size_t n);
