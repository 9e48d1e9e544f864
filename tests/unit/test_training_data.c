/*  test_training_data.c: loading the trainer's input from a real
    PostgreSQL (training_data.c): strengths per event type, catalogue
    metadata, videos the catalogue does not know, time bounds.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "leak_check.h"
#include "pg_test_db.h"
#include "training_data.h"

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

TestSuite(training_data, .fini = leak_check_fini);
TestSuite(training_data_pg, .init = s_setup, .fini = s_teardown, .timeout = 60);

static training_data_options_t s_options(void)
{
    config_t cfg;
    char err[256];
    cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s", err);
    training_data_options_t opts;
    training_data_options_from_config(&opts, &cfg);
    return opts;
}

Test(training_data, strengths_per_event_type)
{
    training_data_options_t o = s_options(); //  defaults: scale 0.5..5, neutral 2.5
    cr_assert_float_eq(training_data_strength(&o, "watch", 0.5, 0), 0.5f, 1e-6);
    cr_assert_float_eq(training_data_strength(&o, "watch", 7.0, 0), 1.0f, 1e-6, "capped");
    cr_assert_float_eq(training_data_strength(&o, "rating", 1.0, 5.0), 1.0f, 1e-6);
    cr_assert_float_eq(training_data_strength(&o, "rating", 0.1, 0.5), -1.0f, 1e-6);
    cr_assert_float_eq(training_data_strength(&o, "rating", 0.5, 2.5), 0.0f, 1e-6, "neutral");
    cr_assert(training_data_strength(&o, "rating", 0.3, 1.5) < 0, "a low rating counts against");
    cr_assert_float_eq(training_data_strength(&o, "watchlist_add", 1, 0), 0.5f, 1e-6);
    cr_assert_float_eq(training_data_strength(&o, "watchlist_remove", 1, 0), -0.5f, 1e-6);
    cr_assert_float_eq(training_data_strength(&o, "bogus", 1, 0), 0.0f, 1e-6);
}

Test(training_data_pg, loads_catalogue_events_and_bounds)
{
    PGconn *conn = pg_test_db_connect(s_db);
    pg_test_exec(conn,
                 "INSERT INTO features.videos (video_id, title, genres, tags) VALUES"
                 " ('v2', 'Toy Story (1995)', '{Animation,Comedy}', '{pixar,\"fun, really\"}'),"
                 " ('v1', 'Heat', '{Crime}', '{}')");
    pg_test_exec(conn,
                 "INSERT INTO features.interactions (event_id, user_id, video_id, kind, weight,"
                 " rating, occurred_at) VALUES"
                 " ('e1', 'bob', 'v2', 'watch', 0.9, NULL, '2024-01-01T00:00:00Z'),"
                 " ('e2', 'ann', 'v1', 'rating', 1.0, 5.0, '2024-01-02T00:00:00Z'),"
                 " ('e3', 'ann', 'vX', 'watchlist_remove', 1, NULL, '2024-01-03T00:00:00Z'),"
                 " ('e4', 'ann', 'v2', 'rating', 0.5, 2.5, '2024-01-04T00:00:00Z'),"
                 " ('e5', 'bob', 'v1', 'watch', 0.2, NULL, '2024-02-01T00:00:00Z')");
    training_data_options_t opts = s_options();
    char err[256];
    training_data_t *d = training_data_load(conn, &opts, err, sizeof err);
    cr_assert(d, "%s", err);
    cr_assert_eq(d->n_catalogue, 2);
    cr_assert_eq(d->n_videos, 3, "vX is known from an event only");
    cr_assert_str_eq(d->video_ids[0], "v1", "catalogue in id order");
    cr_assert_str_eq(d->video_ids[2], "vX");
    cr_assert_str_eq(d->titles[1], "Toy Story (1995)");
    cr_assert_eq(d->n_genres[1], 2);
    cr_assert_str_eq(d->genres[1][1], "Comedy");
    cr_assert_eq(d->n_tags[1], 2);
    cr_assert_str_eq(d->tags[1][1], "fun, really");
    cr_assert_eq(d->n_tags[0], 0);
    cr_assert_null(d->titles[2]);
    cr_assert_eq(d->n_events, 4, "the neutral rating carries no signal");
    cr_assert_eq(d->n_users, 2);
    //  (user, time) order: ann first.
    cr_assert_str_eq(d->user_ids[d->ev_user[0]], "ann");
    cr_assert_float_eq(d->ev_value[0], 1.0f, 1e-6);
    cr_assert_float_eq(d->ev_value[1], -0.5f, 1e-6);
    cr_assert_eq(d->ev_video[1], 2);
    cr_assert_eq(d->ev_time[0], 1704153600);
    training_data_destroy(&d);

    //  Time bounds: [2024-01-02, 2024-02-01) keeps e2 and e3 only.
    opts.start_time = 1704153600;
    opts.end_time = 1706745600;
    d = training_data_load(conn, &opts, err, sizeof err);
    cr_assert(d, "%s", err);
    cr_assert_eq(d->n_events, 2);
    cr_assert_eq(d->n_users, 1);
    training_data_destroy(&d);
    cr_assert_null(d);
    PQfinish(conn);
}
