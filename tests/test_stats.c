// Statistics over seeds (src/eval/stats.c) against independent computations written here:
// published Student t table values, the t density integrated numerically (Simpson's rule
// over lgamma's normalising constant), and mean / sd / interval of fixed numbers worked out
// by hand. tests/oracle/test_stats_mpmath.py checks the same against mpmath at 30 digits.
#include <math.h>

#include "eval/stats.h"
#include "testing.h"

// Two-sided critical values t_{0.975, df} and t_{0.995, df} as printed in standard tables
// (3 decimals; e.g. NIST/SEMATECH e-Handbook table 1.3.6.7.2).
static const struct { int df; double t95, t99; } TABLE[] = {
    {1, 12.706, 63.657}, {2, 4.303, 9.925}, {3, 3.182, 5.841}, {4, 2.776, 4.604}, {5, 2.571, 4.032},
    {6, 2.447, 3.707},   {7, 2.365, 3.499}, {8, 2.306, 3.355}, {9, 2.262, 3.250}, {10, 2.228, 3.169},
    {15, 2.131, 2.947},  {20, 2.086, 2.845}, {30, 2.042, 2.750}, {60, 2.000, 2.660}, {100, 1.984, 2.626},
};

// P(|T| <= t) = 2 * integral_0^t of the t density, by Simpson's rule on 20000 intervals.
static double two_sided_by_integration(double t, int df) {
    double nu = df, logc = lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * log(nu * M_PI);
    int n = 20000;
    double h = t / n, sum = 0;
    for (int i = 0; i <= n; i++) {
        double x = i * h, f = exp(logc - (nu + 1) / 2 * log1p(x * x / nu));
        sum += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
    }
    return 2 * sum * h / 3;
}

static void test_t_table(void) {
    for (size_t i = 0; i < sizeof TABLE / sizeof *TABLE; i++) {
        double a = stats_t_critical(0.95, TABLE[i].df), b = stats_t_critical(0.99, TABLE[i].df);
        CHECK(fabs(a - TABLE[i].t95) <= 5e-4 && fabs(b - TABLE[i].t99) <= 5e-4, "df %d: %.5f %.5f want %.3f %.3f",
              TABLE[i].df, a, b, TABLE[i].t95, TABLE[i].t99);
    }
    // closed forms: df 1 is Cauchy (tan(pi/2 level)), df 2 is t = level sqrt(2 / (1 - level^2))
    for (double lv = 0.5; lv < 0.999; lv += 0.0625) {
        CHECK(close_enough(stats_t_critical(lv, 1), tan(M_PI / 2 * lv), 1e-12, 0), "df 1 level %g", lv);
        CHECK(close_enough(stats_t_critical(lv, 2), lv * sqrt(2 / (1 - lv * lv)), 1e-12, 0), "df 2 level %g", lv);
    }
    CHECK(isnan(stats_t_critical(0.95, 0)) && isnan(stats_t_critical(1.0, 3)) && isnan(stats_t_critical(0, 3)),
          "bad arguments give NAN");
}

static void test_t_integration(void) {
    for (int df = 1; df <= 64; df += df < 8 ? 1 : 7) {
        double q = stats_t_critical(0.95, df);
        CHECK(fabs(two_sided_by_integration(q, df) - 0.95) < 1e-9, "df %d: P(|T| <= %.6f) = %.12f", df, q,
              two_sided_by_integration(q, df));
        for (double t = 0.25; t < 8; t *= 2)
            CHECK(fabs(stats_t_two_sided(t, df) - two_sided_by_integration(t, df)) < 1e-9, "df %d t %g: %.12f vs %.12f",
                  df, t, stats_t_two_sided(t, df), two_sided_by_integration(t, df));
    }
}

static void test_spread_and_interval(void) {
    // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum to 32, sample sd sqrt(32/7)
    double x[8] = {2, 4, 4, 4, 5, 5, 7, 9};
    Spread s = stats_spread(x, 8);
    CHECK(s.n == 8 && s.mean == 5 && close_enough(s.sd, sqrt(32.0 / 7), 1e-15, 0), "spread %g %g", s.mean, s.sd);
    s = stats_spread(x, 1);
    CHECK(s.n == 1 && s.mean == 2 && isnan(s.sd), "one value: no sd");
    s = stats_spread(x, 0);
    CHECK(s.n == 0 && isnan(s.mean) && isnan(s.sd), "no values");
    // Paired differences of three seeds: Vaccine - SFT = 32-50, 24-35, 30-41 = -18, -11, -11.
    // mean -40/3; deviations -14/3, 7/3, 7/3 -> sum of squares 294/9, variance 49/3, sd 7/sqrt(3);
    // half-width t_{0.975,2} sd / sqrt(3) = 4.302652729749464 * 7/3 (t from mpmath, 16 digits).
    double d[3] = {32 - 50, 24 - 35, 30 - 41};
    TInterval ti = stats_t_interval(d, 3, 0.95);
    double half = 4.302652729749464 * 7 / 3;
    CHECK(ti.n == 3 && close_enough(ti.mean, -40.0 / 3, 1e-15, 0) && close_enough(ti.sd, 7 / sqrt(3.0), 1e-15, 0),
          "mean %g sd %g", ti.mean, ti.sd);
    CHECK(close_enough(ti.lo, -40.0 / 3 - half, 1e-12, 0) && close_enough(ti.hi, -40.0 / 3 + half, 1e-12, 0),
          "interval [%.12f, %.12f] want [%.12f, %.12f]", ti.lo, ti.hi, -40.0 / 3 - half, -40.0 / 3 + half);
    // two seeds: df 1, t = 12.706204736174696 (tan(0.475 pi))
    double d2[2] = {-5, 1};  // mean -2, sd sqrt(18), half = t sqrt(18)/sqrt(2) = 3 t
    ti = stats_t_interval(d2, 2, 0.95);
    CHECK(close_enough(ti.lo, -2 - 3 * 12.706204736174696, 1e-12, 0) && close_enough(ti.hi, -2 + 3 * 12.706204736174696, 1e-12, 0),
          "two seeds [%g, %g]", ti.lo, ti.hi);
    ti = stats_t_interval(d2, 1, 0.95);
    CHECK(ti.n == 1 && ti.mean == -5 && isnan(ti.lo) && isnan(ti.hi), "one seed: no interval");
}

int main(void) {
    test_t_table();
    test_t_integration();
    test_spread_and_interval();
    TEST_SUMMARY();
}
