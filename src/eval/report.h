// Results tables and plots in the layout of the Vaccine / Antidote papers (docs/methods.md, Evaluation; docs/pipeline.md, Outputs),
// aggregated over seeds (docs/statistics.md): rows = methods, columns = one swept setting
// (harmful ratio p, sample count n, lr, epochs), each cell holding per-seed values of metrics
// by name ("HS" harmful score, "FA" fine-tune accuracy, others). Cells are shown as
// mean ± sample sd (number of seeds); "Avg" is each seed's mean over the columns, then
// mean ± sd over the seeds. Comparisons: the paired difference of a method against a
// baseline (e.g. Vaccine - SFT) seed by seed, with its 95% Student t interval over seeds.
// Writers: Markdown, CSV (one row per method, column and seed), JSON (per-seed values,
// aggregates, comparisons), aligned text, and SVG plots (mean with ± sd error bars). Files are
// written atomically.
#pragma once
#include <stdint.h>

#include "eval/stats.h"
#include "util/err.h"

typedef struct Table Table;

#define TABLE_AVG (-1)         // the column index of the average over the sweep columns
#define TABLE_CI_LEVEL 0.95    // the comparisons' interval: two-sided 95% t interval over seeds

// seeds: the runs' seeds (n_seeds >= 1), in the order the per-seed values are listed.
Table *table_new(const char *title, const char *sweep_name, int n_cols, const double *sweep_values, int n_seeds,
                 const uint64_t *seeds);
void table_free(Table *t);
// The value of the run of seed `seed`. Rows and metrics appear in the order first set; col
// 0..n_cols-1 and a seed of the table, anything else is ignored (returns -1).
int table_set(Table *t, const char *method, uint64_t seed, int col, const char *metric, double value);
// NAN when never set.
double table_get(const Table *t, const char *method, uint64_t seed, int col, const char *metric);
// Mean, sd and n over the seeds that have a value; col may be TABLE_AVG (a seed counts
// there only when every column of it is set).
Spread table_spread(const Table *t, const char *method, int col, const char *metric);
// The differences method - baseline of the seeds where both are set, and their t interval
// at TABLE_CI_LEVEL; col may be TABLE_AVG.
TInterval table_paired(const Table *t, const char *method, const char *baseline, int col, const char *metric);
// Lists "method against baseline" under the table and in the JSON (in the order added).
void table_compare(Table *t, const char *method, const char *baseline);
// The metrics (comma-separated, e.g. "HS,FA") whose differences the text and Markdown show;
// NULL (the default) = every metric. The JSON always has every metric.
void table_show_differences(Table *t, const char *metrics);
// A line printed under the table (e.g. which data setting was used); copied.
void table_set_note(Table *t, const char *note);

// The rendered text (malloc'd), and the same written to a file.
char *table_markdown(const Table *t);
char *table_csv(const Table *t);
char *table_json(const Table *t);
int table_write_markdown(const Table *t, const char *path, Err *e);
int table_write_csv(const Table *t, const char *path, Err *e);
int table_write_json(const Table *t, const char *path, Err *e);
// The table as plain text with aligned columns (what the command line prints); malloc'd.
char *table_text(const Table *t);

// One line with markers per series; NaN y values are left out. sd (may be NULL): error bars
// of y ± sd where sd is finite. Axes get "nice" ranges (steps of 1, 2,
// 2.5 or 5 x 10^k covering the data and the bars).
typedef struct {
    const char *name;
    int n;
    const double *x, *y, *sd;
} PlotSeries;

// Plot geometry (pixels), for readers of the SVG and for the tests.
enum { PLOT_W = 640, PLOT_H = 400, PLOT_LEFT = 70, PLOT_RIGHT = 480, PLOT_TOP = 40, PLOT_BOTTOM = 350 };

char *plot_svg_string(const char *title, const char *xlabel, const char *ylabel, const PlotSeries *s, int n_series);
int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const PlotSeries *s, int n_series, Err *e);
// A training stage's loss curve (curve[i] = loss of optimizer step i + 1).
int plot_loss_svg(const float *curve, int n, const char *title, const char *path, Err *e);
// One metric of a table against its sweep: one line per method through the means over
// seeds, with ± sd error bars.
int table_plot_svg(const Table *t, const char *metric, const char *path, Err *e);
