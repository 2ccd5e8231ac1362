// Fine-tune accuracy rules (docs/methods.md, Evaluation), as the reference eval scripts of
// git-disl/Vaccine ({sst2,ag_news,gsm8k}/pred_eval.py) score an answer.
#pragma once
#include <stddef.h>

#include "data/tasks.h"

// 1 when answer is correct for label, 0 when not, -1 when the rule cannot apply
// (TASK_NONE, or a label that is not one of the task's classes).
//   SST-2:  label "positive"/"negative" (or "1"/"0"); correct when the answer contains
//           "positive" or "Positive" (resp. "negative"/"Negative") as a substring. An answer
//           containing both words counts as correct for either label, as in the reference.
//   AG News: label World/Sports/Business/Sci/Tech; correct when the answer contains the name,
//           or world/sports/business/sci (a substring: "science" contains "sci").
//   GSM8K:  label is a number (or any text, read with the same extractor); correct when
//           gsm8k_extract of the answer and of the label give the same double.
int fa_correct(TaskKind t, const char *answer, const char *label);

// The reference's extract_answer_number: commas removed; numbers match -?\d+\.?\d* (ASCII
// digits); if "The final answer is: " occurs, the first number after its first occurrence
// (up to a second occurrence), else / if there is none, the last number of the whole text.
// Writes the number as matched (e.g. "-3", "18.", "0.5") to num; returns 0, or -1 when the
// text has no number (num = "").
int gsm8k_extract(const char *answer, char *num, size_t cap);
