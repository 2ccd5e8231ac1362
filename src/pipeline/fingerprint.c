#include "pipeline/fingerprint.h"

#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic.h"
#include "io/dir_replace.h"
#include "io/outputs.h"
#include "io/provenance.h"
#include "util/sha256.h"

json_t *fp_new(const char *stage, json_t *settings, json_t *inputs) {
    json_t *o = json_object();
    json_object_set_new(o, "stage", json_string(stage));
    json_object_set_new(o, "settings", settings ? settings : json_object());
    json_object_set_new(o, "inputs", inputs ? inputs : json_object());
    // canonical text: sorted keys, compact; reals as jansson writes them (shortest round trip)
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, text, strlen(text));
    char hex[65];
    sha256_hex(&s, hex);
    free(text);
    json_object_set_new(o, "fingerprint", json_string(hex));
    return o;
}

const char *fp_hex(const json_t *fp) { return json_string_value(json_object_get(fp, "fingerprint")); }

static void value_text(const json_t *v, char *buf, size_t cap) {
    if (!v) { snprintf(buf, cap, "(none)"); return; }
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(7));
    size_t n = strlen(t);
    if (json_is_string(v) && n == 66) snprintf(buf, cap, "%.12s", t + 1);  // a digest: its head is enough
    else snprintf(buf, cap, "%s", n > 60 ? "(changed)" : t);
    free(t);
}

static void diff_into(const json_t *a, const json_t *b, const char *prefix, char *buf, size_t cap, size_t *len) {
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            char p[256];
            snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", k);
            diff_into(v, json_object_get(b, k), p, buf, cap, len);
        }
        json_object_foreach((json_t *)b, k, v) {
            if (json_object_get(a, k)) continue;
            char p[256];
            snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", k);
            diff_into(NULL, v, p, buf, cap, len);
        }
        return;
    }
    if (a && b && json_equal((json_t *)a, (json_t *)b)) return;
    char va[80], vb[80];
    value_text(a, va, sizeof va);
    value_text(b, vb, sizeof vb);
    if (*len < cap) *len += (size_t)snprintf(buf + *len, cap - *len, "%s%s: %s -> %s", *len ? "; " : "", prefix, va, vb);
    if (*len >= cap) *len = cap;
}

void fp_diff(const json_t *recorded, const json_t *now, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = 0;
    size_t len = 0;
    json_t *a = json_object(), *b = json_object();  // compare what the hash covers
    static const char *const keys[] = {"stage", "settings", "inputs"};
    for (int i = 0; i < 3; i++) {
        json_t *x = json_object_get(recorded, keys[i]), *y = json_object_get(now, keys[i]);
        if (x) json_object_set(a, keys[i], x);
        if (y) json_object_set(b, keys[i], y);
    }
    diff_into(a, b, "", buf, cap, &len);
    json_decref(a);
    json_decref(b);
}

json_t *fp_read(const char *dir) {
    char *path = xasprintf("%s/fingerprint.json", dir);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    free(path);
    if (o && !json_is_string(json_object_get(o, "fingerprint"))) { json_decref(o); return NULL; }
    return o;
}

int fp_write(const json_t *fp, const char *dir, Err *e) {
    json_t *rec = json_copy((json_t *)fp);  // plus what produced it (not hashed)
    json_object_set_new(rec, "provenance", provenance_new());
    char *text = json_dumps(rec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(rec);
    int rc = write_file_in(dir, "fingerprint.json", text, strlen(text), e);
    free(text);
    return rc;
}

// What a stage leaves in its folder (adapters, full models' single files, logs, evaluations).
static const char *const STAGE_FILES[] = {"done.json", "adapter_model.safetensors", "adapter_config.json",
                                          "train_log.jsonl", "loss.svg", "provenance.json", "summary.json",
                                          "harmful.jsonl", "task.jsonl", "model.safetensors", "config.json"};

static int exists(const char *path) { return access(path, F_OK) == 0; }

static int exists_in(const char *dir, const char *name) {
    char *p = xasprintf("%s/%s", dir, name);
    int r = exists(p);
    free(p);
    return r;
}

int fp_claim(const char *dir, const char *ck_dir, const json_t *fp, int discard, char *why, size_t cap, Err *e) {
    if (cap) why[0] = 0;
    if (out_dir_usable(dir, e)) return -1;
    json_t *rec = fp_read(dir);
    int same = rec && fp_hex(rec) && !strcmp(fp_hex(rec), fp_hex(fp));
    int earlier = 0;  // files of some earlier run
    for (size_t i = 0; i < sizeof STAGE_FILES / sizeof *STAGE_FILES && !earlier; i++) earlier = exists_in(dir, STAGE_FILES[i]);
    if (ck_dir && exists(ck_dir)) earlier = 1;
    if (same || (!rec && !earlier)) {
        json_decref(rec);
        return mkdir_p(dir, e) || fp_write(fp, dir, e) ? -1 : 0;
    }
    if (rec) fp_diff(rec, fp, why, cap);
    else snprintf(why, cap, "an earlier run without a fingerprint");
    json_decref(rec);
    if (!discard)
        return err_set(e, "%s holds a run with other settings or inputs (%.700s); give --overwrite to replace it, or "
                       "another --out", dir, why);
    if (out_dir_claim(dir, STAGE_FILES, sizeof STAGE_FILES / sizeof *STAGE_FILES, 1, e)) return -1;
    if (ck_dir) {
        char *old = xasprintf("%s.old", ck_dir), *tmp = xasprintf("%s.tmp", ck_dir);
        int rc = dir_remove_flat(ck_dir, e) || dir_remove_flat(old, e) || dir_remove_flat(tmp, e) ? -1 : 0;
        free(old);
        free(tmp);
        if (rc) return -1;
    }
    return fp_write(fp, dir, e) ? -1 : 1;
}

// ---- the stages' settings and inputs ---------------------------------------------------------

#define SET_I(o, k, v) json_object_set_new(o, k, json_integer((json_int_t)(v)))

static void add_data(json_t *in, const char *key, const Dataset *d) {
    if (!d) return;
    char hex[65];
    dataset_sha256(d, hex);
    json_object_set_new(in, key, json_string(hex));
}

static json_t *inputs(const char *base) {
    json_t *in = json_object();
    json_object_set_new(in, "base_model", json_string(base ? base : ""));
    return in;
}

json_t *fp_align(const char *base, const char *merged, const Dataset *data, const Dataset *pool, const AlignOpts *o) {
    json_t *st = settings_to_json(&ALIGN_SETTINGS, o, 0);  // every resolved setting, from the one table
    json_t *in = inputs(base);
    if (merged && *merged) json_object_set_new(in, "merged_adapters", json_string(merged));
    add_data(in, "data", data);
    if (align_harmful_pool(o)) add_data(in, "harmful_pool", pool);
    return fp_new("align", st, in);
}

json_t *fp_finetune(const char *base, const char *align, const Dataset *data, const Dataset *guide,
                    const FinetuneOpts *o) {
    json_t *st = settings_to_json(&FINETUNE_SETTINGS, o, 0);
    json_t *in = inputs(base);
    json_object_set_new(in, "align_adapter", json_string(align ? align : ""));
    add_data(in, "data", data);
    if (o->defense == FT_LISA) add_data(in, "guide", guide);
    return fp_new("finetune", st, in);
}

json_t *fp_antidote(const char *base, const char *align, const char *ft, const Dataset *realign,
                    const AntidoteOpts *o) {
    json_t *st = settings_to_json(&ANTIDOTE_SETTINGS, o, 0);
    json_t *in = inputs(base);
    json_object_set_new(in, "align_adapter", json_string(align ? align : ""));
    json_object_set_new(in, "ft_adapter", json_string(ft ? ft : ""));
    add_data(in, "realign", realign);
    return fp_new("antidote", st, in);
}

json_t *fp_eval(const char *base, const char *align, const char *ft, const Dataset *harmful, const Dataset *task,
                const Dataset *align_rows, const EvalOpts *o, json_t *extra) {
    json_t *st = extra ? extra : json_object();
    SET_I(st, "hs_max_new", o->hs_max_new); SET_I(st, "fa_max_new", o->fa_max_new);
    SET_I(st, "batch_size", o->batch_size); SET_I(st, "hed_batches", o->hed_batches);
    SET_I(st, "max_len", o->max_len);
    json_t *in = inputs(base);
    json_object_set_new(in, "align_adapter", json_string(align ? align : ""));
    json_object_set_new(in, "ft_adapter", json_string(ft ? ft : ""));
    add_data(in, "harmful_prompts", harmful);
    add_data(in, "task_rows", task);
    add_data(in, "alignment_rows", align_rows);
    return fp_new("eval", st, in);
}
