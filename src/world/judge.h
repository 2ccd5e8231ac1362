// The demo world's exact judge as a pipeline Judge (see world_judge in world/world.h).
#pragma once
#include "eval/judge.h"

Judge *judge_world_new(void);
