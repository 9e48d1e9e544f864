/*  test_movielens_import.c: `recsd import movielens` (movielens_import.c)
    into a real PostgreSQL: a hand-written fixture with the awkward cases,
    then the real ml-latest-small shipped in data/.
*/
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "migrate.h"
#include "movielens_import.h"
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

static char s_tmp[64]; //  this test's fixture dir, if it made one

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
    if (migrate_run(&s_db.cfg) != 0) {
        s_db_drop(); //  .fini does not run after a failed .init
        cr_assert_fail("migrations failed (see the log above)");
    }
}

static void s_teardown(void)
{
    s_db_drop();
    if (s_tmp[0])
        nftw(s_tmp, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(movielens, .init = s_setup, .fini = s_teardown, .timeout = 90);

static void s_write(const char *name, const char *text)
{
    if (!s_tmp[0]) {
        snprintf(s_tmp, sizeof s_tmp, "/tmp/recsd-ml-XXXXXX");
        cr_assert(mkdtemp(s_tmp), "mkdtemp");
    }
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
    return s_scalar(conn, sql);
}

Test(movielens, fixture_imports_exactly)
{
    s_fixture();
    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_read, 4);
    cr_assert_eq(stats.videos_inserted, 4);
    cr_assert_eq(stats.videos_updated, 0);
    cr_assert_eq(stats.tags_read, 4);
    cr_assert_eq(stats.users_inserted, 3);
    cr_assert_eq(stats.interactions_read, 5);
    cr_assert_eq(stats.interactions_inserted, 5);
    cr_assert_eq(stats.interactions_skipped, 0);

    PGconn *conn = s_connect();
    cr_assert_eq(s_count(conn, "features.videos"), 4);
    cr_assert_eq(s_count(conn, "features.users"), 3);
    cr_assert_eq(s_count(conn, "features.interactions"), 5);
    char buf[256];
    cr_assert_str_eq(
        s_text(conn, "SELECT title FROM features.videos WHERE video_id = '2'", buf, sizeof buf),
        "American President, The (1995)");
    cr_assert_str_eq(
        s_text(conn, "SELECT title FROM features.videos WHERE video_id = '3'", buf, sizeof buf),
        "11'09\"01 - September 11 (2002)");
    cr_assert_str_eq(s_text(conn, "SELECT genres::text FROM features.videos WHERE video_id = '1'",
                            buf, sizeof buf),
                     "{Adventure,Animation,Children}");
    cr_assert_str_eq(s_text(conn, "SELECT genres::text FROM features.videos WHERE video_id = '4'",
                            buf, sizeof buf),
                     "{}");
    cr_assert_str_eq(s_text(conn, "SELECT tags::text FROM features.videos WHERE video_id = '1'",
                            buf, sizeof buf),
                     "{fun,pixar}");
    cr_assert_str_eq(s_text(conn, "SELECT tags::text FROM features.videos WHERE video_id = '2'",
                            buf, sizeof buf),
                     "{\"politics, us\"}");
    cr_assert_str_eq(s_text(conn, "SELECT tags::text FROM features.videos WHERE video_id = '3'",
                            buf, sizeof buf),
                     "{}");
    //  No stray carriage returns anywhere.
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM features.videos"
                                " WHERE title ~ '\\r' OR array_to_string(genres, ',') ~ '\\r'"),
                 0);
    cr_assert_str_eq(s_text(conn,
                            "SELECT user_id || '|' || video_id || '|' || kind || '|' || rating"
                            " || '|' || weight || '|' || extract(epoch FROM occurred_at)"
                            "  FROM features.interactions"
                            " WHERE event_id = 'ml:rating:10:2:964982704'",
                            buf, sizeof buf),
                     "10|2|rating|3.5|0.7|964982704.000000");
    //  The rating of a movie the catalogue lacks is kept.
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM features.interactions WHERE video_id = '99'"),
                 1);
    cr_assert_eq(s_scalar(conn, "SELECT extract(epoch FROM created_at)::bigint"
                                "  FROM features.users WHERE user_id = '10'"),
                 964982703);
    PQfinish(conn);
}

Test(movielens, reimport_inserts_nothing_and_updates_changes)
{
    s_fixture();
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, NULL), 0);
    PGconn *conn = s_connect();
    char before[256], after[256];
    const char *snapshot = "SELECT count(*) || '/' || max(id) || '/' || max(ingested_at)"
                           "  FROM features.interactions";
    s_text(conn, snapshot, before, sizeof before);

    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_inserted, 0);
    cr_assert_eq(stats.videos_updated, 0);
    cr_assert_eq(stats.users_inserted, 0);
    cr_assert_eq(stats.interactions_inserted, 0);
    cr_assert_eq(stats.interactions_skipped, 5);
    cr_assert_str_eq(s_text(conn, snapshot, after, sizeof after), before);
    cr_assert_eq(s_count(conn, "features.videos"), 4);
    cr_assert_eq(s_count(conn, "features.users"), 3);

    //  A corrected title is an update, and updated_at moves.
    s_write("movies.csv", "movieId,title,genres\r\n"
                          "1,Toy Story (1995),Adventure|Animation|Children\r\n"
                          "2,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
                          "3,\"11'09\"\"01 - September 11 (2002)\",Drama\r\n"
                          "4,Quiet Film (2021),Documentary\r\n");
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_inserted, 0);
    cr_assert_eq(stats.videos_updated, 1);
    char buf[128];
    cr_assert_str_eq(s_text(conn,
                            "SELECT title || genres::text FROM features.videos"
                            " WHERE video_id = '4'",
                            buf, sizeof buf),
                     "Quiet Film (2021){Documentary}");
    //  Only the changed row was touched (the others keep updated_at = created_at).
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM features.videos"
                                " WHERE updated_at > created_at"),
                 1);
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM features.videos"
                                " WHERE updated_at > created_at AND video_id = '4'"),
                 1);
    PQfinish(conn);
}

Test(movielens, lf_files_and_no_tags_file)
{
    s_write("movies.csv", "movieId,title,genres\n1,A (2000),Drama\n2,\"B, The\",Comedy");
    s_write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,1.0,2\n");
    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_inserted, 2);
    cr_assert_eq(stats.tags_read, 0);
    cr_assert_eq(stats.interactions_inserted, 2);
    PGconn *conn = s_connect();
    char buf[64];
    cr_assert_str_eq(
        s_text(conn, "SELECT title FROM features.videos WHERE video_id = '2'", buf, sizeof buf),
        "B, The");
    //  Without tags.csv, tags already stored are kept.
    s_exec_ok(conn, "UPDATE features.videos SET tags = '{kept}' WHERE video_id = '1'");
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, &stats), 0);
    cr_assert_eq(stats.videos_updated, 0);
    cr_assert_str_eq(s_text(conn, "SELECT tags::text FROM features.videos WHERE video_id = '1'",
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
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, NULL), -1);
    PGconn *conn = s_connect();
    cr_assert_eq(s_count(conn, "features.videos"), 0);
    cr_assert_eq(s_count(conn, "features.interactions"), 0);

    //  The wrong file under the right name.
    s_write("ratings.csv", s_tags);
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, NULL), -1);
    //  A required file missing.
    cr_assert_eq(remove(strcat(strcpy((char[128]){0}, s_tmp), "/ratings.csv")), 0);
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, NULL), -1);
    cr_assert_eq(movielens_import_dir(&s_db.cfg, "/nonexistent/ml", NULL), -1);
    cr_assert_eq(s_count(conn, "features.videos"), 0);

    //  Not migrated: a clear refusal, not a half import.
    s_fixture();
    s_exec_ok(conn, "DROP SCHEMA features CASCADE");
    cr_assert_eq(movielens_import_dir(&s_db.cfg, s_tmp, NULL), -1);
    PQfinish(conn);
}

Test(movielens, command_line)
{
    s_fixture();
    char *bad[] = {"movielens"};
    cr_assert_eq(movielens_import_main(&s_db.cfg, 1, bad), 2);
    char *other[] = {"netflix", s_tmp};
    cr_assert_eq(movielens_import_main(&s_db.cfg, 2, other), 2);
    char *missing[] = {"movielens", "/nonexistent/ml"};
    cr_assert_eq(movielens_import_main(&s_db.cfg, 2, missing), 1);
    char *good[] = {"movielens", s_tmp};
    cr_assert_eq(movielens_import_main(&s_db.cfg, 2, good), 0);
    PGconn *conn = s_connect();
    cr_assert_eq(s_count(conn, "features.interactions"), 5);
    PQfinish(conn);
}

Test(movielens, real_ml_latest_small)
{
    char dir[CONFIG_PATH_MAX];
    s_source_dir(dir, sizeof dir - 32);
    strcat(dir, "/data/ml-latest-small");
    movielens_stats_t stats;
    cr_assert_eq(movielens_import_dir(&s_db.cfg, dir, &stats), 0, "import of %s failed", dir);
    cr_assert_eq(stats.videos_read, 9742);
    cr_assert_eq(stats.tags_read, 3683);
    cr_assert_eq(stats.interactions_read, 100836);
    cr_assert_eq(stats.interactions_inserted, 100836);

    PGconn *conn = s_connect();
    cr_assert_eq(s_count(conn, "features.interactions"), 100836);
    cr_assert_eq(s_count(conn, "features.videos"), 9742);
    cr_assert_eq(s_count(conn, "features.users"), 610);
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM features.videos WHERE genres = '{}'"), 34);
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM features.videos WHERE tags <> '{}'"), 1572);
    cr_assert_eq(s_scalar(conn, "SELECT count(*) FROM features.interactions"
                                " WHERE rating NOT BETWEEN 0.5 AND 5"
                                "    OR abs(weight - rating / 5) > 1e-6"),
                 0);
    char buf[128];
    cr_assert_str_eq(
        s_text(conn, "SELECT title FROM features.videos WHERE video_id = '7789'", buf, sizeof buf),
        "11'09\"01 - September 11 (2002)");

    //  Again: all skipped.
    cr_assert_eq(movielens_import_dir(&s_db.cfg, dir, &stats), 0);
    cr_assert_eq(stats.interactions_inserted, 0);
    cr_assert_eq(stats.interactions_skipped, 100836);
    cr_assert_eq(stats.videos_inserted + stats.videos_updated, 0);
    cr_assert_eq(s_count(conn, "features.interactions"), 100836);
    PQfinish(conn);
}
