/*  test_ranker_history.c: the ranker's per-user histories
    (ranker_history.c): the trainer's strength rule, the per-user bound,
    duplicates, the mapping into a model's index space, and the start-up
    load from a real PostgreSQL (with the seen set filled in the same pass).
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "actors/ranker/ranker_history.h"
#include "leak_check.h"
#include "pg_test_db.h"

static pg_test_db_t *s_db;

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
}

static void s_teardown(void)
{
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(ranker_history, .fini = leak_check_fini, .timeout = 60);
TestSuite(ranker_history_pg, .init = s_setup, .fini = s_teardown, .timeout = 60);

static training_data_options_t s_opts(void)
{
    return (training_data_options_t){.weight_watch = 2,
                                     .weight_rating = 1,
                                     .rating_neutral = 3,
                                     .rating_min = 0.5,
                                     .rating_max = 5,
                                     .weight_watchlist_add = 0.5,
                                     .weight_watchlist_remove = 0.25};
}

//  Index space of a pretend model: "vN" -> N, anything else unknown.
static int32_t s_index(const void *arg, const char *video_id)
{
    (void)arg; //  the mapping needs no state
    if (video_id[0] != 'v')
        return -1;
    return (int32_t)atoi(video_id + 1);
}

typedef struct {
    int32_t items[16], seen[16], n_seen;
    float values[16];
    user_history_t h;
} s_view_t;

static s_view_t s_user(ranker_history_t *h, const char *user)
{
    s_view_t v;
    cr_assert_leq(ranker_history_max_events(h), 16);
    ranker_history_user(h, user, s_index, NULL, v.items, v.values, v.seen, &v.n_seen, &v.h);
    return v;
}

static proto_interaction_t s_notice(const char *user, const char *video, const char *kind,
                                    double weight, uint64_t ms)
{
    proto_interaction_t in = {.weight = weight, .occurred_ms = ms};
    snprintf(in.user_id, sizeof in.user_id, "%s", user);
    snprintf(in.video_id, sizeof in.video_id, "%s", video);
    snprintf(in.kind, sizeof in.kind, "%s", kind);
    return in;
}

Test(ranker_history, strengths_follow_the_trainer)
{
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 16);
    cr_assert_not_null(h);
    cr_assert_eq(ranker_history_record(h, "u", "v1", "watch", 0.5, 0, 1), 1);
    cr_assert_eq(ranker_history_record(h, "u", "v2", "rating", 0.8, 4.0, 2), 1);
    cr_assert_eq(ranker_history_record(h, "u", "v3", "watchlist_remove", 1, 0, 3), 1);
    cr_assert_eq(ranker_history_record(h, "u", "v4", "rating", 0.6, 3.0, 4), 0,
                 "a neutral rating says nothing");
    cr_assert_eq(ranker_history_record(h, "u", "v4", "skip", 1, 0, 5), 0, "unknown kind");
    //  A notice carries rating / rating_max as its weight: 0.3 is 1.5 stars.
    proto_interaction_t in = s_notice("u", "v5", "rating", 0.3, 6);
    cr_assert_eq(ranker_history_record_notice(h, &in), 1);
    s_view_t v = s_user(h, "u");
    cr_assert_eq(v.h.len, 4);
    int32_t want_items[] = {1, 2, 3, 5};
    float want[] = {training_data_strength(&opts, "watch", 0.5, 0),
                    training_data_strength(&opts, "rating", 0.8, 4.0),
                    training_data_strength(&opts, "watchlist_remove", 1, 0),
                    training_data_strength(&opts, "rating", 0.3, 1.5)};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(v.h.items[i], want_items[i]);
        cr_assert_float_eq(v.h.values[i], want[i], 1e-6, "event %d", i);
    }
    cr_assert_float_eq(v.h.values[0], 1.0f, 1e-6, "weight_watch 2 x completion 0.5");
    cr_assert_lt(v.h.values[3], 0, "a low rating counts against");
    //  Seen: the ratings (v2, v5); the half watch is below 0.9.
    cr_assert_eq(v.n_seen, 2);
    cr_assert_eq(ranker_history_users(h), 1);
    cr_assert_eq(ranker_history_events(h), 4);
    ranker_history_destroy(&h);
    cr_assert_null(h);
    ranker_history_destroy(&h);
}

Test(ranker_history, bounded_to_the_latest_events)
{
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 3);
    for (int i = 0; i < 10; i++) {
        char video[8];
        snprintf(video, sizeof video, "v%d", i);
        cr_assert_eq(ranker_history_record(h, "u", video, "watch", 1.0, 0, i), 1);
    }
    cr_assert_eq(ranker_history_record(h, "other", "v1", "watch", 1.0, 0, 0), 1);
    cr_assert_eq(ranker_history_events(h), 4, "3 kept for u, 1 for other");
    s_view_t v = s_user(h, "u");
    cr_assert_eq(v.h.len, 3);
    cr_assert_eq(v.h.items[0], 7);
    cr_assert_eq(v.h.items[1], 8);
    cr_assert_eq(v.h.items[2], 9);
    cr_assert_eq(v.n_seen, 3);
    //  The raw events, oldest first, the latest `max` of them.
    const char *ids[4];
    float strengths[4];
    cr_assert_eq(ranker_history_events_of(h, "u", ids, strengths, 4), 3);
    cr_assert_str_eq(ids[0], "v7");
    cr_assert_str_eq(ids[2], "v9");
    cr_assert_gt(strengths[2], 0);
    cr_assert_eq(ranker_history_events_of(h, "u", ids, strengths, 2), 2);
    cr_assert_str_eq(ids[0], "v8", "the latest two");
    cr_assert_str_eq(ids[1], "v9");
    cr_assert_eq(ranker_history_events_of(h, "nobody", ids, strengths, 4), 0);
    cr_assert_null(ranker_history_new(&opts, 0.9, 0));
    ranker_history_destroy(&h);
}

Test(ranker_history, duplicates_count_once_and_videos_sum)
{
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 16);
    proto_interaction_t in = s_notice("u", "v2", "watch", 0.25, 1000);
    cr_assert_eq(ranker_history_record_notice(h, &in), 1);
    cr_assert_eq(ranker_history_record_notice(h, &in), 0, "a redelivered notice");
    in.occurred_ms = 2000; //  watched again later: a second event
    cr_assert_eq(ranker_history_record_notice(h, &in), 1);
    s_view_t once = s_user(h, "u");
    cr_assert_eq(once.h.len, 1);
    cr_assert_float_eq(once.h.values[0], 1.0f, 1e-6, "two watches of 0.25 x weight 2, summed");
    ranker_history_destroy(&h);
    //  Added then removed from the watchlist with equal weights: the sum
    //  is 0 and the trainer drops such a cell, so the ranker does too.
    opts.weight_watchlist_remove = 0.5;
    h = ranker_history_new(&opts, 0.9, 16);
    cr_assert_eq(ranker_history_record(h, "u", "v7", "watchlist_add", 1, 0, 12), 1);
    cr_assert_eq(ranker_history_record(h, "u", "v7", "watchlist_remove", 1, 0, 13), 1);
    cr_assert_eq(ranker_history_record(h, "u", "v2", "watch", 0.25, 0, 1000), 1);
    cr_assert_eq(ranker_history_record(h, "u", "v2", "watch", 0.25, 0, 2000), 1);
    cr_assert_eq(ranker_history_record(h, "u", "x9", "watch", 1.0, 0, 3000), 1);
    s_view_t v = s_user(h, "u");
    cr_assert_eq(v.h.len, 1, "v7 sums to 0, x9 is unknown to the model");
    cr_assert_eq(v.h.items[0], 2);
    cr_assert_float_eq(v.h.values[0], 1.0f, 1e-6, "two watches of 0.25 x weight 2");
    s_view_t nobody = s_user(h, "nobody");
    cr_assert_eq(nobody.h.len, 0);
    cr_assert_eq(nobody.n_seen, 0);
    ranker_history_destroy(&h);
}

Test(ranker_history_pg, load_keeps_the_latest_and_fills_seen)
{
    PGconn *conn = pg_test_db_connect(s_db);
    //  u1: 5 events (the bound is 3), oldest first by time, not by id.
    pg_test_exec(conn,
                 "INSERT INTO features.interactions (event_id, user_id, video_id, kind, weight,"
                 " rating, occurred_at) VALUES"
                 " ('e5','u1','v5','watch',1.0,NULL,'2024-01-05'),"
                 " ('e1','u1','v1','watch',0.95,NULL,'2024-01-01'),"
                 " ('e2','u1','v2','rating',0.8,4,'2024-01-02'),"
                 " ('e3','u1','v3','watch',0.5,NULL,'2024-01-03'),"
                 " ('e4','u1','v4','watchlist_add',1,NULL,'2024-01-04'),"
                 " ('f1','u2','v1','rating',0.6,3,'2024-01-01 00:00:00.123'),"
                 " ('f2','u2','v6','watch',0.99,NULL,'2024-01-01')");
    training_data_options_t opts = s_opts();
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 3);
    cr_assert_eq(ranker_history_record(h, "stale", "v9", "watch", 1, 0, 1), 1);
    seen_set_t *seen = seen_set_new(0.9);
    char err[256] = "";
    int ticks = 0;
    long n = ranker_history_load(h, conn, seen, NULL, &ticks, err, sizeof err);
    cr_assert_eq(n, 4, "%s", err);
    cr_assert_eq(ranker_history_users(h), 2, "the load replaced the old contents");
    s_view_t v = s_user(h, "u1");
    cr_assert_eq(v.h.len, 3);
    cr_assert_eq(v.h.items[0], 3);
    cr_assert_eq(v.h.items[1], 4);
    cr_assert_eq(v.h.items[2], 5);
    //  The seen set holds all of u1's consumed videos, beyond the bound.
    cr_assert(seen_set_contains(seen, "u1", "v1"));
    cr_assert(seen_set_contains(seen, "u1", "v2"));
    cr_assert_not(seen_set_contains(seen, "u1", "v3"));
    cr_assert(seen_set_contains(seen, "u2", "v1"), "a neutral rating is still seen");
    v = s_user(h, "u2");
    cr_assert_eq(v.h.len, 1, "the neutral rating has no strength");
    cr_assert_eq(v.h.items[0], 6);
    //  The notice of an event the load already read counts once: times
    //  agree to the millisecond.
    proto_interaction_t in = s_notice("u2", "v1", "rating", 0.6, 0);
    in.occurred_ms = (uint64_t)pg_test_scalar(
        conn, "SELECT floor(extract(epoch FROM timestamptz '2024-01-01 00:00:00.123') * 1000)");
    pg_test_exec(conn, "UPDATE features.interactions SET rating = 4 WHERE event_id = 'f1'");
    ranker_history_t *h2 = ranker_history_new(&opts, 0.9, 3);
    seen_set_t *seen2 = seen_set_new(0.9);
    cr_assert_eq(ranker_history_load(h2, conn, seen2, NULL, NULL, err, sizeof err), 5, "%s", err);
    in.weight = 0.8;
    cr_assert_eq(ranker_history_record_notice(h2, &in), 0, "already loaded");
    //  A failing query leaves the history as it was.
    pg_test_exec(conn, "ALTER TABLE features.interactions RENAME TO gone");
    cr_assert_eq(ranker_history_load(h2, conn, seen2, NULL, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "loading histories"), "%s", err);
    cr_assert_eq(ranker_history_events(h2), 5);
    ranker_history_destroy(&h);
    ranker_history_destroy(&h2);
    seen_set_destroy(&seen);
    seen_set_destroy(&seen2);
    PQfinish(conn);
}
