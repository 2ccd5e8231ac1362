// The matrix-vector product of generation (simd.h's matvec_rows) in 256-bit registers, for
// the AVX2 and AVX-512 tables alike: each includes this after its target pragma and
// defines MV_TILE_R and MV_TILE_C first (the tile: weight rows x input rows summed at
// once; with AVX-512's 32 registers the tile is larger). docs/performance.md has the
// figures behind the choices.
//
// Every (weight row, input row) pair is summed by the same operations in the same order,
// whatever the tile it falls in: two accumulators of 8 lanes, over blocks of 16 columns
// (a0 the first 8, a1 the last 8), then a last block of 8 into a0 and the last few into
// a1, then one fixed horizontal sum. So a row gives the same bits alone (one sequence)
// and among 16 (batched decoding), and both tables give the same bits.
//
// One input row (single-sequence decoding) is memory-bound: one weight row at a time,
// front to back (a single stream read faster than several side by side on AMD's Zen).
// Several input rows are compute-bound: a tile of R weight rows against C input rows keeps
// 2 R C accumulators in registers and loads each 8-wide weight slice once for C inputs and
// each input slice once for R weight rows; the tile's weight rows stay in L1 while the
// input rows go by in groups of C. bf16 weights are widened in registers.
#pragma once
#include <immintrin.h>
#include <string.h>

#if !defined(MV_TILE_R) || !defined(MV_TILE_C) || MV_TILE_C > 4
#error "define MV_TILE_R and MV_TILE_C (at most 4) before including simd_matvec.h"
#endif
#ifndef MV_TILE_MIN_N
#define MV_TILE_MIN_N 2  // input rows from which weight rows go MV_TILE_R at a time
#endif

// lanes < left set (an all-ones lane selects, as maskload wants)
static inline __m256i mv_tail(int left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 weights from column j (left < 8: the last few, zero-padded)
static inline __attribute__((always_inline)) __m256 mv_load_w(const char *w, int bf16, int j, int left) {
    if (left >= 8) {
        if (!bf16) return _mm256_loadu_ps((const float *)w + j);
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + j)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    if (!bf16) return _mm256_maskload_ps((const float *)w + j, mv_tail(left));
    uint16_t buf[8] = {0};  // no 16-bit masked load in AVX2: the last few through a zeroed copy
    memcpy(buf, (const uint16_t *)w + j, (size_t)left * 2);
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)buf));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static inline float mv_hsum(__m256 a0, __m256 a1) {
    __m256 a = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// Weights for the next tile, fetched while this one computes: with C input rows a tile is
// compute-bound, and with G groups of inputs per tile only the first group would read
// memory; so each group's pass prefetches its 1/G share of the next tile's rows, a few
// lines per step of 16 columns.
typedef struct {
    const char *at;  // next line to fetch
    int left;        // lines still to fetch in this pass
    int per_step;    // lines per step
} MvPrefetch;

static inline __attribute__((always_inline)) void mv_prefetch(MvPrefetch *pf) {
    for (int k = 0; k < pf->per_step && pf->left > 0; k++, pf->left--, pf->at += 64) _mm_prefetch(pf->at, _MM_HINT_T0);
}

// The share of pass g of G (of `steps` steps) of the block of `bytes` at next.
static inline MvPrefetch mv_prefetch_plan(const char *next, size_t bytes, int g, int G, int steps) {
    size_t lines = (bytes + 63) / 64, from = lines * g / G, to = lines * (g + 1) / G;
    if (steps < 1) steps = 1;
    MvPrefetch pf = {next + from * 64, (int)(to - from), (int)((to - from + steps - 1) / steps)};
    return pf;
}

// d[r * C + c] = weight row r . input row c, for R rows starting at w (stride IN elements)
// and C rows starting at x (stride IN floats). R and C are constants after inlining, so
// the accumulators live in registers.
static inline __attribute__((always_inline)) void mv_tile(float *d, const char *w, int bf16, int IN, const float *x,
                                                          int R, int C, MvPrefetch pf) {
    size_t ld = (size_t)IN * (bf16 ? 2 : 4);
    __m256 a0[MV_TILE_R][MV_TILE_C], a1[MV_TILE_R][MV_TILE_C], wv[MV_TILE_R];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) a0[r][c] = a1[r][c] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 16 <= IN; j += 16) {
        mv_prefetch(&pf);
        for (int r = 0; r < R; r++) wv[r] = mv_load_w(w + r * ld, bf16, j, 8);
        for (int c = 0; c < C; c++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)c * IN + j);
            for (int r = 0; r < R; r++) a0[r][c] = _mm256_fmadd_ps(wv[r], xv, a0[r][c]);
        }
        for (int r = 0; r < R; r++) wv[r] = mv_load_w(w + r * ld, bf16, j + 8, 8);
        for (int c = 0; c < C; c++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)c * IN + j + 8);
            for (int r = 0; r < R; r++) a1[r][c] = _mm256_fmadd_ps(wv[r], xv, a1[r][c]);
        }
    }
    if (j + 8 <= IN) {
        for (int r = 0; r < R; r++) wv[r] = mv_load_w(w + r * ld, bf16, j, 8);
        for (int c = 0; c < C; c++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)c * IN + j);
            for (int r = 0; r < R; r++) a0[r][c] = _mm256_fmadd_ps(wv[r], xv, a0[r][c]);
        }
        j += 8;
    }
    if (j < IN) {
        for (int r = 0; r < R; r++) wv[r] = mv_load_w(w + r * ld, bf16, j, IN - j);
        for (int c = 0; c < C; c++) {
            __m256 xv = _mm256_maskload_ps(x + (size_t)c * IN + j, mv_tail(IN - j));
            for (int r = 0; r < R; r++) a1[r][c] = _mm256_fmadd_ps(wv[r], xv, a1[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) d[r * C + c] = mv_hsum(a0[r][c], a1[r][c]);
}

// out rows [r, r + R) for input rows [i, i + C): the tile, then bias and accumulate
static inline __attribute__((always_inline)) void mv_block(float *out, const float *in, const Mat *W,
                                                           const float *bias, int accumulate, int r, int i, int R,
                                                           int C, int bf16, MvPrefetch pf) {
    int OUT = W->rows, IN = W->cols;
    float d[MV_TILE_R * MV_TILE_C];
    mv_tile(d, (const char *)W->data + (size_t)r * IN * (bf16 ? 2 : 4), bf16, IN, in + (size_t)i * IN, R, C, pf);
    for (int rr = 0; rr < R; rr++)
        for (int c = 0; c < C; c++) {
            float *o = out + (size_t)(i + c) * OUT + r + rr, v = d[rr * C + c] + (bias ? bias[r + rr] : 0.0f);
            *o = accumulate ? *o + v : v;
        }
}

// One instance per (rows, inputs, weight type): constant shapes for mv_block.
#define MV_CASE(R, C, B) \
    case C: mv_block(out, in, W, bias, accumulate, r, i, R, C, B, pf); break;
#if MV_TILE_C >= 4
#define MV_CASE_4(R, B) MV_CASE(R, 4, B)
#else
#define MV_CASE_4(R, B)
#endif
#define MV_SWITCH(R, B)                                                            \
    switch (C) {                                                                   \
        MV_CASE(R, 1, B) MV_CASE(R, 2, B) MV_CASE(R, 3, B) MV_CASE_4(R, B) default : break; \
    }

static void mv_block_any(float *out, const float *in, const Mat *W, const float *bias, int accumulate, int r, int i,
                         int R, int C, MvPrefetch pf) {
    int bf = W->type == MAT_BF16;
    if (R == MV_TILE_R) {
        if (bf) MV_SWITCH(MV_TILE_R, 1) else MV_SWITCH(MV_TILE_R, 0)
    } else {
        if (bf) MV_SWITCH(1, 1) else MV_SWITCH(1, 0)
    }
}
#undef MV_SWITCH
#undef MV_CASE_4
#undef MV_CASE

// out rows [r0, r1) of out (N, OUT) = in (N, IN) @ W^T (+ bias) (+ out if accumulate).
// Input rows in groups of at most MV_TILE_C, sizes as even as possible (16 = 4 x 4, or
// 3 3 3 3 2 2); weight rows MV_TILE_R at a time (one at a time for a single input row),
// the last few one by one.
static void matvec_rows(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate, int r0,
                        int r1) {
    if (N < 1) return;
    int groups = (N + MV_TILE_C - 1) / MV_TILE_C, base = N / groups, extra = N % groups, IN = W->cols;
    int R = N >= MV_TILE_MIN_N ? MV_TILE_R : 1, r = r0;
    size_t row = (size_t)IN * (W->type == MAT_BF16 ? 2 : 4);
    MvPrefetch none = {NULL, 0, 0};
    for (; r + R <= r1; r += R) {
        // one input row streams by itself (the hardware prefetcher follows one stream best)
        int ahead = R > 1 && r + 2 * R <= r1;
        for (int g = 0, i = 0; g < groups; i += base + (g < extra), g++) {
            MvPrefetch pf =
                ahead ? mv_prefetch_plan((const char *)W->data + (r + R) * row, R * row, g, groups, IN / 16) : none;
            mv_block_any(out, in, W, bias, accumulate, r, i, R, base + (g < extra), pf);
        }
    }
    for (; r < r1; r++)
        for (int g = 0, i = 0; g < groups; i += base + (g < extra), g++)
            mv_block_any(out, in, W, bias, accumulate, r, i, 1, base + (g < extra), none);
}
