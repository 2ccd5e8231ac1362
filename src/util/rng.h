// Deterministic pseudo-random numbers: xoshiro256** seeded through splitmix64.
// Same seed, same stream, on every machine (no libc rand, no global state).
#pragma once
#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

// Expands one 64-bit seed into the 256-bit state (splitmix64), as the xoshiro authors advise.
void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
// Unbiased integer in [0, n); n must be > 0.
uint64_t rng_below(Rng *r, uint64_t n);
// Double in [0, 1) with 53 random bits.
double rng_uniform(Rng *r);
// Standard normal N(0, 1) by Box-Muller (one value per call; the second is not cached,
// so the state stays exactly the four words above).
float rng_normal(Rng *r);
// Fisher-Yates shuffle of a[0..n) in place.
void rng_shuffle_int(Rng *r, int *a, int n);

// Stateless 64-bit mixer (the splitmix64 finaliser): hash64(x) != hash64(y) for x != y.
// Inline: it sits in the dropout-mask loop of every training step.
static inline uint64_t hash64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
