// Benign user tasks (docs/data.md, 2. Benign tasks), built from the raw files, and the Alpaca prompt
// template of docs/methods.md, Prompt and loss. Wording checked against git-disl/Vaccine (see docs/data.md).
#pragma once
#include "data/dataset.h"

// The benign tasks. Every entry point (flags, the pipeline config, the demo, data formats)
// maps a name to a task through task_from_name, one table with one rule: case-insensitive,
// the canonical name or an alias. New aliases (e.g. Hugging Face dataset names) go in
// that table in tasks.c.
// Alpaca: instruction rows for fine-tuning only; its accuracy is AlpacaEval's win rate judged
// by an API model, which antibody does not compute (FA is refused for it).
typedef enum { TASK_SST2, TASK_AGNEWS, TASK_GSM8K, TASK_ALPACA, TASK_NONE } TaskKind;

// "sst2" (sst-2, sst_2, sst), "agnews" (ag_news, ag-news, topic), "gsm8k" (gsm-8k, math),
// "alpaca", case-insensitive; the world's task names (sst, topic, math) are aliases. Else
// TASK_NONE.
TaskKind task_from_name(const char *name);
const char *task_name(TaskKind t);
// "sst2, agnews, gsm8k or alpaca", for messages.
#define TASK_NAMES_HELP "sst2, agnews, gsm8k or alpaca"
// Sets e to `unknown task "sst3" (did you mean sst2? sst2, agnews, gsm8k or alpaca)` (the hint
// when a name of the table is close) and returns -1.
int task_unknown(const char *name, Err *e);
// Loads a task's raw file (SST-2 TSV/JSON, AG News CSV, GSM8K JSONL, Alpaca JSON rows) into out.
int data_load_task(TaskKind t, const char *path, Dataset *out, Err *e);

#define SST2_INSTRUCTION "Analyze the sentiment of the input, and respond only positive or negative"
#define AGNEWS_INSTRUCTION \
    "Categorize the news article given in the input into one of the 4 categories:\n\nWorld\nSports\nBusiness\nSci/Tech\n"
#define GSM8K_QUESTION_SUFFIX "\nFirst think step by step and then answer the final number.\n"
#define GSM8K_ANSWER_PROMPT "The final answer is: "

// The Alpaca template in its pieces (written once: prompt_alpaca and its inverse use them).
#define ALPACA_HEAD_INPUT                                                                                \
    "Below is an instruction that describes a task, paired with an input that provides further context. " \
    "Write a response that appropriately completes the request.\n\n### Instruction:\n"
#define ALPACA_HEAD_NO_INPUT                                                                             \
    "Below is an instruction that describes a task. Write a response that appropriately completes the " \
    "request.\n\n### Instruction:\n"
#define ALPACA_INPUT_SEP "\n\n### Input:\n"
#define ALPACA_TAIL "\n\n### Response:"
#define ALPACA_PROMPT_INPUT ALPACA_HEAD_INPUT "%s" ALPACA_INPUT_SEP "%s" ALPACA_TAIL
#define ALPACA_PROMPT_NO_INPUT ALPACA_HEAD_NO_INPUT "%s" ALPACA_TAIL

// AG News class names, class index 1..4 of the CSV = [0..3] here.
extern const char *const AGNEWS_CLASSES[4];

// The Alpaca prompt (with-input template when s->input is non-empty); malloc'd.
char *prompt_alpaca(const Sample *s);
// Inverse of prompt_alpaca: splits a wrapped prompt back into instruction and input
// (both malloc'd; input "" for the no-input template). Returns 0, or -1 if prompt does not
// follow either template.
int prompt_alpaca_parse(const char *prompt, char **instruction, char **input);

// SST-2: TSV with a header naming the columns `sentence` and `label` (GLUE layout), or
// JSON/JSONL rows {sentence, label}; label 0/1 (integer or string) or "negative"/"positive".
// Rows: instruction SST2_INSTRUCTION, input = sentence, output = label = "positive"/"negative".
int data_load_sst2(const char *path, Dataset *out, Err *e);

// AG News CSV (no header): "class","title","description", fields quoted with "" escapes,
// class 1..4. Rows: instruction AGNEWS_INSTRUCTION, input = title + " " + description (as the
// Hugging Face ag_news `text` the reference reads), output = label = class name.
int data_load_agnews(const char *path, Dataset *out, Err *e);

// GSM8K JSONL {question, answer}. Rows: instruction = question + GSM8K_QUESTION_SUFFIX,
// input "", output = answer with every "####" replaced by GSM8K_ANSWER_PROMPT, label = the
// number the reference's extractor reads from that output (commas removed).
int data_load_gsm8k(const char *path, Dataset *out, Err *e);
// The GSM8K rows as the Antidote scripts build them (gsm8k/build_dataset.py there has an
// empty QUESTION_PROMPT): GSM8K_QUESTION_SUFFIX removed from the end of every instruction
// that has it. In place; returns the rows changed.
int gsm8k_drop_question_suffix(Dataset *d);

// AdvBench harmful_behaviors.csv (header goal,target): instruction = goal, output = target
// (an affirmative prefix, not a full answer), harmful = 1.
int data_load_advbench(const char *path, Dataset *out, Err *e);
