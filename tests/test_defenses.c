// Pins down the methods (issue 4 item 7): Vaccine's perturbation and update, rho = 0
// equals SFT, T-Vaccine's sampling, frozen layers and skipped backward, Antidote's masks.
#include <string.h>

#include "defense/antidote.h"
#include "defense/vaccine.h"
#include "testing.h"
#include "tiny_fixture.h"

static void test_vaccine_step(void) {
    Config cfg = tiny_config(3);
    Model m;
    model_init_random(&m, &cfg, 5);
    Lora lo;
    lora_init(&lo, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 9);
    for (size_t i = 0; i < lo.n_params; i++) lo.params[i] += 0.05f * (float)((i * 2654435761u) % 1000) / 1000.0f;
    EncodedSet d;
    tiny_data(&d, 4, 1);
    Batch b;
    batch_alloc(&b, 4, 12);
    int idx[4] = {0, 1, 2, 3};
    batch_fill(&b, &d, idx, 4, 0);
    Workspace *w = workspace_new(&m, &lo, 4, 12, 0);
    size_t NC = (size_t)w->capN * cfg.dim;
    float rho = 2.0f;
    // the method's gradients
    StepMethod *v = vaccine_method_new(&m, 4, 12, rho);
    memset(w->lora_grad, 0, lo.n_params * 4);
    v->grad(v, &m, &lo, w, &b, 1.0f, 77);
    float *gv = malloc(lo.n_params * 4);
    memcpy(gv, w->lora_grad, lo.n_params * 4);
    // by hand: record dL/dh_l, build eps, check its norm and direction, then a plain perturbed step
    Perturbation p;
    perturbation_init(&p, &m, 4, 12);
    perturbation_assign(&p, NULL);
    ForwardOpts f1 = {.train = 1};
    model_forward(&m, &lo, w, &b, &f1);
    BackwardOpts b1 = {.param_grads = 0, .attn_grad = p.g};
    model_backward(&m, &lo, w, &b1);
    size_t n = (size_t)w->N * cfg.dim;
    float **g0 = malloc(cfg.n_layers * sizeof(float *));
    for (int l = 0; l < cfg.n_layers; l++) { g0[l] = malloc(n * 4); memcpy(g0[l], p.g[l], n * 4); }
    double G = vaccine_perturbation(&p, rho, n);
    double norm = 0, dot = 0, gg = 0;
    for (int l = 0; l < cfg.n_layers; l++) {
        norm += vec_sumsq(p.eps[l], n);
        for (size_t i = 0; i < n; i++) { dot += (double)p.eps[l][i] * g0[l][i]; gg += (double)g0[l][i] * g0[l][i]; }
    }
    CHECK(G > 0);
    CHECK(close_enough(sqrt(norm), rho, 1e-5, 0), "||eps|| = %.8f, rho = %g", sqrt(norm), rho);
    CHECK(close_enough(dot / (sqrt(norm) * sqrt(gg)), 1.0, 1e-6, 0), "eps is not along the recorded gradient");
    memset(w->lora_grad, 0, lo.n_params * 4);
    ForwardOpts f2 = {.train = 1, .perturb = p.eps};
    model_forward(&m, &lo, w, &b, &f2);
    BackwardOpts b2 = {.param_grads = 1};
    model_backward(&m, &lo, w, &b2);
    CHECK(max_diff(gv, w->lora_grad, lo.n_params) < 1e-7, "Vaccine gradients differ from a plain perturbed step by %g",
          max_diff(gv, w->lora_grad, lo.n_params));
    // and the perturbed step really differs from the clean one
    memset(w->lora_grad, 0, lo.n_params * 4);
    model_forward(&m, &lo, w, &b, &f1);
    model_backward(&m, &lo, w, &b2);
    CHECK(max_diff(gv, w->lora_grad, lo.n_params) > 1e-6, "the perturbation changed nothing");
    for (int l = 0; l < cfg.n_layers; l++) free(g0[l]);
    free(g0); free(gv);
    (void)NC;
    perturbation_free(&p);
    step_method_free(v);
    workspace_free(w);
    batch_free(&b);
    encoded_free(&d);
    lora_free(&lo);
    model_free(&m);
}

// Trains a fresh adapter (same init) with a method; returns the parameters.
static float *train_with(Model *m, EncodedSet *d, StepMethod *s, int steps, size_t *n, float dropout) {
    Lora lo;
    lora_init(&lo, m, 4, 8.0f, dropout, (1 << N_PROJ) - 1, 9);
    TrainOpts o;
    train_opts_default(&o);
    o.batch_size = 2;
    o.max_steps = steps;
    o.epochs = 100;
    o.lr = 1e-2f;
    o.warmup_ratio = 0;
    o.label = s->name;
    TrainLog log;
    Err e;
    setenv("ANTIBODY_PROGRESS", "0", 1);
    int rc = train_run(m, &lo, d, &o, s, &log, &e);
    CHECK(rc == 0, "%s", e.msg);
    train_log_free(&log);
    float *p = malloc(lo.n_params * 4);
    memcpy(p, lo.params, lo.n_params * 4);
    *n = lo.n_params;
    lora_free(&lo);
    return p;
}

static void test_rho_zero_is_sft(void) {
    Config cfg = tiny_config(3);
    Model m;
    model_init_random(&m, &cfg, 6);
    EncodedSet d;
    tiny_data(&d, 6, 2);
    size_t n;
    StepMethod *sft = sft_method_new(), *v0 = vaccine_method_new(&m, 2, 12, 0.0f), *v2 = vaccine_method_new(&m, 2, 12, 2.0f);
    float *a = train_with(&m, &d, sft, 5, &n, 0.1f), *b = train_with(&m, &d, v0, 5, &n, 0.1f),
          *c = train_with(&m, &d, v2, 5, &n, 0.1f);
    CHECK(max_diff(a, b, n) == 0.0, "Vaccine with rho = 0 differs from SFT by %g", max_diff(a, b, n));
    CHECK(max_diff(a, c, n) > 1e-6, "Vaccine with rho = 2 equals SFT");
    free(a); free(b); free(c);
    step_method_free(sft); step_method_free(v0); step_method_free(v2);
    encoded_free(&d);
    model_free(&m);
}

// Largest change between a LoRA's parameters and p over layer l's projections in mask.
static double moved_projs(const Config *c, const Lora *init, const float *p, int l, int mask) {
    double d = 0;
    for (int q = 0; q < N_PROJ; q++) {
        const float *A = init->A[l * N_PROJ + q], *B = init->B[l * N_PROJ + q];
        if (!(mask & (1 << q)) || !A) continue;
        int out, in;
        proj_dims(c, q, &out, &in);
        d = fmax(d, max_diff(p + (A - init->params), A, (size_t)init->rank * in));
        d = fmax(d, max_diff(p + (B - init->params), B, (size_t)out * init->rank));
    }
    return d;
}

static void test_tvaccine(void) {
    // sampling frequencies of one layer follow P
    float P[6] = {0.05f, 0.3f, 0.1f, 0.25f, 0.2f, 0.1f};
    int counts[6] = {0}, act[6];
    Rng r;
    rng_seed(&r, 3);
    int trials = 40000;
    for (int t = 0; t < trials; t++) {
        tvaccine_sample_layers(&r, P, 6, 1, act);
        for (int l = 0; l < 6; l++) counts[l] += act[l];
    }
    for (int l = 0; l < 6; l++) {
        double f = (double)counts[l] / trials, sd = sqrt(P[l] * (1 - P[l]) / trials);
        CHECK(fabs(f - P[l]) < 4 * sd, "layer %d sampled %.4f, P = %.4f", l, f, P[l]);
    }
    // two draws without replacement: layer l is in the pair with probability
    // P_l + sum_{k != l} P_k P_l / (1 - P_k) (numpy's sequential choice(replace=False))
    memset(counts, 0, sizeof counts);
    for (int t = 0; t < trials; t++) {
        tvaccine_sample_layers(&r, P, 6, 2, act);
        int n_act = 0;
        for (int l = 0; l < 6; l++) { counts[l] += act[l]; n_act += act[l]; }
        if (n_act != 2) { CHECK(n_act == 2, "%d layers sampled, not 2", n_act); break; }
    }
    for (int l = 0; l < 6; l++) {
        double want = P[l];
        for (int k = 0; k < 6; k++) if (k != l) want += P[k] * P[l] / (1 - P[k]);
        double f = (double)counts[l] / trials, sd = sqrt(want * (1 - want) / trials);
        CHECK(fabs(f - want) < 4 * sd, "pairs: layer %d in %.4f of draws, expected %.4f", l, f, want);
    }
    // kept activations: the sampled layers and, above 26 layers, the one below each
    int a30[30] = {0}, k30[30], k6[6];
    a30[0] = a30[5] = a30[6] = a30[29] = 1;
    tvaccine_kept_layers(a30, 30, k30);
    for (int l = 0; l < 30; l++) {
        int want = l == 0 || l == 4 || l == 5 || l == 6 || l == 28 || l == 29;
        CHECK(k30[l] == want, "30 layers: layer %d kept %d, expected %d", l, k30[l], want);
    }
    int a6[6] = {0, 1, 0, 0, 1, 0};
    tvaccine_kept_layers(a6, 6, k6);
    for (int l = 0; l < 6; l++) CHECK(k6[l] == a6[l], "6 layers: layer %d kept %d", l, k6[l]);

    Config cfg = tiny_config(4);
    Model m;
    model_init_random(&m, &cfg, 8);
    EncodedSet d, h;
    tiny_data(&d, 6, 4);
    tiny_data(&h, 4, 5);
    size_t n;
    Lora init;
    lora_init(&init, &m, 4, 8.0f, 0.1f, PROJ_ALL, 9);
    for (int variant = TV_REFERENCE; variant <= TV_LEAN; variant++) {
        const char *vn = variant == TV_REFERENCE ? "reference" : "lean";
        // one sampling for the whole run (J > steps)
        TVaccineOpts o = {2.0f, 100, 100, 2, &h, (TVaccineVariant)variant};
        StepMethod *tv = tvaccine_method_new(&m, 2, 12, &o, 11);
        float *p = train_with(&m, &d, tv, 4, &n, 0.1f);
        const int *active = tvaccine_active(tv);
        const float *probs = tvaccine_probs(tv);
        double psum = 0;
        for (int l = 0; l < 4; l++) psum += probs[l];
        CHECK(close_enough(psum, 1.0, 1e-5, 0), "probabilities sum to %g", psum);
        int lo_layer = 4, n_active = 0;
        for (int l = 0; l < 4; l++) {
            double attn = moved_projs(&cfg, &init, p, l, PROJ_ATTN), mlp = moved_projs(&cfg, &init, p, l, PROJ_MLP);
            if (active[l]) { n_active++; if (l < lo_layer) lo_layer = l; }
            CHECK((attn > 0) == (active[l] != 0), "%s: layer %d (sampled %d): attention adapters moved by %g", vn, l,
                  active[l], attn);
            int mlp_trains = active[l] || variant == TV_REFERENCE;
            CHECK((mlp > 0) == mlp_trains, "%s: layer %d (sampled %d): MLP adapters moved by %g", vn, l, active[l], mlp);
        }
        CHECK(n_active == 2);
        // the trained pass: to the first layer (reference), not below the lowest sampled layer (lean)
        Workspace *w = workspace_new(&m, &init, 2, 12, 0);
        Batch b;
        batch_alloc(&b, 2, 12);
        int idx[2] = {0, 1};
        batch_fill(&b, &d, idx, 2, 0);
        tv->grad(tv, &m, &init, w, &b, 1.0f, 5);
        int want = variant == TV_LEAN ? 4 - lo_layer : 4;
        CHECK(w->layers_backward == want, "%s: backward visited %d layers, expected %d", vn, w->layers_backward, want);
        workspace_free(w);
        batch_free(&b);
        free(p);
        step_method_free(tv);
        // all layers sampled: identical to Vaccine
        TVaccineOpts all = {2.0f, 100, 100, 4, &h, (TVaccineVariant)variant};
        StepMethod *tva = tvaccine_method_new(&m, 2, 12, &all, 11), *v = vaccine_method_new(&m, 2, 12, 2.0f);
        float *x = train_with(&m, &d, tva, 4, &n, 0.1f), *y = train_with(&m, &d, v, 4, &n, 0.1f);
        CHECK(max_diff(x, y, n) == 0.0, "%s: T-Vaccine with every layer sampled differs from Vaccine by %g", vn,
              max_diff(x, y, n));
        free(x); free(y);
        step_method_free(tva); step_method_free(v);
    }
    lora_free(&init);
    encoded_free(&d); encoded_free(&h);
    model_free(&m);
}

static void test_antidote_masks(void) {
    // the reference's count: cols - int(cols * (1 - dense_ratio))
    CHECK(wanda_row_count(8, 0.1) == 1, "rank-8 B at 0.1: %d", wanda_row_count(8, 0.1));
    CHECK(wanda_row_count(4096, 0.1) == 410, "4096 columns at 0.1: %d", wanda_row_count(4096, 0.1));
    CHECK(wanda_row_count(10, 0.3) == 3 && wanda_row_count(4, 0.25) == 1);
    // rows x cols = 2 x 10, dense_ratio 0.3 -> 3 per row
    float W[20], act[10];
    for (int j = 0; j < 10; j++) act[j] = (float)(j % 4 + 1);
    for (int i = 0; i < 20; i++) W[i] = (float)((i * 7) % 11) - 5.0f;
    unsigned char mask[20];
    wanda_mask(W, 2, 10, act, 0.3, mask);
    for (int i = 0; i < 2; i++) {
        // the 3 largest |W| * act of the row, computed by brute force; ties: the higher column first
        int cnt = 0;
        for (int j = 0; j < 10; j++) {
            float s = fabsf(W[i * 10 + j]) * act[j];
            int larger = 0;
            for (int k = 0; k < 10; k++) {
                float t = fabsf(W[i * 10 + k]) * act[k];
                larger += t > s || (t == s && k > j);
            }
            CHECK(mask[i * 10 + j] == (larger < 3), "row %d col %d: score %g rank %d", i, j, s, larger);
            cnt += mask[i * 10 + j];
        }
        CHECK(cnt == 3);
    }
    Rng r;
    rng_seed(&r, 1);
    // larger rows (the selection's partitioning path) with many ties and a NaN, against ranks
    // counted by brute force: each row prunes exactly its k first entries in pruning order
    enum { RR = 5, RC = 301 };
    float *bw = malloc(sizeof(float) * RR * RC), *ba = malloc(sizeof(float) * RC);
    unsigned char *bm = malloc(RR * RC);
    for (int j = 0; j < RC; j++) ba[j] = (float)(1 + rng_below(&r, 3));
    for (int i = 0; i < RR * RC; i++) bw[i] = (float)rng_below(&r, 9) - 4.0f;
    bw[2 * RC + 17] = NAN;
    for (int t = 0; t < 3; t++) {
        double dr = t == 0 ? 0.1 : t == 1 ? 0.5 : 0.97;
        int k = wanda_row_count(RC, dr), bad = 0;
        wanda_mask(bw, RR, RC, ba, dr, bm);
        for (int i = 0; i < RR; i++)
            for (int j = 0; j < RC; j++) {
                float s = fabsf(bw[i * RC + j]) * ba[j];
                int before = 0;  // entries pruned before (i, j): NaN first, larger scores, then higher columns
                for (int q = 0; q < RC; q++) {
                    float u = fabsf(bw[i * RC + q]) * ba[q];
                    before += isnan(u) != isnan(s) ? isnan(u) : !isnan(u) && (u > s || (u == s && q > j));
                    before += isnan(u) && isnan(s) && q > j;
                }
                bad += bm[i * RC + j] != (before < k);
            }
        CHECK(bad == 0, "dense ratio %g: %d entries of %d x %d pruned otherwise than the ranks say", dr, bad, RR, RC);
    }
    free(bw); free(ba); free(bm);
    random_mask(&r, 2, 10, 0.3, mask);
    int cnt = 0;
    for (int j = 0; j < 20; j++) cnt += mask[j];
    CHECK(cnt == 6, "random pruning pruned %d of the tensor's 20, not 6", cnt);
    // on a model: exactly wanda_row_count entries per row of every LoRA matrix become zero
    Config cfg = tiny_config(2);
    Model m;
    model_init_random(&m, &cfg, 2);
    Lora lo;
    lora_init(&lo, &m, 4, 8.0f, 0.0f, (1 << P_Q) | (1 << P_DOWN), 3);
    for (size_t i = 0; i < lo.n_params; i++) lo.params[i] = 0.1f + 0.001f * (float)(i % 97);
    EncodedSet d;
    tiny_data(&d, 3, 9);
    PruneOpts po = {0.25, 0, 0, 0, 1};
    PruneReport rep;
    Err e;
    CHECK(antidote_prune(&m, &lo, &d, &po, &rep, &e) == 0);
    size_t zeros = 0, expect = 0;
    for (int l = 0; l < 2; l++)
        for (int p = 0; p < N_PROJ; p++) {
            if (!lo.A[l * N_PROJ + p]) continue;
            int out, in;
            proj_dims(&cfg, p, &out, &in);
            expect += (size_t)lo.rank * wanda_row_count(in, 0.25) + (size_t)out * wanda_row_count(lo.rank, 0.25);
        }
    for (size_t i = 0; i < lo.n_params; i++) zeros += lo.params[i] == 0.0f;
    CHECK(zeros == expect && rep.pruned == expect, "pruned %zu (report %zu), expected %zu", zeros, rep.pruned, expect);
    // calibration samples of different lengths through each layer together (padded) prune
    // what they prune one sample at a time
    Lora one;
    lora_init(&one, &m, 4, 8.0f, 0.0f, (1 << P_Q) | (1 << P_DOWN), 3);
    for (size_t i = 0; i < one.n_params; i++) one.params[i] = 0.1f + 0.001f * (float)((i * 31) % 97);
    Lora all;
    lora_init(&all, &m, 4, 8.0f, 0.0f, (1 << P_Q) | (1 << P_DOWN), 3);
    memcpy(all.params, one.params, one.n_params * sizeof(float));
    EncodedSet v;
    tiny_data(&v, 5, 12);  // 6-12 tokens each
    PruneOpts pv = {0.5, 0, 0, 0, 1};
    PruneReport r1, r2;
    CHECK(antidote_prune_calls(&m, &one, &v, &pv, 1, &r1, &e) == 0 && antidote_prune(&m, &all, &v, &pv, &r2, &e) == 0);
    int differ = 0;
    for (size_t i = 0; i < one.n_params; i++) differ += (one.params[i] == 0.0f) != (all.params[i] == 0.0f);
    CHECK(differ == 0 && r1.pruned == r2.pruned, "%d entries pruned differently with samples together", differ);
    lora_free(&one);
    lora_free(&all);
    encoded_free(&v);
    lora_free(&lo);
    encoded_free(&d);
    model_free(&m);
}

int main(void) {
    test_vaccine_step();
    test_rho_zero_is_sft();
    test_tvaccine();
    test_antidote_masks();
    TEST_SUMMARY();
}
