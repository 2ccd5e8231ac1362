// Dropout keep-masks as bits: element i is kept when its 16-bit draw is at least
// p * 65536, the draw coming from a counter-based hash of (key, i). The same key gives
// the same mask, so the backward pass (or a recomputed forward) needs no stored draws.
// Each 32-bit hash gives the draws of 2 elements: the drop probability is quantised to
// 1/65536. The hash and the bit layout are simd_loops.h's (dropout_byte); the vector tables
// hash 8 or 16 element pairs at once, to the same bits.
#include <omp.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"

void dropout_mask(uint8_t *bits, size_t n, float pdrop, uint64_t key) {
    const SimdKernels *sk = simd();
    uint32_t thr = (uint32_t)(pdrop * 65536.0f + 0.5f), k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    size_t nb = (n + 7) / 8;
#pragma omp parallel if (n > 65536)
    {
        // each thread a run of whole 4-byte words (the vector tables' step)
        size_t nw = (nb + 3) / 4, t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
        size_t b0 = nw * t / T * 4, b1 = nw * (t + 1) / T * 4;
        sk->dropout_bits(bits, b0 < nb ? b0 : nb, b1 < nb ? b1 : nb, thr, k0, k1);
    }
}
