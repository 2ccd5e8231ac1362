// Judge selection by name (command line, pipeline configs):
//   "world"                       the demo world's exact judge
//   "keyword"                     the refusal-keyword fallback (crude; see judge_keyword.h)
//   "classifier:DIR[:THRESHOLD]"  a beaver-dam-7b style classifier in DIR (threshold 0.5)
#pragma once
#include "eval/judge.h"

Judge *judge_from_spec(const char *spec, Err *e);
