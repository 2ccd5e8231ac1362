// The vector kernels through every instruction set this CPU runs (AVX-512, AVX2) and the
// portable one, each against a plain double-precision reference: the matrix-vector
// product (f32 and bf16 weights, odd shapes, bias, accumulate, threaded), its batch
// invariance (a row computes the same bits alone and beside others; AVX2 and AVX-512 the
// same bits), generation's attention over a KV cache (grouped heads, odd head sizes), the fused LoRA
// down-projection and its backward, exponentials (range ends, -inf, NaN, tails), SwiGLU,
// Gemma's tanh loops (soft-cap, GeGLU), softmax inside attention and the cross-entropy.
// Also ANTIBODY_ISA's checking.
#include <stdint.h>

#include "kernels/kernels.h"
#include "kernels/simd.h"
#include "testing.h"
#include "util/rng.h"

static Rng rng;
static void randn(float *x, size_t n, float sd) {
    for (size_t i = 0; i < n; i++) x[i] = sd * rng_normal(&rng);
}

static void test_env(void) {
    // first use in this process: a bad ANTIBODY_ISA is reported and the best set used instead
    setenv("ANTIBODY_ISA", "avx1024", 1);
    const char *why = isa_env_problem();
    CHECK(why && strstr(why, "avx1024"), "ANTIBODY_ISA=avx1024 not reported: %s", why ? why : "(null)");
    KernelIsa best = ISA_SCALAR;
    for (int i = 0; i < ISA_COUNT; i++)
        if (isa_supported((KernelIsa)i)) best = (KernelIsa)i;
    CHECK(isa_active() == best, "active %s, best %s", isa_name(isa_active()), isa_name(best));
    CHECK(isa_supported(ISA_SCALAR) && isa_force((KernelIsa)ISA_COUNT) == -1, "bad set accepted");
    CHECK(!strcmp(isa_name(ISA_AVX2), "avx2") && !strcmp(isa_name(ISA_AVX512), "avx512") &&
          !strcmp(isa_name(ISA_AVX512BF16), "avx512bf16"), "names");
    unsetenv("ANTIBODY_ISA");
}

static void test_matvec(const char *isa) {
    int shapes[][2] = {{1, 1}, {3, 5}, {7, 17}, {13, 33}, {5, 8}, {9, 24}, {250, 300}, {130, 576}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int OUT = shapes[si][0], IN = shapes[si][1];
        float *w = malloc((size_t)OUT * IN * 4), *b = malloc(OUT * 4), *x = malloc(MATVEC_MAX_ROWS * IN * 4);
        float *o = malloc(MATVEC_MAX_ROWS * OUT * 4), *o1 = malloc(OUT * 4), *xb = malloc(MATVEC_MAX_ROWS * IN * 4);
        uint16_t *wb = malloc((size_t)OUT * IN * 2);
        randn(w, (size_t)OUT * IN, 1); randn(b, OUT, 1); randn(x, MATVEC_MAX_ROWS * IN, 1);
        for (size_t i = 0; i < (size_t)OUT * IN; i++) { wb[i] = float_to_bf16(w[i]); w[i] = bf16_to_float(wb[i]); }
        // the input as the kernel sees it: rounded to bf16 where the table meets bf16 weights in bf16 dot products
        for (int i = 0; i < MATVEC_MAX_ROWS * IN; i++) xb[i] = bf16_to_float(float_to_bf16(x[i]));
        // mode 1: inference's product (matmul_forward_infer: bf16 dot products where the table has them)
        for (int mode = 0; mode < 2; mode++)
        for (int bf = 0; bf < 2; bf++)
            for (int N = 1; N <= MATVEC_MAX_ROWS; N += N < 6 ? 1 : 5)
                for (int acc = 0; acc < 2; acc++)
                    for (int hb = 0; hb < 2; hb++) {
                        Mat W = {bf ? MAT_BF16 : MAT_F32, bf ? (void *)wb : (void *)w, OUT, IN};
                        const float *bias = hb ? b : NULL;
                        for (int i = 0; i < N * OUT; i++) o[i] = 0.5f;
                        void (*mv)(float *, const float *, const Mat *, const float *, int, int) =
                            mode ? matmul_forward_infer : matvec_forward;
                        mv(o, x, &W, bias, N, acc);
                        double md = 0;
                        int same = 1;
                        const float *xr = mode && bf && simd()->matvec_rows_bf16dot ? xb : x;
                        for (int i = 0; i < N; i++) {
                            for (int r = 0; r < OUT; r++) {
                                // error relative to the sum of the terms' magnitudes (float rounding grows with it)
                                double d = (bias ? b[r] : 0.0) + (acc ? 0.5 : 0.0), mag = 1.0 + fabs(d);
                                for (int j = 0; j < IN; j++) {
                                    double t = (double)w[(size_t)r * IN + j] * xr[(size_t)i * IN + j];
                                    d += t, mag += fabs(t);
                                }
                                md = fmax(md, fabs(d - o[(size_t)i * OUT + r]) / mag);
                            }
                            // the same row alone gives the same bits
                            for (int r = 0; r < OUT; r++) o1[r] = 0.5f;
                            mv(o1, x + (size_t)i * IN, &W, bias, 1, acc);
                            same &= !memcmp(o1, o + (size_t)i * OUT, OUT * 4);
                        }
                        CHECK(md < 2e-6, "%s matvec%s %dx%d %s N=%d acc=%d bias=%d: error %g", isa,
                              mode ? " (inference)" : "", OUT, IN, bf ? "bf16" : "f32", N, acc, hb, md);
                        CHECK(same, "%s matvec%s %dx%d %s N=%d: a row differs from the row alone", isa,
                              mode ? " (inference)" : "", OUT, IN, bf ? "bf16" : "f32", N);
                    }
        free(w); free(b); free(x); free(o); free(o1); free(wb); free(xb);
    }
}

// The AVX2 and AVX-512 tables share the matvec loop (simd_matvec.h): the same bits, for a
// shape with every kind of tail and 16 rows (tiles of 2 x 3 and 3 x 4); so does avx512bf16
// (its bf16 dot products only in inference).
static void test_matvec_tables_agree(void) {
    if (!isa_supported(ISA_AVX2) || !isa_supported(ISA_AVX512)) return;
    int OUT = 37, IN = 603, N = MATVEC_MAX_ROWS;
    float *w = malloc((size_t)OUT * IN * 4), *x = malloc((size_t)N * IN * 4), *o[3];
    uint16_t *wb = malloc((size_t)OUT * IN * 2);
    randn(w, (size_t)OUT * IN, 1); randn(x, (size_t)N * IN, 1);
    for (size_t i = 0; i < (size_t)OUT * IN; i++) wb[i] = float_to_bf16(w[i]);
    KernelIsa sets[3] = {ISA_AVX2, ISA_AVX512, ISA_AVX512BF16};
    for (int bf = 0; bf < 2; bf++) {
        Mat W = {bf ? MAT_BF16 : MAT_F32, bf ? (void *)wb : (void *)w, OUT, IN};
        int n = isa_supported(ISA_AVX512BF16) ? 3 : 2;
        for (int t = 0; t < n; t++) {
            isa_force(sets[t]);
            o[t] = malloc((size_t)N * OUT * 4);
            matvec_forward(o[t], x, &W, NULL, N, 0);
        }
        for (int t = 1; t < n; t++)
            CHECK(!memcmp(o[0], o[t], (size_t)N * OUT * 4), "matvec %s: %s and avx2 differ", bf ? "bf16" : "f32",
                  isa_name(sets[t]));
        for (int t = 0; t < n; t++) free(o[t]);
    }
    free(w); free(x); free(wb);
}

// A prompt's rows with bf16 weights (up to MATVEC_MAX_ROWS_BF16 rows: the matrix-vector
// path), each row as alone, against double precision; for training (matmul_forward, the
// activations as they are) and for inference (matmul_forward_infer: rounded to bf16 where
// the table meets bf16 weights in bf16 dot products).
static void test_prompt_rows(const char *isa) {
    int OUT = 70, IN = 100, N = MATVEC_MAX_ROWS_BF16 - 3;
    float *w = malloc((size_t)OUT * IN * 4), *x = malloc((size_t)N * IN * 4), *o = malloc((size_t)N * OUT * 4);
    float *o1 = malloc((size_t)OUT * 4);
    uint16_t *wb = malloc((size_t)OUT * IN * 2);
    randn(w, (size_t)OUT * IN, 1); randn(x, (size_t)N * IN, 1);
    for (size_t i = 0; i < (size_t)OUT * IN; i++) wb[i] = float_to_bf16(w[i]);
    Mat W = {MAT_BF16, wb, OUT, IN};
    for (int mode = 0; mode < 2; mode++) {
        void (*mm)(float *, const float *, const Mat *, const float *, int, int) =
            mode ? matmul_forward_infer : matmul_forward;
        int round = mode && simd()->matvec_rows_bf16dot;
        mm(o, x, &W, NULL, N, 0);
        double md = 0;
        int same = 1;
        for (int i = 0; i < N; i++) {
            for (int r = 0; r < OUT; r++) {
                double d = 0, mag = 1;
                for (int j = 0; j < IN; j++) {
                    float xj = x[(size_t)i * IN + j];
                    double t = (double)bf16_to_float(wb[(size_t)r * IN + j]) * (round ? bf16_to_float(float_to_bf16(xj)) : xj);
                    d += t, mag += fabs(t);
                }
                md = fmax(md, fabs(d - o[(size_t)i * OUT + r]) / mag);
            }
            mm(o1, x + (size_t)i * IN, &W, NULL, 1, 0);
            same &= !memcmp(o1, o + (size_t)i * OUT, OUT * 4);
        }
        CHECK(md < 2e-6 && same, "%s bf16 prompt rows (N=%d, %s): error %g, rows as alone %d", isa, N,
              mode ? "inference" : "training", md, same);
    }
    free(w); free(x); free(o); free(o1); free(wb);
}

// Generation's attention (one query row against a KV cache) against double precision:
// grouped and plain heads, head sizes with tails, one position and many, threaded.
static void test_attend(const char *isa) {
    int shapes[][4] = {{9, 3, 64, 1}, {9, 3, 64, 160}, {4, 4, 8, 37}, {6, 2, 48, 33},
                       {14, 2, 13, 5}, {8, 2, 128, 70}, {2, 1, 100, 9}, {5, 5, 3, 2}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int NH = shapes[si][0], NKV = shapes[si][1], HD = shapes[si][2], len = shapes[si][3];
        int KV = NKV * HD, G = NH / NKV, stride = len + 3;
        float *q = malloc((size_t)NH * HD * 4), *k = malloc((size_t)len * KV * 4), *v = malloc((size_t)len * KV * 4);
        float *out = malloc((size_t)NH * HD * 4), *att = malloc((size_t)NH * stride * 4);
        double *sc = malloc((size_t)len * sizeof(double));
        randn(q, (size_t)NH * HD, 0.5f); randn(k, (size_t)len * KV, 1); randn(v, (size_t)len * KV, 1);
        attention_cached_forward(out, att, stride, q, k, v, len, NH, NKV, HD, (AttnScores){0});
        double md = 0;
        for (int h = 0; h < NH; h++) {
            int kh = h / G;
            double mx = -INFINITY, sum = 0;
            for (int t = 0; t < len; t++) {
                double d = 0;
                for (int j = 0; j < HD; j++) d += (double)q[h * HD + j] * k[(size_t)t * KV + kh * HD + j];
                sc[t] = d / sqrt(HD);
                mx = fmax(mx, sc[t]);
            }
            for (int t = 0; t < len; t++) sum += sc[t] = exp(sc[t] - mx);
            for (int j = 0; j < HD; j++) {
                double o = 0;
                for (int t = 0; t < len; t++) o += sc[t] / sum * v[(size_t)t * KV + kh * HD + j];
                md = fmax(md, fabs(o - out[h * HD + j]));
            }
        }
        CHECK(md < 2e-6, "%s attention over the cache NH=%d NKV=%d HD=%d len=%d: error %g", isa, NH, NKV, HD, len, md);
        free(q); free(k); free(v); free(out); free(att); free(sc);
    }
}

static void test_lora_down(const char *isa) {
    // ranks below, at, between and at twice the fused kernels' 8; rows a byte, a vector
    // (8 or 16 floats) and neither wide; N past a multiple of the backward's 8-row blocks
    int shapes[][3] = {{7, 16, 3}, {7, 13, 3}, {9, 40, 8}, {17, 100, 11}, {3, 5, 1}, {10, 37, 8}, {5, 21, 16}};
    for (int si = 0; si < 7; si++) {
        int N = shapes[si][0], IN = shapes[si][1], r = shapes[si][2];
        float p = 0.3f, keep = 1.0f / (1.0f - p);
        float *x = malloc(N * IN * 4), *A = malloc(r * IN * 4), *dax = malloc(N * r * 4), *ax = malloc(N * r * 4);
        float *dA = calloc(r * IN, 4), *dx = calloc(N * IN, 4), *xm = malloc(N * IN * 4);
        uint8_t *bits = calloc((N * IN + 7) / 8, 1);
        randn(x, N * IN, 1); randn(A, r * IN, 1); randn(dax, N * r, 1);
        for (int i = 0; i < N * IN; i++) {
            int kept = rng_uniform(&rng) > p;
            bits[i >> 3] |= (uint8_t)(kept << (i & 7));
            xm[i] = kept ? x[i] * keep : 0.0f;
        }
        lora_down_forward(ax, x, bits, p, A, N, IN, r);
        lora_down_backward(dA, dx, dax, x, bits, p, A, N, IN, r);
        double e1 = 0, e2 = 0, e3 = 0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < r; k++) {
                double s = 0;
                for (int j = 0; j < IN; j++) s += (double)xm[i * IN + j] * A[k * IN + j];
                e1 = fmax(e1, fabs(s - ax[i * r + k]));
            }
        for (int k = 0; k < r; k++)
            for (int j = 0; j < IN; j++) {
                double s = 0;
                for (int i = 0; i < N; i++) s += (double)dax[i * r + k] * xm[i * IN + j];
                e2 = fmax(e2, fabs(s - dA[k * IN + j]));
            }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < IN; j++) {
                double s = 0;
                for (int k = 0; k < r; k++) s += (double)dax[i * r + k] * A[k * IN + j];
                if (!(bits[(i * IN + j) >> 3] >> ((i * IN + j) & 7) & 1)) s = 0;
                e3 = fmax(e3, fabs(s * keep - dx[i * IN + j]));
            }
        CHECK(e1 < 1e-4 && e2 < 1e-4 && e3 < 1e-4, "%s lora_down N=%d IN=%d r=%d: ax %g dA %g dx %g", isa, N, IN, r,
              e1, e2, e3);
        free(x); free(A); free(dax); free(ax); free(dA); free(dx); free(xm); free(bits);
    }
}

// Dropout masks: the same bits in every table, those of the definition (kernels/dropout.c):
// element pair i = e / 2 hashed with the key, its low 16 bits deciding the even element
// and its high 16 bits the odd one, kept when the draw is at least round(p * 65536).
static uint32_t ref_fmix32(uint32_t h) {
    h ^= h >> 16, h *= 0x85ebca6bu, h ^= h >> 13, h *= 0xc2b2ae35u, h ^= h >> 16;
    return h;
}

static void test_dropout_bits(const char *isa) {
    size_t ns[] = {1, 7, 8, 9, 31, 63, 64, 65, 200, 1000, 4099, 70001, 576000};  // past 65536: split between threads
    float ps[] = {0.0f, 0.1f, 0.5f, 1.0f};
    uint64_t keys[] = {0, 0x123456789abcdefull, ~0ull};
    for (int ni = 0; ni < 13; ni++)
        for (int pi = 0; pi < 4; pi++)
            for (int ki = 0; ki < 3; ki++) {
                size_t n = ns[ni], nb = (n + 7) / 8;
                uint8_t *bits = malloc(nb);
                dropout_mask(bits, n, ps[pi], keys[ki]);
                uint32_t thr = (uint32_t)(ps[pi] * 65536.0f + 0.5f), k0 = (uint32_t)keys[ki], k1 = (uint32_t)(keys[ki] >> 32);
                size_t bad = 0, kept = 0;
                for (size_t e = 0; e < nb * 8; e++) {
                    uint32_t h = ref_fmix32(((uint32_t)(e / 2) ^ k0) * 0x9e3779b1u + k1);
                    int want = ((e & 1) ? h >> 16 : h & 0xffff) >= thr, got = bits[e >> 3] >> (e & 7) & 1;
                    bad += want != got, kept += got;
                }
                CHECK(!bad, "%s dropout n=%zu p=%g key %d: %zu bits differ", isa, n, ps[pi], ki, bad);
                if (n == 576000 && pi == 1)  // the kept share is near 1 - p
                    CHECK(fabs((double)kept / (nb * 8) - 0.9) < 0.005, "%s dropout p=0.1 kept %zu of %zu", isa, kept, nb * 8);
                free(bits);
            }
}

// exp within 3e-7 relative over the float range, exact ends; the sum in double
static void test_exp(const char *isa) {
    const SimdKernels *k = simd();
    int n = 4001;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (int i = 0; i < n; i++) x[i] = -104.0f + 194.0f * (float)i / (float)(n - 1);  // -104 .. 90
    for (int len = 1; len <= n; len += len < 40 ? 1 : 997) {
        memcpy(y, x, len * 4);
        double s = k->exp_sum(y, len, 1.5f), ref_s = 0, md = 0;
        for (int i = 0; i < len; i++) {
            double d = x[i] - 1.5f, e = d < -87.3365448 ? 0.0 : exp(d);
            if (e > 3.4028234e38) CHECK(isinf(y[i]), "%s exp(%g) = %g, not inf", isa, d, y[i]);
            else md = fmax(md, fabs(y[i] - e) / (e > 1.17549435e-38 ? e : 1.0)), ref_s += y[i];
        }
        CHECK(md < 3e-7, "%s exp n=%d: relative error %g", isa, len, md);
        if (x[len - 1] - 1.5f < 88.0f) CHECK(fabs(s - ref_s) <= 1e-12 * ref_s, "%s exp sum %g vs %g", isa, s, ref_s);
    }
    float sp[5] = {-INFINITY, NAN, 0.0f, -87.5f, 88.0f};
    k->exp_sum(sp, 5, 0.0f);
    CHECK(sp[0] == 0.0f && isnan(sp[1]) && sp[2] == 1.0f && sp[3] == 0.0f && fabs(sp[4] / exp(88.0) - 1) < 3e-7,
          "%s exp specials: %g %g %g %g %g", isa, sp[0], sp[1], sp[2], sp[3], sp[4]);
    free(x); free(y);
}

static void test_swiglu(const char *isa) {
    for (int n = 1; n <= 70; n += 23) {
        float g[70], u[70], d[70], out[70], dg[70], du[70];
        randn(g, n, 4); randn(u, n, 1); randn(d, n, 1);
        g[0] = -120.0f;  // sigmoid 0
        for (int i = 0; i < n; i++) dg[i] = du[i] = NAN;  // set, not added to
        swiglu_forward(out, g, u, n);
        swiglu_backward(dg, du, d, g, u, n);
        double e1 = 0, e2 = 0;
        for (int i = 0; i < n; i++) {
            double sig = 1.0 / (1.0 + exp(-(double)g[i])), silu = g[i] * sig;
            e1 = fmax(e1, fabs(silu * u[i] - out[i]));
            e2 = fmax(e2, fabs(d[i] * u[i] * sig * (1 + g[i] * (1 - sig)) - dg[i]));
            e2 = fmax(e2, fabs(d[i] * silu - du[i]));
            if (isnan(dg[i]) || isnan(du[i])) e2 = INFINITY;  // fmax would pass a NaN over
        }
        CHECK(e1 < 1e-5 && e2 < 1e-5, "%s swiglu n=%d: %g %g", isa, n, e1, e2);
    }
}

// Gemma's tanh loops (soft-cap, GeGLU forward and backward) against double formulas over
// the float range that matters (|x| up to 40 and the +-inf, NaN ends for the cap), each
// value's result the same bits wherever it sits in a call (generation's rows rely on it)
static void test_tanh(const char *isa) {
    enum { n = 4001 };
    static float x[n], y[n], g[n], u[n], d[n], out[n], dg[n], du[n];
    for (int i = 0; i < n; i++) x[i] = -40.0f + 80.0f * (float)i / (float)(n - 1);
    x[2000] = 1e-30f, x[1] = -1e-3f, x[2] = 0.6249f, x[3] = 0.6251f;  // tiny, small, both sides of 0.625
    memcpy(y, x, sizeof x);
    softcap_forward(y, 2.5f, n);
    double ec = 0;
    for (int i = 0; i < n; i++) ec = fmax(ec, fabs(2.5 * tanh(x[i] / 2.5) - y[i]) / fmax(1e-30, fabs(2.5 * tanh(x[i] / 2.5))));
    CHECK(ec < 1e-6, "%s softcap: relative error %g", isa, ec);
    float sp[4] = {INFINITY, -INFINITY, NAN, -0.0f};
    softcap_forward(sp, 30.0f, 4);
    CHECK(sp[0] == 30.0f && sp[1] == -30.0f && isnan(sp[2]) && sp[3] == 0.0f && signbit(sp[3]),
          "%s softcap specials: %g %g %g %g", isa, sp[0], sp[1], sp[2], sp[3]);
    for (int i = 0; i < n; i++) g[i] = x[i] / 8.0f, dg[i] = du[i] = NAN;
    randn(u, n, 1); randn(d, n, 1);
    geglu_forward(out, g, u, n);
    geglu_backward(dg, du, d, g, u, n);
    double e1 = 0, e2 = 0;
    for (int i = 0; i < n; i++) {
        double v = g[i], b = sqrt(2 / M_PI), k = 0.044715, t = tanh(b * (v + k * v * v * v));
        double gl = 0.5 * v * (1 + t), dgl = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * b * (1 + 3 * k * v * v);
        e1 = fmax(e1, fabs(gl * u[i] - out[i]));
        e2 = fmax(e2, fmax(fabs(d[i] * u[i] * dgl - dg[i]), fabs(d[i] * gl - du[i])));
        if (isnan(dg[i]) || isnan(du[i])) e2 = INFINITY;  // fmax would pass a NaN over
    }
    CHECK(e1 < 1e-5 && e2 < 1e-5, "%s geglu: %g %g", isa, e1, e2);
    // the same values at every offset and call length (vector body, tails)
    int same = 1;
    for (int off = 0; off < 17; off++)
        for (int len = 1; len < 40; len += 7) {
            float a[40], o[40];
            memcpy(a, x + 1990 + off, len * 4);
            softcap_forward(a, 2.5f, len);
            geglu_forward(o, g + 1990 + off, u + 1990 + off, len);
            for (int i = 0; i < len; i++) same &= a[i] == y[1990 + off + i] && o[i] == out[1990 + off + i];
        }
    CHECK(same, "%s softcap / geglu: a value's result depends on its place in the call", isa);
}

// attention's softmax (with padding) and the fused cross-entropy against double formulas
static void test_softmax(const char *isa) {
    AttnShape s = {.B = 2, .T = 21, .NH = 2, .NKV = 1, .HD = 8};
    int QC = s.NH * s.HD, KC = s.NKV * s.HD, BT = s.B * s.T;
    float *q = malloc(BT * QC * 4), *kk = malloc(BT * KC * 4), *v = malloc(BT * KC * 4), *out = malloc(BT * QC * 4);
    float *att = malloc((size_t)s.B * s.NH * s.T * s.T * 4);
    int mask[42];
    for (int i = 0; i < BT; i++) mask[i] = !(i % 5 == 2);
    randn(q, BT * QC, 2); randn(kk, BT * KC, 2); randn(v, BT * KC, 1);
    attention_forward(out, att, q, kk, v, mask, s);
    double md = 0;
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.NH; h++)
            for (int t = 0; t < s.T; t++) {
                double sc[21], mx = -INFINITY, sum = 0;
                for (int u = 0; u <= t; u++) {
                    double d = 0;
                    for (int j = 0; j < s.HD; j++) d += (double)q[(b * s.T + t) * QC + h * s.HD + j] * kk[(b * s.T + u) * KC + j];
                    sc[u] = mask[b * s.T + u] ? d / sqrt(s.HD) : -INFINITY;
                    mx = fmax(mx, sc[u]);
                }
                for (int u = 0; u <= t; u++) sum += mx == -INFINITY ? 0 : exp(sc[u] - mx);
                const float *p = att + (((size_t)b * s.NH + h) * s.T + t) * s.T;
                for (int u = 0; u < s.T; u++) {
                    double e = u <= t && sum > 0 ? exp(sc[u] - mx) / sum : 0.0;
                    md = fmax(md, fabs(e - p[u]));
                }
            }
    CHECK(md < 1e-6, "%s attention softmax: error %g", isa, md);
    free(q); free(kk); free(v); free(out); free(att);

    int N = 6, C = 8, V = 37, targets[6] = {3, -1, 0, 36, 5, 5}, cnt = 0;
    float *x = malloc(N * C * 4), *W = malloc(V * C * 4), *scr = malloc(4 * V * 4), *logits = malloc(V * 4);
    randn(x, N * C, 1); randn(W, V * C, 3);
    Mat Wm = {MAT_F32, W, V, C};
    double loss = lm_head_ce(x, &Wm, targets, N, C, V, 1.0f, 0.0f, NULL, NULL, &cnt, scr, 4), ref = 0;
    for (int i = 0; i < N; i++) {
        if (targets[i] < 0) continue;
        for (int v2 = 0; v2 < V; v2++) {
            double d = 0;
            for (int c = 0; c < C; c++) d += (double)x[i * C + c] * W[v2 * C + c];
            logits[v2] = (float)d;
        }
        ref += ce_row(logits, V, targets[i]);
    }
    CHECK(cnt == 5 && fabs(loss - ref) < 1e-4 * (1 + fabs(ref)), "%s cross-entropy %g vs %g (%d rows)", isa, loss, ref,
          cnt);
    free(x); free(W); free(scr); free(logits);
}

int main(void) {
    rng_seed(&rng, 7);
    test_env();
    int ran = 0;
    for (int i = 0; i < ISA_COUNT; i++) {
        KernelIsa isa = (KernelIsa)i;
        if (!isa_supported(isa)) {
            printf("%s: not supported by this CPU, skipped\n", isa_name(isa));
            continue;
        }
        CHECK(isa_force(isa) == 0 && isa_active() == isa, "cannot select %s", isa_name(isa));
        test_matvec(isa_name(isa));
        test_prompt_rows(isa_name(isa));
        test_attend(isa_name(isa));
        test_lora_down(isa_name(isa));
        test_dropout_bits(isa_name(isa));
        test_exp(isa_name(isa));
        test_swiglu(isa_name(isa));
        test_tanh(isa_name(isa));
        test_softmax(isa_name(isa));
        printf("%s: checked\n", isa_name(isa));
        ran++;
    }
    CHECK(ran >= 1, "no instruction set ran");
    test_matvec_tables_agree();
    TEST_SUMMARY();
}
