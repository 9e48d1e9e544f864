/*  test_faiss_index.c: the C wrapper over FAISS (faiss_index.cpp): exact
    search on Flat agrees with a brute-force pass (cblas_sgemv + topn, what
    the ranker does without FAISS), write/read round trips, training of an
    IVF index, search parameters, and errors (bad factory, dimension
    mismatch, untrained add, unreadable file) as -1/NULL with a message
    rather than a C++ exception.
*/
#include <criterion/criterion.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faiss_index.h"
#include "leak_check.h"
#include "tmp_dir.h"
#include "topn.h"

#define DIM 16
#define N_ITEMS 2000
#define K 10

static char s_dir[256];

static void s_fini(void)
{
    tmp_dir_remove(s_dir);
    leak_check_fini();
}

TestSuite(faiss_index, .fini = s_fini, .timeout = 60);

//  splitmix64 for reproducible vectors.
static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float *s_vectors(int64_t n, int32_t dim, uint64_t seed)
{
    float *v = malloc((size_t)n * (size_t)dim * sizeof *v);
    cr_assert_not_null(v);
    for (int64_t i = 0; i < n * dim; i++)
        v[i] = (float)((double)(s_next(&seed) >> 11) / 9007199254740992.0) - 0.5f;
    return v;
}

//  The exact answer the ranker computes today.
static void s_brute(const float *items, int32_t n, const float *q, int32_t *out)
{
    float *scores = malloc((size_t)n * sizeof *scores);
    cr_assert_not_null(scores);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, DIM, 1.0f, items, DIM, q, 1, 0.0f, scores, 1);
    cr_assert_eq(topn_select(scores, n, NULL, out, K), K);
    free(scores);
}

static faiss_index_t *s_flat_with(const float *items, int64_t n)
{
    char err[256] = "";
    faiss_index_t *idx = faiss_index_new(DIM, "Flat", 1, err, sizeof err);
    cr_assert_not_null(idx, "%s", err);
    cr_assert(faiss_index_is_trained(idx));
    cr_assert_eq(faiss_index_add(idx, items, n, err, sizeof err), 0, "%s", err);
    return idx;
}

Test(faiss_index, flat_inner_product_equals_brute_force)
{
    float *items = s_vectors(N_ITEMS, DIM, 1);
    float *queries = s_vectors(20, DIM, 2);
    faiss_index_t *idx = s_flat_with(items, N_ITEMS);
    cr_assert_eq(faiss_index_dim(idx), DIM);
    cr_assert_eq(faiss_index_size(idx), N_ITEMS);
    cr_assert(faiss_index_is_inner_product(idx));

    char err[256] = "";
    for (int q = 0; q < 20; q++) {
        int32_t exact[K];
        s_brute(items, N_ITEMS, queries + q * DIM, exact);
        float scores[K];
        int64_t ids[K];
        cr_assert_eq(
            faiss_index_search(idx, queries + q * DIM, K, NULL, scores, ids, err, sizeof err), K,
            "%s", err);
        for (int i = 0; i < K; i++) {
            cr_assert_eq(ids[i], exact[i], "query %d rank %d: %lld vs %d", q, i, (long long)ids[i],
                         exact[i]);
            float dot = cblas_sdot(DIM, items + ids[i] * DIM, 1, queries + q * DIM, 1);
            cr_assert_float_eq(scores[i], dot, 1e-4f);
            if (i > 0)
                cr_assert_geq(scores[i - 1], scores[i]);
        }
    }
    faiss_index_destroy(&idx);
    cr_assert_null(idx);
    faiss_index_destroy(&idx); //  idempotent
    free(items);
    free(queries);
}

Test(faiss_index, l2_scores_are_negated_distances_and_short_results_are_padded)
{
    char err[256] = "";
    faiss_index_t *idx = faiss_index_new(2, "Flat", 0, err, sizeof err);
    cr_assert_not_null(idx, "%s", err);
    cr_assert_not(faiss_index_is_inner_product(idx));
    float v[] = {0, 0, 3, 4, 1, 0};
    cr_assert_eq(faiss_index_add(idx, v, 3, err, sizeof err), 0, "%s", err);
    float q[] = {0, 0};
    float scores[5];
    int64_t ids[5];
    cr_assert_eq(faiss_index_search(idx, q, 5, NULL, scores, ids, err, sizeof err), 3, "%s", err);
    cr_assert_eq(ids[0], 0);
    cr_assert_eq(ids[1], 2);
    cr_assert_eq(ids[2], 1);
    cr_assert_float_eq(scores[0], 0.0f, 1e-6f);
    cr_assert_float_eq(scores[1], -1.0f, 1e-6f);
    cr_assert_float_eq(scores[2], -25.0f, 1e-6f);
    cr_assert_eq(ids[3], -1);
    cr_assert_eq(ids[4], -1);
    cr_assert(isinf(scores[3]) && scores[3] < 0);
    faiss_index_destroy(&idx);
}

Test(faiss_index, write_then_read_gives_the_same_results)
{
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-faiss"), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/items.faiss", s_dir);
    float *items = s_vectors(N_ITEMS, DIM, 3);
    float *queries = s_vectors(10, DIM, 4);
    char err[256] = "";

    //  HNSW: the graph must survive the trip, not just the vectors.
    faiss_index_t *idx = faiss_index_new(DIM, "HNSW16", 1, err, sizeof err);
    cr_assert_not_null(idx, "%s", err);
    cr_assert_eq(faiss_index_add(idx, items, N_ITEMS, err, sizeof err), 0, "%s", err);
    cr_assert_eq(faiss_index_write(idx, path, err, sizeof err), 0, "%s", err);
    faiss_index_t *back = faiss_index_read(path, DIM, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_eq(faiss_index_size(back), N_ITEMS);
    cr_assert(faiss_index_is_inner_product(back));

    //  efSearch is stored in the index and travels with the file.
    cr_assert_eq(faiss_index_set_param(idx, "efSearch", 64, err, sizeof err), 0, "%s", err);
    cr_assert_eq(faiss_index_write(idx, path, err, sizeof err), 0, "%s", err);
    faiss_index_destroy(&back);
    back = faiss_index_read(path, DIM, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    faiss_search_params_t p = {.ef_search = 64};
    for (int q = 0; q < 10; q++) {
        float s1[K], s2[K];
        int64_t i1[K], i2[K];
        cr_assert_eq(faiss_index_search(idx, queries + q * DIM, K, &p, s1, i1, err, sizeof err), K,
                     "%s", err);
        cr_assert_eq(faiss_index_search(back, queries + q * DIM, K, &p, s2, i2, err, sizeof err), K,
                     "%s", err);
        cr_assert_arr_eq(i1, i2, sizeof i1);
        cr_assert_arr_eq(s1, s2, sizeof s1);
    }
    faiss_index_destroy(&back);

    //  Debian's FAISS 1.7.3 ignores a per-call efSearch: a different one is
    //  refused, not silently dropped.
    float s1[K];
    int64_t i1[K];
    faiss_search_params_t other = {.ef_search = 200};
    err[0] = '\0';
    cr_assert_eq(faiss_index_search(idx, queries, K, &other, s1, i1, err, sizeof err), -1);
    cr_assert(strstr(err, "ef_search"), "%s", err);

    //  The trainer ships the index next to an artifact: factors of another
    //  size must not be paired with it.
    back = faiss_index_read(path, DIM + 1, err, sizeof err);
    cr_assert_null(back);
    cr_assert(strstr(err, "dimension"), "%s", err);

    faiss_index_destroy(&idx);
    free(items);
    free(queries);
}

Test(faiss_index, bad_input_is_an_error_not_an_exception)
{
    char err[256] = "";
    cr_assert_null(faiss_index_new(DIM, "NoSuchIndex42", 1, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    err[0] = '\0';
    cr_assert_null(faiss_index_new(DIM, "IVF,Flat", 1, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    cr_assert_null(faiss_index_new(DIM, "", 1, err, sizeof err));
    cr_assert_null(faiss_index_new(DIM, NULL, 1, err, sizeof err));
    cr_assert_null(faiss_index_new(0, "Flat", 1, err, sizeof err));
    cr_assert_null(faiss_index_new(DIM, "NoSuchIndex42", 1, NULL, 0), "no err buffer is fine");

    err[0] = '\0';
    cr_assert_null(faiss_index_read("/nonexistent/recsd.faiss", DIM, err, sizeof err));
    cr_assert_neq(err[0], '\0');

    //  A file that is not an index.
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-faiss"), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/junk.faiss", s_dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("definitely not a FAISS index", f);
    cr_assert_eq(fclose(f), 0);
    err[0] = '\0';
    cr_assert_null(faiss_index_read(path, DIM, err, sizeof err));
    cr_assert_neq(err[0], '\0');

    faiss_index_t *idx = faiss_index_new(DIM, "IVF8,Flat", 1, err, sizeof err);
    cr_assert_not_null(idx, "%s", err);
    cr_assert_not(faiss_index_is_trained(idx));
    float *items = s_vectors(400, DIM, 5);
    err[0] = '\0';
    cr_assert_eq(faiss_index_set_param(idx, "noSuchParam", 1, err, sizeof err), -1);
    cr_assert_neq(err[0], '\0');
    err[0] = '\0';
    cr_assert_eq(faiss_index_add(idx, items, 400, err, sizeof err), -1, "add before train");
    cr_assert_neq(err[0], '\0');
    float scores[K];
    int64_t ids[K];
    cr_assert_eq(faiss_index_search(idx, items, 0, NULL, scores, ids, err, sizeof err), -1);
    err[0] = '\0';
    cr_assert_eq(faiss_index_write(idx, "/nonexistent/dir/x.faiss", err, sizeof err), -1);
    cr_assert_neq(err[0], '\0');
    faiss_index_destroy(&idx);
    free(items);
}

Test(faiss_index, hnsw_ef_search_set_on_the_index_raises_recall)
{
    //  Enough points that the default efSearch (16) misses some of the top
    //  10, and a large ef finds nearly all.
    enum { N = 20000, NQ = 50 };
    float *items = s_vectors(N, DIM, 10);
    float *queries = s_vectors(NQ, DIM, 11);
    char err[256] = "";
    faiss_index_t *idx = faiss_index_new(DIM, "HNSW16", 1, err, sizeof err);
    cr_assert_not_null(idx, "%s", err);
    cr_assert_eq(faiss_index_add(idx, items, N, err, sizeof err), 0, "%s", err);
    int hits[2] = {0, 0};
    const int efs[2] = {10, 400};
    for (int e = 0; e < 2; e++) {
        cr_assert_eq(faiss_index_set_param(idx, "efSearch", efs[e], err, sizeof err), 0, "%s", err);
        for (int q = 0; q < NQ; q++) {
            int32_t exact[K];
            s_brute(items, N, queries + q * DIM, exact);
            float scores[K];
            int64_t ids[K];
            int32_t got =
                faiss_index_search(idx, queries + q * DIM, K, NULL, scores, ids, err, sizeof err);
            cr_assert_geq(got, 0, "%s", err);
            for (int i = 0; i < got; i++)
                for (int j = 0; j < K; j++)
                    hits[e] += ids[i] == exact[j];
        }
    }
    cr_assert_lt(hits[0], hits[1], "efSearch had no effect: %d vs %d", hits[0], hits[1]);
    cr_assert_geq(hits[1], NQ * K * 9 / 10, "recall at ef 400: %d / %d", hits[1], NQ * K);
    faiss_index_destroy(&idx);
    free(items);
    free(queries);
}

Test(faiss_index, ivf_trains_and_nprobe_reaches_the_exact_answer)
{
    float *items = s_vectors(N_ITEMS, DIM, 6);
    float *queries = s_vectors(10, DIM, 7);
    char err[256] = "";
    faiss_index_t *idx = faiss_index_new(DIM, "IVF16,Flat", 1, err, sizeof err);
    cr_assert_not_null(idx, "%s", err);
    cr_assert_eq(faiss_index_train(idx, items, N_ITEMS, err, sizeof err), 0, "%s", err);
    cr_assert(faiss_index_is_trained(idx));
    cr_assert_eq(faiss_index_add(idx, items, N_ITEMS, err, sizeof err), 0, "%s", err);

    //  nprobe = nlist visits every list: the search is then exhaustive. The
    //  default (1 list) finds a strict subset for at least some query.
    faiss_search_params_t all = {.nprobe = 16};
    int misses_at_1 = 0;
    for (int q = 0; q < 10; q++) {
        int32_t exact[K];
        s_brute(items, N_ITEMS, queries + q * DIM, exact);
        float scores[K];
        int64_t ids[K];
        cr_assert_eq(
            faiss_index_search(idx, queries + q * DIM, K, &all, scores, ids, err, sizeof err), K,
            "%s", err);
        for (int i = 0; i < K; i++)
            cr_assert_eq(ids[i], exact[i], "query %d rank %d", q, i);
        int32_t got =
            faiss_index_search(idx, queries + q * DIM, K, NULL, scores, ids, err, sizeof err);
        cr_assert_geq(got, 0, "%s", err);
        for (int i = 0; i < K; i++)
            if (i >= got || ids[i] != exact[i]) {
                misses_at_1++;
                break;
            }
    }
    cr_assert_gt(misses_at_1, 0, "nprobe 1 of 16 should miss sometimes; params not applied?");
    faiss_index_destroy(&idx);
    free(items);
    free(queries);
}

//  Concurrent searches on one index from several threads: each must get
//  the exact answer (run under ASan this also checks for races on the
//  wrapper's own state, of which there is none).
typedef struct {
    const faiss_index_t *idx;
    const float *items, *queries;
    int bad;
} s_job_t;

static void *s_searcher(void *arg)
{
    s_job_t *job = arg;
    char err[256];
    for (int round = 0; round < 5; round++)
        for (int q = 0; q < 20; q++) {
            float scores[K];
            int64_t ids[K];
            if (faiss_index_search(job->idx, job->queries + q * DIM, K, NULL, scores, ids, err,
                                   sizeof err) != K) {
                job->bad++;
                continue;
            }
            //  Compare against the first-ranked exact answer by score.
            float best = -INFINITY;
            for (int i = 0; i < N_ITEMS; i++) {
                float d = cblas_sdot(DIM, job->items + i * DIM, 1, job->queries + q * DIM, 1);
                if (d > best)
                    best = d;
            }
            if (fabsf(scores[0] - best) > 1e-4f)
                job->bad++;
        }
    return NULL;
}

Test(faiss_index, concurrent_searches_agree)
{
    float *items = s_vectors(N_ITEMS, DIM, 8);
    float *queries = s_vectors(20, DIM, 9);
    faiss_index_t *idx = s_flat_with(items, N_ITEMS);
    pthread_t t[4];
    s_job_t jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (s_job_t){.idx = idx, .items = items, .queries = queries};
        cr_assert_eq(pthread_create(&t[i], NULL, s_searcher, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_join(t[i], NULL), 0);
        cr_assert_eq(jobs[i].bad, 0, "thread %d", i);
    }
    faiss_index_destroy(&idx);
    free(items);
    free(queries);
}
