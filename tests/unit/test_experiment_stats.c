/*  test_experiment_stats.c: Wilson interval, pooled two-proportion z-test
    and Welch's t-test (experiment_stats.c) against values computed
    independently (python3 with mpmath at 30 digits, formulas written out
    below), plus the edge cases (empty arms, all-or-nothing rates).
*/
#include <criterion/criterion.h>
#include <math.h>

#include "experiment_stats.h"
#include "leak_check.h"

TestSuite(experiment_stats, .fini = leak_check_fini);

#define NEAR(a, b, tol)                                                                            \
    cr_assert(fabs((a) - (b)) < (tol), "%.12f != %.12f", (double)(a), (double)(b))

//  The hand-computed example of the store's results test: control 100
//  conversions out of 1000 exposures, treatment 130 out of 1000.
//    Wilson, z = 1.959963984540054, n = 1000:
//      p = 0.1:  centre = (0.1 + z^2/2000) / (1 + z^2/1000) = 0.10151069...
//                half   = z / (1 + z^2/1000) * sqrt(0.1*0.9/1000 + z^2/4e6)
//                -> [0.0829094435930957, 0.1201519631953484]
//      p = 0.13: -> [0.1105637746248419, 0.1522680266544689]
//    z-test: pooled = 230/2000 = 0.115,
//      se = sqrt(0.115 * 0.885 * (1/1000 + 1/1000)) = 0.014267...
//      z = 0.03 / se = 2.1027406056221143,
//      p = erfc(z / sqrt 2) = 0.0354884504664747
Test(experiment_stats, wilson_matches_hand_computation)
{
    double lo, hi;
    cr_assert_eq(experiment_stats_wilson(100, 1000, EXPERIMENT_STATS_Z95, &lo, &hi), 0);
    NEAR(lo, 0.0829094435930957, 1e-12);
    NEAR(hi, 0.1201519631953484, 1e-12);
    cr_assert_eq(experiment_stats_wilson(130, 1000, EXPERIMENT_STATS_Z95, &lo, &hi), 0);
    NEAR(lo, 0.1105637746248419, 1e-12);
    NEAR(hi, 0.1522680266544689, 1e-12);
    //  The interval stays inside [0, 1] at the ends (Wald's would not).
    cr_assert_eq(experiment_stats_wilson(0, 10, EXPERIMENT_STATS_Z95, &lo, &hi), 0);
    NEAR(lo, 0, 1e-15);
    NEAR(hi, 0.2775327998628892, 1e-12);
    cr_assert_eq(experiment_stats_wilson(10, 10, EXPERIMENT_STATS_Z95, &lo, &hi), 0);
    NEAR(lo, 0.7224672001371108, 1e-12);
    NEAR(hi, 1, 1e-15);
}

Test(experiment_stats, wilson_refuses_impossible_counts)
{
    double lo = -7, hi = -7;
    cr_assert_eq(experiment_stats_wilson(0, 0, EXPERIMENT_STATS_Z95, &lo, &hi), -1);
    cr_assert_eq(experiment_stats_wilson(-1, 10, EXPERIMENT_STATS_Z95, &lo, &hi), -1);
    cr_assert_eq(experiment_stats_wilson(11, 10, EXPERIMENT_STATS_Z95, &lo, &hi), -1);
    cr_assert_eq(experiment_stats_wilson(5, 10, 0, &lo, &hi), -1);
    cr_assert_eq(lo, -7);
}

Test(experiment_stats, two_proportion_matches_hand_computation)
{
    experiment_stats_ztest_t t;
    cr_assert_eq(experiment_stats_two_proportion(100, 1000, 130, 1000, &t), 0);
    NEAR(t.p1, 0.1, 1e-15);
    NEAR(t.p2, 0.13, 1e-15);
    NEAR(t.diff, 0.03, 1e-15);
    NEAR(t.z, 2.1027406056221143, 1e-10);
    NEAR(t.p_value, 0.0354884504664747, 1e-10);
    //  Swapping the arms flips the sign, not the p-value.
    cr_assert_eq(experiment_stats_two_proportion(130, 1000, 100, 1000, &t), 0);
    NEAR(t.z, -2.1027406056221143, 1e-10);
    NEAR(t.p_value, 0.0354884504664747, 1e-10);
}

Test(experiment_stats, two_proportion_edge_cases)
{
    experiment_stats_ztest_t t;
    //  Nobody converted anywhere: no evidence of a difference.
    cr_assert_eq(experiment_stats_two_proportion(0, 50, 0, 70, &t), 0);
    cr_assert_eq(t.z, 0);
    cr_assert_eq(t.p_value, 1);
    cr_assert_eq(experiment_stats_two_proportion(50, 50, 70, 70, &t), 0);
    cr_assert_eq(t.p_value, 1);
    //  Equal rates: z 0, p 1.
    cr_assert_eq(experiment_stats_two_proportion(10, 100, 20, 200, &t), 0);
    NEAR(t.z, 0, 1e-12);
    NEAR(t.p_value, 1, 1e-12);
    cr_assert_eq(experiment_stats_two_proportion(1, 0, 1, 10, &t), -1);
    cr_assert_eq(experiment_stats_two_proportion(1, 10, 11, 10, &t), -1);
}

Test(experiment_stats, normal_p)
{
    NEAR(experiment_stats_normal_p(EXPERIMENT_STATS_Z95), 0.05, 1e-12);
    NEAR(experiment_stats_normal_p(-EXPERIMENT_STATS_Z95), 0.05, 1e-12);
    NEAR(experiment_stats_normal_p(0), 1, 1e-15);
}

//  Student's t two-sided p-values: table quantiles t(0.975, df) give
//  0.05; the others from mpmath's betainc (regularised) at 30 digits.
Test(experiment_stats, student_p_matches_tables)
{
    NEAR(experiment_stats_student_p(2.228138851986, 10), 0.05, 1e-9);
    NEAR(experiment_stats_student_p(-2.228138851986, 10), 0.05, 1e-9);
    NEAR(experiment_stats_student_p(12.7062047361747, 1), 0.05, 1e-9);
    NEAR(experiment_stats_student_p(1.9599639845, 1e7), 0.05, 1e-6);
    NEAR(experiment_stats_student_p(2.0, 10), 0.0733880347707404, 1e-10);
    NEAR(experiment_stats_student_p(1.5, 7.3), 0.175563092803086, 1e-10);
    NEAR(experiment_stats_student_p(0, 5), 1, 1e-12);
    cr_assert(isnan(experiment_stats_student_p(1, 0)));
    cr_assert(isnan(experiment_stats_betai(0, 1, 0.5)));
    NEAR(experiment_stats_betai(1, 1, 0.3), 0.3, 1e-12);    //  uniform
    NEAR(experiment_stats_betai(2, 3, 0.4), 0.5248, 1e-12); //  1-(1-x)^3(1+3x)
}

//  Welch, by hand: n1 = 10, m1 = 0.5, v1 = 0.04; n2 = 20, m2 = 0.6, v2 = 0.09.
//    s1 = 0.004, s2 = 0.0045, se^2 = 0.0085, t = 0.1 / sqrt(0.0085) = 1.0846522890932808
//    df = 0.0085^2 / (0.004^2/9 + 0.0045^2/19) = 25.408226221079692
//    p = I_{df/(df+t^2)}(df/2, 1/2) = 0.2882606626733871 (mpmath betainc)
Test(experiment_stats, welch_matches_hand_computation)
{
    experiment_stats_welch_t w;
    cr_assert_eq(experiment_stats_welch(10, 0.5, 0.04, 20, 0.6, 0.09, &w), 0);
    NEAR(w.diff, 0.1, 1e-12);
    NEAR(w.t, 1.0846522890932808, 1e-10);
    NEAR(w.df, 25.408226221079692, 1e-9);
    NEAR(w.p_value, 0.2882606626733871, 1e-9);
    //  No spread: equal means p 1, different means p 0.
    cr_assert_eq(experiment_stats_welch(5, 0.5, 0, 5, 0.5, 0, &w), 0);
    cr_assert_eq(w.p_value, 1);
    cr_assert_eq(experiment_stats_welch(5, 0.5, 0, 5, 0.7, 0, &w), 0);
    cr_assert_eq(w.p_value, 0);
    cr_assert_eq(experiment_stats_welch(1, 0.5, 0.1, 5, 0.7, 0.1, &w), -1);
    cr_assert_eq(experiment_stats_welch(5, 0.5, NAN, 5, 0.7, 0.1, &w), -1);
}
