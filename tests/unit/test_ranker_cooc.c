/*  test_ranker_cooc.c: co-occurrence fed from the ranker's histories
    (ranker_cooc.c): the same table from a start-up build and from live
    notices, first positive events only, and a user's recent liked videos.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "actors/ranker/ranker_cooc.h"
#include "leak_check.h"

TestSuite(ranker_cooc, .fini = leak_check_fini, .timeout = 60);

static training_data_options_t s_opts(void)
{
    return (training_data_options_t){.weight_watch = 1,
                                     .weight_rating = 1,
                                     .rating_neutral = 3,
                                     .rating_min = 0.5,
                                     .rating_max = 5,
                                     .weight_watchlist_add = 0.5,
                                     .weight_watchlist_remove = 0.25};
}

//  Each user watches videos[0..n) in order; ms apart.
static void s_watch_all(ranker_history_t *h, cooccurrence_t *live, const char *user,
                        const char *const *videos, size_t n, int64_t t0)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ranker_history_record(h, user, videos[i], "watch", 1.0, 0, t0 + (int64_t)i),
                     1);
        if (live)
            cr_assert_geq(ranker_cooc_notice(live, h, user, videos[i]), 0);
    }
}

Test(ranker_cooc, build_equals_live_notices)
{
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 100);
    cooccurrence_t *live = cooccurrence_new(COOCCURRENCE_WINDOW, COOCCURRENCE_MAX_NEIGHBOURS, 1000);
    const char *a[] = {"x", "y", "z"};
    const char *b[] = {"x", "y"};
    const char *c[] = {"y", "w"};
    s_watch_all(h, live, "ua", a, 3, 1000);
    s_watch_all(h, live, "ub", b, 2, 2000);
    s_watch_all(h, live, "uc", c, 2, 3000);
    cooccurrence_t *built = ranker_cooc_build(h, NULL, NULL);
    cr_assert_not_null(built);
    const char *pairs[][2] = {{"x", "y"}, {"y", "z"}, {"x", "z"}, {"y", "w"}, {"x", "w"}};
    const uint32_t want[] = {2, 1, 1, 1, 0};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(cooccurrence_count(built, pairs[i][0], pairs[i][1]), want[i], "%s-%s",
                     pairs[i][0], pairs[i][1]);
        cr_assert_eq(cooccurrence_count(live, pairs[i][0], pairs[i][1]), want[i], "live %s-%s",
                     pairs[i][0], pairs[i][1]);
    }
    cooccurrence_destroy(&built);
    cooccurrence_destroy(&live);
    ranker_history_destroy(&h);
}

Test(ranker_cooc, repeats_and_negative_events_add_nothing)
{
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 100);
    cooccurrence_t *c = cooccurrence_new(COOCCURRENCE_WINDOW, COOCCURRENCE_MAX_NEIGHBOURS, 1000);
    cr_assert_eq(ranker_history_record(h, "u", "x", "watch", 1.0, 0, 1), 1);
    cr_assert_eq(ranker_cooc_notice(c, h, "u", "x"), 1,
                 "a first positive event pairs (with nothing)");
    cr_assert_eq(ranker_history_record(h, "u", "y", "watch", 1.0, 0, 2), 1);
    cr_assert_eq(ranker_cooc_notice(c, h, "u", "y"), 1);
    cr_assert_eq(cooccurrence_count(c, "x", "y"), 1);
    //  Re-watching x is not a new pair.
    cr_assert_eq(ranker_history_record(h, "u", "x", "watch", 1.0, 0, 3), 1);
    cr_assert_eq(ranker_cooc_notice(c, h, "u", "x"), 0);
    cr_assert_eq(cooccurrence_count(c, "x", "y"), 1);
    //  A low rating is negative: no pair.
    cr_assert_eq(ranker_history_record(h, "u", "z", "rating", 0.2, 1.0, 4), 1);
    cr_assert_eq(ranker_cooc_notice(c, h, "u", "z"), 0);
    cr_assert_eq(cooccurrence_count(c, "y", "z"), 0);
    //  A notice for a video that is not the user's latest event: nothing.
    cr_assert_eq(ranker_cooc_notice(c, h, "u", "y"), 0);
    cr_assert_eq(ranker_cooc_notice(c, h, "nobody", "y"), 0);
    cooccurrence_destroy(&c);
    ranker_history_destroy(&h);
}

Test(ranker_cooc, recent_is_distinct_positive_latest_first)
{
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 100);
    cr_assert_eq(ranker_history_record(h, "u", "a", "watch", 1.0, 0, 1), 1);
    cr_assert_eq(ranker_history_record(h, "u", "b", "watch", 0.5, 0, 2), 1);
    cr_assert_eq(ranker_history_record(h, "u", "neg", "rating", 0.1, 0.5, 3), 1);
    cr_assert_eq(ranker_history_record(h, "u", "a", "watch", 1.0, 0, 4), 1);
    const char *recent[4];
    float w[4];
    cr_assert_eq(ranker_cooc_recent(h, "u", recent, w, 4), 2);
    cr_assert_str_eq(recent[0], "a");
    cr_assert_str_eq(recent[1], "b");
    cr_assert_float_eq(w[1], 0.5f, 1e-6);
    cr_assert_eq(ranker_cooc_recent(h, "u", recent, w, 1), 1);
    cr_assert_eq(ranker_cooc_recent(h, "nobody", recent, w, 4), 0);
    ranker_history_destroy(&h);
}

static void s_count_tick(void *arg)
{
    (*(int *)arg)++;
}

Test(ranker_cooc, build_over_many_users_terminates)
{
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 50);
    for (int u = 0; u < 300; u++)
        for (int e = 0; e < 40; e++) {
            char user[16], video[16];
            snprintf(user, sizeof user, "u%d", u);
            snprintf(video, sizeof video, "v%d", (u * 7 + e * 13) % 500);
            cr_assert_geq(ranker_history_record(h, user, video, "watch", 1.0, 0, e), 0);
        }
    cooccurrence_t *c = ranker_cooc_build(h, NULL, NULL);
    cr_assert_not_null(c);
    cr_assert_gt(cooccurrence_pairs(c), 0);
    //  With a tick: called along the way (the ranker answers requests
    //  from it during a reload), and the same table.
    int ticks = 0;
    cooccurrence_t *ticked = ranker_cooc_build(h, s_count_tick, &ticks);
    cr_assert_not_null(ticked);
    cr_assert_geq(ticks, 1, "300 users: at least one tick");
    cr_assert_eq(cooccurrence_pairs(ticked), cooccurrence_pairs(c));
    cr_assert_eq(cooccurrence_count(ticked, "v0", "v13"), cooccurrence_count(c, "v0", "v13"));
    cooccurrence_destroy(&ticked);
    cooccurrence_destroy(&c);
    ranker_history_destroy(&h);
}
