/*  ease.c: EASE training (Gram matrix of the binary subset, Cholesky
    inverse via LAPACK spotrf/spotri) and its scorer.

    The Gram matrix G = X^T X is built sparsely, user by user, from the
    pairs of liked subset videos in each history: O(sum of squared history
    lengths), never a dense users x videos block. Counts are exact in
    float32 up to 2^24 users per pair.
*/
#include "ease.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  LAPACK (Fortran) from OpenBLAS; there is no lapacke.h. Column-major,
//  everything by reference, and the hidden length of the character
//  argument last, as gfortran passes it (OpenBLAS's own C versions ignore
//  it).
void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);

typedef struct {
    int32_t item;
    int32_t count;
} s_pop_t;

//  Most liked first, ties to the lower index.
static int s_pop_cmp(const void *a, const void *b)
{
    const s_pop_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

static int s_int_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void ease_model_destroy(ease_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ease_model_t *self = *self_p;
    if (self->owned) {
        free(self->sub_items);
        free(self->b);
    }
    free(self);
    *self_p = NULL;
}

ease_model_t *ease_train(const feedback_matrix_t *ui, float lambda, int32_t max_items, char *err,
                         size_t errlen)
{
    ease_model_t *self = NULL;
    s_pop_t *pop = NULL;
    int32_t *pos = NULL, *liked = NULL;
    float *diag = NULL;
    if (!ui) {
        snprintf(err, errlen, "no feedback matrix");
        return NULL;
    }
    if (!isfinite(lambda) || !(lambda > 0.0f)) {
        snprintf(err, errlen, "lambda must be finite and > 0");
        return NULL;
    }
    if (max_items < 1 || max_items > EASE_MAX_ITEMS) {
        snprintf(err, errlen, "max_items must be in 1..%d", EASE_MAX_ITEMS);
        return NULL;
    }
    const int32_t n_items = ui->n_cols;
    pop = calloc((size_t)n_items + 1, sizeof *pop);
    pos = malloc(((size_t)n_items + 1) * sizeof *pos);
    self = calloc(1, sizeof *self);
    if (!pop || !pos || !self)
        goto oom;
    self->owned = true;
    self->n_items = n_items;

    //  Choose the subset: the most liked videos.
    for (int32_t i = 0; i < n_items; i++)
        pop[i].item = i;
    int32_t longest = 0;
    for (int32_t u = 0; u < ui->n_rows; u++) {
        int32_t len = 0;
        for (int64_t e = ui->row_ptr[u]; e < ui->row_ptr[u + 1]; e++)
            if (ui->val[e] > 0.0f) {
                pop[ui->col[e]].count++;
                len++;
            }
        longest = len > longest ? len : longest;
    }
    qsort(pop, (size_t)n_items, sizeof *pop, s_pop_cmp);
    int32_t n = 0;
    while (n < n_items && n < max_items && pop[n].count > 0)
        n++;
    if (n == 0) {
        snprintf(err, errlen, "no positive feedback to train on");
        goto err;
    }
    self->n_sub = n;
    self->sub_items = malloc((size_t)n * sizeof *self->sub_items);
    self->b = calloc((size_t)n * (size_t)n, sizeof *self->b);
    liked = malloc(((size_t)longest + 1) * sizeof *liked);
    diag = malloc((size_t)n * sizeof *diag);
    if (!self->sub_items || !self->b || !liked || !diag)
        goto oom;
    for (int32_t k = 0; k < n; k++)
        self->sub_items[k] = pop[k].item;
    qsort(self->sub_items, (size_t)n, sizeof *self->sub_items, s_int_cmp);
    for (int32_t i = 0; i < n_items; i++)
        pos[i] = -1;
    for (int32_t k = 0; k < n; k++)
        pos[self->sub_items[k]] = k;

    //  G = X^T X on the subset (upper triangle, row-major: row a <= col b),
    //  plus lambda on the diagonal.
    float *g = self->b;
    for (int32_t u = 0; u < ui->n_rows; u++) {
        int32_t len = 0;
        for (int64_t e = ui->row_ptr[u]; e < ui->row_ptr[u + 1]; e++)
            if (ui->val[e] > 0.0f && pos[ui->col[e]] >= 0)
                liked[len++] = pos[ui->col[e]]; //  ascending: columns and pos are both sorted
        for (int32_t x = 0; x < len; x++) {
            float *row = g + (size_t)liked[x] * (size_t)n;
            for (int32_t y = x; y < len; y++)
                row[liked[y]] += 1.0f;
        }
    }
    for (int32_t k = 0; k < n; k++)
        g[(size_t)k * n + k] += lambda;

    //  P = G^-1. Row-major upper is column-major lower, hence "L".
    int info = 0, dim = n;
    spotrf_("L", &dim, g, &dim, &info, 1);
    if (info == 0)
        spotri_("L", &dim, g, &dim, &info, 1);
    if (info != 0) {
        snprintf(err, errlen, "EASE factorisation failed (LAPACK info %d)", info);
        goto err;
    }
    //  spotri filled the row-major upper triangle; B_ij = -P_ij / P_jj
    //  for i != j, 0 on the diagonal. Mirror first so that each B entry
    //  reads a P entry not yet overwritten.
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < i; j++)
            g[(size_t)i * n + j] = g[(size_t)j * n + i];
    for (int32_t j = 0; j < n; j++)
        diag[j] = g[(size_t)j * n + j];
    for (int32_t i = 0; i < n; i++) {
        float *row = g + (size_t)i * n;
        for (int32_t j = 0; j < n; j++)
            row[j] = i == j ? 0.0f : -row[j] / diag[j];
    }
    free(pop);
    free(pos);
    free(liked);
    free(diag);
    return self;
oom:
    snprintf(err, errlen, "out of memory");
err:
    free(pop);
    free(pos);
    free(liked);
    free(diag);
    ease_model_destroy(&self);
    return NULL;
}

//  The user's scores are the sum of B's rows of their liked videos. The
//  rows are added in the model's own (dense) index space with saxpy, then
//  placed once: adding each row straight into the catalogue's positions
//  was a scatter per element, ~36% of a hybrid answer's time on
//  MovieLens. Same sums in the same order, so the same scores.
static int s_score(const void *model, const user_history_t *history, float *scores)
{
    const ease_model_t *self = model;
    const int32_t n = self->n_sub;
    float *sum = calloc(n > 0 ? (size_t)n : 1, sizeof *sum);
    if (!sum)
        return -1;
    for (int32_t h = 0; h < history->len; h++) {
        if (!(history->values[h] > 0.0f))
            continue;
        int32_t item = history->items[h];
        const int32_t *at = bsearch(&item, self->sub_items, (size_t)n, sizeof item, s_int_cmp);
        if (at)
            cblas_saxpy(n, 1.0f, self->b + (size_t)(at - self->sub_items) * (size_t)n, 1, sum, 1);
    }
    for (int32_t j = 0; j < self->n_items; j++)
        scores[j] = -INFINITY;
    for (int32_t k = 0; k < n; k++)
        scores[self->sub_items[k]] = sum[k];
    free(sum);
    return 0;
}

scorer_t ease_scorer(const ease_model_t *self)
{
    return (scorer_t){.model = self, .n_items = self->n_items, .score = s_score};
}
