// Fingerprints (docs/pipeline.md, "Fingerprints"): a stage's output records the SHA-256 of
// its fully resolved settings and of the content of its inputs (data rows, base model,
// adapters or upstream stages it starts from). A stage is skipped or resumed only when the
// fingerprint it would have now equals the recorded one; otherwise the pipeline re-runs it
// (and so everything downstream, whose inputs then change) and says why, and a single
// command refuses the folder, naming what differs, unless --overwrite.
#pragma once
#include <jansson.h>

#include "data/dataset.h"
#include "eval/evaluate.h"
#include "pipeline/stages.h"
#include "util/err.h"

// Input hashes come from folder_sha256 (io/provenance.h) and dataset_sha256 (data/dataset.h).

// {"stage": stage, "settings": settings, "inputs": inputs, "fingerprint": sha256 of the
// first three as canonical JSON}. Takes the references to settings and inputs.
json_t *fp_new(const char *stage, json_t *settings, json_t *inputs);
const char *fp_hex(const json_t *fp);

// What differs between a recorded fingerprint and the current one, as "settings.lr: 1e-05
// -> 0.0001; inputs.data: 3f2a9c0b12de -> 77c0e1a9b4f2" (at most cap bytes); "" when equal.
void fp_diff(const json_t *recorded, const json_t *now, char *buf, size_t cap);

// Claims dir (and its training checkpoint folder ck_dir, may be NULL) for the run with
// fingerprint fp, before any work:
//   0  nothing recorded yet, or the recorded fingerprint equals fp: an unfinished stage
//      resumes from its checkpoint, a finished one may be skipped;
//   1  an earlier run with other settings or inputs (or with no fingerprint) left files
//      here; with discard its outputs (done.json, adapter, logs, evaluation files) and its
//      checkpoint are removed and why says what differs;
//  -1  the same without discard: refused, e says what differs and how to proceed.
// fp is written to dir on 0 and 1.
int fp_claim(const char *dir, const char *ck_dir, const json_t *fp, int discard, char *why, size_t cap, Err *e);

// The stages' fingerprints. base: folder_sha256 of the base model; upstream: the
// fingerprints (or content hashes) of the adapters a stage starts from, "" for none; data
// sets NULL when unused. The settings are every field of the stage's options that can
// change its result (not paths, labels or progress).
// merged: the hash of adapters merged into the base first ("" for none; `antibody train --adapter`).
json_t *fp_align(const char *base, const char *merged, const Dataset *data, const Dataset *pool, const AlignOpts *o);
json_t *fp_finetune(const char *base, const char *align, const Dataset *data, const Dataset *guide,
                    const FinetuneOpts *o);
json_t *fp_antidote(const char *base, const char *align, const char *ft, const Dataset *realign,
                    const AntidoteOpts *o);
// extra: the evaluation's other settings (judge, sample counts) as a JSON object (taken).
json_t *fp_eval(const char *base, const char *align, const char *ft, const Dataset *harmful, const Dataset *task,
                const Dataset *align_rows, const EvalOpts *o, json_t *extra);

// The fingerprint recorded in dir (dir/fingerprint.json), or NULL when there is none.
json_t *fp_read(const char *dir);
// Writes fp with a "provenance" object (io/provenance.h: version, commit, BLAS, threads,
// date; not part of the hash): every stage folder, adapters included, records both.
int fp_write(const json_t *fp, const char *dir, Err *e);
