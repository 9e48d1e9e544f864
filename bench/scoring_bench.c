/*  scoring_bench.c: top-10 retrieval cost, brute force vs FAISS, to choose
    the catalogue size above which the ranker scores through FAISS.

    Brute force is what the ranker does today (lib/als.h's scorer):
    cblas_sgemv of the item factors by the user vector, then topn_select.
    Against it: FAISS Flat (exact, inner product), HNSW32 at a few efSearch
    values and IVF<nlist>,Flat at a few nprobe values, all through
    lib/faiss_index.h. Every search runs single-threaded, one query at a
    time, as the ranker serves one request per thread (OpenBLAS is set to
    one thread; the wrapper pins each search to its thread). Index builds
    use all cores, as the trainer would.

    Item vectors are ALS-like by default: unit vectors around a few hundred
    "taste" centres (real item factors cluster; uniform random vectors are
    the worst case for every ANN index), --random for isotropic Gaussian.
    Queries are the sum of a few item vectors plus noise, like a user
    folded in from a short history. Recall@10 is against the exact top 10.

    Prints a markdown table; nothing is asserted (speed is measured, not
    tested).

      bench/scoring_bench [--sizes 10000,100000,1000000] [--dim 64]
                          [--queries 500] [--random] [--seed 42]
                          [--ef-construction N]   (HNSW build, default FAISS's 40)
                          [--no-hnsw]             (skip HNSW: minutes to build at 1M)
*/
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faiss_index.h"
#include "topn.h"

#define K 10
#define N_CENTRES 256
#define WARMUP 10

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

//  splitmix64 and Box-Muller: seedable, good enough for synthetic data.
static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double s_uniform(uint64_t *state)
{
    return ((double)(s_next(state) >> 11) + 0.5) / 9007199254740992.0;
}

static float s_gauss(uint64_t *state)
{
    double u = s_uniform(state), v = s_uniform(state);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void s_normalise(float *v, int32_t dim)
{
    float n = cblas_snrm2(dim, v, 1);
    if (n > 0)
        cblas_sscal(dim, 1.0f / n, v, 1);
}

//  Resident set size in MB, from /proc/self/statm.
static double s_rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f)
        return NAN;
    int got = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    if (got != 2)
        return NAN;
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_pct(const double *sorted, int n, double p)
{
    int i = (int)ceil(p * n) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return sorted[i];
}

static long s_arg(int argc, char **argv, const char *name, long fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return fallback;
}

static const char *s_sarg(int argc, char **argv, const char *name, const char *fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return fallback;
}

static int s_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

typedef struct {
    int32_t n, dim, nq;
    const float *items, *queries;
    const int32_t *exact;    //  nq x K
    double *lat;             //  nq latencies, scratch
    int32_t ef_construction; //  HNSW build, 0 = FAISS's default (40)
    int no_hnsw;             //  skip HNSW (its build takes minutes at 1M on 2 cores)
} s_ctx_t;

static void s_row(int32_t n, const char *method, const char *param, double build_s, double mem_mb,
                  double *lat, int nq, double recall)
{
    double sum = 0;
    for (int i = 0; i < nq; i++)
        sum += lat[i];
    qsort(lat, (size_t)nq, sizeof *lat, s_cmp_double);
    char build[32] = "-", mem[32] = "-", rec[32] = "-";
    if (!isnan(build_s))
        snprintf(build, sizeof build, "%.2f", build_s);
    if (!isnan(mem_mb))
        snprintf(mem, sizeof mem, "%.0f", mem_mb);
    if (!isnan(recall))
        snprintf(rec, sizeof rec, "%.3f", recall);
    printf("| %8d | %-14s | %-8s | %7s | %6s | %9.1f | %9.1f | %8.0f | %6s |\n", n, method, param,
           build, mem, s_pct(lat, nq, 0.50) * 1e6, s_pct(lat, nq, 0.99) * 1e6, nq / sum, rec);
    fflush(stdout);
}

//  The exact top K of every query, timed as the ranker computes it.
static int s_brute(s_ctx_t *c, int32_t *exact)
{
    float *scores = malloc((size_t)c->n * sizeof *scores);
    if (!scores)
        return -1;
    for (int w = -WARMUP; w < c->nq; w++) {
        int q = w < 0 ? (w + WARMUP) % c->nq : w;
        double t0 = s_now();
        cblas_sgemv(CblasRowMajor, CblasNoTrans, c->n, c->dim, 1.0f, c->items, c->dim,
                    c->queries + (size_t)q * c->dim, 1, 0.0f, scores, 1);
        int32_t got = topn_select(scores, c->n, NULL, exact + (size_t)q * K, K);
        double t1 = s_now();
        if (got != K) {
            free(scores);
            return -1;
        }
        if (w >= 0)
            c->lat[q] = t1 - t0;
    }
    free(scores);
    s_row(c->n, "brute (BLAS)", "-", NAN, NAN, c->lat, c->nq, NAN);
    return 0;
}

//  Searches every query with params; prints one row.
static int s_search_row(s_ctx_t *c, const faiss_index_t *idx, const char *method, const char *param,
                        const faiss_search_params_t *sp, double build_s, double mem_mb)
{
    char err[256];
    long hits = 0;
    for (int w = -WARMUP; w < c->nq; w++) {
        int q = w < 0 ? (w + WARMUP) % c->nq : w;
        float scores[K];
        int64_t ids[K];
        double t0 = s_now();
        int32_t got = faiss_index_search(idx, c->queries + (size_t)q * c->dim, K, sp, scores, ids,
                                         err, sizeof err);
        double t1 = s_now();
        if (got < 0) {
            fprintf(stderr, "%s %s: %s\n", method, param, err);
            return -1;
        }
        if (w < 0)
            continue;
        c->lat[q] = t1 - t0;
        for (int i = 0; i < got; i++)
            for (int j = 0; j < K; j++)
                if (ids[i] == c->exact[(size_t)q * K + j]) {
                    hits++;
                    break;
                }
    }
    s_row(c->n, method, param, build_s, mem_mb, c->lat, c->nq, (double)hits / ((double)c->nq * K));
    return 0;
}

//  Builds one index (training on a sample when it needs it), then one row
//  per search setting. values[] are efSearch or nprobe; nvalues 0 = one
//  row with the index defaults.
static int s_faiss(s_ctx_t *c, const char *factory, const char *method, int is_hnsw,
                   const int32_t *values, int nvalues, int64_t train_n)
{
    char err[256];
    double rss0 = s_rss_mb();
    double t0 = s_now();
    faiss_index_t *idx = faiss_index_new(c->dim, factory, 1, err, sizeof err);
    if (!idx) {
        fprintf(stderr, "%s: %s\n", factory, err);
        return -1;
    }
    if (is_hnsw && c->ef_construction > 0 &&
        faiss_index_set_param(idx, "efConstruction", c->ef_construction, err, sizeof err) != 0)
        goto err;
    if (!faiss_index_is_trained(idx) &&
        faiss_index_train(idx, c->items, train_n < c->n ? train_n : c->n, err, sizeof err) != 0)
        goto err;
    if (faiss_index_add(idx, c->items, c->n, err, sizeof err) != 0)
        goto err;
    double build_s = s_now() - t0;
    double mem_mb = s_rss_mb() - rss0;

    if (nvalues == 0) {
        if (s_search_row(c, idx, method, "-", NULL, build_s, mem_mb) != 0)
            goto fail;
    }
    for (int i = 0; i < nvalues; i++) {
        faiss_search_params_t sp = {0};
        char param[32];
        if (is_hnsw) {
            //  Stored in the index: FAISS 1.7.3 ignores a per-call efSearch.
            if (faiss_index_set_param(idx, "efSearch", values[i], err, sizeof err) != 0)
                goto err;
            snprintf(param, sizeof param, "ef=%d", values[i]);
        } else {
            sp.nprobe = values[i];
            snprintf(param, sizeof param, "np=%d", values[i]);
        }
        if (s_search_row(c, idx, method, param, &sp, i == 0 ? build_s : NAN,
                         i == 0 ? mem_mb : NAN) != 0)
            goto fail;
    }
    faiss_index_destroy(&idx);
    return 0;
err:
    fprintf(stderr, "%s: %s\n", factory, err);
fail:
    faiss_index_destroy(&idx);
    return -1;
}

static int s_run_size(int32_t n, int32_t dim, int nq, int random, uint64_t seed, int32_t efc,
                      int no_hnsw)
{
    int rc = -1;
    float *items = malloc((size_t)n * (size_t)dim * sizeof *items);
    float *queries = malloc((size_t)nq * (size_t)dim * sizeof *queries);
    float *centres = malloc((size_t)N_CENTRES * (size_t)dim * sizeof *centres);
    int32_t *exact = malloc((size_t)nq * K * sizeof *exact);
    double *lat = malloc((size_t)nq * sizeof *lat);
    if (!items || !queries || !centres || !exact || !lat)
        goto done;

    uint64_t st = seed ^ (uint64_t)n;
    for (int i = 0; i < N_CENTRES * dim; i++)
        centres[i] = s_gauss(&st);
    for (int i = 0; i < N_CENTRES; i++)
        s_normalise(centres + (size_t)i * dim, dim);
    for (int32_t i = 0; i < n; i++) {
        float *v = items + (size_t)i * dim;
        const float *ctr = centres + (size_t)(s_next(&st) % N_CENTRES) * dim;
        for (int d = 0; d < dim; d++)
            v[d] = random ? s_gauss(&st) : ctr[d] + 0.08f * s_gauss(&st);
        s_normalise(v, dim);
    }
    for (int q = 0; q < nq; q++) {
        float *u = queries + (size_t)q * dim;
        for (int d = 0; d < dim; d++)
            u[d] = 0.1f * s_gauss(&st);
        for (int h = 0; h < 5; h++)
            cblas_saxpy(dim, 1.0f, items + (size_t)(s_next(&st) % (uint64_t)n) * dim, 1, u, 1);
    }

    s_ctx_t c = {.n = n,
                 .dim = dim,
                 .nq = nq,
                 .items = items,
                 .queries = queries,
                 .lat = lat,
                 .ef_construction = efc,
                 .no_hnsw = no_hnsw};
    if (s_brute(&c, exact) != 0)
        goto done;
    c.exact = exact;

    if (s_faiss(&c, "Flat", "Flat IP", 0, NULL, 0, 0) != 0)
        goto done;
    const int32_t efs[] = {16, 32, 64, 128, 256};
    if (!c.no_hnsw && s_faiss(&c, "HNSW32", "HNSW32", 1, efs, 5, 0) != 0)
        goto done;
    //  nlist about 2 sqrt(n), a power of two; trained on 64 vectors per list
    //  (FAISS wants 39 at least) so that training stays seconds at 1M.
    int32_t nlist = 64;
    while ((double)nlist * nlist < 4.0 * n && nlist < 65536)
        nlist *= 2;
    char factory[64], method[32];
    snprintf(factory, sizeof factory, "IVF%d,Flat", nlist);
    snprintf(method, sizeof method, "IVF%d", nlist);
    const int32_t probes[] = {4, 8, 16, 32, 64};
    if (s_faiss(&c, factory, method, 0, probes, 5, (int64_t)nlist * 64) != 0)
        goto done;
    rc = 0;
done:
    free(items);
    free(queries);
    free(centres);
    free(exact);
    free(lat);
    return rc;
}

int main(int argc, char **argv)
{
    //  The ranker's setting; the env var only works if set before start.
    openblas_set_num_threads(1);
    int32_t dim = (int32_t)s_arg(argc, argv, "--dim", 64);
    int nq = (int)s_arg(argc, argv, "--queries", 500);
    int random = s_flag(argc, argv, "--random");
    uint64_t seed = (uint64_t)s_arg(argc, argv, "--seed", 42);
    int32_t efc = (int32_t)s_arg(argc, argv, "--ef-construction", 0);
    char sizes[256];
    snprintf(sizes, sizeof sizes, "%s", s_sarg(argc, argv, "--sizes", "10000,100000,1000000"));
    if (dim < 1 || nq < 1) {
        fprintf(stderr, "bad --dim or --queries\n");
        return 1;
    }

    double load[3] = {0};
    if (getloadavg(load, 3) < 0)
        load[0] = NAN;
    printf("scoring_bench: dim %d, %d queries, top %d, %s vectors, HNSW efConstruction %d, "
           "%ld CPUs, load %.2f\n\n",
           dim, nq, K, random ? "random Gaussian" : "clustered unit", efc ? efc : 40,
           sysconf(_SC_NPROCESSORS_ONLN), load[0]);
    printf("| items    | method         | search   | build s | mem MB | p50 us    | p99 us    | "
           "q/s      | rec@10 |\n");
    printf(
        "|---------:|----------------|----------|--------:|-------:|----------:|----------:|-----"
        "-----:|-------:|\n");
    char *save = NULL;
    for (char *tok = strtok_r(sizes, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long n = strtol(tok, NULL, 10);
        if (n < K || n > INT32_MAX / 2) {
            fprintf(stderr, "bad size %s\n", tok);
            return 1;
        }
        if (s_run_size((int32_t)n, dim, nq, random, seed, efc, s_flag(argc, argv, "--no-hnsw")) !=
            0) {
            fprintf(stderr, "size %ld failed\n", n);
            return 1;
        }
    }
    if (getloadavg(load, 3) >= 0)
        printf("\nload average at end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    return 0;
}
