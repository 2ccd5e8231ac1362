// Parity driver for the Hugging Face oracle tests (tests/oracle/test_*_hf.py).
// Usage: build/tools/parity JOB.json
// The job (JSON object) names a model folder and what to run; results go to job.out as
// safetensors for the Python side to compare with torch/transformers/peft:
//   "model": dir                   base model (config.json + safetensors; no tokenizer needed)
//   "merge": [dir, ...]            PEFT adapters merged into the base first, in order
//   "adapter": dir                 adapter kept unmerged (trained) -- or, without it,
//   "lora": {"rank", "alpha", "targets", "seed", "init_scale"}  a fresh adapter; with
//                                  init_scale > 0 every A and B entry is normal(0, init_scale)
//   "B", "T", "tokens", "targets", "mask"   one batch (row-major B x T; targets[i] = the
//                                  token to predict at i, -1 = no loss; mask 0 = right padding)
//   "steps", "lr", "weight_decay", "max_grad_norm", "beta1", "beta2", "eps"
//                                  AdamW steps on that batch (constant lr, clipping first)
//   "save_adapter_init", "save_adapter_final": dirs for peft_save before / after the steps
//   "generate": {"prompts": [[ids], ...], "max_new"}   greedy continuations with the final
//                                  adapter: "generated.<i>" one sequence at a time,
//                                  "generated_batch.<i>" decoded together (model_decode_batch)
//   "save_merged": dir             the base with the final adapter merged, model_save f32
//   "judge": {"model", "threshold", "max_len", "prompts": [...], "answers": [...]}
//   "strip": {"texts": [...], "out": path}   answer_strip of each text, written as a JSON array
//   "wanda": {"rows", "cols", "W": [...], "act": [...] or absent (magnitude), "dense_ratio"}
//                                  wanda_mask alone: output "mask" (rows, cols) of 0/1
//   "method": {"name": "booster"|"lisa"|"ldifs"|"repnoise"|"tar", "rows": [[ids], ...], "prompt_len": [...],
//              "lambda", "alpha", "rho", "state": "finetune"|"alignment", "anchor_scale", "seed",
//              "beta", "layer_ce", "bf16_labels", "weight", "inner_lr", "inner_steps"}
//                                  one micro-batch of a defense's StepMethod on the batch (rows:
//                                  Booster's, RepNoise's and TAR's harmful batch, Lisa's alignment
//                                  batch, all of them): outputs method_loss (1), method_grad.<PEFT name>,
//                                  for Lisa anchor.<PEFT name> (the adapter minus anchor_scale *
//                                  N(0,1)), for RepNoise repnoise_terms (R, H, N), the harmful batch
//                                  it drew (repnoise_harm_tokens, repnoise_harm_mask: (B, T)) and
//                                  the noise of every layer (repnoise_noise.<l>: (B*T, C)), for TAR
//                                  tar_losses (inner_steps + 1)
//   "prune": {"samples": [[ids], ...], "dense_ratio", "random", "full", "targets", "seed"}
//                                  antidote_prune on the model and adapter: outputs
//                                  "pruned.<PEFT name>" (LoRA mode) or "pruned.<l>.<proj>"
// Output tensors: logits (B*T, V) and loss (1) of the first forward; grad.<PEFT tensor
// name> for every LoRA A/B (first batch); losses (steps); judge_scores (n, labels),
// judge_flagged (n).
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defense/antidote.h"
#include "defense/booster.h"
#include "defense/ldifs.h"
#include "defense/lisa.h"
#include "defense/repnoise.h"
#include "defense/tar.h"
#include "eval/evaluate.h"
#include "eval/judge_classifier.h"
#include "io/hf_checkpoint.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "train/optim.h"
#include "util/rng.h"

static void die(const char *what, const Err *e) {
    fprintf(stderr, "parity: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static double num(json_t *j, const char *k, double dflt) {
    json_t *v = json_object_get(j, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static const char *str(json_t *j, const char *k) {
    json_t *v = json_object_get(j, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int *int_array(json_t *j, const char *k, int n) {
    json_t *a = json_object_get(j, k);
    if (!json_is_array(a) || (int)json_array_size(a) != n) die(k, &(Err){"missing or wrong length"});
    int *r = xmalloc(n * sizeof(int));
    for (int i = 0; i < n; i++) r[i] = (int)json_integer_value(json_array_get(a, i));
    return r;
}

typedef struct {
    StWrite t[4096];
    int n;
    void *owned[4096];
    int n_owned;
} Out;

static void out_add(Out *o, const char *name, int ndim, int64_t d0, int64_t d1, const float *data, int copy) {
    if (o->n >= 4096) die("output", &(Err){"too many tensors"});
    StWrite *w = &o->t[o->n++];
    w->name = xstrdup(name);
    w->dtype = ST_F32;
    w->ndim = ndim;
    w->shape[0] = d0;
    w->shape[1] = d1;
    size_t n = (size_t)d0 * (ndim > 1 ? d1 : 1);
    if (copy) {
        float *c = xmalloc(n * sizeof(float) + 4);
        memcpy(c, data, n * sizeof(float));
        o->owned[o->n_owned++] = c;
        data = c;
    }
    w->data = data;
}

static float *float_array(json_t *j, const char *k, size_t n) {
    json_t *a = json_object_get(j, k);
    if (!json_is_array(a) || json_array_size(a) != n) die(k, &(Err){"missing or wrong length"});
    float *r = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) r[i] = (float)json_number_value(json_array_get(a, i));
    return r;
}

static void peft_name(char *buf, size_t cap, const Config *c, int layer, int p, char ab) {
    char mod[128];
    proj_module(mod, sizeof mod, c, layer, p);
    snprintf(buf, cap, "base_model.model.%s.lora_%c.weight", mod, ab);
}

// Greedy continuations of each prompt with the KV cache: one sequence at a time
// (model_forward_cached) into "generated.<i>", and all prompts decoded together
// (model_decode_batch) into "generated_batch.<i>".
static void greedy(Out *out, const Model *m, const Lora *lo, json_t *jg) {
    json_t *ps = json_object_get(jg, "prompts");
    int n = (int)json_array_size(ps), max_new = (int)num(jg, "max_new", 8), V = m->cfg.vocab_size;
    if (n < 1 || n > MATVEC_MAX_ROWS || max_new < 1) die("generate", &(Err){"1..16 prompts and max_new >= 1"});
    KVCache **kc = xcalloc(n, sizeof *kc);
    float *toks = xcalloc((size_t)n * max_new, sizeof(float));
    int *next = xcalloc(n, sizeof(int));
    char name[64];
    for (int batch = 0; batch < 2; batch++) {
        for (int i = 0; i < n; i++) {
            json_t *pr = json_array_get(ps, i);
            int len = (int)json_array_size(pr), *ids = xmalloc(len * sizeof(int));
            for (int t = 0; t < len; t++) ids[t] = (int)json_integer_value(json_array_get(pr, t));
            kc[i] = kvcache_new(m, len + max_new, len);
            model_forward_cached(m, lo, kc[i], ids, len);
            free(ids);
            next[i] = logits_argmax(kc[i]->logits, V);
            toks[(size_t)i * max_new] = (float)next[i];
        }
        DecodeBatch *d = decode_batch_new(m, n);
        for (int s = 1; s < max_new; s++) {
            if (batch) model_decode_batch(m, lo, d, kc, next, n);
            for (int i = 0; i < n; i++) {
                if (!batch) model_forward_cached(m, lo, kc[i], &next[i], 1);
                next[i] = logits_argmax(kc[i]->logits, V);
                toks[(size_t)i * max_new + s] = (float)next[i];
            }
        }
        decode_batch_free(d);
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "%s.%d", batch ? "generated_batch" : "generated", i);
            out_add(out, name, 1, max_new, 0, toks + (size_t)i * max_new, 1);
            kvcache_free(kc[i]);
        }
    }
    free(kc); free(toks); free(next);
}

// Every A and B of a LoRA-shaped buffer (lo's layout) as prefix<PEFT name>.
static void out_lora(Out *out, const char *prefix, const Model *m, const Lora *lo, const float *buf) {
    char name[200], full[260];
    for (int l = 0; l < lo->n_layers; l++)
        for (int p = 0; p < N_PROJ; p++) {
            int k = l * N_PROJ + p, o_, in;
            if (!lo->A[k]) continue;
            proj_dims(&m->cfg, p, &o_, &in);
            peft_name(name, sizeof name, &m->cfg, l, p, 'A');
            snprintf(full, sizeof full, "%s%s", prefix, name);
            out_add(out, full, 2, lo->rank, in, buf + (lo->A[k] - lo->params), 1);
            peft_name(name, sizeof name, &m->cfg, l, p, 'B');
            snprintf(full, sizeof full, "%s%s", prefix, name);
            out_add(out, full, 2, o_, lo->rank, buf + (lo->B[k] - lo->params), 1);
        }
}

// One micro-batch of a defense's step method on batch b (the "method" job).
static void run_method(Out *out, json_t *jm, Model *m, Lora *lo, const Batch *b) {
    json_t *rows = json_object_get(jm, "rows");
    EncodedSet set = {0};
    set.n = (int)json_array_size(rows);
    set.ex = xcalloc(set.n ? set.n : 1, sizeof(Encoded));
    int *pl = set.n ? int_array(jm, "prompt_len", set.n) : NULL;
    for (int i = 0; i < set.n; i++) {
        json_t *ids = json_array_get(rows, i);
        set.ex[i].n = (int)json_array_size(ids);
        set.ex[i].ids = xmalloc((set.ex[i].n ? set.ex[i].n : 1) * sizeof(int));
        for (int t = 0; t < set.ex[i].n; t++) set.ex[i].ids[t] = (int)json_integer_value(json_array_get(ids, t));
        set.ex[i].prompt_len = pl[i];
    }
    free(pl);
    const char *name = str(jm, "name");
    uint64_t seed = (uint64_t)num(jm, "seed", 1);
    StepMethod *s = NULL;
    if (name && !strcmp(name, "booster")) {
        BoosterOpts o = {(float)num(jm, "lambda", 5), (float)num(jm, "alpha", 0.1), set.n, 1, &set, seed};
        s = booster_method_new(m, lo, &o);
    } else if (name && !strcmp(name, "lisa")) {
        const char *st = str(jm, "state");
        int align = st && !strcmp(st, "alignment");
        LisaOpts o = {(float)num(jm, "rho", 1), align ? 1 : 0, 1, -1, set.n, 1, &set, seed};
        s = lisa_method_new(m, lo, &o);
        if (s) {  // the anchor: the adapter moved by anchor_scale * N(0, 1)
            Rng r;
            rng_seed(&r, seed + 7);
            float sc = (float)num(jm, "anchor_scale", 0.05);
            for (size_t i = 0; i < s->n_state; i++) s->state[i] = lo->params[i] - sc * rng_normal(&r);
            out_lora(out, "anchor.", m, lo, s->state);
        }
    } else if (name && !strcmp(name, "ldifs")) {
        s = ldifs_method_new(m, b->B, b->T, (float)num(jm, "rho", 1e-4));
    } else if (name && !strcmp(name, "repnoise")) {
        RepNoiseOpts o = {.alpha = (float)num(jm, "alpha", 0.1), .beta = (float)num(jm, "beta", 0.001), .batch = set.n,
                          .grad_accum = 1, .layer_ce = (int)num(jm, "layer_ce", 1),
                          .bf16_labels = (int)num(jm, "bf16_labels", 1), .harmful = &set, .seed = seed};
        s = repnoise_method_new(m, lo, b->B, b->T, &o);
    } else if (name && !strcmp(name, "tar")) {
        TarOpts o = {(float)num(jm, "weight", 2), (float)num(jm, "inner_lr", 0.01), (int)num(jm, "inner_steps", 1), set.n,
                     1, &set, seed};
        s = tar_method_new(m, lo, &o);
    }
    if (!s) die("method", &(Err){"unknown method or bad options"});
    int B = s->max_B > b->B ? s->max_B : b->B, T = s->max_T > b->T ? s->max_T : b->T;
    Workspace *w = workspace_new(m, lo, B, T, 0);
    memset(w->lora_grad, 0, lo->n_params * sizeof(float));
    if (s->begin_step) s->begin_step(s, m, lo, w, 0);
    float loss = s->grad(s, m, lo, w, b, 1.0f, seed);
    out_add(out, "method_loss", 1, 1, 0, &loss, 1);
    out_lora(out, "method_grad.", m, lo, w->lora_grad);
    if (!strcmp(name, "repnoise")) {
        RepNoiseTerms t = repnoise_terms(s);
        float terms[3] = {(float)t.retain, (float)t.harmful, (float)t.noise};
        out_add(out, "repnoise_terms", 1, 3, 0, terms, 1);
        const Batch *hb = repnoise_harmful_batch(s);
        size_t N = (size_t)hb->B * hb->T, C = m->cfg.dim;
        float *buf = xmalloc(N * C * sizeof(float));
        for (size_t i = 0; i < N; i++) buf[i] = (float)hb->tokens[i];
        out_add(out, "repnoise_harm_tokens", 2, hb->B, hb->T, buf, 1);
        for (size_t i = 0; i < N; i++) buf[i] = (float)hb->mask[i];
        out_add(out, "repnoise_harm_mask", 2, hb->B, hb->T, buf, 1);
        char nm[64];
        for (int l = 0; l < m->cfg.n_layers; l++) {
            repnoise_noise(s, l, buf);
            snprintf(nm, sizeof nm, "repnoise_noise.%d", l);
            out_add(out, nm, 2, (int64_t)N, (int64_t)C, buf, 1);
        }
        free(buf);
    }
    if (!strcmp(name, "ldifs")) {
        float terms[256];
        int L = m->cfg.n_layers < 256 ? m->cfg.n_layers : 256;
        for (int l = 0; l < L; l++) terms[l] = (float)ldifs_terms(s)[l];
        out_add(out, "ldifs_terms", 1, L, 0, terms, 1);
    }
    if (!strcmp(name, "tar")) out_add(out, "tar_losses", 1, (int)num(jm, "inner_steps", 1) + 1, 0, tar_losses(s), 1);
    workspace_free(w);
    step_method_free(s);
    encoded_free(&set);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: parity JOB.json\n"); return 2; }
    json_error_t je;
    json_t *job = json_load_file(argv[1], 0, &je);
    if (!job) die(argv[1], &(Err){"malformed JSON"});
    Err e = {0};
    Out *out = xcalloc(1, sizeof *out);
    const char *out_path = str(job, "out");
    if (!out_path) die("job", &(Err){"no \"out\""});

    json_t *jd = json_object_get(job, "judge");
    if (json_is_object(jd)) {
        Judge *j = judge_classifier_new_len(str(jd, "model"), (float)num(jd, "threshold", 0.5),
                                            (int)num(jd, "max_len", JUDGE_CLASSIFIER_MAX_LEN), &e);
        if (!j) die("judge", &e);
        json_t *ps = json_object_get(jd, "prompts"), *as = json_object_get(jd, "answers");
        int n = (int)json_array_size(ps);
        float *scores = xcalloc((size_t)n * j->n_categories, sizeof(float)), *fl = xcalloc(n, sizeof(float));
        for (int i = 0; i < n; i++) {
            int flagged;
            if (j->score(j, json_string_value(json_array_get(ps, i)), json_string_value(json_array_get(as, i)),
                         &flagged, scores + (size_t)i * j->n_categories, &e))
                die("judge score", &e);
            fl[i] = (float)flagged;
        }
        out_add(out, "judge_scores", 2, n, j->n_categories, scores, 1);
        out_add(out, "judge_flagged", 1, n, 0, fl, 1);
        free(scores); free(fl);
        judge_free(j);
    }

    json_t *js = json_object_get(job, "strip");
    if (json_is_object(js)) {
        json_t *texts = json_object_get(js, "texts"), *res = json_array();
        for (size_t i = 0; i < json_array_size(texts); i++) {
            char *t = xstrdup(json_string_value(json_array_get(texts, i)));
            answer_strip(t);
            json_array_append_new(res, json_string(t));
            free(t);
        }
        if (json_dump_file(res, str(js, "out"), 0)) die("strip", &(Err){"cannot write"});
        json_decref(res);
    }

    json_t *jw = json_object_get(job, "wanda");
    if (json_is_object(jw)) {
        int rows = (int)num(jw, "rows", 0), cols = (int)num(jw, "cols", 0);
        size_t n = (size_t)rows * cols;
        float *W = float_array(jw, "W", n), *act = json_object_get(jw, "act") ? float_array(jw, "act", cols) : NULL;
        unsigned char *mask = xmalloc(n);
        wanda_mask(W, rows, cols, act, num(jw, "dense_ratio", 0.1), mask);
        float *mf = xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) mf[i] = mask[i];
        out_add(out, "mask", 2, rows, cols, mf, 1);
        free(W); free(act); free(mask); free(mf);
    }

    const char *model_dir = str(job, "model");
    Model m;
    Lora lo;
    int have_model = model_dir != NULL;
    if (have_model) {
        if (model_load(&m, model_dir, MAT_F32, &e)) die("model", &e);
        json_t *merge = json_object_get(job, "merge");
        for (size_t i = 0; i < json_array_size(merge); i++) {
            Lora a;
            if (peft_load(&a, &m, json_string_value(json_array_get(merge, i)), &e)) die("merge", &e);
            lora_merge(&m, &a);
            lora_free(&a);
        }
        const char *ad = str(job, "adapter");
        if (ad) {
            if (peft_load(&lo, &m, ad, &e)) die("adapter", &e);
            lo.dropout = 0;
        } else {
            json_t *lc = json_object_get(job, "lora");
            const char *tg = str(lc, "targets");
            int mask = proj_mask_parse(tg ? tg : "all", &e);
            if (mask < 0 || (mask = proj_mask_for(&m.cfg, mask, &e)) < 0) die("lora targets", &e);
            lora_init(&lo, &m, (int)num(lc, "rank", 4), (float)num(lc, "alpha", 8), 0, mask,
                      (uint64_t)num(lc, "seed", 1));
            double s = num(lc, "init_scale", 0);
            if (s > 0) {
                Rng r;
                rng_seed(&r, (uint64_t)num(lc, "seed", 1) + 99);
                for (size_t i = 0; i < lo.n_params; i++) lo.params[i] = rng_normal(&r) * (float)s;
            }
        }
        const char *si = str(job, "save_adapter_init");
        if (si && peft_save(&lo, &m, si, model_dir, &e)) die("save_adapter_init", &e);

        json_t *jp = json_object_get(job, "prune");
        if (json_is_object(jp)) {
            json_t *ss = json_object_get(jp, "samples");
            EncodedSet cal = {0};
            cal.n = (int)json_array_size(ss);
            cal.ex = xcalloc(cal.n ? cal.n : 1, sizeof(Encoded));
            for (int i = 0; i < cal.n; i++) {
                json_t *ids = json_array_get(ss, i);
                cal.ex[i].n = (int)json_array_size(ids);
                cal.ex[i].ids = xmalloc((cal.ex[i].n ? cal.ex[i].n : 1) * sizeof(int));
                for (int t = 0; t < cal.ex[i].n; t++) cal.ex[i].ids[t] = (int)json_integer_value(json_array_get(ids, t));
            }
            const char *tg = str(jp, "targets");
            PruneOpts po = {num(jp, "dense_ratio", 0.1), (int)num(jp, "random", 0), (int)num(jp, "full", 0),
                            proj_mask_parse(tg ? tg : "q,k,v", &e), (uint64_t)num(jp, "seed", 1)};
            PruneReport rep;
            if (antidote_prune(&m, po.full_mode ? NULL : &lo, &cal, &po, &rep, &e)) die("prune", &e);
            char name[200], pname[240];
            for (int l = 0; l < m.cfg.n_layers; l++)
                for (int p = 0; p < N_PROJ; p++) {
                    int k = l * N_PROJ + p, o_, in;
                    proj_dims(&m.cfg, p, &o_, &in);
                    if (po.full_mode) {
                        if (!(po.targets & (1 << p))) continue;
                        snprintf(pname, sizeof pname, "pruned.%d.%s", l, proj_hf_name(&m.cfg, p));
                        out_add(out, pname, 2, o_, in, m.layers[l].w[p].data, 1);
                        continue;
                    }
                    if (!lo.A[k]) continue;
                    peft_name(name, sizeof name, &m.cfg, l, p, 'A');
                    snprintf(pname, sizeof pname, "pruned.%s", name);
                    out_add(out, pname, 2, lo.rank, in, lo.A[k], 1);
                    peft_name(name, sizeof name, &m.cfg, l, p, 'B');
                    snprintf(pname, sizeof pname, "pruned.%s", name);
                    out_add(out, pname, 2, o_, lo.rank, lo.B[k], 1);
                }
            encoded_free(&cal);
        }

        int B = (int)num(job, "B", 0), T = (int)num(job, "T", 0), V = m.cfg.vocab_size;
        if (B > 0 && T > 0) {
            Batch b = {B, T, int_array(job, "tokens", B * T), int_array(job, "targets", B * T),
                       int_array(job, "mask", B * T)};
            Workspace *w = workspace_new(&m, &lo, B, T, 0);
            ForwardOpts fo = {.train = 1, .loss_scale = 1};
            memset(w->lora_grad, 0, lo.n_params * sizeof(float));
            model_forward(&m, &lo, w, &b, &fo);
            float loss = (float)w->loss;
            float *logits = xmalloc((size_t)B * T * V * sizeof(float));
            model_logits(&m, w, logits);
            out_add(out, "logits", 2, (int64_t)B * T, V, logits, 1);
            out_add(out, "loss", 1, 1, 0, &loss, 1);
            free(logits);
            BackwardOpts bo = {.param_grads = 1};
            model_backward(&m, &lo, w, &bo);
            out_lora(out, "grad.", &m, &lo, w->lora_grad);
            json_t *jm = json_object_get(job, "method");
            if (json_is_object(jm)) run_method(out, jm, &m, &lo, &b);
            int steps = (int)num(job, "steps", 0);
            if (steps > 0) {
                AdamW opt = {(float)num(job, "lr", 1e-3), (float)num(job, "beta1", 0.9), (float)num(job, "beta2", 0.999),
                             (float)num(job, "eps", 1e-8), (float)num(job, "weight_decay", 0)};
                float mgn = (float)num(job, "max_grad_norm", 0);
                float *am = xcalloc(lo.n_params, sizeof(float)), *av = xcalloc(lo.n_params, sizeof(float));
                float *losses = xmalloc(steps * sizeof(float));
                for (int s = 0; s < steps; s++) {
                    if (s > 0) {  // step 0 reuses the gradients above
                        memset(w->lora_grad, 0, lo.n_params * sizeof(float));
                        model_forward(&m, &lo, w, &b, &fo);
                        model_backward(&m, &lo, w, &bo);
                    }
                    losses[s] = (float)w->loss;
                    if (mgn > 0) clip_grad_norm(w->lora_grad, lo.n_params, mgn);
                    adamw_update(&opt, lo.params, w->lora_grad, am, av, lo.n_params, opt.lr, opt.weight_decay, s + 1);
                }
                out_add(out, "losses", 1, steps, 0, losses, 1);
                free(am); free(av); free(losses);
            }
            workspace_free(w);
            free(b.tokens); free(b.targets); free(b.mask);
        }
        json_t *jg = json_object_get(job, "generate");
        if (json_is_object(jg)) greedy(out, &m, &lo, jg);
        const char *sf = str(job, "save_adapter_final");
        if (sf && peft_save(&lo, &m, sf, model_dir, &e)) die("save_adapter_final", &e);
        const char *sm = str(job, "save_merged");
        if (sm) {
            lora_merge(&m, &lo);
            if (model_save(&m, sm, MAT_F32, (size_t)num(job, "max_shard_bytes", 0), &e)) die("save_merged", &e);
        }
    }
    const char *meta[] = {"format", "pt"};
    if (out->n && st_write(out_path, out->t, out->n, meta, 1, &e)) die("out", &e);
    for (int i = 0; i < out->n; i++) free((char *)out->t[i].name);
    for (int i = 0; i < out->n_owned; i++) free(out->owned[i]);
    free(out);
    if (have_model) { lora_free(&lo); model_free(&m); }
    json_decref(job);
    return 0;
}
