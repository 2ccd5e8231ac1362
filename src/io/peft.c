#include "io/peft.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/atomic.h"
#include "io/safetensors.h"

static void tensor_name(char *buf, size_t cap, const Config *c, int layer, int p, char ab) {
    char mod[128];
    proj_module(mod, sizeof mod, c, layer, p);
    snprintf(buf, cap, "base_model.model.%s.lora_%c.weight", mod, ab);
}

int peft_save(const Lora *l, const Model *m, const char *dir, const char *base_model_path, Err *e) {
    if (mkdir_p(dir, e)) return -1;
    json_t *c = json_object();
    json_object_set_new(c, "peft_type", json_string("LORA"));
    json_object_set_new(c, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(c, "base_model_name_or_path", base_model_path ? json_string(base_model_path) : json_null());
    json_object_set_new(c, "r", json_integer(l->rank));
    json_object_set_new(c, "lora_alpha", json_real(l->alpha));
    json_object_set_new(c, "lora_dropout", json_real(l->dropout));
    json_t *t = json_array();
    for (int p = 0; p < N_PROJ; p++)
        if (l->targets & (1 << p)) json_array_append_new(t, json_string(proj_hf_name(&m->cfg, p)));
    json_object_set_new(c, "target_modules", t);
    json_object_set_new(c, "bias", json_string("none"));
    json_object_set_new(c, "fan_in_fan_out", json_false());
    json_object_set_new(c, "inference_mode", json_true());
    json_object_set_new(c, "init_lora_weights", json_true());
    json_object_set_new(c, "use_rslora", json_boolean(l->rslora));
    json_object_set_new(c, "use_dora", json_false());
    json_object_set_new(c, "modules_to_save", json_null());
    json_object_set_new(c, "layers_to_transform", json_null());
    json_object_set_new(c, "rank_pattern", json_object());
    json_object_set_new(c, "alpha_pattern", json_object());
    char *text = json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(c);
    int rc = write_file_in(dir, "adapter_config.json", text, strlen(text), e);
    free(text);
    if (rc) return -1;

    int cap = 2 * l->n_layers * N_PROJ, n = 0;
    StWrite *w = xcalloc(cap, sizeof(StWrite));
    char (*names)[160] = xcalloc(cap, 160);
    for (int layer = 0; layer < l->n_layers; layer++)
        for (int p = 0; p < N_PROJ; p++) {
            if (!l->A[layer * N_PROJ + p]) continue;
            int out, in;
            proj_dims(&m->cfg, p, &out, &in);
            tensor_name(names[n], 160, &m->cfg, layer, p, 'A');
            w[n] = (StWrite){names[n], ST_F32, 2, {l->rank, in}, l->A[layer * N_PROJ + p]};
            n++;
            tensor_name(names[n], 160, &m->cfg, layer, p, 'B');
            w[n] = (StWrite){names[n], ST_F32, 2, {out, l->rank}, l->B[layer * N_PROJ + p]};
            n++;
        }
    char *path = xasprintf("%s/adapter_model.safetensors", dir);
    const char *meta[] = {"format", "pt"};
    rc = st_write(path, w, n, meta, 1, e);
    free(path);
    free(w);
    free(names);
    return rc;
}

static int refuse_nonempty(json_t *c, const char *key, const char *path, Err *e) {
    json_t *v = json_object_get(c, key);
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if ((json_is_object(v) && json_object_size(v) == 0) || (json_is_array(v) && json_array_size(v) == 0)) return 0;
    if (json_is_string(v) && (!strcmp(json_string_value(v), "none") || !*json_string_value(v))) return 0;
    return err_set(e, "%s: PEFT option \"%s\" is not supported", path, key);
}

// path: dir/adapter_config.json, st_path: dir/adapter_model.safetensors
static int load_adapter(Lora *l, const Model *m, const char *path, const char *st_path, Err *e) {
    json_t *c = read_json(path, 0, e);
    if (!c) {
        if (access(path, F_OK) != 0) return err_set(e, "%s: cannot open (not a PEFT adapter folder?)", path);
        return -1;
    }
    int rc = -1, targets = 0;
    json_t *pt = json_object_get(c, "peft_type");
    json_t *r = json_object_get(c, "r"), *alpha = json_object_get(c, "lora_alpha"), *tm = json_object_get(c, "target_modules");
    if (!json_is_object(c)) { err_set(e, "%s: not a JSON object", path); goto done; }
    if (!json_is_string(pt) || strcmp(json_string_value(pt), "LORA")) {
        err_set(e, "%s: peft_type must be \"LORA\"", path);
        goto done;
    }
    if (!json_is_integer(r) || json_integer_value(r) <= 0 || json_integer_value(r) > 4096) {
        err_set(e, "%s: \"r\" must be a positive integer", path);
        goto done;
    }
    if (!json_is_number(alpha)) { err_set(e, "%s: \"lora_alpha\" must be a number", path); goto done; }
    // A scale (alpha / r) this large turns any update into Inf: refuse it rather than run
    // to empty output (docs/reliability.md).
    double a = json_number_value(alpha), scale = fabs(a) / (double)json_integer_value(r);
    if (!isfinite(a) || scale > 1e4) {
        err_set(e, "%s: \"lora_alpha\" %g gives a LoRA scale alpha/r of %g; at most 10000 is accepted", path, a, scale);
        goto done;
    }
    json_t *drop = json_object_get(c, "lora_dropout");
    if (drop && !json_is_null(drop) && (!json_is_number(drop) || !(json_number_value(drop) >= 0) || json_number_value(drop) >= 1)) {
        err_set(e, "%s: \"lora_dropout\" must be a number in [0, 1)", path);
        goto done;
    }
    if (refuse_nonempty(c, "use_dora", path, e) || refuse_nonempty(c, "rank_pattern", path, e) ||
        refuse_nonempty(c, "alpha_pattern", path, e) || refuse_nonempty(c, "modules_to_save", path, e) ||
        refuse_nonempty(c, "layers_to_transform", path, e) || refuse_nonempty(c, "fan_in_fan_out", path, e) ||
        refuse_nonempty(c, "bias", path, e))
        goto done;
    if (!json_is_array(tm)) { err_set(e, "%s: \"target_modules\" must be a list of module names", path); goto done; }
    size_t i;
    json_t *x;
    json_array_foreach(tm, i, x) {
        int p = json_is_string(x) ? proj_from_name(json_string_value(x)) : -1;
        if (p < 0) {
            err_set(e, "%s: target module %s is not one of q_proj..down_proj (OPT: q_proj, k_proj, v_proj, out_proj, fc1, fc2)", path,
                    json_is_string(x) ? json_string_value(x) : "(not a string)");
            goto done;
        }
        targets |= 1 << p;
    }
    if (targets & ~proj_mask_of(&m->cfg)) {
        err_set(e, "%s: target_modules name a projection the %s model does not have", path, m->cfg.model_type);
        goto done;
    }
    json_t *dr = json_object_get(c, "lora_dropout");
    lora_init(l, m, (int)json_integer_value(r), (float)json_number_value(alpha),
              json_is_number(dr) ? (float)json_number_value(dr) : 0.0f, targets, 0);
    l->rslora = json_is_true(json_object_get(c, "use_rslora"));
    StSet *s = st_open(st_path, e);
    if (!s) { lora_free(l); goto done; }
    char name[160];
    rc = 0;
    for (int layer = 0; layer < l->n_layers && !rc; layer++)
        for (int p = 0; p < N_PROJ && !rc; p++) {
            if (!(targets & (1 << p))) continue;
            int out, in;
            proj_dims(&m->cfg, p, &out, &in);
            for (int k = 0; k < 2 && !rc; k++) {
                tensor_name(name, sizeof name, &m->cfg, layer, p, k ? 'B' : 'A');
                const StTensor *t = st_find(s, name);
                if (!t) {  // PEFT keeps the adapter name in some versions' files
                    char alt[200];
                    snprintf(alt, sizeof alt, "%.*s.default.weight", (int)(strlen(name) - 7), name);
                    t = st_find(s, alt);
                }
                if (!t) { rc = err_set(e, "%s: missing tensor %s", st_path, name); break; }
                int64_t shape[2] = {k ? out : l->rank, k ? l->rank : in};
                rc = st_read_f32_finite(t, k ? l->B[layer * N_PROJ + p] : l->A[layer * N_PROJ + p], 2, shape, e);
            }
        }
    st_close(s);
    if (rc) lora_free(l);
done:
    json_decref(c);
    return rc;
}

int peft_load(Lora *l, const Model *m, const char *dir, Err *e) {
    char *path = xasprintf("%s/adapter_config.json", dir), *st_path = xasprintf("%s/adapter_model.safetensors", dir);
    int rc = load_adapter(l, m, path, st_path, e);
    free(path);
    free(st_path);
    return rc;
}
