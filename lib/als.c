/*  als.c: implicit ALS with a conjugate-gradient row solver.

    One sweep = user step (solve every user row against the item factors)
    then item step (every item row against the user factors, on the
    transposed matrix). A row solve needs only the Gram matrix of the other
    side (computed once per half-step with cblas_ssyrk) and the row's own
    entries: (G + reg I + sum_i (c_i - 1) y_i y_i^T) x = sum_{p_i = 1} c_i y_i,
    approached by cg_steps of CG warm-started from the previous sweep's x.

    Threads: the rows of a half-step are handed out in fixed chunks to a
    pool of pthreads (the calling thread included). Each row's result
    depends only on the row and the other side's factors, so the factors
    are bit-identical for any thread count.

    Oversubscription: OpenBLAS is called only from the calling thread while
    the workers are idle (ssyrk for the Gram matrices), so it may use all
    its own threads there. The per-row kernels (dot, axpy, f x f matvec)
    are plain C loops: OpenBLAS threads gemv/symv above about 96 x 96, and
    openblas_set_num_threads() is process-wide, so lowering it from a
    worker would also slow the ranker's scoring in the same process.
*/
#include "als.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Rows per work unit: small enough to balance heavy users across threads,
//  large enough that the atomic counter is not contended.
#define S_CHUNK 64
#define S_MAX_THREADS 256

als_params_t als_params_default(void)
{
    return (als_params_t){.factors = 64,
                          .iterations = 15,
                          .regularization = 0.1f,
                          .alpha = 10.0f,
                          .cg_steps = 3,
                          .seed = 42,
                          .threads = 0};
}

//  ---------------------------------------------------------------------
//  Small dense kernels. Eight independent accumulators so that the
//  compiler can keep several multiply-adds in flight (and vectorise)
//  without -ffast-math; the order of additions is fixed, so results are
//  reproducible.

static float s_dot(const float *restrict a, const float *restrict b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += a[i + k] * b[i + k];
    for (; i < n; i++)
        acc[0] += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void s_axpy(float a, const float *restrict x, float *restrict y, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            y[i + k] += a * x[i + k];
    for (; i < n; i++)
        y[i] += a * x[i];
}

//  out = m x for a symmetric n x n m, as the sum of x[c] times row c: row
//  by row axpys vectorise without the horizontal sums a dot per row needs.
static void s_symv(const float *restrict m, const float *restrict x, float *restrict out, int n)
{
    memset(out, 0, (size_t)n * sizeof *out);
    for (int c = 0; c < n; c++)
        s_axpy(x[c], m + (size_t)c * (size_t)n, out, n);
}

//  The rows a solve reads are scattered over the other side's factors
//  (hundreds of MB for a million users): ask for the row a few entries
//  ahead so that the loop does not wait on each miss in turn.
#define S_PREFETCH_AHEAD 8

static void s_prefetch_row(const float *row, int f)
{
    for (int k = 0; k < f; k += 16) //  one 64-byte line per 16 floats
        __builtin_prefetch(row + k);
}

static float s_confidence(float alpha, float value)
{
    return 1.0f + alpha * fabsf(value);
}

void als_compute_gram(const float *item_factors, int32_t n_items, int32_t factors, float *gram)
{
    int f = factors;
    if (n_items == 0) {
        memset(gram, 0, (size_t)f * (size_t)f * sizeof *gram);
        return;
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, f, n_items, 1.0f, item_factors, f, 0.0f,
                gram, f);
    for (int r = 0; r < f; r++)
        for (int c = 0; c < r; c++)
            gram[(size_t)r * f + c] = gram[(size_t)c * f + r];
}

//  ---------------------------------------------------------------------
//  Initial factors: a splitmix64 stream per (seed, side, row), so a row's
//  start does not depend on which thread draws it or in which order.

static uint64_t s_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void s_init_rows(float *factors, int32_t n_rows, int f, uint64_t seed, uint64_t side)
{
    for (int32_t r = 0; r < n_rows; r++) {
        //  The start state is a hash of (seed, side, row), so the streams of
        //  neighbouring rows are unrelated (not shifted copies of each other).
        uint64_t state = seed ^ (side * 0xd1b54a32d192ed03ull);
        state = s_splitmix(&state) ^ (uint64_t)r;
        state = s_splitmix(&state);
        float *row = factors + (size_t)r * (size_t)f;
        for (int k = 0; k < f; k++) {
            //  24 random bits -> [0, 1), scaled small as in `implicit`.
            float u = (float)(s_splitmix(&state) >> 40) / 16777216.0f;
            row[k] = u * 0.01f;
        }
    }
}

//  ---------------------------------------------------------------------
//  Row solve and row loss.

typedef struct {
    const feedback_matrix_t *m; //  rows being solved (users x items or items x users)
    const float *other;         //  the fixed side's factors, m->n_cols x f
    const float *gram_reg;      //  other^T other + reg I
    float *rows;                //  the side being solved, m->n_rows x f
    float alpha, reg;
    int f, cg_steps;
    float *scratch;    //  per worker: 4 f-vectors
    double *partial;   //  per chunk loss, for the loss pass
    const float *gram; //  other^T other, for the loss pass
} s_half_t;

static void s_solve_row(const s_half_t *h, int32_t row, float *scratch)
{
    const int f = h->f;
    float *x = h->rows + (size_t)row * (size_t)f;
    float *r = scratch, *p = scratch + f, *ap = scratch + 2 * (size_t)f;
    int64_t begin = h->m->row_ptr[row], end = h->m->row_ptr[row + 1];
    const int32_t *col = h->m->col;
    const float *val = h->m->val;

    //  r = b - A x
    s_symv(h->gram_reg, x, r, f);
    for (int k = 0; k < f; k++)
        r[k] = -r[k];
    for (int64_t e = begin; e < end; e++) {
        if (e + S_PREFETCH_AHEAD < end)
            s_prefetch_row(h->other + (size_t)col[e + S_PREFETCH_AHEAD] * (size_t)f, f);
        const float *y = h->other + (size_t)col[e] * (size_t)f;
        float c = s_confidence(h->alpha, val[e]);
        float target = val[e] > 0.0f ? c : 0.0f;
        s_axpy(target - (c - 1.0f) * s_dot(y, x, f), y, r, f);
    }
    memcpy(p, r, (size_t)f * sizeof *p);
    float rs_old = s_dot(r, r, f);
    if (rs_old < 1e-20f)
        return;
    for (int step = 0; step < h->cg_steps; step++) {
        s_symv(h->gram_reg, p, ap, f);
        for (int64_t e = begin; e < end; e++) {
            if (e + S_PREFETCH_AHEAD < end)
                s_prefetch_row(h->other + (size_t)col[e + S_PREFETCH_AHEAD] * (size_t)f, f);
            const float *y = h->other + (size_t)col[e] * (size_t)f;
            float c = s_confidence(h->alpha, val[e]);
            s_axpy((c - 1.0f) * s_dot(y, p, f), y, ap, f);
        }
        float p_ap = s_dot(p, ap, f);
        if (!(p_ap > 0.0f))
            break; //  A is positive definite; this only guards against round-off
        float a = rs_old / p_ap;
        s_axpy(a, p, x, f);
        s_axpy(-a, ap, r, f);
        float rs_new = s_dot(r, r, f);
        if (rs_new < 1e-20f)
            break;
        float beta = rs_new / rs_old;
        for (int k = 0; k < f; k++)
            p[k] = r[k] + beta * p[k];
        rs_old = rs_new;
    }
}

//  Weighted squared error of one row: x^T G x covers every cell as if it
//  were empty (c = 1, p = 0); each stored cell then swaps its term
//  s^2 for c (p - s)^2. Plus reg |x|^2.
static double s_row_loss(const s_half_t *h, int32_t row, float *scratch)
{
    const int f = h->f;
    const float *x = h->rows + (size_t)row * (size_t)f;
    s_symv(h->gram, x, scratch, f);
    double loss = s_dot(x, scratch, f);
    for (int64_t e = h->m->row_ptr[row]; e < h->m->row_ptr[row + 1]; e++) {
        const float *y = h->other + (size_t)h->m->col[e] * (size_t)f;
        double s = s_dot(y, x, f);
        double c = s_confidence(h->alpha, h->m->val[e]);
        double pref = h->m->val[e] > 0.0f ? 1.0 : 0.0;
        loss += c * (pref - s) * (pref - s) - s * s;
    }
    return loss + h->reg * (double)s_dot(x, x, f);
}

//  ---------------------------------------------------------------------
//  Worker pool: chunks of S_CHUNK rows from an atomic counter.

typedef enum { S_SOLVE, S_LOSS } s_task_t;

typedef struct {
    const s_half_t *half;
    s_task_t task;
    int32_t n_chunks;
    atomic_int next;
} s_job_t;

typedef struct {
    s_job_t *job;
    int worker;
} s_worker_arg_t;

static void *s_worker(void *varg)
{
    s_worker_arg_t *arg = varg;
    s_job_t *job = arg->job;
    const s_half_t *h = job->half;
    float *scratch = h->scratch + (size_t)arg->worker * 4 * (size_t)h->f;
    for (;;) {
        int32_t chunk = atomic_fetch_add(&job->next, 1);
        if (chunk >= job->n_chunks)
            break;
        int32_t begin = chunk * S_CHUNK;
        int32_t end = begin + S_CHUNK < h->m->n_rows ? begin + S_CHUNK : h->m->n_rows;
        if (job->task == S_SOLVE)
            for (int32_t r = begin; r < end; r++)
                s_solve_row(h, r, scratch);
        else {
            double sum = 0;
            for (int32_t r = begin; r < end; r++)
                sum += s_row_loss(h, r, scratch);
            h->partial[chunk] = sum;
        }
    }
    return NULL;
}

//  Runs the task over every row with up to n_threads threads, the caller
//  being one of them. A thread that cannot be created just leaves its
//  share to the others, so this cannot fail.
static void s_run(const s_half_t *h, s_task_t task, int n_threads)
{
    s_job_t job = {.half = h, .task = task, .n_chunks = (h->m->n_rows + S_CHUNK - 1) / S_CHUNK};
    atomic_init(&job.next, 0);
    pthread_t tids[S_MAX_THREADS];
    s_worker_arg_t args[S_MAX_THREADS];
    bool started[S_MAX_THREADS] = {false};
    for (int t = 1; t < n_threads; t++) {
        args[t] = (s_worker_arg_t){&job, t};
        started[t] = pthread_create(&tids[t], NULL, s_worker, &args[t]) == 0;
    }
    args[0] = (s_worker_arg_t){&job, 0};
    s_worker(&args[0]);
    for (int t = 1; t < n_threads; t++)
        if (started[t])
            pthread_join(tids[t], NULL);
}

//  ---------------------------------------------------------------------

static als_model_t *s_model_new(int32_t n_users, int32_t n_items, int f)
{
    als_model_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->owned = true;
    self->n_users = n_users;
    self->n_items = n_items;
    self->factors = f;
    self->user_factors = malloc(((size_t)n_users * f + 1) * sizeof(float));
    self->item_factors = malloc(((size_t)n_items * f + 1) * sizeof(float));
    self->gram = malloc((size_t)f * f * sizeof(float));
    if (!self->user_factors || !self->item_factors || !self->gram)
        als_model_destroy(&self);
    return self;
}

void als_model_destroy(als_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    als_model_t *self = *self_p;
    if (self->owned) {
        free(self->user_factors);
        free(self->item_factors);
        free(self->gram);
    }
    free(self);
    *self_p = NULL;
}

static int s_check(const feedback_matrix_t *ui, const als_params_t *p, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!ui || !p)
        why = "no matrix or no parameters";
    else if (p->factors < 1 || p->factors > ALS_MAX_FACTORS)
        why = "factors must be in 1..1024";
    else if (p->iterations < 1)
        why = "iterations must be >= 1";
    else if (!isfinite(p->regularization) || !(p->regularization > 0.0f))
        why = "regularization must be finite and > 0";
    else if (!isfinite(p->alpha) || p->alpha < 0.0f)
        why = "alpha must be finite and >= 0";
    else if (p->cg_steps < 1)
        why = "cg_steps must be >= 1";
    else if (p->threads < 0)
        why = "threads must be >= 0";
    else if (ui->n_rows < 1 || ui->n_cols < 1 || ui->nnz < 1)
        why = "empty feedback matrix";
    if (!why)
        for (int64_t e = 0; e < ui->nnz; e++)
            if (!isfinite(ui->val[e])) {
                why = "feedback matrix holds a value that is not finite";
                break;
            }
    if (why) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    return 0;
}

static int s_thread_count(const als_params_t *p)
{
    long n = p->threads;
    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > S_MAX_THREADS ? S_MAX_THREADS : (int)n;
}

static void s_add_diagonal(float *dst, const float *gram, int f, float reg)
{
    memcpy(dst, gram, (size_t)f * f * sizeof *dst);
    for (int k = 0; k < f; k++)
        dst[(size_t)k * f + k] += reg;
}

//  Total confidence weight: every cell counts 1, a stored cell c.
static double s_total_weight(const feedback_matrix_t *ui, float alpha)
{
    double w = (double)ui->n_rows * (double)ui->n_cols;
    for (int64_t e = 0; e < ui->nnz; e++)
        w += s_confidence(alpha, ui->val[e]) - 1.0f;
    return w;
}

als_model_t *als_train(const feedback_matrix_t *ui, const als_params_t *p, als_progress_fn progress,
                       void *arg, char *err, size_t errlen)
{
    if (s_check(ui, p, err, errlen) != 0)
        return NULL;
    const int f = p->factors;
    const int n_threads = s_thread_count(p);
    const int32_t n_chunks = (ui->n_rows + S_CHUNK - 1) / S_CHUNK;

    feedback_matrix_t *iu = NULL;
    float *gram = malloc((size_t)f * f * sizeof *gram);
    float *gram_reg = malloc((size_t)f * f * sizeof *gram_reg);
    float *scratch = malloc((size_t)n_threads * 4 * f * sizeof *scratch);
    double *partial = progress ? malloc((size_t)n_chunks * sizeof *partial) : NULL;
    als_model_t *self = s_model_new(ui->n_rows, ui->n_cols, f);
    iu = feedback_matrix_transpose(ui);
    if (!gram || !gram_reg || !scratch || (progress && !partial) || !self || !iu) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    self->regularization = p->regularization;
    self->alpha = p->alpha;
    s_init_rows(self->user_factors, ui->n_rows, f, p->seed, 1);
    s_init_rows(self->item_factors, ui->n_cols, f, p->seed, 2);
    const double total_weight = progress ? s_total_weight(ui, p->alpha) : 1.0;

    s_half_t user_step = {.m = ui,
                          .other = self->item_factors,
                          .gram_reg = gram_reg,
                          .rows = self->user_factors,
                          .alpha = p->alpha,
                          .reg = p->regularization,
                          .f = f,
                          .cg_steps = p->cg_steps,
                          .scratch = scratch,
                          .partial = partial,
                          .gram = gram};
    s_half_t item_step = user_step;
    item_step.m = iu;
    item_step.other = self->user_factors;
    item_step.rows = self->item_factors;

    for (int it = 1; it <= p->iterations; it++) {
        als_compute_gram(self->item_factors, ui->n_cols, f, gram);
        s_add_diagonal(gram_reg, gram, f, p->regularization);
        s_run(&user_step, S_SOLVE, n_threads);
        als_compute_gram(self->user_factors, ui->n_rows, f, gram);
        s_add_diagonal(gram_reg, gram, f, p->regularization);
        s_run(&item_step, S_SOLVE, n_threads);
        if (!progress)
            continue;
        //  Loss over the user rows with the new item factors; the item
        //  side's regularization is added separately.
        als_compute_gram(self->item_factors, ui->n_cols, f, gram);
        s_run(&user_step, S_LOSS, n_threads);
        double loss = 0;
        for (int32_t c = 0; c < n_chunks; c++)
            loss += partial[c];
        for (int32_t i = 0; i < ui->n_cols; i++) {
            const float *y = self->item_factors + (size_t)i * f;
            loss += p->regularization * (double)s_dot(y, y, f);
        }
        if (progress(it, p->iterations, loss / total_weight, arg) != 0) {
            snprintf(err, errlen, "cancelled");
            goto err;
        }
    }
    als_compute_gram(self->item_factors, ui->n_cols, f, self->gram);
    feedback_matrix_destroy(&iu);
    free(gram);
    free(gram_reg);
    free(scratch);
    free(partial);
    return self;
err:
    feedback_matrix_destroy(&iu);
    free(gram);
    free(gram_reg);
    free(scratch);
    free(partial);
    als_model_destroy(&self);
    return NULL;
}

//  ---------------------------------------------------------------------
//  Fold-in: the exact least-squares solve for one user against the fixed
//  item factors, with BLAS/LAPACK (it is on the ranker's request path):
//      (Y^T Y + reg I + Y_u^T (C_u - I) Y_u) x = Y_u^T C_u p_u
//  Y^T Y is the model's cached Gram matrix; the user's own rows are added
//  by one rank-k update (ssyrk) and the system solved by Cholesky (sposv).
//  Single precision: reg > 0 keeps the system well conditioned, and the
//  factors themselves are float.

//  LAPACK (Fortran) from OpenBLAS, as in ease.c: column-major, by
//  reference, the character argument's hidden length last.
void sposv_(const char *uplo, const int *n, const int *nrhs, float *a, const int *lda, float *b,
            const int *ldb, int *info, size_t uplo_len);

int als_fold_in(const als_model_t *self, const user_history_t *h, float *user_vec)
{
    const int f = self->factors;
    const int32_t len = h->len > 0 ? h->len : 0;
    float *a = malloc(((size_t)f * f + (size_t)len * f) * sizeof *a);
    if (!a)
        return -1;
    float *w = a + (size_t)f * f; //  the user's rows, scaled by sqrt(c - 1)
    memcpy(a, self->gram, (size_t)f * f * sizeof *a);
    for (int r = 0; r < f; r++)
        a[(size_t)r * f + r] += (float)self->regularization;
    memset(user_vec, 0, (size_t)f * sizeof *user_vec);
    int rows = 0;
    for (int32_t e = 0; e < len; e++) {
        int32_t item = h->items[e];
        float v = h->values[e];
        if (item < 0 || item >= self->n_items || v == 0.0f || !isfinite(v))
            continue;
        const float *y = self->item_factors + (size_t)item * f;
        float c = s_confidence(self->alpha, v);
        float scale = sqrtf(c - 1.0f);
        for (int k = 0; k < f; k++)
            w[(size_t)rows * f + k] = scale * y[k];
        rows++;
        if (v > 0.0f)
            cblas_saxpy(f, c, y, 1, user_vec, 1);
    }
    if (rows == 0) {
        free(a);
        return 0;
    }
    //  Row-major lower triangle = column-major upper: hence "U" below.
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, f, rows, 1.0f, w, f, 1.0f, a, f);
    int one = 1, info = 0;
    sposv_("U", &f, &one, a, &f, user_vec, &f, &info, 1);
    //  A is gram + reg I plus positive semi-definite terms with reg > 0, so
    //  Cholesky fails only on a model whose arrays are garbage; answer 0
    //  then, which scores every video alike.
    if (info != 0)
        memset(user_vec, 0, (size_t)f * sizeof *user_vec);
    free(a);
    return 0;
}

static int s_score(const void *model, const user_history_t *history, float *scores)
{
    const als_model_t *self = model;
    float *u = malloc((size_t)self->factors * sizeof *u);
    if (!u || als_fold_in(self, history, u) != 0) {
        free(u);
        return -1;
    }
    if (self->n_items > 0)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, self->n_items, self->factors, 1.0f,
                    self->item_factors, self->factors, u, 1, 0.0f, scores, 1);
    free(u);
    return 0;
}

scorer_t als_scorer(const als_model_t *self)
{
    return (scorer_t){.model = self, .n_items = self->n_items, .score = s_score};
}
