// The training flags every training command shares (train, align, finetune), with
// the defaults of the stage that uses them.
#pragma once
#include "cli/args.h"
#include "train/trainer.h"

typedef struct {
    TrainOpts train;
    int rank, targets;
    float alpha, dropout;
} StageDefaults;

#define TRAIN_FLAGS                                                                                    \
    {"lr", 1}, {"epochs", 1}, {"batch-size", 1}, {"grad-accum", 1}, {"max-steps", 1}, {"max-len", 1},  \
    {"weight-decay", 1}, {"warmup-ratio", 1}, {"schedule", 1}, {"max-grad-norm", 1}, {"seed", 1},      \
    {"rank", 1}, {"alpha", 1}, {"dropout", 1}, {"targets", 1}, {"checkpoint-every", 1}, {"checkpoint-minutes", 1}, {"bf16", 0}, {"overwrite", 0}

#define TRAIN_FLAGS_HELP                                                                               \
    "  --lr X  --epochs N  --batch-size N  --grad-accum N  --max-steps N  --max-len N (200)\n"         \
    "  --weight-decay X  --warmup-ratio X  --schedule cosine|linear|constant  --max-grad-norm X\n"      \
    "  --seed N  --rank R (8)  --alpha A  --dropout P (0.1)  --targets q,k,v,o,gate,up,down\n"          \
    "  --checkpoint-every N   save a resumable checkpoint every N steps (an interrupted run\n"         \
    "                         started again with the same --out resumes from it)\n"                   \
    "  --checkpoint-minutes M also save one when M minutes passed since the last (10; 0: off);\n"     \
    "                         Ctrl-C (SIGINT/SIGTERM) saves one and stops\n"                         \
    "  --bf16                 keep base weights in bf16 (half the memory)\n"                         \
    "  --overwrite            replace a run in --out made with other settings or inputs (else\n"       \
    "                         refused, naming what differs; docs/pipeline.md, Fingerprints)\n"

// Applies the flags over d; returns 0 or prints an error and returns -1.
int train_flags_apply(const Args *a, StageDefaults *d);
