/*  triples.c: test matrices from triples (see triples.h). */
#include "triples.h"

#include <criterion/criterion.h>

void triples_add(triples_t *t, int32_t row, int32_t col, float value)
{
    cr_assert_lt(t->n, TRIPLES_MAX);
    t->rows[t->n] = row;
    t->cols[t->n] = col;
    t->vals[t->n] = value;
    t->n++;
}

feedback_matrix_t *triples_matrix(const triples_t *t, int32_t n_rows, int32_t n_cols)
{
    feedback_matrix_t *m = feedback_matrix_new(n_rows, n_cols, t->rows, t->cols, t->vals, t->n);
    cr_assert(m);
    return m;
}

feedback_matrix_t *triples_two_groups(void)
{
    static triples_t t; //  too large for a criterion worker's stack
    t.n = 0;
    for (int32_t u = 0; u < 20; u++)
        for (int32_t k = 0; k < 5; k++)
            if (k != u % 5)
                triples_add(&t, u, (u < 10 ? 0 : 5) + k, 1.0f);
    return triples_matrix(&t, 20, 10);
}
