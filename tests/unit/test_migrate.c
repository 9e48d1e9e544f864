/*  test_migrate.c: `recsd migrate` against a real PostgreSQL (migrate.c).

    Each test runs in a database of its own (support/pg_test_db.h); tests
    with hand-made migration files write them into a temp directory.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <dirent.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "leak_check.h"
#include "migrate.h"
#include "pg_test_db.h"
#include "tmp_dir.h"

static pg_test_db_t *s_db; //  this test's database
static config_t *s_cfg;    //  its config, borrowed from s_db

static char s_tmp[64]; //  this test's migrations dir, if it made one

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_cfg = pg_test_db_config(s_db);
}

static void s_teardown(void)
{
    pg_test_db_destroy(&s_db);
    tmp_dir_remove(s_tmp);
    leak_check_fini();
}

TestSuite(migrate, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  Points the config at a new temp dir for hand-made migration files.
static void s_use_tmp_dir(void)
{
    cr_assert_eq(tmp_dir_make(s_tmp, sizeof s_tmp, "recsd-migrate"), 0, "tmp dir: %s",
                 strerror(errno));
    snprintf(s_cfg->migrations_dir, sizeof s_cfg->migrations_dir, "%s", s_tmp);
}

static void s_write(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_tmp, name);
    FILE *file = fopen(path, "w");
    cr_assert(file, "cannot write %s", path);
    cr_assert_eq(fputs(text, file) >= 0, true);
    cr_assert_eq(fclose(file), 0);
}

//  Number of NNN_name.sql files in the real migrations directory.
static long s_expected_files(void)
{
    regex_t pattern;
    cr_assert_eq(regcomp(&pattern, "^[0-9]{3}_[a-z0-9_]+\\.sql$", REG_EXTENDED | REG_NOSUB), 0);
    DIR *dir = opendir(s_cfg->migrations_dir);
    cr_assert(dir, "cannot open %s", s_cfg->migrations_dir);
    long count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)))
        if (regexec(&pattern, entry->d_name, 0, NULL, 0) == 0)
            count++;
    closedir(dir);
    regfree(&pattern);
    return count;
}

static bool s_exists(PGconn *conn, const char *relation)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT (to_regclass('%s') IS NOT NULL)::int", relation);
    return pg_test_scalar(conn, sql) == 1;
}

static const char *s_versions(PGconn *conn, char *buf, size_t len)
{
    return pg_test_text(conn,
                        "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '')"
                        "  FROM public.schema_migrations",
                        buf, len);
}

Test(migrate, applies_all_then_nothing)
{
    long files = s_expected_files();
    cr_assert_geq(files, 3, "expected at least 001..003 in %s", s_cfg->migrations_dir);
    cr_assert_eq(migrate_run(s_cfg), 0);

    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM public.schema_migrations"), files);
    cr_assert(s_exists(conn, "features.videos"));
    cr_assert(s_exists(conn, "features.users"));
    cr_assert(s_exists(conn, "features.interactions"));
    cr_assert(s_exists(conn, "public.outbox"));
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM pg_namespace"
                                      " WHERE nspname IN ('features', 'training', 'experiments')"),
                 3);
    //  Checksums are the SHA-256 of the files, 64 hex digits.
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM public.schema_migrations"
                                      " WHERE checksum ~ '^[0-9a-f]{64}$'"),
                 files);
    char before[256], after[256];
    pg_test_text(conn,
                 "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version)"
                 "  FROM public.schema_migrations",
                 before, sizeof before);

    //  The second run applies nothing: same rows, same applied_at.
    cr_assert_eq(migrate_run(s_cfg), 0);
    pg_test_text(conn,
                 "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version)"
                 "  FROM public.schema_migrations",
                 after, sizeof after);
    cr_assert_str_eq(after, before);
    PQfinish(conn);
}

Test(migrate, schema_holds_its_rules)
{
    cr_assert_eq(migrate_run(s_cfg), 0);
    PGconn *conn = pg_test_db_connect(s_db);
    //  No foreign key: an event may name a video the catalogue lacks.
    pg_test_exec(conn, "INSERT INTO features.interactions (event_id, user_id, video_id, kind,"
                       " weight, occurred_at) VALUES ('e1', 'u1', 'not-in-catalogue', 'watch',"
                       " 0.5, now())");
    const char *rejected[] = {
        //  duplicate idempotency key
        "INSERT INTO features.interactions (event_id, user_id, video_id, kind, occurred_at)"
        " VALUES ('e1', 'u2', 'v', 'watch', now())",
        //  unknown kind
        "INSERT INTO features.interactions (event_id, user_id, video_id, kind, occurred_at)"
        " VALUES ('e2', 'u', 'v', 'like', now())",
        //  a rating without a rating
        "INSERT INTO features.interactions (event_id, user_id, video_id, kind, occurred_at)"
        " VALUES ('e3', 'u', 'v', 'rating', now())",
        //  no event id
        "INSERT INTO features.interactions (user_id, video_id, kind, occurred_at)"
        " VALUES ('u', 'v', 'watch', now())",
        //  genres may be empty, never NULL
        "INSERT INTO features.videos (video_id, genres) VALUES ('v', NULL)",
    };
    for (size_t i = 0; i < sizeof rejected / sizeof *rejected; i++) {
        PGresult *res = PQexec(conn, rejected[i]);
        cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR, "accepted: %s", rejected[i]);
        PQclear(res);
    }
    //  updated_at follows updates.
    pg_test_exec(conn, "INSERT INTO features.videos (video_id, title, created_at, updated_at)"
                       " VALUES ('v1', 'A', now() - interval '1 day', now() - interval '1 day')");
    pg_test_exec(conn, "UPDATE features.videos SET title = 'B' WHERE video_id = 'v1'");
    cr_assert_eq(pg_test_scalar(conn, "SELECT (updated_at > created_at + interval '1 hour')::int"
                                      "  FROM features.videos WHERE video_id = 'v1'"),
                 1);
    pg_test_exec(conn, "INSERT INTO public.outbox (topic, key, payload)"
                       " VALUES ('t', 'k', '{\"a\": 1}')");
    cr_assert_eq(pg_test_scalar(conn,
                                "SELECT count(*) FROM public.outbox WHERE published_at IS NULL"
                                " AND headers = '{}'"),
                 1);
    PQfinish(conn);
}

typedef struct {
    pthread_barrier_t *start;
    int rc;
} runner_t;

static void *s_runner(void *arg)
{
    runner_t *runner = arg;
    pthread_barrier_wait(runner->start);
    runner->rc = migrate_run(s_cfg);
    return NULL;
}

//  Without the advisory lock the losers would fail (CREATE SCHEMA of a
//  schema another transaction just created), so all succeeding is the test.
Test(migrate, concurrent_runs_serialise)
{
    enum { RUNNERS = 4 };
    pthread_barrier_t start;
    cr_assert_eq(pthread_barrier_init(&start, NULL, RUNNERS), 0);
    pthread_t threads[RUNNERS];
    runner_t runners[RUNNERS];
    for (int i = 0; i < RUNNERS; i++) {
        runners[i] = (runner_t){&start, -2};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_runner, &runners[i]), 0);
    }
    for (int i = 0; i < RUNNERS; i++)
        cr_assert_eq(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < RUNNERS; i++)
        cr_assert_eq(runners[i].rc, 0, "runner %d failed", i);

    PGconn *conn = pg_test_db_connect(s_db);
    long files = s_expected_files();
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM public.schema_migrations"), files);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(DISTINCT name) FROM public.schema_migrations"),
                 files);
    PQfinish(conn);
}

Test(migrate, changed_file_is_refused)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    s_write("002_b.sql", "CREATE TABLE b (x int);\n");
    cr_assert_eq(migrate_run(s_cfg), 0);

    //  Editing an applied file (even a comment) fails the run, and a new
    //  file that arrives at the same time is not applied either.
    s_write("001_a.sql", "CREATE TABLE a (x int); -- edited\n");
    s_write("003_c.sql", "CREATE TABLE c (x int);\n");
    cr_assert_eq(migrate_run(s_cfg), -1);
    PGconn *conn = pg_test_db_connect(s_db);
    char versions[64];
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,2");
    cr_assert_not(s_exists(conn, "public.c"));

    //  Putting the file back the way it was makes the run good again.
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    cr_assert_eq(migrate_run(s_cfg), 0);
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,2,3");
    cr_assert(s_exists(conn, "public.c"));
    PQfinish(conn);
}

Test(migrate, broken_file_rolls_back_and_stops)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    s_write("002_b.sql", "CREATE TABLE b (x int);\nINSERT INTO b VALUES (1);\n");
    //  The first statement succeeds, the second fails: the table must go too.
    s_write("003_c.sql", "CREATE TABLE c (x int);\n\nSELEC 1;\n");
    s_write("004_d.sql", "CREATE TABLE d (x int);\n");
    cr_assert_eq(migrate_run(s_cfg), -1);

    PGconn *conn = pg_test_db_connect(s_db);
    char versions[64];
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,2");
    cr_assert(s_exists(conn, "public.a"));
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM b"), 1);
    cr_assert_not(s_exists(conn, "public.c"), "003 was not rolled back");
    cr_assert_not(s_exists(conn, "public.d"), "ran past the failed file");

    //  Fixed, the run picks up where it stopped.
    s_write("003_c.sql", "CREATE TABLE c (x int);\n\nSELECT 1;\n");
    cr_assert_eq(migrate_run(s_cfg), 0);
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,2,3,4");
    cr_assert(s_exists(conn, "public.d"));
    PQfinish(conn);
}

Test(migrate, transaction_control_in_a_file_is_refused)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\nCOMMIT;\nCREATE TABLE a2 (x int);\n");
    cr_assert_eq(migrate_run(s_cfg), -1);
    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM public.schema_migrations"), 0);
    PQfinish(conn);
}

Test(migrate, duplicate_numbers_are_refused)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    s_write("001_b.sql", "CREATE TABLE b (x int);\n");
    cr_assert_eq(migrate_run(s_cfg), -1);
    //  Refused before touching the database.
    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_not(s_exists(conn, "public.schema_migrations"));
    cr_assert_not(s_exists(conn, "public.a"));
    PQfinish(conn);
}

Test(migrate, gaps_allowed_other_files_ignored)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    s_write("007_g.sql", "CREATE TABLE g (x int);\n");
    s_write("README.md", "not a migration\n");
    s_write("2_short.sql", "SELEC broken;\n");
    s_write("003_Upper.sql", "SELEC broken;\n");
    s_write("004_empty.sql", "-- nothing to do yet\n");
    cr_assert_eq(migrate_run(s_cfg), 0);
    PGconn *conn = pg_test_db_connect(s_db);
    char versions[64];
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,4,7");

    //  A file below the newest applied one (branches merged late) is applied.
    s_write("005_e.sql", "CREATE TABLE e (x int);\n");
    cr_assert_eq(migrate_run(s_cfg), 0);
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,4,5,7");
    PQfinish(conn);
}

Test(migrate, missing_directory_and_dead_server_fail)
{
    snprintf(s_cfg->migrations_dir, sizeof s_cfg->migrations_dir, "/nonexistent/recsd");
    cr_assert_eq(migrate_run(s_cfg), -1);

    s_use_tmp_dir();
    cr_assert_eq(migrate_run(s_cfg), -1, "an empty directory is a misconfiguration");
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    //  Port 1 on loopback: nothing listens, the connection is refused.
    snprintf(s_cfg->pg_dsn, sizeof s_cfg->pg_dsn,
             "postgresql://recsd@127.0.0.1:1/recsd?connect_timeout=2");
    cr_assert_eq(migrate_run(s_cfg), -1);
}
