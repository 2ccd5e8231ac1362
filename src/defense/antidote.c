// Antidote: Wanda-score pruning on harmful calibration data (docs/methods.md, Antidote).
#include "defense/antidote.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// One prunable matrix of the current layer: its weights and its input statistics.
typedef struct {
    float *W;          // f32 weights, or NULL for a bf16 model matrix (then Wb)
    uint16_t *Wb;
    int rows, cols;
    double *sq;        // (cols) sum of squared inputs
} Target;

// Input of each projection as model_layer_forward leaves it in the scratch activations;
// x is the layer's input (what q, k, v read in a post-norm OPT layer).
static const float *proj_input(const Config *c, const LayerActs *a, const float *x, int p) {
    switch (p) {
    case P_Q: case P_K: case P_V: return c->norm_after ? x : a->xn1;
    case P_O: return a->ao;
    case P_GATE: case P_UP: return a->xn2;
    default: return a->a;
    }
}

static void prune_target(Target *t, const PruneOpts *o, Rng *r, PruneReport *rep) {
    size_t n = (size_t)t->rows * t->cols;
    float *W = t->W;
    if (!W) {  // bf16 model weights: score on the widened values
        W = xmalloc(n * sizeof(float));
        vec_from_bf16(W, t->Wb, n);
    }
    unsigned char *mask = xmalloc(n ? n : 1);
    if (o->random) {
        random_mask(r, t->rows, t->cols, o->dense_ratio, mask);
    } else if (!t->sq) {  // no calibration data: magnitude only
        wanda_mask(W, t->rows, t->cols, NULL, o->dense_ratio, mask);
    } else {
        float *act = xmalloc((size_t)t->cols * sizeof(float));
        vec_sqrt_from_double(act, t->sq, t->cols);  // ||X_:,j||
        wanda_mask(W, t->rows, t->cols, act, o->dense_ratio, mask);
        free(act);
    }
    rep->pruned += mask_zero(t->W, t->Wb, mask, n);
    rep->total += n;
    if (!t->W) free(W);
    free(mask);
}

int antidote_prune(Model *m, Lora *lora, const EncodedSet *calib, const PruneOpts *o, PruneReport *rep, Err *e) {
    const Config *c = &m->cfg;
    int L = c->n_layers, C = c->dim, n_cal = calib && !o->random ? calib->n : 0;
    memset(rep, 0, sizeof *rep);
    if (!o->full_mode && !lora) return err_set(e, "Antidote in LoRA mode needs the fine-tuning adapter");
    if (!(o->dense_ratio >= 0 && o->dense_ratio <= 1)) return err_set(e, "dense_ratio must be in [0, 1]");
    int maxT = 1;
    for (int s = 0; s < n_cal; s++) maxT = calib->ex[s].n > maxT ? calib->ex[s].n : maxT;
    Workspace *w = n_cal ? workspace_new(m, lora, 1, maxT, 0) : NULL;
    // the residual stream of every calibration sample at the current layer's input
    float **cache = xmalloc((size_t)(n_cal ? n_cal : 1) * sizeof(float *));
    for (int s = 0; s < n_cal; s++) {
        cache[s] = xmalloc((size_t)calib->ex[s].n * C * sizeof(float));
        model_embed(m, calib->ex[s].ids, calib->ex[s].n, cache[s]);
    }
    float *out = xmalloc((size_t)maxT * C * sizeof(float));
    Batch b = {1, 1, NULL, NULL, NULL};  // one sample at a time (batch 1, as the reference): no padding
    Rng r;
    rng_seed(&r, o->seed);
    Target t[2 * N_PROJ];
    for (int l = 0; l < L; l++) {
        int nt = 0;
        for (int p = 0; p < N_PROJ; p++) {
            if (o->full_mode) {
                if (!(o->targets & (1 << p)) || !m->layers[l].w[p].rows) continue;  // OPT has no gate
                Mat *W = &m->layers[l].w[p];
                t[nt++] = (Target){W->type == MAT_F32 ? W->data : NULL, W->type == MAT_BF16 ? W->data : NULL, W->rows,
                                   W->cols, n_cal ? xcalloc(W->cols, sizeof(double)) : NULL};
            } else if (lora->A[l * N_PROJ + p]) {
                int out_dim, in_dim;
                proj_dims(c, p, &out_dim, &in_dim);
                t[nt++] = (Target){lora->A[l * N_PROJ + p], NULL, lora->rank, in_dim,
                                   n_cal ? xcalloc(in_dim, sizeof(double)) : NULL};
                t[nt++] = (Target){lora->B[l * N_PROJ + p], NULL, out_dim, lora->rank,
                                   n_cal ? xcalloc(lora->rank, sizeof(double)) : NULL};
            }
        }
        // One forward of the (still unpruned) layer per sample: the statistics of every
        // matrix's input over all tokens, and the output that becomes the next layer's
        // input. Pruning this layer afterwards is the same as the reference's masks applied
        // at the end: nothing downstream sees this layer's weights again.
        for (int s = 0; s < n_cal; s++) {
            b.T = calib->ex[s].n;
            b.tokens = calib->ex[s].ids;
            if (model_layer_forward(m, lora, w, &b, l, cache[s], out)) break;  // reported below
            int k = 0;
            for (int p = 0; p < N_PROJ; p++) {
                if (o->full_mode) {
                    if ((o->targets & (1 << p)) && m->layers[l].w[p].rows) colsumsq_accumulate(t[k++].sq, proj_input(c, &w->scratch, cache[s], p), b.T, m->layers[l].w[p].cols);
                } else if (lora->A[l * N_PROJ + p]) {
                    colsumsq_accumulate(t[k].sq, proj_input(c, &w->scratch, cache[s], p), b.T, t[k].cols);
                    colsumsq_accumulate(t[k + 1].sq, w->scratch.lora_ax[p], b.T, lora->rank);
                    k += 2;
                }
            }
            memcpy(cache[s], out, (size_t)b.T * C * sizeof(float));
        }
        int refused = w && workspace_check(w, e);
        for (int k = 0; k < nt; k++) {
            if (!refused) prune_target(&t[k], o, &r, rep);
            free(t[k].sq);
        }
        if (refused) break;
    }
    int rc = w ? workspace_check(w, e) : 0;
    for (int s = 0; s < n_cal; s++) free(cache[s]);
    free(cache);
    free(out);
    if (w) workspace_free(w);
    return rc;
}
