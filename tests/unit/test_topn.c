/*  test_topn.c: partial top-N selection (topn.c): order, ties, skipped and
    non-finite entries, short results, and agreement with a full sort on
    random arrays.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "leak_check.h"
#include "topn.h"

TestSuite(topn, .fini = leak_check_fini, .timeout = 60);

Test(topn, best_first)
{
    float s[] = {0.1f, 0.9f, -3.0f, 0.5f, 2.0f, 0.0f};
    int32_t out[3];
    cr_assert_eq(topn_select(s, 6, NULL, out, 3), 3);
    cr_assert_eq(out[0], 4);
    cr_assert_eq(out[1], 1);
    cr_assert_eq(out[2], 3);
}

Test(topn, ties_go_to_the_lower_index)
{
    float s[] = {1, 2, 2, 1, 2, 1};
    int32_t out[4];
    cr_assert_eq(topn_select(s, 6, NULL, out, 4), 4);
    cr_assert_eq(out[0], 1);
    cr_assert_eq(out[1], 2);
    cr_assert_eq(out[2], 4);
    cr_assert_eq(out[3], 0);
}

Test(topn, skipped_and_non_finite_entries_are_never_chosen)
{
    float s[] = {5, -INFINITY, NAN, 4, INFINITY, 3, 1};
    bool skip[] = {true, false, false, false, false, false, false};
    int32_t out[7];
    cr_assert_eq(topn_select(s, 7, skip, out, 7), 3);
    cr_assert_eq(out[0], 3);
    cr_assert_eq(out[1], 5);
    cr_assert_eq(out[2], 6);
    //  Without the mask, 0 comes back first.
    cr_assert_eq(topn_select(s, 7, NULL, out, 2), 2);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[1], 3);
}

Test(topn, short_and_empty_results)
{
    float s[] = {1, -INFINITY, 2};
    int32_t out[10] = {0};
    cr_assert_eq(topn_select(s, 3, NULL, out, 10), 2);
    cr_assert_eq(out[0], 2);
    cr_assert_eq(out[1], 0);
    out[0] = 77;
    cr_assert_eq(topn_select(s, 3, NULL, out, 0), 0);
    cr_assert_eq(out[0], 77, "n = 0 writes nothing");
    cr_assert_eq(topn_select(s, 0, NULL, out, 5), 0);
    float none[] = {-INFINITY, NAN};
    cr_assert_eq(topn_select(none, 2, NULL, out, 5), 0);
}

typedef struct {
    float score;
    int32_t index;
} s_ref_t;

static int s_ref_cmp(const void *a, const void *b)
{
    const s_ref_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

Test(topn, agrees_with_a_full_sort)
{
    enum { COUNT = 5000 };
    float *s = malloc(COUNT * sizeof *s);
    bool *skip = malloc(COUNT * sizeof *skip);
    s_ref_t *ref = malloc(COUNT * sizeof *ref);
    int32_t *out = malloc(COUNT * sizeof *out);
    cr_assert(s && skip && ref && out);
    uint32_t x = 7;
    for (int round = 0; round < 20; round++) {
        int32_t n_ref = 0;
        for (int32_t i = 0; i < COUNT; i++) {
            x = x * 1664525u + 1013904223u;
            //  Few distinct values, so that ties are common.
            s[i] = (float)((x >> 8) % 50u) / 7.0f;
            if ((x >> 3) % 23u == 0)
                s[i] = -INFINITY;
            skip[i] = (x >> 5) % 11u == 0;
            if (isfinite(s[i]) && !skip[i])
                ref[n_ref++] = (s_ref_t){s[i], i};
        }
        qsort(ref, (size_t)n_ref, sizeof *ref, s_ref_cmp);
        int32_t n = round == 0 ? COUNT : 1 + round * 37;
        int32_t got = topn_select(s, COUNT, skip, out, n);
        cr_assert_eq(got, n < n_ref ? n : n_ref);
        for (int32_t r = 0; r < got; r++)
            cr_assert_eq(out[r], ref[r].index, "round %d rank %d", round, r);
    }
    free(s);
    free(skip);
    free(ref);
    free(out);
}
