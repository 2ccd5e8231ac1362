// Which instruction set the vector kernels use (simd.h): the best this CPU runs, or the
// one ANTIBODY_ISA names (avx512bf16, avx512, avx2, scalar) when the CPU runs it. Decided once, on
// first use; isa_force changes it (tests).
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"

static const char *const names[ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512bf16"};
static atomic_int active = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char env_problem[160];

const char *isa_name(KernelIsa isa) { return (unsigned)isa < ISA_COUNT ? names[isa] : "?"; }

int isa_supported(KernelIsa isa) {
    switch (isa) {
    case ISA_SCALAR: return 1;
#if defined(__x86_64__)
    // libgcc's cpu detection also checks that the OS saves the ymm/zmm registers (XCR0)
    case ISA_AVX2: __builtin_cpu_init(); return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
    case ISA_AVX512BF16: return isa_supported(ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
#endif
    default: return 0;
    }
}

static KernelIsa best(void) {
    for (int i = ISA_COUNT - 1; i > 0; i--)
        if (isa_supported((KernelIsa)i)) return (KernelIsa)i;
    return ISA_SCALAR;
}

static void choose(void) {
    KernelIsa isa = best();
    const char *env = getenv("ANTIBODY_ISA");
    if (env && *env) {
        int want = -1;
        for (int i = 0; i < ISA_COUNT; i++)
            if (!strcmp(env, names[i])) want = i;
        if (want < 0)
            snprintf(env_problem, sizeof env_problem, "ANTIBODY_ISA=%.40s is not one of avx512bf16, avx512, avx2, scalar",
                     env);
        else if (!isa_supported((KernelIsa)want))
            snprintf(env_problem, sizeof env_problem, "ANTIBODY_ISA=%s: this CPU does not support it (best: %s)", env,
                     names[isa]);
        else isa = (KernelIsa)want;
    }
    atomic_store(&active, (int)isa);
}

KernelIsa isa_active(void) {
    pthread_once(&once, choose);
    return (KernelIsa)atomic_load_explicit(&active, memory_order_relaxed);
}

const char *isa_env_problem(void) {
    pthread_once(&once, choose);
    return env_problem[0] ? env_problem : NULL;
}

int isa_force(KernelIsa isa) {
    if ((unsigned)isa >= ISA_COUNT || !isa_supported(isa)) return -1;
    pthread_once(&once, choose);
    atomic_store(&active, (int)isa);
    return 0;
}

const SimdKernels *simd(void) {
    switch (isa_active()) {
#if defined(__x86_64__)
    case ISA_AVX512BF16: return &simd_avx512bf16;
    case ISA_AVX512: return &simd_avx512;
    case ISA_AVX2: return &simd_avx2;
#endif
    default: return &simd_scalar;
    }
}
