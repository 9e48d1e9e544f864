/*  triples.h: building small feedback matrices in tests, from (row, col,
    value) triples, and the two-taste-groups matrix the algorithm tests
    share.

    The functions are test assertions: on failure they fail the current
    test (cr_assert) instead of returning an error.
*/
#ifndef RECSD_TRIPLES_H
#define RECSD_TRIPLES_H

#include <stddef.h>
#include <stdint.h>

#include "feedback_matrix.h"

#define TRIPLES_MAX 8192

typedef struct {
    int32_t rows[TRIPLES_MAX], cols[TRIPLES_MAX];
    float vals[TRIPLES_MAX];
    size_t n;
} triples_t;

//  Appends one triple; fails the test when TRIPLES_MAX are there already.
void triples_add(triples_t *t, int32_t row, int32_t col, float value);

//  The matrix of t (feedback_matrix_new); the caller owns it. Fails the
//  test if it cannot be built.
feedback_matrix_t *triples_matrix(const triples_t *t, int32_t n_rows, int32_t n_cols);

//  Two disjoint taste groups: users 0..9 like videos 0..4, users 10..19
//  videos 5..9, each user missing one video of the group (u % 5), value 1.
//  The caller owns the matrix.
feedback_matrix_t *triples_two_groups(void);

#endif
