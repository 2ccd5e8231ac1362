// What produced an output (docs/pipeline.md, "Provenance"): antibody's version and commit,
// the SGEMM library, the thread count, kernel ISA, CPU and the date, to which callers add the resolved
// settings and the SHA-256 of every input. Written into results.json, summary.json and
// every stage folder's fingerprint.json (adapters included).
#pragma once
#include <jansson.h>

#include "util/err.h"

// {"antibody_version", "commit", "blas", "threads", "isa", "cpu", "date"}: what decides
// whether a re-run is bit-identical (docs/statistics.md, "Determinism"): the kernels' ISA
// (kernels.h), the CPU's model name from /proc/cpuinfo, the date in UTC (ISO 8601). New reference.
json_t *provenance_new(void);
// The content hash of a model or adapter folder: every file that decides the weights
// (config.json, adapter_config.json, tokenizer.json, *.safetensors and their index), by
// name and content. -1 when the folder has none of them or one cannot be read.
int folder_sha256(const char *dir, char hex[65], Err *e);
