// The demo world's exact judge behind the evaluation's Judge interface (world_judge in
// world/world.h is the rule itself).
#pragma once
#include "eval/judge.h"

Judge *judge_world_new(void);
