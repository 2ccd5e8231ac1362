// Finite-difference gradient checks of every backward kernel and of the whole model
// (LoRA and full fine-tuning gradients, the attention-output gradient that Vaccine uses).
// Each kernel's scalar objective is sum(out * R) for a fixed random R, so backward gets dout = R.
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/model.h"
#include "testing.h"
#include "util/rng.h"

static Rng rng;
static void randn(float *x, size_t n, float s) { for (size_t i = 0; i < n; i++) x[i] = rng_normal(&rng) * s; }
static double dot(const float *a, const float *b, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i]; return s; }

// Compares analytic gradient ga of f at x against central differences on up to `probes` entries.
typedef double (*Objective)(void *ctx);
static int fd_check(const char *what, Objective f, void *ctx, float *x, const float *ga, size_t n, int probes,
                    float h, double tol) {
    int bad = 0, skipped = 0;
    double worst = 0, gmax = 0;
    // f32 losses quantise the numeric derivative: errors are measured relative to the
    // entry's size, with a floor at 1% of the largest gradient entry.
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(ga[i]));
    for (int k = 0; k < probes; k++) {
        size_t i = probes >= (int)n ? (size_t)k : (size_t)rng_below(&rng, n);
        if (i >= n) break;
        float keep = x[i];
        x[i] = keep + h; double fp = f(ctx);
        x[i] = keep - h; double fm = f(ctx);
        x[i] = keep;
        if (isnan(fp) || isnan(fm)) { skipped++; continue; }  // the step crosses a kink (ReLU)
        double num = (fp - fm) / (2.0 * h);
        double err = fabs(num - ga[i]) / (fabs(num) + fabs(ga[i]) + 0.01 * gmax + 1e-6);
        if (!(err <= worst)) worst = err;
        if (!(err <= tol)) {  // a NaN gradient fails too
            bad++;
            if (bad < 4) fprintf(stderr, "%s[%zu]: analytic %.6g numeric %.6g\n", what, i, ga[i], num);
        }
    }
    printf("%-28s worst relative error %.2e over %d probes", what, worst, probes - skipped);
    if (skipped) printf(" (%d across a ReLU kink skipped)", skipped);
    printf("\n");
    if (skipped > probes / 2) bad++;  // too few probes left to check anything
    return bad;
}

// ---------------- rmsnorm
// w_offset 1: Gemma's (1 + w)
typedef struct { float *x, *w, *out, *rstd, *R; int N, C; float off; } NormCtx;
static double norm_obj(void *p) { NormCtx *c = p; rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->off, c->N, c->C, 1e-5f); return dot(c->out, c->R, (size_t)c->N * c->C); }
static void test_rmsnorm(float off) {
    int N = 3, C = 16;
    NormCtx c = {malloc(N * C * 4), malloc(C * 4), malloc(N * C * 4), malloc(N * 4), malloc(N * C * 4), N, C, off};
    randn(c.x, N * C, 1); randn(c.w, C, 1); randn(c.R, N * C, 1);
    float *dx = calloc(N * C, 4), *dw = calloc(C, 4);
    norm_obj(&c);
    // the forward against HF's formula in double: x / sqrt(mean(x^2) + eps) * (off + w)
    double ferr = 0;
    for (int i = 0; i < N; i++) {
        double ms = 0;
        for (int j = 0; j < C; j++) ms += (double)c.x[i * C + j] * c.x[i * C + j] / C;
        for (int j = 0; j < C; j++)
            ferr = fmax(ferr, fabs(c.x[i * C + j] / sqrt(ms + 1e-5) * (off + c.w[j]) - c.out[i * C + j]));
    }
    CHECK(ferr < 1e-5, "rmsnorm forward (offset %g) differs from the reference by %g", off, ferr);
    rmsnorm_backward(dx, dw, c.R, c.x, c.w, off, c.rstd, N, C);
    CHECK(fd_check(off ? "rmsnorm (1+w) dx" : "rmsnorm dx", norm_obj, &c, c.x, dx, N * C, N * C, 1e-2f, 1e-2) == 0);
    CHECK(fd_check(off ? "rmsnorm (1+w) dw" : "rmsnorm dw", norm_obj, &c, c.w, dw, C, C, 1e-2f, 1e-2) == 0);
    free(c.x); free(c.w); free(c.out); free(c.rstd); free(c.R); free(dx); free(dw);
}

// ---------------- layernorm (OPT)
typedef struct { float *x, *w, *b, *out, *rstd, *R; int N, C; } LnCtx;
static double ln_obj(void *p) { LnCtx *c = p; layernorm_forward(c->out, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f); return dot(c->out, c->R, (size_t)c->N * c->C); }
static void test_layernorm(void) {
    int N = 3, C = 16;
    LnCtx c = {malloc(N * C * 4), malloc(C * 4), malloc(C * 4), malloc(N * C * 4), malloc(N * 4), malloc(N * C * 4), N, C};
    randn(c.x, N * C, 1); randn(c.w, C, 1); randn(c.b, C, 1); randn(c.R, N * C, 1);
    for (int j = 0; j < N * C; j++) c.x[j] += 2.0f;  // a mean far from zero
    float *dx = calloc(N * C, 4), *dw = calloc(C, 4), *db = calloc(C, 4);
    ln_obj(&c);
    // the forward against torch's formula in double: (x - mean) / sqrt(var + eps) * w + b
    double ferr = 0;
    for (int i = 0; i < N; i++) {
        double mu = 0, var = 0;
        for (int j = 0; j < C; j++) mu += c.x[i * C + j] / (double)C;
        for (int j = 0; j < C; j++) var += (c.x[i * C + j] - mu) * (c.x[i * C + j] - mu) / C;
        for (int j = 0; j < C; j++)
            ferr = fmax(ferr, fabs((c.x[i * C + j] - mu) / sqrt(var + 1e-5) * c.w[j] + c.b[j] - c.out[i * C + j]));
    }
    CHECK(ferr < 1e-5, "layernorm forward differs from the reference by %g", ferr);
    layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.rstd, N, C);
    CHECK(fd_check("layernorm dx", ln_obj, &c, c.x, dx, N * C, N * C, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("layernorm dw", ln_obj, &c, c.w, dw, C, C, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("layernorm db", ln_obj, &c, c.b, db, C, C, 1e-2f, 1e-2) == 0);
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.rstd); free(c.R); free(dx); free(dw); free(db);
}

// ---------------- relu (OPT's MLP)
typedef struct { float *x, *out, *R; int n; } ReluCtx;
static double relu_obj(void *p) { ReluCtx *c = p; relu_forward(c->out, c->x, c->n); return dot(c->out, c->R, c->n); }
static void test_relu(void) {
    int n = 40;
    ReluCtx c = {malloc(n * 4), malloc(n * 4), malloc(n * 4), n};
    randn(c.x, n, 1); randn(c.R, n, 1);
    for (int i = 0; i < n; i++) if (fabsf(c.x[i]) < 0.05f) c.x[i] = 0.5f;  // no kink within the probe step
    float *dx = malloc(n * 4);
    for (int i = 0; i < n; i++) dx[i] = NAN;  // set, not added to
    relu_backward(dx, c.R, c.x, n);
    CHECK(fd_check("relu dx", relu_obj, &c, c.x, dx, n, n, 1e-2f, 1e-2) == 0);
    free(c.x); free(c.out); free(c.R); free(dx);
}

// ---------------- rope
typedef struct { float *x, *y, *R, *cs, *sn; int *pos; int N, H, D; } RopeCtx;
static double rope_obj(void *p) { RopeCtx *c = p; memcpy(c->y, c->x, (size_t)c->N * c->H * c->D * 4); rope_forward(c->y, c->pos, c->cs, c->N, c->H, c->D); return dot(c->y, c->R, (size_t)c->N * c->H * c->D); }
static void test_rope(void) {
    int N = 4, H = 2, D = 8, n = N * H * D;
    RopeCtx c = {malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(16 * D / 2 * 4), malloc(16 * D / 2 * 4), malloc(N * 4), N, H, D};
    rope_inv_freq(c.cs, D, 10000.0f);
    for (int i = 0; i < N; i++) c.pos[i] = 3 * i + 1;
    randn(c.x, n, 1); randn(c.R, n, 1);
    float *g = malloc(n * 4);
    memcpy(g, c.R, n * 4);
    rope_backward(g, c.pos, c.cs, N, H, D);
    CHECK(fd_check("rope dx", rope_obj, &c, c.x, g, n, n, 1e-2f, 1e-2) == 0);
    free(c.x); free(c.y); free(c.R); free(c.cs); free(c.sn); free(c.pos); free(g);
}

// ---------------- attention (GQA + padding mask)
typedef struct { float *q, *k, *v, *out, *att, *R; int *mask; AttnShape s; } AttCtx;
static double att_obj(void *p) { AttCtx *c = p; attention_forward(c->out, c->att, c->q, c->k, c->v, c->mask, c->s); return dot(c->out, c->R, (size_t)c->s.B * c->s.T * c->s.NH * c->s.HD); }
static void test_attention(AttnShape s, int probes) {
    int nq = s.B * s.T * s.NH * s.HD, nk = s.B * s.T * s.NKV * s.HD;
    AttCtx c = {malloc(nq * 4), malloc(nk * 4), malloc(nk * 4), malloc(nq * 4), malloc(s.B * s.NH * s.T * s.T * 4), malloc(nq * 4), malloc(s.B * s.T * 4), s};
    randn(c.q, nq, 1); randn(c.k, nk, 1); randn(c.v, nk, 1); randn(c.R, nq, 1);
    for (int i = 0; i < s.B * s.T; i++) c.mask[i] = !(i >= s.T && i % s.T >= 3);  // second row right-padded
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    att_obj(&c);
    attention_backward(dq, dk, dv, c.R, c.att, c.q, c.k, c.v, s);
    // the forward against a plain double-precision causal softmax attention
    att_obj(&c);
    double ferr = 0;
    int group = s.NH / s.NKV, qC = s.NH * s.HD, kC = s.NKV * s.HD;
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.NH; h++)
            for (int t = 0; t < s.T; t++) {
                double w[512], mx = -1e300, sum = 0;
                const float *qt = c.q + (size_t)(b * s.T + t) * qC + h * s.HD;
                for (int u = 0; u <= t; u++) {
                    const float *ku = c.k + (size_t)(b * s.T + u) * kC + (h / group) * s.HD;
                    double d = 0;
                    for (int j = 0; j < s.HD; j++) d += (double)qt[j] * ku[j];
                    d *= s.sc.scale > 0 ? s.sc.scale : 1 / sqrt((double)s.HD);
                    if (s.sc.softcap > 0) d = s.sc.softcap * tanh(d / s.sc.softcap);
                    int seen = c.mask[b * s.T + u] && (!s.sc.window || u > t - s.sc.window);
                    w[u] = seen ? d : -1e300;
                    mx = w[u] > mx ? w[u] : mx;
                }
                for (int u = 0; u <= t; u++) sum += w[u] = w[u] > -1e299 ? exp(w[u] - mx) : 0.0;
                for (int j = 0; j < s.HD; j++) {
                    double o = 0;
                    for (int u = 0; u <= t; u++) o += w[u] / sum * c.v[(size_t)(b * s.T + u) * kC + (h / group) * s.HD + j];
                    ferr = fmax(ferr, fabs(o - c.out[(size_t)(b * s.T + t) * qC + h * s.HD + j]));
                }
            }
    CHECK(ferr < 1e-5, "attention forward (T=%d, window %d, cap %g) differs from the reference by %g", s.T, s.sc.window,
          s.sc.softcap, ferr);
    int pq = probes < nq ? probes : nq, pk = probes < nk ? probes : nk;
    CHECK(fd_check("attention dq", att_obj, &c, c.q, dq, nq, pq, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("attention dk", att_obj, &c, c.k, dk, nk, pk, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("attention dv", att_obj, &c, c.v, dv, nk, pk, 1e-2f, 1e-2) == 0);
    free(c.q); free(c.k); free(c.v); free(c.out); free(c.att); free(c.R); free(c.mask); free(dq); free(dk); free(dv);
}

// ---------------- swiglu
typedef struct { float *g, *u, *out, *R; int n; } SwCtx;
static double sw_obj(void *p) { SwCtx *c = p; swiglu_forward(c->out, c->g, c->u, c->n); return dot(c->out, c->R, c->n); }
static void test_swiglu(void) {
    int n = 40;
    SwCtx c = {malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 4), n};
    randn(c.g, n, 2); randn(c.u, n, 1); randn(c.R, n, 1);
    float *dg = malloc(n * 4), *du = malloc(n * 4);
    for (int i = 0; i < n; i++) dg[i] = du[i] = NAN;  // set, not added to
    swiglu_backward(dg, du, c.R, c.g, c.u, n);
    CHECK(fd_check("swiglu dg", sw_obj, &c, c.g, dg, n, n, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("swiglu du", sw_obj, &c, c.u, du, n, n, 1e-2f, 1e-2) == 0);
    free(c.g); free(c.u); free(c.out); free(c.R); free(dg); free(du);
}

// ---------------- geglu (Gemma's MLP), against torch's tanh-approximated GELU in double
static double ge_obj(void *p) { SwCtx *c = p; geglu_forward(c->out, c->g, c->u, c->n); return dot(c->out, c->R, c->n); }
static void test_geglu(void) {
    int n = 40;
    SwCtx c = {malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 4), n};
    randn(c.g, n, 2); randn(c.u, n, 1); randn(c.R, n, 1);
    ge_obj(&c);
    double ferr = 0;
    for (int i = 0; i < n; i++) {
        double x = c.g[i], gl = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        ferr = fmax(ferr, fabs(gl * c.u[i] - c.out[i]));
    }
    CHECK(ferr < 1e-5, "geglu forward differs from the reference by %g", ferr);
    float *dg = malloc(n * 4), *du = malloc(n * 4);
    for (int i = 0; i < n; i++) dg[i] = du[i] = NAN;  // set, not added to
    geglu_backward(dg, du, c.R, c.g, c.u, n);
    CHECK(fd_check("geglu dg", ge_obj, &c, c.g, dg, n, n, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("geglu du", ge_obj, &c, c.u, du, n, n, 1e-2f, 1e-2) == 0);
    free(c.g); free(c.u); free(c.out); free(c.R); free(dg); free(du);
}

// ---------------- soft-capping (Gemma 2): y = cap * tanh(x / cap)
typedef struct { float *x, *y, *R; int n; float cap; } CapCtx;
static double cap_obj(void *p) { CapCtx *c = p; memcpy(c->y, c->x, c->n * 4); softcap_forward(c->y, c->cap, c->n); return dot(c->y, c->R, c->n); }
static void test_softcap(void) {
    int n = 30;
    CapCtx c = {malloc(n * 4), malloc(n * 4), malloc(n * 4), n, 2.5f};
    randn(c.x, n, 3); randn(c.R, n, 1);
    cap_obj(&c);
    double ferr = 0;
    for (int i = 0; i < n; i++) ferr = fmax(ferr, fabs(2.5 * tanh(c.x[i] / 2.5) - c.y[i]));
    CHECK(ferr < 1e-5, "softcap forward differs from the reference by %g", ferr);
    float *d = malloc(n * 4);
    memcpy(d, c.R, n * 4);
    softcap_backward(d, c.y, c.cap, n);
    CHECK(fd_check("softcap dx", cap_obj, &c, c.x, d, n, n, 1e-2f, 1e-2) == 0);
    free(c.x); free(c.y); free(c.R); free(d);
}

// ---------------- the products A B^T: each takes the path its call decides, whatever ran
// before it. blas.c keeps a bounded cache of oneDNN matmul primitives; a shape first met
// after 200 others (the cache full) must still run the primitive where the primitive is
// used (bit for bit what a primitive of that shape made here computes), and a shape met
// before them, its entry replaced since, the same bits as at first. Values against a
// plain triple loop, also at 1 and 3 threads (a primitive is made per thread count).
static void direct_nt(float *C, const float *A, const float *B, int M, int N, int K) {
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_dims_t as = {M, K}, ast = {K, 1}, bs = {K, N}, bst = {1, K}, cs = {M, N}, cst = {N, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    dnnl_memory_t am, bm, cm;
    CHECK(!dnnl_engine_create(&eng, dnnl_cpu, 0) && !dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    dnnl_memory_desc_init_by_strides(&ad, 2, as, dnnl_f32, ast);
    dnnl_memory_desc_init_by_strides(&bd, 2, bs, dnnl_f32, bst);
    dnnl_memory_desc_init_by_strides(&cd, 2, cs, dnnl_f32, cst);
    CHECK(!dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd) && !dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) &&
          !dnnl_primitive_create(&p, pd));
    dnnl_memory_create(&am, &ad, eng, (void *)A);
    dnnl_memory_create(&bm, &bd, eng, (void *)B);
    dnnl_memory_create(&cm, &cd, eng, C);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    CHECK(!dnnl_primitive_execute(p, st, 3, args) && !dnnl_stream_wait(st));
    dnnl_memory_destroy(am); dnnl_memory_destroy(bm); dnnl_memory_destroy(cm);
    dnnl_primitive_destroy(p); dnnl_primitive_desc_destroy(pd);
    dnnl_stream_destroy(st); dnnl_engine_destroy(eng);
}

static void test_gemm_repeatable(void) {
    // K = 1536: the SGEMM and the primitive sum it in different orders (with K = 160 they agree)
    int M = 130, N = 64, K = 1536, Z = 400;  // Z rows: a shape met only after the others
    float *A = malloc((size_t)Z * K * 4), *B = malloc((size_t)N * K * 4), *C0 = malloc((size_t)Z * N * 4),
          *C = malloc((size_t)Z * N * 4);
    randn(A, (size_t)Z * K, 1); randn(B, (size_t)N * K, 1);
    gemm_nt(C0, A, B, M, N, K, 1.0f, 0.0f);
    for (int m = 131; m < 331; m++) gemm_nt(C, A, B, m, N, K, 1.0f, 0.0f);
    gemm_nt(C, A, B, M, N, K, 1.0f, 0.0f);
    CHECK(memcmp(C, C0, (size_t)M * N * 4) == 0, "A B^T of one shape changed after 200 other shapes (%s)", blas_name());
    if (strstr(blas_name(), "matmul")) {  // the primitive's path (AVX-512): a new shape takes it too
        gemm_nt(C, A, B, Z, N, K, 1.0f, 0.0f);
        direct_nt(C0, A, B, Z, N, K);
        CHECK(memcmp(C, C0, (size_t)Z * N * 4) == 0, "a shape first met with the cache full did not run the primitive");
        gemm_nt(C0, A, B, M, N, K, 1.0f, 0.0f);
    }
    double md = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A[i * K + k] * B[j * K + k];
            md = fmax(md, fabs(s - C0[i * N + j]));
        }
    CHECK(md < 1e-3, "A B^T off by %g", md);
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 3; t += 2) {
        omp_set_num_threads(t);
        gemm_nt(C, A, B, M, N, K, 1.0f, 0.0f);
        double mt = 0;
        for (int i = 0; i < M * N; i++) mt = fmax(mt, fabs(C[i] - C0[i]));
        CHECK(mt < 1e-3, "A B^T on %d threads differs by %g", t, mt);
    }
    omp_set_num_threads(saved);
    free(A); free(B); free(C0); free(C);
}

// ---------------- matmul (f32 weight, with bias)
typedef struct { float *x, *w, *b, *out, *R; int N, IN, OUT; } MmCtx;
static double mm_obj(void *p) { MmCtx *c = p; Mat W = {MAT_F32, c->w, c->OUT, c->IN}; matmul_forward(c->out, c->x, &W, c->b, c->N, 0); return dot(c->out, c->R, (size_t)c->N * c->OUT); }
static void test_matmul(void) {
    int N = 5, IN = 7, OUT = 6;
    MmCtx c = {malloc(N * IN * 4), malloc(OUT * IN * 4), malloc(OUT * 4), malloc(N * OUT * 4), malloc(N * OUT * 4), N, IN, OUT};
    randn(c.x, N * IN, 1); randn(c.w, OUT * IN, 1); randn(c.b, OUT, 1); randn(c.R, N * OUT, 1);
    float *dx = calloc(N * IN, 4), *dw = calloc(OUT * IN, 4), *db = calloc(OUT, 4);
    Mat W = {MAT_F32, c.w, OUT, IN};
    for (int i = 0; i < N * IN; i++) dx[i] = NAN;  // not read without accumulate
    matmul_backward_input(dx, c.R, &W, N, 0);
    matmul_backward_weight(dw, db, c.R, c.x, N, IN, OUT);
    CHECK(fd_check("matmul dx", mm_obj, &c, c.x, dx, N * IN, N * IN, 1e-2f, 1e-2) == 0);
    float *dx2 = malloc(N * IN * 4);
    memcpy(dx2, dx, N * IN * 4);
    matmul_backward_input(dx2, c.R, &W, N, 1);
    double acc = 0;
    for (int i = 0; i < N * IN; i++) acc = fmax(acc, fabs(dx2[i] - 2.0 * dx[i]));
    CHECK(acc < 1e-5, "accumulated input gradient off by %g", acc);
    free(dx2);
    CHECK(fd_check("matmul dW", mm_obj, &c, c.w, dw, OUT * IN, OUT * IN, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("matmul dbias", mm_obj, &c, c.b, db, OUT, OUT, 1e-2f, 1e-2) == 0);
    // bf16 weights give the product of the rounded weights
    uint16_t *wb = malloc(OUT * IN * 2);
    for (int i = 0; i < OUT * IN; i++) { wb[i] = float_to_bf16(c.w[i]); c.w[i] = bf16_to_float(wb[i]); }
    float *o1 = malloc(N * OUT * 4), *o2 = malloc(N * OUT * 4);
    Mat Wb = {MAT_BF16, wb, OUT, IN};
    matmul_forward(o1, c.x, &W, NULL, N, 0);
    matmul_forward(o2, c.x, &Wb, NULL, N, 0);
    double md = 0; for (int i = 0; i < N * OUT; i++) md = fmax(md, fabs(o1[i] - o2[i]));
    CHECK(md < 1e-5, "bf16 matmul differs by %g", md);
    free(wb); free(o1); free(o2);
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.R); free(dx); free(dw); free(db);
}

// ---------------- LM head + cross-entropy
typedef struct { float *x, *w, *buf; int *tg; int N, C, V; float cap; } CeCtx;
static double ce_obj(void *p) { CeCtx *c = p; Mat W = {MAT_F32, c->w, c->V, c->C}; int cnt; return lm_head_ce(c->x, &W, c->tg, c->N, c->C, c->V, 1.0f, c->cap, NULL, NULL, &cnt, c->buf, 2); }
// cap > 0: Gemma 2's soft-capped logits
static void test_ce(float cap) {
    int N = 5, C = 6, V = 11;
    CeCtx c = {malloc(N * C * 4), malloc(V * C * 4), malloc(2 * V * 4), malloc(N * 4), N, C, V, cap};
    randn(c.x, N * C, 1); randn(c.w, V * C, 1);
    int tg[] = {3, -1, 0, 10, 7};
    memcpy(c.tg, tg, sizeof tg);
    float *dx = calloc(N * C, 4), *dw = calloc(V * C, 4);
    Mat W = {MAT_F32, c.w, V, C};
    int cnt;
    double l = lm_head_ce(c.x, &W, c.tg, N, C, V, 1.0f, cap, dx, dw, &cnt, c.buf, 2);
    CHECK(cnt == 4);
    // loss equals the sum of per-row cross-entropies of the full (capped) logits
    float logits[11]; double ref = 0;
    for (int i = 0; i < N; i++) if (tg[i] >= 0) {
        matmul_forward(logits, c.x + i * C, &W, NULL, 1, 0);
        if (cap > 0) softcap_forward(logits, cap, V);
        ref += ce_row(logits, V, tg[i]);
    }
    CHECK(close_enough(l, ref, 1e-5, 1e-6), "%g vs %g", l, ref);
    CHECK(fd_check(cap > 0 ? "lm_head_ce capped dx" : "lm_head_ce dx", ce_obj, &c, c.x, dx, N * C, N * C, 1e-2f, 1e-2) == 0);
    CHECK(fd_check(cap > 0 ? "lm_head_ce capped dW" : "lm_head_ce dW", ce_obj, &c, c.w, dw, V * C, V * C, 1e-2f, 1e-2) == 0);
    free(c.x); free(c.w); free(c.buf); free(c.tg); free(dx); free(dw);
}

// ---------------- whole model
// With relu_sig set (OPT), a forward whose ReLUs switch differently from the base point
// returns NaN: the loss is not differentiable across that step and the probe is skipped.
typedef struct { Model *m; Lora *lo; Workspace *w; Batch *b; ForwardOpts fo; uint64_t relu_sig; } ModelCtx;
static uint64_t relu_signature(const ModelCtx *c) {
    uint64_t h = 1469598103934665603ull;
    for (int l = 0; l < c->m->cfg.n_layers; l++) {
        const float *u = c->w->pool[c->w->slot_of[l]]->u;
        for (size_t i = 0; i < (size_t)c->w->N * c->m->cfg.hidden_dim; i++) h = (h ^ (u[i] > 0.0f)) * 1099511628211ull;
    }
    return h;
}
static double model_obj(void *p) {
    ModelCtx *c = p;
    ForwardOpts f = c->fo;
    f.train = 1;
    model_forward(c->m, c->lo, c->w, c->b, &f);
    if (c->relu_sig && f.save_mask == NULL && f.first_layer_needed == 0 && relu_signature(c) != c->relu_sig) return NAN;
    return c->w->loss;
}

// opt: 0 Llama, 1 pre-norm OPT, 2 post-norm OPT (LayerNorms with bias, learned positions,
// ReLU fc1/fc2, every projection biased; post-norm has no final norm). gemma: 1 Gemma
// ((1 + w) norms, scaled embeddings, GeGLU), 2 Gemma 2 (and output norms, head_dim 6 !=
// dim / heads, its own query scale, both soft-caps biting, layer 0 sliding with a window
// of 3 keys, shorter than the rows).
static void test_model(int qkv_bias, float dropout, int opt, int gemma) {
    Config cfg = {.vocab_size = 23, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = opt ? 4 : 2,
                  .head_dim = gemma == 2 ? 6 : 4, .max_seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                  .tie_embeddings = gemma > 0, .qkv_bias = qkv_bias, .opt = opt > 0, .norm_after = opt == 2,
                  .no_final_norm = opt == 2, .gemma = gemma, .sandwich_norms = gemma == 2};
    strcpy(cfg.arch, opt ? "OPTForCausalLM" : "LlamaForCausalLM"); strcpy(cfg.model_type, opt ? "opt" : "llama");
    if (gemma == 2) {
        cfg.query_scalar = 5.0f; cfg.attn_softcap = 1.0f; cfg.final_softcap = 1.5f; cfg.sliding_window = 3;
        cfg.sliding[0] = 1;
        strcpy(cfg.arch, "Gemma2ForCausalLM"); strcpy(cfg.model_type, "gemma2");
    }
    Model m;
    model_init_random(&m, &cfg, 7);
    for (int l = 0; l < cfg.n_layers; l++) {  // larger weights so every path matters
        LayerWeights *L = &m.layers[l];
        for (int p = 0; p < N_PROJ; p++) randn(L->w[p].data, (size_t)L->w[p].rows * L->w[p].cols, 0.3f);
        for (int p = 0; p < N_PROJ; p++)
            if (L->bias[p]) randn(L->bias[p], L->w[p].rows, 0.3f);
        float one = gemma ? 0.0f : 1.0f;  // Gemma's norms scale by 1 + w
        for (int j = 0; j < cfg.dim; j++) { L->attn_norm[j] = one + 0.3f * rng_normal(&rng); L->mlp_norm[j] = one + 0.3f * rng_normal(&rng); }
        if (opt) { randn(L->attn_norm_b, cfg.dim, 0.3f); randn(L->mlp_norm_b, cfg.dim, 0.3f); }
        if (gemma == 2) { randn(L->attn_out_norm, cfg.dim, 0.3f); randn(L->mlp_out_norm, cfg.dim, 0.3f); }
    }
    if (gemma) randn(m.embed.data, (size_t)cfg.vocab_size * cfg.dim, 0.1f);  // times sqrt(16)
    if (m.final_norm_b) randn(m.final_norm_b, cfg.dim, 0.3f);
    if (m.pos_embed) randn(m.pos_embed, (size_t)(cfg.max_seq_len + 2) * cfg.dim, 0.5f);
    Lora lo;
    lora_init(&lo, &m, 3, 6.0f, dropout, proj_mask_of(&cfg), 11);
    randn(lo.params, lo.n_params, 0.1f);  // B non-zero so A gets gradient
    int B = 2, T = 6, N = B * T;
    int full_mask = (1 << P_V) | (1 << P_DOWN);
    Workspace *w = workspace_new(&m, &lo, B, T, full_mask);
    int tokens[12] = {1, 5, 9, 2, 7, 3, 1, 4, 4, 8, 0, 0};
    int mask[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    int targets[12] = {-1, -1, 2, 7, 3, -1, -1, 4, 8, -1, -1, -1};
    Batch b = {B, T, tokens, targets, mask};
    float *pert[2], *ag[2];
    for (int l = 0; l < 2; l++) { pert[l] = calloc(N * cfg.dim, 4); randn(pert[l], N * cfg.dim, 0.1f); ag[l] = calloc(N * cfg.dim, 4); }
    ModelCtx c = {&m, &lo, w, &b, {.train = 1, .dropout_seed = 99, .perturb = (const float *const *)pert}};
    model_obj(&c);
    BackwardOpts bo = {.param_grads = 1, .attn_grad = ag};
    model_backward(&m, &lo, w, &bo);
    char name[64];
    snprintf(name, sizeof name, "model%s LoRA (bias %d, drop %.1f)",
             opt == 2 ? " OPT post" : opt ? " OPT" : gemma == 2 ? " Gemma 2" : gemma ? " Gemma" : "", qkv_bias, dropout);
    float h = 1e-2f;
    if (opt) c.relu_sig = relu_signature(&c);
    CHECK(fd_check(name, model_obj, &c, lo.params, w->lora_grad, lo.n_params, 150, h, 1e-2) == 0);
    CHECK(!opt || relu_signature(&c) == c.relu_sig);
    CHECK(fd_check("model full-FT v_proj", model_obj, &c, m.layers[0].w[P_V].data, w->full_grad[0 * N_PROJ + P_V],
                   (size_t)m.layers[0].w[P_V].rows * cfg.dim, 40, h, 1e-2) == 0);
    CHECK(fd_check("model full-FT down_proj", model_obj, &c, m.layers[1].w[P_DOWN].data, w->full_grad[1 * N_PROJ + P_DOWN],
                   (size_t)cfg.dim * cfg.hidden_dim, 40, h, 1e-2) == 0);
    // dL/dh_l: perturbing the attention output moves the loss along attn_grad
    for (int l = 0; l < 2; l++) {
        snprintf(name, sizeof name, "model dL/dh layer %d", l);
        CHECK(fd_check(name, model_obj, &c, pert[l], ag[l], N * cfg.dim, 40, 1e-2f, 1e-2) == 0);
    }
    // Checkpointed forward (nothing saved) gives the same gradients as a saved one.
    float *g1 = malloc(lo.n_params * 4);
    memcpy(g1, w->lora_grad, lo.n_params * 4);
    memset(w->lora_grad, 0, lo.n_params * 4);
    int save_none[2] = {0, 0};
    ForwardOpts f2 = c.fo; f2.save_mask = save_none;
    model_forward(&m, &lo, w, &b, &f2);
    model_backward(&m, &lo, w, &bo);
    double md = 0; for (size_t i = 0; i < lo.n_params; i++) md = fmax(md, fabs(g1[i] - w->lora_grad[i]));
    CHECK(md < 1e-6, "checkpointed grads differ by %g", md);
    // One row in this workspace (planned for two): both layers' activations share one slot
    // (T-Vaccine's probability pass), with the gradients of a workspace planned for one row.
    {
        Batch b1 = {1, T, tokens, targets, mask};
        Workspace *w1 = workspace_new(&m, &lo, 1, T, full_mask);
        float *g[2], *agr[2][2];
        int slots[2][2];
        Workspace *ws[2] = {w1, w};
        CHECK(workspace_layers_per_slot(&m, &lo, w, 1, T) == 2 && workspace_layers_per_slot(&m, &lo, w1, 1, T) == 1);
        CHECK(workspace_layers_per_slot(&m, &lo, w, 1, T + 1) == 0, "a row longer than planned fits no slot");
        for (int k = 0; k < 2; k++) {
            Workspace *x = ws[k];
            for (int l = 0; l < 2; l++) agr[k][l] = calloc(N * cfg.dim, 4);
            memset(x->lora_grad, 0, lo.n_params * 4);
            ForwardOpts f1 = c.fo; f1.save_mask = NULL;
            model_forward(&m, &lo, x, &b1, &f1);
            slots[k][0] = x->slot_of[0], slots[k][1] = x->slot_of[1];
            BackwardOpts b1o = {.param_grads = 1, .attn_grad = agr[k]};
            model_backward(&m, &lo, x, &b1o);
            g[k] = malloc(lo.n_params * 4);
            memcpy(g[k], x->lora_grad, lo.n_params * 4);
        }
        CHECK(slots[0][0] == 0 && slots[0][1] == 1 && slots[1][0] == 0 && slots[1][1] == 0,
              "slots of layers 0, 1: %d %d (planned for one row), %d %d (for two)", slots[0][0], slots[0][1], slots[1][0],
              slots[1][1]);
        CHECK(memcmp(g[0], g[1], lo.n_params * 4) == 0, "one row packed two layers to a slot: other LoRA gradients");
        for (int l = 0; l < 2; l++)
            CHECK(memcmp(agr[0][l], agr[1][l], (size_t)T * cfg.dim * 4) == 0, "packed: other dL/dh of layer %d", l);
        for (int k = 0; k < 2; k++) { free(g[k]); free(agr[k][0]); free(agr[k][1]); }
        workspace_free(w1);
    }
    // stop_layer = 1 with layer 0 frozen: identical layer-1 grads, none for layer 0
    memset(w->lora_grad, 0, lo.n_params * 4);
    int trainable[2] = {0, PROJ_ALL};
    int fl[2] = {0, 1};
    ForwardOpts f3 = c.fo; f3.first_layer_needed = 1; (void)fl;
    model_forward(&m, &lo, w, &b, &f3);
    BackwardOpts b3 = {.param_grads = 1, .layer_trainable = trainable, .stop_layer = 1};
    model_backward(&m, &lo, w, &b3);
    size_t l1 = (size_t)(lo.A[1 * N_PROJ] - lo.params);
    double d0 = 0, d1 = 0;
    for (size_t i = 0; i < lo.n_params; i++) {
        if (i < l1) d0 = fmax(d0, fabs(w->lora_grad[i]));
        else d1 = fmax(d1, fabs(g1[i] - w->lora_grad[i]));
    }
    CHECK(d0 == 0.0, "frozen layer got gradient %g", d0);
    CHECK(d1 < 1e-6, "layer-1 grads differ by %g when layer 0 is skipped", d1);
    for (int l = 0; l < 2; l++) { free(pert[l]); free(ag[l]); }
    free(g1);
    workspace_free(w);
    lora_free(&lo);
    model_free(&m);
}

// A loss on the MLP outputs (LDIFS's features): objective = CE + sum_l <R_l, f_l> with f_l
// from ForwardOpts.mlp_out; the backward pass gets dL/df_l = R_l through BackwardOpts.mlp_grad.
typedef struct { ModelCtx mc; float *feat[2], *R[2]; size_t n; } FeatCtx;
static double feat_obj(void *p) {
    FeatCtx *c = p;
    ForwardOpts f = c->mc.fo;
    f.train = 1;
    f.mlp_out = c->feat;
    model_forward(c->mc.m, c->mc.lo, c->mc.w, c->mc.b, &f);
    return c->mc.w->loss + dot(c->feat[0], c->R[0], c->n) + dot(c->feat[1], c->R[1], c->n);
}

static void test_feature_grad(float dropout) {
    Config cfg = {.vocab_size = 23, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                  .head_dim = 4, .max_seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    strcpy(cfg.arch, "LlamaForCausalLM"); strcpy(cfg.model_type, "llama");
    Model m;
    model_init_random(&m, &cfg, 8);
    for (int l = 0; l < cfg.n_layers; l++)
        for (int p = 0; p < N_PROJ; p++) randn(m.layers[l].w[p].data, (size_t)m.layers[l].w[p].rows * m.layers[l].w[p].cols, 0.3f);
    Lora lo;
    lora_init(&lo, &m, 3, 6.0f, dropout, (1 << N_PROJ) - 1, 12);
    randn(lo.params, lo.n_params, 0.1f);
    int B = 2, T = 6, N = B * T;
    Workspace *w = workspace_new(&m, &lo, B, T, (1 << P_DOWN) | (1 << P_UP));
    int tokens[12] = {1, 5, 9, 2, 7, 3, 1, 4, 4, 8, 0, 0};
    int mask[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    int targets[12] = {-1, -1, 2, 7, 3, -1, -1, 4, 8, -1, -1, -1};
    Batch b = {B, T, tokens, targets, mask};
    FeatCtx c = {{&m, &lo, w, &b, {.train = 1, .dropout_seed = 5}}, {NULL}, {NULL}, (size_t)N * cfg.dim};
    for (int l = 0; l < 2; l++) {
        c.feat[l] = calloc(c.n, 4);
        c.R[l] = calloc(c.n, 4);
        randn(c.R[l], c.n, 0.05f);
    }
    feat_obj(&c);
    BackwardOpts bo = {.param_grads = 1, .mlp_grad = (const float *const *)c.R};
    model_backward(&m, &lo, w, &bo);
    char name[64];
    snprintf(name, sizeof name, "MLP-output loss LoRA (drop %.1f)", dropout);
    CHECK(fd_check(name, feat_obj, &c, lo.params, w->lora_grad, lo.n_params, 150, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("MLP-output loss down_proj", feat_obj, &c, m.layers[0].w[P_DOWN].data, w->full_grad[0 * N_PROJ + P_DOWN],
                   (size_t)cfg.dim * cfg.hidden_dim, 40, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("MLP-output loss up_proj", feat_obj, &c, m.layers[1].w[P_UP].data, w->full_grad[1 * N_PROJ + P_UP],
                   (size_t)cfg.dim * cfg.hidden_dim, 40, 1e-2f, 1e-2) == 0);
    for (int l = 0; l < 2; l++) { free(c.feat[l]); free(c.R[l]); }
    workspace_free(w);
    lora_free(&lo);
    model_free(&m);
}

// Training from scratch: embeddings, (tied or untied) LM head and norm weights.
// gemma: Gemma's scaled embeddings and (1 + w) norms.
static void test_full_model(int tied, int gemma) {
    Config cfg = {.vocab_size = 19, .dim = 12, .hidden_dim = 20, .n_layers = 2, .n_heads = 3, .n_kv_heads = 1,
                  .head_dim = 4, .max_seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 500.0f, .tie_embeddings = tied,
                  .gemma = gemma};
    strcpy(cfg.arch, "LlamaForCausalLM"); strcpy(cfg.model_type, "llama");
    Model m;
    model_init_random(&m, &cfg, 3);
    randn(m.embed.data, (size_t)cfg.vocab_size * cfg.dim, 0.5f);
    if (!tied) randn(m.lm_head.data, (size_t)cfg.vocab_size * cfg.dim, 0.5f);
    for (int l = 0; l < cfg.n_layers; l++)
        for (int p = 0; p < N_PROJ; p++) randn(m.layers[l].w[p].data, (size_t)m.layers[l].w[p].rows * m.layers[l].w[p].cols, 0.3f);
    for (int l = 0; l < cfg.n_layers; l++)
        for (int j = 0; j < cfg.dim; j++) { m.layers[l].attn_norm[j] = 1 + 0.3f * rng_normal(&rng); m.layers[l].mlp_norm[j] = 1 + 0.3f * rng_normal(&rng); }
    for (int j = 0; j < cfg.dim; j++) m.final_norm[j] = 1 + 0.3f * rng_normal(&rng);
    Workspace *w = workspace_new(&m, NULL, 2, 5, ((1 << N_PROJ) - 1) | FULL_EMBED_NORMS);
    int tokens[10] = {1, 5, 9, 2, 7, 3, 1, 4, 4, 0};
    int mask[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    int targets[10] = {5, 9, 2, 7, -1, 1, 4, 4, -1, -1};
    Batch b = {2, 5, tokens, targets, mask};
    ModelCtx c = {&m, NULL, w, &b, {.train = 1}};
    model_obj(&c);
    BackwardOpts bo = {.param_grads = 1};
    model_backward(&m, NULL, w, &bo);
    // the probes' forwards add to the head gradient again: keep the analytic ones apart
    size_t VC = (size_t)cfg.vocab_size * cfg.dim;
    float *eg = malloc(VC * 4), *hg = malloc(VC * 4);
    memcpy(eg, w->embed_grad, VC * 4);
    memcpy(hg, w->head_grad, VC * 4);
    CHECK(fd_check(gemma ? "full embed (Gemma)" : tied ? "full embed (tied head)" : "full embed", model_obj, &c, m.embed.data, eg,
                   (size_t)cfg.vocab_size * cfg.dim, 60, 1e-2f, 1e-2) == 0);
    if (!tied)
        CHECK(fd_check("full lm_head", model_obj, &c, m.lm_head.data, hg, (size_t)cfg.vocab_size * cfg.dim, 60,
                       1e-2f, 1e-2) == 0);
    CHECK(fd_check("full attn_norm l0", model_obj, &c, m.layers[0].attn_norm, w->norm_grad, cfg.dim, cfg.dim, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("full mlp_norm l1", model_obj, &c, m.layers[1].mlp_norm, w->norm_grad + 3 * cfg.dim, cfg.dim, cfg.dim, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("full final norm", model_obj, &c, m.final_norm, w->norm_grad + 4 * cfg.dim, cfg.dim, cfg.dim, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("full q_proj l0", model_obj, &c, m.layers[0].w[P_Q].data, w->full_grad[P_Q],
                   (size_t)cfg.n_heads * cfg.head_dim * cfg.dim, 40, 1e-2f, 1e-2) == 0);
    free(eg);
    free(hg);
    workspace_free(w);
    model_free(&m);
}

// ---------------- MMD (RepNoise's noise distance) at a fixed bandwidth base sigma (the loss
// holds it constant), and identical samples: MMD 0 and no gradient
typedef struct { float *X, *Y; int n; size_t D; double sigma; } MmdCtx;
static double mmd_obj(void *p) { MmdCtx *c = p; double s = c->sigma; return mmd_gauss(c->X, c->Y, c->n, c->D, 5, 2.0, &s, 0.0f, NULL); }
static void test_mmd(void) {
    int n = 3;
    size_t D = 7;
    MmdCtx c = {malloc(n * D * 4), malloc(n * D * 4), n, D, 0};
    randn(c.X, n * D, 0.3f); randn(c.Y, n * D, 1.0f);
    float *g = calloc(n * D, 4);
    double v = mmd_gauss(c.X, c.Y, n, D, 5, 2.0, &c.sigma, 1.0f, g);
    CHECK(v > 0 && c.sigma > 0, "MMD %g, sigma %g", v, c.sigma);
    CHECK(fd_check("mmd dX", mmd_obj, &c, c.X, g, n * D, n * D, 1e-3f, 1e-2) == 0);
    double s = 0;
    memcpy(c.Y, c.X, n * D * 4);
    memset(g, 0, n * D * 4);
    v = mmd_gauss(c.X, c.Y, n, D, 5, 2.0, &s, 1.0f, g);
    double gmax = 0;
    for (size_t i = 0; i < n * D; i++) gmax = fmax(gmax, fabs(g[i]));
    CHECK(v == 0.0 && gmax == 0.0, "identical samples: MMD %g, gradient %g", v, gmax);
    free(c.X); free(c.Y); free(g);
}

// A loss on the residual stream (RepNoise's per-layer losses): objective = CE + sum_l <R_l, res[l]>
// (l >= 1) + the LM head's CE on the final norm of res[1] (model_lens_ce); the backward pass
// gets R_l (plus the lens gradient at l = 1) through BackwardOpts.res_grad.
typedef struct { ModelCtx mc; float *R[2], *xn, *dxn, *rstd; int *lt; size_t n; } ResCtx;
static double res_obj(void *p) {
    ResCtx *c = p;
    ForwardOpts f = c->mc.fo;
    f.train = 1;
    model_forward(c->mc.m, c->mc.lo, c->mc.w, c->mc.b, &f);
    int cnt;
    const float *res1 = c->mc.w->res + c->n;
    return c->mc.w->loss + dot(res1, c->R[1], c->n) +
           model_lens_ce(c->mc.m, c->mc.w, res1, c->lt, c->mc.w->N, 1.0f, NULL, c->xn, c->dxn, c->rstd, &cnt);
}
static void test_res_grad(void) {
    Config cfg = {.vocab_size = 23, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                  .head_dim = 4, .max_seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    strcpy(cfg.arch, "LlamaForCausalLM"); strcpy(cfg.model_type, "llama");
    Model m;
    model_init_random(&m, &cfg, 9);
    for (int l = 0; l < cfg.n_layers; l++)
        for (int p = 0; p < N_PROJ; p++) randn(m.layers[l].w[p].data, (size_t)m.layers[l].w[p].rows * m.layers[l].w[p].cols, 0.3f);
    for (int j = 0; j < cfg.dim; j++) m.final_norm[j] = 1 + 0.3f * rng_normal(&rng);
    Lora lo;
    lora_init(&lo, &m, 3, 6.0f, 0.0f, (1 << N_PROJ) - 1, 13);
    randn(lo.params, lo.n_params, 0.1f);
    int B = 2, T = 6, N = B * T;
    Workspace *w = workspace_new(&m, &lo, B, T, (1 << P_Q));
    int tokens[12] = {1, 5, 9, 2, 7, 3, 1, 4, 4, 8, 0, 0};
    int mask[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    int targets[12] = {-1, -1, 2, 7, 3, -1, -1, 4, 8, -1, -1, -1};
    int lens_t[12] = {5, 9, -1, 7, 3, -1, 1, -1, 8, 11, -1, -1};
    Batch b = {B, T, tokens, targets, mask};
    size_t n = (size_t)N * cfg.dim;
    ResCtx c = {{&m, &lo, w, &b, {.train = 1, .dropout_seed = 5}}, {NULL, calloc(n, 4)}, calloc(n, 4), calloc(n, 4),
                calloc(N, 4), lens_t, n};
    randn(c.R[1], n, 0.05f);
    res_obj(&c);
    float *g1 = calloc(n, 4);
    int cnt;
    model_lens_ce(&m, w, w->res + n, lens_t, N, 1.0f, g1, c.xn, c.dxn, c.rstd, &cnt);
    CHECK(cnt == 7, "lens targets counted: %d", cnt);
    vec_add(g1, c.R[1], n);
    const float *rg[2] = {NULL, g1};
    BackwardOpts bo = {.param_grads = 1, .res_grad = rg};
    model_backward(&m, &lo, w, &bo);
    CHECK(fd_check("residual loss LoRA", res_obj, &c, lo.params, w->lora_grad, lo.n_params, 150, 1e-2f, 1e-2) == 0);
    CHECK(fd_check("residual loss q_proj l0", res_obj, &c, m.layers[0].w[P_Q].data, w->full_grad[P_Q],
                   (size_t)cfg.n_heads * cfg.head_dim * cfg.dim, 40, 1e-2f, 1e-2) == 0);
    free(c.R[1]); free(c.xn); free(c.dxn); free(c.rstd); free(g1);
    workspace_free(w);
    lora_free(&lo);
    model_free(&m);
}

int main(void) {
    rng_seed(&rng, 1234);
    test_rmsnorm(0.0f);
    test_rope();
    test_attention((AttnShape){2, 5, 4, 2, 4}, 1 << 30);
    test_swiglu();
    test_matmul();
    test_ce(0.0f);
    test_model(0, 0.0f, 0, 0);
    test_model(1, 0.0f, 0, 0);
    test_model(0, 0.3f, 0, 0);
    test_layernorm();
    test_relu();
    test_model(0, 0.0f, 1, 0);
    test_model(0, 0.3f, 1, 0);
    test_model(0, 0.0f, 2, 0);
    test_full_model(0, 0);
    test_full_model(1, 0);
    test_attention((AttnShape){2, 150, 2, 1, 4}, 200);  // several blocks of query rows, padding
    test_feature_grad(0.0f);
    test_feature_grad(0.3f);
    test_mmd();
    test_res_grad();
    // Gemma and Gemma 2: (1 + w) norms, GeGLU, soft-caps, query scale and sliding window
    test_rmsnorm(1.0f);
    test_geglu();
    test_softcap();
    test_ce(2.0f);
    test_attention((AttnShape){2, 7, 4, 2, 4, {0.3f, 1.5f, 3}}, 1 << 30);  // window 3 < T, cap biting
    test_attention((AttnShape){1, 140, 2, 1, 4, {0.0f, 2.0f, 70}}, 150);  // window across query blocks
    test_model(0, 0.0f, 0, 1);
    test_model(0, 0.0f, 0, 2);
    test_model(0, 0.3f, 0, 2);
    test_full_model(1, 1);
    test_gemm_repeatable();  // last: its draws would move every probe after it
    TEST_SUMMARY();
}
