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
//
// Products with the second operand transposed (C = A B^T: every forward projection, the
// LM head's logits; K >= 128) go through oneDNN's matmul primitive instead of its SGEMM where the
// primitive runs its brgemm kernels (AVX-512): measured on a Zen 4, 2 threads, the SGEMM
// does these at 130-180 GFLOP/s (90 with K = 4096) against 175-210 for the primitive
// (docs/performance.md), while the SGEMM does the untransposed products of the backward
// pass at 210. Which path a product takes depends only on its call (transposes, alpha,
// beta, in a parallel region or not) and the CPU, so results are as repeatable as before.
// ANTIBODY_BLAS=onednn-sgemm keeps every product on the SGEMM.
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
    int matmul;    // oneDNN: C = A B^T through the matmul primitive (brgemm kernels on this CPU)
    char problem[512];  // OpenBLAS was asked for and could not be loaded: oneDNN runs instead
} B;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int matmul_runs_brgemm(void);

// ANTIBODY_BLAS: unset, "onednn" (default), "onednn-sgemm", else OpenBLAS ("openblas" or a path)
static int wants_onednn(const char *env) {
    return !env || !*env || !strcmp(env, "onednn") || !strcmp(env, "onednn-sgemm");
}

static void load(void) {
    const char *env = getenv("ANTIBODY_BLAS");
    if (wants_onednn(env)) {
        if (!env || strcmp(env, "onednn-sgemm")) B.matmul = matmul_runs_brgemm();
        return;
    }
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
    if (wants_onednn(env) || getenv("OPENBLAS_CORETYPE")) return NULL;
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

// ---- oneDNN's matmul primitive for C = A B^T -------------------------------------------
// One primitive per call shape, made on first use (0.2-0.5 ms) and kept; a full cache
// replaces its oldest entry, so every eligible product takes the primitive whatever came
// before it (a resumed run computes what the uninterrupted one did). Lookup, creation and
// execution hold one lock: an entry is never replaced while in use.
#define MM_CACHE 128
#define MM_MIN_K 128  // thinner products (LoRA's rank-r ones) run 2-3x faster on the SGEMM
typedef struct {
    int M, N, K, lda, ldb, ldc, accumulate, threads;  // threads: a primitive splits its work for its creator's count
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} MatmulEntry;
static struct {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    MatmulEntry e[MM_CACHE];
    int n, next;  // entries in use; the one to replace when full
    pthread_mutex_t lock;
} MM = {.lock = PTHREAD_MUTEX_INITIALIZER};

static dnnl_primitive_desc_t matmul_desc(int M, int N, int K, int lda, int ldb, int ldc, int accumulate,
                                         dnnl_memory_desc_t *ad, dnnl_memory_desc_t *bd, dnnl_memory_desc_t *cd) {
    dnnl_dims_t as = {M, K}, ast = {lda, 1}, bs = {K, N}, bst = {1, ldb}, cs = {M, N}, cst = {ldc, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_strides(ad, 2, as, dnnl_f32, ast) || dnnl_memory_desc_init_by_strides(bd, 2, bs, dnnl_f32, bst) ||
        dnnl_memory_desc_init_by_strides(cd, 2, cs, dnnl_f32, cst) || dnnl_matmul_desc_init(&md, ad, bd, NULL, cd) ||
        dnnl_primitive_attr_create(&attr))
        return NULL;
    if (accumulate && (dnnl_post_ops_create(&po) || dnnl_post_ops_append_sum(po, 1.0f) ||
                       dnnl_primitive_attr_set_post_ops(attr, po)))
        goto done;
    if (dnnl_primitive_desc_create(&pd, &md, attr, MM.eng, NULL)) pd = NULL;
done:
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

// Whether the primitive runs brgemm kernels here (AVX-512); elsewhere it would run the same
// JIT GEMM as dnnl_sgemm, so the SGEMM stays.
static int matmul_runs_brgemm(void) {
    if (dnnl_engine_create(&MM.eng, dnnl_cpu, 0)) return 0;
    if (dnnl_stream_create(&MM.stream, MM.eng, dnnl_stream_default_flags)) return 0;
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_primitive_desc_t pd = matmul_desc(256, 256, 256, 256, 256, 256, 0, &ad, &bd, &cd);
    const char *impl = NULL;
    int brg = pd && !dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) && impl && !strncmp(impl, "brg", 3);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return brg;
}

static void entry_clear(MatmulEntry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

// The cached entry of this shape, made when missing; NULL when oneDNN cannot make it.
static MatmulEntry *matmul_entry(int M, int N, int K, int lda, int ldb, int ldc, int accumulate) {
    int threads = omp_get_max_threads();
    for (int i = 0; i < MM.n; i++) {
        MatmulEntry *e = &MM.e[i];
        if (e->M == M && e->N == N && e->K == K && e->lda == lda && e->ldb == ldb && e->ldc == ldc &&
            e->accumulate == accumulate && e->threads == threads)
            return e;
    }
    MatmulEntry *e = MM.n < MM_CACHE ? &MM.e[MM.n++] : &MM.e[MM.next++ % MM_CACHE];
    entry_clear(e);
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_primitive_desc_t pd = matmul_desc(M, N, K, lda, ldb, ldc, accumulate, &ad, &bd, &cd);
    int ok = pd && !dnnl_primitive_create(&e->prim, pd) && !dnnl_memory_create(&e->a, &ad, MM.eng, DNNL_MEMORY_NONE) &&
             !dnnl_memory_create(&e->b, &bd, MM.eng, DNNL_MEMORY_NONE) &&
             !dnnl_memory_create(&e->c, &cd, MM.eng, DNNL_MEMORY_NONE);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (!ok) {  // an empty entry (M = 0) that no shape matches
        entry_clear(e);
        return NULL;
    }
    *e = (MatmulEntry){M, N, K, lda, ldb, ldc, accumulate, threads, e->prim, e->a, e->b, e->c};
    return e;
}

// C = A B^T (+ C): 0 when done, -1 when the caller should use the SGEMM.
static int matmul_nt(int M, int N, int K, const float *A, int lda, const float *Bm, int ldb, int accumulate, float *C,
                     int ldc) {
    pthread_mutex_lock(&MM.lock);
    MatmulEntry *e = matmul_entry(M, N, K, lda, ldb, ldc, accumulate);
    dnnl_status_t st = dnnl_runtime_error;
    if (e) {
        dnnl_memory_set_data_handle(e->a, (void *)A);
        dnnl_memory_set_data_handle(e->b, (void *)Bm);
        dnnl_memory_set_data_handle(e->c, C);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
        st = dnnl_primitive_execute(e->prim, MM.stream, 3, args);
        if (st == dnnl_success) st = dnnl_stream_wait(MM.stream);
    }
    pthread_mutex_unlock(&MM.lock);
    return st == dnnl_success ? 0 : -1;
}

void blas_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *Bm,
                int ldb, float beta, float *C, int ldc) {
    pthread_once(&once, load);
#ifdef ANTIBODY_GEMM_PROFILE
    double t0 = omp_get_wtime();
#endif
    int done = B.matmul && !trans_a && trans_b && K >= MM_MIN_K && alpha == 1.0f && (beta == 0.0f || beta == 1.0f) && !omp_in_parallel() &&
               !matmul_nt(M, N, K, A, lda, Bm, ldb, beta == 1.0f, C, ldc);
    if (!done && !B.openblas)  // row-major, as our buffers are
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
    else if (!done)  // CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112
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
        snprintf(buf, sizeof buf, "oneDNN %d.%d.%d %s (%s)%s", v->major, v->minor, v->patch,
                 B.matmul ? "matmul (brgemm) for A B^T, sgemm" : "sgemm",
                 v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "not OpenMP",
                 B.problem[0] ? "; OpenBLAS was asked for and could not be loaded" : "");
        return buf;
    }
    snprintf(buf, sizeof buf, "OpenBLAS %s (%s)", B.corename ? B.corename() : "?", B.path);
    return buf;
}

int omp_threads(void) { return omp_get_max_threads(); }
