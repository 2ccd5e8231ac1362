// SHA-256 (FIPS 180-4), for the content hashes of inputs that fingerprints and provenance
// record (docs/pipeline.md, "Fingerprints"): the same digest `sha256sum` prints.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct {
    uint32_t h[8];
    uint64_t len;       // bytes hashed so far
    uint8_t buf[64];
    size_t n;           // bytes waiting in buf
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
// Writes 64 lowercase hex digits and a NUL into hex.
void sha256_hex(Sha256 *s, char hex[65]);
// The digest of a whole file, read in blocks; -1 (file named in e) when it cannot be read.
int sha256_file(const char *path, char hex[65], Err *e);
