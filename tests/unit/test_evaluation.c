/*  test_evaluation.c: the time-ordered hold-out split and the ranking
    metrics (evaluation.c), on hand-computed examples.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "evaluation.h"
#include "leak_check.h"

TestSuite(evaluation, .fini = leak_check_fini, .timeout = 60);

#define MAXE 64

typedef struct {
    int32_t users[MAXE], items[MAXE];
    float values[MAXE];
    int64_t times[MAXE];
    size_t n;
} s_events_t;

static void s_add(s_events_t *ev, int32_t user, int32_t item, float value, int64_t time)
{
    cr_assert_lt(ev->n, MAXE);
    ev->users[ev->n] = user;
    ev->items[ev->n] = item;
    ev->values[ev->n] = value;
    ev->times[ev->n] = time;
    ev->n++;
}

//  Field by field: the struct has padding, so no memcmp.
static bool s_same(const evaluation_metrics_t *a, const evaluation_metrics_t *b)
{
    return a->ndcg10 == b->ndcg10 && a->recall10 == b->recall10 && a->recall20 == b->recall20 &&
           a->map10 == b->map10 && a->coverage10 == b->coverage10 && a->users == b->users;
}

static evaluation_split_t *s_split(const s_events_t *ev, int32_t n_users, int32_t n_items,
                                   double fraction)
{
    char err[256] = "";
    evaluation_split_t *split =
        evaluation_split_new(ev->users, ev->items, ev->values, ev->times, ev->n, n_users, n_items,
                             fraction, 5, err, sizeof err);
    cr_assert(split, "%s", err);
    return split;
}

static bool s_train_has(const evaluation_split_t *s, int32_t u, int32_t item)
{
    for (int64_t a = s->train->row_ptr[u]; a < s->train->row_ptr[u + 1]; a++)
        if (s->train->col[a] == item)
            return true;
    return false;
}

Test(evaluation, split_puts_each_users_latest_events_in_test)
{
    s_events_t ev = {0};
    //  User 0: 10 events, times out of input order; items 0..9 at time
    //  100 * (item + 1) except that item 3 is the latest and item 9 early.
    const int64_t t0[] = {100, 200, 300, 5000, 500, 600, 700, 800, 900, 50};
    for (int i = 0; i < 10; i++)
        s_add(&ev, 0, i, 1.0f, t0[i]);
    //  User 1: 6 events; the latest two are a re-watch of a train video
    //  (not relevant) and a dislike (not relevant): no test items left.
    for (int i = 0; i < 4; i++)
        s_add(&ev, 1, 10 + i, 1.0f, i);
    s_add(&ev, 1, 10, 1.0f, 100);
    s_add(&ev, 1, 15, -1.0f, 101);
    //  User 2: 3 events, under min_history: all train.
    for (int i = 0; i < 3; i++)
        s_add(&ev, 2, i, 1.0f, 10000 + i);

    evaluation_split_t *s = s_split(&ev, 3, 20, 0.2);
    //  User 0: round(0.2 * 10) = 2 latest events: item 3 (5000), item 8 (900).
    cr_assert_eq(s->test_ptr[1] - s->test_ptr[0], 2);
    cr_assert_eq(s->test_items[s->test_ptr[0]], 3);
    cr_assert_eq(s->test_items[s->test_ptr[0] + 1], 8);
    cr_assert_eq(s->train->row_ptr[1] - s->train->row_ptr[0], 8);
    cr_assert_not(s_train_has(s, 0, 3));
    cr_assert_not(s_train_has(s, 0, 8));
    cr_assert(s_train_has(s, 0, 9), "the early item 9 stays in train");
    //  User 1: round(1.2) = 1 test event, the dislike at 101.
    cr_assert_eq(s->test_ptr[2] - s->test_ptr[1], 0);
    cr_assert(s_train_has(s, 1, 10));
    cr_assert_float_eq(s->train->val[s->train->row_ptr[1]], 2.0, 1e-6, "re-watch summed");
    //  User 2: everything in train.
    cr_assert_eq(s->test_ptr[3] - s->test_ptr[2], 0);
    cr_assert_eq(s->train->row_ptr[3] - s->train->row_ptr[2], 3);
    cr_assert_eq(s->n_test_users, 1);
    cr_assert_eq(s->n_train_events, ev.n - 3);

    //  Split again: user 0's train part (8 events) -> its 2 latest, items 6
    //  (700) and 7 (800), in validation; user 1's latest train event is the
    //  re-watch of 10, not relevant.
    char err[256] = "";
    evaluation_split_t *v = evaluation_split_again(s, 0.2, 5, err, sizeof err);
    cr_assert(v, "%s", err);
    cr_assert_eq(v->test_ptr[1] - v->test_ptr[0], 2);
    cr_assert_eq(v->test_items[v->test_ptr[0]], 6);
    cr_assert_eq(v->test_items[v->test_ptr[0] + 1], 7);
    cr_assert_not(s_train_has(v, 0, 3), "the test part never comes back");
    cr_assert_eq(v->n_train_events, s->n_train_events - 3);
    evaluation_split_destroy(&v);
    evaluation_split_destroy(&s);
    cr_assert_null(s);
    evaluation_split_destroy(&s);
}

//  A scorer that ignores the history: score[j] = 100 - j.
static int s_fixed_score(const void *model, const user_history_t *history, float *scores)
{
    (void)history;
    int32_t n = *(const int32_t *)model;
    for (int32_t j = 0; j < n; j++)
        scores[j] = (float)(100 - j);
    return 0;
}

static int s_failing_score(const void *model, const user_history_t *history, float *scores)
{
    (void)model;
    (void)history;
    (void)scores;
    return -1;
}

Test(evaluation, metrics_on_a_hand_computed_example)
{
    s_events_t ev = {0};
    //  User 0: train 0..3, test 5, 7, 20 (fraction 0.43 of 7 events = 3).
    const int32_t u0[] = {0, 1, 2, 3, 5, 7, 20};
    for (int i = 0; i < 7; i++)
        s_add(&ev, 0, u0[i], 1.0f, i);
    //  User 1: train 10..13, test 4 (relevant), 10 again (in train) and a
    //  dislike of 15.
    const int32_t u1[] = {10, 11, 12, 13, 4, 10, 15};
    const float v1[] = {1, 1, 1, 1, 1, 1, -1};
    for (int i = 0; i < 7; i++)
        s_add(&ev, 1, u1[i], v1[i], i);
    //  User 2: too short a history.
    for (int i = 0; i < 3; i++)
        s_add(&ev, 2, i, 1.0f, i);
    evaluation_split_t *s = s_split(&ev, 3, 30, 0.43);
    cr_assert_eq(s->n_test_users, 2);

    int32_t n_items = 30;
    scorer_t scorer = {&n_items, 30, s_fixed_score};
    evaluation_metrics_t m1, m4;
    char err[256] = "";
    cr_assert_eq(evaluation_run(s, &scorer, 1, &m1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(evaluation_run(s, &scorer, 4, &m4, err, sizeof err), 0, "%s", err);
    cr_assert(s_same(&m1, &m4), "same figures for any thread count");

    //  User 0's list (train 0..3 masked): 4 5 6 7 8 ... : hits at ranks 2
    //  and 4 in the top 10, 20 at rank 17 in the top 20.
    double ndcg0 = (1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3) + 1 / log2(4));
    double ap0 = (1.0 / 2 + 2.0 / 4) / 3;
    //  User 1's list (10..13 masked): 0 1 2 3 4: the one hit at rank 5.
    double ndcg1 = 1 / log2(6);
    double ap1 = 1.0 / 5;
    cr_assert_eq(m1.users, 2);
    cr_assert_float_eq(m1.ndcg10, (ndcg0 + ndcg1) / 2, 1e-12);
    cr_assert_float_eq(m1.recall10, (2.0 / 3 + 1.0) / 2, 1e-12);
    cr_assert_float_eq(m1.recall20, (1.0 + 1.0) / 2, 1e-12);
    cr_assert_float_eq(m1.map10, (ap0 + ap1) / 2, 1e-12);
    //  Top-10 lists: 4..13 and 0..9: 14 of 30 videos.
    cr_assert_float_eq(m1.coverage10, 14.0 / 30, 1e-12);

    //  JSON round trip.
    json_t *j = evaluation_metrics_to_json(&m1);
    cr_assert(j);
    cr_assert_float_eq(json_real_value(json_object_get(j, "ndcg_at_10")), m1.ndcg10, 1e-15);
    evaluation_metrics_t back;
    cr_assert_eq(evaluation_metrics_from_json(j, &back), 0);
    cr_assert(s_same(&back, &m1));
    json_object_del(j, "map_at_10");
    cr_assert_eq(evaluation_metrics_from_json(j, &back), -1);
    json_decref(j);

    //  A failing scorer fails the run; a scorer of the wrong size too.
    scorer_t bad = {&n_items, 30, s_failing_score};
    cr_assert_eq(evaluation_run(s, &bad, 2, &m1, err, sizeof err), -1);
    scorer_t wrong = {&n_items, 29, s_fixed_score};
    cr_assert_eq(evaluation_run(s, &wrong, 2, &m1, err, sizeof err), -1);
    evaluation_split_destroy(&s);
}

Test(evaluation, bad_arguments)
{
    int32_t users[] = {0}, items[] = {3};
    float values[] = {1};
    int64_t times[] = {0};
    char err[256] = "";
    cr_assert_null(
        evaluation_split_new(users, items, values, times, 1, 1, 3, 0.2, 5, err, sizeof err));
    cr_assert(strstr(err, "out of range"), "%s", err);
    cr_assert_null(
        evaluation_split_new(users, items, values, times, 1, 1, 5, 1.0, 5, err, sizeof err));
    cr_assert_null(
        evaluation_split_new(users, items, values, times, 1, 1, 5, 0.2, 1, err, sizeof err));
    evaluation_split_t *s =
        evaluation_split_new(users, items, values, times, 1, 1, 5, 0.2, 5, err, sizeof err);
    cr_assert(s, "%s", err);
    int32_t n_items = 5;
    scorer_t scorer = {&n_items, 5, s_fixed_score};
    evaluation_metrics_t m;
    cr_assert_eq(evaluation_run(s, &scorer, 0, &m, err, sizeof err), 0, "%s", err);
    cr_assert_eq(m.users, 0, "no test user: zeros");
    cr_assert_float_eq(m.ndcg10, 0, 1e-15);
    evaluation_split_destroy(&s);
}
