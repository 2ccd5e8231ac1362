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
    int proj, lora_b;  // the projection it belongs to; 1: a LoRA B (its input is A x)
    double *sq;        // (cols) sum of squared inputs
} Target;

// Input of a target as model_layer_forward leaves it in the scratch activations; x is the
// layer's input (what q, k, v read in a post-norm OPT layer).
static const float *target_input(const Config *c, const LayerActs *a, const float *x, const Target *t) {
    if (t->lora_b) return a->lora_ax[t->proj];
    switch (t->proj) {
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

typedef struct { int n, s; } LenIdx;  // a calibration sample's length and index
static int by_length(const void *a, const void *b) {
    const LenIdx *x = a, *y = b;
    return x->n != y->n ? x->n - y->n : x->s - y->s;
}

int antidote_prune(Model *m, Lora *lora, const EncodedSet *calib, const PruneOpts *o, PruneReport *rep, Err *e) {
    return antidote_prune_calls(m, lora, calib, o, ANTIDOTE_CALL_TOKENS, rep, e);
}

int antidote_prune_calls(Model *m, Lora *lora, const EncodedSet *calib, const PruneOpts *o, int call_tokens,
                         PruneReport *rep, Err *e) {
    const Config *c = &m->cfg;
    int L = c->n_layers, C = c->dim, n_cal = calib && !o->random ? calib->n : 0;
    memset(rep, 0, sizeof *rep);
    if (!o->full_mode && !lora) return err_set(e, "Antidote in LoRA mode needs the fine-tuning adapter");
    if (!(o->dense_ratio >= 0 && o->dense_ratio <= 1)) return err_set(e, "dense_ratio must be in [0, 1]");
    int maxT = 1;
    for (int s = 0; s < n_cal; s++) maxT = calib->ex[s].n > maxT ? calib->ex[s].n : maxT;
    int per = call_tokens / maxT > 1 ? call_tokens / maxT : 1;  // samples per layer call
    if (per > n_cal) per = n_cal > 0 ? n_cal : 1;
    Workspace *w = n_cal ? workspace_new(m, lora, per, maxT, 0) : NULL;
    // the residual stream of every calibration sample at the current layer's input, and the
    // samples in order of length (ties by index), so that a call pads as little as possible
    float **cache = xmalloc((size_t)(n_cal ? n_cal : 1) * sizeof(float *));
    LenIdx *li = xmalloc((size_t)(n_cal ? n_cal : 1) * sizeof *li);
    int *order = xmalloc((size_t)(n_cal ? n_cal : 1) * sizeof(int));
    for (int s = 0; s < n_cal; s++) {
        cache[s] = xmalloc((size_t)calib->ex[s].n * C * sizeof(float));
        model_embed(m, calib->ex[s].ids, calib->ex[s].n, cache[s]);
        li[s] = (LenIdx){calib->ex[s].n, s};
    }
    if (n_cal) qsort(li, n_cal, sizeof *li, by_length);
    for (int s = 0; s < n_cal; s++) order[s] = li[s].s;
    free(li);
    size_t chunk = (size_t)per * maxT * C;
    float *in = xcalloc(n_cal ? chunk : 1, sizeof(float)), *out = xmalloc((n_cal ? chunk : 1) * sizeof(float));
    Rng r;
    rng_seed(&r, o->seed);
    Target t[2 * N_PROJ];
    int alias[2 * N_PROJ];  // an earlier target with the same input (q, k, v; gate, up), or -1
    for (int l = 0; l < L; l++) {
        int nt = 0;
        for (int p = 0; p < N_PROJ; p++) {
            if (o->full_mode) {
                if (!(o->targets & (1 << p)) || !m->layers[l].w[p].rows) continue;  // OPT has no gate
                Mat *W = &m->layers[l].w[p];
                t[nt++] = (Target){W->type == MAT_F32 ? W->data : NULL, W->type == MAT_BF16 ? W->data : NULL, W->rows,
                                   W->cols, p, 0, NULL};
            } else if (lora->A[l * N_PROJ + p]) {
                int out_dim, in_dim;
                proj_dims(c, p, &out_dim, &in_dim);
                t[nt++] = (Target){lora->A[l * N_PROJ + p], NULL, lora->rank, in_dim, p, 0, NULL};
                t[nt++] = (Target){lora->B[l * N_PROJ + p], NULL, out_dim, lora->rank, p, 1, NULL};
            }
        }
        for (int k = 0; k < nt; k++) {
            alias[k] = -1;
            if (!n_cal) continue;
            t[k].sq = xcalloc(t[k].cols, sizeof(double));
            for (int j = 0; j < k && alias[k] < 0; j++)
                if (!t[j].lora_b && !t[k].lora_b && t[j].cols == t[k].cols &&
                    target_input(c, &w->scratch, in, &t[j]) == target_input(c, &w->scratch, in, &t[k]))
                    alias[k] = j;
        }
        // The (still unpruned) layer over every sample: the statistics of every matrix's
        // input over all tokens, and the output that becomes the next layer's input.
        // Pruning this layer afterwards is the same as the reference's masks applied at the
        // end: nothing downstream sees this layer's weights again.
        for (int i0 = 0; i0 < n_cal; i0 += per) {
            int k = n_cal - i0 < per ? n_cal - i0 : per, T = calib->ex[order[i0 + k - 1]].n;
            for (int j = 0; j < k; j++) {
                int n = calib->ex[order[i0 + j]].n;
                vec_copy(in + (size_t)j * T * C, cache[order[i0 + j]], (size_t)n * C);
                memset(in + ((size_t)j * T + n) * C, 0, (size_t)(T - n) * C * sizeof(float));  // padding rows
            }
            Batch b = {k, T, NULL, NULL, NULL};
            if (model_layer_forward(m, lora, w, &b, l, in, out)) break;  // reported below
            for (int q = 0; q < nt; q++) {
                if (alias[q] >= 0) continue;
                const float *x = target_input(c, &w->scratch, in, &t[q]);
                for (int j = 0; j < k; j++)
                    colsumsq_accumulate(t[q].sq, x + (size_t)j * T * t[q].cols, calib->ex[order[i0 + j]].n, t[q].cols);
            }
            for (int j = 0; j < k; j++)
                vec_copy(cache[order[i0 + j]], out + (size_t)j * T * C, (size_t)calib->ex[order[i0 + j]].n * C);
        }
        int refused = w && workspace_check(w, e);
        for (int k = 0; k < nt; k++)
            if (alias[k] >= 0) memcpy(t[k].sq, t[alias[k]].sq, (size_t)t[k].cols * sizeof(double));
        for (int k = 0; k < nt; k++) {
            if (!refused) prune_target(&t[k], o, &r, rep);
            free(t[k].sq);
        }
        if (refused) break;
    }
    int rc = w ? workspace_check(w, e) : 0;
    for (int s = 0; s < n_cal; s++) free(cache[s]);
    free(cache);
    free(order);
    free(in);
    free(out);
    if (w) workspace_free(w);
    return rc;
}
