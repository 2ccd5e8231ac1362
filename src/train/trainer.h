// The training loop shared by every stage: epochs over shuffled batches, gradient
// accumulation, clipping, AdamW with a warmup schedule, progress, and checkpoints
// that let an interrupted run resume exactly where it stopped.
#pragma once
#include <signal.h>
#include <stdint.h>

#include "model/model.h"
#include "train/batch.h"
#include "train/optim.h"

typedef struct {
    float lr, weight_decay, warmup_ratio, max_grad_norm, beta1, beta2, eps;
    Schedule schedule;
    int batch_size, grad_accum, epochs;
    int64_t max_steps;          // > 0 caps the optimizer steps (else epochs decide)
    int max_len;
    uint64_t seed;
    const char *checkpoint_dir; // NULL: no checkpoints
    int checkpoint_every;       // optimizer steps between checkpoints (0: by time only)
    double checkpoint_minutes;  // also checkpoint when this long has passed since the last one (10; 0: off)
    const volatile sig_atomic_t *interrupt;  // set (by the command line's SIGINT/SIGTERM handler): checkpoint
                                             // after the current step and stop with an error saying so
    const char *log_path;       // per-step JSONL log (docs/pipeline.md, "Training log"), or NULL
    int64_t stop_after;         // > 0: stop after this many steps of the run, checkpointed (time-boxed jobs);
                                // a later call with the same options resumes
    const char *label;          // progress label
    const char *base_model;     // recorded in the adapter config
} TrainOpts;

// Reference defaults of docs/methods.md, SFT (AdamW lr 1e-3, wd 0.1, warmup 0.1, cosine, batch 5).
void train_opts_default(TrainOpts *o);

// A method computes the gradients of one micro-batch (SFT: one forward/backward;
// Vaccine: two; T-Vaccine: two over its active layers).
typedef struct StepMethod StepMethod;
struct StepMethod {
    const char *name;
    // Accumulates d(loss_scale * loss)/d(params) into w->lora_grad; returns the loss.
    float (*grad)(StepMethod *self, const Model *m, const Lora *l, Workspace *w, const Batch *b, float loss_scale,
                  uint64_t seed);
    // Called before each optimizer step; returns the trained projections of each layer
    // ([L] bitmasks of 1 << P_*, as BackwardOpts.layer_trainable; NULL = all).
    const int *(*begin_step)(StepMethod *self, const Model *m, const Lora *l, Workspace *w, int64_t step);
    int max_T;  // longest sequence the method runs besides the training data (T-Vaccine's harmful batch)
    int max_B;  // most rows of a batch the method runs besides the training data (Booster's harmful batch)
    // State the method keeps across steps that a resumed run needs (Lisa's anchor weights):
    // saved in every checkpoint and read back on resume; NULL when there is none.
    float *state;
    size_t n_state;
    void (*release)(StepMethod *self);  // frees what ctx owns (ctx itself is freed after)
    void *ctx;
};

// Plain supervised fine-tuning (one forward and backward per micro-batch).
StepMethod *sft_method_new(void);
void step_method_free(StepMethod *s);

typedef struct {
    int64_t steps;
    double final_loss;          // mean loss of the last 10% of steps
    double first_loss;
    double seconds;
    size_t workspace_bytes;
    float *loss_curve;          // per optimizer step
    int n_curve;
} TrainLog;

// Optimizer steps of a run over rows rows: epochs x ceil(ceil(rows / batch_size) / grad_accum),
// capped by max_steps (the count train_run runs; the dry run plans with it).
int64_t train_total_steps(int64_t rows, const TrainOpts *o);

// Trains lora (initialised or loaded) on data; with lora == NULL trains the model's
// own weights instead (all matrices, embeddings, head and norms: training from scratch;
// the model must hold f32 weights). Returns 0 when finished, 1 when it stopped at
// o->stop_after (checkpointed), -1 on error or when *o->interrupt was set (then the
// checkpoint, if any, holds the state and e says where).
int train_run(Model *m, Lora *lora, const EncodedSet *data, const TrainOpts *o, StepMethod *method, TrainLog *log,
              Err *e);
void train_log_free(TrainLog *l);
