/*  test_segment_popularity.c: genre segments and their popularity lists
    (segment_popularity.c) on a real PostgreSQL. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leak_check.h"
#include "pg_test_db.h"
#include "segment_popularity.h"

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

TestSuite(segment_popularity, .init = s_setup, .fini = s_teardown, .timeout = 60);

static void s_video(PGconn *conn, const char *id, const char *genres, bool retired)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO features.videos (video_id, title, genres, retired)"
             " VALUES ('%s', '%s', '%s', %s)",
             id, id, genres, retired ? "true" : "false");
    pg_test_exec(conn, sql);
}

//  count watch events of video by distinct users.
static void s_watch(PGconn *conn, const char *video_id, int count)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO features.interactions (event_id, user_id, video_id, kind, weight,"
             " occurred_at) SELECT 'e:%s:' || g, 'u' || g, '%s', 'watch', 1, now()"
             " FROM generate_series(1, %d) g",
             video_id, video_id, count);
    pg_test_exec(conn, sql);
}

//  Comedy: c1 (30), c2 (20), cd (5, also Drama); Drama: d1 (10), cd;
//  Horror: h1 (3); a retired comedy r1 (100) never listed.
static void s_catalogue(PGconn *conn)
{
    s_video(conn, "c1", "{Comedy}", false);
    s_video(conn, "c2", "{Comedy}", false);
    s_video(conn, "cd", "{Comedy,Drama}", false);
    s_video(conn, "d1", "{Drama}", false);
    s_video(conn, "h1", "{Horror}", false);
    s_video(conn, "r1", "{Comedy}", true);
    s_video(conn, "unwatched", "{Western}", false);
    s_watch(conn, "c1", 30);
    s_watch(conn, "c2", 20);
    s_watch(conn, "cd", 5);
    s_watch(conn, "d1", 10);
    s_watch(conn, "h1", 3);
    s_watch(conn, "r1", 100);
}

Test(segment_popularity, lists_per_genre_most_popular_first_without_retired)
{
    PGconn *conn = pg_test_db_connect(s_db);
    s_catalogue(conn);
    char err[256];
    segment_popularity_t *sp = segment_popularity_load(conn, 2, err, sizeof err);
    cr_assert_not_null(sp, "%s", err);
    //  Genres ranked by interactions: Comedy 55, Drama 15, Horror 3;
    //  Western has none.
    cr_assert_eq(segment_popularity_segments(sp), 3);
    const popular_list_t *comedy = segment_popularity_list(sp, "Comedy");
    cr_assert_not_null(comedy);
    cr_assert_eq(popular_list_size(comedy), 2, "per_segment bounds the list");
    cr_assert_str_eq(popular_list_item(comedy, 0)->video_id, "c1");
    cr_assert_eq(popular_list_item(comedy, 0)->score, 30);
    cr_assert_str_eq(popular_list_item(comedy, 1)->video_id, "c2");
    const popular_list_t *drama = segment_popularity_list(sp, "Drama");
    cr_assert_str_eq(popular_list_item(drama, 0)->video_id, "d1");
    cr_assert_str_eq(popular_list_item(drama, 1)->video_id, "cd");
    cr_assert_null(segment_popularity_list(sp, "Western"));
    cr_assert_null(segment_popularity_list(sp, NULL));
    //  Videos with interactions, retired included (a liked retired video
    //  still says something about the user).
    cr_assert_eq(segment_popularity_videos(sp), 6);
    segment_popularity_destroy(&sp);
    cr_assert_null(sp);
    PQfinish(conn);
}

Test(segment_popularity, segment_is_the_genre_with_most_liked_strength)
{
    PGconn *conn = pg_test_db_connect(s_db);
    s_catalogue(conn);
    char err[256];
    segment_popularity_t *sp = segment_popularity_load(conn, 10, err, sizeof err);
    cr_assert_not_null(sp, "%s", err);

    const char *one_drama[] = {"d1"};
    float w1[] = {1.0f};
    cr_assert_str_eq(segment_popularity_segment_of(sp, one_drama, w1, 1), "Drama");
    //  cd counts for both; d1 tips it to Drama, h1 is weaker.
    const char *mixed[] = {"cd", "d1", "h1"};
    float w2[] = {1.0f, 0.5f, 1.2f};
    cr_assert_str_eq(segment_popularity_segment_of(sp, mixed, w2, 3), "Drama");
    //  A disliked video (negative strength) says nothing.
    float w3[] = {1.0f, -5.0f, 0.1f};
    cr_assert_str_eq(segment_popularity_segment_of(sp, mixed, w3, 3), "Comedy",
                     "tie between Comedy and Drama goes to the more popular genre");
    //  The retired comedy still places its fan.
    const char *retired[] = {"r1"};
    cr_assert_str_eq(segment_popularity_segment_of(sp, retired, w1, 1), "Comedy");
    //  Unknown videos, no liked video, empty history: no segment.
    const char *unknown[] = {"nope", "unwatched"};
    float w4[] = {1.0f, 1.0f};
    cr_assert_null(segment_popularity_segment_of(sp, unknown, w4, 2));
    float w5[] = {-1.0f};
    cr_assert_null(segment_popularity_segment_of(sp, one_drama, w5, 1));
    cr_assert_null(segment_popularity_segment_of(sp, NULL, NULL, 0));
    segment_popularity_destroy(&sp);
    PQfinish(conn);
}

Test(segment_popularity, empty_catalogue_and_bad_arguments)
{
    PGconn *conn = pg_test_db_connect(s_db);
    char err[256];
    segment_popularity_t *sp = segment_popularity_load(conn, 10, err, sizeof err);
    cr_assert_not_null(sp, "%s", err);
    cr_assert_eq(segment_popularity_segments(sp), 0);
    const char *ids[] = {"x"};
    float w[] = {1.0f};
    cr_assert_null(segment_popularity_segment_of(sp, ids, w, 1));
    segment_popularity_destroy(&sp);
    cr_assert_null(segment_popularity_load(conn, 0, err, sizeof err));
    cr_assert_str_eq(err, "per_segment must be >= 1");
    PQfinish(conn);
    //  A connection that is gone: an error, not a crash.
    PGconn *dead = pg_test_db_connect(s_db);
    PQfinish(dead);
    dead = PQconnectdb("postgresql://127.0.0.1:1/none?connect_timeout=1");
    cr_assert_null(segment_popularity_load(dead, 10, err, sizeof err));
    cr_assert(strstr(err, "segment lists") != NULL, "%s", err);
    PQfinish(dead);
}
