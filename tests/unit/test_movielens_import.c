/*  test_movielens_import.c: `recsd import movielens` (movielens_import.c)
    into a real PostgreSQL: a hand-written fixture with the awkward cases,
    then the real ml-latest-small shipped in data/.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "leak_check.h"
#include "movielens_import.h"
#include "pg_test_db.h"
#include "tmp_dir.h"

static pg_test_db_t *s_db; //  this test's database, migrated
static config_t *s_cfg;    //  its config, borrowed from s_db

static char s_tmp[64]; //  this test's fixture dir, if it made one

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_cfg = pg_test_db_config(s_db);
}

static void s_teardown(void)
{
    pg_test_db_destroy(&s_db);
    tmp_dir_remove(s_tmp);
    leak_check_fini();
}

TestSuite(movielens, .init = s_setup, .fini = s_teardown, .timeout = 90);

static void s_write(const char *name, const char *text)
{
    if (!s_tmp[0])
        cr_assert_eq(tmp_dir_make(s_tmp, sizeof s_tmp, "recsd-ml"), 0, "tmp dir: %s",
                     strerror(errno));
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_tmp, name);
    FILE *file = fopen(path, "wb");
    cr_assert(file, "cannot write %s", path);
    cr_assert(fputs(text, file) >= 0);
    cr_assert_eq(fclose(file), 0);
}

//  CRLF like the real files; a quoted title with a comma, one with doubled
//  quotes, a movie without genres; tags differing only in case and spaces;
//  a rating of a movie the catalogue does not have.
static const char *s_movies = "movieId,title,genres\r\n"
                              "1,Toy Story (1995),Adventure|Animation|Children\r\n"
                              "2,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
                              "3,\"11'09\"\"01 - September 11 (2002)\",Drama\r\n"
                              "4,Quiet Film (2020),(no genres listed)\r\n";
static const char *s_tags = "userId,movieId,tag,timestamp\r\n"
                            "10,1,Pixar,1445714994\r\n"
                            "11,1, pixar ,1445714995\r\n"
                            "10,1,fun,1445714996\r\n"
                            "10,2,\"politics, us\",1445714997\r\n";
static const char *s_ratings = "userId,movieId,rating,timestamp\r\n"
                               "10,1,4.0,964982703\r\n"
                               "10,2,3.5,964982704\r\n"
                               "11,1,5.0,964982705\r\n"
                               "11,99,0.5,964982706\r\n"
                               "12,4,2.0,964982707\r\n";

static void s_fixture(void)
{
    s_write("movies.csv", s_movies);
    s_write("tags.csv", s_tags);
    s_write("ratings.csv", s_ratings);
}

static long s_count(PGconn *conn, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return pg_test_scalar(conn, sql);
}

Test(movielens, fixture_imports_exactly)
{
    s_fixture();
    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_read, 4);
    cr_assert_eq(stats.videos_inserted, 4);
    cr_assert_eq(stats.videos_updated, 0);
    cr_assert_eq(stats.tags_read, 4);
    cr_assert_eq(stats.users_inserted, 3);
    cr_assert_eq(stats.interactions_read, 5);
    cr_assert_eq(stats.interactions_inserted, 5);
    cr_assert_eq(stats.interactions_skipped, 0);

    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(s_count(conn, "features.videos"), 4);
    cr_assert_eq(s_count(conn, "features.users"), 3);
    cr_assert_eq(s_count(conn, "features.interactions"), 5);
    char buf[256];
    cr_assert_str_eq(pg_test_text(conn, "SELECT title FROM features.videos WHERE video_id = '2'",
                                  buf, sizeof buf),
                     "American President, The (1995)");
    cr_assert_str_eq(pg_test_text(conn, "SELECT title FROM features.videos WHERE video_id = '3'",
                                  buf, sizeof buf),
                     "11'09\"01 - September 11 (2002)");
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT genres::text FROM features.videos WHERE video_id = '1'",
                                  buf, sizeof buf),
                     "{Adventure,Animation,Children}");
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT genres::text FROM features.videos WHERE video_id = '4'",
                                  buf, sizeof buf),
                     "{}");
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT tags::text FROM features.videos WHERE video_id = '1'",
                                  buf, sizeof buf),
                     "{fun,pixar}");
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT tags::text FROM features.videos WHERE video_id = '2'",
                                  buf, sizeof buf),
                     "{\"politics, us\"}");
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT tags::text FROM features.videos WHERE video_id = '3'",
                                  buf, sizeof buf),
                     "{}");
    //  No stray carriage returns anywhere.
    cr_assert_eq(pg_test_scalar(conn,
                                "SELECT count(*) FROM features.videos"
                                " WHERE title ~ '\\r' OR array_to_string(genres, ',') ~ '\\r'"),
                 0);
    cr_assert_str_eq(
        pg_test_text(conn,
                     "SELECT user_id || '|' || video_id || '|' || kind || '|' || rating"
                     " || '|' || weight || '|' || extract(epoch FROM occurred_at)"
                     "  FROM features.interactions"
                     " WHERE event_id = 'ml:rating:10:2:964982704'",
                     buf, sizeof buf),
        "10|2|rating|3.5|0.7|964982704.000000");
    //  The rating of a movie the catalogue lacks is kept.
    cr_assert_eq(
        pg_test_scalar(conn, "SELECT count(*) FROM features.interactions WHERE video_id = '99'"),
        1);
    cr_assert_eq(pg_test_scalar(conn, "SELECT extract(epoch FROM created_at)::bigint"
                                      "  FROM features.users WHERE user_id = '10'"),
                 964982703);
    PQfinish(conn);
}

Test(movielens, reimport_inserts_nothing_and_updates_changes)
{
    s_fixture();
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, NULL), 0);
    PGconn *conn = pg_test_db_connect(s_db);
    char before[256], after[256];
    const char *snapshot = "SELECT count(*) || '/' || max(id) || '/' || max(ingested_at)"
                           "  FROM features.interactions";
    pg_test_text(conn, snapshot, before, sizeof before);

    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_inserted, 0);
    cr_assert_eq(stats.videos_updated, 0);
    cr_assert_eq(stats.users_inserted, 0);
    cr_assert_eq(stats.interactions_inserted, 0);
    cr_assert_eq(stats.interactions_skipped, 5);
    cr_assert_str_eq(pg_test_text(conn, snapshot, after, sizeof after), before);
    cr_assert_eq(s_count(conn, "features.videos"), 4);
    cr_assert_eq(s_count(conn, "features.users"), 3);

    //  A corrected title is an update, and updated_at moves.
    s_write("movies.csv", "movieId,title,genres\r\n"
                          "1,Toy Story (1995),Adventure|Animation|Children\r\n"
                          "2,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
                          "3,\"11'09\"\"01 - September 11 (2002)\",Drama\r\n"
                          "4,Quiet Film (2021),Documentary\r\n");
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_inserted, 0);
    cr_assert_eq(stats.videos_updated, 1);
    char buf[128];
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT title || genres::text FROM features.videos"
                                  " WHERE video_id = '4'",
                                  buf, sizeof buf),
                     "Quiet Film (2021){Documentary}");
    //  Only the changed row was touched (the others keep updated_at = created_at).
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.videos"
                                      " WHERE updated_at > created_at"),
                 1);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.videos"
                                      " WHERE updated_at > created_at AND video_id = '4'"),
                 1);
    PQfinish(conn);
}

Test(movielens, lf_files_and_no_tags_file)
{
    s_write("movies.csv", "movieId,title,genres\n1,A (2000),Drama\n2,\"B, The\",Comedy");
    s_write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,1.0,2\n");
    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_inserted, 2);
    cr_assert_eq(stats.tags_read, 0);
    cr_assert_eq(stats.interactions_inserted, 2);
    PGconn *conn = pg_test_db_connect(s_db);
    char buf[64];
    cr_assert_str_eq(pg_test_text(conn, "SELECT title FROM features.videos WHERE video_id = '2'",
                                  buf, sizeof buf),
                     "B, The");
    //  Without tags.csv, tags already stored are kept.
    pg_test_exec(conn, "UPDATE features.videos SET tags = '{kept}' WHERE video_id = '1'");
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_updated, 0);
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT tags::text FROM features.videos WHERE video_id = '1'",
                                  buf, sizeof buf),
                     "{kept}");
    PQfinish(conn);
}

//  One bad row anywhere: nothing at all is written.
Test(movielens, bad_input_writes_nothing)
{
    s_fixture();
    s_write("ratings.csv", "userId,movieId,rating,timestamp\r\n"
                           "10,1,4.0,964982703\r\n"
                           "10,2,four,964982704\r\n");
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, NULL), -1);
    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(s_count(conn, "features.videos"), 0);
    cr_assert_eq(s_count(conn, "features.interactions"), 0);

    //  The wrong file under the right name.
    s_write("ratings.csv", s_tags);
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, NULL), -1);
    //  A required file missing.
    cr_assert_eq(remove(strcat(strcpy((char[128]){0}, s_tmp), "/ratings.csv")), 0);
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, NULL), -1);
    cr_assert_eq(movielens_import_dir(s_cfg, "/nonexistent/ml", NULL), -1);
    cr_assert_eq(s_count(conn, "features.videos"), 0);

    //  Not migrated: a clear refusal, not a half import.
    s_fixture();
    pg_test_exec(conn, "DROP SCHEMA features CASCADE");
    cr_assert_eq(movielens_import_dir(s_cfg, s_tmp, NULL), -1);
    PQfinish(conn);
}

Test(movielens, command_line)
{
    s_fixture();
    char *bad[] = {"movielens"};
    cr_assert_eq(movielens_import_main(s_cfg, 1, bad), 2);
    char *other[] = {"netflix", s_tmp};
    cr_assert_eq(movielens_import_main(s_cfg, 2, other), 2);
    char *missing[] = {"movielens", "/nonexistent/ml"};
    cr_assert_eq(movielens_import_main(s_cfg, 2, missing), 1);
    char *good[] = {"movielens", s_tmp};
    cr_assert_eq(movielens_import_main(s_cfg, 2, good), 0);
    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(s_count(conn, "features.interactions"), 5);
    PQfinish(conn);
}

Test(movielens, real_ml_latest_small)
{
    char dir[CONFIG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/data/ml-latest-small", pg_test_db_source_dir(s_db));
    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(s_cfg, dir, &stats), 0, "import of %s failed", dir);
    cr_assert_eq(stats.videos_read, 9742);
    cr_assert_eq(stats.tags_read, 3683);
    cr_assert_eq(stats.interactions_read, 100836);
    cr_assert_eq(stats.interactions_inserted, 100836);

    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(s_count(conn, "features.interactions"), 100836);
    cr_assert_eq(s_count(conn, "features.videos"), 9742);
    cr_assert_eq(s_count(conn, "features.users"), 610);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.videos WHERE genres = '{}'"),
                 34);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.videos WHERE tags <> '{}'"),
                 1572);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.interactions"
                                      " WHERE rating NOT BETWEEN 0.5 AND 5"
                                      "    OR abs(weight - rating / 5) > 1e-6"),
                 0);
    char buf[128];
    cr_assert_str_eq(pg_test_text(conn, "SELECT title FROM features.videos WHERE video_id = '7789'",
                                  buf, sizeof buf),
                     "11'09\"01 - September 11 (2002)");

    //  Again: all skipped.
    cr_assert_eq(movielens_import_dir(s_cfg, dir, &stats), 0);
    cr_assert_eq(stats.interactions_inserted, 0);
    cr_assert_eq(stats.interactions_skipped, 100836);
    cr_assert_eq(stats.videos_inserted + stats.videos_updated, 0);
    cr_assert_eq(s_count(conn, "features.interactions"), 100836);
    PQfinish(conn);
}
