// Resident memory of this process, for the per-stage memory reports.
#pragma once
#include <stddef.h>

size_t peak_rss_bytes(void);  // VmHWM: the high-water mark of resident memory
size_t rss_bytes(void);       // VmRSS now
void peak_rss_reset(void);    // restart the high-water mark (Linux clear_refs 5), so a stage measures its own peak
