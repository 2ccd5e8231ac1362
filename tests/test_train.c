// The training loop: its update equals the primitives it is built from (which the
// oracle tests check against torch), gradient accumulation, and exact resume.
#include <jansson.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testing.h"
#include "train/trainer.h"
#include "util/rng.h"

static Config cfg(void) {
    Config c = {.vocab_size = 29, .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .head_dim = 4, .max_seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tie_embeddings = 1};
    strcpy(c.arch, "LlamaForCausalLM");
    strcpy(c.model_type, "llama");
    return c;
}

static void data(EncodedSet *s, int n) {
    Rng r;
    rng_seed(&r, 7);
    memset(s, 0, sizeof *s);
    s->n = n;
    s->max_len = 10;
    s->ex = xcalloc(n, sizeof(Encoded));
    for (int i = 0; i < n; i++) {
        int len = 5 + (int)rng_below(&r, 5);
        s->ex[i].ids = xmalloc(len * sizeof(int));
        for (int t = 0; t < len; t++) s->ex[i].ids[t] = 1 + (int)rng_below(&r, 28);
        s->ex[i].n = len;
        s->ex[i].prompt_len = 2;
    }
}

static TrainOpts opts(int steps) {
    TrainOpts o;
    train_opts_default(&o);
    o.batch_size = 4;
    o.epochs = 100;
    o.max_steps = steps;
    o.lr = 5e-2f;
    o.warmup_ratio = 0;
    o.schedule = SCHED_CONSTANT;
    o.max_grad_norm = 0.1f;  // small, so clipping acts
    o.label = "test";
    return o;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

int main(void) {
    setenv("ANTIBODY_PROGRESS", "0", 1);
    Config c = cfg();
    Model m;
    model_init_random(&m, &c, 3);
    EncodedSet d;
    data(&d, 4);  // one batch = the whole set, so shuffling cannot matter
    Err e;

    // 1. train_run == forward/backward + clip + AdamW by hand
    Lora a, b;
    lora_init(&a, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    lora_init(&b, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    for (size_t i = 0; i < a.n_params; i++) a.params[i] = b.params[i] = a.params[i] + 0.01f * (float)(i % 7);
    TrainOpts o = opts(3);
    StepMethod *sft = sft_method_new();
    TrainLog log;
    CHECK(train_run(&m, &a, &d, &o, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    Workspace *w = workspace_new(&m, &b, 4, 10, 0);
    Batch bt;
    batch_alloc(&bt, 4, 10);
    int idx[4] = {0, 1, 2, 3};
    batch_fill(&bt, &d, idx, 4, 0);
    float *m1 = xcalloc(b.n_params, 4), *m2 = xcalloc(b.n_params, 4);
    AdamW opt = {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay};
    double gnorm = 0;
    for (int s = 0; s < 3; s++) {
        memset(w->lora_grad, 0, b.n_params * 4);
        ForwardOpts fo = {.train = 1};
        model_forward(&m, &b, w, &bt, &fo);
        BackwardOpts bo = {.param_grads = 1};
        model_backward(&m, &b, w, &bo);
        gnorm = clip_grad_norm(w->lora_grad, b.n_params, o.max_grad_norm);
        // per-tensor steps in the trainer vs one flat tensor here: the same AdamW math
        adamw_update(&opt, b.params, w->lora_grad, m1, m2, b.n_params, o.lr, o.weight_decay, s + 1);
    }
    CHECK(gnorm > o.max_grad_norm, "clipping did not act (norm %g)", gnorm);
    // (rows enter the batch in shuffled order: only float summation order differs)
    CHECK(max_diff(a.params, b.params, a.n_params) < 1e-5, "trainer differs from the primitives by %g",
          max_diff(a.params, b.params, a.n_params));

    // 2. gradient accumulation: two micro-batches of 2, each loss scaled by 1/2, one step
    Lora g1, g2;
    lora_init(&g1, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    lora_init(&g2, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    TrainOpts oa = opts(1);
    oa.batch_size = 2;
    oa.grad_accum = 2;
    CHECK(train_run(&m, &g1, &d, &oa, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    Rng pr;  // the trainer's epoch shuffle
    rng_seed(&pr, oa.seed * 1000003ULL);
    int perm[4] = {0, 1, 2, 3};
    rng_shuffle_int(&pr, perm, 4);
    Workspace *w2 = workspace_new(&m, &g2, 2, 10, 0);
    Batch b2;
    batch_alloc(&b2, 2, 10);
    memset(w2->lora_grad, 0, g2.n_params * 4);
    for (int k = 0; k < 2; k++) {
        batch_fill(&b2, &d, perm + 2 * k, 2, 0);
        ForwardOpts fo = {.train = 1, .loss_scale = 0.5f};
        model_forward(&m, &g2, w2, &b2, &fo);
        BackwardOpts bo = {.param_grads = 1};
        model_backward(&m, &g2, w2, &bo);
    }
    clip_grad_norm(w2->lora_grad, g2.n_params, oa.max_grad_norm);
    float *z1 = xcalloc(g2.n_params, 4), *z2 = xcalloc(g2.n_params, 4);
    adamw_update(&opt, g2.params, w2->lora_grad, z1, z2, g2.n_params, oa.lr, oa.weight_decay, 1);
    CHECK(max_diff(g1.params, g2.params, g1.n_params) < 1e-6, "accumulated step differs by %g",
          max_diff(g1.params, g2.params, g1.n_params));
    free(z1); free(z2);
    workspace_free(w2);
    batch_free(&b2);

    // 3. resume: 6 steps straight == 3 steps, stop, resume to 6
    char dir[] = "/tmp/antibody_ckpt_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char ck[256];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    EncodedSet d8;
    data(&d8, 8);
    Lora s1, s2;
    lora_init(&s1, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    lora_init(&s2, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    TrainOpts straight = opts(6);
    straight.warmup_ratio = 0.2f;
    straight.schedule = SCHED_COSINE;
    CHECK(train_run(&m, &s1, &d8, &straight, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    TrainOpts part = straight;
    part.checkpoint_dir = ck;
    part.stop_after = 3;
    CHECK(train_run(&m, &s2, &d8, &part, sft, &log, &e) == 1, "did not stop at step 3");
    train_log_free(&log);
    Lora fresh;  // a new process would start from a fresh init: the checkpoint must restore everything
    lora_init(&fresh, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 99);
    part.stop_after = 0;
    CHECK(train_run(&m, &fresh, &d8, &part, sft, &log, &e) == 0, "%s", e.msg);
    CHECK(log.loss_curve[0] != 0.0f, "loss curve of the first part lost on resume");
    train_log_free(&log);
    CHECK(max_diff(s1.params, fresh.params, s1.n_params) == 0.0, "resumed run differs by %g",
          max_diff(s1.params, fresh.params, s1.n_params));
    // a checkpoint of another run is refused, not silently used
    TrainOpts other = part;
    other.seed = 12345;
    CHECK(train_run(&m, &fresh, &d8, &other, sft, &log, &e) == -1 && strstr(e.msg, "different run"), "%s", e.msg);

    // Issue 13 items 5 and 6: checkpoints are on by default (by time); a set interrupt flag
    // stops after the current step with a checkpoint and an error saying where, and the run
    // started again resumes to the same weights; every step is one JSONL record.
    TrainOpts dflt;
    train_opts_default(&dflt);
    CHECK(dflt.checkpoint_minutes > 0, "checkpoints on by default");
    char ck2[300], logp[300];
    snprintf(ck2, sizeof ck2, "%s/ck2", dir);
    snprintf(logp, sizeof logp, "%s/train_log.jsonl", dir);
    volatile sig_atomic_t flag = 1;
    TrainOpts intr = straight;
    intr.checkpoint_dir = ck2;
    intr.log_path = logp;
    intr.interrupt = &flag;
    Lora s3;
    lora_init(&s3, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 5);
    CHECK(train_run(&m, &s3, &d8, &intr, sft, &log, &e) == -1 && strstr(e.msg, "interrupted after step 1 of 6") &&
          strstr(e.msg, ck2), "%s", e.msg);
    flag = 0;
    lora_free(&s3);
    lora_init(&s3, &m, 4, 8.0f, 0.1f, (1 << N_PROJ) - 1, 77);
    CHECK(train_run(&m, &s3, &d8, &intr, sft, &log, &e) == 0, "%s", e.msg);
    CHECK(max_diff(s1.params, s3.params, s1.n_params) == 0.0, "interrupted and resumed run differs by %g",
          max_diff(s1.params, s3.params, s1.n_params));
    FILE *lf = fopen(logp, "r");
    char line[1024];
    int n_rec = 0, ok = lf != NULL;
    while (lf && fgets(line, sizeof line, lf)) {
        json_error_t je;
        json_t *r = json_loads(line, 0, &je);
        n_rec++;
        ok &= r && json_integer_value(json_object_get(r, "step")) == n_rec;
        const char *keys[] = {"epoch", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"};
        for (int k = 0; k < 7; k++) ok &= json_is_number(json_object_get(r, keys[k]));
        ok &= fabs(json_number_value(json_object_get(r, "loss")) - log.loss_curve[n_rec - 1]) < 1e-5;
        ok &= json_number_value(json_object_get(r, "grad_norm")) > 0;
        json_decref(r);
    }
    if (lf) fclose(lf);
    CHECK(ok && n_rec == 6, "log: %d records, each step once, in order, with every field", n_rec);
    train_log_free(&log);
    lora_free(&s3);

    // Issue 13 item 2: a set where max_len leaves no answer token is refused, not trained at
    // loss 0; encode_dataset counts cut rows and the longest prompt.
    EncodedSet cut;
    data(&cut, 4);
    for (int i = 0; i < cut.n; i++) cut.ex[i].prompt_len = cut.ex[i].n;
    Lora z;
    lora_init(&z, &m, 4, 8.0f, 0.0f, (1 << N_PROJ) - 1, 5);
    TrainOpts oz = opts(2);
    CHECK(train_run(&m, &z, &cut, &oz, sft, &log, &e) == -1 && strstr(e.msg, "keeps an answer token"), "%s", e.msg);
    cut.ex[2].prompt_len = 2;  // one row keeps its answer: trains
    CHECK(train_run(&m, &z, &cut, &oz, sft, &log, &e) == 0, "%s", e.msg);
    train_log_free(&log);
    lora_free(&z);
    encoded_free(&cut);

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);

    free(m1); free(m2);
    workspace_free(w);
    batch_free(&bt);
    step_method_free(sft);
    lora_free(&a); lora_free(&b); lora_free(&g1); lora_free(&g2); lora_free(&s1); lora_free(&s2); lora_free(&fresh);
    encoded_free(&d); encoded_free(&d8);
    model_free(&m);
    TEST_SUMMARY();
}
