// LoRA adapters in Hugging Face PEFT's on-disk layout: adapter_config.json plus
// adapter_model.safetensors with tensors named
//   base_model.model.model.layers.{i}.{self_attn|mlp}.{q_proj..down_proj}.lora_{A|B}.weight
#pragma once
#include "model/model.h"

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (atomically).
int peft_save(const Lora *l, const Model *m, const char *dir, const char *base_model_path, Err *e);
// Reads an adapter for model m; refuses PEFT options that would change results and
// that antibody does not implement (DoRA, per-module rank/alpha patterns, bias, ...).
int peft_load(Lora *l, const Model *m, const char *dir, Err *e);
