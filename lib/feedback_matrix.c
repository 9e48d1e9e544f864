/*  feedback_matrix.c: building the CSR feedback matrix from triples.

    Counting sort by row, then a sort of each row by column so duplicates
    are adjacent and can be summed in place: O(nnz log(row length)), no
    hash tables, memory of two copies of the triples at most.
*/
#include "feedback_matrix.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t col;
    float val;
} s_entry_t;

static int s_entry_cmp(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    return (x->col > y->col) - (x->col < y->col);
}

static feedback_matrix_t *s_alloc(int32_t n_rows, int32_t n_cols, int64_t nnz)
{
    feedback_matrix_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->n_rows = n_rows;
    self->n_cols = n_cols;
    self->nnz = nnz;
    self->row_ptr = calloc((size_t)n_rows + 1, sizeof *self->row_ptr);
    self->col = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *self->col);
    self->val = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *self->val);
    if (!self->row_ptr || !self->col || !self->val)
        feedback_matrix_destroy(&self);
    return self;
}

feedback_matrix_t *feedback_matrix_new(int32_t n_rows, int32_t n_cols, const int32_t *rows,
                                       const int32_t *cols, const float *vals, size_t n)
{
    if (n_rows < 0 || n_cols < 0)
        return NULL;
    for (size_t k = 0; k < n; k++)
        if (rows[k] < 0 || rows[k] >= n_rows || cols[k] < 0 || cols[k] >= n_cols)
            return NULL;

    feedback_matrix_t *self = s_alloc(n_rows, n_cols, (int64_t)n);
    s_entry_t *entries = malloc((n > 0 ? n : 1) * sizeof *entries);
    int64_t *fill = calloc((size_t)n_rows + 1, sizeof *fill);
    if (!self || !entries || !fill)
        goto err;

    //  Counting sort by row.
    for (size_t k = 0; k < n; k++)
        self->row_ptr[rows[k] + 1]++;
    for (int32_t r = 0; r < n_rows; r++)
        self->row_ptr[r + 1] += self->row_ptr[r];
    memcpy(fill, self->row_ptr, ((size_t)n_rows + 1) * sizeof *fill);
    for (size_t k = 0; k < n; k++)
        entries[fill[rows[k]]++] = (s_entry_t){cols[k], vals[k]};

    //  Sort each row by column, sum duplicates, drop zero sums, compact.
    int64_t out = 0;
    for (int32_t r = 0; r < n_rows; r++) {
        int64_t begin = self->row_ptr[r], end = self->row_ptr[r + 1];
        qsort(entries + begin, (size_t)(end - begin), sizeof *entries, s_entry_cmp);
        self->row_ptr[r] = out;
        for (int64_t k = begin; k < end;) {
            int32_t c = entries[k].col;
            float sum = 0;
            for (; k < end && entries[k].col == c; k++)
                sum += entries[k].val;
            if (sum != 0.0f) {
                self->col[out] = c;
                self->val[out] = sum;
                out++;
            }
        }
    }
    self->row_ptr[n_rows] = out;
    self->nnz = out;
    free(entries);
    free(fill);
    return self;
err:
    free(entries);
    free(fill);
    feedback_matrix_destroy(&self);
    return NULL;
}

feedback_matrix_t *feedback_matrix_transpose(const feedback_matrix_t *self)
{
    feedback_matrix_t *t = s_alloc(self->n_cols, self->n_rows, self->nnz);
    int64_t *fill = calloc((size_t)self->n_cols + 1, sizeof *fill);
    if (!t || !fill) {
        free(fill);
        feedback_matrix_destroy(&t);
        return NULL;
    }
    for (int64_t k = 0; k < self->nnz; k++)
        t->row_ptr[self->col[k] + 1]++;
    for (int32_t c = 0; c < self->n_cols; c++)
        t->row_ptr[c + 1] += t->row_ptr[c];
    memcpy(fill, t->row_ptr, ((size_t)self->n_cols + 1) * sizeof *fill);
    //  Rows are visited in ascending order, so each transposed row comes out
    //  sorted by column without a sort.
    for (int32_t r = 0; r < self->n_rows; r++)
        for (int64_t k = self->row_ptr[r]; k < self->row_ptr[r + 1]; k++) {
            int64_t at = fill[self->col[k]]++;
            t->col[at] = r;
            t->val[at] = self->val[k];
        }
    free(fill);
    return t;
}

void feedback_matrix_destroy(feedback_matrix_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    feedback_matrix_t *self = *self_p;
    free(self->row_ptr);
    free(self->col);
    free(self->val);
    free(self);
    *self_p = NULL;
}
