/*  experiment_stats.h: the statistics of A/B results, pure math.

    Conversion rates. For x conversions out of n exposures, p = x / n.

    Wilson score interval (Wilson 1927), at normal quantile z (1.96 for
    95%):
        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
        [centre - half, centre + half]
    Unlike the Wald interval p +- z sqrt(p(1-p)/n) it stays inside [0, 1]
    and behaves for small n and rates near 0 or 1.

    Two-proportion z-test (pooled), treatment (x2, n2) against control
    (x1, n1), H0: equal rates:
        pooled = (x1 + x2) / (n1 + n2)
        se     = sqrt(pooled (1 - pooled) (1/n1 + 1/n2))
        z      = (p2 - p1) / se
        p      = 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2)        (two-sided)
    If se is 0 (both arms all or nothing) the rates are equal: z 0, p 1.

    Welch's t-test for a difference of means (watch completion), samples
    of sizes n1, n2 with means m1, m2 and sample variances v1, v2:
        t  = (m2 - m1) / sqrt(v1/n1 + v2/n2)
        df = (v1/n1 + v2/n2)^2 / ((v1/n1)^2/(n1-1) + (v2/n2)^2/(n2-1))
        p  = I_{df/(df+t^2)}(df/2, 1/2)                        (two-sided)
    where I is the regularised incomplete beta function (continued
    fraction, Numerical Recipes 6.4). Needs n1, n2 >= 2; if both variances
    are 0, equal means give p 1 and different ones p 0.

    Every function is pure and thread-safe.
*/
#ifndef RECSD_EXPERIMENT_STATS_H
#define RECSD_EXPERIMENT_STATS_H

#define EXPERIMENT_STATS_Z95 1.959963984540054 //  Phi^-1(0.975)

//  Wilson score interval for x successes in n trials at quantile z (> 0).
//  Returns 0 with [*lo, *hi], or -1 if n <= 0, x < 0 or x > n.
int experiment_stats_wilson(long x, long n, double z, double *lo, double *hi);

typedef struct {
    double p1, p2;  //  control and treatment rates
    double diff;    //  p2 - p1 (absolute)
    double z;       //  test statistic
    double p_value; //  two-sided
} experiment_stats_ztest_t;

//  Pooled two-proportion z-test of (x2, n2) against (x1, n1). Returns 0,
//  or -1 if either n <= 0 or an x is outside 0..n.
int experiment_stats_two_proportion(long x1, long n1, long x2, long n2,
                                    experiment_stats_ztest_t *out);

typedef struct {
    double diff;    //  m2 - m1
    double t;       //  test statistic
    double df;      //  Welch-Satterthwaite degrees of freedom
    double p_value; //  two-sided
} experiment_stats_welch_t;

//  Welch's t-test of sample 2 against sample 1 (means, sample variances,
//  sizes). Returns 0, or -1 if n1 or n2 < 2 or a variance is negative or
//  not finite.
int experiment_stats_welch(long n1, double m1, double v1, long n2, double m2, double v2,
                           experiment_stats_welch_t *out);

//  Two-sided p-value of a standard normal statistic: erfc(|z| / sqrt 2).
double experiment_stats_normal_p(double z);

//  Two-sided p-value of Student's t with df > 0 degrees of freedom:
//  I_{df/(df+t^2)}(df/2, 1/2). NAN if df <= 0.
double experiment_stats_student_p(double t, double df);

//  The regularised incomplete beta function I_x(a, b) for a, b > 0 and
//  x in [0, 1]; NAN outside that domain.
double experiment_stats_betai(double a, double b, double x);

#endif
