/*  feedback_matrix.h: implicit feedback of users on videos, as compressed
    sparse rows (CSR), the input of every training algorithm.

    Row u holds user u's videos in ascending index order, each with one
    signed preference strength: > 0 the user liked it (watched far, rated
    high, put it on the watchlist), < 0 the user disliked it (low rating,
    removed from the watchlist). Several events on the same (user, video)
    are summed when the matrix is built. Indexes are dense (0..n-1); the
    mapping to ids lives with the caller (training_data).

    The struct is transparent on purpose: numeric kernels (ALS, EASE,
    evaluation) walk the arrays directly. Treat it as read-only once built;
    it may then be shared by many threads.
*/
#ifndef RECSD_FEEDBACK_MATRIX_H
#define RECSD_FEEDBACK_MATRIX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t n_rows; //  users (or videos, for a transposed matrix)
    int32_t n_cols; //  videos (or users)
    int64_t nnz;
    int64_t *row_ptr; //  n_rows + 1 offsets into col/val
    int32_t *col;     //  nnz column indexes, ascending within a row
    float *val;       //  nnz signed preference strengths, never 0
} feedback_matrix_t;

//  Builds the matrix from n (row, col, value) triples in any order;
//  duplicates are summed and entries that sum to exactly 0 are dropped.
//  Triples out of range are an error. Returns a matrix the caller owns, or
//  NULL (out of memory, bad index).
feedback_matrix_t *feedback_matrix_new(int32_t n_rows, int32_t n_cols, const int32_t *rows,
                                       const int32_t *cols, const float *vals, size_t n);

//  The transpose (videos x users), a new matrix the caller owns, or NULL
//  on allocation failure.
feedback_matrix_t *feedback_matrix_transpose(const feedback_matrix_t *self);

//  Frees the matrix; idempotent, sets *self_p to NULL.
void feedback_matrix_destroy(feedback_matrix_t **self_p);

#endif
