// The Llama engine against the real stories260K checkpoint (fixtures computed by
// independent numpy forwards, see ../shared/models/stories260k-hf/SOURCE.md), and
// self-consistency on random tiny models: KV-cache vs training forward, LoRA merged vs
// unmerged, PEFT and model save/load round trips, a few training steps.
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "eval/generate.h"
#include "io/hf_checkpoint.h"
#include "io/peft.h"
#include "model/model.h"
#include "testing.h"
#include "tokenizer/tokenizer.h"
#include "train/optim.h"
#include "util/rng.h"

static char model_dir[4096];
static char tmp_root[] = "/tmp/antibody_test_model_XXXXXX";
static json_t *fx;

static int ids_from_json(json_t *a, int **out) {
    int n = (int)json_array_size(a);
    *out = malloc((n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) (*out)[i] = (int)json_integer_value(json_array_get(a, i));
    return n;
}

// Runs one sequence through the training forward; returns the mean loss over next-token targets
// (targets[i] = ids[i+1]) and, if logits is non-NULL, writes all (n, V) logits.
static double seq_forward(const Model *m, const Lora *lo, const int *ids, int n, float *logits) {
    Workspace *w = workspace_new(m, lo, 1, n, 0);
    Batch b = {1, n, (int *)ids, malloc(n * sizeof(int)), malloc(n * sizeof(int))};
    for (int i = 0; i < n; i++) { b.targets[i] = i + 1 < n ? ids[i + 1] : -1; b.mask[i] = 1; }
    ForwardOpts fo = {.loss_scale = 1};
    model_forward(m, lo, w, &b, &fo);
    double loss = w->loss;
    if (logits) model_logits(m, w, logits);
    free(b.targets); free(b.mask);
    workspace_free(w);
    return loss;
}

static void test_real_checkpoint(void) {
    Model m;
    Err e = {0};
    int rc = model_load(&m, model_dir, MAT_F32, &e);
    CHECK(rc == 0, "model_load: %s", e.msg);
    if (rc) return;
    CHECK(m.cfg.dim == 64 && m.cfg.n_layers == 5 && m.cfg.n_heads == 8 && m.cfg.n_kv_heads == 4 &&
          m.cfg.vocab_size == 512 && m.cfg.tie_embeddings);
    CHECK(model_num_params(&m) == 260032, "params %zu", model_num_params(&m));
    Tokenizer *tok = tokenizer_load(model_dir, &e);
    CHECK(tok != NULL, "tokenizer: %s", e.msg);
    if (!tok) { model_free(&m); return; }

    // prompt ids
    const char *prompt = json_string_value(json_object_get(fx, "prompt"));
    int *want_p, *got_p;
    int nwp = ids_from_json(json_object_get(fx, "prompt_ids"), &want_p);
    int ngp = tokenizer_encode(tok, prompt, strlen(prompt), 1, &got_p);
    CHECK(ngp == nwp && !memcmp(want_p, got_p, nwp * sizeof(int)), "prompt ids differ (%d vs %d tokens)", ngp, nwp);

    // greedy 60, twice; and from <s> alone for 200
    int *want60, *want200;
    int n60 = ids_from_json(json_object_get(fx, "greedy_60_ids"), &want60);
    int n200 = ids_from_json(json_object_get(fx, "bos_greedy_200_ids"), &want200);
    KVCache *kc = kvcache_new(&m, 256, 16);
    GenOpts go = {.max_new = 60, .temperature = 0, .top_p = 1};
    int out[256];
    for (int run = 0; run < 2; run++) {
        int k = generate_ids(&m, NULL, kc, got_p, ngp, &go, out);
        int same = k == n60 - ngp && !memcmp(out, want60 + ngp, k * sizeof(int));
        CHECK(same, "run %d: greedy 60 differs (%d new tokens)", run, k);
        int *ids = malloc((ngp + k) * sizeof(int));
        memcpy(ids, got_p, ngp * sizeof(int));
        memcpy(ids + ngp, out, k * sizeof(int));
        char *dec = tokenizer_decode(tok, ids, ngp + k, 1);
        CHECK(!strcmp(dec, json_string_value(json_object_get(fx, "greedy_60_text"))), "run %d: text differs: %s", run, dec);
        free(ids); free(dec);
    }
    go.max_new = 200;
    int bos = 1;
    int k = generate_ids(&m, NULL, kc, &bos, 1, &go, out);
    CHECK(k == n200 - 1 && !memcmp(out, want200 + 1, k * sizeof(int)), "bos greedy 200 differs (%d new)", k);
    char *dec200 = tokenizer_decode(tok, out, k, 1);
    CHECK(!strcmp(dec200, json_string_value(json_object_get(fx, "bos_greedy_200_text"))), "200 text: %s", dec200);
    free(dec200);

    // logits fixtures (float64 references, 5 decimals)
    float *logits = malloc((size_t)nwp * 512 * sizeof(float));
    seq_forward(&m, NULL, want_p, nwp, logits);
    json_t *first8 = json_object_get(fx, "prompt_logits_pos0_first8");
    double worst = 0;
    for (int i = 0; i < 8; i++) worst = fmax(worst, fabs(logits[i] - json_number_value(json_array_get(first8, i))));
    json_t *top = json_object_get(fx, "next_token_logits_top5");
    int pos = (int)json_integer_value(json_object_get(top, "position"));
    for (int i = 0; i < 5; i++) {
        int id = (int)json_integer_value(json_array_get(json_object_get(top, "ids"), i));
        double want = json_number_value(json_array_get(json_object_get(top, "logits"), i));
        worst = fmax(worst, fabs(logits[(size_t)pos * 512 + id] - want));
        // the order of the top 5 holds too
        if (i > 0) {
            int prev = (int)json_integer_value(json_array_get(json_object_get(top, "ids"), i - 1));
            CHECK(logits[(size_t)pos * 512 + prev] > logits[(size_t)pos * 512 + id]);
        }
    }
    printf("stories260K logits: max |diff| vs float64 fixtures %.2e\n", worst);
    CHECK(worst < 1e-4, "logits differ by %.3g", worst);
    free(logits);

    // the KV-cache path gives the same next-token logits as the training forward
    kc->len = 0;
    model_forward_cached(&m, NULL, kc, want_p, nwp);
    double kvd = 0;
    for (int i = 0; i < 5; i++) {
        int id = (int)json_integer_value(json_array_get(json_object_get(top, "ids"), i));
        kvd = fmax(kvd, fabs(kc->logits[id] - json_number_value(json_array_get(json_object_get(top, "logits"), i))));
    }
    CHECK(kvd < 1e-4, "cached logits differ by %.3g", kvd);

    // mean loss on the story
    int *story;
    int ns = ids_from_json(json_object_get(fx, "story_ids"), &story);
    const char *story_text = json_string_value(json_object_get(fx, "story_text"));
    int *story_tok;
    int nst = tokenizer_encode(tok, story_text, strlen(story_text), 1, &story_tok);
    CHECK(nst == ns && !memcmp(story, story_tok, ns * sizeof(int)), "story ids differ");
    double want_loss = json_number_value(json_object_get(fx, "story_mean_xent_nats"));
    double loss = seq_forward(&m, NULL, story, ns, NULL);
    printf("stories260K story loss %.6f (fixture %.6f, ln 512 = %.4f)\n", loss, want_loss, log(512.0));
    CHECK(fabs(loss - want_loss) < 1e-4, "loss %.6f vs %.6f", loss, want_loss);
    CHECK(loss < 0.2 * log(512.0));

    Model mb;
    rc = model_load(&mb, model_dir, MAT_BF16, &e);
    CHECK(rc == 0, "bf16 load: %s", e.msg);
    if (!rc) {
        double lb = seq_forward(&mb, NULL, story, ns, NULL);
        printf("stories260K story loss with bf16 weights %.6f (|diff| %.2e, tolerance 2e-2)\n", lb, fabs(lb - want_loss));
        CHECK(fabs(lb - want_loss) < 2e-2 && lb != loss, "bf16 loss %.6f", lb);
        model_free(&mb);
    }

    free(story); free(story_tok); free(want60); free(want200); free(want_p); free(got_p);
    kvcache_free(kc);
    tokenizer_free(tok);
    model_free(&m);
}

// ---- random tiny models
static Rng rng;

static void tiny_config(Config *c, int qkv_bias, int tied) {
    memset(c, 0, sizeof *c);
    *c = (Config){.vocab_size = 37, .dim = 32, .hidden_dim = 48, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                  .head_dim = 8, .max_seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 5000.0f,
                  .tie_embeddings = tied, .qkv_bias = qkv_bias, .bos_id = 1, .n_eos = 1, .eos_ids = {2}, .pad_id = -1};
    strcpy(c->arch, qkv_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
    strcpy(c->model_type, qkv_bias ? "qwen2" : "llama");
}

// Gemma 2: head_dim 12 != 32 / 4, query_pre_attn_scalar 10, both soft-caps, a window of 5
// keys on layer 0 (shorter than the sequences below), tied.
static void gemma2_config(Config *c) {
    tiny_config(c, 0, 1);
    c->head_dim = 12;
    c->gemma = 2;
    c->sandwich_norms = 1;
    c->query_scalar = 10.0f;
    c->attn_softcap = 3.0f;
    c->final_softcap = 8.0f;
    c->sliding_window = 5;
    c->sliding[0] = 1;
    strcpy(c->arch, "Gemma2ForCausalLM");
    strcpy(c->model_type, "gemma2");
}

// Larger random weights than the 0.02 init so attention and every path matter.
static void perturb_model(Model *m) {
    const Config *c = &m->cfg;
    float *e = m->embed.data;
    for (size_t i = 0; i < (size_t)c->vocab_size * c->dim; i++) e[i] = rng_normal(&rng);
    if (!c->tie_embeddings) {
        float *h = m->lm_head.data;
        for (size_t i = 0; i < (size_t)c->vocab_size * c->dim; i++) h[i] = rng_normal(&rng) * 0.2f;
    }
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < N_PROJ; p++) {
            Mat *W = &m->layers[l].w[p];
            float *d = W->data;
            for (size_t i = 0; i < (size_t)W->rows * W->cols; i++) d[i] = rng_normal(&rng) * 0.25f;
            if (p < 3 && m->layers[l].bias[p])
                for (int i = 0; i < W->rows; i++) m->layers[l].bias[p][i] = rng_normal(&rng) * 0.3f;
        }
    for (int l = 0; l < c->n_layers; l++)
        for (int j = 0; j < c->dim; j++) {
            m->layers[l].attn_norm[j] = 1 + 0.2f * rng_normal(&rng);
            m->layers[l].mlp_norm[j] = 1 + 0.2f * rng_normal(&rng);
            if (c->sandwich_norms) {
                m->layers[l].attn_out_norm[j] = 0.2f * rng_normal(&rng);
                m->layers[l].mlp_out_norm[j] = 0.2f * rng_normal(&rng);
            }
        }
}

static void randomize_lora(Lora *l) {
    for (size_t i = 0; i < l->n_params; i++) l->params[i] = rng_normal(&rng) * 0.1f;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

// variant 2: Gemma 2, the cache attending past its sliding window
static void test_kv_cache_vs_forward(void) {
    for (int variant = 0; variant < 3; variant++) {
        Config c;
        if (variant == 2) gemma2_config(&c);
        else tiny_config(&c, variant, variant);
        Model m;
        model_init_random(&m, &c, 3 + variant);
        perturb_model(&m);
        Lora lo;  // the second adapter's rank exceeds every width of the model (legal in PEFT)
        lora_init(&lo, &m, variant ? 2 * c.hidden_dim + 8 : 4, 8, 0, (1 << N_PROJ) - 1, 5);
        randomize_lora(&lo);
        int T = 23, ids[23];
        for (int i = 0; i < T; i++) ids[i] = (int)rng_below(&rng, c.vocab_size);
        float *ref = malloc((size_t)T * c.vocab_size * sizeof(float));
        seq_forward(&m, &lo, ids, T, ref);
        KVCache *kc = kvcache_new(&m, 32, 5);
        double worst = 0;
        int i = 0;
        while (i < T) {  // chunks of 1..5 tokens
            int n = 1 + (int)rng_below(&rng, 5);
            if (i + n > T) n = T - i;
            model_forward_cached(&m, &lo, kc, ids + i, n);
            i += n;
            worst = fmax(worst, max_abs_diff(kc->logits, ref + (size_t)(i - 1) * c.vocab_size, c.vocab_size));
        }
        printf("KV cache vs training forward (%s): max |diff| %.2e\n", c.arch, worst);
        CHECK(worst < 1e-4, "cached vs full forward %.3g", worst);
        kvcache_free(kc);
        free(ref);
        lora_free(&lo);
        model_free(&m);
    }
}

// Gemma 2 with bf16 weights: the numbers of f32 weights that hold the same bf16-rounded
// values, with transformers' normalizer sqrt(dim) a bf16 tensor too; generation with the
// cache agrees with the forward.
static void test_gemma2_bf16(void) {
    Config c;
    gemma2_config(&c);
    Model m, mb, mf;
    model_init_random(&m, &c, 11);
    perturb_model(&m);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/gemma2_bf16", tmp_root);
    Err e = {0};
    CHECK(model_save(&m, dir, MAT_BF16, 0, &e) == 0, "save: %s", e.msg);
    model_free(&m);
    if (model_load(&mb, dir, MAT_BF16, &e) || model_load(&mf, dir, MAT_F32, &e)) { CHECK(0, "load: %s", e.msg); return; }
    float sq = sqrtf(32.0f), sq16 = bf16_to_float(float_to_bf16(sq));
    CHECK(mb.embed_scale == sq16 && mf.embed_scale == sq && sq16 != sq, "normalizer %g (bf16) %g (f32)", mb.embed_scale,
          mf.embed_scale);
    mf.embed_scale = sq16;
    int T = 19, ids[19];
    for (int i = 0; i < T; i++) ids[i] = (int)rng_below(&rng, c.vocab_size);
    float *lb = malloc((size_t)T * c.vocab_size * sizeof(float)), *lf = malloc((size_t)T * c.vocab_size * sizeof(float));
    double loss_b = seq_forward(&mb, NULL, ids, T, lb), loss_f = seq_forward(&mf, NULL, ids, T, lf);
    double d = max_abs_diff(lb, lf, (size_t)T * c.vocab_size);
    printf("Gemma 2 bf16 weights vs f32 copies: max |logit diff| %.2e, loss %.6f vs %.6f\n", d, loss_b, loss_f);
    CHECK(d < 1e-4 && fabs(loss_b - loss_f) < 1e-5, "bf16 Gemma 2 differs from its f32 copy by %g", d);
    KVCache *kc = kvcache_new(&mb, 32, T);
    // the cached forward is generation's: with the avx512bf16 kernels its bf16 weights meet
    // bf16-rounded activations (kernels.h, matmul_forward_infer), so the exact comparison runs
    // through the avx512 kernels and the bf16 one is held to bf16 rounding
    KernelIsa was = isa_active();
    if (was == ISA_AVX512BF16) isa_force(ISA_AVX512);
    model_forward_cached(&mb, NULL, kc, ids, T);
    d = max_abs_diff(kc->logits, lb + (size_t)(T - 1) * c.vocab_size, c.vocab_size);
    CHECK(d < 1e-4, "bf16 Gemma 2: cache vs forward %g", d);
    if (was == ISA_AVX512BF16) {
        isa_force(was);
        kc->len = 0;
        model_forward_cached(&mb, NULL, kc, ids, T);
        d = max_abs_diff(kc->logits, lb + (size_t)(T - 1) * c.vocab_size, c.vocab_size);
        CHECK(d < 5e-2 && d > 0, "bf16 Gemma 2 with bf16 dot products: cache vs forward %g", d);
    }
    kvcache_free(kc);
    free(lb); free(lf);
    model_free(&mb);
    model_free(&mf);
}

static void test_lora_merge(void) {
    Config c;
    tiny_config(&c, 1, 0);
    Model m;
    model_init_random(&m, &c, 9);
    perturb_model(&m);
    Lora lo;
    lora_init(&lo, &m, 4, 16, 0, (1 << P_Q) | (1 << P_V) | (1 << P_O) | (1 << P_DOWN), 7);
    randomize_lora(&lo);
    int T = 17, ids[17];
    for (int i = 0; i < T; i++) ids[i] = (int)rng_below(&rng, c.vocab_size);
    size_t nl = (size_t)T * c.vocab_size;
    float *a = malloc(nl * 4), *b = malloc(nl * 4), *base = malloc(nl * 4);
    seq_forward(&m, NULL, ids, T, base);
    double la = seq_forward(&m, &lo, ids, T, a);
    lora_merge(&m, &lo);
    double lb = seq_forward(&m, NULL, ids, T, b);
    double d = max_abs_diff(a, b, nl), moved = max_abs_diff(a, base, nl);
    printf("LoRA merged vs unmerged: max |logit diff| %.2e (the adapter moves logits by %.2f)\n", d, moved);
    CHECK(d < 1e-4 && fabs(la - lb) < 1e-5, "merge differs %.3g", d);
    CHECK(moved > 0.05, "adapter has no effect");
    free(a); free(b); free(base);
    lora_free(&lo);
    model_free(&m);
}


static void test_round_trips(void) {
    Config c;
    tiny_config(&c, 1, 0);
    Model m;
    model_init_random(&m, &c, 21);
    perturb_model(&m);
    Err e = {0};
    char dir[4200];

    // PEFT adapter
    Lora lo, back;
    lora_init(&lo, &m, 3, 6, 0.05f, (1 << P_K) | (1 << P_GATE) | (1 << P_UP), 1);
    randomize_lora(&lo);
    snprintf(dir, sizeof dir, "%s/adapter", tmp_root);
    CHECK(peft_save(&lo, &m, dir, "base", &e) == 0, "peft_save: %s", e.msg);
    int rc = peft_load(&back, &m, dir, &e);
    CHECK(rc == 0, "peft_load: %s", e.msg);
    if (!rc) {
        CHECK(back.rank == 3 && back.alpha == 6 && back.targets == lo.targets && back.n_params == lo.n_params &&
              fabsf(back.dropout - 0.05f) < 1e-7f);
        CHECK(!memcmp(back.params, lo.params, lo.n_params * sizeof(float)), "adapter values changed");
        lora_free(&back);
    }
    lora_free(&lo);

    // model f32 (sharded) and bf16
    for (int bf = 0; bf < 2; bf++) {
        snprintf(dir, sizeof dir, "%s/model_%s", tmp_root, bf ? "bf16" : "f32");
        CHECK(model_save(&m, dir, bf ? MAT_BF16 : MAT_F32, bf ? 0 : 20000, &e) == 0, "model_save: %s", e.msg);
        Model r;
        rc = model_load(&r, dir, MAT_F32, &e);
        CHECK(rc == 0, "model_load: %s", e.msg);
        if (rc) continue;
        CHECK(r.cfg.qkv_bias && !r.cfg.tie_embeddings && r.cfg.rope_theta == c.rope_theta && r.cfg.n_kv_heads == 2);
        double worst_rel = 0;
        int exact = 1;
        for (int l = 0; l < c.n_layers; l++)
            for (int p = 0; p < N_PROJ; p++) {
                const float *x = m.layers[l].w[p].data, *y = r.layers[l].w[p].data;
                for (size_t i = 0; i < (size_t)m.layers[l].w[p].rows * m.layers[l].w[p].cols; i++) {
                    if (x[i] != y[i]) exact = 0;
                    worst_rel = fmax(worst_rel, fabs(x[i] - y[i]) / (fabs(x[i]) + 1e-30));
                }
                if (p < 3)
                    for (int i = 0; i < m.layers[l].w[p].rows; i++) {
                        if (m.layers[l].bias[p][i] != r.layers[l].bias[p][i]) exact = 0;
                        worst_rel = fmax(worst_rel, fabs(m.layers[l].bias[p][i] - r.layers[l].bias[p][i]) /
                                                        (fabs(m.layers[l].bias[p][i]) + 1e-30));
                    }
            }
        size_t ve = (size_t)c.vocab_size * c.dim;
        for (size_t i = 0; i < ve; i++) {
            float x = ((float *)m.embed.data)[i], y = ((float *)r.embed.data)[i];
            float hx = ((float *)m.lm_head.data)[i], hy = ((float *)r.lm_head.data)[i];
            if (x != y || hx != hy) exact = 0;
            worst_rel = fmax(worst_rel, fabs(x - y) / (fabs(x) + 1e-30));
        }
        if (!bf) CHECK(exact, "f32 round trip is not exact");
        else {
            printf("bf16 save: max relative rounding %.2e (bound 2^-8 = %.2e)\n", worst_rel, 1.0 / 256);
            CHECK(!exact && worst_rel <= 1.0 / 256, "bf16 rounding %.3g", worst_rel);
        }
        model_free(&r);
    }
    model_free(&m);
}

static void test_training_reduces_loss(void) {
    Config c;
    tiny_config(&c, 0, 1);
    Model m;
    model_init_random(&m, &c, 33);
    perturb_model(&m);
    Lora lo;
    lora_init(&lo, &m, 4, 8, 0, (1 << N_PROJ) - 1, 2);
    int B = 2, T = 12;
    Workspace *w = workspace_new(&m, &lo, B, T, 0);
    Batch b;
    b.B = B; b.T = T;
    b.tokens = malloc(B * T * sizeof(int)); b.targets = malloc(B * T * sizeof(int)); b.mask = malloc(B * T * sizeof(int));
    for (int i = 0; i < B * T; i++) b.tokens[i] = (int)rng_below(&rng, c.vocab_size);
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            int len = r ? 9 : T;  // the second row is right-padded
            b.mask[r * T + t] = t < len;
            b.targets[r * T + t] = t + 1 < len ? b.tokens[r * T + t + 1] : -1;
        }
    AdamW opt = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    float *am = calloc(lo.n_params, sizeof(float)), *av = calloc(lo.n_params, sizeof(float));
    float first = 0, last = 0;
    for (int step = 0; step < 8; step++) {
        memset(w->lora_grad, 0, lo.n_params * sizeof(float));
        ForwardOpts fo = {.train = 1, .loss_scale = 1, .dropout_seed = (uint64_t)step};
        float loss = model_forward(&m, &lo, w, &b, &fo);
        BackwardOpts bo = {.param_grads = 1};
        model_backward(&m, &lo, w, &bo);
        clip_grad_norm(w->lora_grad, lo.n_params, 1.0f);
        adamw_update(&opt, lo.params, w->lora_grad, am, av, lo.n_params, opt.lr, opt.weight_decay, step + 1);
        if (step == 0) first = loss;
        last = loss;
    }
    ForwardOpts fo = {.loss_scale = 1};
    float after = model_forward(&m, &lo, w, &b, &fo);
    printf("8 LoRA AdamW steps: loss %.4f -> %.4f (eval %.4f)\n", first, last, after);
    CHECK(after < first - 0.1f, "loss did not go down: %.4f -> %.4f", first, after);
    free(am); free(av);
    free(b.tokens); free(b.targets); free(b.mask);
    workspace_free(w);
    lora_free(&lo);
    model_free(&m);
}

int main(void) {
    rng_seed(&rng, 12345);
    snprintf(model_dir, sizeof model_dir, "%s/models/stories260k-hf", shared_dir());
    char fpath[4200];
    snprintf(fpath, sizeof fpath, "%s/fixtures.json", model_dir);
    json_error_t je;
    fx = json_load_file(fpath, JSON_ALLOW_NUL, &je);  // a tokenizer case holds U+0000
    CHECK(fx != NULL, "%s: %s", fpath, je.text);
    CHECK(mkdtemp(tmp_root) != NULL);
    if (fx) test_real_checkpoint();
    test_kv_cache_vs_forward();
    test_gemma2_bf16();
    test_lora_merge();
    test_round_trips();
    test_training_reduces_loss();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    json_decref(fx);
    TEST_SUMMARY();
}
