#include "tokenizer/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

uint64_t strmap_hash(const char *key, size_t len) {
    // FNV-1a over 8-byte words then bytes, with a final avalanche (splitmix64).
    uint64_t h = 0xcbf29ce484222325ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < len; i++) h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27; h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h ? h : 1;
}

void strmap_init(StrMap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2 + 1);
    m->hashes = xcalloc(m->cap, sizeof *m->hashes);
    m->offs = xmalloc(m->cap * sizeof *m->offs);
    m->lens = xmalloc(m->cap * sizeof *m->lens);
    m->vals = xmalloc(m->cap * sizeof *m->vals);
    m->arena_cap = 256;
    m->arena = xmalloc(m->arena_cap);
}

void strmap_free(StrMap *m) {
    free(m->hashes); free(m->offs); free(m->lens); free(m->vals); free(m->arena);
    memset(m, 0, sizeof *m);
}

void strmap_clear(StrMap *m) {
    memset(m->hashes, 0, m->cap * sizeof *m->hashes);
    m->count = 0;
    m->arena_len = 0;
}

static size_t find_slot(const StrMap *m, uint64_t h, const char *key, size_t len) {
    size_t mask = m->cap - 1, i = h & mask;
    while (m->hashes[i]) {
        if (m->hashes[i] == h && m->lens[i] == len && memcmp(m->arena + m->offs[i], key, len) == 0) return i;
        i = (i + 1) & mask;
    }
    return i;
}

static void grow(StrMap *m) {
    StrMap old = *m;
    m->cap *= 2;
    m->hashes = xcalloc(m->cap, sizeof *m->hashes);
    m->offs = xmalloc(m->cap * sizeof *m->offs);
    m->lens = xmalloc(m->cap * sizeof *m->lens);
    m->vals = xmalloc(m->cap * sizeof *m->vals);
    size_t mask = m->cap - 1;
    for (size_t j = 0; j < old.cap; j++) {
        if (!old.hashes[j]) continue;
        size_t i = old.hashes[j] & mask;
        while (m->hashes[i]) i = (i + 1) & mask;
        m->hashes[i] = old.hashes[j];
        m->offs[i] = old.offs[j];
        m->lens[i] = old.lens[j];
        m->vals[i] = old.vals[j];
    }
    free(old.hashes); free(old.offs); free(old.lens); free(old.vals);
}

int strmap_put(StrMap *m, const char *key, size_t len, int val) {
    uint64_t h = strmap_hash(key, len);
    size_t i = find_slot(m, h, key, len);
    if (m->hashes[i]) {
        int prev = m->vals[i];
        m->vals[i] = val;
        return prev;
    }
    if (m->arena_len + len > m->arena_cap) {
        while (m->arena_len + len > m->arena_cap) m->arena_cap *= 2;
        m->arena = xrealloc(m->arena, m->arena_cap);
    }
    memcpy(m->arena + m->arena_len, key, len);
    m->hashes[i] = h;
    m->offs[i] = (uint32_t)m->arena_len;
    m->lens[i] = (uint32_t)len;
    m->vals[i] = val;
    m->arena_len += len;
    if (++m->count * 2 > m->cap) grow(m);
    return -1;
}

int strmap_get(const StrMap *m, const char *key, size_t len) {
    uint64_t h = strmap_hash(key, len);
    size_t i = find_slot(m, h, key, len);
    return m->hashes[i] ? m->vals[i] : -1;
}

static uint64_t pair_key(int left, int right) { return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right; }

static size_t pair_slot(uint64_t k, size_t cap) {
    uint64_t h = k * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

void pairmap_init(PairMap *m, size_t expected) {
    m->cap = pow2_at_least(expected * 2 + 1);
    m->count = 0;
    m->keys = xmalloc(m->cap * sizeof *m->keys);
    memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    m->ranks = xmalloc(m->cap * sizeof *m->ranks);
    m->ids = xmalloc(m->cap * sizeof *m->ids);
}

void pairmap_free(PairMap *m) {
    free(m->keys); free(m->ranks); free(m->ids);
    memset(m, 0, sizeof *m);
}

void pairmap_put(PairMap *m, int left, int right, int rank, int id) {
    if ((m->count + 1) * 2 > m->cap) {
        PairMap old = *m;
        pairmap_init(m, old.cap);
        for (size_t j = 0; j < old.cap; j++)
            if (old.keys[j] != UINT64_MAX) pairmap_put(m, (int)(old.keys[j] >> 32), (int)(uint32_t)old.keys[j], old.ranks[j], old.ids[j]);
        pairmap_free(&old);
    }
    uint64_t k = pair_key(left, right);
    size_t i = pair_slot(k, m->cap);
    while (m->keys[i] != UINT64_MAX && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == UINT64_MAX) m->count++;
    m->keys[i] = k;
    m->ranks[i] = rank;
    m->ids[i] = id;
}

int pairmap_get(const PairMap *m, int left, int right, int *rank, int *id) {
    uint64_t k = pair_key(left, right);
    size_t i = pair_slot(k, m->cap);
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == k) {
            *rank = m->ranks[i];
            *id = m->ids[i];
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}
