/*  test_seen_set.c: per-user consumed videos (seen_set.c), in memory and
    loaded from a real PostgreSQL.
*/
#include <criterion/criterion.h>
#include <stdio.h>

#include "leak_check.h"
#include "pg_test_db.h"
#include "seen_set.h"

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

TestSuite(seen_set, .fini = leak_check_fini);
TestSuite(seen_set_pg, .init = s_setup, .fini = s_teardown, .timeout = 60);

Test(seen_set, record_rules)
{
    seen_set_t *seen = seen_set_new(0.8);
    cr_assert_not_null(seen);
    cr_assert_eq(seen_set_record(seen, "u1", "v1", "watch", 0.9), 1);
    cr_assert_eq(seen_set_record(seen, "u1", "v1", "watch", 1.0), 0, "already there");
    cr_assert_eq(seen_set_record(seen, "u1", "v2", "watch", 0.79), 0, "below completion");
    cr_assert_eq(seen_set_record(seen, "u1", "v3", "rating", 0.1), 1, "a rating is seen");
    cr_assert_eq(seen_set_record(seen, "u1", "v4", "watchlist_add", 1), 0);
    cr_assert_eq(seen_set_record(seen, "u2", "v9", "watch", 0.8), 1, "at the threshold");
    cr_assert(seen_set_contains(seen, "u1", "v1"));
    cr_assert(seen_set_contains(seen, "u1", "v3"));
    cr_assert_not(seen_set_contains(seen, "u1", "v2"));
    cr_assert_not(seen_set_contains(seen, "u1", "v4"));
    cr_assert_not(seen_set_contains(seen, "u2", "v1"), "sets are per user");
    cr_assert_not(seen_set_contains(seen, "nobody", "v1"));
    cr_assert_eq(seen_set_users(seen), 2);
    seen_set_destroy(&seen);
    cr_assert_null(seen);
    seen_set_destroy(&seen);
}

Test(seen_set_pg, load_replaces_with_history)
{
    PGconn *conn = pg_test_db_connect(s_db);
    pg_test_exec(conn,
                 "INSERT INTO features.interactions (event_id, user_id, video_id, kind, weight,"
                 " rating, occurred_at) VALUES"
                 " ('a','u1','v1','watch',0.95,NULL,now()),"
                 " ('b','u1','v2','watch',0.10,NULL,now()),"
                 " ('c','u1','v3','rating',0.8,4,now()),"
                 " ('d','u2','v1','watchlist_add',1,NULL,now()),"
                 " ('e','u2','v5','watch',0.80,NULL,now()),"
                 " ('f','u2','v5','watch',1.00,NULL,now())");
    seen_set_t *seen = seen_set_new(0.8);
    seen_set_record(seen, "stale", "v0", "watch", 1.0);
    char err[256];
    cr_assert_eq(seen_set_load(seen, conn, err, sizeof err), 3, "%s", err);
    cr_assert(seen_set_contains(seen, "u1", "v1"));
    cr_assert(seen_set_contains(seen, "u1", "v3"));
    cr_assert(seen_set_contains(seen, "u2", "v5"));
    cr_assert_not(seen_set_contains(seen, "u1", "v2"));
    cr_assert_not(seen_set_contains(seen, "u2", "v1"));
    cr_assert_not(seen_set_contains(seen, "stale", "v0"), "load replaces the contents");

    //  A failed load leaves the set as it was.
    PQfinish(conn);
    conn = pg_test_db_connect(s_db);
    pg_test_exec(conn, "DROP TABLE features.interactions");
    cr_assert_eq(seen_set_load(seen, conn, err, sizeof err), -1);
    cr_assert(strstr(err, "interactions"), "%s", err);
    cr_assert(seen_set_contains(seen, "u1", "v1"));
    seen_set_destroy(&seen);
    PQfinish(conn);
}
