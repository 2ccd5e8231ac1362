// Results tables and SVG plots (docs/methods.md, Evaluation; docs/pipeline.md, Outputs: HS and FA per method and sweep value).
#include "eval/report.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic.h"

#define MAX_METRICS 16

typedef struct {
    char *method, *baseline;
} Comparison;

struct Table {
    char *title, *sweep, *note;
    int ncol, nseed;
    double *sweep_values;
    uint64_t *seeds;
    char **methods;
    int nrow, caprow;
    char *metrics[MAX_METRICS];
    int nmetric;
    double *cells;  // [row][col][MAX_METRICS][seed], NAN = unset
    Comparison *cmp;
    int ncmp;
    char *shown;  // metrics whose differences the text and Markdown show: ",HS,FA," (NULL = all)
};

// ---------------------------------------------------------------------------- growable text

typedef struct { char *s; size_t n, cap; } Text;

static void text_printf(Text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(Text *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)k + 1 > b->cap) {
        while (b->n + (size_t)k + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 1024;
        b->s = xrealloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

static char *text_take(Text *b) {
    if (!b->s) return xstrdup("");
    return b->s;
}

// ---------------------------------------------------------------------------- table

Table *table_new(const char *title, const char *sweep_name, int n_cols, const double *sweep_values, int n_seeds,
                 const uint64_t *seeds) {
    Table *t = xcalloc(1, sizeof(Table));
    t->title = xstrdup(title);
    t->sweep = xstrdup(sweep_name);
    t->ncol = n_cols > 0 ? n_cols : 0;
    t->sweep_values = xmalloc((size_t)(t->ncol + 1) * sizeof(double));
    for (int i = 0; i < t->ncol; i++) t->sweep_values[i] = sweep_values[i];
    t->nseed = n_seeds > 0 ? n_seeds : 0;
    t->seeds = xmalloc((size_t)(t->nseed + 1) * sizeof(uint64_t));
    for (int i = 0; i < t->nseed; i++) t->seeds[i] = seeds[i];
    return t;
}

void table_free(Table *t) {
    if (!t) return;
    for (int i = 0; i < t->nrow; i++) free(t->methods[i]);
    for (int i = 0; i < t->nmetric; i++) free(t->metrics[i]);
    for (int i = 0; i < t->ncmp; i++) free(t->cmp[i].method), free(t->cmp[i].baseline);
    free(t->cmp);
    free(t->shown);
    free(t->methods);
    free(t->cells);
    free(t->sweep_values);
    free(t->seeds);
    free(t->title);
    free(t->sweep);
    free(t->note);
    free(t);
}

void table_set_note(Table *t, const char *note) {
    free(t->note);
    t->note = note ? xstrdup(note) : NULL;
}

void table_compare(Table *t, const char *method, const char *baseline) {
    t->cmp = xrealloc(t->cmp, (size_t)(t->ncmp + 1) * sizeof(Comparison));
    t->cmp[t->ncmp++] = (Comparison){xstrdup(method), xstrdup(baseline)};
}

void table_show_differences(Table *t, const char *metrics) {
    free(t->shown);
    t->shown = NULL;
    if (!metrics) return;
    t->shown = xmalloc(strlen(metrics) + 3);
    sprintf(t->shown, ",%s,", metrics);
}

static int difference_shown(const Table *t, const char *metric) {
    if (!t->shown) return 1;
    char key[200];
    snprintf(key, sizeof key, ",%s,", metric);
    return strstr(t->shown, key) != NULL;
}

static int find_row(const Table *t, const char *m) {
    for (int i = 0; i < t->nrow; i++)
        if (strcmp(t->methods[i], m) == 0) return i;
    return -1;
}

static int find_metric(const Table *t, const char *m) {
    for (int i = 0; i < t->nmetric; i++)
        if (strcmp(t->metrics[i], m) == 0) return i;
    return -1;
}

static int find_seed(const Table *t, uint64_t seed) {
    for (int i = 0; i < t->nseed; i++)
        if (t->seeds[i] == seed) return i;
    return -1;
}

static double *cell(const Table *t, int row, int col, int metric, int seed) {
    size_t i = ((size_t)row * (size_t)t->ncol + (size_t)col) * MAX_METRICS + (size_t)metric;
    return &t->cells[i * (size_t)t->nseed + (size_t)seed];
}

int table_set(Table *t, const char *method, uint64_t seed, int col, const char *metric, double value) {
    int s = find_seed(t, seed);
    if (col < 0 || col >= t->ncol || s < 0) return -1;
    int m = find_metric(t, metric);
    if (m < 0) {
        if (t->nmetric == MAX_METRICS) return -1;
        m = t->nmetric++;
        t->metrics[m] = xstrdup(metric);
    }
    int r = find_row(t, method);
    if (r < 0) {
        if (t->nrow == t->caprow) {
            t->caprow = t->caprow ? 2 * t->caprow : 8;
            t->methods = xrealloc(t->methods, (size_t)t->caprow * sizeof(char *));
            t->cells = xrealloc(t->cells,
                                (size_t)t->caprow * (size_t)t->ncol * MAX_METRICS * (size_t)t->nseed * sizeof(double) + 1);
        }
        r = t->nrow++;
        t->methods[r] = xstrdup(method);
        for (int c = 0; c < t->ncol; c++)
            for (int k = 0; k < MAX_METRICS; k++)
                for (int j = 0; j < t->nseed; j++) *cell(t, r, c, k, j) = NAN;
    }
    *cell(t, r, col, m, s) = value;
    return 0;
}

double table_get(const Table *t, const char *method, uint64_t seed, int col, const char *metric) {
    int r = find_row(t, method), m = find_metric(t, metric), s = find_seed(t, seed);
    if (r < 0 || m < 0 || s < 0 || col < 0 || col >= t->ncol) return NAN;
    return *cell(t, r, col, m, s);
}

// One seed's value of a column, or of TABLE_AVG: its mean over the columns (NaN unless
// every column is set).
static double seed_value(const Table *t, int r, int col, int m, int s) {
    if (col != TABLE_AVG) return *cell(t, r, col, m, s);
    if (t->ncol == 0) return NAN;
    double sum = 0;
    for (int c = 0; c < t->ncol; c++) sum += *cell(t, r, c, m, s);  // NaN propagates: any unset -> NaN
    return sum / t->ncol;
}

static Spread spread_of(const Table *t, int r, int col, int m) {
    double *x = xmalloc((size_t)(t->nseed + 1) * sizeof(double));
    int n = 0;
    for (int s = 0; s < t->nseed; s++) {
        double v = seed_value(t, r, col, m, s);
        if (!isnan(v)) x[n++] = v;
    }
    Spread sp = stats_spread(x, n);
    free(x);
    return sp;
}

static TInterval paired_of(const Table *t, int r, int b, int col, int m) {
    double *d = xmalloc((size_t)(t->nseed + 1) * sizeof(double));
    int n = 0;
    for (int s = 0; s < t->nseed; s++) {
        double v = seed_value(t, r, col, m, s), w = seed_value(t, b, col, m, s);
        if (!isnan(v) && !isnan(w)) d[n++] = v - w;
    }
    TInterval ti = stats_t_interval(d, n, TABLE_CI_LEVEL);
    free(d);
    return ti;
}

static int col_ok(const Table *t, int col) { return col == TABLE_AVG || (col >= 0 && col < t->ncol); }

Spread table_spread(const Table *t, const char *method, int col, const char *metric) {
    int r = find_row(t, method), m = find_metric(t, metric);
    if (r < 0 || m < 0 || !col_ok(t, col)) return stats_spread(NULL, 0);
    return spread_of(t, r, col, m);
}

TInterval table_paired(const Table *t, const char *method, const char *baseline, int col, const char *metric) {
    int r = find_row(t, method), b = find_row(t, baseline), m = find_metric(t, metric);
    if (r < 0 || b < 0 || m < 0 || !col_ok(t, col)) return stats_t_interval(NULL, 0, TABLE_CI_LEVEL);
    return paired_of(t, r, b, col, m);
}

static const char *metric_long(const char *m) {
    if (strcmp(m, "HS") == 0) return "HS: harmful score (%, lower is better)";
    if (strcmp(m, "FA") == 0) return "FA: fine-tune accuracy (%, higher is better)";
    if (strcmp(m, "align_loss") == 0) return "align_loss: alignment loss on the alignment rows (lower is better)";
    if (strcmp(m, "HED") == 0) return "HED: harmful embedding drift (lower is better)";
    if (strcmp(m, "ft_first_loss") == 0) return "ft_first_loss: fine-tuning loss at the first step";
    if (strcmp(m, "ft_final_loss") == 0) return "ft_final_loss: fine-tuning loss, mean of the last 10% of steps";
    return NULL;
}

static void format_spread(Spread s, char *buf, size_t cap) {
    if (s.n == 0) snprintf(buf, cap, "-");
    else if (s.n == 1) snprintf(buf, cap, "%.2f (1)", s.mean);
    else snprintf(buf, cap, "%.2f ± %.2f (%d)", s.mean, s.sd, s.n);
}

static void format_interval(TInterval d, char *buf, size_t cap) {
    if (d.n == 0) snprintf(buf, cap, "-");
    else if (d.n == 1) snprintf(buf, cap, "%+.2f (1)", d.mean);
    else snprintf(buf, cap, "%+.2f [%+.2f, %+.2f] (%d)", d.mean, d.lo, d.hi, d.n);
}

// A block of cells (a header row, then one row per method) rendered as Markdown or as
// aligned text. Columns: "Methods", the sweep values, "Avg".
typedef struct {
    int nr, nc;
    char **s;  // [(nr + 1) * nc], row 0 = header
} Grid;

static Grid grid_new(const Table *t, int n_rows) {
    Grid g = {n_rows, t->ncol + 2, NULL};
    g.s = xcalloc((size_t)(g.nr + 1) * (size_t)g.nc, sizeof(char *));
    char buf[128];
    g.s[0] = xstrdup("Methods");
    for (int c = 0; c < t->ncol; c++) {
        snprintf(buf, sizeof buf, "%s=%g", t->sweep, t->sweep_values[c]);
        g.s[1 + c] = xstrdup(buf);
    }
    g.s[g.nc - 1] = xstrdup("Avg");
    return g;
}

static void grid_free(Grid *g) {
    for (int i = 0; i < (g->nr + 1) * g->nc; i++) free(g->s[i]);
    free(g->s);
}

static int column_of(const Table *t, int i) { return i == t->ncol ? TABLE_AVG : i; }

// Rows = methods, cells = mean ± sd (n) of metric m.
static Grid grid_metric(const Table *t, int m) {
    Grid g = grid_new(t, t->nrow);
    char buf[128];
    for (int r = 0; r < t->nrow; r++) {
        g.s[(r + 1) * g.nc] = xstrdup(t->methods[r]);
        for (int i = 0; i <= t->ncol; i++) {
            format_spread(spread_of(t, r, column_of(t, i), m), buf, sizeof buf);
            g.s[(r + 1) * g.nc + 1 + i] = xstrdup(buf);
        }
    }
    return g;
}

// Rows = the methods compared against `baseline`, cells = their paired differences.
static Grid grid_difference(const Table *t, const char *baseline, int m) {
    int n = 0, b = find_row(t, baseline);
    for (int k = 0; k < t->ncmp; k++) n += strcmp(t->cmp[k].baseline, baseline) == 0;
    Grid g = grid_new(t, n);
    char buf[128];
    int row = 0;
    for (int k = 0; k < t->ncmp; k++) {
        if (strcmp(t->cmp[k].baseline, baseline)) continue;
        int r = find_row(t, t->cmp[k].method);
        row++;
        g.s[row * g.nc] = xstrdup(t->cmp[k].method);
        for (int i = 0; i <= t->ncol; i++) {
            if (r < 0 || b < 0) snprintf(buf, sizeof buf, "-");
            else format_interval(paired_of(t, r, b, column_of(t, i), m), buf, sizeof buf);
            g.s[row * g.nc + 1 + i] = xstrdup(buf);
        }
    }
    return g;
}

static void grid_markdown(const Grid *g, Text *b) {
    for (int r = 0; r <= g->nr; r++) {
        text_printf(b, "|");
        for (int c = 0; c < g->nc; c++) {
            text_printf(b, " ");
            for (const char *p = g->s[r * g->nc + c]; *p; p++) text_printf(b, "%c", *p == '|' ? '/' : *p);  // '|' would split the cell
            text_printf(b, " |");
        }
        text_printf(b, "\n");
        if (r == 0) {
            text_printf(b, "|");
            for (int c = 0; c < g->nc; c++) text_printf(b, "%s|", c ? "---:" : "---");
            text_printf(b, "\n");
        }
    }
}

// Width on screen: UTF-8 continuation bytes take no column ("±" is two bytes, one column).
static int display_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void grid_text(const Grid *g, Text *b) {
    int *w = xcalloc((size_t)g->nc, sizeof(int));
    for (int r = 0; r <= g->nr; r++)
        for (int c = 0; c < g->nc; c++)
            if (display_width(g->s[r * g->nc + c]) > w[c]) w[c] = display_width(g->s[r * g->nc + c]);
    for (int r = 0; r <= g->nr; r++) {
        for (int c = 0; c < g->nc; c++) {
            const char *s = g->s[r * g->nc + c];
            int pad = w[c] - display_width(s);
            if (c == 0) text_printf(b, "%s%*s", s, pad, "");
            else text_printf(b, "  %*s%s", pad, "", s);
        }
        text_printf(b, "\n");
    }
    free(w);
}

static void seed_list(const Table *t, Text *b) {
    for (int s = 0; s < t->nseed; s++) text_printf(b, "%s%llu", s ? ", " : "", (unsigned long long)t->seeds[s]);
}

static void legend_lines(const Table *t, Text *b) {
    text_printf(b, "Cells: mean ± sample standard deviation (number of seeds) over the %d seed%s ", t->nseed,
                t->nseed == 1 ? "" : "s");
    seed_list(t, b);
    text_printf(b, ". Avg: each seed's mean over the %s columns, then mean ± sd over the seeds.\n", t->sweep);
    if (t->ncmp)
        text_printf(b, "Differences: each seed's value minus the baseline's value of the same seed; mean "
                       "[%g%% Student t interval over seeds: mean ± t(%g, n-1) sd/sqrt(n)] (n).\n",
                    100 * TABLE_CI_LEVEL, (1 + TABLE_CI_LEVEL) / 2);
    if (t->note) text_printf(b, "%s\n", t->note);
}

// Every metric's block (rows = methods), then per baseline every metric's differences, then the legend.
static void render(const Table *t, Text *b, int markdown) {
    for (int m = 0; m < t->nmetric; m++) {
        const char *name = metric_long(t->metrics[m]) ? metric_long(t->metrics[m]) : t->metrics[m];
        text_printf(b, markdown ? "### %s\n\n" : "%s\n", name);
        Grid g = grid_metric(t, m);
        if (markdown) grid_markdown(&g, b);
        else grid_text(&g, b);
        grid_free(&g);
        text_printf(b, "\n");
    }
    for (int k = 0; k < t->ncmp; k++) {
        int first = 1;  // one block per distinct baseline, at its first comparison
        for (int j = 0; j < k; j++) first &= strcmp(t->cmp[j].baseline, t->cmp[k].baseline) != 0;
        if (!first) continue;
        for (int m = 0; m < t->nmetric; m++) {
            if (!difference_shown(t, t->metrics[m])) continue;
            text_printf(b, markdown ? "### %s: difference against %s (%g%% t interval over seeds)\n\n"
                                    : "%s: difference against %s (%g%% t interval over seeds)\n",
                        t->metrics[m], t->cmp[k].baseline, 100 * TABLE_CI_LEVEL);
            Grid g = grid_difference(t, t->cmp[k].baseline, m);
            if (markdown) grid_markdown(&g, b);
            else grid_text(&g, b);
            grid_free(&g);
            text_printf(b, "\n");
        }
    }
    legend_lines(t, b);
}

char *table_markdown(const Table *t) {
    Text b = {0};
    text_printf(&b, "## %s\n\n", t->title);
    render(t, &b, 1);
    return text_take(&b);
}

char *table_text(const Table *t) {
    Text b = {0};
    text_printf(&b, "%s\n\n", t->title);
    render(t, &b, 0);
    return text_take(&b);
}

static void csv_field(Text *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { text_printf(b, "%s", s); return; }
    text_printf(b, "\"");
    for (; *s; s++) text_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    text_printf(b, "\"");
}

// One row per method, column and seed (seeds without any value left out).
char *table_csv(const Table *t) {
    Text b = {0};
    text_printf(&b, "method,");
    csv_field(&b, t->sweep);
    text_printf(&b, ",seed");
    for (int m = 0; m < t->nmetric; m++) {
        text_printf(&b, ",");
        csv_field(&b, t->metrics[m]);
    }
    text_printf(&b, "\n");
    for (int r = 0; r < t->nrow; r++)
        for (int c = 0; c < t->ncol; c++)
            for (int s = 0; s < t->nseed; s++) {
                int any = 0;
                for (int m = 0; m < t->nmetric; m++) any |= !isnan(*cell(t, r, c, m, s));
                if (!any) continue;
                csv_field(&b, t->methods[r]);
                text_printf(&b, ",%.10g,%llu", t->sweep_values[c], (unsigned long long)t->seeds[s]);
                for (int m = 0; m < t->nmetric; m++) {
                    double v = *cell(t, r, c, m, s);
                    if (isnan(v)) text_printf(&b, ",");
                    else text_printf(&b, ",%.10g", v);
                }
                text_printf(&b, "\n");
            }
    return text_take(&b);
}

static json_t *num_or_null(double v) { return isnan(v) ? json_null() : json_real(v); }

static json_t *spread_json(const Table *t, int r, int col, int m) {
    Spread sp = spread_of(t, r, col, m);
    json_t *o = json_object(), *per = json_array();
    json_object_set_new(o, "mean", num_or_null(sp.mean));
    json_object_set_new(o, "sd", num_or_null(sp.sd));
    json_object_set_new(o, "n", json_integer(sp.n));
    for (int s = 0; s < t->nseed; s++) json_array_append_new(per, num_or_null(seed_value(t, r, col, m, s)));
    json_object_set_new(o, "per_seed", per);
    return o;
}

static json_t *interval_json(const Table *t, int r, int b, int col, int m) {
    json_t *o = json_object();
    TInterval d = r < 0 || b < 0 ? stats_t_interval(NULL, 0, TABLE_CI_LEVEL) : paired_of(t, r, b, col, m);
    json_object_set_new(o, "mean", num_or_null(d.mean));
    json_object_set_new(o, "sd", num_or_null(d.sd));
    json_object_set_new(o, "n", json_integer(d.n));
    json_object_set_new(o, "lo", num_or_null(d.lo));
    json_object_set_new(o, "hi", num_or_null(d.hi));
    return o;
}

// cells[] (one object per column, with the sweep value) and average{}, for one row of
// values (b < 0) or of differences against row b.
static void cells_json(const Table *t, json_t *row, int r, int b, int diff) {
    json_t *cells = json_array(), *avg = json_object();
    for (int c = 0; c < t->ncol; c++) {
        json_t *cl = json_object();
        json_object_set_new(cl, t->sweep, json_real(t->sweep_values[c]));
        for (int m = 0; m < t->nmetric; m++)
            json_object_set_new(cl, t->metrics[m], diff ? interval_json(t, r, b, c, m) : spread_json(t, r, c, m));
        json_array_append_new(cells, cl);
    }
    for (int m = 0; m < t->nmetric; m++)
        json_object_set_new(avg, t->metrics[m], diff ? interval_json(t, r, b, TABLE_AVG, m) : spread_json(t, r, TABLE_AVG, m));
    json_object_set_new(row, "cells", cells);
    json_object_set_new(row, "average", avg);
}

char *table_json(const Table *t) {
    json_t *root = json_object(), *values = json_array(), *metrics = json_array(), *seeds = json_array();
    json_t *rows = json_array(), *cmps = json_array();
    json_object_set_new(root, "title", json_string(t->title));
    json_object_set_new(root, "sweep", json_string(t->sweep));
    for (int c = 0; c < t->ncol; c++) json_array_append_new(values, json_real(t->sweep_values[c]));
    json_object_set_new(root, "sweep_values", values);
    for (int m = 0; m < t->nmetric; m++) json_array_append_new(metrics, json_string(t->metrics[m]));
    json_object_set_new(root, "metrics", metrics);
    for (int s = 0; s < t->nseed; s++) json_array_append_new(seeds, json_integer((json_int_t)t->seeds[s]));
    json_object_set_new(root, "seeds", seeds);
    json_object_set_new(root, "statistics",
                        json_string("cells: mean, sample sd (n - 1) and n over the seeds, per_seed in the order of "
                                    "seeds; average: each seed's mean over the sweep columns, then over the seeds"));
    if (t->note) json_object_set_new(root, "note", json_string(t->note));
    for (int r = 0; r < t->nrow; r++) {
        json_t *row = json_object();
        json_object_set_new(row, "method", json_string(t->methods[r]));
        cells_json(t, row, r, -1, 0);
        json_array_append_new(rows, row);
    }
    json_object_set_new(root, "rows", rows);
    if (t->ncmp) {
        char what[200];
        snprintf(what, sizeof what,
                 "paired differences method - baseline over the seeds where both are set: mean, sd, n and the "
                 "two-sided %g%% Student t interval [lo, hi] = mean -/+ t(%g, n-1) sd / sqrt(n)",
                 100 * TABLE_CI_LEVEL, (1 + TABLE_CI_LEVEL) / 2);
        json_object_set_new(root, "comparison_statistics", json_string(what));
    }
    for (int k = 0; k < t->ncmp; k++) {
        json_t *row = json_object();
        json_object_set_new(row, "method", json_string(t->cmp[k].method));
        json_object_set_new(row, "baseline", json_string(t->cmp[k].baseline));
        cells_json(t, row, find_row(t, t->cmp[k].method), find_row(t, t->cmp[k].baseline), 1);
        json_array_append_new(cmps, row);
    }
    json_object_set_new(root, "comparisons", cmps);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(root);
    size_t n = strlen(s);
    char *out = xmalloc(n + 2);
    memcpy(out, s, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    free(s);
    return out;
}

static int write_text(const char *path, char *text, Err *e) {
    int rc = write_file_atomic(path, text, strlen(text), e);
    free(text);
    return rc;
}

int table_write_markdown(const Table *t, const char *path, Err *e) { return write_text(path, table_markdown(t), e); }
int table_write_csv(const Table *t, const char *path, Err *e) { return write_text(path, table_csv(t), e); }
int table_write_json(const Table *t, const char *path, Err *e) { return write_text(path, table_json(t), e); }

// ---------------------------------------------------------------------------- SVG plots

static void xml_text(Text *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': text_printf(b, "&lt;"); break;
        case '>': text_printf(b, "&gt;"); break;
        case '&': text_printf(b, "&amp;"); break;
        case '"': text_printf(b, "&quot;"); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t' || *s == '\n') text_printf(b, "%c", *s);
        }
    }
}

// A step of 1, 2, 2.5 or 5 x 10^k giving about five intervals over [lo, hi], and the
// range widened to whole steps.
static void nice_range(double lo, double hi, double *out_lo, double *out_hi, double *out_step) {
    if (!(hi > lo)) {  // one value (or none): a unit-wide range around it
        double c = isfinite(lo) ? lo : 0;
        lo = c - 1;
        hi = c + 1;
        if (c == 0) lo = 0;
    }
    double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
    *out_lo = floor(lo / step + 1e-9) * step;
    *out_hi = ceil(hi / step - 1e-9) * step;
    *out_step = step;
}

static const char *PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// The half-length of point i's error bar: its sd where finite, else 0 (no bar).
static double bar(const PlotSeries *s, int i) { return s->sd && isfinite(s->sd[i]) ? s->sd[i] : 0; }

// Series k's marker: a shape and a dash pattern of its own, so that lines lying on top of
// each other (equal results) stay distinguishable.
static void marker(Text *b, int k, double x, double y, const char *col) {
    switch (k % 6) {
    case 0: text_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"%s\"/>\n", x, y, col); break;
    case 1: text_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"8\" height=\"8\" fill=\"none\" stroke=\"%s\" "
                           "stroke-width=\"1.5\"/>\n", x - 4, y - 4, col); break;
    case 2: text_printf(b, "<path d=\"M%.2f,%.2f l5,9 h-10 z\" fill=\"%s\"/>\n", x, y - 6, col); break;
    case 3: text_printf(b, "<path d=\"M%.2f,%.2f l5,5 l-5,5 l-5,-5 z\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
                        x, y - 5, col); break;
    case 4: text_printf(b, "<path d=\"M%.2f,%.2f l5,-9 h-10 z\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
                        x, y + 6, col); break;
    default: text_printf(b, "<path d=\"M%.2f,%.2f l8,8 m0,-8 l-8,8\" stroke=\"%s\" stroke-width=\"2\"/>\n", x - 4,
                         y - 4, col); break;
    }
}

static const char *const DASHES[] = {"", "7,3", "2,3", "9,3,2,3", "4,4", "1,2"};

// y_lo < y_hi fixes the y axis (HS and FA: 0-100, so plots compare); NaN: from the data.
static char *svg_plot(const char *title, const char *xlabel, const char *ylabel, const PlotSeries *s, int ns,
                      double y_lo, double y_hi) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            double sd = bar(&s[k], i);
            xmin = fmin(xmin, s[k].x[i]), xmax = fmax(xmax, s[k].x[i]);
            ymin = fmin(ymin, s[k].y[i] - sd), ymax = fmax(ymax, s[k].y[i] + sd);
        }
    double xlo, xhi, xstep, ylo, yhi, ystep;
    nice_range(xmin, xmax, &xlo, &xhi, &xstep);
    nice_range(ymin, ymax, &ylo, &yhi, &ystep);
    if (y_lo < y_hi) ylo = y_lo, yhi = y_hi, ystep = (y_hi - y_lo) / 5;
#define PX(v) (PLOT_LEFT + ((v) - xlo) / (xhi - xlo) * (PLOT_RIGHT - PLOT_LEFT))
#define PY(v) (PLOT_BOTTOM - ((v) - ylo) / (yhi - ylo) * (PLOT_BOTTOM - PLOT_TOP))
    Text b = {0};
    text_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    text_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                    "font-family=\"sans-serif\" font-size=\"12\">\n", PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    text_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", PLOT_W, PLOT_H);
    text_printf(&b, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", (PLOT_LEFT + PLOT_RIGHT) / 2);
    xml_text(&b, title);
    text_printf(&b, "</text>\n<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    int nx = (int)floor((xhi - xlo) / xstep + 0.5), ny = (int)floor((yhi - ylo) / ystep + 0.5);
    for (int i = 0; i <= ny; i++)
        text_printf(&b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>\n", PLOT_LEFT, PY(ylo + i * ystep), PLOT_RIGHT,
                    PY(ylo + i * ystep));
    for (int i = 0; i <= nx; i++)
        text_printf(&b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>\n", PX(xlo + i * xstep), PLOT_TOP,
                    PX(xlo + i * xstep), PLOT_BOTTOM);
    text_printf(&b, "</g>\n<g stroke=\"black\" stroke-width=\"1\">\n");
    text_printf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", PLOT_LEFT, PLOT_BOTTOM, PLOT_RIGHT, PLOT_BOTTOM);
    text_printf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", PLOT_LEFT, PLOT_TOP, PLOT_LEFT, PLOT_BOTTOM);
    for (int i = 0; i <= nx; i++)
        text_printf(&b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>\n", PX(xlo + i * xstep), PLOT_BOTTOM,
                    PX(xlo + i * xstep), PLOT_BOTTOM + 5);
    for (int i = 0; i <= ny; i++)
        text_printf(&b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>\n", PLOT_LEFT - 5, PY(ylo + i * ystep),
                    PLOT_LEFT, PY(ylo + i * ystep));
    text_printf(&b, "</g>\n");
    for (int i = 0; i <= nx; i++) {
        double v = xlo + i * xstep;
        if (fabs(v) < xstep * 1e-9) v = 0;
        text_printf(&b, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", PX(v), PLOT_BOTTOM + 18, v);
    }
    for (int i = 0; i <= ny; i++) {
        double v = ylo + i * ystep;
        if (fabs(v) < ystep * 1e-9) v = 0;
        text_printf(&b, "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%g</text>\n", PLOT_LEFT - 8, PY(v) + 4, v);
    }
    text_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (PLOT_LEFT + PLOT_RIGHT) / 2, PLOT_H - 10);
    xml_text(&b, xlabel);
    text_printf(&b, "</text>\n<text x=\"18\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">",
                (PLOT_TOP + PLOT_BOTTOM) / 2, (PLOT_TOP + PLOT_BOTTOM) / 2);
    xml_text(&b, ylabel);
    text_printf(&b, "</text>\n");
    for (int k = 0; k < ns; k++) {
        const char *col = PALETTE[k % (int)(sizeof PALETTE / sizeof *PALETTE)];
        const char *dash = DASHES[k % (int)(sizeof DASHES / sizeof *DASHES)];
        text_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"", col,
                    *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
        int first = 1;
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            text_printf(&b, "%s%.2f,%.2f", first ? "" : " ", PX(s[k].x[i]), PY(s[k].y[i]));
            first = 0;
        }
        text_printf(&b, "\"/>\n");
        for (int i = 0; i < s[k].n; i++) {  // error bars: a vertical line with caps from y - sd to y + sd
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i]) || !s[k].sd || !isfinite(s[k].sd[i])) continue;
            double x = PX(s[k].x[i]), lo = PY(s[k].y[i] - s[k].sd[i]), hi = PY(s[k].y[i] + s[k].sd[i]);
            text_printf(&b, "<path class=\"errorbar\" stroke=\"%s\" stroke-width=\"1.5\" fill=\"none\" "
                            "d=\"M%.2f,%.2f V%.2f M%.2f,%.2f H%.2f M%.2f,%.2f H%.2f\"/>\n",
                        col, x, lo, hi, x - 4, lo, x + 4, x - 4, hi, x + 4);
        }
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))
                marker(&b, k, PX(s[k].x[i]), PY(s[k].y[i]), col);
        int ly = PLOT_TOP + 10 + 20 * k;
        text_printf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/>\n",
                    PLOT_RIGHT + 15, ly, PLOT_RIGHT + 40, ly, col, *dash ? " stroke-dasharray=\"" : "", dash,
                    *dash ? "\"" : "");
        marker(&b, k, PLOT_RIGHT + 27, ly, col);
        text_printf(&b, "<text x=\"%d\" y=\"%d\">", PLOT_RIGHT + 46, ly + 4);
        xml_text(&b, s[k].name ? s[k].name : "");
        text_printf(&b, "</text>\n");
    }
    text_printf(&b, "</svg>\n");
#undef PX
#undef PY
    return text_take(&b);
}

char *plot_svg_string(const char *title, const char *xlabel, const char *ylabel, const PlotSeries *s, int ns) {
    return svg_plot(title, xlabel, ylabel, s, ns, NAN, NAN);
}

int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const PlotSeries *s, int n_series, Err *e) {
    return write_text(path, plot_svg_string(title, xlabel, ylabel, s, n_series), e);
}

int plot_loss_svg(const float *curve, int n, const char *title, const char *path, Err *e) {
    double *x = xmalloc((size_t)(n ? n : 1) * sizeof(double)), *y = xmalloc((size_t)(n ? n : 1) * sizeof(double));
    for (int i = 0; i < n; i++) x[i] = i + 1, y[i] = curve[i];
    PlotSeries s = {"loss", n, x, y, NULL};
    int rc = plot_svg(path, title, "optimizer step", "training loss (answer tokens)", &s, 1, e);
    free(x);
    free(y);
    return rc;
}

int table_plot_svg(const Table *t, const char *metric, const char *path, Err *e) {
    int m = find_metric(t, metric);
    if (m < 0) return err_set(e, "%s: table '%s' has no metric '%s'", path, t->title, metric);
    PlotSeries *s = xcalloc((size_t)(t->nrow + 1), sizeof(PlotSeries));
    size_t n = (size_t)(t->nrow * t->ncol + 1);
    double *ys = xmalloc(n * sizeof(double)), *sds = xmalloc(n * sizeof(double));
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++) {
            Spread sp = spread_of(t, r, c, m);
            ys[r * t->ncol + c] = sp.mean;
            sds[r * t->ncol + c] = sp.sd;
        }
        s[r] = (PlotSeries){t->methods[r], t->ncol, t->sweep_values, ys + r * t->ncol, sds + r * t->ncol};
    }
    const char *name = strcmp(metric, "HS") == 0 ? "Harmful score (%)" : strcmp(metric, "FA") == 0 ? "Fine-tune accuracy (%)" : metric;
    char title[512], ylabel[256];
    snprintf(title, sizeof title, "%s: %s", t->title, metric);
    if (t->nseed > 1) snprintf(ylabel, sizeof ylabel, "%s, mean ± sd over %d seeds", name, t->nseed);
    else snprintf(ylabel, sizeof ylabel, "%s, 1 seed", name);
    int pct = !strcmp(metric, "HS") || !strcmp(metric, "FA");  // percentages: the whole 0-100 axis
    int rc = write_text(path, svg_plot(title, t->sweep, ylabel, s, t->nrow, pct ? 0 : NAN, pct ? 100 : NAN), e);
    free(ys);
    free(sds);
    free(s);
    return rc;
}
