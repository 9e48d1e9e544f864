/*  test_item_knn.c: the co-consumption cosine neighbours (item_knn.c):
    hand-computed similarities, agreement with a dense brute force through
    item_neighbours_set_row, thread-count independence, taste groups and
    parameter checks.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "item_knn.h"
#include "leak_check.h"
#include "triples.h"

TestSuite(item_knn, .fini = leak_check_fini, .timeout = 60);

//  Exact equality, element by element (memcmp on floats is frowned upon:
//  +0 and -0 differ in bits).
static bool s_same(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static item_neighbours_t *s_train(const feedback_matrix_t *m, int32_t k, int threads)
{
    char err[256] = "";
    item_neighbours_t *t = item_knn_train(m, k, threads, err, sizeof err);
    cr_assert(t, "item_knn_train: %s", err);
    return t;
}

Test(item_knn, hand_computed_cosines_ties_and_dislikes)
{
    //  Liked: video 0 by {0, 1}, video 1 by {0, 1}, video 2 by {1, 2, 3};
    //  user 3 disliked video 1 (not a co-consumption), video 3 was only
    //  disliked (no neighbours, nobody's neighbour).
    triples_t *t = calloc(1, sizeof *t);
    cr_assert(t);
    triples_add(t, 0, 0, 1);
    triples_add(t, 0, 1, 0.5f);
    triples_add(t, 1, 0, 1);
    triples_add(t, 1, 1, 1);
    triples_add(t, 1, 2, 3);
    triples_add(t, 2, 2, 1);
    triples_add(t, 2, 3, -1);
    triples_add(t, 3, 1, -1);
    triples_add(t, 3, 2, 1);
    feedback_matrix_t *m = triples_matrix(t, 4, 4);
    free(t);
    item_neighbours_t *nb = s_train(m, 3, 1);
    cr_assert_eq(nb->n_items, 4);
    cr_assert_eq(nb->k, 3);
    cr_assert(nb->owned);
    float third = (float)(1.0 / sqrt(6.0));
    //  video 0: 1 (cos 1), 2 (1/sqrt 6), then padding
    cr_assert_eq(nb->idx[0], 1);
    cr_assert_float_eq(nb->sim[0], 1.0f, 1e-6);
    cr_assert_eq(nb->idx[1], 2);
    cr_assert_float_eq(nb->sim[1], third, 1e-6);
    cr_assert_eq(nb->idx[2], -1);
    cr_assert_eq(nb->sim[2], 0.0f);
    //  video 2: 0 and 1 tie at 1/sqrt 6, lower index first
    cr_assert_eq(nb->idx[6], 0);
    cr_assert_eq(nb->idx[7], 1);
    cr_assert_float_eq(nb->sim[7], third, 1e-6);
    cr_assert_eq(nb->idx[8], -1);
    //  video 3: nothing, and nobody links to it
    for (int r = 0; r < 3; r++)
        cr_assert_eq(nb->idx[9 + r], -1);
    for (int c = 0; c < 12; c++)
        cr_assert_neq(nb->idx[c], 3);
    item_neighbours_destroy(&nb);

    //  k = 1 keeps only the best (and the tie's lower index).
    nb = s_train(m, 1, 1);
    cr_assert_eq(nb->idx[0], 1);
    cr_assert_eq(nb->idx[2], 0);
    cr_assert_eq(nb->idx[3], -1);
    item_neighbours_destroy(&nb);
    feedback_matrix_destroy(&m);
}

static feedback_matrix_t *s_random(int32_t n_users, int32_t n_items, int per_user)
{
    triples_t *t = calloc(1, sizeof *t);
    cr_assert(t);
    uint32_t x = 4242;
    for (int32_t u = 0; u < n_users; u++)
        for (int k = 0; k < per_user; k++) {
            x = x * 1664525u + 1013904223u;
            //  Squaring skews popularity towards low indexes.
            uint32_t r = (x >> 8) % 1000u;
            int32_t item = (int32_t)((r * r / 1000u) * (uint32_t)n_items / 1000u);
            triples_add(t, u, item, ((x >> 4) & 7) == 0 ? -1.0f : 1.0f);
        }
    feedback_matrix_t *m = triples_matrix(t, n_users, n_items);
    free(t);
    return m;
}

Test(item_knn, agrees_with_dense_cosine_through_set_row_and_with_any_thread_count)
{
    const int32_t n_items = 150, k = 10;
    feedback_matrix_t *m = s_random(400, n_items, 15);
    item_neighbours_t *one = s_train(m, k, 1);
    item_neighbours_t *three = s_train(m, k, 3);
    cr_assert_eq(memcmp(one->idx, three->idx, (size_t)n_items * k * sizeof(int32_t)), 0);
    cr_assert(s_same(one->sim, three->sim, (size_t)n_items * k));

    //  Brute force: dense binary columns, dense cosine rows, set_row.
    float *x = calloc((size_t)400 * n_items, sizeof *x);
    float *sims = malloc((size_t)n_items * sizeof *sims);
    item_neighbours_t *dense = item_neighbours_new(n_items, k);
    cr_assert(x && sims && dense);
    for (int32_t u = 0; u < 400; u++)
        for (int64_t e = m->row_ptr[u]; e < m->row_ptr[u + 1]; e++)
            if (m->val[e] > 0)
                x[(size_t)u * n_items + m->col[e]] = 1.0f;
    int linked = 0;
    for (int32_t i = 0; i < n_items; i++) {
        for (int32_t j = 0; j < n_items; j++) {
            double co = 0, ni = 0, nj = 0;
            for (int32_t u = 0; u < 400; u++) {
                co += x[(size_t)u * n_items + i] * x[(size_t)u * n_items + j];
                ni += x[(size_t)u * n_items + i];
                nj += x[(size_t)u * n_items + j];
            }
            sims[j] = ni > 0 && nj > 0 ? (float)(co / sqrt(ni * nj)) : 0.0f;
        }
        item_neighbours_set_row(dense, i, sims);
    }
    for (size_t c = 0; c < (size_t)n_items * k; c++) {
        cr_assert_eq(one->idx[c], dense->idx[c], "cell %zu: %d vs %d", c, one->idx[c],
                     dense->idx[c]);
        cr_assert_float_eq(one->sim[c], dense->sim[c], 1e-6);
        linked += one->idx[c] >= 0;
    }
    cr_assert_gt(linked, n_items * k / 2, "the test matrix is too sparse to mean anything");
    free(x);
    free(sims);
    item_neighbours_destroy(&dense);
    item_neighbours_destroy(&one);
    item_neighbours_destroy(&three);
    feedback_matrix_destroy(&m);
}

Test(item_knn, unseen_video_of_own_group_ranks_above_other_group)
{
    triples_t *t = calloc(1, sizeof *t);
    cr_assert(t);
    for (int32_t u = 0; u < 20; u++)
        for (int32_t k = 0; k < 5; k++)
            if (k != u % 5)
                triples_add(t, u, (u < 10 ? 0 : 5) + k, 1.0f);
    feedback_matrix_t *m = triples_matrix(t, 20, 10);
    free(t);
    item_neighbours_t *nb = s_train(m, 20, 0);
    scorer_t scorer = item_neighbours_scorer(nb);
    int32_t items[] = {0, 1, 2, 3};
    float values[] = {1, 1, 1, 1};
    user_history_t h = {.items = items, .values = values, .len = 4};
    float scores[10];
    cr_assert_eq(scorer.score(scorer.model, &h, scores), 0);
    cr_assert(isfinite(scores[4]) && scores[4] > 0);
    for (int32_t j = 5; j < 10; j++)
        cr_assert_gt(scores[4], scores[j]);
    item_neighbours_destroy(&nb);
    feedback_matrix_destroy(&m);
}

Test(item_knn, bad_parameters_are_rejected)
{
    int32_t r[] = {0, 0};
    int32_t c[] = {0, 1};
    float v[] = {1, 1};
    feedback_matrix_t *m = feedback_matrix_new(1, 2, r, c, v, 2);
    cr_assert(m);
    char err[256];
    err[0] = '\0';
    cr_assert_null(item_knn_train(NULL, 5, 1, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    err[0] = '\0';
    cr_assert_null(item_knn_train(m, 0, 1, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    err[0] = '\0';
    cr_assert_null(item_knn_train(m, ITEM_NEIGHBOURS_MAX_K + 1, 1, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    err[0] = '\0';
    cr_assert_null(item_knn_train(m, 5, -1, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    //  An empty matrix is not an error: a table with no neighbours.
    feedback_matrix_t *empty = feedback_matrix_new(0, 3, NULL, NULL, NULL, 0);
    cr_assert(empty);
    item_neighbours_t *nb = s_train(empty, 2, 2);
    for (int c2 = 0; c2 < 6; c2++)
        cr_assert_eq(nb->idx[c2], -1);
    item_neighbours_destroy(&nb);
    feedback_matrix_destroy(&empty);
    feedback_matrix_destroy(&m);
}
