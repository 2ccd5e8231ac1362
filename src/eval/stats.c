// Statistics over seeds (docs/statistics.md): mean, sample sd, Student t intervals.
#include "eval/stats.h"

#include <math.h>

Spread stats_spread(const double *x, int n) {
    Spread s = {n > 0 ? n : 0, NAN, NAN};
    if (n <= 0) return s;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    s.mean = sum / n;
    if (n < 2) return s;
    double ss = 0;  // two passes: the squares of the deviations, not sum x^2 - n mean^2
    for (int i = 0; i < n; i++) ss += (x[i] - s.mean) * (x[i] - s.mean);
    s.sd = sqrt(ss / (n - 1));
    return s;
}

// With theta = atan(t / sqrt(df)), c = cos^2 theta:
//   df odd:  (2/pi) (theta + sin theta cos theta (1 + 2/3 c + 2*4/(3*5) c^2 + ...))   (df - 1)/2 terms
//   df even: sin theta (1 + 1/2 c + 1*3/(2*4) c^2 + ...)                               df/2 terms
double stats_t_two_sided(double t, int df) {
    if (df < 1 || isnan(t)) return NAN;
    t = fabs(t);
    double theta = isinf(t) ? M_PI / 2 : atan(t / sqrt((double)df));
    double s = sin(theta), c = cos(theta), c2 = c * c;
    if (df % 2 == 1) {
        if (df == 1) return 2 * theta / M_PI;
        double term = c, sum = c;
        for (int k = 3; k <= df - 2; k += 2) {
            term *= c2 * (k - 1) / k;
            sum += term;
        }
        return 2 / M_PI * (theta + s * sum);
    }
    double term = 1, sum = 1;
    for (int k = 2; k <= df - 2; k += 2) {
        term *= c2 * (k - 1) / k;
        sum += term;
    }
    return s * sum;
}

double stats_t_critical(double level, int df) {
    if (df < 1 || !(level > 0 && level < 1)) return NAN;
    double lo = 0, hi = 1;
    while (stats_t_two_sided(hi, df) < level) {  // the two-sided probability rises to 1 with t
        lo = hi;
        hi *= 2;
        if (hi > 1e300) return NAN;
    }
    for (int i = 0; i < 2000; i++) {  // bisection to the last bit
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (stats_t_two_sided(mid, df) < level) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

TInterval stats_t_interval(const double *x, int n, double level) {
    Spread s = stats_spread(x, n);
    TInterval r = {s.n, s.mean, s.sd, NAN, NAN};
    if (s.n < 2) return r;
    double half = stats_t_critical(level, s.n - 1) * s.sd / sqrt((double)s.n);
    r.lo = s.mean - half;
    r.hi = s.mean + half;
    return r;
}
