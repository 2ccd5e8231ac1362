// Pins down RepNoise (docs/methods.md, RepNoise): the masks and targets of its losses (rows
// compared position by position, zeroed-logit positions, label 0, bf16-rounded labels); with
// alpha = beta = 0 it is SFT bit for bit on rows that differ everywhere from their harmful
// partners, and learns nothing from rows equal to them; its noise is N(0, 1) on the masked
// positions and 0 elsewhere; its harmful batches are a function of the step; its loss is
// R + beta N - alpha log H; its gradient (harmful ascent through every layer) by central
// differences.
#include <string.h>
#include <unistd.h>

#include "defense/repnoise.h"
#include "testing.h"
#include "tiny_fixture.h"
#include "util/rng.h"

static TrainOpts small_opts(int steps) {
    TrainOpts o;
    train_opts_default(&o);
    o.batch_size = 2;
    o.max_steps = steps;
    o.epochs = 100;
    o.lr = 1e-2f;
    o.warmup_ratio = 0;
    o.checkpoint_minutes = 0;
    o.label = "test";
    return o;
}

static float *train_with(Model *m, EncodedSet *d, const RepNoiseOpts *rn, const TrainOpts *o, size_t *n) {
    Lora lo;
    lora_init(&lo, m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 9);
    StepMethod *s = rn ? repnoise_method_new(m, &lo, o->batch_size, d->max_len, rn) : sft_method_new();
    TrainLog log;
    Err e;
    int rc = train_run(m, &lo, d, o, s, &log, &e);
    CHECK(rc == 0, "%s: %s", s->name, e.msg);
    if (rc == 0) train_log_free(&log);
    float *p = xmalloc(lo.n_params * 4);
    memcpy(p, lo.params, lo.n_params * 4);
    *n = lo.n_params;
    step_method_free(s);
    lora_free(&lo);
    return p;
}

// Rows of tokens in [lo, lo + span), each a prompt of prompt_len tokens and an answer.
static void rows_in(EncodedSet *s, int n, int lo, int span, int prompt_len, uint64_t seed) {
    tiny_data(s, n, seed);
    Rng r;
    rng_seed(&r, seed + 100);
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < s->ex[i].n; t++) s->ex[i].ids[t] = lo + (int)rng_below(&r, span);
        s->ex[i].prompt_len = prompt_len;
    }
}

static void test_masks(void) {
    // x: 2 rows of 6 (row 1 padded after 4); y: 1 row of 4
    int xt[12] = {1, 2, 3, 300, 5, 6, 7, 257, 259, 0, 9, 9}, xm[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    int yt[4] = {1, 2, 9, 300}, ym[4] = {1, 1, 1, 1};
    Batch x = {2, 6, xt, NULL, xm}, y = {1, 4, yt, NULL, ym};
    int keep[12], tg[12], nz;
    repnoise_diff_mask(&x, &y, keep);
    int want_keep[12] = {0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0};
    CHECK(memcmp(keep, want_keep, sizeof keep) == 0, "mask");
    int n = repnoise_targets(&x, keep, 0, 1000, tg, &nz);
    // row 0: t=1 predicts 3 (keep[1] = 0: zeroed logits), t=3 predicts 5 (keep[3] = 0), t=4 -> 6
    // row 1: t=0 -> 257, t=1 -> 259, t=2 predicts id 0: ignored
    int want_tg[12] = {-1, -1, -1, -1, 6, -1, 257, 259, -1, -1, -1, -1};
    CHECK(n == 3 && nz == 2 && memcmp(tg, want_tg, sizeof tg) == 0, "targets: %d with a target, %d zeroed", n, nz);
    n = repnoise_targets(&x, keep, 1, 1000, tg, &nz);  // bf16: 257 -> 256, 259 -> 260 (ties to even)
    CHECK(n == 3 && tg[6] == 256 && tg[7] == 260 && tg[4] == 6, "bf16 targets %d %d %d", tg[4], tg[6], tg[7]);
    n = repnoise_targets(&x, keep, 1, 258, tg, &nz);  // 259 -> 260 is not below V: the id stays
    CHECK(tg[6] == 256 && tg[7] == 259, "bf16 target past the vocabulary: %d", tg[7]);
    repnoise_diff_mask(&x, NULL, keep);  // no partner: every real token
    CHECK(memcmp(keep, xm, sizeof keep) == 0, "mask without a partner row");
}

static StepMethod *fresh(const Model *m, const Lora *l, const EncodedSet *harm, float alpha, float beta, int layer_ce,
                         int bf16) {
    RepNoiseOpts o = {.alpha = alpha, .beta = beta, .batch = 2, .grad_accum = 1, .layer_ce = layer_ce,
                      .bf16_labels = bf16, .harmful = harm, .seed = 4};
    return repnoise_method_new(m, l, 2, 12, &o);
}

static void test_sft_equivalence(void) {
    Config cfg = tiny_config(3);
    Model m;
    model_init_random(&m, &cfg, 6);
    EncodedSet d, harm;
    rows_in(&d, 6, 1, 15, 1, 2);      // every token but the first is a target, as in the retain loss
    rows_in(&harm, 5, 16, 15, 3, 3);  // no token in common with the safe rows at any position
    size_t n;
    TrainOpts o = small_opts(5);
    o.grad_accum = 2;
    float *sft = train_with(&m, &d, NULL, &o, &n);
    RepNoiseOpts r0 = {.alpha = 0, .beta = 0, .batch = 2, .grad_accum = 2, .layer_ce = 1, .bf16_labels = 1,
                       .harmful = &harm, .seed = 4};
    float *p0 = train_with(&m, &d, &r0, &o, &n);
    CHECK(max_diff(sft, p0, n) == 0.0, "RepNoise with alpha = beta = 0 differs from SFT by %g", max_diff(sft, p0, n));
    RepNoiseOpts r1 = r0;
    r1.alpha = 0.1f;
    r1.beta = 1e-3f;
    float *p1 = train_with(&m, &d, &r1, &o, &n);
    CHECK(max_diff(sft, p1, n) > 1e-6, "RepNoise with its defaults equals SFT");
    // harmful rows equal to the safe rows (a set of two equal rows, so any draw pairs equals):
    // no position differs, no loss, no gradient
    EncodedSet same;
    tiny_data(&same, 2, 21);
    same.ex[1].n = same.ex[0].n;
    same.ex[1].prompt_len = same.ex[0].prompt_len;
    free(same.ex[1].ids);
    same.ex[1].ids = xmalloc(same.ex[0].n * sizeof(int));
    memcpy(same.ex[1].ids, same.ex[0].ids, same.ex[0].n * sizeof(int));
    Lora lo;
    lora_init(&lo, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 9);
    StepMethod *s = fresh(&m, &lo, &same, 0.1f, 1e-3f, 1, 1);
    Workspace *w = workspace_new(&m, &lo, 2, 12, 0);
    Batch bt;
    batch_alloc(&bt, 2, 12);
    int idx[2] = {0, 1};
    batch_fill(&bt, &same, idx, 2, 0);
    memset(w->lora_grad, 0, lo.n_params * 4);
    s->begin_step(s, &m, &lo, w, 0);
    float loss = s->grad(s, &m, &lo, w, &bt, 1.0f, 7);
    RepNoiseTerms t = repnoise_terms(s);
    double gmax = 0;
    for (size_t i = 0; i < lo.n_params; i++) gmax = fmax(gmax, fabs(w->lora_grad[i]));
    CHECK(loss == 0.0f && t.n_harm == 0 && t.n_safe == 0 && gmax == 0.0,
          "identical rows: loss %g, %d and %d tokens, gradient %g", loss, t.n_harm, t.n_safe, gmax);
    encoded_free(&same);
    step_method_free(s);
    // refused: no harmful rows, no adapter
    EncodedSet none = {0};
    RepNoiseOpts rn = r1;
    rn.harmful = &none;
    CHECK(repnoise_method_new(&m, &lo, 2, 12, &rn) == NULL, "RepNoise without harmful rows accepted");
    CHECK(repnoise_method_new(&m, NULL, 2, 12, &r1) == NULL, "RepNoise without an adapter accepted");
    workspace_free(w); batch_free(&bt);
    lora_free(&lo);
    free(sft); free(p0); free(p1);
    encoded_free(&d); encoded_free(&harm);
    model_free(&m);
}

// The step's draws, noise and reported terms.
static void test_draws_and_terms(void) {
    Config cfg = tiny_config(3);
    Model m;
    model_init_random(&m, &cfg, 8);
    EncodedSet d, harm;
    tiny_data(&d, 4, 5);
    rows_in(&harm, 9, 1, 30, 2, 6);
    Lora lo;
    lora_init(&lo, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 9);
    Workspace *w = workspace_new(&m, &lo, 2, 12, 0);
    Batch bt;
    batch_alloc(&bt, 2, 12);
    int idx[2] = {0, 1};
    batch_fill(&bt, &d, idx, 2, 0);
    StepMethod *s = fresh(&m, &lo, &harm, 0.1f, 1e-3f, 1, 1), *s2 = fresh(&m, &lo, &harm, 0.1f, 1e-3f, 1, 1);
    int toks[5][24], T[5];
    for (int step = 0; step < 5; step++) {
        memset(w->lora_grad, 0, lo.n_params * 4);
        s->begin_step(s, &m, &lo, w, step);
        float loss = s->grad(s, &m, &lo, w, &bt, 1.0f, 11);
        const Batch *hb = repnoise_harmful_batch(s);
        T[step] = hb->T;
        memcpy(toks[step], hb->tokens, (size_t)hb->B * hb->T * sizeof(int));
        RepNoiseTerms t = repnoise_terms(s);
        double want = t.retain + 1e-3 * t.noise - 0.1 * log(t.harmful);
        CHECK(close_enough(loss, want, 1e-6, 1e-6) && t.harmful > 1 && t.noise > 0 && t.retain > 0,
              "step %d: loss %g, R %g + beta N %g - alpha log H %g", step, loss, t.retain, t.noise, t.harmful);
        if (step == 3) {  // the noise: N(0, 1) where the mask is 1, 0 elsewhere, the same when regenerated
            size_t N = (size_t)hb->B * hb->T, C = cfg.dim;
            float *z = xmalloc(N * C * 4), *z2 = xmalloc(N * C * 4);
            int *keep = xmalloc(N * sizeof(int));
            repnoise_diff_mask(hb, &bt, keep);
            repnoise_noise(s, 2, z);
            repnoise_noise(s, 2, z2);
            int zero_ok = 1, nk = 0;
            double s1 = 0, s2v = 0;
            for (size_t i = 0; i < N; i++)
                for (size_t j = 0; j < C; j++) {
                    float v = z[i * C + j];
                    if (!keep[i]) zero_ok &= v == 0.0f;
                    else nk++, s1 += v, s2v += (double)v * v;
                }
            CHECK(zero_ok && nk > 100 && memcmp(z, z2, N * C * 4) == 0, "noise: %d masked values", nk);
            CHECK(fabs(s1 / nk) < 0.2 && fabs(s2v / nk - 1) < 0.25, "noise mean %g, variance %g", s1 / nk, s2v / nk);
            repnoise_noise(s, 1, z2);
            CHECK(memcmp(z, z2, N * C * 4) != 0, "two layers got the same noise");
            free(z); free(z2); free(keep);
        }
    }
    int differ = 0;
    for (int step = 1; step < 5; step++)
        differ += T[step] != T[0] || memcmp(toks[step], toks[0], (size_t)2 * T[0] * sizeof(int)) != 0;
    CHECK(differ >= 3, "harmful batches repeat: %d of 4 differ from the first", differ);
    // another method started at step 3 (a resumed run) draws what the first drew there
    s2->begin_step(s2, &m, &lo, w, 3);
    s2->grad(s2, &m, &lo, w, &bt, 1.0f, 11);
    const Batch *hb = repnoise_harmful_batch(s2);
    CHECK(hb->T == T[3] && memcmp(hb->tokens, toks[3], (size_t)hb->B * hb->T * sizeof(int)) == 0,
          "a resumed run draws another harmful batch");
    step_method_free(s); step_method_free(s2);
    workspace_free(w); batch_free(&bt);
    lora_free(&lo);
    encoded_free(&d); encoded_free(&harm);
    model_free(&m);
}

// The step's objective R - alpha log H by central differences (beta = 0: the noise term's
// bandwidth follows the samples, which the loss holds constant; its gradient is checked in
// tests/test_gradcheck.c and against torch in tests/oracle/test_repnoise_hf.py).
typedef struct { Model *m; Lora *lo; Workspace *w; Batch *b; StepMethod *s; float alpha; } StepFd;
static double step_obj(StepFd *c) {
    memset(c->w->lora_grad, 0, c->lo->n_params * 4);
    c->s->begin_step(c->s, c->m, c->lo, c->w, 2);
    c->s->grad(c->s, c->m, c->lo, c->w, c->b, 1.0f, 5);
    RepNoiseTerms t = repnoise_terms(c->s);
    return t.retain - c->alpha * log(t.harmful);
}

static void check_step_gradient(int layer_ce, int bf16, float alpha) {
    Config cfg = tiny_config(3);
    Model m;
    model_init_random(&m, &cfg, 10);
    EncodedSet d, harm;
    tiny_data(&d, 4, 12);
    rows_in(&harm, 6, 1, 30, 2, 13);
    Lora lo;
    lora_init(&lo, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 9);
    Rng r;
    rng_seed(&r, 14);
    for (size_t i = 0; i < lo.n_params; i++) lo.params[i] = 0.2f * rng_normal(&r);
    Batch b;
    batch_alloc(&b, 2, 12);
    int idx[2] = {1, 3};
    batch_fill(&b, &d, idx, 2, 0);
    Workspace *w = workspace_new(&m, &lo, 2, 12, 0);
    StepMethod *s = fresh(&m, &lo, &harm, alpha, 0.0f, layer_ce, bf16);
    StepFd c = {&m, &lo, w, &b, s, alpha};
    step_obj(&c);
    float *ga = xmalloc(lo.n_params * 4);
    memcpy(ga, w->lora_grad, lo.n_params * 4);
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < lo.n_params; i++) gmax = fmax(gmax, fabs(ga[i]));
    float h = 3e-3f;
    for (int k = 0; k < 120; k++) {
        size_t i = (size_t)rng_below(&r, lo.n_params);
        float keep = lo.params[i];
        lo.params[i] = keep + h; double fp = step_obj(&c);
        lo.params[i] = keep - h; double fm = step_obj(&c);
        lo.params[i] = keep;
        double num = (fp - fm) / (2.0 * h);
        worst = fmax(worst, fabs(num - ga[i]) / (fabs(num) + fabs(ga[i]) + 0.01 * gmax + 1e-6));
    }
    printf("RepNoise step gradient (layer_ce %d, bf16 labels %d, alpha %g): worst relative error %.2e over 120 probes\n",
           layer_ce, bf16, alpha, worst);
    CHECK(worst < 1e-2, "RepNoise gradient off by %g (relative)", worst);
    // the ascent term matters: the gradient differs from the retain loss's alone
    StepMethod *s0 = fresh(&m, &lo, &harm, 0.0f, 0.0f, layer_ce, bf16);
    c.s = s0;
    step_obj(&c);
    CHECK(max_diff(ga, w->lora_grad, lo.n_params) > 1e-3 * gmax, "the harmful term adds nothing to the gradient");
    step_method_free(s); step_method_free(s0);
    workspace_free(w); batch_free(&b); free(ga);
    lora_free(&lo);
    encoded_free(&d); encoded_free(&harm);
    model_free(&m);
}

int main(int argc, char **argv) {
    // one thread, as tests/test_baselines.c: two runs in one process are then bit-identical
    const char *th = getenv("OMP_NUM_THREADS");
    if (argc > 0 && (!th || strcmp(th, "1"))) {
        setenv("OMP_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 2;
    }
    setenv("ANTIBODY_PROGRESS", "0", 1);
    test_masks();
    test_sft_equivalence();
    test_draws_and_terms();
    check_step_gradient(1, 0, 0.5f);
    check_step_gradient(1, 1, 0.5f);
    check_step_gradient(0, 0, 0.5f);
    TEST_SUMMARY();
}
