#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/settings.h"
#include "util/suggest.h"

int cli_fail(const char *cmd, const char *msg) {
    fprintf(stderr, "antibody %s: %s\n", cmd, msg);
    return 1;
}

void args_add(Args *a, const Flag *flags) {
    for (; flags->name; flags++)
        if (a->n_flags < MAX_FLAGS) a->flags[a->n_flags++] = *flags;
}

int args_parse(Args *a, int argc, char **argv, const char *usage) {
    a->n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(usage, stdout);
            if (a->help_tail) fputs(a->help_tail, stdout);
            return 1;
        }
        if (strncmp(s, "--", 2) || !s[2]) {
            if (a->n_pos == 8) { fprintf(stderr, "antibody %s: too many arguments\n", a->cmd); return -1; }
            a->pos[a->n_pos++] = s;
            continue;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        Flag *f = NULL;
        for (int k = 0; k < a->n_flags; k++)
            if (setting_name_equal(name, len, a->flags[k].name)) f = &a->flags[k];
        if (!f) {
            char word[80], hint[100] = "";
            snprintf(word, sizeof word, "%.*s", (int)(len < 79 ? len : 79), name);
            Suggest sg;
            suggest_init(&sg, word);
            for (int k = 0; k < a->n_flags; k++) suggest_add(&sg, a->flags[k].name);
            if (suggest_result(&sg)) {
                char fl[64];
                setting_flag_name(suggest_result(&sg), fl, sizeof fl);
                snprintf(hint, sizeof hint, "did you mean --%s? ", fl);
            }
            fprintf(stderr, "antibody %s: unknown option --%.*s (%ssee antibody %s --help)\n", a->cmd, (int)len, name,
                    hint, a->cmd);
            return -1;
        }
        const char *v = eq ? eq + 1 : "1";  // a switch may say --bf16=false
        if (f->takes_value && !eq) {
            if (i + 1 >= argc) { fprintf(stderr, "antibody %s: --%s needs a value\n", a->cmd, f->name); return -1; }
            v = argv[++i];
        }
        f->value = v;
        if (f->repeat) {
            int cap = (int)(sizeof f->values / sizeof f->values[0]);
            if (f->n_values == cap) {
                fprintf(stderr, "antibody %s: --%s given more than %d times\n", a->cmd, f->name, cap);
                return -1;
            }
            f->values[f->n_values++] = v;
        }
    }
    return 0;
}

const Flag *arg_get(const Args *a, const char *name) {
    for (int k = 0; k < a->n_flags; k++)
        if (setting_name_equal(name, strlen(name), a->flags[k].name)) return &a->flags[k];
    return NULL;
}

const char *arg_str(const Args *a, const char *name, const char *def) {
    const Flag *f = arg_get(a, name);
    return f && f->value ? f->value : def;
}

static int bad_number(const Args *a, const char *name, const char *v) {
    fprintf(stderr, "antibody %s: --%s expects a number, got \"%s\"\n", a->cmd, name, v);
    exit(2);  // the command line is the only place that exits
}

int arg_int(const Args *a, const char *name, int def) {
    const char *v = arg_str(a, name, NULL);
    if (!v) return def;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*end || errno || end == v) bad_number(a, name, v);
    return (int)x;
}

double arg_double(const Args *a, const char *name, double def) {
    const char *v = arg_str(a, name, NULL);
    if (!v) return def;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (*end || errno || end == v) bad_number(a, name, v);
    return x;
}

int arg_flag(const Args *a, const char *name) { return arg_str(a, name, NULL) != NULL; }
