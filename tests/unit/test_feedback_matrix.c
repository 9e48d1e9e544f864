/*  test_feedback_matrix.c: building the CSR feedback matrix and its
    transpose (feedback_matrix.c).
*/
#include <criterion/criterion.h>

#include "feedback_matrix.h"
#include "leak_check.h"

TestSuite(feedback_matrix, .fini = leak_check_fini);

Test(feedback_matrix, sorts_rows_and_sums_duplicates)
{
    //  (row, col, val) in scrambled order, (1,2) twice, (0,1) cancelling out.
    int32_t rows[] = {1, 0, 1, 2, 0, 1, 0};
    int32_t cols[] = {2, 3, 0, 1, 1, 2, 1};
    float vals[] = {1.0f, 2.0f, 0.5f, -1.0f, 1.0f, 0.25f, -1.0f};
    feedback_matrix_t *m = feedback_matrix_new(3, 4, rows, cols, vals, 7);
    cr_assert(m);
    cr_assert_eq(m->nnz, 4);
    int64_t want_ptr[] = {0, 1, 3, 4};
    for (int r = 0; r <= 3; r++)
        cr_assert_eq(m->row_ptr[r], want_ptr[r], "row_ptr[%d]", r);
    int32_t want_col[] = {3, 0, 2, 1};
    float want_val[] = {2.0f, 0.5f, 1.25f, -1.0f};
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(m->col[k], want_col[k], "col[%d]", k);
        cr_assert_float_eq(m->val[k], want_val[k], 1e-6, "val[%d]", k);
    }
    feedback_matrix_destroy(&m);
    cr_assert_null(m);
    feedback_matrix_destroy(&m);
}

Test(feedback_matrix, transpose_round_trips)
{
    int32_t rows[] = {0, 0, 1, 2, 2, 2};
    int32_t cols[] = {0, 4, 4, 1, 2, 4};
    float vals[] = {1, 2, 3, 4, 5, 6};
    feedback_matrix_t *m = feedback_matrix_new(3, 5, rows, cols, vals, 6);
    cr_assert(m);
    feedback_matrix_t *t = feedback_matrix_transpose(m);
    cr_assert(t);
    cr_assert_eq(t->n_rows, 5);
    cr_assert_eq(t->n_cols, 3);
    cr_assert_eq(t->nnz, 6);
    //  Column 4 of m is row 4 of t: users 0, 1, 2 with 2, 3, 6.
    cr_assert_eq(t->row_ptr[5] - t->row_ptr[4], 3);
    int64_t at = t->row_ptr[4];
    cr_assert_eq(t->col[at], 0);
    cr_assert_eq(t->col[at + 2], 2);
    cr_assert_float_eq(t->val[at + 1], 3.0f, 1e-6);
    cr_assert_eq(t->row_ptr[4] - t->row_ptr[3], 0, "column 3 is empty");
    feedback_matrix_t *back = feedback_matrix_transpose(t);
    cr_assert(back);
    cr_assert_eq(back->nnz, m->nnz);
    for (int r = 0; r <= 3; r++)
        cr_assert_eq(back->row_ptr[r], m->row_ptr[r]);
    for (int64_t k = 0; k < m->nnz; k++) {
        cr_assert_eq(back->col[k], m->col[k]);
        cr_assert_float_eq(back->val[k], m->val[k], 1e-6);
    }
    feedback_matrix_destroy(&back);
    feedback_matrix_destroy(&t);
    feedback_matrix_destroy(&m);
}

Test(feedback_matrix, rejects_out_of_range_and_allows_empty)
{
    int32_t rows[] = {0, 3};
    int32_t cols[] = {0, 0};
    float vals[] = {1, 1};
    cr_assert_null(feedback_matrix_new(3, 2, rows, cols, vals, 2));
    int32_t neg[] = {-1};
    cr_assert_null(feedback_matrix_new(3, 2, neg, cols, vals, 1));
    feedback_matrix_t *empty = feedback_matrix_new(4, 2, NULL, NULL, NULL, 0);
    cr_assert(empty);
    cr_assert_eq(empty->nnz, 0);
    cr_assert_eq(empty->row_ptr[4], 0);
    feedback_matrix_destroy(&empty);
}
