// The matrix-vector product of inference for the avx512bf16 table (matvec_rows_bf16dot of
// simd_avx512.c, on CPUs with AVX512-BF16; matmul_forward_infer: generation's rows, never
// training's): bf16 weights meet bf16 activations in dot products (vdpbf16ps: 32
// products summed pairwise into 16 fp32 lanes per instruction). On AMD Zen 4 that is twice
// the products per cycle of the fp32 FMA (docs/performance.md), and batched decoding with
// bf16 weights is bound by exactly that; no widening either. The activations are rounded to
// bf16 (nearest even) once per call, as llama.cpp and PyTorch's bf16 models do; the products
// are summed in fp32. f32 weights take the AVX-512 table's loop (simd_matvec.h, the same bits).
// (On an Intel Sapphire Rapids this instruction ran at half the FMA's FLOP rate; there the
// avx512 kernels would be the faster choice: ANTIBODY_ISA=avx512.)
//
// Every (weight row, input row) pair is summed by the same operations whatever the tile: two
// accumulators over alternate blocks of 32 columns (the last, partial block masked), then one
// fixed horizontal sum; so a row alone and among 16 agree bit for bit. Tiles of 3 weight rows
// x 4 input rows (24 accumulators), the next tile prefetched across the groups' passes, as in
// simd_matvec.h.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>

#include "kernels/simd.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")
#endif

#define MV_TILE_R 3
#define MV_TILE_C 4
#include "kernels/simd_matvec.h"

static inline __m512bh dt_bh(__m512i v) { return (__m512bh)v; }

// 32 bf16 weights from w (left < 32: the first `left`, the rest zero)
static inline __m512i dt_w(const uint16_t *w, int left) {
    if (left >= 32) return _mm512_loadu_si512(w);
    return _mm512_maskz_loadu_epi16((__mmask32)((1u << left) - 1), w);
}

// d[r * C + c] = weight row r . bf16 input row c; weight rows of IN elements from w, input rows
// of ldx (a multiple of 32, zero-padded) from x.
static inline __attribute__((always_inline)) void dt_tile(float *d, const uint16_t *w, int IN, const uint16_t *x,
                                                          int ldx, int R, int C, MvPrefetch pf) {
    __m512 a0[MV_TILE_R][MV_TILE_C], a1[MV_TILE_R][MV_TILE_C];
    __m512i wv[MV_TILE_R];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) a0[r][c] = a1[r][c] = _mm512_setzero_ps();
    int nfull = IN / 32, b = 0;
    for (; b + 2 <= nfull; b += 2) {
        mv_prefetch(&pf);
        for (int r = 0; r < R; r++) wv[r] = _mm512_loadu_si512(w + (size_t)r * IN + 32 * b);
        for (int c = 0; c < C; c++) {
            __m512bh xv = dt_bh(_mm512_loadu_si512(x + (size_t)c * ldx + 32 * b));
            for (int r = 0; r < R; r++) a0[r][c] = _mm512_dpbf16_ps(a0[r][c], dt_bh(wv[r]), xv);
        }
        for (int r = 0; r < R; r++) wv[r] = _mm512_loadu_si512(w + (size_t)r * IN + 32 * b + 32);
        for (int c = 0; c < C; c++) {
            __m512bh xv = dt_bh(_mm512_loadu_si512(x + (size_t)c * ldx + 32 * b + 32));
            for (int r = 0; r < R; r++) a1[r][c] = _mm512_dpbf16_ps(a1[r][c], dt_bh(wv[r]), xv);
        }
    }
    // the last full block (odd count) into a0, then the partial one into the next in turn
    for (; b * 32 < IN; b++) {
        for (int r = 0; r < R; r++) wv[r] = dt_w(w + (size_t)r * IN + 32 * b, IN - 32 * b);
        for (int c = 0; c < C; c++) {
            __m512bh xv = dt_bh(_mm512_loadu_si512(x + (size_t)c * ldx + 32 * b));
            for (int r = 0; r < R; r++) {
                if (b & 1) a1[r][c] = _mm512_dpbf16_ps(a1[r][c], dt_bh(wv[r]), xv);
                else a0[r][c] = _mm512_dpbf16_ps(a0[r][c], dt_bh(wv[r]), xv);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) d[r * C + c] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r][c], a1[r][c]));
}

static inline __attribute__((always_inline)) void dt_block(float *out, const uint16_t *x, int ldx, const Mat *W,
                                                           const float *bias, int accumulate, int r, int i, int R,
                                                           int C, MvPrefetch pf) {
    int OUT = W->rows, IN = W->cols;
    float d[MV_TILE_R * MV_TILE_C];
    dt_tile(d, (const uint16_t *)W->data + (size_t)r * IN, IN, x + (size_t)i * ldx, ldx, R, C, pf);
    for (int rr = 0; rr < R; rr++)
        for (int c = 0; c < C; c++) {
            float *o = out + (size_t)(i + c) * OUT + r + rr, v = d[rr * C + c] + (bias ? bias[r + rr] : 0.0f);
            *o = accumulate ? *o + v : v;
        }
}

static void dt_block_any(float *out, const uint16_t *x, int ldx, const Mat *W, const float *bias, int accumulate,
                         int r, int i, int R, int C, MvPrefetch pf) {
#define DT_CASE(R, C) \
    case C: dt_block(out, x, ldx, W, bias, accumulate, r, i, R, C, pf); break;
    if (R == MV_TILE_R) {
        switch (C) { DT_CASE(MV_TILE_R, 1) DT_CASE(MV_TILE_R, 2) DT_CASE(MV_TILE_R, 3) DT_CASE(MV_TILE_R, 4) }
    } else {
        switch (C) { DT_CASE(1, 1) DT_CASE(1, 2) DT_CASE(1, 3) DT_CASE(1, 4) }
    }
#undef DT_CASE
}

// simd.h's matvec_rows_bf16dot for this table: the input rows rounded to bf16 into a zero-padded copy,
// then the tiles as simd_matvec.h drives them.
void simd_avx512bf16_matvec_rows(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate,
                                 int r0, int r1) {
    if (W->type != MAT_BF16) {
        matvec_rows(out, in, W, bias, N, accumulate, r0, r1);
        return;
    }
    if (N < 1) return;
    int IN = W->cols, ldx = (IN + 31) / 32 * 32;
    uint16_t *x = xmalloc((size_t)N * ldx * sizeof(uint16_t));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < ldx; j += 32) {
            int left = IN - j;
            __mmask16 lo = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            __mmask16 hi = left >= 32 ? 0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            const float *xi = in + (size_t)i * IN + j;
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, xi + 16), _mm512_maskz_loadu_ps(lo, xi));
            _mm512_storeu_si512(x + (size_t)i * ldx + j, (__m512i)v);
        }
    int groups = (N + MV_TILE_C - 1) / MV_TILE_C, base = N / groups, extra = N % groups;
    int R = N >= MV_TILE_MIN_N ? MV_TILE_R : 1, r = r0;
    size_t row = (size_t)IN * sizeof(uint16_t);
    MvPrefetch none = {NULL, 0, 0};
    for (; r + R <= r1; r += R) {
        int ahead = R > 1 && r + 2 * R <= r1;
        for (int g = 0, i = 0; g < groups; i += base + (g < extra), g++) {
            MvPrefetch pf =
                ahead ? mv_prefetch_plan((const char *)W->data + (r + R) * row, R * row, g, groups, IN / 64) : none;
            dt_block_any(out, x, ldx, W, bias, accumulate, r, i, R, base + (g < extra), pf);
        }
    }
    for (; r < r1; r++)
        for (int g = 0, i = 0; g < groups; i += base + (g < extra), g++)
            dt_block_any(out, x, ldx, W, bias, accumulate, r, i, 1, base + (g < extra), none);
    free(x);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
