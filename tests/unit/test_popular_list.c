/*  test_popular_list.c: the popularity list (popular_list.c) and the
    connection helper it is used with (pg_conn.c), on a real PostgreSQL.
*/
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "leak_check.h"
#include "pg_conn.h"
#include "pg_test_db.h"
#include "popular_list.h"

static pg_test_db_t *s_db; //  this test's database
static config_t *s_cfg;    //  its config, borrowed from s_db

static void s_setup_empty(void)
{
    char err[512];
    s_db = pg_test_db_new(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_cfg = pg_test_db_config(s_db);
}

static void s_setup_migrated(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_cfg = pg_test_db_config(s_db);
}

static void s_teardown(void)
{
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(popular_list, .init = s_setup_migrated, .fini = s_teardown, .timeout = 60);
TestSuite(pg_conn, .init = s_setup_empty, .fini = s_teardown, .timeout = 60);

//  Adds `count` watch events for video_id, by distinct users.
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

static void s_expect(const popular_list_t *list, size_t i, const char *video_id, double score)
{
    const popular_item_t *item = popular_list_item(list, i);
    cr_assert(item, "no item %zu", i);
    cr_assert_str_eq(item->video_id, video_id, "item %zu", i);
    cr_assert_float_eq(item->score, score, 1e-9, "item %zu (%s)", i, video_id);
}

Test(popular_list, empty_table_gives_empty_list)
{
    PGconn *conn = pg_test_db_connect(s_db);
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
    PGconn *conn = pg_test_db_connect(s_db);
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
    PGconn *conn = pg_test_db_connect(s_db);
    s_watch(conn, "retired", 9);
    s_watch(conn, "live", 2);
    s_watch(conn, "unknown", 4); //  not in the catalogue (yet): still counts
    pg_test_exec(conn, "INSERT INTO features.videos (video_id, title, retired) VALUES"
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
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *killer = pg_test_db_connect(s_db);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)::int", PQbackendPID(conn));
    cr_assert_eq(pg_test_scalar(killer, sql), 1);
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
    PGconn *conn = pg_test_db_connect(s_db);
    pg_test_exec(conn, "DROP SCHEMA features CASCADE");
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
    return pg_test_text(conn, sql, buf, len);
}

Test(pg_conn, uri_and_keyword_dsn_both_connect)
{
    char err[512], value[128];
    //  The admin DSN is whatever the runner gave (a URI in CI); the test
    //  database's DSN is the key=value form built by pg_test_db.
    PGconn *a = pg_conn_open(getenv("RECSD_PG_DSN"), "ranker", 5, err, sizeof err);
    cr_assert(a, "%s", err);
    cr_assert_str_eq(s_setting(a, "application_name", value, sizeof value), "recsd-ranker");
    cr_assert_str_eq(s_setting(a, "client_encoding", value, sizeof value), "UTF8");
    PQfinish(a);

    cr_assert(strstr(s_cfg->pg_dsn, "dbname='"), "%s", s_cfg->pg_dsn);
    PGconn *b = pg_conn_open(s_cfg->pg_dsn, "trainer", 5, err, sizeof err);
    cr_assert(b, "%s", err);
    cr_assert_str_eq(s_setting(b, "application_name", value, sizeof value), "recsd-trainer");
    char name[80];
    snprintf(name, sizeof name, "%s", PQdb(b));
    cr_assert_str_eq(name, pg_test_db_name(s_db));
    PQfinish(b);

    //  An application_name in the DSN is the operator's choice and wins.
    char dsn[600];
    snprintf(dsn, sizeof dsn, "%s application_name='custom'", s_cfg->pg_dsn);
    PGconn *c = pg_conn_open(dsn, "trainer", 5, err, sizeof err);
    cr_assert(c, "%s", err);
    cr_assert_str_eq(s_setting(c, "application_name", value, sizeof value), "custom");
    PQfinish(c);
    cr_assert(pg_conn_ping(s_cfg->pg_dsn, 5));
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
    snprintf(dsn, sizeof dsn, "%s dbname='%s_nope'", s_cfg->pg_dsn, pg_test_db_name(s_db));
    cr_assert_null(pg_conn_open(dsn, "test", 5, err, sizeof err));
    cr_assert(strstr(err, "does not exist"), "%s", err);
}
