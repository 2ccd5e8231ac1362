// Results tables and plots in the layout of the Vaccine / Antidote papers (SPEC sections 8-9):
// rows = methods, columns = one swept setting (harmful ratio p, sample count n, lr, epochs),
// each cell holding metrics by name ("HS" harmful score, "FA" fine-tune accuracy, others).
// Writers: Markdown (metric groups with an average column, like the papers), CSV (one row
// per method and column), JSON (everything), aligned text, and SVG line plots. Files are
// written atomically.
#pragma once
#include <stdio.h>

#include "util/err.h"

typedef struct Table Table;

Table *table_new(const char *title, const char *sweep_name, int n_cols, const double *sweep_values);
void table_free(Table *t);
// Rows and metrics appear in the order first set. col is 0..n_cols-1; out of range is ignored.
void table_set(Table *t, const char *method, int col, const char *metric, double value);
// NAN when never set.
double table_get(const Table *t, const char *method, int col, const char *metric);
// Mean over the columns, NAN unless every column of that method/metric is set.
double table_average(const Table *t, const char *method, const char *metric);
// A line printed under the table (e.g. which data setting was used); copied.
void table_set_note(Table *t, const char *note);

// The rendered text (malloc'd), and the same written to a file.
char *table_markdown(const Table *t);
char *table_csv(const Table *t);
char *table_json(const Table *t);
int table_write_markdown(const Table *t, const char *path, Err *e);
int table_write_csv(const Table *t, const char *path, Err *e);
int table_write_json(const Table *t, const char *path, Err *e);
void table_print(const Table *t, FILE *f);

// One line with markers per series; NaN y values are left out. Axes get "nice" ranges
// (steps of 1, 2, 2.5 or 5 x 10^k covering the data).
typedef struct {
    const char *name;
    int n;
    const double *x, *y;
} PlotSeries;

// Plot geometry (pixels), for readers of the SVG and for the tests.
enum { PLOT_W = 640, PLOT_H = 400, PLOT_LEFT = 70, PLOT_RIGHT = 480, PLOT_TOP = 40, PLOT_BOTTOM = 350 };

char *plot_svg_string(const char *title, const char *xlabel, const char *ylabel, const PlotSeries *s, int n_series);
int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const PlotSeries *s, int n_series, Err *e);
// One metric of a table against its sweep, one line per method.
int table_plot_svg(const Table *t, const char *metric, const char *path, Err *e);
