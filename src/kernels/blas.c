// The SGEMM behind every matrix product: oneDNN by default, OpenBLAS on request.
//
// oneDNN (Debian's libdnnl2) JIT-compiles its GEMM for the CPU it runs on and was 20-25%
// faster per training step than OpenBLAS here (bench/results.md: the same step, both
// backends, one run). ANTIBODY_BLAS=openblas (or a path to a libopenblas) selects
// OpenBLAS instead, for comparison.
//
// OpenBLAS is loaded at run time: it picks its kernels once, when it is loaded, from
// OPENBLAS_CORETYPE or its own CPU detection, and Debian 12's 0.3.21 does not know the
// newest Xeons: it falls back to its generic "Prescott" kernels, 4-6x slower (measured
// 16-30 GFLOP/s against 66-190 with the SkylakeX kernels on the same 2 cores). Loading
// it ourselves lets the program choose the kernels first when the user has not: SkylakeX
// on any CPU with AVX-512, Haswell with AVX2 (blas_openblas_coretype; the command line sets
// OPENBLAS_CORETYPE to it before the first SGEMM, as the library changes no environment). A
// user's OPENBLAS_CORETYPE always wins.
// Both libraries are OpenMP builds, so their threads are our OpenMP threads instead
// of a second pool competing with them for the same cores.
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/err.h"

typedef void (*SgemmFn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                        int);
static struct {
    SgemmFn sgemm;
    char *(*corename)(void);
    const char *path;
    int openblas;  // 0: oneDNN
    char problem[512];  // OpenBLAS was asked for and could not be loaded: oneDNN runs instead
} B;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    const char *env = getenv("ANTIBODY_BLAS");  // "openblas" or a path to another OpenBLAS build
    if (!env || !*env || !strcmp(env, "onednn")) return;
    static const char *const candidates[] = {
        "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "libopenblasp.so.0",
        "libopenblas.so.0",
        "libopenblas.so",
    };
    void *h = NULL;
    if (strcmp(env, "openblas")) h = dlopen(env, RTLD_NOW | RTLD_LOCAL), B.path = env;  // that library or none
    else for (size_t i = 0; !h && i < sizeof candidates / sizeof *candidates; i++)
        if ((h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL))) B.path = candidates[i];
    if (!h || !(B.sgemm = (SgemmFn)dlsym(h, "cblas_sgemm"))) {
        // OpenBLAS was asked for (ANTIBODY_BLAS) and is not installed: blas_init reports it;
        // a program that does not ask runs oneDNN, and blas_name (the provenance) says so.
        const char *why = dlerror();
        snprintf(B.problem, sizeof B.problem, "ANTIBODY_BLAS=%.100s: cannot load OpenBLAS (install libopenblas0-openmp): %.300s",
                 env, why ? why : "no cblas_sgemm");
        return;
    }
    B.openblas = 1;
    B.corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
}

int blas_init(Err *e) {
    pthread_once(&once, load);
    return B.problem[0] ? err_set(e, "%s", B.problem) : 0;
}

const char *blas_openblas_coretype(void) {
    const char *env = getenv("ANTIBODY_BLAS");
    if (!env || !*env || !strcmp(env, "onednn") || getenv("OPENBLAS_CORETYPE")) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2")) return "Haswell";
    return NULL;
}

#ifdef ANTIBODY_GEMM_PROFILE
// Built with -DANTIBODY_GEMM_PROFILE (docs/performance.md): wall time and GFLOP/s of every
// SGEMM shape, for blas_profile_text. Calls made inside a parallel region (attention, one
// head per thread) are marked: their times add up thread time, not wall time.
typedef struct { int ta, tb, M, N, K, par; long calls; double s; } Prof;
static Prof prof[256];
static int n_prof;
static void profile_add(int ta, int tb, int M, int N, int K, int par, double s) {
#pragma omp critical(gemm_profile)
    {
        int i = 0;
        while (i < n_prof && !(prof[i].ta == ta && prof[i].tb == tb && prof[i].M == M && prof[i].N == N &&
                               prof[i].K == K && prof[i].par == par))
            i++;
        if (i == n_prof && n_prof < 256) prof[n_prof++] = (Prof){ta, tb, M, N, K, par, 0, 0.0};
        if (i < n_prof) prof[i].calls++, prof[i].s += s;
    }
}
#endif

char *blas_profile_text(void) {
#ifdef ANTIBODY_GEMM_PROFILE
    size_t cap = 64 + 80 * (size_t)n_prof, n = 0;
    char *t = xmalloc(cap);
    n += (size_t)snprintf(t, cap, "gemm profile: op  M  N  K  in-parallel  calls  seconds  GFLOP/s\n");
    for (int i = 0; i < n_prof && n < cap; i++) {
        Prof *p = &prof[i];
        n += (size_t)snprintf(t + n, cap - n, "gemm %c%c %6d %6d %6d %d %7ld %8.3f %7.1f\n", p->ta ? 'T' : 'N',
                              p->tb ? 'T' : 'N', p->M, p->N, p->K, p->par, p->calls, p->s,
                              2.0 * p->M * p->N * (double)p->K * p->calls / p->s / 1e9);
    }
    return t;
#else
    return NULL;
#endif
}

void blas_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *Bm,
                int ldb, float beta, float *C, int ldc) {
    pthread_once(&once, load);
#ifdef ANTIBODY_GEMM_PROFILE
    double t0 = omp_get_wtime();
#endif
    if (!B.openblas)  // row-major, as our buffers are
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
    else  // CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112
        B.sgemm(101, trans_a ? 112 : 111, trans_b ? 112 : 111, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
#ifdef ANTIBODY_GEMM_PROFILE
    profile_add(trans_a, trans_b, M, N, K, omp_in_parallel(), omp_get_wtime() - t0);
#endif
}

const char *blas_name(void) {
    pthread_once(&once, load);
    static char buf[256];
    if (!B.openblas) {
        const dnnl_version_t *v = dnnl_version();
        snprintf(buf, sizeof buf, "oneDNN %d.%d.%d sgemm (%s)%s", v->major, v->minor, v->patch,
                 v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "not OpenMP",
                 B.problem[0] ? "; OpenBLAS was asked for and could not be loaded" : "");
        return buf;
    }
    snprintf(buf, sizeof buf, "OpenBLAS %s (%s)", B.corename ? B.corename() : "?", B.path);
    return buf;
}

int omp_threads(void) { return omp_get_max_threads(); }
