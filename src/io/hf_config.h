// config.json of a Hugging Face checkpoint folder <-> Config (model/config.h).
#pragma once
#include "model/config.h"

// Reads dir/config.json; refuses unsupported architectures and options by name.
int config_load(Config *c, const char *dir, Err *e);
// Writes config.json for c (atomic), e.g. for a merged model or the demo base model.
int config_save(const Config *c, const char *dir, const char *torch_dtype, Err *e);
