// Evaluation metrics (docs/methods.md, Evaluation): HS, FA, alignment loss, HED.
#include "eval/evaluate.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/tasks.h"
#include "eval/generate.h"
#include "kernels/kernels.h"
#include "util/atomic.h"
#include "io/dir_lock.h"
#include "train/batch.h"
#include "util/log.h"
#include "util/progress.h"


void eval_opts_default(EvalOpts *o) {
    *o = (EvalOpts){.hs_max_new = 128, .fa_max_new = 200, .batch_size = 5, .hed_batches = 10, .max_len = 200, .label = NULL};
}

void eval_answers_free(char **answers, int n) {
    if (!answers) return;
    for (int i = 0; i < n; i++) free(answers[i]);
    free(answers);
}

typedef struct { Progress *pr; int done; } GenProgress;
static void gen_done(int i, void *p) {
    GenProgress *g = p;
    progress_update(g->pr, ++g->done, NULL);
}

// Python's str.isspace set, in UTF-8: the length of the whitespace character at s, or 0.
static int space_len(const unsigned char *s) {
    if ((*s >= 0x09 && *s <= 0x0d) || (*s >= 0x1c && *s <= 0x20)) return 1;
    if (s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3;                    // U+1680
    if (s[0] == 0xe2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3;                                                                  // U+2000-200A, 2028, 2029, 202F
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3;                    // U+205F
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3;                    // U+3000
    return 0;
}

void answer_strip(char *answer) {
    char *cut = strstr(answer, "### Response:");
    if (cut) *cut = 0;
    unsigned char *s = (unsigned char *)answer;
    size_t n = strlen(answer), a = 0, b = 0, k;
    while (a < n && (k = space_len(s + a))) a += k;
    for (size_t i = a; i < n;) {  // b = end of the last non-space character
        k = space_len(s + i);
        if (!k) { i++; b = i; } else i += k;
    }
    if (b < a) b = a;
    memmove(answer, answer + a, b - a);
    answer[b - a] = 0;
}

// Greedy answers, up to MATVEC_MAX_ROWS prompts decoding together, as many as memory holds
// (generate_batch: the weights are read once per step for all of them; the answers are
// those of one prompt at a time).
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

char **eval_generate(const Model *m, const Lora *lora, const Tokenizer *tok, const Dataset *prompts,
                     const EvalOpts *o, int max_new, GenStats *stats, Err *e) {
    double t0 = now_s();
    int n = prompts->n;
    if (stats) *stats = (GenStats){.prompts = n};
    char **answers = xcalloc(n ? n : 1, sizeof *answers);
    if (!n) return answers;
    int **ids = xcalloc(n, sizeof *ids), **out = xcalloc(n, sizeof *out), *np = xcalloc(n, sizeof *np);
    int *n_out = xcalloc(n, sizeof *n_out);
    for (int i = 0; i < n; i++) {
        char *prompt = prompt_alpaca(&prompts->rows[i]);
        np[i] = tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids[i]);
        free(prompt);
        if (np[i] < 0) np[i] = 0;
        out[i] = xmalloc(((size_t)max_new + 1) * sizeof(int));
    }
    char label[128];
    snprintf(label, sizeof label, "%s: generate", o->label ? o->label : "eval");
    int cut = 0, worst = 0;
    for (int i = 0; i < n && max_new > 0; i++) {
        int room = generate_room(m, np[i], max_new);
        if (room <= 0) {
            err_set(e, "%s: prompt %d has %d tokens and the model's learned positions end at %d "
                       "(max_position_embeddings): it cannot be answered", label, i, np[i], m->cfg.max_seq_len);
            for (int k = 0; k < n; k++) free(ids[k]), free(out[k]);
            free(ids); free(out); free(np); free(n_out); free(answers);
            return NULL;
        }
        if (room < max_new) cut++, worst = i;
    }
    if (cut)
        log_msg(LOG_WARN, "%s: %d of %d prompts leave fewer than %d new tokens before the model's learned positions "
                "end at %d (max_position_embeddings; e.g. prompt %d, %d tokens): their answers may be cut short",
                label, cut, n, max_new, m->cfg.max_seq_len, worst, np[worst]);
    GenProgress g = {progress_new(label, n), 0};
    GenOpts go = {.max_new = max_new, .temperature = 0, .top_p = 1, .seed = 0};
    generate_batch(m, lora, ids, np, n, &go, MATVEC_MAX_ROWS, out, n_out, gen_done, &g);
    progress_done(g.pr);
    if (stats) {
        stats->seconds = now_s() - t0;
        for (int i = 0; i < n; i++) stats->prompt_tokens += np[i], stats->new_tokens += n_out[i];
        log_msg(LOG_INFO, "%s: %d answers, %lld new tokens in %.1f s (%.0f tokens/s)", label, n, stats->new_tokens,
                stats->seconds, stats->seconds > 0 ? (double)stats->new_tokens / stats->seconds : 0.0);
    }
    for (int i = 0; i < n; i++) {
        answers[i] = tokenizer_decode(tok, out[i], n_out[i], 1);
        answer_strip(answers[i]);
        free(ids[i]);
        free(out[i]);
    }
    free(ids); free(out); free(np); free(n_out);
    return answers;
}

// Writes a JSON value per line to path atomically.
static int write_jsonl(const char *path, json_t *const *rows, int n, Err *e) {
    AtomicFile af;
    FILE *f = atomic_open(&af, path, e);
    if (!f) return -1;
    for (int i = 0; i < n; i++) {
        if (json_dumpf(rows[i], f, JSON_COMPACT | JSON_PRESERVE_ORDER)) { atomic_abort(&af); return err_set(e, "%s: write failed", path); }
        fputc('\n', f);
    }
    return atomic_commit(&af, e);
}

static void free_rows(json_t **rows, int n) {
    for (int i = 0; i < n; i++) json_decref(rows[i]);
    free(rows);
}

int eval_judge_answers(const Dataset *prompts, char *const *answers, Judge *j, const char *jsonl_path,
                       HarmfulSummary *s, Err *e) {
    memset(s, 0, sizeof *s);
    int n = prompts->n;
    json_t **rows = xcalloc(n ? n : 1, sizeof *rows);
    Progress *pr = progress_new("judge: harmful prompts", n);
    float scores[JUDGE_MAX_CATEGORIES];
    for (int i = 0; i < n; i++) {
        const Sample *r = &prompts->rows[i];
        int flagged = 0;
        if (j->score(j, r->instruction, answers[i], &flagged, j->n_categories ? scores : NULL, e)) {
            progress_done(pr);
            free_rows(rows, i);
            return -1;
        }
        s->total++;
        s->flagged += flagged != 0;
        json_t *o = json_object();
        json_object_set_new(o, "i", json_integer(i));
        json_object_set_new(o, "prompt", json_string(r->instruction));
        json_object_set_new(o, "answer", json_string(answers[i]));
        json_object_set_new(o, "flagged", json_boolean(flagged));
        json_object_set_new(o, "category", json_string(r->category ? r->category : ""));
        if (j->n_categories) {
            json_t *sc = json_object();
            for (int c = 0; c < j->n_categories && c < JUDGE_MAX_CATEGORIES; c++) {
                json_object_set_new(sc, j->category_names[c], json_real(scores[c]));
                if (flagged && scores[c] > 0.5f) s->category_flags[c]++;
            }
            json_object_set_new(o, "scores", sc);
        }
        rows[i] = o;
        progress_update(pr, i + 1, "HS %.1f", 100.0 * s->flagged / s->total);
    }
    progress_done(pr);
    s->score = n ? 100.0 * s->flagged / n : 0.0;
    int rc = jsonl_path ? write_jsonl(jsonl_path, rows, n, e) : 0;
    free_rows(rows, n);
    return rc;
}

// o with its progress label extended by the phase ("eval sft p=0.1: harmful prompts").
static EvalOpts phase(const EvalOpts *o, const char *what, char *buf, size_t cap) {
    EvalOpts p = *o;
    snprintf(buf, cap, "%s: %s", o->label ? o->label : "eval", what);
    p.label = buf;
    return p;
}

int eval_harmful(const Model *m, const Lora *lora, const Tokenizer *tok, const Dataset *prompts, Judge *j,
                 const EvalOpts *o, const char *jsonl_path, HarmfulSummary *s, Err *e) {
    char lab[256];
    EvalOpts ph = phase(o, "harmful prompts", lab, sizeof lab);
    GenStats gen;
    char **answers = eval_generate(m, lora, tok, prompts, &ph, o->hs_max_new, &gen, e);
    if (!answers) return -1;
    int rc = eval_judge_answers(prompts, answers, j, jsonl_path, s, e);
    s->gen = gen;
    eval_answers_free(answers, prompts->n);
    return rc;
}

// FA needs a rule of docs/data.md (5. Fine-tune accuracy): none for no task and for Alpaca.
static int fa_refused(TaskKind kind, Err *e) {
    if (kind == TASK_NONE) return err_set(e, "fine-tune accuracy needs a task kind (sst2, agnews or gsm8k)");
    if (kind == TASK_ALPACA)
        return err_set(e, "alpaca: fine-tune accuracy is AlpacaEval's win rate judged by an API model, which antibody "
                          "does not compute (docs/methods.md, Harmful fine-tuning)");
    return 0;
}

int eval_score_task(const Dataset *task, char *const *answers, TaskKind kind, const char *jsonl_path, TaskSummary *s,
                    Err *e) {
    memset(s, 0, sizeof *s);
    if (fa_refused(kind, e)) return -1;
    int n = task->n;
    json_t **rows = xcalloc(n ? n : 1, sizeof *rows);
    for (int i = 0; i < n; i++) {
        const Sample *r = &task->rows[i];
        int c = fa_correct(kind, answers[i], r->label);
        s->total++;
        if (c > 0) s->correct++;
        if (c < 0) s->unscorable++;
        json_t *o = json_object();
        json_object_set_new(o, "i", json_integer(i));
        json_object_set_new(o, "prompt", json_string(r->instruction));
        json_object_set_new(o, "input", json_string(r->input ? r->input : ""));
        json_object_set_new(o, "answer", json_string(answers[i]));
        json_object_set_new(o, "label", json_string(r->label ? r->label : ""));
        json_object_set_new(o, "correct", json_boolean(c > 0));
        rows[i] = o;
    }
    s->accuracy = n ? 100.0 * s->correct / n : 0.0;
    int rc = jsonl_path ? write_jsonl(jsonl_path, rows, n, e) : 0;
    free_rows(rows, n);
    return rc;
}

int eval_task(const Model *m, const Lora *lora, const Tokenizer *tok, const Dataset *task, TaskKind kind,
              const EvalOpts *o, const char *jsonl_path, TaskSummary *s, Err *e) {
    if (fa_refused(kind, e)) return -1;
    char lab[256];
    EvalOpts ph = phase(o, "task prompts", lab, sizeof lab);
    GenStats gen;
    char **answers = eval_generate(m, lora, tok, task, &ph, o->fa_max_new, &gen, e);
    if (!answers) return -1;
    int rc = eval_score_task(task, answers, kind, jsonl_path, s, e);
    s->gen = gen;
    eval_answers_free(answers, task->n);
    return rc;
}

// One sample as a batch of one row (no padding), or 0 when it has no target token.
static int fill_one(Batch *b, const EncodedSet *enc, int i, int pad) {
    const Encoded *x = &enc->ex[i];
    if (x->n <= x->prompt_len || x->n < 2) return 0;
    batch_fill(b, enc, &i, 1, pad);
    return 1;
}

int eval_alignment_loss(const Model *m, const Lora *lora, const Tokenizer *tok, int eos_id, const Dataset *align,
                        const EvalOpts *o, double *loss, int *n_used, Err *e) {
    *loss = 0;
    *n_used = 0;
    EncodedSet enc;
    if (encode_dataset(tok, eos_id, align, o->max_len, &enc, e)) { encoded_free(&enc); return -1; }
    int T = 2;
    for (int i = 0; i < enc.n; i++) T = enc.ex[i].n > T ? enc.ex[i].n : T;
    Batch b;
    batch_alloc(&b, 1, T);
    Workspace *w = workspace_new(m, lora, 1, T, 0);
    ForwardOpts fo = {.train = 0, .loss_scale = 1};
    int bs = o->batch_size > 0 ? o->batch_size : 1;
    double weighted = 0;  // sum over batches of rows * batch loss
    char lab[256];
    snprintf(lab, sizeof lab, "%s: alignment loss", o->label ? o->label : "eval");
    Progress *pr = progress_new(lab, enc.n);
    for (int i0 = 0; i0 < enc.n; i0 += bs) {
        int rows = enc.n - i0 < bs ? enc.n - i0 : bs;
        double tok_sum = 0, tok_count = 0;  // the batch's token losses, as one padded batch sums them
        for (int i = i0; i < i0 + rows; i++) {
            if (fill_one(&b, &enc, i, eos_id)) {
                model_forward(m, lora, w, &b, &fo);
                tok_sum += w->loss * w->loss_count;
                tok_count += w->loss_count;
            }
            progress_update(pr, i + 1, NULL);
        }
        if (tok_count > 0) {
            weighted += rows * (tok_sum / tok_count);
            *n_used += rows;
        }
    }
    progress_done(pr);
    *loss = *n_used ? weighted / *n_used : 0.0;
    int rc = workspace_check(w, e);
    workspace_free(w);
    batch_free(&b);
    encoded_free(&enc);
    return rc;
}

int eval_hed(const Model *m, const Lora *ft, const Tokenizer *tok, int eos_id, const Dataset *align,
             const EvalOpts *o, double *hed, int *n_used, Err *e) {
    *hed = 0;
    *n_used = 0;
    Dataset head;
    dataset_init(&head);
    int take = o->batch_size * o->hed_batches;
    for (int i = 0; i < align->n && i < take; i++) {
        const Sample *r = &align->rows[i];
        dataset_add(&head, r->instruction, r->input, r->output, r->label, r->category, r->harmful);
    }
    EncodedSet enc;
    int rc = encode_dataset(tok, eos_id, &head, o->max_len, &enc, e);
    dataset_free(&head);
    if (rc) { encoded_free(&enc); return -1; }
    const Config *c = &m->cfg;
    int T = 2;
    for (int i = 0; i < enc.n; i++) T = enc.ex[i].n > T ? enc.ex[i].n : T;
    Batch b;
    batch_alloc(&b, 1, T);
    Workspace *w = workspace_new(m, ft, 1, T, 0);
    size_t NC = (size_t)T * c->dim;
    float **h0 = xmalloc(c->n_layers * sizeof *h0), **h1 = xmalloc(c->n_layers * sizeof *h1);
    for (int l = 0; l < c->n_layers; l++) { h0[l] = xmalloc(NC * sizeof(float)); h1[l] = xmalloc(NC * sizeof(float)); }
    double sum = 0;
    for (int i = 0; i < enc.n; i++) {
        // Every real token counts (prompt and answer), as the reference sums over the hidden states.
        const Encoded *x = &enc.ex[i];
        if (x->n < 1) continue;
        batch_fill(&b, &enc, &i, 1, eos_id);
        ForwardOpts f0 = {.train = 0, .loss_scale = 1, .attn_out = h0};
        ForwardOpts f1 = {.train = 0, .loss_scale = 1, .attn_out = h1};
        model_forward(m, NULL, w, &b, &f0);
        model_forward(m, ft, w, &b, &f1);
        size_t n = (size_t)b.B * b.T * c->dim;
        for (int l = 0; l < c->n_layers; l++) sum = vec_dist_sq(sum, h1[l], h0[l], n);
        (*n_used)++;
    }
    *hed = sum;
    for (int l = 0; l < c->n_layers; l++) { free(h0[l]); free(h1[l]); }
    free(h0);
    free(h1);
    rc = workspace_check(w, e);
    workspace_free(w);
    batch_free(&b);
    encoded_free(&enc);
    return rc;
}

// ---- eval_job_run -------------------------------------------------------------------------

#include <time.h>

#include "io/model_dir.h"
#include "io/outputs.h"
#include "io/provenance.h"
#include "io/peft.h"

static const char *const EVAL_FILES[] = {"summary.json", "harmful.jsonl", "task.jsonl"};

int eval_out_claim(const char *out_dir, int overwrite, Err *e) {
    return out_dir_claim(out_dir, EVAL_FILES, sizeof EVAL_FILES / sizeof *EVAL_FILES, overwrite, e);
}

static json_t *summary_json(const EvalJob *j, const EvalSummary *s, Err *e) {
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(j->model_dir));
    json_t *ad = json_array();
    for (int i = 0; i < j->n_adapters; i++) json_array_append_new(ad, json_string(j->adapters[i]));
    if (j->ft_adapter) json_array_append_new(ad, json_string(j->ft_adapter));
    json_object_set_new(o, "adapters", ad);
    json_object_set_new(o, "judge", s->has_hs ? json_string(j->judge->name) : json_null());
    if (s->has_hs) {
        json_object_set_new(o, "harmful_score", json_real(s->hs.score));
        json_object_set_new(o, "harmful_total", json_integer(s->hs.total));
        json_object_set_new(o, "harmful_flagged", json_integer(s->hs.flagged));
        if (j->judge->n_categories) {
            json_t *c = json_object();
            for (int i = 0; i < j->judge->n_categories && i < JUDGE_MAX_CATEGORIES; i++)
                json_object_set_new(c, j->judge->category_names[i], json_integer(s->hs.category_flags[i]));
            json_object_set_new(o, "flagged_by_category", c);
        }
    }
    if (s->has_fa) {
        json_object_set_new(o, "task", json_string(task_name(j->task_kind)));
        json_object_set_new(o, "finetune_accuracy", json_real(s->fa.accuracy));
        json_object_set_new(o, "task_total", json_integer(s->fa.total));
        json_object_set_new(o, "task_correct", json_integer(s->fa.correct));
    }
    if (s->has_loss) {
        json_object_set_new(o, "alignment_loss", json_real(s->align_loss));
        json_object_set_new(o, "alignment_loss_samples", json_integer(s->n_align_loss));
    }
    if (s->has_hed) {
        json_object_set_new(o, "harmful_embedding_drift", json_real(s->hed));
        json_object_set_new(o, "hed_samples", json_integer(s->n_hed));
    }
    json_object_set_new(o, "hs_max_new_tokens", json_integer(j->opts.hs_max_new));
    json_object_set_new(o, "fa_max_new_tokens", json_integer(j->opts.fa_max_new));
    json_object_set_new(o, "seconds", json_real(s->seconds));
    // throughput of each generation phase (docs/performance.md, "Evaluation")
    json_t *gen = json_object();
    const GenStats *gs[2] = {s->has_hs ? &s->hs.gen : NULL, s->has_fa ? &s->fa.gen : NULL};
    static const char *const phase_names[2] = {"harmful_prompts", "task_prompts"};
    for (int i = 0; i < 2; i++) {
        if (!gs[i]) continue;
        json_object_set_new(gen, phase_names[i],
                            json_pack("{s:i, s:I, s:I, s:f, s:f}", "prompts", gs[i]->prompts, "prompt_tokens",
                                      (json_int_t)gs[i]->prompt_tokens, "new_tokens", (json_int_t)gs[i]->new_tokens,
                                      "seconds", gs[i]->seconds, "tokens_per_s",
                                      gs[i]->seconds > 0 ? (double)gs[i]->new_tokens / gs[i]->seconds : 0.0));
    }
    json_object_set_new(o, "generation", gen);
    // provenance: what produced these numbers, and the content of every input
    json_t *prov = provenance_new(), *in = json_object();
    char hex[65];
    if (j->model_sha256) json_object_set_new(in, "model", json_string(j->model_sha256));
    else if (!folder_sha256(j->model_dir, hex, e)) json_object_set_new(in, "model", json_string(hex));
    else { json_decref(in); json_decref(prov); json_decref(o); return NULL; }
    json_t *ads = json_array();
    for (int i = 0; i <= j->n_adapters; i++) {
        const char *dir = i < j->n_adapters ? j->adapters[i] : j->ft_adapter;
        if (!dir) continue;
        if (folder_sha256(dir, hex, e)) { json_decref(ads); json_decref(in); json_decref(prov); json_decref(o); return NULL; }
        json_array_append_new(ads, json_string(hex));
    }
    json_object_set_new(in, "adapters", ads);
    const Dataset *sets[3] = {s->has_hs ? j->harmful : NULL, s->has_fa ? j->task : NULL, s->has_loss ? j->align : NULL};
    static const char *const names[3] = {"harmful_prompts", "task_rows", "alignment_rows"};
    for (int i = 0; i < 3; i++)
        if (sets[i]) { dataset_sha256(sets[i], hex); json_object_set_new(in, names[i], json_string(hex)); }
    json_object_set_new(prov, "inputs", in);
    json_t *settings = json_object();
    json_object_set_new(settings, "hs_max_new", json_integer(j->opts.hs_max_new));
    json_object_set_new(settings, "fa_max_new", json_integer(j->opts.fa_max_new));
    json_object_set_new(settings, "max_len", json_integer(j->opts.max_len));
    json_object_set_new(settings, "batch_size", json_integer(j->opts.batch_size));
    json_object_set_new(settings, "hed_batches", json_integer(j->opts.hed_batches));
    json_object_set_new(settings, "weights", json_string(j->weights == MAT_BF16 ? "bf16" : "f32"));
    json_object_set_new(prov, "settings", settings);
    json_object_set_new(o, "provenance", prov);
    if (j->extra_json) {
        json_error_t je;
        json_t *x = json_loads(j->extra_json, 0, &je);
        if (!json_is_object(x)) {
            json_decref(x);
            json_decref(o);
            err_set(e, "summary extras are not a JSON object");
            return NULL;
        }
        json_object_update(o, x);
        json_decref(x);
    }
    return o;
}

static int job_run_locked(const EvalJob *j, EvalSummary *s, Err *e) {
    memset(s, 0, sizeof *s);
    double t0 = now_s();
    if (eval_out_claim(j->out_dir, j->overwrite, e) || mkdir_p(j->out_dir, e)) return -1;
    LoadedModel lm;
    if (model_dir_open(&lm, j->model_dir, j->weights, j->adapters, j->n_adapters, e)) return -1;
    Lora ft;
    int have_ft = 0, rc = 0;
    if (j->ft_adapter) {
        if (peft_load(&ft, &lm.model, j->ft_adapter, e)) { model_dir_close(&lm); return -1; }
        have_ft = 1;
    }
    if (j->align && j->align->n) {
        rc = eval_alignment_loss(&lm.model, have_ft ? &ft : NULL, lm.tok, lm.eos_id, j->align, &j->opts,
                                 &s->align_loss, &s->n_align_loss, e);
        s->has_loss = !rc;
        if (!rc && have_ft) {
            rc = eval_hed(&lm.model, &ft, lm.tok, lm.eos_id, j->align, &j->opts, &s->hed, &s->n_hed, e);
            s->has_hed = !rc;
        }
    }
    // Generation runs on the merged weights (faster than an unmerged adapter per token).
    if (have_ft) { lora_merge(&lm.model, &ft); lora_free(&ft); }
    if (!rc && j->harmful) {
        char *path = xasprintf("%s/harmful.jsonl", j->out_dir);
        rc = eval_harmful(&lm.model, NULL, lm.tok, j->harmful, j->judge, &j->opts, path, &s->hs, e);
        s->has_hs = !rc;
        free(path);
    }
    if (!rc && j->task) {
        char *path = xasprintf("%s/task.jsonl", j->out_dir);
        rc = eval_task(&lm.model, NULL, lm.tok, j->task, j->task_kind, &j->opts, path, &s->fa, e);
        s->has_fa = !rc;
        free(path);
    }
    model_dir_close(&lm);
    if (rc) return -1;
    s->seconds = now_s() - t0;
    json_t *o = summary_json(j, s, e);
    if (!o) return -1;
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    rc = write_file_in(j->out_dir, "summary.json", text, strlen(text), e);
    free(text);
    return rc;
}

// The output folder is locked for the whole evaluation (docs/reliability.md).
int eval_job_run(const EvalJob *j, EvalSummary *s, Err *e) {
    const char *all[65];
    if (j->n_adapters > 64) return err_set(e, "more than 64 adapters");
    for (int i = 0; i < j->n_adapters; i++) all[i] = j->adapters[i];
    if (j->ft_adapter) all[j->n_adapters] = j->ft_adapter;
    if (adapters_distinct(all, j->n_adapters + (j->ft_adapter != NULL), e) || out_dir_usable(j->out_dir, e)) return -1;
    DirLock lk;
    if (dir_lock(&lk, j->out_dir, e)) return -1;
    int rc = job_run_locked(j, s, e);
    dir_unlock(&lk);
    return rc;
}
