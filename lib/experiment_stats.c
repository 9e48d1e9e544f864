/*  experiment_stats.c: Wilson intervals, z- and Welch tests (formulas in experiment_stats.h). */
#include "experiment_stats.h"

#include <math.h>

int experiment_stats_wilson(long x, long n, double z, double *lo, double *hi)
{
    if (n <= 0 || x < 0 || x > n || !(z > 0))
        return -1;
    double nn = (double)n, p = (double)x / nn, z2 = z * z;
    double denom = 1 + z2 / nn;
    double centre = (p + z2 / (2 * nn)) / denom;
    double half = z / denom * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    //  Rounding may leave the bounds a hair outside [0, 1] at p = 0 or 1.
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
    return 0;
}

double experiment_stats_normal_p(double z)
{
    return erfc(fabs(z) / sqrt(2.0));
}

int experiment_stats_two_proportion(long x1, long n1, long x2, long n2,
                                    experiment_stats_ztest_t *out)
{
    if (n1 <= 0 || n2 <= 0 || x1 < 0 || x1 > n1 || x2 < 0 || x2 > n2)
        return -1;
    out->p1 = (double)x1 / (double)n1;
    out->p2 = (double)x2 / (double)n2;
    out->diff = out->p2 - out->p1;
    double pooled = (double)(x1 + x2) / (double)(n1 + n2);
    double se = sqrt(pooled * (1 - pooled) * (1.0 / (double)n1 + 1.0 / (double)n2));
    if (!(se > 0)) {
        //  pooled is 0 or 1: both arms converted never or always.
        out->z = 0;
        out->p_value = 1;
        return 0;
    }
    out->z = out->diff / se;
    out->p_value = experiment_stats_normal_p(out->z);
    return 0;
}

//  Continued fraction of the incomplete beta function by the modified
//  Lentz method (Numerical Recipes 6.4, betacf).
static double s_betacf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-15;
    double qab = a + b, qap = a + 1, qam = a - 1;
    double c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps)
            break;
    }
    return h;
}

double experiment_stats_betai(double a, double b, double x)
{
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
        return NAN;
    if (x == 0 || x == 1)
        return x;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    double bt = exp(lbt);
    //  The continued fraction converges fast for x < (a + 1) / (a + b + 2);
    //  use the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
    if (x < (a + 1) / (a + b + 2))
        return bt * s_betacf(a, b, x) / a;
    return 1 - bt * s_betacf(b, a, 1 - x) / b;
}

double experiment_stats_student_p(double t, double df)
{
    if (!(df > 0) || isnan(t))
        return NAN;
    if (isinf(t))
        return 0;
    return experiment_stats_betai(df / 2, 0.5, df / (df + t * t));
}

int experiment_stats_welch(long n1, double m1, double v1, long n2, double m2, double v2,
                           experiment_stats_welch_t *out)
{
    if (n1 < 2 || n2 < 2 || !isfinite(v1) || !isfinite(v2) || v1 < 0 || v2 < 0 || !isfinite(m1) ||
        !isfinite(m2))
        return -1;
    double s1 = v1 / (double)n1, s2 = v2 / (double)n2, se2 = s1 + s2;
    out->diff = m2 - m1;
    if (!(se2 > 0)) {
        //  No spread at all: the means either are or are not equal.
        out->t = out->diff == 0 ? 0 : copysign(INFINITY, out->diff);
        out->df = (double)(n1 + n2 - 2);
        out->p_value = out->diff == 0 ? 1 : 0;
        return 0;
    }
    out->t = out->diff / sqrt(se2);
    out->df = se2 * se2 / (s1 * s1 / (double)(n1 - 1) + s2 * s2 / (double)(n2 - 1));
    out->p_value = experiment_stats_student_p(out->t, out->df);
    return 0;
}
