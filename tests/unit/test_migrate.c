/*  test_migrate.c: `recsd migrate` against a real PostgreSQL (migrate.c).

    Each test runs in a database of its own (see the helper below); tests
    with hand-made migration files write them into a temp directory.
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "migrate.h"
#include "pg_conn.h"

//  ---- a fresh database per test (same helper in each PostgreSQL test) ----
//
//  RECSD_PG_DSN names a server where we may CREATE DATABASE; each test gets
//  recsd_test_<random>, dropped afterwards. Without the variable the tests
//  fail loudly: skipping would let a broken setup look green.

typedef struct {
    char name[64]; //  database name
    config_t cfg;  //  pg_dsn points at it, migrations_dir at the source tree
    bool created;
} test_db_t;

static test_db_t s_db; //  per test: criterion runs each test in its own process

static const char *s_admin_dsn(void)
{
    const char *dsn = getenv("RECSD_PG_DSN");
    if (!dsn || !*dsn)
        cr_assert_fail("RECSD_PG_DSN is not set: these tests need a real PostgreSQL server "
                       "where they may CREATE DATABASE (e.g. "
                       "postgresql://recsd@127.0.0.1:57500/recsd)");
    return dsn;
}

//  The source tree: RECSD_SOURCE_DIR if set, else where this file was built from.
static void s_source_dir(char *buf, size_t len)
{
    const char *env = getenv("RECSD_SOURCE_DIR");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return;
    }
    //  CMake compiles with absolute paths; failing that, the compiled-in
    //  migrations dir is <source>/migrations in a developer build.
    snprintf(buf, len, "%s", __FILE__);
    char *cut = strstr(buf, "/tests/unit/");
    if (buf[0] != '/' || !cut) {
        snprintf(buf, len, "%s", RECSD_DEFAULT_MIGRATIONS_DIR);
        cut = strrchr(buf, '/');
    }
    cr_assert(cut, "cannot find the source dir; set RECSD_SOURCE_DIR");
    *cut = '\0';
}

static void s_exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(res);
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
    PQclear(res);
    cr_assert(ok, "%s: %s", sql, msg);
}

//  First column of the first row as a number (counts, flags).
static long s_scalar(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
    long value = ok ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    cr_assert(ok, "%s: %s", sql, msg);
    return value;
}

//  First column of the first row as text, into buf ("<NULL>" for NULL).
static const char *s_text(PGconn *conn, const char *sql, char *buf, size_t len)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok)
        snprintf(buf, len, "%s", PQgetisnull(res, 0, 0) ? "<NULL>" : PQgetvalue(res, 0, 0));
    else
        snprintf(buf, len, "%s", PQresultErrorMessage(res));
    PQclear(res);
    cr_assert(ok, "%s: %s", sql, buf);
    return buf;
}

//  Appends key='value' to a conninfo string, quoted as libpq expects.
static void s_conninfo_add(char *buf, size_t len, const char *key, const char *value)
{
    size_t n = strlen(buf);
    n += (size_t)snprintf(buf + n, len - n, "%s%s='", n ? " " : "", key);
    for (const char *p = value; *p && n + 3 < len; p++) {
        if (*p == '\'' || *p == '\\')
            buf[n++] = '\\';
        buf[n++] = *p;
    }
    cr_assert(n + 2 < len, "conninfo too long");
    buf[n++] = '\'';
    buf[n] = '\0';
}

//  Everything that can fail comes before CREATE DATABASE: criterion does not
//  run .fini when .init fails, so a later failure would leak the database.
static void s_db_create(void)
{
    const char *admin_dsn = s_admin_dsn();
    char err[512];
    cr_assert_eq(config_load(&s_db.cfg, err, sizeof err), 0, "%s", err);
    char source[CONFIG_PATH_MAX - 16]; //  room for "/migrations"
    s_source_dir(source, sizeof source);
    if (getenv("RECSD_SOURCE_DIR"))
        snprintf(s_db.cfg.migrations_dir, sizeof s_db.cfg.migrations_dir, "%s/migrations", source);
    else
        snprintf(s_db.cfg.migrations_dir, sizeof s_db.cfg.migrations_dir, "%s",
                 RECSD_DEFAULT_MIGRATIONS_DIR);

    unsigned char random[8];
    FILE *urandom = fopen("/dev/urandom", "rb");
    cr_assert(urandom && fread(random, 1, sizeof random, urandom) == sizeof random);
    fclose(urandom);
    int n = snprintf(s_db.name, sizeof s_db.name, "recsd_test_");
    for (size_t i = 0; i < sizeof random; i++)
        n += snprintf(s_db.name + n, sizeof s_db.name - (size_t)n, "%02x", random[i]);

    PGconn *admin = pg_conn_open(admin_dsn, "test", 10, err, sizeof err);
    cr_assert(admin, "%s", err);
    //  Same server, user and options as the admin DSN (URI or key=value),
    //  another database: rebuild a conninfo from what libpq resolved, minus
    //  the identity pg_conn_open added for the admin connection.
    s_db.cfg.pg_dsn[0] = '\0';
    PQconninfoOption *options = PQconninfo(admin);
    cr_assert(options);
    const char *skip[] = {"dbname", "application_name", "fallback_application_name",
                          "client_encoding"};
    for (PQconninfoOption *o = options; o->keyword; o++) {
        bool wanted = o->val && *o->val;
        for (size_t i = 0; wanted && i < sizeof skip / sizeof *skip; i++)
            wanted = strcmp(o->keyword, skip[i]) != 0;
        if (wanted)
            s_conninfo_add(s_db.cfg.pg_dsn, sizeof s_db.cfg.pg_dsn, o->keyword, o->val);
    }
    PQconninfoFree(options);
    s_conninfo_add(s_db.cfg.pg_dsn, sizeof s_db.cfg.pg_dsn, "dbname", s_db.name);

    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", s_db.name);
    PGresult *res = PQexec(admin, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    snprintf(err, sizeof err, "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(admin);
    cr_assert(ok, "%s: %s", sql, err);
    s_db.created = true;
}

static void s_db_drop(void)
{
    if (!s_db.created)
        return;
    char err[512];
    PGconn *admin = pg_conn_open(getenv("RECSD_PG_DSN"), "test", 10, err, sizeof err);
    if (!admin) {
        fprintf(stderr, "cannot drop %s: %s\n", s_db.name, err);
        return;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s_db.name);
    PGresult *res = PQexec(admin, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fprintf(stderr, "cannot drop %s: %s", s_db.name, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(admin);
    s_db.created = false;
}

//  A connection to the test database, owned by the caller.
static PGconn *s_connect(void)
{
    char err[512];
    PGconn *conn = pg_conn_open(s_db.cfg.pg_dsn, "test", 10, err, sizeof err);
    cr_assert(conn, "%s", err);
    return conn;
}
//  ---- end of the per-test database helper ----

static char s_tmp[64]; //  this test's migrations dir, if it made one

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw; //  nftw callback signature
    if (remove(path) != 0)
        perror(path);
    return 0;
}

static void s_setup(void)
{
    s_db_create();
}

static void s_teardown(void)
{
    s_db_drop();
    if (s_tmp[0])
        nftw(s_tmp, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(migrate, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  Points the config at a new temp dir for hand-made migration files.
static void s_use_tmp_dir(void)
{
    snprintf(s_tmp, sizeof s_tmp, "/tmp/recsd-migrate-XXXXXX");
    cr_assert(mkdtemp(s_tmp), "mkdtemp");
    snprintf(s_db.cfg.migrations_dir, sizeof s_db.cfg.migrations_dir, "%s", s_tmp);
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
    DIR *dir = opendir(s_db.cfg.migrations_dir);
    cr_assert(dir, "cannot open %s", s_db.cfg.migrations_dir);
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
    return s_scalar(conn, sql) == 1;
}

static const char *s_versions(PGconn *conn, char *buf, size_t len)
{
    return s_text(conn,
                  "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '')"
                  "  FROM public.schema_migrations",
                  buf, len);
}

Test(migrate, applies_all_then_nothing)
{
    long files = s_expected_files();
    cr_assert_geq(files, 3, "expected at least 001..003 in %s", s_db.cfg.migrations_dir);
    cr_assert_eq(migrate_run(&s_db.cfg), 0);

    PGconn *conn = s_connect();
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM public.schema_migrations"), files);
    cr_assert(s_exists(conn, "features.videos"));
    cr_assert(s_exists(conn, "features.users"));
    cr_assert(s_exists(conn, "features.interactions"));
    cr_assert(s_exists(conn, "public.outbox"));
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM pg_namespace"
                                " WHERE nspname IN ('features', 'training', 'experiments')"),
                 3);
    //  Checksums are the SHA-256 of the files, 64 hex digits.
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM public.schema_migrations"
                                " WHERE checksum ~ '^[0-9a-f]{64}$'"),
                 files);
    char before[256], after[256];
    s_text(conn,
           "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version)"
           "  FROM public.schema_migrations",
           before, sizeof before);

    //  The second run applies nothing: same rows, same applied_at.
    cr_assert_eq(migrate_run(&s_db.cfg), 0);
    s_text(conn,
           "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version)"
           "  FROM public.schema_migrations",
           after, sizeof after);
    cr_assert_str_eq(after, before);
    PQfinish(conn);
}

Test(migrate, schema_holds_its_rules)
{
    cr_assert_eq(migrate_run(&s_db.cfg), 0);
    PGconn *conn = s_connect();
    //  No foreign key: an event may name a video the catalogue lacks.
    s_exec_ok(conn, "INSERT INTO features.interactions (event_id, user_id, video_id, kind,"
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
    s_exec_ok(conn, "INSERT INTO features.videos (video_id, title, created_at, updated_at)"
                    " VALUES ('v1', 'A', now() - interval '1 day', now() - interval '1 day')");
    s_exec_ok(conn, "UPDATE features.videos SET title = 'B' WHERE video_id = 'v1'");
    cr_assert_eq(s_scalar(conn, "SELECT (updated_at > created_at + interval '1 hour')::int"
                                "  FROM features.videos WHERE video_id = 'v1'"),
                 1);
    s_exec_ok(conn, "INSERT INTO public.outbox (topic, key, payload)"
                    " VALUES ('t', 'k', '{\"a\": 1}')");
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM public.outbox WHERE published_at IS NULL"
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
    runner->rc = migrate_run(&s_db.cfg);
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

    PGconn *conn = s_connect();
    long files = s_expected_files();
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM public.schema_migrations"), files);
    cr_assert_eq(s_scalar(conn, "SELECT count(DISTINCT name) FROM public.schema_migrations"),
                 files);
    PQfinish(conn);
}

Test(migrate, changed_file_is_refused)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    s_write("002_b.sql", "CREATE TABLE b (x int);\n");
    cr_assert_eq(migrate_run(&s_db.cfg), 0);

    //  Editing an applied file (even a comment) fails the run, and a new
    //  file that arrives at the same time is not applied either.
    s_write("001_a.sql", "CREATE TABLE a (x int); -- edited\n");
    s_write("003_c.sql", "CREATE TABLE c (x int);\n");
    cr_assert_eq(migrate_run(&s_db.cfg), -1);
    PGconn *conn = s_connect();
    char versions[64];
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,2");
    cr_assert_not(s_exists(conn, "public.c"));

    //  Putting the file back the way it was makes the run good again.
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    cr_assert_eq(migrate_run(&s_db.cfg), 0);
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
    cr_assert_eq(migrate_run(&s_db.cfg), -1);

    PGconn *conn = s_connect();
    char versions[64];
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,2");
    cr_assert(s_exists(conn, "public.a"));
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM b"), 1);
    cr_assert_not(s_exists(conn, "public.c"), "003 was not rolled back");
    cr_assert_not(s_exists(conn, "public.d"), "ran past the failed file");

    //  Fixed, the run picks up where it stopped.
    s_write("003_c.sql", "CREATE TABLE c (x int);\n\nSELECT 1;\n");
    cr_assert_eq(migrate_run(&s_db.cfg), 0);
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,2,3,4");
    cr_assert(s_exists(conn, "public.d"));
    PQfinish(conn);
}

Test(migrate, transaction_control_in_a_file_is_refused)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\nCOMMIT;\nCREATE TABLE a2 (x int);\n");
    cr_assert_eq(migrate_run(&s_db.cfg), -1);
    PGconn *conn = s_connect();
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM public.schema_migrations"), 0);
    PQfinish(conn);
}

Test(migrate, duplicate_numbers_are_refused)
{
    s_use_tmp_dir();
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    s_write("001_b.sql", "CREATE TABLE b (x int);\n");
    cr_assert_eq(migrate_run(&s_db.cfg), -1);
    //  Refused before touching the database.
    PGconn *conn = s_connect();
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
    cr_assert_eq(migrate_run(&s_db.cfg), 0);
    PGconn *conn = s_connect();
    char versions[64];
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,4,7");

    //  A file below the newest applied one (branches merged late) is applied.
    s_write("005_e.sql", "CREATE TABLE e (x int);\n");
    cr_assert_eq(migrate_run(&s_db.cfg), 0);
    cr_assert_str_eq(s_versions(conn, versions, sizeof versions), "1,4,5,7");
    PQfinish(conn);
}

Test(migrate, missing_directory_and_dead_server_fail)
{
    snprintf(s_db.cfg.migrations_dir, sizeof s_db.cfg.migrations_dir, "/nonexistent/recsd");
    cr_assert_eq(migrate_run(&s_db.cfg), -1);

    s_use_tmp_dir();
    cr_assert_eq(migrate_run(&s_db.cfg), -1, "an empty directory is a misconfiguration");
    s_write("001_a.sql", "CREATE TABLE a (x int);\n");
    //  Port 1 on loopback: nothing listens, the connection is refused.
    snprintf(s_db.cfg.pg_dsn, sizeof s_db.cfg.pg_dsn,
             "postgresql://recsd@127.0.0.1:1/recsd?connect_timeout=2");
    cr_assert_eq(migrate_run(&s_db.cfg), -1);
}
