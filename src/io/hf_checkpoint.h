// Hugging Face checkpoint folders (config.json + safetensors) <-> Model.
#pragma once
#include "model/model.h"

// Loads config.json + safetensors from dir. weight_type MAT_BF16 keeps the big
// matrices in bf16 (half the memory, widened on use); MAT_F32 keeps f32 (needed for
// full fine-tuning and exact parity with f32 references).
int model_load(Model *m, const char *dir, MatType weight_type, Err *e);
// Writes dir/config.json + model.safetensors (f32 or bf16), sharded above max_shard_bytes.
int model_save(const Model *m, const char *dir, MatType out_type, size_t max_shard_bytes, Err *e);
