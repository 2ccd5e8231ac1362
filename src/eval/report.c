// Results tables and SVG plots (SPEC sections 8-9: HS and FA per method and sweep value).
#include "eval/report.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"

#define MAX_METRICS 16

struct Table {
    char *title, *sweep, *note;
    int ncol;
    double *sweep_values;
    char **methods;
    int nrow, caprow;
    char *metrics[MAX_METRICS];
    int nmetric;
    double *cells;  // [row][col][MAX_METRICS], NAN = unset
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

Table *table_new(const char *title, const char *sweep_name, int n_cols, const double *sweep_values) {
    Table *t = xcalloc(1, sizeof(Table));
    t->title = xstrdup(title);
    t->sweep = xstrdup(sweep_name);
    t->ncol = n_cols > 0 ? n_cols : 0;
    t->sweep_values = xmalloc((size_t)(t->ncol + 1) * sizeof(double));
    for (int i = 0; i < t->ncol; i++) t->sweep_values[i] = sweep_values[i];
    return t;
}

void table_free(Table *t) {
    if (!t) return;
    for (int i = 0; i < t->nrow; i++) free(t->methods[i]);
    for (int i = 0; i < t->nmetric; i++) free(t->metrics[i]);
    free(t->methods);
    free(t->cells);
    free(t->sweep_values);
    free(t->title);
    free(t->sweep);
    free(t->note);
    free(t);
}

void table_set_note(Table *t, const char *note) {
    free(t->note);
    t->note = note ? xstrdup(note) : NULL;
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

static double *cell(const Table *t, int row, int col, int metric) {
    return &t->cells[((size_t)row * (size_t)t->ncol + (size_t)col) * MAX_METRICS + (size_t)metric];
}

void table_set(Table *t, const char *method, int col, const char *metric, double value) {
    if (col < 0 || col >= t->ncol) return;
    int m = find_metric(t, metric);
    if (m < 0) {
        if (t->nmetric == MAX_METRICS) return;
        m = t->nmetric++;
        t->metrics[m] = xstrdup(metric);
    }
    int r = find_row(t, method);
    if (r < 0) {
        if (t->nrow == t->caprow) {
            t->caprow = t->caprow ? 2 * t->caprow : 8;
            t->methods = xrealloc(t->methods, (size_t)t->caprow * sizeof(char *));
            t->cells = xrealloc(t->cells, (size_t)t->caprow * (size_t)t->ncol * MAX_METRICS * sizeof(double) + 1);
        }
        r = t->nrow++;
        t->methods[r] = xstrdup(method);
        for (int c = 0; c < t->ncol; c++)
            for (int k = 0; k < MAX_METRICS; k++) *cell(t, r, c, k) = NAN;
    }
    *cell(t, r, col, m) = value;
}

double table_get(const Table *t, const char *method, int col, const char *metric) {
    int r = find_row(t, method), m = find_metric(t, metric);
    if (r < 0 || m < 0 || col < 0 || col >= t->ncol) return NAN;
    return *cell(t, r, col, m);
}

static double row_average(const Table *t, int r, int m) {
    if (t->ncol == 0) return NAN;
    double s = 0;
    for (int c = 0; c < t->ncol; c++) s += *cell(t, r, c, m);  // NaN propagates: any unset -> NaN
    return s / t->ncol;
}

double table_average(const Table *t, const char *method, const char *metric) {
    int r = find_row(t, method), m = find_metric(t, metric);
    return r < 0 || m < 0 ? NAN : row_average(t, r, m);
}

static const char *metric_long(const char *m) {
    if (strcmp(m, "HS") == 0) return "HS: harmful score (%, lower is better)";
    if (strcmp(m, "FA") == 0) return "FA: fine-tune accuracy (%, higher is better)";
    return NULL;
}

// The header cells: "Methods", then per metric "<metric> <sweep>=<v>"... "<metric> Avg".
static int n_cells(const Table *t) { return 1 + t->nmetric * (t->ncol + 1); }

static void header_cell(const Table *t, int i, char *buf, size_t cap) {
    if (i == 0) { snprintf(buf, cap, "Methods"); return; }
    int m = (i - 1) / (t->ncol + 1), c = (i - 1) % (t->ncol + 1);
    if (c == t->ncol) snprintf(buf, cap, "%s Avg", t->metrics[m]);
    else snprintf(buf, cap, "%s %s=%g", t->metrics[m], t->sweep, t->sweep_values[c]);
}

static void body_cell(const Table *t, int r, int i, char *buf, size_t cap) {
    if (i == 0) { snprintf(buf, cap, "%s", t->methods[r]); return; }
    int m = (i - 1) / (t->ncol + 1), c = (i - 1) % (t->ncol + 1);
    double v = c == t->ncol ? row_average(t, r, m) : *cell(t, r, c, m);
    if (isnan(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.2f", v);
}

static void legend_lines(const Table *t, Text *b) {
    for (int m = 0; m < t->nmetric; m++)
        if (metric_long(t->metrics[m])) text_printf(b, "%s. ", metric_long(t->metrics[m]));
    text_printf(b, "Avg: mean over the %s columns.\n", t->sweep);
    if (t->note) text_printf(b, "%s\n", t->note);
}

char *table_markdown(const Table *t) {
    Text b = {0};
    char buf[512];
    text_printf(&b, "## %s\n\n|", t->title);
    for (int i = 0; i < n_cells(t); i++) {
        header_cell(t, i, buf, sizeof buf);
        text_printf(&b, " %s |", buf);
    }
    text_printf(&b, "\n|");
    for (int i = 0; i < n_cells(t); i++) text_printf(&b, "%s|", i ? "---:" : "---");
    text_printf(&b, "\n");
    for (int r = 0; r < t->nrow; r++) {
        text_printf(&b, "|");
        for (int i = 0; i < n_cells(t); i++) {
            body_cell(t, r, i, buf, sizeof buf);
            // a '|' inside a method name would split the cell
            for (char *p = buf; *p; p++)
                if (*p == '|') *p = '/';
            text_printf(&b, " %s |", buf);
        }
        text_printf(&b, "\n");
    }
    text_printf(&b, "\n");
    legend_lines(t, &b);
    return text_take(&b);
}

void table_print(const Table *t, FILE *f) {
    int nc = n_cells(t);
    int *w = xcalloc((size_t)nc, sizeof(int));
    char buf[512];
    for (int i = 0; i < nc; i++) {
        header_cell(t, i, buf, sizeof buf);
        w[i] = (int)strlen(buf);
        for (int r = 0; r < t->nrow; r++) {
            body_cell(t, r, i, buf, sizeof buf);
            if ((int)strlen(buf) > w[i]) w[i] = (int)strlen(buf);
        }
    }
    fprintf(f, "%s\n", t->title);
    for (int r = -1; r < t->nrow; r++) {
        for (int i = 0; i < nc; i++) {
            if (r < 0) header_cell(t, i, buf, sizeof buf);
            else body_cell(t, r, i, buf, sizeof buf);
            fprintf(f, i == 0 ? "%-*s" : "  %*s", w[i], buf);
        }
        fprintf(f, "\n");
    }
    Text b = {0};
    legend_lines(t, &b);
    fputs(text_take(&b), f);
    free(b.s);
    free(w);
}

static void csv_field(Text *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { text_printf(b, "%s", s); return; }
    text_printf(b, "\"");
    for (; *s; s++) text_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    text_printf(b, "\"");
}

char *table_csv(const Table *t) {
    Text b = {0};
    text_printf(&b, "method,");
    csv_field(&b, t->sweep);
    for (int m = 0; m < t->nmetric; m++) {
        text_printf(&b, ",");
        csv_field(&b, t->metrics[m]);
    }
    text_printf(&b, "\n");
    for (int r = 0; r < t->nrow; r++)
        for (int c = 0; c < t->ncol; c++) {
            csv_field(&b, t->methods[r]);
            text_printf(&b, ",%.10g", t->sweep_values[c]);
            for (int m = 0; m < t->nmetric; m++) {
                double v = *cell(t, r, c, m);
                if (isnan(v)) text_printf(&b, ",");
                else text_printf(&b, ",%.10g", v);
            }
            text_printf(&b, "\n");
        }
    return text_take(&b);
}

static json_t *num_or_null(double v) { return isnan(v) ? json_null() : json_real(v); }

char *table_json(const Table *t) {
    json_t *root = json_object(), *values = json_array(), *metrics = json_array(), *rows = json_array();
    json_object_set_new(root, "title", json_string(t->title));
    json_object_set_new(root, "sweep", json_string(t->sweep));
    for (int c = 0; c < t->ncol; c++) json_array_append_new(values, json_real(t->sweep_values[c]));
    json_object_set_new(root, "sweep_values", values);
    for (int m = 0; m < t->nmetric; m++) json_array_append_new(metrics, json_string(t->metrics[m]));
    json_object_set_new(root, "metrics", metrics);
    if (t->note) json_object_set_new(root, "note", json_string(t->note));
    for (int r = 0; r < t->nrow; r++) {
        json_t *row = json_object(), *cells = json_array(), *avg = json_object();
        json_object_set_new(row, "method", json_string(t->methods[r]));
        for (int c = 0; c < t->ncol; c++) {
            json_t *cl = json_object();
            json_object_set_new(cl, t->sweep, json_real(t->sweep_values[c]));
            for (int m = 0; m < t->nmetric; m++) json_object_set_new(cl, t->metrics[m], num_or_null(*cell(t, r, c, m)));
            json_array_append_new(cells, cl);
        }
        for (int m = 0; m < t->nmetric; m++) json_object_set_new(avg, t->metrics[m], num_or_null(row_average(t, r, m)));
        json_object_set_new(row, "cells", cells);
        json_object_set_new(row, "average", avg);
        json_array_append_new(rows, row);
    }
    json_object_set_new(root, "rows", rows);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
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

char *plot_svg_string(const char *title, const char *xlabel, const char *ylabel, const PlotSeries *s, int ns) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            xmin = fmin(xmin, s[k].x[i]), xmax = fmax(xmax, s[k].x[i]);
            ymin = fmin(ymin, s[k].y[i]), ymax = fmax(ymax, s[k].y[i]);
        }
    double xlo, xhi, xstep, ylo, yhi, ystep;
    nice_range(xmin, xmax, &xlo, &xhi, &xstep);
    nice_range(ymin, ymax, &ylo, &yhi, &ystep);
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
        text_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        int first = 1;
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            text_printf(&b, "%s%.2f,%.2f", first ? "" : " ", PX(s[k].x[i]), PY(s[k].y[i]));
            first = 0;
        }
        text_printf(&b, "\"/>\n");
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))
                text_printf(&b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"%s\"/>\n", PX(s[k].x[i]), PY(s[k].y[i]), col);
        int ly = PLOT_TOP + 10 + 20 * k;
        text_printf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", PLOT_RIGHT + 15,
                    ly, PLOT_RIGHT + 40, ly, col);
        text_printf(&b, "<circle cx=\"%d\" cy=\"%d\" r=\"3.5\" fill=\"%s\"/>\n", PLOT_RIGHT + 27, ly, col);
        text_printf(&b, "<text x=\"%d\" y=\"%d\">", PLOT_RIGHT + 46, ly + 4);
        xml_text(&b, s[k].name ? s[k].name : "");
        text_printf(&b, "</text>\n");
    }
    text_printf(&b, "</svg>\n");
#undef PX
#undef PY
    return text_take(&b);
}

int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const PlotSeries *s, int n_series, Err *e) {
    return write_text(path, plot_svg_string(title, xlabel, ylabel, s, n_series), e);
}

int table_plot_svg(const Table *t, const char *metric, const char *path, Err *e) {
    int m = find_metric(t, metric);
    if (m < 0) return err_set(e, "%s: table '%s' has no metric '%s'", path, t->title, metric);
    PlotSeries *s = xcalloc((size_t)(t->nrow + 1), sizeof(PlotSeries));
    double *ys = xmalloc((size_t)(t->nrow * t->ncol + 1) * sizeof(double));
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++) ys[r * t->ncol + c] = *cell(t, r, c, m);
        s[r] = (PlotSeries){t->methods[r], t->ncol, t->sweep_values, ys + r * t->ncol};
    }
    const char *ylabel = strcmp(metric, "HS") == 0 ? "Harmful score (%)" : strcmp(metric, "FA") == 0 ? "Fine-tune accuracy (%)" : metric;
    char title[512];
    snprintf(title, sizeof title, "%s: %s", t->title, metric);
    int rc = plot_svg(path, title, t->sweep, ylabel, s, t->nrow, e);
    free(ys);
    free(s);
    return rc;
}
