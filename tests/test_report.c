// Results tables (Markdown, CSV, JSON, text) and SVG plots: exact contents for a small
// table, scaled polyline coordinates, escaping, and that the SVG is well-formed XML.
#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "eval/report.h"
#include "util/atomic.h"
#include "util/progress.h"
#include "testing.h"

// Two seeds (1 and 2), p = 0 and 0.1. Vaccine's FA at p = 0.1 is missing for seed 1.
static Table *demo_table(void) {
    double p[2] = {0, 0.1};
    uint64_t seeds[2] = {1, 2};
    Table *t = table_new("Demo", "p", 2, p, 2, seeds);
    static const struct { const char *method, *metric; double v[2][2]; } V[] = {  // v[seed][col]
        {"SFT", "HS", {{30, 50}, {40, 60}}},
        {"SFT", "FA", {{90, 94}, {92, 96}}},
        {"Vaccine", "HS", {{10, 20.5}, {20, 34.5}}},
        {"Vaccine", "FA", {{88, NAN}, {86, 90}}},
    };
    for (int i = 0; i < 4; i++)
        for (int s = 0; s < 2; s++)
            for (int c = 0; c < 2; c++)
                if (!isnan(V[i].v[s][c])) table_set(t, V[i].method, seeds[s], c, V[i].metric, V[i].v[s][c]);
    return t;
}

// Worked out by hand from the numbers above: e.g. Vaccine HS Avg is 15.25 (seed 1) and 27.25
// (seed 2): mean 21.25, sd 12/sqrt(2) = 8.49; its difference to SFT at p = 0.1 is -29.5 and
// -25.5: mean -27.5, sd 2 sqrt(2), half-width t_{0.975,1} 2 sqrt(2) / sqrt(2) = 2 x 12.7062.
static const char *MD =
    "## Demo\n\n"
    "### HS: harmful score (%, lower is better)\n\n"
    "| Methods | p=0 | p=0.1 | Avg |\n"
    "|---|---:|---:|---:|\n"
    "| SFT | 35.00 ± 7.07 (2) | 55.00 ± 7.07 (2) | 45.00 ± 7.07 (2) |\n"
    "| Vaccine | 15.00 ± 7.07 (2) | 27.50 ± 9.90 (2) | 21.25 ± 8.49 (2) |\n\n"
    "### FA: fine-tune accuracy (%, higher is better)\n\n"
    "| Methods | p=0 | p=0.1 | Avg |\n"
    "|---|---:|---:|---:|\n"
    "| SFT | 91.00 ± 1.41 (2) | 95.00 ± 1.41 (2) | 93.00 ± 1.41 (2) |\n"
    "| Vaccine | 87.00 ± 1.41 (2) | 90.00 (1) | 88.00 (1) |\n\n"
    "### HS: difference against SFT (95% t interval over seeds)\n\n"
    "| Methods | p=0 | p=0.1 | Avg |\n"
    "|---|---:|---:|---:|\n"
    "| Vaccine | -20.00 [-20.00, -20.00] (2) | -27.50 [-52.91, -2.09] (2) | -23.75 [-36.46, -11.04] (2) |\n\n"
    "### FA: difference against SFT (95% t interval over seeds)\n\n"
    "| Methods | p=0 | p=0.1 | Avg |\n"
    "|---|---:|---:|---:|\n"
    "| Vaccine | -4.00 [-29.41, +21.41] (2) | -6.00 (1) | -6.00 (1) |\n\n"
    "Cells: mean ± sample standard deviation (number of seeds) over the 2 seeds 1, 2. Avg: each seed's mean over "
    "the p columns, then mean ± sd over the seeds.\n"
    "Differences: each seed's value minus the baseline's value of the same seed; mean [95% Student t interval over "
    "seeds: mean ± t(0.975, n-1) sd/sqrt(n)] (n).\n"
    "data: paper-faithful (train/eval prompt overlap kept)\n";

static const char *CSV =
    "method,p,seed,HS,FA\n"
    "SFT,0,1,30,90\n"
    "SFT,0,2,40,92\n"
    "SFT,0.1,1,50,94\n"
    "SFT,0.1,2,60,96\n"
    "Vaccine,0,1,10,88\n"
    "Vaccine,0,2,20,86\n"
    "Vaccine,0.1,1,20.5,\n"
    "Vaccine,0.1,2,34.5,90\n";

static void first_diff(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    fprintf(stderr, "  differ at byte %zu: got \"%.40s\" want \"%.40s\"\n", i, a + i, b + i);
}

// The sample sd of two values is |a - b| / sqrt(2); t_{0.975,1} = tan(0.475 pi).
static void test_aggregates(void) {
    Table *t = demo_table();
    double r2 = sqrt(2.0), t1 = tan(0.475 * M_PI);
    CHECK(table_get(t, "SFT", 2, 1, "FA") == 96 && isnan(table_get(t, "Vaccine", 1, 1, "FA")) &&
              isnan(table_get(t, "X", 1, 0, "HS")) && isnan(table_get(t, "SFT", 3, 0, "HS")),
          "get");
    CHECK(table_set(t, "SFT", 3, 0, "HS", 1) < 0 && table_set(t, "SFT", 1, 2, "HS", 1) < 0, "unknown seed or column");
    Spread s = table_spread(t, "SFT", 0, "HS");
    CHECK(s.n == 2 && s.mean == 35 && close_enough(s.sd, 10 / r2, 1e-15, 0), "SFT HS p=0: %g %g", s.mean, s.sd);
    s = table_spread(t, "Vaccine", TABLE_AVG, "HS");  // per seed (10 + 20.5)/2, (20 + 34.5)/2
    CHECK(s.n == 2 && s.mean == 21.25 && close_enough(s.sd, 12 / r2, 1e-15, 0), "Vaccine HS Avg: %g %g", s.mean, s.sd);
    s = table_spread(t, "Vaccine", TABLE_AVG, "FA");  // seed 1 lacks p = 0.1: only seed 2's (86 + 90)/2
    CHECK(s.n == 1 && s.mean == 88 && isnan(s.sd), "Vaccine FA Avg: n %d mean %g", s.n, s.mean);
    TInterval d = table_paired(t, "Vaccine", "SFT", 1, "HS");  // -29.5, -25.5
    CHECK(d.n == 2 && d.mean == -27.5 && close_enough(d.sd, 2 * r2, 1e-15, 0), "diff %g %g", d.mean, d.sd);
    CHECK(close_enough(d.lo, -27.5 - 2 * t1, 1e-12, 0) && close_enough(d.hi, -27.5 + 2 * t1, 1e-12, 0),
          "interval [%.10f, %.10f]", d.lo, d.hi);
    d = table_paired(t, "Vaccine", "SFT", TABLE_AVG, "HS");  // 15.25 - 40, 27.25 - 50
    CHECK(d.n == 2 && d.mean == -23.75 && close_enough(d.hi, -23.75 + t1, 1e-12, 0), "avg diff %g %g", d.mean, d.hi);
    d = table_paired(t, "Vaccine", "SFT", 1, "FA");  // seed 2 only
    CHECK(d.n == 1 && d.mean == -6 && isnan(d.lo), "one pair: no interval");
    d = table_paired(t, "Vaccine", "nobody", 0, "HS");
    CHECK(d.n == 0 && isnan(d.mean), "unknown baseline");
    table_free(t);
}

static void test_table(const char *dir) {
    Table *t = demo_table();
    table_set_note(t, "data: paper-faithful (train/eval prompt overlap kept)");
    table_compare(t, "Vaccine", "SFT");
    char path[512];
    Err e = {0};
    size_t n;
    struct { const char *ext, *want; int (*w)(const Table *, const char *, Err *); } outs[] = {
        {"md", MD, table_write_markdown}, {"csv", CSV, table_write_csv}};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/table.%s", dir, outs[i].ext);
        CHECK(outs[i].w(t, path, &e) == 0, "%s", e.msg);
        char *got = read_file(path, &n, &e);
        int same = got && strcmp(got, outs[i].want) == 0;
        CHECK(same, "%s contents", outs[i].ext);
        if (got && !same) first_diff(got, outs[i].want);
        free(got);
    }
    // JSON: per-seed values, aggregates and the comparison, read back
    snprintf(path, sizeof path, "%s/table.json", dir);
    CHECK(table_write_json(t, path, &e) == 0, "%s", e.msg);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK(j != NULL, "json: %s", je.text);
    json_t *seeds = json_object_get(j, "seeds"), *rows = json_object_get(j, "rows"), *cmp = json_object_get(j, "comparisons");
    CHECK(json_array_size(seeds) == 2 && json_integer_value(json_array_get(seeds, 1)) == 2, "json seeds");
    json_t *vfa = json_object_get(json_array_get(json_object_get(json_array_get(rows, 1), "cells"), 1), "FA");
    CHECK(json_real_value(json_object_get(vfa, "mean")) == 90 && json_is_null(json_object_get(vfa, "sd")) &&
              json_integer_value(json_object_get(vfa, "n")) == 1 &&
              json_is_null(json_array_get(json_object_get(vfa, "per_seed"), 0)) &&
              json_real_value(json_array_get(json_object_get(vfa, "per_seed"), 1)) == 90,
          "json cell with a missing seed");
    json_t *avg = json_object_get(json_object_get(json_array_get(cmp, 0), "average"), "HS");
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(cmp, 0), "baseline")), "SFT") &&
              json_real_value(json_object_get(avg, "mean")) == -23.75 &&
              close_enough(json_real_value(json_object_get(avg, "lo")), -23.75 - tan(0.475 * M_PI), 1e-11, 0),
          "json comparison");
    json_decref(j);
    // aligned text: one block per metric, body rows as wide as the header ("±" is one column)
    char *txt = table_text(t);
    table_show_differences(t, "HS");
    char *only_hs = table_text(t);
    CHECK(strstr(only_hs, "HS: difference against SFT") && !strstr(only_hs, "FA: difference against SFT") &&
              strstr(only_hs, "FA: fine-tune accuracy"), "differences shown for HS only");
    free(only_hs);
    table_show_differences(t, NULL);
    const char *h = strstr(txt, "\nMethods");
    CHECK(h && strstr(txt, "HS: harmful score") && strstr(txt, "HS: difference against SFT"), "text blocks");
    if (h) {
        const char *l1 = h + 1, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1, *l4 = strchr(l3, '\n') + 1;
        // "±" is 2 bytes in 1 column: each body row holds three, so 3 bytes more than the header
        CHECK(l2 - l1 + 3 == l3 - l2 && l3 - l2 == l4 - l3, "text rows aligned");
        CHECK(strncmp(l2, "SFT      35.00 ± 7.07 (2)", 26) == 0, "text row: %.40s", l2);
    }
    free(txt);
    // CSV quoting of awkward names
    table_set(t, "a, \"b\"", 1, 0, "HS", 1);
    char *csv = table_csv(t);
    CHECK(strstr(csv, "\n\"a, \"\"b\"\"\",0,1,1,\n") != NULL, "csv quoting: %s", csv);
    free(csv);
    // writing into a missing directory fails with the path named
    snprintf(path, sizeof path, "%s/no/such/dir/t.md", dir);
    CHECK(table_write_markdown(t, path, &e) != 0 && strstr(e.msg, path), "error names the file: %s", e.msg);
    table_free(t);
}

// Minimal well-formedness check: tags nest and match, attributes are name="value",
// text holds no raw '<' and only known entities.
static int xml_ok(const char *s, int *n_elems) {
    const char *stack[64];
    size_t len[64];
    int depth = 0, roots = 0;
    *n_elems = 0;
    while (*s) {
        if (*s == '<') {
            if (s[1] == '?') {
                s = strstr(s, "?>");
                if (!s) return 0;
                s += 2;
                continue;
            }
            int closing = s[1] == '/';
            const char *name = s + 1 + closing;
            size_t nl = strspn(name, "abcdefghijklmnopqrstuvwxyz");
            if (nl == 0) return 0;
            const char *p = name + nl;
            if (closing) {
                if (depth == 0 || len[depth - 1] != nl || strncmp(stack[depth - 1], name, nl) != 0 || *p != '>') return 0;
                depth--;
                s = p + 1;
                continue;
            }
            for (;;) {
                p += strspn(p, " \n");
                if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
                size_t an = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:");
                if (an == 0 || p[an] != '=' || p[an + 1] != '"') return 0;
                const char *end = strchr(p + an + 2, '"');
                if (!end || memchr(p + an + 2, '<', (size_t)(end - p - an - 2))) return 0;
                p = end + 1;
            }
            (*n_elems)++;
            if (depth == 0) roots++;
            if (*p == '>') {
                if (depth == 64) return 0;
                stack[depth] = name, len[depth] = nl, depth++;
                s = p + 1;
            } else {
                s = p + 2;
            }
        } else if (*s == '&') {
            if (strncmp(s, "&lt;", 4) && strncmp(s, "&gt;", 4) && strncmp(s, "&amp;", 5) && strncmp(s, "&quot;", 6)) return 0;
            s++;
        } else {
            if (depth == 0 && *s != '\n' && *s != ' ') return 0;
            s++;
        }
    }
    return depth == 0 && roots == 1;
}

static int count(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub)) n++;
    return n;
}

static void test_svg(const char *dir) {
    double x[4] = {0, 0.05, 0.1, 0.2}, ya[4] = {10, 20, 30, 40}, yb[4] = {5, 15, NAN, 35};
    PlotSeries s[2] = {{"SFT", 4, x, ya}, {"Vaccine <ours> & co", 4, x, yb}};
    char *svg = plot_svg_string("HS <vs> p & more", "p", "Harmful score (%)", s, 2);
    int elems;
    CHECK(xml_ok(svg, &elems), "SVG is not well-formed");
    CHECK(elems > 30, "%d elements", elems);
    CHECK(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""), "svg root");
    CHECK(count(svg, "<polyline") == 2, "two polylines");
    // y range 5..40 widens to 0..40 in steps of 10; x range 0..0.2 in steps of 0.05.
    // x -> 70 + x/0.2*410, y -> 350 - y/40*310
    CHECK(strstr(svg, "points=\"70.00,272.50 172.50,195.00 275.00,117.50 480.00,40.00\"") != NULL, "series A coordinates");
    CHECK(strstr(svg, "points=\"70.00,311.25 172.50,233.75 480.00,78.75\"") != NULL, "series B skips NaN");
    // each series its own marker and dash pattern (issue 13 item 10): circles for the first,
    // squares for the second, 4 + 3 points and one in each legend entry
    CHECK(count(svg, "<circle") == 4 + 1 && count(svg, "height=\"8\"") == 3 + 1, "distinct markers");
    CHECK(count(svg, "stroke-dasharray") == 2, "the second series dashed, in the plot and the legend");
    CHECK(strstr(svg, ">0.15</text>") && strstr(svg, ">0.2</text>") && strstr(svg, ">40</text>") && strstr(svg, ">0</text>"), "tick labels");
    CHECK(strstr(svg, "HS &lt;vs&gt; p &amp; more") && strstr(svg, "Vaccine &lt;ours&gt; &amp; co"), "escaping");
    free(svg);
    // error bars: y +- sd with 4-pixel caps, none where sd is NaN; the range covers the bars
    // (8..45 widens to 0..50 in steps of 10): y -> 350 - y/50*310
    double sd[4] = {2, 2, NAN, 5};
    PlotSeries se = {"SFT", 4, x, ya, sd};
    svg = plot_svg_string("bars", "p", "HS", &se, 1);
    CHECK(xml_ok(svg, &elems) && count(svg, "class=\"errorbar\"") == 3, "three error bars");
    char want[256];
    snprintf(want, sizeof want, "d=\"M70.00,%.2f V%.2f M66.00,%.2f H74.00 M66.00,%.2f H74.00\"", 350 - 8 / 50.0 * 310,
             350 - 12 / 50.0 * 310, 350 - 8 / 50.0 * 310, 350 - 12 / 50.0 * 310);
    CHECK(strstr(svg, want) != NULL, "bar at p=0: %s", want);
    CHECK(strstr(svg, ">50</text>") && strstr(svg, "points=\"70.00,288.00 "), "range covers the bars");
    free(svg);
    // degenerate input: one point, constant values
    double one = 0.1, c = 7;
    PlotSeries s1 = {"one", 1, &one, &c};
    svg = plot_svg_string("t", "x", "y", &s1, 1);
    CHECK(xml_ok(svg, &elems) && !strstr(svg, "nan") && !strstr(svg, "inf"), "single point plot");
    free(svg);
    svg = plot_svg_string("empty", "x", "y", NULL, 0);
    CHECK(xml_ok(svg, &elems) && !strstr(svg, "nan"), "empty plot");
    free(svg);
    // from a table, written atomically
    Table *t = demo_table();
    char path[512];
    Err e = {0};
    snprintf(path, sizeof path, "%s/hs.svg", dir);
    CHECK(table_plot_svg(t, "HS", path, &e) == 0, "%s", e.msg);
    size_t n;
    svg = read_file(path, &n, &e);
    CHECK(svg && xml_ok(svg, &elems) && count(svg, "<polyline") == 2 && count(svg, "class=\"errorbar\"") == 4, "table plot");
    // HS: the fixed 0..100 axis in steps of 20 (plots of different runs compare); SFT's means
    // (0, 35) (0.1, 55): y -> 350 - y/100*310
    CHECK(svg && strstr(svg, "points=\"70.00,241.50 480.00,179.50\"") && strstr(svg, ">100</text>"),
          "table plot coordinates on 0-100");
    CHECK(svg && strstr(svg, "mean ± sd over 2 seeds"), "axis label says what the bars are");
    free(svg);
    CHECK(table_plot_svg(t, "XX", path, &e) != 0 && strstr(e.msg, "no metric"), "unknown metric");
    table_free(t);
}

static void test_duration(void) {
    char b[32];
    progress_format_duration(42.4, b, sizeof b);
    CHECK(strcmp(b, "42s") == 0, "%s", b);
    progress_format_duration(185, b, sizeof b);
    CHECK(strcmp(b, "3m05s") == 0, "%s", b);
    progress_format_duration(7620, b, sizeof b);
    CHECK(strcmp(b, "2h07m") == 0, "%s", b);
}

int main(void) {
    char dir[] = "/tmp/antibody-report-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    test_aggregates();
    test_table(dir);
    test_svg(dir);
    test_duration();
    const char *files[] = {"table.md", "table.csv", "table.json", "hs.svg"};
    char p[600];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    TEST_SUMMARY();
}
