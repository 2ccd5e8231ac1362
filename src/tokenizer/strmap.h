// Open-addressing hash tables for the tokenizer: byte strings -> int (vocab,
// word cache) and 64-bit keys -> (rank, id) (BPE merges). Linear probing,
// power-of-two capacity, grown at 50% load; keys are copied into an arena.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *hashes;   // 0 = empty slot (real hashes are forced non-zero)
    uint32_t *offs;     // key offset in arena
    uint32_t *lens;     // key length
    int *vals;
    size_t cap, count;
    char *arena;
    size_t arena_len, arena_cap;
} StrMap;

void strmap_init(StrMap *m, size_t expected);
void strmap_free(StrMap *m);
// Inserts or overwrites; returns the previous value or -1 if the key was new.
int strmap_put(StrMap *m, const char *key, size_t len, int val);
// Returns the value or -1.
int strmap_get(const StrMap *m, const char *key, size_t len);
void strmap_clear(StrMap *m);
uint64_t strmap_hash(const char *key, size_t len);

typedef struct {
    uint64_t *keys;     // UINT64_MAX = empty
    int *ranks;
    int *ids;
    size_t cap, count;
} PairMap;

void pairmap_init(PairMap *m, size_t expected);
void pairmap_free(PairMap *m);
void pairmap_put(PairMap *m, int left, int right, int rank, int id);
// Returns 1 and fills rank/id when the pair is a merge, else 0.
int pairmap_get(const PairMap *m, int left, int right, int *rank, int *id);
