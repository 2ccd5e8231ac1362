// LDIFS (docs/methods.md, LDIFS): fine-tuning with a penalty on the distance between the
// model's features and those of the aligned model it started from. A StepMethod for the
// shared training loop.
#pragma once
#include "train/trainer.h"

// A layer's term counts only while it is below this (the reference drops larger ones as
// overflow).
#define LDIFS_LAYER_CAP 0.1

// The cross-entropy plus, for each layer l whose term is below LDIFS_LAYER_CAP,
// rho/2 sum over real tokens ||f_l - f0_l||^2 (f_l: the MLP output of layer l; f0_l: the
// same without the adapter being trained, i.e. the aligned model). Sized for batches of B
// rows of T tokens.
StepMethod *ldifs_method_new(const Model *m, int B, int T, float rho);
// The per-layer terms of the last micro-batch ([L]; a dropped layer's too) (tests, reports).
const double *ldifs_terms(const StepMethod *s);
// One layer's term over N rows of C features (mask: 1 = real token). Returns 1 and writes
// grad = scale * rho * (f - f0) on real rows (0 on padding) when the term is below the cap;
// else 0 and grad untouched. *value receives the term either way.
int ldifs_layer(const float *f, const float *f0, const int *mask, int N, int C, float rho, float scale, float *grad,
                double *value);
