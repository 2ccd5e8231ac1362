// Results tables (Markdown, CSV, JSON, text) and SVG plots: exact contents for a small
// table, scaled polyline coordinates, escaping, and that the SVG is well-formed XML.
#include <math.h>
#include <unistd.h>

#include "eval/report.h"
#include "io/atomic.h"
#include "util/progress.h"
#include "testing.h"

static Table *demo_table(void) {
    double p[2] = {0, 0.1};
    Table *t = table_new("Demo", "p", 2, p);
    table_set(t, "SFT", 0, "HS", 30);
    table_set(t, "SFT", 1, "HS", 50);
    table_set(t, "SFT", 0, "FA", 90);
    table_set(t, "SFT", 1, "FA", 94);
    table_set(t, "Vaccine", 0, "HS", 10);
    table_set(t, "Vaccine", 1, "HS", 20.5);
    table_set(t, "Vaccine", 0, "FA", 88);  // FA at p=0.1 left unset
    table_set(t, "Vaccine", 7, "FA", 1);   // out of range: ignored
    return t;
}

static const char *MD =
    "## Demo\n\n"
    "| Methods | HS p=0 | HS p=0.1 | HS Avg | FA p=0 | FA p=0.1 | FA Avg |\n"
    "|---|---:|---:|---:|---:|---:|---:|\n"
    "| SFT | 30.00 | 50.00 | 40.00 | 90.00 | 94.00 | 92.00 |\n"
    "| Vaccine | 10.00 | 20.50 | 15.25 | 88.00 | - | - |\n\n"
    "HS: harmful score (%, lower is better). FA: fine-tune accuracy (%, higher is better). "
    "Avg: mean over the p columns.\n"
    "data: paper-faithful (train/eval prompt overlap kept)\n";

static const char *CSV =
    "method,p,HS,FA\n"
    "SFT,0,30,90\n"
    "SFT,0.1,50,94\n"
    "Vaccine,0,10,88\n"
    "Vaccine,0.1,20.5,\n";

static const char *JSON =
    "{\n"
    "  \"title\": \"Demo\",\n"
    "  \"sweep\": \"p\",\n"
    "  \"sweep_values\": [\n    0.0,\n    0.1\n  ],\n"
    "  \"metrics\": [\n    \"HS\",\n    \"FA\"\n  ],\n"
    "  \"note\": \"data: paper-faithful (train/eval prompt overlap kept)\",\n"
    "  \"rows\": [\n"
    "    {\n      \"method\": \"SFT\",\n      \"cells\": [\n"
    "        {\n          \"p\": 0.0,\n          \"HS\": 30.0,\n          \"FA\": 90.0\n        },\n"
    "        {\n          \"p\": 0.1,\n          \"HS\": 50.0,\n          \"FA\": 94.0\n        }\n      ],\n"
    "      \"average\": {\n        \"HS\": 40.0,\n        \"FA\": 92.0\n      }\n    },\n"
    "    {\n      \"method\": \"Vaccine\",\n      \"cells\": [\n"
    "        {\n          \"p\": 0.0,\n          \"HS\": 10.0,\n          \"FA\": 88.0\n        },\n"
    "        {\n          \"p\": 0.1,\n          \"HS\": 20.5,\n          \"FA\": null\n        }\n      ],\n"
    "      \"average\": {\n        \"HS\": 15.25,\n        \"FA\": null\n      }\n    }\n"
    "  ]\n}\n";

static void first_diff(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    fprintf(stderr, "  differ at byte %zu: got \"%.40s\" want \"%.40s\"\n", i, a + i, b + i);
}

static void test_table(const char *dir) {
    Table *t = demo_table();
    table_set_note(t, "data: paper-faithful (train/eval prompt overlap kept)");
    CHECK(table_get(t, "SFT", 1, "FA") == 94 && isnan(table_get(t, "Vaccine", 1, "FA")) && isnan(table_get(t, "X", 0, "HS")), "get");
    CHECK(table_average(t, "Vaccine", "HS") == 15.25 && isnan(table_average(t, "Vaccine", "FA")), "average");
    char path[512];
    Err e = {0};
    size_t n;
    struct { const char *ext, *want; int (*w)(const Table *, const char *, Err *); } outs[] = {
        {"md", MD, table_write_markdown}, {"csv", CSV, table_write_csv}, {"json", JSON, table_write_json}};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/table.%s", dir, outs[i].ext);
        CHECK(outs[i].w(t, path, &e) == 0, "%s", e.msg);
        char *got = read_file(path, &n, &e);
        int same = got && strcmp(got, outs[i].want) == 0;
        CHECK(same, "%s contents", outs[i].ext);
        if (got && !same) first_diff(got, outs[i].want);
        free(got);
    }
    // aligned text: every line of the body has the same width as the header
    snprintf(path, sizeof path, "%s/table.txt", dir);
    FILE *f = fopen(path, "w");
    table_print(t, f);
    fclose(f);
    char *txt = read_file(path, &n, &e);
    char *l1 = strchr(txt, '\n') + 1, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1, *l4 = strchr(l3, '\n') + 1;
    CHECK(l2 - l1 == l3 - l2 && l3 - l2 == l4 - l3, "text rows aligned");
    CHECK(strncmp(l1, "Methods  HS p=0  HS p=0.1  HS Avg", 33) == 0, "text header: %.40s", l1);
    CHECK(strncmp(l3, "Vaccine   10.00     20.50   15.25", 33) == 0, "text row: %.40s", l3);
    free(txt);
    // CSV quoting of awkward names
    table_set(t, "a, \"b\"", 0, "HS", 1);
    char *csv = table_csv(t);
    CHECK(strstr(csv, "\n\"a, \"\"b\"\"\",0,1,\n") != NULL, "csv quoting: %s", csv);
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
    CHECK(count(svg, "<circle") == 7 + 2, "markers: 7 points + 2 legend");
    CHECK(strstr(svg, ">0.15</text>") && strstr(svg, ">0.2</text>") && strstr(svg, ">40</text>") && strstr(svg, ">0</text>"), "tick labels");
    CHECK(strstr(svg, "HS &lt;vs&gt; p &amp; more") && strstr(svg, "Vaccine &lt;ours&gt; &amp; co"), "escaping");
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
    CHECK(svg && xml_ok(svg, &elems) && count(svg, "<polyline") == 2, "table plot");
    // HS 10..50 in steps of 10 (not widened to 0); x 0..0.1 in steps of 0.02: SFT (0,30) (0.1,50)
    CHECK(svg && strstr(svg, "points=\"70.00,195.00 480.00,40.00\""), "table plot coordinates");
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
    test_table(dir);
    test_svg(dir);
    test_duration();
    const char *files[] = {"table.md", "table.csv", "table.json", "table.txt", "hs.svg"};
    char p[600];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    TEST_SUMMARY();
}
