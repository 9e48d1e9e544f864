/*  item_knn.c: co-consumption cosine neighbours, one video at a time.

    For video i: walk the users who liked i, and for each of them the
    videos they liked, counting co-occurrences into a dense per-thread
    counter while remembering which entries were touched. Only the touched
    entries are then turned into similarities and handed to topn_select,
    so one video costs its co-occurrences, not a pass over the catalogue
    (item_neighbours_set_row takes a dense row and would cost n_items per
    video, 10^10 steps at 100k videos).

    Videos are handed out to pthreads in chunks from an atomic counter;
    each row depends only on the matrix, so any thread count gives the
    same table.
*/
#include "item_knn.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topn.h"

#define S_CHUNK 32
#define S_MAX_THREADS 256

typedef struct {
    const feedback_matrix_t *ui; //  users x videos
    const feedback_matrix_t *iu; //  videos x users
    const int32_t *liked_by;     //  per video, users with strength > 0
    item_neighbours_t *table;
    int32_t n_chunks;
    atomic_int next;
    atomic_bool failed; //  a worker could not allocate its scratch
} s_job_t;

static int s_int_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int32_t *count;   //  n_items co-occurrence counters, all 0 between videos
    int32_t *touched; //  n_items indexes of the non-zero counters
    float *sim;       //  n_items candidate similarities, in touched order
    int32_t *best;    //  k
} s_scratch_t;

static void s_row(s_job_t *job, s_scratch_t *s, int32_t i)
{
    const feedback_matrix_t *ui = job->ui, *iu = job->iu;
    const int32_t k = job->table->k;
    if (job->liked_by[i] == 0)
        return; //  the table row is already all -1 / 0
    int32_t m = 0;
    for (int64_t e = iu->row_ptr[i]; e < iu->row_ptr[i + 1]; e++) {
        if (!(iu->val[e] > 0.0f))
            continue;
        int32_t u = iu->col[e];
        for (int64_t f = ui->row_ptr[u]; f < ui->row_ptr[u + 1]; f++)
            if (ui->val[f] > 0.0f && s->count[ui->col[f]]++ == 0)
                s->touched[m++] = ui->col[f];
    }
    //  Ascending index order, so that topn_select's tie rule (lower
    //  position) is the lower video index.
    qsort(s->touched, (size_t)m, sizeof *s->touched, s_int_cmp);
    double ni = job->liked_by[i];
    for (int32_t t = 0; t < m; t++) {
        int32_t j = s->touched[t];
        s->sim[t] = j == i ? -INFINITY : (float)(s->count[j] / sqrt(ni * job->liked_by[j]));
        s->count[j] = 0;
    }
    int32_t got = topn_select(s->sim, m, NULL, s->best, k);
    int32_t *row = job->table->idx + (size_t)i * (size_t)k;
    float *row_sim = job->table->sim + (size_t)i * (size_t)k;
    for (int32_t r = 0; r < got; r++) {
        row[r] = s->touched[s->best[r]];
        row_sim[r] = s->sim[s->best[r]];
    }
}

static void *s_worker(void *varg)
{
    s_job_t *job = varg;
    size_t n = (size_t)job->ui->n_cols + 1;
    s_scratch_t s = {.count = calloc(n, sizeof *s.count),
                     .touched = malloc(n * sizeof *s.touched),
                     .sim = malloc(n * sizeof *s.sim),
                     .best = malloc((size_t)job->table->k * sizeof *s.best)};
    if (!s.count || !s.touched || !s.sim || !s.best)
        atomic_store(&job->failed, true);
    else
        for (;;) {
            int32_t chunk = atomic_fetch_add(&job->next, 1);
            if (chunk >= job->n_chunks)
                break;
            int32_t begin = chunk * S_CHUNK;
            int32_t end = begin + S_CHUNK;
            if (end > job->ui->n_cols)
                end = job->ui->n_cols;
            for (int32_t i = begin; i < end; i++)
                s_row(job, &s, i);
        }
    free(s.count);
    free(s.touched);
    free(s.sim);
    free(s.best);
    return NULL;
}

item_neighbours_t *item_knn_train(const feedback_matrix_t *ui, int32_t k, int threads, char *err,
                                  size_t errlen)
{
    if (!ui) {
        snprintf(err, errlen, "no feedback matrix");
        return NULL;
    }
    if (k < 1 || k > ITEM_NEIGHBOURS_MAX_K) {
        snprintf(err, errlen, "k must be in 1..%d", ITEM_NEIGHBOURS_MAX_K);
        return NULL;
    }
    if (threads < 0) {
        snprintf(err, errlen, "threads must be >= 0");
        return NULL;
    }
    long n_threads = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > S_MAX_THREADS)
        n_threads = S_MAX_THREADS;

    item_neighbours_t *table = item_neighbours_new(ui->n_cols, k);
    feedback_matrix_t *iu = feedback_matrix_transpose(ui);
    int32_t *liked_by = calloc((size_t)ui->n_cols + 1, sizeof *liked_by);
    if (!table || !iu || !liked_by)
        goto oom;
    for (int64_t e = 0; e < ui->nnz; e++)
        if (ui->val[e] > 0.0f)
            liked_by[ui->col[e]]++;

    s_job_t job = {.ui = ui,
                   .iu = iu,
                   .liked_by = liked_by,
                   .table = table,
                   .n_chunks = (ui->n_cols + S_CHUNK - 1) / S_CHUNK};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, false);
    pthread_t tids[S_MAX_THREADS];
    bool started[S_MAX_THREADS] = {false};
    //  The calling thread is worker 0; a thread that cannot be created just
    //  leaves its share to the others.
    for (long t = 1; t < n_threads; t++)
        started[t] = pthread_create(&tids[t], NULL, s_worker, &job) == 0;
    s_worker(&job);
    for (long t = 1; t < n_threads; t++)
        if (started[t])
            pthread_join(tids[t], NULL);
    //  A worker that failed to allocate did no rows; the others (or the
    //  caller) did them all unless every one failed, which leaves rows
    //  unset: report it rather than return a partial table.
    if (atomic_load(&job.failed) && atomic_load(&job.next) < job.n_chunks)
        goto oom;
    feedback_matrix_destroy(&iu);
    free(liked_by);
    return table;
oom:
    snprintf(err, errlen, "out of memory");
    item_neighbours_destroy(&table);
    feedback_matrix_destroy(&iu);
    free(liked_by);
    return NULL;
}
