// Statistics over seeds (docs/statistics.md): mean, sample standard deviation, and the
// two-sided Student t interval of a mean, used for the results tables' mean ± sd (n) and
// for the paired differences of each defense against SFT.
#pragma once

// n values; mean NAN when n = 0, sd (n - 1 in the denominator) NAN when n < 2.
typedef struct {
    int n;
    double mean, sd;
} Spread;

Spread stats_spread(const double *x, int n);

// P(|T| <= t) for Student's t with df >= 1 degrees of freedom, t >= 0 (closed form for
// integer df, Abramowitz & Stegun 26.7.3-4).
double stats_t_two_sided(double t, int df);
// The t with P(|T| <= t) = level (0 < level < 1): t_{(1+level)/2, df}; 12.7062 for df 1,
// level 0.95. NAN for df < 1 or level outside (0, 1).
double stats_t_critical(double level, int df);

// The t interval of the mean of x: mean ± t_{(1+level)/2, n-1} sd / sqrt(n). lo and hi
// are NAN when n < 2 (no spread to speak of).
typedef struct {
    int n;
    double mean, sd, lo, hi;
} TInterval;

TInterval stats_t_interval(const double *x, int n, double level);
