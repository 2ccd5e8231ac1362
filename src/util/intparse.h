// Exact integers from text and JSON (docs/reliability.md): the whole input is one integer
// and it must lie in [lo, hi] before it is stored anywhere narrower; nothing is rounded
// through a double, truncated or wrapped. Callers name the key in their own error.
#pragma once
#include <jansson.h>
#include <stdint.h>

enum { INT_OK = 0, INT_NOT_INTEGER = -1, INT_OUT_OF_RANGE = -2 };

// Decimal text with an optional sign, nothing before or after.
int int_parse(const char *s, int64_t lo, int64_t hi, int64_t *out);
// A JSON integer, or a JSON real that is a whole number of magnitude below 2^53 (3.0).
int json_int(const json_t *v, int64_t lo, int64_t hi, int64_t *out);
// "must be an integer" / "must be between LO and HI" for rc (one of the codes above).
const char *int_problem(int rc, int64_t lo, int64_t hi, char *buf, size_t cap);
