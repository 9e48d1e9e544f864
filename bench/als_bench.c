/*  als_bench.c: ALS training time on a generated data set.

    The scale figure: 1M users, 100k videos, 10M interactions with
    power-law (Zipf) video popularity and a log-normal-ish spread of
    history lengths, trained with 64 factors and 15 iterations. Prints one
    line of figures; nothing is asserted (speed is measured, not tested).

      bench/als_bench [--users N] [--items N] [--interactions N]
                      [--factors N] [--iterations N] [--threads N]
                      [--zipf-x100 N]   (popularity exponent x 100, default 100)
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "als.h"
#include "feedback_matrix.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

//  splitmix64: a fast, seedable generator, good enough for synthetic data.
static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double s_uniform(uint64_t *state)
{
    return (double)(s_next(state) >> 11) / 9007199254740992.0;
}

//  Index into the cumulative Zipf table by binary search.
static int32_t s_zipf(const double *cdf, int32_t n, double u)
{
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static long s_arg(int argc, char **argv, const char *name, long fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return fallback;
}

int main(int argc, char **argv)
{
    int32_t users = (int32_t)s_arg(argc, argv, "--users", 1000000);
    int32_t items = (int32_t)s_arg(argc, argv, "--items", 100000);
    size_t interactions = (size_t)s_arg(argc, argv, "--interactions", 10000000);
    double zipf = (double)s_arg(argc, argv, "--zipf-x100", 100) / 100.0;
    als_params_t params = als_params_default();
    params.factors = (int)s_arg(argc, argv, "--factors", 64);
    params.iterations = (int)s_arg(argc, argv, "--iterations", 15);
    params.threads = (int)s_arg(argc, argv, "--threads", 0);

    double t0 = s_now();
    double *cdf = malloc((size_t)items * sizeof *cdf);
    int32_t *rows = malloc(interactions * sizeof *rows);
    int32_t *cols = malloc(interactions * sizeof *cols);
    float *vals = malloc(interactions * sizeof *vals);
    if (!cdf || !rows || !cols || !vals) {
        fprintf(stderr, "als_bench: out of memory\n");
        return 1;
    }
    double total = 0;
    for (int32_t i = 0; i < items; i++)
        total += 1.0 / pow(i + 1, zipf);
    double run = 0;
    for (int32_t i = 0; i < items; i++) {
        run += 1.0 / pow(i + 1, zipf) / total;
        cdf[i] = run;
    }
    uint64_t state = 42;
    //  Users are also Zipf-distributed in activity (a few heavy watchers),
    //  videos by popularity; strengths like watch completions.
    double *ucdf = malloc((size_t)users * sizeof *ucdf);
    if (!ucdf)
        return 1;
    total = 0;
    for (int32_t u = 0; u < users; u++)
        total += 1.0 / pow(u + 1, 0.6);
    run = 0;
    for (int32_t u = 0; u < users; u++) {
        run += 1.0 / pow(u + 1, 0.6) / total;
        ucdf[u] = run;
    }
    for (size_t k = 0; k < interactions; k++) {
        rows[k] = s_zipf(ucdf, users, s_uniform(&state));
        cols[k] = s_zipf(cdf, items, s_uniform(&state));
        vals[k] = (float)(0.1 + 0.9 * s_uniform(&state));
    }
    feedback_matrix_t *m = feedback_matrix_new(users, items, rows, cols, vals, interactions);
    free(rows);
    free(cols);
    free(vals);
    free(cdf);
    free(ucdf);
    if (!m) {
        fprintf(stderr, "als_bench: matrix build failed\n");
        return 1;
    }
    double t1 = s_now();
    char err[256];
    als_model_t *model = als_train(m, &params, NULL, NULL, err, sizeof err);
    double t2 = s_now();
    if (!model) {
        fprintf(stderr, "als_bench: %s\n", err);
        return 1;
    }
    printf("als_bench: users=%d items=%d interactions=%zu (nnz after merge %lld) factors=%d "
           "iterations=%d threads=%d: generate %.1f s, train %.2f s (%.3f s/iteration)\n",
           users, items, interactions, (long long)m->nnz, params.factors, params.iterations,
           params.threads, t1 - t0, t2 - t1, (t2 - t1) / params.iterations);
    als_model_destroy(&model);
    feedback_matrix_destroy(&m);
    return 0;
}
