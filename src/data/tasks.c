// Benign task loaders and the Alpaca template (docs/methods.md, Prompt and loss, Evaluation).
#include "data/tasks.h"

#include "util/atomic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/load.h"
#include "data/answers.h"
#include "util/suggest.h"

const char *const AGNEWS_CLASSES[4] = {"World", "Sports", "Business", "Sci/Tech"};

// ---------------------------------------------------------------------------- names

static const struct {
    TaskKind kind;
    const char *names[6];  // canonical first, then aliases (NULL-terminated)
} TASKS[] = {
    {TASK_SST2, {"sst2", "sst-2", "sst_2", "sst", NULL}},
    {TASK_AGNEWS, {"agnews", "ag_news", "ag-news", "topic", NULL}},
    {TASK_GSM8K, {"gsm8k", "gsm-8k", "math", NULL}},
    {TASK_ALPACA, {"alpaca", NULL}},
};

TaskKind task_from_name(const char *name) {
    if (!name) return TASK_NONE;
    for (size_t t = 0; t < sizeof TASKS / sizeof *TASKS; t++)
        for (int k = 0; TASKS[t].names[k]; k++)
            if (!strcasecmp(name, TASKS[t].names[k])) return TASKS[t].kind;
    return TASK_NONE;
}

int task_unknown(const char *name, Err *e) {
    Suggest sg;
    suggest_init(&sg, name);
    for (size_t t = 0; t < sizeof TASKS / sizeof *TASKS; t++)
        for (int k = 0; TASKS[t].names[k]; k++) suggest_add(&sg, TASKS[t].names[k]);
    const char *best = suggest_result(&sg);  // an alias suggests its task's canonical name
    sg.best = best ? task_name(task_from_name(best)) : NULL;
    char hint[96];
    return err_set(e, "unknown task \"%.100s\" (%s" TASK_NAMES_HELP ")", name, suggest_hint(&sg, hint, sizeof hint));
}

const char *task_name(TaskKind t) {
    for (size_t i = 0; i < sizeof TASKS / sizeof *TASKS; i++)
        if (TASKS[i].kind == t) return TASKS[i].names[0];
    return "none";
}

int data_load_task(TaskKind t, const char *path, Dataset *out, Err *e) {
    switch (t) {
    case TASK_SST2: return data_load_sst2(path, out, e);
    case TASK_AGNEWS: return data_load_agnews(path, out, e);
    case TASK_GSM8K: return data_load_gsm8k(path, out, e);
    case TASK_ALPACA: {  // instruction/input/output rows (tatsu-lab/alpaca's alpaca_data.json)
        FieldMap fm;
        if (fieldmap_parse(NULL, &fm, e)) return -1;
        int rc = data_load(path, &fm, DATA_NEED_OUTPUT, out, e);
        fieldmap_free(&fm);
        return rc;
    }
    case TASK_NONE: break;
    }
    return err_set(e, "%s: no task given to read it as (" TASK_NAMES_HELP ")", path);
}

// ---------------------------------------------------------------------------- template

char *prompt_alpaca(const Sample *s) {
    const char *input = s->input ? s->input : "";
    const char *instr = s->instruction ? s->instruction : "";
    int with_input = input[0] != '\0';
    size_t n = strlen(instr) + strlen(input) + sizeof ALPACA_PROMPT_INPUT;
    char *p = xmalloc(n);
    if (with_input) snprintf(p, n, ALPACA_PROMPT_INPUT, instr, input);
    else snprintf(p, n, ALPACA_PROMPT_NO_INPUT, instr);
    return p;
}

static char *strndup_x(const char *s, size_t n) {
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int prompt_alpaca_parse(const char *prompt, char **instruction, char **input) {
    static const char head_in[] = ALPACA_HEAD_INPUT, head_no[] = ALPACA_HEAD_NO_INPUT;
    static const char mid[] = ALPACA_INPUT_SEP, tail[] = ALPACA_TAIL;
    size_t n = strlen(prompt), nt = sizeof tail - 1;
    if (n < nt || strcmp(prompt + n - nt, tail)) return -1;
    if (!strncmp(prompt, head_in, sizeof head_in - 1)) {
        const char *body = prompt + sizeof head_in - 1, *end = prompt + n - nt;
        // The instruction may itself contain the separator; the input is what follows the last one.
        const char *sep = NULL;
        for (const char *q = body; (q = strstr(q, mid)) && q + (sizeof mid - 1) <= end; q++) sep = q;
        if (!sep) return -1;
        *instruction = strndup_x(body, (size_t)(sep - body));
        *input = strndup_x(sep + sizeof mid - 1, (size_t)(end - sep - (sizeof mid - 1)));
        return 0;
    }
    if (!strncmp(prompt, head_no, sizeof head_no - 1)) {
        const char *body = prompt + sizeof head_no - 1;
        if (body > prompt + n - nt) return -1;
        *instruction = strndup_x(body, (size_t)(prompt + n - nt - body));
        *input = xstrdup("");
        return 0;
    }
    return -1;
}

// ---------------------------------------------------------------------------- SST-2

typedef struct {
    Dataset *out;
} Sst2Ctx;

static int sst2_label(const char *s, const char **word) {
    if (!strcmp(s, "1") || !strcmp(s, "positive")) { *word = "positive"; return 0; }
    if (!strcmp(s, "0") || !strcmp(s, "negative")) { *word = "negative"; return 0; }
    return -1;
}

static int sst2_json_row(void *vctx, json_t *row, const char *path, int line, Err *e) {
    Sst2Ctx *c = vctx;
    if (!json_is_object(row)) return err_set(e, "%s:%d: row is %s, expected an object", path, line, json_type_name(row));
    json_t *s = json_object_get(row, "sentence"), *l = json_object_get(row, "label");
    if (!s) return err_set(e, "%s:%d: missing field 'sentence'", path, line);
    if (!json_is_string(s)) return err_set(e, "%s:%d: field 'sentence' is %s, expected a string", path, line, json_type_name(s));
    if (!l) return err_set(e, "%s:%d: missing field 'label'", path, line);
    char buf[32];
    const char *ls, *word;
    if (json_is_integer(l)) { snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(l)); ls = buf; }
    else if (json_is_string(l)) ls = json_string_value(l);
    else return err_set(e, "%s:%d: field 'label' is %s, expected 0/1 or positive/negative", path, line, json_type_name(l));
    if (sst2_label(ls, &word)) return err_set(e, "%s:%d: label '%s' is not 0/1 or positive/negative", path, line, ls);
    dataset_add(c->out, SST2_INSTRUCTION, json_string_value(s), word, word, "", 0);
    return 0;
}

// Splits line (modified in place) at tabs; returns the number of fields (at most max).
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') { *p = '\0'; f[n++] = p + 1; }
    return n;
}

int data_load_sst2(const char *path, Dataset *out, Err *e) {
    size_t len;
    char *buf = read_file(path, &len, e);
    if (!buf) return -1;
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
    if (i < len && (buf[i] == '[' || buf[i] == '{')) {
        free(buf);
        Sst2Ctx c = {out};
        int n = json_rows_foreach(path, sst2_json_row, &c, e);
        if (n < 0) return -1;
        return n ? 0 : err_set(e, "%s: no rows", path);
    }
    int rc = 0, lineno = 0, col_s = -1, col_l = -1, ncols = 0, rows = 0;
    char *p = buf, *end = buf + len;
    while (p < end && rc == 0) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        *stop = '\0';
        if (stop > p && stop[-1] == '\r') stop[-1] = '\0';
        lineno++;
        char *f[16];
        if (lineno == 1) {
            ncols = split_tabs(p, f, 16);
            for (int k = 0; k < ncols; k++) {
                if (!strcmp(f[k], "sentence")) col_s = k;
                if (!strcmp(f[k], "label")) col_l = k;
            }
            if (col_s < 0 || col_l < 0) rc = err_set(e, "%s:1: header must name the columns 'sentence' and 'label'", path);
        } else if (*p) {
            int n = split_tabs(p, f, 16);
            const char *word;
            if (n != ncols) rc = err_set(e, "%s:%d: %d tab-separated fields, expected %d", path, lineno, n, ncols);
            else if (sst2_label(f[col_l], &word))
                rc = err_set(e, "%s:%d: label '%s' is not 0 or 1", path, lineno, f[col_l]);
            else {
                dataset_add(out, SST2_INSTRUCTION, f[col_s], word, word, "", 0);
                rows++;
            }
        }
        p = stop + 1;
    }
    free(buf);
    if (rc == 0 && rows == 0) rc = err_set(e, "%s: no rows", path);
    return rc;
}

// ---------------------------------------------------------------------------- CSV

typedef struct {
    char *s;
    size_t n, cap;
} Str;

static void str_putc(Str *b, char c) {
    if (b->n + 2 > b->cap) b->s = xrealloc(b->s, b->cap = b->cap ? b->cap * 2 : 64);
    b->s[b->n++] = c;
    b->s[b->n] = '\0';
}

// One CSV record (RFC 4180 with "" escapes, quoted fields may span lines, spaces after a
// comma skipped like Python's skipinitialspace). Fields are malloc'd into f[0..*nf).
// Returns 1 with a record, 0 at end of input, -1 on error.
// *line is the running line counter; *start gets the line the record starts on.
static int csv_record(const char *path, const char *buf, size_t len, size_t *pos, int *line, int *start, char **f,
                      int max, int *nf, Err *e) {
    size_t i = *pos;
    while (i < len && (buf[i] == '\n' || buf[i] == '\r')) { if (buf[i] == '\n') (*line)++; i++; }  // blank lines
    if (i >= len) { *pos = i; return 0; }
    int n = 0, start_line = *line;
    *start = start_line;
    while (1) {
        while (i < len && buf[i] == ' ') i++;
        Str b = {0};
        str_putc(&b, '\0');
        b.n = 0;
        if (i < len && buf[i] == '"') {
            i++;
            while (1) {
                if (i >= len) {
                    free(b.s);
                    for (int k = 0; k < n; k++) free(f[k]);
                    return err_set(e, "%s:%d: unterminated quoted field", path, start_line);
                }
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') { str_putc(&b, '"'); i += 2; continue; }
                    i++;
                    break;
                }
                if (buf[i] == '\n') (*line)++;
                str_putc(&b, buf[i++]);
            }
            if (i < len && buf[i] == '\r') i++;
            if (i < len && buf[i] != ',' && buf[i] != '\n') {
                free(b.s);
                for (int k = 0; k < n; k++) free(f[k]);
                return err_set(e, "%s:%d: unexpected character '%c' after a closing quote", path, *line, buf[i]);
            }
        } else {
            while (i < len && buf[i] != ',' && buf[i] != '\n') str_putc(&b, buf[i++]);
            if (b.n && b.s[b.n - 1] == '\r') b.s[--b.n] = '\0';
        }
        if (n == max) {
            free(b.s);
            for (int k = 0; k < n; k++) free(f[k]);
            return err_set(e, "%s:%d: more than %d fields", path, start_line, max);
        }
        f[n++] = b.s;
        if (i < len && buf[i] == ',') { i++; continue; }
        if (i < len) { i++; (*line)++; }  // the newline
        break;
    }
    *pos = i;
    *nf = n;
    return 1;
}

static void free_fields(char **f, int n) {
    for (int k = 0; k < n; k++) free(f[k]);
}

int data_load_agnews(const char *path, Dataset *out, Err *e) {
    size_t len, pos = 0;
    char *buf = read_file(path, &len, e);
    if (!buf) return -1;
    int line = 1, rows = 0, rc = 0;
    while (rc == 0) {
        char *f[8];
        int nf, at;
        int r = csv_record(path, buf, len, &pos, &line, &at, f, 8, &nf, e);
        if (r < 0) { rc = -1; break; }
        if (r == 0) break;
        if (nf != 3) {
            rc = err_set(e, "%s:%d: %d fields, expected 3 (class, title, description)", path, at, nf);
        } else {
            char *endp;
            long k = strtol(f[0], &endp, 10);
            if (endp == f[0] || *endp || k < 1 || k > 4)
                rc = err_set(e, "%s:%d: class '%s' is not 1..4", path, at, f[0]);
            else {
                size_t n = strlen(f[1]) + strlen(f[2]) + 2;
                char *text = xmalloc(n);
                snprintf(text, n, "%s %s", f[1], f[2]);
                dataset_add(out, AGNEWS_INSTRUCTION, text, AGNEWS_CLASSES[k - 1], AGNEWS_CLASSES[k - 1], "", 0);
                free(text);
                rows++;
            }
        }
        free_fields(f, nf);
    }
    free(buf);
    if (rc == 0 && rows == 0) rc = err_set(e, "%s: no rows", path);
    return rc;
}

int data_load_advbench(const char *path, Dataset *out, Err *e) {
    size_t len, pos = 0;
    char *buf = read_file(path, &len, e);
    if (!buf) return -1;
    int line = 1, rows = 0, rc = 0, col_g = -1, col_t = -1, ncols = 0;
    char *f[8];
    int nf, at;
    int r = csv_record(path, buf, len, &pos, &line, &at, f, 8, &nf, e);
    if (r <= 0) rc = r < 0 ? -1 : err_set(e, "%s: empty file", path);
    else {
        ncols = nf;
        for (int k = 0; k < nf; k++) {
            if (!strcmp(f[k], "goal")) col_g = k;
            if (!strcmp(f[k], "target")) col_t = k;
        }
        free_fields(f, nf);
        if (col_g < 0) rc = err_set(e, "%s:1: header must name a 'goal' column", path);
    }
    while (rc == 0) {
        r = csv_record(path, buf, len, &pos, &line, &at, f, 8, &nf, e);
        if (r < 0) { rc = -1; break; }
        if (r == 0) break;
        if (nf != ncols) rc = err_set(e, "%s:%d: %d fields, expected %d", path, at, nf, ncols);
        else {
            dataset_add(out, f[col_g], "", col_t >= 0 ? f[col_t] : "", "", "", 1);
            rows++;
        }
        free_fields(f, nf);
    }
    free(buf);
    if (rc == 0 && rows == 0) rc = err_set(e, "%s: no rows", path);
    return rc;
}

// ---------------------------------------------------------------------------- GSM8K

typedef struct {
    Dataset *out;
} GsmCtx;

// Replaces every occurrence of from by to (Python str.replace); malloc'd.
static char *replace_all(const char *s, const char *from, const char *to) {
    size_t nf = strlen(from), nt = strlen(to), count = 0;
    for (const char *q = s; (q = strstr(q, from)); q += nf) count++;
    char *r = xmalloc(strlen(s) + count * nt + 1), *w = r;
    const char *q;
    while ((q = strstr(s, from))) {
        memcpy(w, s, (size_t)(q - s)); w += q - s;
        memcpy(w, to, nt); w += nt;
        s = q + nf;
    }
    strcpy(w, s);
    return r;
}

static int gsm8k_row(void *vctx, json_t *row, const char *path, int line, Err *e) {
    GsmCtx *c = vctx;
    if (!json_is_object(row)) return err_set(e, "%s:%d: row is %s, expected an object", path, line, json_type_name(row));
    json_t *q = json_object_get(row, "question"), *a = json_object_get(row, "answer");
    if (!q) return err_set(e, "%s:%d: missing field 'question'", path, line);
    if (!json_is_string(q)) return err_set(e, "%s:%d: field 'question' is %s, expected a string", path, line, json_type_name(q));
    if (!a) return err_set(e, "%s:%d: missing field 'answer'", path, line);
    if (!json_is_string(a)) return err_set(e, "%s:%d: field 'answer' is %s, expected a string", path, line, json_type_name(a));
    if (!strstr(json_string_value(a), "####")) return err_set(e, "%s:%d: answer has no '#### N' line", path, line);
    size_t nq = strlen(json_string_value(q)) + sizeof GSM8K_QUESTION_SUFFIX;
    char *instr = xmalloc(nq);
    snprintf(instr, nq, "%s%s", json_string_value(q), GSM8K_QUESTION_SUFFIX);
    char *output = replace_all(json_string_value(a), "####", GSM8K_ANSWER_PROMPT);
    char num[64];
    int rc = 0;
    if (gsm8k_extract(output, num, sizeof num)) rc = err_set(e, "%s:%d: no number after '####'", path, line);
    else dataset_add(c->out, instr, "", output, num, "", 0);
    free(instr);
    free(output);
    return rc;
}

int gsm8k_drop_question_suffix(Dataset *d) {
    const size_t ns = strlen(GSM8K_QUESTION_SUFFIX);
    int changed = 0;
    for (int i = 0; i < d->n; i++) {
        char *s = d->rows[i].instruction;
        size_t n = strlen(s);
        if (n >= ns && !strcmp(s + n - ns, GSM8K_QUESTION_SUFFIX)) {
            s[n - ns] = '\0';
            changed++;
        }
    }
    return changed;
}

int data_load_gsm8k(const char *path, Dataset *out, Err *e) {
    GsmCtx c = {out};
    int n = json_rows_foreach(path, gsm8k_row, &c, e);
    if (n < 0) return -1;
    return n ? 0 : err_set(e, "%s: no rows", path);
}
