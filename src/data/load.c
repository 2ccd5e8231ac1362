// JSON / JSONL instruction data (docs/methods.md, Prompt and loss, Harmful fine-tuning; docs/data.md, Train/eval overlap); see load.h for the layouts.
#include "data/load.h"

#include "util/atomic.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------- FieldMap

int fieldmap_parse(const char *spec, FieldMap *m, Err *e) {
    memset(m, 0, sizeof *m);
    if (!spec || !*spec) return 0;
    m->buf_ = xstrdup(spec);
    const char **slot_of[6] = {&m->instruction, &m->input, &m->output, &m->label, &m->category, &m->is_safe};
    static const char *const keys[6] = {"instruction", "input", "output", "label", "category", "is_safe"};
    char *p = m->buf_;
    while (1) {
        char *end = strchr(p, ',');
        if (end) *end = '\0';
        char *eq = strchr(p, '=');
        if (!eq) {
            err_set(e, "--fields: '%s' is not key=field", p);
            goto fail;
        }
        *eq = '\0';
        int k = -1;
        for (int i = 0; i < 6; i++)
            if (!strcmp(p, keys[i])) k = i;
        if (k < 0) {
            err_set(e, "--fields: unknown key '%s' (expected instruction, input, output, label, category or is_safe)", p);
            goto fail;
        }
        if (*slot_of[k]) {
            err_set(e, "--fields: key '%s' given twice", p);
            goto fail;
        }
        *slot_of[k] = eq + 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
fail:
    fieldmap_free(m);
    return -1;
}

void fieldmap_free(FieldMap *m) {
    free(m->buf_);
    memset(m, 0, sizeof *m);
}


const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

// Line starts of a buffer, for offset -> line:column.
typedef struct {
    size_t *start;
    int n;
} LineIndex;

static void lines_build(LineIndex *li, const char *buf, size_t len) {
    int cap = 1024;
    li->start = xmalloc((size_t)cap * sizeof(size_t));
    li->n = 0;
    li->start[li->n++] = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n') {
            if (li->n == cap) li->start = xrealloc(li->start, (size_t)(cap *= 2) * sizeof(size_t));
            li->start[li->n++] = i + 1;
        }
}

// 1-based line of byte offset off (binary search); *col gets the 1-based byte column.
static int lines_find(const LineIndex *li, size_t off, int *col) {
    int lo = 0, hi = li->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (li->start[mid] <= off) lo = mid; else hi = mid - 1;
    }
    if (col) *col = (int)(off - li->start[lo]) + 1;
    return lo + 1;
}

static size_t skip_ws(const char *buf, size_t len, size_t i) {
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r')) i++;
    return i;
}

// Start offsets of the elements of the top-level array that begins at buf[0] == '['
// (a bracket/string-aware scan; jansson does not report element positions).
static int array_element_starts(const char *buf, size_t len, size_t **out) {
    int cap = 256, n = 0, depth = 0, expect = 0, in_str = 0;
    size_t *st = xmalloc((size_t)cap * sizeof(size_t));
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (expect && !isspace((unsigned char)c) && c != ']') {
            if (n == cap) st = xrealloc(st, (size_t)(cap *= 2) * sizeof(size_t));
            st[n++] = i;
            expect = 0;
        }
        if (c == '"') in_str = 1;
        else if (c == '[' || c == '{') { if (++depth == 1) expect = 1; }
        else if (c == ']' || c == '}') { if (--depth == 0) break; }
        else if (c == ',' && depth == 1) expect = 1;
    }
    *out = st;
    return n;
}

static int json_error_at(Err *e, const char *path, const LineIndex *li, size_t base, const json_error_t *je) {
    // jansson's position counts the bytes read including the offending one.
    size_t off = base + (je->position > 0 ? (size_t)je->position - 1 : 0);
    int col, line = lines_find(li, off, &col);
    return err_set(e, "%s:%d:%d: malformed JSON: %s", path, line, col, je->text);
}

// JSONL when the first value is an object that ends its own line.
static int looks_like_jsonl(const char *buf, size_t len, size_t first) {
    if (buf[first] != '{') return 0;
    const char *nl = memchr(buf + first, '\n', len - first);
    size_t end = nl ? (size_t)(nl - buf) : len;
    json_error_t je;
    json_t *v = json_loadb(buf + first, end - first, 0, &je);
    if (!v) return 0;
    json_decref(v);
    return 1;
}

int json_rows_foreach(const char *path, JsonRowFn fn, void *ctx, Err *e) {
    size_t len;
    char *buf = read_file(path, &len, e);
    if (!buf) return -1;
    LineIndex li;
    lines_build(&li, buf, len);
    int rows = 0, rc = 0;
    size_t pos = 0;
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) pos = 3;  // UTF-8 byte-order mark
    pos = skip_ws(buf, len, pos);
    if (pos < len && looks_like_jsonl(buf, len, pos)) {
        for (int l = 0; l < li.n && rc == 0; l++) {
            size_t a = li.start[l], b = l + 1 < li.n ? li.start[l + 1] : len;
            size_t s = skip_ws(buf, b, a);
            if (s == b) continue;  // blank line
            json_error_t je;
            json_t *v = json_loadb(buf + s, b - s, 0, &je);
            if (!v) { rc = json_error_at(e, path, &li, s, &je); break; }
            rc = fn(ctx, v, path, l + 1, e);
            json_decref(v);
            rows++;
        }
    } else {
        while (rc == 0) {
            pos = skip_ws(buf, len, pos);
            if (pos >= len) break;
            json_error_t je;
            json_t *v = json_loadb(buf + pos, len - pos, JSON_DISABLE_EOF_CHECK, &je);
            if (!v) { rc = json_error_at(e, path, &li, pos, &je); break; }
            size_t used = (size_t)je.position;
            if (json_is_array(v)) {
                size_t *st;
                int n = array_element_starts(buf + pos, used, &st);
                size_t count = json_array_size(v);
                for (size_t i = 0; i < count && rc == 0; i++) {
                    size_t off = pos + ((int)i < n ? st[i] : 0);
                    rc = fn(ctx, json_array_get(v, i), path, lines_find(&li, off, NULL), e);
                    rows++;
                }
                free(st);
            } else {
                rc = fn(ctx, v, path, lines_find(&li, pos, NULL), e);
                rows++;
            }
            json_decref(v);
            pos += used;
        }
    }
    free(li.start);
    free(buf);
    return rc ? -1 : rows;
}

// ---------------------------------------------------------------------------- rows

typedef struct {
    const FieldMap *m;
    unsigned flags;
    Dataset *out;
} LoadCtx;

// Looks a (possibly dotted) field up: exact key first, then a walk through nested objects.
static json_t *get_path(json_t *obj, const char *name) {
    json_t *v = json_object_get(obj, name);
    if (v || !strchr(name, '.')) return v;
    char part[256];
    const char *p = name;
    while (obj && json_is_object(obj)) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof part) return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        obj = json_object_get(obj, part);
        if (!dot) return obj;
        p = dot + 1;
    }
    return NULL;
}

// Resolves one field: mapped name if given ("" = disabled), else the first candidate present.
static json_t *find_field(json_t *row, const char *mapped, const char *const *cands, const char **used) {
    *used = mapped;
    if (mapped) return *mapped ? get_path(row, mapped) : NULL;
    for (int i = 0; cands[i]; i++) {
        json_t *v = json_object_get(row, cands[i]);
        if (v) { *used = cands[i]; return v; }
    }
    return NULL;
}

static int want_string(json_t *v, const char *name, const char *path, int line, const char **s, Err *e) {
    if (!json_is_string(v))
        return err_set(e, "%s:%d: field '%s' is %s, expected a string", path, line, name, json_type_name(v));
    *s = json_string_value(v);
    return 0;
}

// Appends ',' (unless first) and part to the growing string *s.
static void join_append(char **s, size_t *n, size_t *cap, const char *part) {
    size_t k = strlen(part);
    while (*n + k + 2 > *cap) *s = xrealloc(*s, *cap *= 2);
    if (*n) (*s)[(*n)++] = ',';
    memcpy(*s + *n, part, k);
    *n += k;
    (*s)[*n] = '\0';
}

// Category: string as is; array of strings or object of booleans -> names joined by ','.
static int category_text(json_t *v, const char *name, const char *path, int line, char **out, Err *e) {
    if (json_is_null(v)) { *out = xstrdup(""); return 0; }
    if (json_is_string(v)) { *out = xstrdup(json_string_value(v)); return 0; }
    if (!json_is_object(v) && !json_is_array(v))
        return err_set(e, "%s:%d: field '%s' is %s, expected a string, an array or an object", path, line, name,
                       json_type_name(v));
    size_t cap = 64, n = 0;
    char *s = xmalloc(cap);
    s[0] = '\0';
    const char *key;
    json_t *val;
    size_t idx;
    if (json_is_object(v)) {
        json_object_foreach(v, key, val) {
            if (!json_is_boolean(val)) {
                free(s);
                return err_set(e, "%s:%d: field '%s' entry '%s' is %s, expected a boolean", path, line, name, key,
                               json_type_name(val));
            }
            if (json_is_true(val)) join_append(&s, &n, &cap, key);
        }
    } else {
        json_array_foreach(v, idx, val) {
            if (!json_is_string(val)) {
                free(s);
                return err_set(e, "%s:%d: field '%s' item %zu is %s, expected a string", path, line, name, idx,
                               json_type_name(val));
            }
            join_append(&s, &n, &cap, json_string_value(val));
        }
    }
    *out = s;
    return 0;
}

// DecodingTrust rows (T-Vaccine's data/decoding_trust/training_dataset.jsonl): "prompt" and
// "continuation" are objects with "text", "type" is toxic / toxic_test / non_toxic. Built as
// the T-Vaccine scripts build them: instruction DECODING_TRUST_INSTRUCTION, input = the
// prompt text, output = the continuation text; "toxic" rows are the harmful rows (harmful
// fine-tuning data and HS prompts), "non_toxic" rows the safe ones; "toxic_test" rows are
// used by no reference script and skipped. With DATA_ALL_HARMFUL only the toxic rows load.
// Returns 1 when row is one (added or skipped), 0 when it is not, -1 on error.
static int load_decoding_trust(LoadCtx *c, json_t *row, const char *path, int line, Err *e) {
    json_t *p = json_object_get(row, "prompt"), *k = json_object_get(row, "continuation");
    json_t *t = json_object_get(row, "type");
    if (!json_is_object(p) || !json_is_object(k) || !json_is_string(t)) return 0;
    json_t *pt = json_object_get(p, "text"), *kt = json_object_get(k, "text");
    if (!json_is_string(pt) || !json_is_string(kt))
        return err_set(e, "%s:%d: DecodingTrust row without prompt.text / continuation.text strings", path, line);
    const char *type = json_string_value(t);
    int harmful = !strcmp(type, "toxic");
    if (!harmful && (strcmp(type, "non_toxic") || (c->flags & DATA_ALL_HARMFUL))) return 1;  // skipped
    dataset_add(c->out, DECODING_TRUST_INSTRUCTION, json_string_value(pt), json_string_value(kt), "", type, harmful);
    return 1;
}

// One message of a conversation: its role (0 system, 1 user, 2 assistant) and content.
static int chat_message(json_t *msg, const char *key, size_t i, const char *path, int line, const char **content, Err *e) {
    static const char *const roles[] = {"system", "user", "assistant"};
    json_t *r = json_object_get(msg, "role"), *t = json_object_get(msg, "content");
    if (!json_is_object(msg) || !json_is_string(r))
        return err_set(e, "%s:%d: %s[%zu]: expected an object {\"role\", \"content\"}", path, line, key, i);
    if (!json_is_string(t))
        return err_set(e, "%s:%d: %s[%zu]: content is %s, expected a string", path, line, key, i,
                       t ? json_type_name(t) : "missing");
    *content = json_string_value(t);
    for (int k = 0; k < 3; k++)
        if (!strcmp(json_string_value(r), roles[k])) return k;
    return err_set(e, "%s:%d: %s[%zu]: unknown role \"%.40s\" (system, user, assistant)", path, line, key, i,
                   json_string_value(r));
}

// TRL's conversational rows (docs/data.md, "Chat rows"): "messages", or "prompt" and
// "completion" as message lists. One turn is one instruction row: the user message is the
// instruction (what the judge, the overlap check and the harmful score read as the request),
// a system message before it the input (the template's context), the assistant message after
// it the output (the only tokens with loss). Several turns are refused, not flattened.
// Returns 1 when row is such a row (the three fields set), 0 when not, -1 on error.
static int chat_row(json_t *row, const char *path, int line, const char **instruction, const char **input,
                    const char **output, Err *e) {
    json_t *lists[2] = {json_object_get(row, "messages"), NULL};
    const char *keys[2] = {"messages", "completion"};
    if (!lists[0]) {
        json_t *p = json_object_get(row, "prompt");
        if (!json_is_array(p)) return 0;
        lists[0] = p;
        keys[0] = "prompt";
        lists[1] = json_object_get(row, "completion");
        if (lists[1] && !json_is_array(lists[1]))
            return err_set(e, "%s:%d: field 'completion' is %s, expected a list of messages (the prompt is one)", path,
                           line, json_type_name(lists[1]));
    }
    if (!json_is_array(lists[0]))
        return err_set(e, "%s:%d: field 'messages' is %s, expected a list of {\"role\", \"content\"}", path, line,
                       json_type_name(lists[0]));
    int seen[3] = {0}, last = -1;
    for (int l = 0; l < 2 && lists[l]; l++)
        for (size_t i = 0; i < json_array_size(lists[l]); i++) {
            const char *text = "";
            int r = chat_message(json_array_get(lists[l], i), keys[l], i, path, line, &text, e);
            if (r < 0) return -1;
            if (seen[r] || r <= last)
                return err_set(e, "%s:%d: %s[%zu]: a %s message here: antibody trains one turn (an optional system "
                               "message, one user message, then the assistant's answer)", path, line, keys[l], i,
                               r == 0 ? "system" : r == 1 ? "user" : "assistant");
            seen[r] = 1;
            last = r;
            *(r == 0 ? input : r == 1 ? instruction : output) = text;
        }
    if (!seen[1]) return err_set(e, "%s:%d: %s: no user message", path, line, keys[0]);
    return 1;
}

static int load_row(void *vctx, json_t *row, const char *path, int line, Err *e) {
    LoadCtx *c = vctx;
    const FieldMap *m = c->m;
    if (json_is_object(row) && !m->instruction && !m->input && !m->output) {
        int r = load_decoding_trust(c, row, path, line, e);
        if (r) return r < 0 ? -1 : 0;
    }
    static const char *const c_instr[] = {"instruction", "prompt", "forbidden_prompt", "question", NULL};
    static const char *const c_input[] = {"input", NULL};
    static const char *const c_output[] = {"output", "response", "rejected", "answer", "completion", NULL};
    static const char *const c_label[] = {"label", NULL};
    static const char *const c_cat[] = {"category", NULL};
    static const char *const c_safe[] = {"is_safe", NULL};
    if (!json_is_object(row)) return err_set(e, "%s:%d: row is %s, expected an object", path, line, json_type_name(row));

    const char *name, *instruction = "", *input = "", *output = "", *label = "";
    char labelbuf[32];
    json_t *v;
    const char *answer = NULL;
    int chat = m->instruction || m->input || m->output ? 0 : chat_row(row, path, line, &instruction, &input, &answer, e);
    if (chat < 0) return -1;
    if (chat) {
        if (!answer && (c->flags & DATA_NEED_OUTPUT))
            return err_set(e, "%s:%d: conversation without an assistant message (the answer to train on)", path, line);
        if (answer) output = answer;
    } else {  // a row of named fields
        v = find_field(row, m->instruction, c_instr, &name);
        if (!v) {
            if (m->instruction) return err_set(e, "%s:%d: missing field '%s'", path, line, m->instruction);
            return err_set(e, "%s:%d: missing instruction field (none of instruction, prompt, forbidden_prompt, question)",
                           path, line);
        }
        if (want_string(v, name, path, line, &instruction, e)) return -1;

        if ((v = find_field(row, m->input, c_input, &name))) {
            if (want_string(v, name, path, line, &input, e)) return -1;
        } else if (m->input && *m->input) {
            return err_set(e, "%s:%d: missing field '%s'", path, line, m->input);
        }

        if ((v = find_field(row, m->output, c_output, &name))) {
            if (want_string(v, name, path, line, &output, e)) return -1;
        } else if (m->output && *m->output) {
            return err_set(e, "%s:%d: missing field '%s'", path, line, m->output);
        } else if (c->flags & DATA_NEED_OUTPUT) {
            return err_set(e, "%s:%d: missing output field (none of output, response, rejected, answer, completion)", path,
                           line);
        }
    }

    if ((v = find_field(row, m->label, c_label, &name))) {
        if (json_is_integer(v)) {
            snprintf(labelbuf, sizeof labelbuf, "%lld", (long long)json_integer_value(v));
            label = labelbuf;
        } else if (json_is_string(v)) {
            label = json_string_value(v);
        } else {
            return err_set(e, "%s:%d: field '%s' is %s, expected a string or an integer", path, line, name,
                           json_type_name(v));
        }
    } else if (m->label && *m->label) {
        return err_set(e, "%s:%d: missing field '%s'", path, line, m->label);
    }

    char *category = NULL;
    if ((v = find_field(row, m->category, c_cat, &name))) {
        if (category_text(v, name, path, line, &category, e)) return -1;
    } else if (m->category && *m->category) {
        return err_set(e, "%s:%d: missing field '%s'", path, line, m->category);
    }

    int harmful = (c->flags & DATA_ALL_HARMFUL) ? 1 : 0;
    if ((v = find_field(row, m->is_safe, c_safe, &name))) {
        if (json_is_boolean(v)) harmful = !json_is_true(v);
        else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
            harmful = json_integer_value(v) == 0;
        else {
            free(category);
            return err_set(e, "%s:%d: field '%s' is %s, expected a boolean", path, line, name, json_type_name(v));
        }
    } else if (m->is_safe && *m->is_safe) {
        free(category);
        return err_set(e, "%s:%d: missing field '%s'", path, line, m->is_safe);
    } else if (!m->is_safe && (v = json_object_get(row, "flag")) && json_is_string(v)) {
        if (!strcmp(json_string_value(v), "unsafe")) harmful = 1;
    }

    dataset_add(c->out, instruction, input, output, label, category, harmful);
    free(category);
    return 0;
}

// 1 when the file starts (after a byte-order mark and white space) like neither JSON rows nor
// JSONL: a TSV/CSV table, say, whatever its name.
static int not_json_text(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);  // a FIFO must not block: read_file refuses it by name
    if (fd < 0) return 0;                          // data_load reports it
    struct stat st;
    unsigned char buf[512];
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf) : 0;
    close(fd);
    ssize_t i = n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (i < n && isspace(buf[i])) i++;
    return i < n && buf[i] != '{' && buf[i] != '[';
}

int data_load(const char *path, const FieldMap *m, unsigned flags, Dataset *out, Err *e) {
    size_t L = strlen(path);
    int table = L > 4 && (!strcasecmp(path + L - 4, ".tsv") || !strcasecmp(path + L - 4, ".csv"));
    if (table || not_json_text(path))
        return err_set(e, "%s: %s: a task's raw file (SST-2 TSV, AG News CSV) is read with --task sst2|agnews|gsm8k "
                       "(in a config: data.task, or the source's \"format\"); instruction rows are JSON or JSONL "
                       "(docs/data.md)", path, table ? "a TSV/CSV file" : "not JSON (it starts with neither '{' nor '[')");
    FieldMap automap = {0};
    LoadCtx c = {m ? m : &automap, flags, out};
    int n = json_rows_foreach(path, load_row, &c, e);
    if (n < 0) return -1;
    if (n == 0) return err_set(e, "%s: no rows", path);
    return 0;
}
