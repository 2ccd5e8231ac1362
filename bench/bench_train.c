// Training-step benchmark, antibody side. One measurement per process, so the peak
// resident memory it reports is that step's own:
//
//   build/bench/bench_train SHAPE STEP [REPS] [bf16]
//
// SHAPE: smollm (SmolLM-135M: 576 x 30 layers, 9/3 heads, MLP 1536, vocab 49152, tied),
//        gemma2 (a small Gemma 2: 640 x 12 layers, 4/2 heads of 128, GeGLU MLP 2560, vocab 32000,
//        tied; soft-caps 50/30, sliding window 128 on even layers, query_pre_attn_scalar 128),
//        tinystories (TinyStories-15M: 288 x 6 layers, 6/6 heads, MLP 768, vocab 32000),
//        llama7b (Llama-2-7B: 4096 x 32 layers, 32 heads, MLP 11008, vocab 32000, bf16 weights),
//        opt125m (OPT-125M: 768 x 12 layers, 12 heads, ReLU MLP 3072, vocab 50272, tied, learned positions),
//        opt7b (OPT-6.7B: 4096 x 32 layers, 32 heads, ReLU MLP 16384, vocab 50272, tied, bf16 weights),
//        gemma2_9b (Gemma-2-9B as google/gemma-2-9b's config.json: 3584 x 42 layers, 16/8 heads of
//        256, GeGLU MLP 14336, vocab 256000, tied; soft-caps 50/30, window 4096 on even layers,
//        query_pre_attn_scalar 256; bf16 weights).
// bf16:  keep the base weights in bf16 (widened to f32 in registers; always for the 7B/9B shapes).
// layers=N: the shape's first N layers only (a memory check of a shape too large for the
//        machine: the JSON line says "layers": N; never the real shape's figures).
// STEP:  peak (SGEMM 4096^3 through antibody's SGEMM: the machine's fp32 peak),
//        sft, vaccine, tvaccine (reference), tvaccine-lean, booster (10 harmful rows of T tokens),
//        repnoise (B harmful rows of T tokens, alpha 0.1, beta 0.001, the per-layer losses),
//        tar (its default attack: one SGD step on 10 harmful rows of T tokens, weight 2),
//        lisa (a fine-tuning step with the proximal term), ldifs, generate, generate4 (8 prompts, 4 decoding together), generate16 (16 prompts, all
//        decoding together, as evaluation does), antidote.
// The model is randomly initialised (normal(0, 0.02)); LoRA r=8, alpha 4, dropout 0.1 on
// all seven projections. Training batches are 5 x 200 random tokens with the loss on all
// tokens (every position predicts the next token; the last has no target); the 7B/9B
// shapes use 1 x 128. A step = the method's gradient pass(es) + AdamW on the adapter.
// Prints one JSON line: the median seconds of REPS timed steps after one warm-up step,
// the peak RSS of the process, and what the FLOP count needs (see peer_torch.py table).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "defense/antidote.h"
#include "defense/booster.h"
#include "defense/ldifs.h"
#include "defense/lisa.h"
#include "defense/repnoise.h"
#include "defense/tar.h"
#include "defense/vaccine.h"
#include "eval/generate.h"
#include "io/hf_checkpoint.h"
#include "kernels/kernels.h"
#include "train/optim.h"
#include "train/trainer.h"
#include "util/mem.h"
#include "util/rng.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// CPU seconds of the whole process (all threads): on a shared machine, time not spent
// waiting for a core
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

#define TV_K 200  // T-Vaccine's K (docs/methods.md): the probability pass every K steps

static int shape_config(const char *name, Config *c) {
    memset(c, 0, sizeof *c);
    if (!strcmp(name, "smollm"))
        *c = (Config){.vocab_size = 49152, .dim = 576, .hidden_dim = 1536, .n_layers = 30, .n_heads = 9,
                      .n_kv_heads = 3, .tie_embeddings = 1};
    else if (!strcmp(name, "tinystories"))
        *c = (Config){.vocab_size = 32000, .dim = 288, .hidden_dim = 768, .n_layers = 6, .n_heads = 6,
                      .n_kv_heads = 6, .tie_embeddings = 0};
    else if (!strcmp(name, "llama7b"))
        *c = (Config){.vocab_size = 32000, .dim = 4096, .hidden_dim = 11008, .n_layers = 32, .n_heads = 32,
                      .n_kv_heads = 32, .tie_embeddings = 0};
    else if (!strcmp(name, "opt125m"))
        *c = (Config){.vocab_size = 50272, .dim = 768, .hidden_dim = 3072, .n_layers = 12, .n_heads = 12,
                      .n_kv_heads = 12, .tie_embeddings = 1, .opt = 1};
    else if (!strcmp(name, "opt7b"))
        *c = (Config){.vocab_size = 50272, .dim = 4096, .hidden_dim = 16384, .n_layers = 32, .n_heads = 32,
                      .n_kv_heads = 32, .tie_embeddings = 1, .opt = 1};
    else if (!strcmp(name, "gemma2"))
        *c = (Config){.vocab_size = 32000, .dim = 640, .hidden_dim = 2560, .n_layers = 12, .n_heads = 4,
                      .n_kv_heads = 2, .tie_embeddings = 1};
    else if (!strcmp(name, "gemma2_9b"))
        *c = (Config){.vocab_size = 256000, .dim = 3584, .hidden_dim = 14336, .n_layers = 42, .n_heads = 16,
                      .n_kv_heads = 8, .tie_embeddings = 1};
    else return -1;
    c->head_dim = c->dim / c->n_heads;
    c->max_seq_len = 512;
    c->norm_eps = 1e-5f;
    int nine = !strcmp(name, "gemma2_9b");
    // gemma2: Gemma 2's features at a small size (head_dim 128 != 640 / 4, a window shorter
    // than the 200-token rows); gemma2_9b: google/gemma-2-9b's values
    if (nine || !strcmp(name, "gemma2")) {
        c->head_dim = nine ? 256 : 128;
        c->gemma = 2;
        c->sandwich_norms = 1;
        c->query_scalar = nine ? 256.0f : 128.0f;
        c->attn_softcap = 50.0f;
        c->final_softcap = 30.0f;
        c->sliding_window = nine ? 4096 : 128;
        for (int l = 0; l < c->n_layers; l += 2) c->sliding[0] |= 1ull << l;  // layers 0, 2, ... as Gemma 2
        if (nine) c->max_seq_len = 8192, c->norm_eps = 1e-6f;
    }
    c->rope_theta = 10000.0f;
    c->bos_id = c->pad_id = -1;
    c->n_eos = 0;  // generation never stops early: always max_new tokens
    strcpy(c->arch, c->opt ? "OPTForCausalLM" : c->gemma ? "Gemma2ForCausalLM" : "LlamaForCausalLM");
    strcpy(c->model_type, c->opt ? "opt" : c->gemma ? "gemma2" : "llama");
    if (c->opt) c->max_seq_len = 2048;  // learned positions: the released OPTs' table
    return 0;
}

// ---- a bf16 model built matrix by matrix (the f32 arena of model_init_random would be
// 27 GB for the 7B shape). Uniform(-a, a) with a = 0.02*sqrt(3) (sd 0.02), from a counter
// hash so it fills in parallel; the matrices are separate allocations, freed by free_bf16.
static void fill_bf16(Mat *W, int rows, int cols, uint64_t seed) {
    *W = (Mat){MAT_BF16, xmalloc((size_t)rows * cols * 2), rows, cols};
    uint16_t *d = W->data;
    size_t n = (size_t)rows * cols;
    const float a = 0.02f * 1.7320508f;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double u = (double)(hash64(seed * 0x9e3779b97f4a7c15ULL + i) >> 11) * 0x1.0p-53;
        d[i] = float_to_bf16((float)(2.0 * u - 1.0) * a);
    }
}

// A norm weight that scales by 1: ones, or zeros for Gemma's (1 + w).
static float *unit_norm(const Config *c) {
    float *v = xmalloc((size_t)c->dim * sizeof(float));
    for (int i = 0; i < c->dim; i++) v[i] = c->gemma ? 0.0f : 1.0f;
    return v;
}

static float *zeros(int n) { return xcalloc((size_t)n, sizeof(float)); }

static void init_bf16(Model *m, const Config *c, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    fill_bf16(&m->embed, c->vocab_size, c->dim, seed);
    if (c->tie_embeddings) m->lm_head = m->embed;
    else fill_bf16(&m->lm_head, c->vocab_size, c->dim, seed + 1);
    m->embed_scale = model_embed_scale(c, MAT_BF16);
    m->final_norm = unit_norm(c);
    m->layers = xcalloc(c->n_layers, sizeof(LayerWeights));
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        for (int p = 0; p < N_PROJ; p++) {
            int out, in;
            proj_dims(c, p, &out, &in);
            if (!out) continue;  // OPT has no gate
            fill_bf16(&L->w[p], out, in, seed + 2 + (uint64_t)l * N_PROJ + p);
            if (c->opt) L->bias[p] = zeros(out);
        }
        L->attn_norm = unit_norm(c);
        L->mlp_norm = unit_norm(c);
        if (c->sandwich_norms) L->attn_out_norm = unit_norm(c), L->mlp_out_norm = unit_norm(c);
        if (c->opt) L->attn_norm_b = zeros(c->dim), L->mlp_norm_b = zeros(c->dim);
    }
    if (c->opt) {  // OPT: LayerNorm biases, learned positions (f32, 2050 x C)
        m->final_norm_b = zeros(c->dim);
        m->pos_embed = xmalloc(((size_t)c->max_seq_len + 2) * c->dim * sizeof(float));
        Rng r;
        rng_seed(&r, seed);
        for (size_t i = 0; i < ((size_t)c->max_seq_len + 2) * c->dim; i++) m->pos_embed[i] = 0.02f * rng_normal(&r);
    }
    int half = c->head_dim / 2;
    m->rope_inv_freq = xmalloc((size_t)half * sizeof(float));
    rope_inv_freq(m->rope_inv_freq, c->head_dim, c->rope_theta);
}

static void free_bf16(Model *m) {
    free(m->embed.data);
    if (!m->cfg.tie_embeddings) free(m->lm_head.data);
    free(m->final_norm);
    free(m->final_norm_b);
    free(m->pos_embed);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        for (int p = 0; p < N_PROJ; p++) free(L->w[p].data), free(L->bias[p]);
        free(L->attn_norm);
        free(L->mlp_norm);
        free(L->attn_norm_b);
        free(L->mlp_norm_b);
        free(L->attn_out_norm);
        free(L->mlp_out_norm);
    }
    free(m->layers);
    free(m->rope_inv_freq);
}

// ---- data --------------------------------------------------------------------------
static void random_batch(Batch *b, int B, int T, int V, Rng *r) {
    batch_alloc(b, B, T);
    b->B = B, b->T = T;
    for (int i = 0; i < B * T; i++) { b->tokens[i] = (int)rng_below(r, V); b->mask[i] = 1; }
    for (int i = 0; i < B * T; i++) b->targets[i] = (i % T == T - 1) ? -1 : b->tokens[i + 1];
}

static void random_set(EncodedSet *s, int n, int T, int V, Rng *r) {
    s->n = n;
    s->max_len = T;
    s->ex = xcalloc(n, sizeof(Encoded));
    for (int i = 0; i < n; i++) {
        s->ex[i].ids = xmalloc((size_t)T * sizeof(int));
        for (int t = 0; t < T; t++) s->ex[i].ids[t] = (int)rng_below(r, V);
        s->ex[i].n = T;
        s->ex[i].prompt_len = 0;
    }
}

// ---- what the vector units do: FLOP/s of a register-only loop of fp32 FMAs and of
// AVX512-BF16 dot products (vdpbf16ps: 32 bf16 products summed pairwise into 16 fp32
// lanes), on all threads. Tells whether bf16 matrix products could beat fp32 here.
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
static double isa_peak(int bf16) {
#if defined(__AVX512F__) && defined(__AVX512BF16__)
    const long iters = 20000000;
    double t0 = now();
    float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
    {
        __m512 acc[12];
        for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps(1e-3f * (float)i);
        __m512 xf = _mm512_set1_ps(1.0f), yf = _mm512_set1_ps(1e-9f);
        __m512bh xb = (__m512bh)_mm512_set1_epi32(0x3f803f80), yb = (__m512bh)_mm512_set1_epi32(0x30003000);
        for (long it = 0; it < iters; it++)
            for (int i = 0; i < 12; i++)
                acc[i] = bf16 ? _mm512_dpbf16_ps(acc[i], xb, yb) : _mm512_fmadd_ps(acc[i], xf, yf);
        for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_ps(acc[i]);
    }
    double dt = now() - t0;
    if (sink == 12345.0f) printf("%g", sink);  // keeps the loop
    // FLOP per instruction: 16 lanes x (multiply + add) for the FMA, 16 lanes x 2 products x 2 for the dot
    return (double)iters * 12 * (bf16 ? 64 : 32) * omp_threads() / dt / 1e9;
#else
    (void)bf16;
    return 0.0;  // not this CPU
#endif
}

// ---- the machine's fp32 peak: best of several 4096^3 SGEMMs ----------------------
static int bench_peak(void) {
    int n = 4096;
    float *a = xmalloc((size_t)n * n * sizeof(float)), *b = xmalloc((size_t)n * n * sizeof(float));
    float *c = xcalloc((size_t)n * n, sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        blas_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now() - t0;
        if (rep > 0 && dt < best) best = dt;
    }
    printf("{\"side\": \"antibody\", \"step\": \"peak\", \"seconds\": %.6f, \"gflops\": %.1f, \"blas\": \"%s\", "
           "\"threads\": %d, \"fma_fp32_gflops\": %.1f, \"dot_bf16_gflops\": %.1f}\n",
           best, 2.0 * n * n * (double)n / best / 1e9, blas_name(), omp_threads(), isa_peak(0), isa_peak(1));
    free(a); free(b); free(c);
    return 0;
}

// ---- the vector kernels through each instruction set this CPU runs (kernels.h: isa_force),
// in alternating rounds so that load from other processes hits them alike; the best round
// counts, in wall time and in CPU time (the process's, all threads; with one thread the
// figure that load from other processes disturbs least). matvec: GB/s of weights streamed (the LM head of the shape, 49152 x 576)
// for 1 and 4 input rows, GFLOP/s for 16 (batched decoding: compute-bound);
// lora_down: the forward + backward of one projection's LoRA down-projection (1000 x 1536,
// r 8); swiglu: its forward + backward over 1000 x 1536 (vector exponentials); attend: one
// query row of the SmolLM shape (9 heads, 3 KV heads of 64) against 160 cached positions, in
// microseconds; rmsnorm: its forward + backward over 1000 x 576 (the same code in every
// table); dropout: one 1000 x 1536 mask.
static int bench_kernels(int reps) {
    int OUT = 49152, IN = 576, N = 1000, LIN = 1536, R = 8, NR = MATVEC_MAX_ROWS, AT = 160;
    float *w = xmalloc((size_t)OUT * IN * 4), *x = xmalloc((size_t)NR * IN * 4), *o = xmalloc((size_t)NR * OUT * 4);
    uint16_t *wb = xmalloc((size_t)OUT * IN * 2);
    float *lx = xmalloc((size_t)N * LIN * 4), *A = xmalloc((size_t)R * LIN * 4), *ax = xmalloc((size_t)N * R * 4);
    float *dA = xcalloc((size_t)R * LIN, 4), *dx = xcalloc((size_t)N * LIN, 4);
    float *sw = xcalloc((size_t)N * LIN, 4), *sw2 = xcalloc((size_t)N * LIN, 4);
    float *kv = xmalloc((size_t)2 * AT * 192 * 4), *att = xmalloc((size_t)9 * AT * 4);
    uint8_t *bits = xmalloc(((size_t)N * LIN + 7) / 8);
    Rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < (size_t)OUT * IN; i++) w[i] = 0.02f * rng_normal(&r), wb[i] = float_to_bf16(w[i]);
    for (size_t i = 0; i < (size_t)NR * IN; i++) x[i] = rng_normal(&r);
    for (size_t i = 0; i < (size_t)N * LIN; i++) lx[i] = rng_normal(&r);
    for (size_t i = 0; i < (size_t)R * LIN; i++) A[i] = 0.02f * rng_normal(&r);
    for (size_t i = 0; i < (size_t)2 * AT * 192; i++) kv[i] = rng_normal(&r);
    for (size_t i = 0; i < ((size_t)N * LIN + 7) / 8; i++) bits[i] = (uint8_t)rng_below(&r, 256);
    // matvec f32 N=1, 4, 16, bf16 N=1, 4, 16, lora_down, swiglu, attend, rmsnorm, dropout
    enum { K = 11 };
    static const int rows[6] = {1, 4, MATVEC_MAX_ROWS, 1, 4, MATVEC_MAX_ROWS};
    double best[ISA_COUNT][K], cbest[ISA_COUNT][K];
    for (int i = 0; i < ISA_COUNT; i++)
        for (int k = 0; k < K; k++) best[i][k] = cbest[i][k] = 1e30;
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < ISA_COUNT; i++) {
            if (isa_force((KernelIsa)i)) continue;
            for (int k = 0; k < K; k++) {
                Mat W = {k < 3 ? MAT_F32 : MAT_BF16, k < 3 ? (void *)w : (void *)wb, OUT, IN};
                int it = k < 6 ? (rows[k] > 4 ? 2 : 5) : k == 8 ? 200 : k > 8 ? 20 : 1;
                double t0 = now(), c0 = cpu_now();
                for (int n = 0; n < it; n++) {
                    if (k < 6) matvec_forward(o, x, &W, NULL, rows[k], 0);
                    else if (k == 6) {
                        lora_down_forward(ax, lx, bits, 0.1f, A, N, LIN, R);
                        lora_down_backward(dA, dx, ax, lx, bits, 0.1f, A, N, LIN, R);
                    } else if (k == 7) {
                        swiglu_forward(sw, lx, dx, (size_t)N * LIN);
                        swiglu_backward(dx, sw2, lx, lx, sw, (size_t)N * LIN);
                    } else if (k == 8) {
                        attention_cached_forward(o, att, AT, x, kv, kv + (size_t)AT * 192, AT, 9, 3, 64, (AttnScores){0});
                    } else if (k == 9) {  // x, w, rstd: the first rows of lx, A, ax; out: sw; dx: dx
                        rmsnorm_forward(sw, ax, lx, A, 0.0f, N, IN, 1e-5f);
                        rmsnorm_backward(dx, NULL, sw, lx, A, 0.0f, ax, N, IN);
                    } else {
                        dropout_mask(bits, (size_t)N * LIN, 0.1f, (uint64_t)n + 1);
                    }
                }
                double dt = (now() - t0) / it, dc = (cpu_now() - c0) / it;
                if (dt < best[i][k]) best[i][k] = dt;
                if (dc < cbest[i][k]) cbest[i][k] = dc;
            }
        }
    static const char *const what[K] = {"matvec_f32_gbs", "matvec_f32_n4_gbs", "matvec_f32_n16_gflops",
                                        "matvec_bf16_gbs", "matvec_bf16_n4_gbs", "matvec_bf16_n16_gflops",
                                        "lora_down_ms", "swiglu_ms", "attend_us", "rmsnorm_ms", "dropout_ms"};
    for (int i = 0; i < ISA_COUNT; i++) {
        if (!isa_supported((KernelIsa)i)) continue;
        printf("{\"side\": \"antibody\", \"step\": \"kernels\", \"isa\": \"%s\", \"threads\": %d",
               isa_name((KernelIsa)i), omp_threads());
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < K; k++) {
                double t = c ? cbest[i][k] : best[i][k], bytes = (double)OUT * IN * (k < 3 ? 4 : 2), v;
                if (k < 6) v = rows[k] > 4 ? 2.0 * rows[k] * OUT * IN / t / 1e9 : bytes / t / 1e9;
                else v = (k == 8 ? 1e6 : 1e3) * t;
                printf(", \"%s%s\": %.2f", c ? "cpu_" : "", what[k], v);
            }
        printf("}\n");
    }
    free(w); free(x); free(o); free(wb); free(lx); free(A); free(ax); free(dA); free(dx); free(sw); free(sw2); free(bits);
    free(kv); free(att);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s smollm|tinystories|gemma2|llama7b|opt125m|opt7b|gemma2_9b peak|kernels|sft|vaccine|tvaccine|tvaccine-lean|booster|repnoise|tar|lisa|ldifs|generate|generate4|generate16|"
                        "antidote [REPS] [bf16] [nolora] [model=DIR] [layers=N]\n       %s SHAPE save DIR\n", argv[0], argv[0]);
        return 2;
    }
    const char *isa_problem = isa_env_problem();
    if (isa_problem) { fprintf(stderr, "bench_train: %s\n", isa_problem); return 2; }
    const char *core = blas_openblas_coretype();  // as the command line does (src/cli/main.c)
    if (core) setenv("OPENBLAS_CORETYPE", core, 0);
    Err be;
    if (blas_init(&be)) { fprintf(stderr, "bench_train: %s\n", be.msg); return 2; }
    const char *shape = argv[1], *step = argv[2], *model_dir = NULL;
    int reps = 5, bf16 = 0, nolora = 0, layers = 0;
    for (int i = 3; i < argc && strcmp(step, "save"); i++) {
        if (!strcmp(argv[i], "bf16")) bf16 = 1;
        else if (!strcmp(argv[i], "nolora")) nolora = 1;
        else if (!strncmp(argv[i], "model=", 6)) model_dir = argv[i] + 6;
        else if (!strncmp(argv[i], "layers=", 7) && (layers = atoi(argv[i] + 7)) >= 1) continue;
        else if ((reps = atoi(argv[i])) < 1) { fprintf(stderr, "bench_train: bad argument \"%s\"\n", argv[i]); return 2; }
    }
    if (!strcmp(step, "peak")) return bench_peak();
    if (!strcmp(step, "kernels")) return bench_kernels(reps);
    Config c;
    if (shape_config(shape, &c)) { fprintf(stderr, "bench_train: unknown shape \"%s\"\n", shape); return 2; }
    if (layers > c.n_layers) { fprintf(stderr, "bench_train: %s has %d layers, not %d\n", shape, c.n_layers, layers); return 2; }
    if (layers) c.n_layers = layers;
    int big = !strcmp(shape, "llama7b") || !strcmp(shape, "opt7b") || !strcmp(shape, "gemma2_9b");
    bf16 |= big;
    int B = big ? 1 : 5, T = big ? 128 : 200;
    Rng r;
    rng_seed(&r, 1234);
    Model m;
    double t0 = now();
    if (!strcmp(step, "save")) {  // the shape's random model as a Hugging Face folder (f32), for the llama.cpp peer
        Err e = {{0}};
        if (argc < 4 || big) { fprintf(stderr, "bench_train: save needs a folder (and not the 7B shape)\n"); return 2; }
        model_init_random(&m, &c, 42);
        int rc = model_save(&m, argv[3], MAT_F32, (size_t)1 << 40, &e);
        if (rc) fprintf(stderr, "bench_train: %s\n", e.msg);
        model_free(&m);
        return rc ? 1 : 0;
    }
    if (model_dir) {
        Err e = {{0}};
        if (model_load(&m, model_dir, bf16 ? MAT_BF16 : MAT_F32, &e)) { fprintf(stderr, "bench_train: %s\n", e.msg); return 1; }
        if (m.cfg.dim != c.dim || m.cfg.n_layers != c.n_layers || m.cfg.vocab_size != c.vocab_size) {
            fprintf(stderr, "bench_train: %s is not the %s shape\n", model_dir, shape);
            return 1;
        }
        m.cfg.n_eos = 0;  // generation never stops early: always max_new tokens
    } else if (bf16) init_bf16(&m, &c, 42);
    else model_init_random(&m, &c, 42);
    double init_s = now() - t0;
    size_t model_rss = rss_bytes();
    Lora lora;
    lora_init(&lora, &m, 8, 4.0f, 0.1f, proj_mask_of(&c), 7);  // all seven (Llama), all six (OPT)
    const Lora *gl = nolora ? NULL : &lora;  // generation: with the adapter, or the base model alone
    double *times = xmalloc((size_t)(reps + 1) * sizeof(double)), *cpu = xmalloc((size_t)(reps + 1) * sizeof(double));
    char extra[512] = "";
    size_t ws_bytes = 0;
    int tokens = 0;

    int tv = !strcmp(step, "tvaccine") || !strcmp(step, "tvaccine-lean");
    int baseline = !strcmp(step, "booster") || !strcmp(step, "repnoise") || !strcmp(step, "tar") || !strcmp(step, "lisa") ||
                   !strcmp(step, "ldifs");
    if (!strcmp(step, "sft") || !strcmp(step, "vaccine") || tv || baseline) {
        Batch b;
        random_batch(&b, B, T, c.vocab_size, &r);
        EncodedSet harmful = {0};
        StepMethod *sm;
        if (!strcmp(step, "sft")) sm = sft_method_new();
        else if (!strcmp(step, "vaccine")) sm = vaccine_method_new(&m, B, T, 2.0f);
        else if (!strcmp(step, "booster")) {
            random_set(&harmful, 10, T, c.vocab_size, &r);
            BoosterOpts o = {.lambda = 5, .alpha = 0.1f, .batch = 10, .grad_accum = 1, .harmful = &harmful, .seed = 99};
            sm = booster_method_new(&m, &lora, &o);
        } else if (!strcmp(step, "repnoise")) {
            random_set(&harmful, B, T, c.vocab_size, &r);
            RepNoiseOpts o = {.alpha = 0.1f, .beta = 1e-3f, .batch = B, .grad_accum = 1, .layer_ce = 1, .bf16_labels = 1,
                              .harmful = &harmful, .seed = 99};
            sm = repnoise_method_new(&m, &lora, B, T, &o);
        } else if (!strcmp(step, "tar")) {
            random_set(&harmful, 10, T, c.vocab_size, &r);
            TarOpts o = {.weight = 2, .inner_lr = 0.01f, .inner_steps = 1, .batch = 10, .grad_accum = 1, .harmful = &harmful, .seed = 99};
            sm = tar_method_new(&m, &lora, &o);
        } else if (!strcmp(step, "lisa")) {  // fine-tuning state with the proximal term (the alignment state costs the same)
            LisaOpts o = {.rho = 1, .align_steps = 0, .finetune_steps = 900, .proximal_after = -1, .batch = B, .grad_accum = 1};
            sm = lisa_method_new(&m, &lora, &o);
        } else if (!strcmp(step, "ldifs")) sm = ldifs_method_new(&m, B, T, 1e-4f);
        else {
            random_set(&harmful, 200, T, c.vocab_size, &r);  // the probability pool (tv_pool, 200 rows)
            TVaccineOpts o = {.rho = 3.0f, .K = TV_K, .J = 20, .S = 8, .harmful = &harmful,
                              .variant = !strcmp(step, "tvaccine-lean") ? TV_LEAN : TV_REFERENCE};
            sm = tvaccine_method_new(&m, B, T, &o, 99);
        }
        Workspace *w = workspace_new(&m, &lora, sm->max_B > B ? sm->max_B : B, T, 0);
        float *m1 = xcalloc(lora.n_params, sizeof(float)), *m2 = xcalloc(lora.n_params, sizeof(float));
        AdamW opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f};
        double probe_s = 0, probe_cpu = 0;
        for (int s = 0; s <= reps; s++) {  // step 0 is the warm-up (and T-Vaccine's probability pass)
            double ts = now(), cs = cpu_now();
            const int *trainable = sm->begin_step ? sm->begin_step(sm, &m, &lora, w, s) : NULL;
            (void)trainable;  // T-Vaccine's inactive layers get no gradient: their update is decay only
            if (s == 0) probe_s = now() - ts, probe_cpu = cpu_now() - cs;
            memset(w->lora_grad, 0, lora.n_params * sizeof(float));
            sm->grad(sm, &m, &lora, w, &b, 1.0f, hash64((uint64_t)s));
            clip_grad_norm(w->lora_grad, lora.n_params, 1.0f);
            adamw_update(&opt, lora.params, w->lora_grad, m1, m2, lora.n_params, 1e-3f, 0.1f, s + 1);
            times[s] = now() - ts, cpu[s] = cpu_now() - cs;
        }
        tokens = B * T;
        if (tv) {
            const int *act = tvaccine_active(sm);  // the layers the timed steps trained (the peer trains them too)
            int n = snprintf(extra, sizeof extra, ", \"active\": \"");
            int first = 1;
            for (int l = 0; l < c.n_layers; l++)
                if (act[l]) n += snprintf(extra + n, sizeof extra - n, "%s%d", first ? "" : ",", l), first = 0;
            // the pass again, warm as every other row's timed steps (step 0 met every product shape
            // first); it samples new layers, hence after the list above
            double ts = now(), cs = cpu_now();
            sm->begin_step(sm, &m, &lora, w, TV_K);
            snprintf(extra + n, sizeof extra - n, "\", \"probe_s\": %.4f, \"probe_cpu_s\": %.4f, \"probe_cold_s\": %.4f, "
                     "\"probe_cold_cpu_s\": %.4f", now() - ts, cpu_now() - cs, probe_s, probe_cpu);
        }
        ws_bytes = w->bytes;  // after the steps: with the activation slots they allocated
        free(m1); free(m2);
        workspace_free(w);
        step_method_free(sm);
        if (harmful.ex) encoded_free(&harmful);
        batch_free(&b);
    } else if (!strcmp(step, "generate")) {
        int n_prompt = 32, max_new = 128;
        KVCache *kc = kvcache_new(&m, n_prompt + max_new, n_prompt);
        int prompt[32], out[128];
        for (int i = 0; i < n_prompt; i++) prompt[i] = (int)rng_below(&r, c.vocab_size);
        GenOpts go = {.max_new = max_new, .temperature = 0.0f, .top_p = 1.0f, .seed = 1};
        for (int s = 0; s <= reps; s++) {
            double ts = now(), cs = cpu_now();
            int k = generate_ids(&m, gl, kc, prompt, n_prompt, &go, out);
            times[s] = now() - ts, cpu[s] = cpu_now() - cs;
            if (k != max_new) { fprintf(stderr, "bench_train: generated %d tokens, not %d\n", k, max_new); return 1; }
        }
        tokens = max_new;
        snprintf(extra, sizeof extra, ", \"prompt\": %d", n_prompt);
        kvcache_free(kc);
    } else if (!strcmp(step, "generate4") || !strcmp(step, "generate16")) {
        // evaluation-style: 8 prompts, 4 decoding together; or 16 prompts all together (evaluation's batch)
        enum { NP = 32, NEW = 128 };
        int S = !strcmp(step, "generate4") ? 4 : 16, NPR = S == 4 ? 8 : 16;
        int *prompts[16], *outs[16], lens[16], n_out[16];
        for (int i = 0; i < NPR; i++) {
            prompts[i] = xmalloc(NP * sizeof(int));
            outs[i] = xmalloc(NEW * sizeof(int));
            lens[i] = NP;
            for (int t = 0; t < NP; t++) prompts[i][t] = (int)rng_below(&r, c.vocab_size);
        }
        GenOpts go = {.max_new = NEW, .temperature = 0.0f, .top_p = 1.0f, .seed = 1};
        for (int s = 0; s <= reps; s++) {
            double ts = now(), cs = cpu_now();
            generate_batch(&m, gl, prompts, lens, NPR, &go, S, outs, n_out, NULL, NULL);
            times[s] = now() - ts, cpu[s] = cpu_now() - cs;
            for (int i = 0; i < NPR; i++)
                if (n_out[i] != NEW) { fprintf(stderr, "bench_train: generated %d tokens, not %d\n", n_out[i], NEW); return 1; }
        }
        tokens = NPR * NEW;
        snprintf(extra, sizeof extra, ", \"prompt\": %d, \"prompts\": %d, \"batch\": %d", NP, NPR, S);
        for (int i = 0; i < NPR; i++) free(prompts[i]), free(outs[i]);
    } else if (!strcmp(step, "antidote")) {
        EncodedSet calib;
        random_set(&calib, 8, 200, c.vocab_size, &r);
        for (int s = 0; s <= reps; s++) {
            PruneOpts po = {.dense_ratio = 0.8, .full_mode = 0, .seed = 3};
            PruneReport rep;
            Err e = {{0}};
            double ts = now(), cs = cpu_now();
            if (antidote_prune(&m, &lora, &calib, &po, &rep, &e)) { fprintf(stderr, "bench_train: %s\n", e.msg); return 1; }
            times[s] = now() - ts, cpu[s] = cpu_now() - cs;
        }
        tokens = 8 * 200;
        snprintf(extra, sizeof extra, ", \"samples\": 8");
        encoded_free(&calib);
    } else {
        fprintf(stderr, "bench_train: unknown step \"%s\"\n", step);
        return 2;
    }
    double med = median(times + 1, reps), cpu_med = median(cpu + 1, reps);
    printf("{\"side\": \"antibody\", \"shape\": \"%s\", \"step\": \"%s%s%s\", \"seconds\": %.6f, \"warmup_s\": %.4f, "
           "\"cpu_seconds\": %.6f, \"reps\": %d, \"tokens\": %d, \"peak_rss\": %zu, \"model_rss\": %zu, \"workspace_bytes\": %zu, "
           "\"init_s\": %.2f, \"threads\": %d, \"weights\": \"%s\", \"blas\": \"%s\", \"isa\": \"%s\", "
           "\"lora\": %d, \"layers\": %d, \"lora_params\": %zu%s}\n",
           shape, step, bf16 && !big ? "_bf16" : "", nolora ? "_nolora" : "", med, times[0], cpu_med, reps, tokens,
           peak_rss_bytes(), model_rss, ws_bytes, init_s, omp_threads(), bf16 ? "bf16" : "f32", blas_name(),
           isa_name(isa_active()), !nolora, c.n_layers, lora.n_params, extra);
    free(times);
    free(cpu);
    lora_free(&lora);
    if (bf16 && !model_dir) free_bf16(&m);
    else model_free(&m);
    char *profile = blas_profile_text();  // builds with -DANTIBODY_GEMM_PROFILE
    if (profile) fputs(profile, stderr);
    free(profile);
    return 0;
}
