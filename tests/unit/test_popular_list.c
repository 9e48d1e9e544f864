/*  test_popular_list.c: the popularity list (popular_list.c) and the
    connection helper it is used with (pg_conn.c), on a real PostgreSQL.
*/
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "migrate.h"
#include "pg_conn.h"
#include "popular_list.h"

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

static void s_setup(void)
{
    s_db_create();
    if (migrate_run(&s_db.cfg) != 0) {
        s_db_drop(); //  .fini does not run after a failed .init
        cr_assert_fail("migrations failed (see the log above)");
    }
}

TestSuite(popular_list, .init = s_setup, .fini = s_db_drop, .timeout = 60);
TestSuite(pg_conn, .init = s_db_create, .fini = s_db_drop, .timeout = 60);

//  Adds `count` watch events for video_id, by distinct users.
static void s_watch(PGconn *conn, const char *video_id, int count)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO features.interactions (event_id, user_id, video_id, kind, weight,"
             " occurred_at) SELECT 'e:%s:' || g, 'u' || g, '%s', 'watch', 1, now()"
             " FROM generate_series(1, %d) g",
             video_id, video_id, count);
    s_exec_ok(conn, sql);
}

static void s_expect(const popular_list_t *list, size_t i, const char *video_id, double score)
{
    const popular_item_t *item = popular_list_item(list, i);
    cr_assert(item, "no item %zu", i);
    cr_assert_str_eq(item->video_id, video_id, "item %zu", i);
    cr_assert_float_eq(item->score, score, 1e-9, "item %zu (%s)", i, video_id);
}

Test(popular_list, empty_table_gives_empty_list)
{
    PGconn *conn = s_connect();
    char err[256] = "";
    popular_list_t *list = popular_list_load(conn, 10, err, sizeof err);
    cr_assert(list, "%s", err);
    cr_assert_eq(popular_list_size(list), 0);
    cr_assert_null(popular_list_item(list, 0));
    popular_list_destroy(&list);
    cr_assert_null(list);
    popular_list_destroy(&list); //  idempotent
    PQfinish(conn);
}

Test(popular_list, most_interacted_first_ties_by_id_and_limit)
{
    PGconn *conn = s_connect();
    s_watch(conn, "v1", 3);
    s_watch(conn, "v2", 5);
    s_watch(conn, "v3", 1);
    s_watch(conn, "v0", 5); //  ties with v2, sorts before it
    char err[256] = "";
    popular_list_t *list = popular_list_load(conn, 10, err, sizeof err);
    cr_assert(list, "%s", err);
    cr_assert_eq(popular_list_size(list), 4);
    s_expect(list, 0, "v0", 5);
    s_expect(list, 1, "v2", 5);
    s_expect(list, 2, "v1", 3);
    s_expect(list, 3, "v3", 1);
    popular_list_destroy(&list);

    list = popular_list_load(conn, 2, err, sizeof err);
    cr_assert(list, "%s", err);
    cr_assert_eq(popular_list_size(list), 2);
    s_expect(list, 0, "v0", 5);
    s_expect(list, 1, "v2", 5);
    popular_list_destroy(&list);

    list = popular_list_load(conn, 0, err, sizeof err);
    cr_assert(list, "%s", err);
    cr_assert_eq(popular_list_size(list), 0);
    popular_list_destroy(&list);
    PQfinish(conn);
}

Test(popular_list, retired_excluded_unknown_counted)
{
    PGconn *conn = s_connect();
    s_watch(conn, "retired", 9);
    s_watch(conn, "live", 2);
    s_watch(conn, "unknown", 4); //  not in the catalogue (yet): still counts
    s_exec_ok(conn, "INSERT INTO features.videos (video_id, title, retired) VALUES"
                    " ('retired', 'Old', true), ('live', 'New', false)");
    char err[256] = "";
    popular_list_t *list = popular_list_load(conn, 10, err, sizeof err);
    cr_assert(list, "%s", err);
    cr_assert_eq(popular_list_size(list), 2);
    s_expect(list, 0, "unknown", 4);
    s_expect(list, 1, "live", 2);
    popular_list_destroy(&list);
    PQfinish(conn);
}

Test(popular_list, dead_connection_gives_null_and_reason)
{
    PGconn *conn = s_connect();
    PGconn *killer = s_connect();
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)::int", PQbackendPID(conn));
    cr_assert_eq(s_scalar(killer, sql), 1);
    PQfinish(killer);

    char err[256] = "";
    popular_list_t *list = popular_list_load(conn, 10, err, sizeof err);
    cr_assert_null(list);
    cr_assert(strlen(err) > 0, "no reason given");
    cr_assert(strstr(err, "popular list"), "%s", err);
    PQfinish(conn);

    err[0] = '\0';
    cr_assert_null(popular_list_load(NULL, 10, err, sizeof err));
    cr_assert(strlen(err) > 0);
}

Test(popular_list, missing_schema_gives_null_and_reason)
{
    PGconn *conn = s_connect();
    s_exec_ok(conn, "DROP SCHEMA features CASCADE");
    char err[256] = "";
    cr_assert_null(popular_list_load(conn, 10, err, sizeof err));
    cr_assert(strstr(err, "features"), "%s", err);
    PQfinish(conn);
}

Test(popular_list, new_copies_items)
{
    popular_item_t items[2] = {{"a", 2.0}, {"b", 1.0}};
    popular_list_t *list = popular_list_new(items, 2);
    cr_assert(list);
    snprintf(items[0].video_id, sizeof items[0].video_id, "changed");
    cr_assert_eq(popular_list_size(list), 2);
    s_expect(list, 0, "a", 2.0);
    s_expect(list, 1, "b", 1.0);
    cr_assert_null(popular_list_item(list, 2));
    popular_list_destroy(&list);

    list = popular_list_new(NULL, 0);
    cr_assert(list);
    cr_assert_eq(popular_list_size(list), 0);
    popular_list_destroy(&list);
}

//  pg_conn: both DSN forms, our application_name, the DSN's own settings
//  winning, and clean failures.

static const char *s_setting(PGconn *conn, const char *name, char *buf, size_t len)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT current_setting('%s')", name);
    return s_text(conn, sql, buf, len);
}

Test(pg_conn, uri_and_keyword_dsn_both_connect)
{
    char err[512], value[128];
    //  The admin DSN is whatever the runner gave (a URI in CI); the test
    //  database's DSN is the key=value form built by the helper.
    PGconn *a = pg_conn_open(getenv("RECSD_PG_DSN"), "ranker", 5, err, sizeof err);
    cr_assert(a, "%s", err);
    cr_assert_str_eq(s_setting(a, "application_name", value, sizeof value), "recsd-ranker");
    cr_assert_str_eq(s_setting(a, "client_encoding", value, sizeof value), "UTF8");
    PQfinish(a);

    cr_assert(strstr(s_db.cfg.pg_dsn, "dbname='"), "%s", s_db.cfg.pg_dsn);
    PGconn *b = pg_conn_open(s_db.cfg.pg_dsn, "trainer", 5, err, sizeof err);
    cr_assert(b, "%s", err);
    cr_assert_str_eq(s_setting(b, "application_name", value, sizeof value), "recsd-trainer");
    char name[80];
    snprintf(name, sizeof name, "%s", PQdb(b));
    cr_assert_str_eq(name, s_db.name);
    PQfinish(b);

    //  An application_name in the DSN is the operator's choice and wins.
    char dsn[600];
    snprintf(dsn, sizeof dsn, "%s application_name='custom'", s_db.cfg.pg_dsn);
    PGconn *c = pg_conn_open(dsn, "trainer", 5, err, sizeof err);
    cr_assert(c, "%s", err);
    cr_assert_str_eq(s_setting(c, "application_name", value, sizeof value), "custom");
    PQfinish(c);
    cr_assert(pg_conn_ping(s_db.cfg.pg_dsn, 5));
}

Test(pg_conn, failures_are_reported_not_fatal)
{
    char err[512] = "";
    //  Port 1 on loopback: refused at once.
    const char *dead = "postgresql://recsd@127.0.0.1:1/recsd";
    cr_assert_null(pg_conn_open(dead, "test", 2, err, sizeof err));
    cr_assert(strstr(err, "cannot connect"), "%s", err);
    cr_assert_null(strchr(err, '\n'), "error should be one line: %s", err);
    cr_assert_not(pg_conn_ping(dead, 2));

    err[0] = '\0';
    cr_assert_null(pg_conn_open("", "test", 2, err, sizeof err));
    cr_assert(strlen(err) > 0);
    cr_assert_null(pg_conn_open("host=127.0.0.1 port=notaport", "test", 2, err, sizeof err));
    cr_assert(strlen(err) > 0);

    //  A database that does not exist: the server answers, and says so.
    char dsn[600];
    snprintf(dsn, sizeof dsn, "%s dbname='%s_nope'", s_db.cfg.pg_dsn, s_db.name);
    cr_assert_null(pg_conn_open(dsn, "test", 5, err, sizeof err));
    cr_assert(strstr(err, "does not exist"), "%s", err);
}
