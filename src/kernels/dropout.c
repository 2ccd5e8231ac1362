// Dropout keep-masks as bits: element i is kept when its 16-bit draw is at least
// p * 65536, the draw coming from a counter-based hash of (key, i). The same key gives
// the same mask, so the backward pass (or a recomputed forward) needs no stored draws.
// Each 32-bit hash gives the draws of 2 elements: the drop probability is quantised to
// 1/65536.
#include "kernels/kernels.h"

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16; h *= 0x85ebca6bu;
    h ^= h >> 13; h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

void dropout_mask(uint8_t *bits, size_t n, float pdrop, uint64_t key) {
    uint32_t thr = (uint32_t)(pdrop * 65536.0f + 0.5f), k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    size_t nb = (n + 7) / 8;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t byte = 0; byte < nb; byte++) {
        uint32_t b = 0;
        for (uint32_t j = 0; j < 8; j += 2) {
            uint32_t h = fmix32(((uint32_t)(byte * 4 + j / 2) ^ k0) * 0x9e3779b1u + k1);
            b |= (uint32_t)((h & 0xffff) >= thr) << j | (uint32_t)((h >> 16) >= thr) << (j + 1);
        }
        bits[byte] = (uint8_t)b;
    }
}
