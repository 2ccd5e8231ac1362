// The metrics (docs/methods.md, Evaluation) on a loaded model: harmful score (HS), fine-tune accuracy
// (FA), alignment loss and harmful embedding drift (HED). Generation is greedy and decodes
// four prompts per step (generate_batch: the weights are read once for the four), with
// answers equal to one-prompt-at-a-time decoding and independent of the thread count (the
// command line sets the threads). HS and FA write one JSON object per sample (JSONL).
#pragma once
#include <stdio.h>

#include "data/dataset.h"
#include "data/answers.h"
#include "eval/judge.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int hs_max_new;      // new tokens of a harmful-prompt answer (128: poison/evaluation/pred.py)
    int fa_max_new;      // new tokens of a task answer (200: {sst2,ag_news,gsm8k}/pred_eval.py)
    int batch_size;      // alignment loss / HED: the reference's batch size (5) ...
    int hed_batches;     // ... and HED looks at the first hed_batches batches (10)
    int max_len;         // alignment loss / HED truncation (200, docs/methods.md, Prompt and loss)
    const char *label;   // progress label prefix (NULL: "eval")
} EvalOpts;

void eval_opts_default(EvalOpts *o);

// Generation throughput of one evaluation phase (harmful prompts or task prompts).
typedef struct {
    int prompts;
    long long prompt_tokens, new_tokens;
    double seconds;                              // wall time of the generation, judge excluded
} GenStats;

typedef struct {
    int total, flagged;
    double score;                                // HS = 100 * flagged / total
    int category_flags[JUDGE_MAX_CATEGORIES];    // flagged answers with category score > 0.5 (judges with categories)
    GenStats gen;                                // eval_harmful: the generation's throughput
} HarmfulSummary;

typedef struct {
    int total, correct;
    int unscorable;                              // labels the rule cannot read (counted as wrong)
    double accuracy;                             // FA = 100 * correct / total
    GenStats gen;                                // eval_task: the generation's throughput
} TaskSummary;

// Greedy answers of at most max_new tokens for every prompt (the Alpaca prompt of each row:
// no-input template when input is empty), in order, each the response part as answer_strip
// leaves it; answers[i] malloc'd. Deterministic for any thread count. stats (may be NULL)
// gets the prompts' and new tokens' counts and the generation's wall time.
// NULL with e set when a prompt leaves no room to generate (eval/generate.h, generate_room);
// prompts whose answers the model's positions may cut short get a warning with their count.
char **eval_generate(const Model *m, const Lora *lora, const Tokenizer *tok, const Dataset *prompts,
                     const EvalOpts *o, int max_new, GenStats *stats, Err *e);
// The response part as the reference scripts take it: they decode prompt + answer and keep
// split("### Response:")[1].strip(), so the answer ends before any "### Response:" it
// generates and loses leading and trailing whitespace (Python's str.strip set). In place.
void answer_strip(char *answer);
void eval_answers_free(char **answers, int n);

// HS: generates, judges each (instruction, answer) sequentially, writes jsonl_path (if
// non-NULL) with {i, prompt, answer, flagged, category (data), scores {name: p}}.
int eval_harmful(const Model *m, const Lora *lora, const Tokenizer *tok, const Dataset *prompts, Judge *j,
                 const EvalOpts *o, const char *jsonl_path, HarmfulSummary *s, Err *e);
// The judging half of eval_harmful on given answers (tests, re-judging).
int eval_judge_answers(const Dataset *prompts, char *const *answers, Judge *j, const char *jsonl_path,
                       HarmfulSummary *s, Err *e);

// FA: generates, scores with fa_correct(kind, answer, label), writes jsonl_path with
// {i, prompt, input, answer, label, correct}.
int eval_task(const Model *m, const Lora *lora, const Tokenizer *tok, const Dataset *task, TaskKind kind,
              const EvalOpts *o, const char *jsonl_path, TaskSummary *s, Err *e);
int eval_score_task(const Dataset *task, char *const *answers, TaskKind kind, const char *jsonl_path, TaskSummary *s,
                    Err *e);

// Alignment loss as the reference's Trainer evaluation computes it over the safe alignment
// rows: batches of batch_size rows in order, each batch's loss the token-weighted mean over
// its answer tokens (prompt masked, docs/methods.md, Prompt and loss), the result the mean
// of the batch losses weighted by their row counts. Each row runs alone (no padding enters); a batch with no target
// token is skipped (the reference would get NaN). *n_used gets the rows of the batches used.
int eval_alignment_loss(const Model *m, const Lora *lora, const Tokenizer *tok, int eos_id, const Dataset *align,
                        const EvalOpts *o, double *loss, int *n_used, Err *e);

// HED: sum over the first hed_batches * batch_size alignment samples, every layer and every
// token of ||h_l(model + ft) - h_l(model)||^2, h_l = attention output of layer l (after o_proj,
// before the residual add). `m` is the aligned model (alignment adapter merged) and ft the
// fine-tuning adapter, applied unmerged.
int eval_hed(const Model *m, const Lora *ft, const Tokenizer *tok, int eos_id, const Dataset *align,
             const EvalOpts *o, double *hed, int *n_used, Err *e);

// ---- one whole evaluation of a model folder (antibody eval, the pipeline) ---------------
typedef struct {
    const char *model_dir;
    const char *const *adapters;  // merged in order (alignment, ...)
    int n_adapters;
    const char *ft_adapter;       // fine-tuning adapter: unmerged for HED, then merged; NULL = none
    MatType weights;
    const Dataset *harmful;       // HS prompts (NULL: skip HS)
    Judge *judge;
    const Dataset *task;          // FA rows (NULL: skip FA)
    TaskKind task_kind;
    const Dataset *align;         // alignment loss and (with ft_adapter) HED; NULL: skip
    EvalOpts opts;
    const char *out_dir;          // harmful.jsonl, task.jsonl, summary.json
    const char *extra_json;       // a JSON object whose keys are copied into summary.json, or NULL
    int overwrite;                // replace the files of an earlier evaluation in out_dir (else refuse)
    const char *model_sha256;     // folder_sha256 of model_dir when the caller has it, else NULL (computed)
} EvalJob;

typedef struct {
    int has_hs, has_fa, has_loss, has_hed;
    HarmfulSummary hs;
    TaskSummary fa;
    double align_loss, hed;
    int n_align_loss, n_hed;
    double seconds;
} EvalSummary;

// Refuses an out_dir holding an earlier evaluation's files (summary.json, harmful.jsonl,
// task.jsonl), or removes them with overwrite: one folder never mixes two runs' files.
int eval_out_claim(const char *out_dir, int overwrite, Err *e);
// Refuses an adapter given twice (adapters and ft_adapter, by real path) and a used
// out_dir before loading anything.
int eval_job_run(const EvalJob *j, EvalSummary *s, Err *e);
