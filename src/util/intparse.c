// Exact integer parsing (docs/reliability.md).
#include "util/intparse.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int int_parse(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9'))) return INT_NOT_INTEGER;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s) return INT_NOT_INTEGER;
    if (errno == ERANGE || v < lo || v > hi) return INT_OUT_OF_RANGE;
    *out = v;
    return INT_OK;
}

int json_int(const json_t *v, int64_t lo, int64_t hi, int64_t *out) {
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(fabs(d) < 9007199254740992.0) || d != floor(d)) return INT_NOT_INTEGER;
        x = (int64_t)d;
    } else {
        return INT_NOT_INTEGER;
    }
    if (x < lo || x > hi) return INT_OUT_OF_RANGE;
    *out = x;
    return INT_OK;
}

const char *int_problem(int rc, int64_t lo, int64_t hi, char *buf, size_t cap) {
    if (rc == INT_NOT_INTEGER) snprintf(buf, cap, "must be an integer");
    else snprintf(buf, cap, "must be between %lld and %lld", (long long)lo, (long long)hi);
    return buf;
}
