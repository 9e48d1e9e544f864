/*  test_item_neighbours.c: the k-nearest-videos table (item_neighbours.c):
    construction, row selection from a dense similarity row, and the
    scorer's sum of similarities.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "item_neighbours.h"
#include "leak_check.h"

TestSuite(item_neighbours, .fini = leak_check_fini, .timeout = 60);

Test(item_neighbours, new_table_is_empty_and_k_is_bounded)
{
    item_neighbours_t *t = item_neighbours_new(5, 3);
    cr_assert(t);
    cr_assert_eq(t->n_items, 5);
    cr_assert_eq(t->k, 3);
    cr_assert(t->owned);
    for (int c = 0; c < 15; c++) {
        cr_assert_eq(t->idx[c], -1);
        cr_assert_eq(t->sim[c], 0.0f);
    }
    item_neighbours_destroy(&t);
    cr_assert_null(t);
    item_neighbours_destroy(&t); //  idempotent

    cr_assert_null(item_neighbours_new(5, 0));
    cr_assert_null(item_neighbours_new(5, ITEM_NEIGHBOURS_MAX_K + 1));
    cr_assert_null(item_neighbours_new(-1, 3));
    t = item_neighbours_new(0, ITEM_NEIGHBOURS_MAX_K);
    cr_assert(t, "an empty catalogue is a valid table");
    item_neighbours_destroy(&t);
}

Test(item_neighbours, set_row_keeps_the_k_best_positive_others)
{
    item_neighbours_t *t = item_neighbours_new(6, 3);
    cr_assert(t);
    //  Row 2: itself is the best and must be dropped; 0.5 ties between 1
    //  and 4 (lower index first); negatives, zero and NaN never qualify.
    float sims[] = {0.2f, 0.5f, 9.0f, -1.0f, 0.5f, NAN};
    cr_assert_eq(item_neighbours_set_row(t, 2, sims), 0);
    cr_assert_eq(t->idx[6], 1);
    cr_assert_eq(t->idx[7], 4);
    cr_assert_eq(t->idx[8], 0);
    cr_assert_float_eq(t->sim[6], 0.5f, 1e-7);
    cr_assert_float_eq(t->sim[8], 0.2f, 1e-7);

    //  Fewer than k positive: padded with -1 / 0, other rows untouched.
    float few[] = {0.0f, -0.3f, 0.0f, 0.7f, 0.0f, 0.0f};
    cr_assert_eq(item_neighbours_set_row(t, 0, few), 0);
    cr_assert_eq(t->idx[0], 3);
    cr_assert_eq(t->idx[1], -1);
    cr_assert_eq(t->sim[1], 0.0f);
    cr_assert_eq(t->idx[2], -1);
    cr_assert_eq(t->idx[3], -1, "row 1 was never set");

    //  Setting a row again replaces it completely.
    float none[6] = {0};
    cr_assert_eq(item_neighbours_set_row(t, 2, none), 0);
    for (int c = 6; c < 9; c++)
        cr_assert_eq(t->idx[c], -1);
    item_neighbours_destroy(&t);
}

//  Exact equality, element by element (memcmp on floats is frowned upon:
//  +0 and -0 differ in bits).
static bool s_same(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

//  A 4-video table: 0 -> {1: 0.8, 2: 0.1}, 1 -> {0: 0.8}, 2 and 3 none.
static item_neighbours_t *s_table(void)
{
    item_neighbours_t *t = item_neighbours_new(4, 2);
    cr_assert(t);
    float r0[] = {0, 0.8f, 0.1f, 0};
    float r1[] = {0.8f, 0, 0, 0};
    item_neighbours_set_row(t, 0, r0);
    item_neighbours_set_row(t, 1, r1);
    return t;
}

static void s_score(const item_neighbours_t *t, const int32_t *items, const float *values,
                    int32_t len, float *scores)
{
    scorer_t scorer = item_neighbours_scorer(t);
    cr_assert_eq(scorer.n_items, t->n_items);
    cr_assert_eq(scorer.model, t);
    user_history_t h = {.items = items, .values = values, .len = len};
    cr_assert_eq(scorer.score(scorer.model, &h, scores), 0);
}

Test(item_neighbours, scorer_sums_similarities_weighted_by_capped_strength)
{
    item_neighbours_t *t = s_table();
    //  Video 0 watched at strength 0.5, video 1 at 3 (capped to 1).
    int32_t items[] = {0, 1};
    float values[] = {0.5f, 3.0f};
    float s[4];
    s_score(t, items, values, 2, s);
    cr_assert_float_eq(s[0], 0.8f * 1.0f, 1e-6);
    cr_assert_float_eq(s[1], 0.8f * 0.5f, 1e-6);
    cr_assert_float_eq(s[2], 0.1f * 0.5f, 1e-6);
    cr_assert(isinf(s[3]) && s[3] < 0, "nothing links to video 3");
    item_neighbours_destroy(&t);
}

Test(item_neighbours, dislikes_and_unknown_videos_contribute_nothing)
{
    item_neighbours_t *t = s_table();
    int32_t items[] = {1, 0, 17, -2};
    float values[] = {1.0f, -1.0f, 1.0f, 1.0f};
    float s[4];
    s_score(t, items, values, 4, s);
    cr_assert_float_eq(s[0], 0.8f, 1e-6);
    for (int j = 1; j < 4; j++)
        cr_assert(isinf(s[j]) && s[j] < 0, "video %d scored %f", j, s[j]);
    float empty[4];
    s_score(t, items, values, 0, empty);
    for (int j = 0; j < 4; j++)
        cr_assert(isinf(empty[j]) && empty[j] < 0);
    item_neighbours_destroy(&t);
}

Test(item_neighbours, a_view_scores_like_the_table_and_destroy_leaves_its_arrays)
{
    item_neighbours_t *t = s_table();
    int32_t idx[8];
    float sim[8];
    memcpy(idx, t->idx, sizeof idx);
    memcpy(sim, t->sim, sizeof sim);
    item_neighbours_t *view = calloc(1, sizeof *view);
    cr_assert(view);
    *view = (item_neighbours_t){.n_items = 4, .k = 2, .idx = idx, .sim = sim, .owned = false};
    int32_t items[] = {0};
    float values[] = {1};
    float a[4], b[4];
    s_score(t, items, values, 1, a);
    s_score(view, items, values, 1, b);
    cr_assert(s_same(a, b, 4));
    item_neighbours_destroy(&view); //  freeing the stack arrays would crash
    cr_assert_null(view);
    item_neighbours_destroy(&t);
}
