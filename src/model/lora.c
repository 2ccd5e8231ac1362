// LoRA adapters with PEFT's semantics: y = W x + (alpha / r) * B (A dropout(x)),
// A initialised kaiming-uniform (bound 1/sqrt(in)), B zero, so training starts at W.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/rng.h"

void lora_init(Lora *l, const Model *m, int rank, float alpha, float dropout, int targets, uint64_t seed) {
    const Config *c = &m->cfg;
    memset(l, 0, sizeof *l);
    l->rank = rank;
    l->alpha = alpha;
    l->dropout = dropout;
    l->targets = targets;
    l->n_layers = c->n_layers;
    l->A = xcalloc((size_t)c->n_layers * N_PROJ, sizeof(float *));
    l->B = xcalloc((size_t)c->n_layers * N_PROJ, sizeof(float *));
    size_t n = 0;
    for (int p = 0; p < N_PROJ; p++)
        if (targets & (1 << p)) {
            int out, in;
            proj_dims(c, p, &out, &in);
            n += (size_t)c->n_layers * rank * (in + out);
        }
    l->n_params = n;
    l->params = xcalloc(n ? n : 1, sizeof(float));
    Rng r;
    rng_seed(&r, seed);
    float *cur = l->params;
    for (int layer = 0; layer < c->n_layers; layer++)
        for (int p = 0; p < N_PROJ; p++) {
            if (!(targets & (1 << p))) continue;
            int out, in;
            proj_dims(c, p, &out, &in);
            float bound = 1.0f / sqrtf((float)in);  // kaiming_uniform_(a=sqrt(5)) on (r, in)
            l->A[layer * N_PROJ + p] = cur;
            vec_uniform(cur, (size_t)rank * in, bound, &r);
            cur += (size_t)rank * in;
            l->B[layer * N_PROJ + p] = cur;  // zero
            cur += (size_t)rank * out;
        }
}

void lora_free(Lora *l) {
    free(l->params);
    free(l->A);
    free(l->B);
    memset(l, 0, sizeof *l);
}

void lora_merge(Model *m, const Lora *l) {
    const Config *c = &m->cfg;
    float s = lora_scale(l);
    for (int layer = 0; layer < c->n_layers; layer++)
        for (int p = 0; p < N_PROJ; p++) {
            const float *A = l->A[layer * N_PROJ + p], *B = l->B[layer * N_PROJ + p];
            if (!A) continue;
            Mat *W = &m->layers[layer].w[p];
            if (W->type == MAT_F32) {
                gemm_nn(W->data, B, A, W->rows, W->cols, l->rank, s, 1.0f);
                continue;
            }
            float *delta = xcalloc((size_t)W->rows * W->cols, sizeof(float));
            gemm_nn(delta, B, A, W->rows, W->cols, l->rank, s, 0.0f);
            bf16_add(W->data, delta, (size_t)W->rows * W->cols);
            free(delta);
        }
}
