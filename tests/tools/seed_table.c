// Driver for tests/oracle/test_stats_mpmath.py: builds a results table from per-seed values
// and prints its JSON (aggregates and paired intervals) with Student t critical values.
// Usage: build/tools/seed_table JOB.json
//   "sweep_values": [...], "seeds": [...], "values": [[method, seed, col, metric, value], ...],
//   "compare": [[method, baseline], ...], "t": [[level, df], ...]
// Prints {"table": <table_json>, "t_critical": [...]}.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval/report.h"

int main(int argc, char **argv) {
    json_error_t je;
    json_t *job = argc == 2 ? json_load_file(argv[1], 0, &je) : NULL;
    if (!job) { fprintf(stderr, "usage: seed_table JOB.json (%s)\n", argc == 2 ? je.text : "no job"); return 2; }
    json_t *sv = json_object_get(job, "sweep_values"), *sd = json_object_get(job, "seeds");
    int ncol = (int)json_array_size(sv), nseed = (int)json_array_size(sd);
    double *cols = xmalloc((size_t)(ncol + 1) * sizeof(double));
    uint64_t *seeds = xmalloc((size_t)(nseed + 1) * sizeof(uint64_t));
    for (int i = 0; i < ncol; i++) cols[i] = json_number_value(json_array_get(sv, (size_t)i));
    for (int i = 0; i < nseed; i++) seeds[i] = (uint64_t)json_integer_value(json_array_get(sd, (size_t)i));
    Table *t = table_new("oracle", "p", ncol, cols, nseed, seeds);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(job, "values"), i, v)
        table_set(t, json_string_value(json_array_get(v, 0)), (uint64_t)json_integer_value(json_array_get(v, 1)),
                  (int)json_integer_value(json_array_get(v, 2)), json_string_value(json_array_get(v, 3)),
                  json_number_value(json_array_get(v, 4)));
    json_array_foreach(json_object_get(job, "compare"), i, v)
        table_compare(t, json_string_value(json_array_get(v, 0)), json_string_value(json_array_get(v, 1)));
    json_t *out = json_object(), *tc = json_array();
    char *tj = table_json(t);
    json_object_set_new(out, "table", json_loads(tj, 0, NULL));
    free(tj);
    json_array_foreach(json_object_get(job, "t"), i, v)
        json_array_append_new(tc, json_real(stats_t_critical(json_number_value(json_array_get(v, 0)),
                                                             (int)json_integer_value(json_array_get(v, 1)))));
    json_object_set_new(out, "t_critical", tc);
    json_dumpf(out, stdout, JSON_REAL_PRECISION(17));
    printf("\n");
    json_decref(out);
    json_decref(job);
    table_free(t);
    free(cols);
    free(seeds);
    return 0;
}
