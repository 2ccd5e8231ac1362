// Pieces every table of simd.h shares: a loop the compiler vectorises well by itself, the
// dropout-mask reader and the dropout hash (the definition every table's masks match, and
// the vector tables' tails). Each simd_*.c includes this after its target pragma, so each
// table gets these at its own vector width.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// 16 mask bits starting at bit `off` (bits at or past `nbits` read as 0). Mask layout: bit
// k of `bits` is bit (k & 7) of byte k >> 3.
static inline uint32_t mask_bits16(const uint8_t *bits, size_t off, size_t nbits) {
    size_t byte = off >> 3, nbytes = (nbits + 7) >> 3;
    uint32_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (byte + 4 <= nbytes) {  // all but a row's last bits: one 32-bit load, no tail to clear
        memcpy(&v, bits + byte, 4);
        return (v >> (off & 7)) & 0xffff;
    }
#endif
    for (int b = 0; b < 3 && byte + b < nbytes; b++) v |= (uint32_t)bits[byte + b] << (8 * b);
    v = (v >> (off & 7)) & 0xffff;
    if (nbits - off < 16) v &= (1u << (nbits - off)) - 1;
    return v;
}

static float loop_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) s += a[j] * b[j];
    return s;
}

// ---- dropout keep-bits (dropout.c): the draws of bits 2q and 2q + 1 of byte b are the low
// and high halves of the hash of element pair i = 4b + q; a bit is kept when its 16-bit draw
// is at least thr.
static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16; h *= 0x85ebca6bu;
    h ^= h >> 13; h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static inline uint32_t pair_hash(uint32_t i, uint32_t k0, uint32_t k1) { return fmix32((i ^ k0) * 0x9e3779b1u + k1); }

static inline uint8_t dropout_byte(size_t byte, uint32_t thr, uint32_t k0, uint32_t k1) {
    uint32_t b = 0;
    for (uint32_t q = 0; q < 4; q++) {
        uint32_t h = pair_hash((uint32_t)(byte * 4 + q), k0, k1);
        b |= (uint32_t)((h & 0xffff) >= thr) << 2 * q | (uint32_t)((h >> 16) >= thr) << (2 * q + 1);
    }
    return (uint8_t)b;
}

// bit q of x to bit 2q (x < 2^16)
static inline uint32_t spread16(uint32_t x) {
    x = (x | x << 8) & 0x00ff00ffu;
    x = (x | x << 4) & 0x0f0f0f0fu;
    x = (x | x << 2) & 0x33333333u;
    return (x | x << 1) & 0x55555555u;
}
