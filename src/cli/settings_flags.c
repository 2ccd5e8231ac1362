// Stage settings from flags: the tables of pipeline/settings.h, walked for the command line.
#include "cli/settings_flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The --help lines of the settings added so far (the command line prints them once).
static char help[16384];

static int is_switch(const Setting *s) { return s->type == SET_BOOL || s->type == SET_BF16; }

void settings_flags_add(Args *a, const SettingTable *t, const void *defaults) {
    json_t *def = settings_to_json(t, defaults, 0);
    size_t k = strlen(help);
    if (!k) k += (size_t)snprintf(help, sizeof help, "Settings (docs/pipeline.md; the config's keys, '-' or '_'):\n");
    for (int i = 0; i < t->n; i++) {
        const Setting *s = &t->items[i];
        if (arg_get(a, s->key)) continue;  // a command flag of the same name wins
        const char *names[4] = {s->key, s->alias[0], s->alias[1], s->alias[2]};
        for (int j = 0; j < 4 && names[j]; j++) {
            Flag f[2] = {{names[j], !is_switch(s)}, {NULL}};
            args_add(a, f);
        }
        char fl[64];
        setting_flag_name(s->key, fl, sizeof fl);
        json_t *v = json_object_get(def, s->key);
        char *dv = NULL;  // the default as a config writes it, strings without quotes
        if (json_is_string(v)) dv = strdup(json_string_value(v));
        else if (v && !json_is_boolean(v)) {
            dv = settings_json_text(v);
            dv[strcspn(dv, "\n")] = '\0';
        }
        char also[160] = "";  // the aliases (Hugging Face's names)
        for (int j = 1, n = 0; j < 4 && names[j]; j++) {
            char al[64];
            setting_flag_name(names[j], al, sizeof al);
            n += snprintf(also + n, sizeof also - (size_t)n, "%s--%s", n ? ", " : "; also ", al);
            if (n >= (int)sizeof also) break;
        }
        if (k < sizeof help)
            k += (size_t)snprintf(help + k, sizeof help - k, "  --%-18s %s%s%s%s%s\n", fl, s->help,
                                  dv ? " (default " : "", dv ? dv : "", dv ? ")" : "", also);
        free(dv);
    }
    json_decref(def);
    a->help_tail = help;
}

int settings_flags_apply(const Args *a, const SettingTable *t, void *obj, Err *e) {
    for (int i = 0; i < t->n; i++) {
        const Setting *s = &t->items[i];
        const char *names[4] = {s->key, s->alias[0], s->alias[1], s->alias[2]};
        char given[64] = "";  // a setting named twice (--lr and --learning-rate) is refused, not resolved by order
        for (int j = 0; j < 4 && names[j]; j++) {
            const char *v = arg_str(a, names[j], NULL);
            if (!v) continue;
            Err se;
            char fl[64];
            setting_flag_name(names[j], fl, sizeof fl);
            if (*given) return err_set(e, "--%s and --%s set the same setting: give one of them", given, fl);
            snprintf(given, sizeof given, "%s", fl);
            if (setting_set_text(s, obj, v, &se)) return err_set(e, "--%s: %.900s", fl, se.msg);
        }
    }
    return 0;
}

int stage_flags(const Args *a, TaskKind *task, Preset *preset, Err *e) {
    const char *t = arg_str(a, "task", NULL), *p = arg_str(a, "preset", NULL);
    *task = t ? task_from_name(t) : TASK_NONE;
    if (t && *task == TASK_NONE) {
        Err te;
        task_unknown(t, &te);  // says which name is close
        return err_set(e, "--task: %s", te.msg);
    }
    int k = p ? preset_parse(p) : PRESET_NONE;
    if (k < 0) return err_set(e, "--preset must be " PRESET_NAMES_HELP " (docs/methods.md, Presets), got \"%s\"", p);
    *preset = (Preset)k;
    return 0;
}

void settings_print(const SettingTable *t, const void *obj) {
    json_t *j = settings_to_json(t, obj, 0);
    char *text = settings_json_text(j);
    fputs(text, stdout);
    free(text);
    json_decref(j);
}

int data_flags_load(const Args *a, const char *name, DataRole role, TaskKind task, int n, Dataset *out, Err *e) {
    const Flag *f = arg_get(a, name);
    // A repeatable flag names several files; a plain one names at most one (its value).
    int n_files = !f ? 0 : f->repeat ? f->n_values : f->value != NULL;
    for (int i = 0; i < n_files; i++) {
        DataSource s;
        data_source_init(&s, role);
        s.path = (char *)(f->repeat ? f->values[i] : f->value);
        s.fields = (char *)arg_str(a, "fields", NULL);
        if ((role == ROLE_TASK_TRAIN || role == ROLE_TASK_TEST) && task != TASK_NONE) {
            s.format = (char *)task_name(task);  // a task's raw file; --fields is for JSON rows
            s.fields = NULL;
        }
        s.n = n;
        if (data_source_load(&s, role, task, out, e)) return -1;
    }
    return 0;
}
