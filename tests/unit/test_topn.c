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

//  Scores, skip flags and the scratch of the comparisons below.
typedef struct {
    float *s;
    bool *skip;
    s_ref_t *ref;
    int32_t *out;
} s_arrays_t;

static s_arrays_t s_arrays_new(int32_t count)
{
    s_arrays_t a = {malloc((size_t)count * sizeof *a.s), calloc((size_t)count, sizeof *a.skip),
                    malloc((size_t)count * sizeof *a.ref), malloc((size_t)count * sizeof *a.out)};
    cr_assert(a.s && a.skip && a.ref && a.out);
    return a;
}

static void s_arrays_free(s_arrays_t *a)
{
    free(a->s);
    free(a->skip);
    free(a->ref);
    free(a->out);
}

//  topn_select(s, count, skip, out, n) against a full sort of the eligible
//  entries (ref: scratch of count entries).
static void s_check_against_sort(const float *s, const bool *skip, int32_t count, int32_t n,
                                 s_ref_t *ref, int32_t *out, int round)
{
    int32_t n_ref = 0;
    for (int32_t i = 0; i < count; i++)
        if (isfinite(s[i]) && !skip[i])
            ref[n_ref++] = (s_ref_t){s[i], i};
    qsort(ref, (size_t)n_ref, sizeof *ref, s_ref_cmp);
    int32_t got = topn_select(s, count, skip, out, n);
    cr_assert_eq(got, n < n_ref ? n : n_ref);
    for (int32_t r = 0; r < got; r++)
        cr_assert_eq(out[r], ref[r].index, "round %d rank %d", round, r);
}

Test(topn, agrees_with_a_full_sort)
{
    enum { COUNT = 5000 };
    s_arrays_t a = s_arrays_new(COUNT);
    float *s = a.s;
    bool *skip = a.skip;
    uint32_t x = 7;
    for (int round = 0; round < 20; round++) {
        for (int32_t i = 0; i < COUNT; i++) {
            x = x * 1664525u + 1013904223u;
            //  Few distinct values, so that ties are common.
            s[i] = (float)((x >> 8) % 50u) / 7.0f;
            if ((x >> 3) % 23u == 0)
                s[i] = -INFINITY;
            skip[i] = (x >> 5) % 11u == 0;
        }
        s_check_against_sort(s, skip, COUNT, round == 0 ? COUNT : 1 + round * 37, a.ref, a.out,
                             round);
    }
    s_arrays_free(&a);
}

//  Spread-out scores, as a model's are: once the heap is full nearly every
//  block of 64 is passed over whole. The best scores sit in the last,
//  partial block and next to NaN and +INFINITY, where passing a block over
//  would be wrong, and a skipped entry holds the highest finite score.
Test(topn, passes_over_blocks_without_losing_any)
{
    enum { COUNT = 10007 };
    s_arrays_t a = s_arrays_new(COUNT);
    float *s = a.s;
    bool *skip = a.skip;
    uint32_t x = 11;
    for (int round = 0; round < 8; round++) {
        for (int32_t i = 0; i < COUNT; i++) {
            x = x * 1664525u + 1013904223u;
            s[i] = (float)(x >> 8) / 16777216.0f; //  [0, 1), rarely equal
            skip[i] = false;
        }
        s[COUNT - 1] = 5.0f;                //  in the last, partial block
        s[COUNT - 2] = 4.0f + (float)round; //  best of all in some rounds
        s[640] = NAN;                       //  a block starting with NaN...
        s[641] = 3.0f;                      //  ...still holds a winner
        s[1280] = INFINITY;                 //  never chosen
        s[1281] = 2.5f;
        s[3000] = 9.0f, skip[3000] = true;            //  the best, skipped
        s[64 * round + 5] = s[64 * round + 6] = 1.5f; //  a tie, by index
        s_check_against_sort(s, skip, COUNT, 1 + round * 13, a.ref, a.out, round);
    }
    s_arrays_free(&a);
}
