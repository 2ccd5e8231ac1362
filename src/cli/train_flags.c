#include "cli/train_flags.h"

#include <stdio.h>

#include "model/model.h"

int train_flags_apply(const Args *a, StageDefaults *d) {
    TrainOpts *o = &d->train;
    o->lr = (float)arg_double(a, "lr", o->lr);
    o->epochs = arg_int(a, "epochs", o->epochs);
    o->batch_size = arg_int(a, "batch-size", o->batch_size);
    o->grad_accum = arg_int(a, "grad-accum", o->grad_accum);
    o->max_steps = arg_int(a, "max-steps", (int)o->max_steps);
    o->max_len = arg_int(a, "max-len", o->max_len);
    o->weight_decay = (float)arg_double(a, "weight-decay", o->weight_decay);
    o->warmup_ratio = (float)arg_double(a, "warmup-ratio", o->warmup_ratio);
    o->max_grad_norm = (float)arg_double(a, "max-grad-norm", o->max_grad_norm);
    o->seed = (uint64_t)arg_int(a, "seed", (int)o->seed);
    o->checkpoint_every = arg_int(a, "checkpoint-every", o->checkpoint_every);
    o->checkpoint_minutes = arg_double(a, "checkpoint-minutes", o->checkpoint_minutes);
    const char *s = arg_str(a, "schedule", NULL);
    if (s) {
        int k = schedule_parse(s);
        if (k < 0) { fprintf(stderr, "antibody %s: unknown --schedule %s\n", a->cmd, s); return -1; }
        o->schedule = k;
    }
    d->rank = arg_int(a, "rank", d->rank);
    d->alpha = (float)arg_double(a, "alpha", d->alpha);
    d->dropout = (float)arg_double(a, "dropout", d->dropout);
    const char *t = arg_str(a, "targets", NULL);
    if (t) {
        Err e;
        d->targets = proj_mask_parse(t, &e);
        if (d->targets < 0) { fprintf(stderr, "antibody %s: --targets: %s\n", a->cmd, e.msg); return -1; }
    }
    if (o->epochs < 1 || o->batch_size < 1 || o->grad_accum < 1 || o->max_len < 2 || d->rank < 1 || !(o->lr > 0) ||
        d->dropout < 0 || d->dropout >= 1 || o->checkpoint_every < 0 || !(o->checkpoint_minutes >= 0)) {
        fprintf(stderr, "antibody %s: epochs, batch size, grad accumulation, rank must be >= 1, lr > 0, "
                        "0 <= dropout < 1, max-len >= 2, checkpoint intervals >= 0\n", a->cmd);
        return -1;
    }
    return 0;
}
