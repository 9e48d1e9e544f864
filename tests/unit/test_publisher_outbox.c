/*  test_publisher_outbox.c: claiming and marking outbox rows
    (actors/publisher/publisher_outbox.c) on a real PostgreSQL: SKIP LOCKED
    claims are disjoint, a dropped connection frees its claim, marks land
    inside and outside a claim, a lost connection is reported, not hung on.
*/
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/publisher/publisher_outbox.h"
#include "config.h"
#include "leak_check.h"
#include "pg_test_db.h"

static pg_test_db_t *s_db;
static PGconn *s_check; //  our own connection, for setup and assertions

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_check = pg_test_db_connect(s_db);
    pg_test_exec(s_check, "INSERT INTO public.outbox (topic, key, payload, headers)"
                          " SELECT 't' || g, CASE WHEN g = 2 THEN NULL ELSE 'k' || g END,"
                          " jsonb_build_object('n', g), jsonb_build_object('h', 'v' || g)"
                          " FROM generate_series(1, 5) g");
}

static void s_teardown(void)
{
    PQfinish(s_check);
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(publisher_outbox, .init = s_setup, .fini = s_teardown, .timeout = 60);

static publisher_outbox_t *s_connected(void)
{
    publisher_outbox_t *outbox = publisher_outbox_new(pg_test_db_config(s_db)->pg_dsn);
    cr_assert(outbox);
    char err[512];
    cr_assert_eq(publisher_outbox_connect(outbox, err, sizeof err), 0, "%s", err);
    return outbox;
}

//  Runs the statement in flight to its end the way the actor does (poll on
//  the socket, then service). Returns service's final status; *rows as there.
static int s_finish(publisher_outbox_t *outbox, PGresult **rows, char *err, size_t errlen)
{
    for (int i = 0; i < 500; i++) {
        int fd = publisher_outbox_socket(outbox);
        if (fd >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            poll(&pfd, 1, 20);
        }
        int rc = publisher_outbox_service(outbox, rows, err, errlen);
        if (rc != 0)
            return rc;
    }
    cr_assert_fail("statement did not finish");
    return -1;
}

//  Claims up to limit rows; returns their ids as "1,2,3".
static void s_claim(publisher_outbox_t *outbox, int limit, char *ids, size_t len)
{
    char err[512];
    PGresult *rows = NULL;
    cr_assert_eq(publisher_outbox_claim_start(outbox, limit, 5000, err, sizeof err), 0, "%s", err);
    cr_assert(publisher_outbox_busy(outbox));
    cr_assert_eq(s_finish(outbox, &rows, err, sizeof err), 1, "%s", err);
    cr_assert(rows);
    ids[0] = '\0';
    size_t n = 0;
    for (int i = 0; i < PQntuples(rows); i++)
        n += (size_t)snprintf(ids + n, len - n, "%s%s", i ? "," : "",
                              PQgetvalue(rows, i, OUTBOX_COL_ID));
    PQclear(rows);
}

static void s_mark(publisher_outbox_t *outbox, const int64_t *ids, size_t count, bool in_claim)
{
    char err[512];
    PGresult *rows = NULL;
    cr_assert_eq(
        publisher_outbox_mark_start(outbox, ids, count, NULL, 0, in_claim, 5000, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(s_finish(outbox, &rows, err, sizeof err), 1, "%s", err);
    cr_assert_null(rows);
}

static const char *s_published(char *buf, size_t len)
{
    return pg_test_text(s_check,
                        "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM"
                        " public.outbox WHERE published_at IS NOT NULL",
                        buf, len);
}

Test(publisher_outbox, claim_returns_the_row_columns)
{
    publisher_outbox_t *outbox = s_connected();
    char err[512];
    PGresult *rows = NULL;
    cr_assert_eq(publisher_outbox_claim_start(outbox, 2, 5000, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s_finish(outbox, &rows, err, sizeof err), 1, "%s", err);
    cr_assert_eq(PQntuples(rows), 2);
    cr_assert_str_eq(PQgetvalue(rows, 0, OUTBOX_COL_ID), "1");
    cr_assert_str_eq(PQgetvalue(rows, 0, OUTBOX_COL_TOPIC), "t1");
    cr_assert_str_eq(PQgetvalue(rows, 0, OUTBOX_COL_KEY), "k1");
    cr_assert_str_eq(PQgetvalue(rows, 0, OUTBOX_COL_PAYLOAD), "{\"n\": 1}");
    cr_assert_str_eq(PQgetvalue(rows, 0, OUTBOX_COL_HEADERS), "{\"h\": \"v1\"}");
    cr_assert(PQgetisnull(rows, 1, OUTBOX_COL_KEY));
    PQclear(rows);
    //  One statement at a time.
    s_mark(outbox, NULL, 0, true);
    publisher_outbox_destroy(&outbox);
    cr_assert_null(outbox);
}

Test(publisher_outbox, concurrent_claims_are_disjoint_and_marks_commit)
{
    publisher_outbox_t *a = s_connected(), *b = s_connected();
    char ids[128], buf[128];
    s_claim(a, 3, ids, sizeof ids);
    cr_assert_str_eq(ids, "1,2,3");
    s_claim(b, 10, ids, sizeof ids);
    cr_assert_str_eq(ids, "4,5", "the second publisher skips the locked rows");

    int64_t delivered[] = {1, 3};
    s_mark(a, delivered, 2, true);
    s_mark(b, NULL, 0, true); //  nothing delivered: ends the claim
    cr_assert_str_eq(s_published(buf, sizeof buf), "1,3");

    //  Failed rows come back, oldest first.
    s_claim(b, 10, ids, sizeof ids);
    cr_assert_str_eq(ids, "2,4,5");
    s_mark(b, NULL, 0, true);
    publisher_outbox_destroy(&a);
    publisher_outbox_destroy(&b);
}

Test(publisher_outbox, a_dropped_connection_frees_its_claim)
{
    publisher_outbox_t *a = s_connected(), *b = s_connected();
    char ids[128], buf[128], err[512];
    s_claim(a, 10, ids, sizeof ids);
    cr_assert_str_eq(ids, "1,2,3,4,5");
    s_claim(b, 10, ids, sizeof ids);
    cr_assert_str_eq(ids, "", "everything is claimed");
    s_mark(b, NULL, 0, true);

    //  The publisher dies (or its connection does): the claim is rolled back.
    publisher_outbox_disconnect(a);
    cr_assert_not(publisher_outbox_connected(a));
    //  The server notices the closed socket asynchronously: until its
    //  backend has rolled back, SKIP LOCKED still skips the rows.
    for (int i = 0; i < 100; i++) {
        s_claim(b, 10, ids, sizeof ids);
        if (strcmp(ids, "1,2,3,4,5") == 0)
            break;
        s_mark(b, NULL, 0, true);
        poll(NULL, 0, 20);
    }
    cr_assert_str_eq(ids, "1,2,3,4,5");

    //  Rows Kafka acknowledged while the claim was lost are marked in a
    //  transaction of their own; a row someone else marked meanwhile keeps
    //  its first published_at.
    s_mark(b, NULL, 0, true);
    pg_test_exec(s_check, "UPDATE public.outbox SET published_at = '2000-01-01' WHERE id = 5");
    cr_assert_eq(publisher_outbox_connect(a, err, sizeof err), 0, "%s", err);
    int64_t delivered[] = {2, 4, 5};
    s_mark(a, delivered, 3, false);
    cr_assert_str_eq(s_published(buf, sizeof buf), "2,4,5");
    cr_assert_eq(pg_test_scalar(s_check, "SELECT count(*) FROM public.outbox WHERE id = 5"
                                         " AND published_at = '2000-01-01'"),
                 1);
    publisher_outbox_destroy(&a);
    publisher_outbox_destroy(&b);
}

Test(publisher_outbox, a_killed_session_is_reported_and_rolled_back)
{
    publisher_outbox_t *a = s_connected();
    char ids[128], buf[128], err[512] = "";
    s_claim(a, 10, ids, sizeof ids);
    //  This test's database only: tests running at the same time on the
    //  server have publisher sessions of their own.
    pg_test_exec(s_check, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE application_name = 'recsd-publisher'"
                          " AND datname = current_database()");
    int64_t delivered[] = {1, 2};
    PGresult *rows = NULL;
    int rc = publisher_outbox_mark_start(a, delivered, 2, NULL, 0, true, 5000, err, sizeof err);
    if (rc == 0)
        rc = s_finish(a, &rows, err, sizeof err);
    cr_assert_eq(rc, -1, "a mark on a terminated session must fail");
    cr_assert(err[0]);
    cr_assert_null(strchr(err, '\n'), "one-line error: %s", err);
    cr_assert_not(publisher_outbox_connected(a));
    cr_assert_str_eq(s_published(buf, sizeof buf), "");

    //  Not connected: starting a statement fails cleanly.
    cr_assert_eq(publisher_outbox_claim_start(a, 10, 5000, err, sizeof err), -1);
    publisher_outbox_destroy(&a);
}

Test(publisher_outbox, unreachable_server_fails_fast)
{
    publisher_outbox_t *a = publisher_outbox_new("postgresql://recsd@127.0.0.1:1/recsd");
    cr_assert(a);
    char err[512] = "";
    cr_assert_eq(publisher_outbox_connect(a, err, sizeof err), -1);
    cr_assert(err[0]);
    cr_assert_not(publisher_outbox_connected(a));
    publisher_outbox_destroy(&a);
}

Test(publisher_outbox, failures_count_attempts_and_parked_rows_are_not_claimed)
{
    publisher_outbox_t *outbox = s_connected();
    char ids[128], buf[256], err[512];
    s_claim(outbox, 3, ids, sizeof ids);
    cr_assert_str_eq(ids, "1,2,3");
    //  Row 1 delivered, row 2 failed transiently, row 3 permanently; the
    //  reasons carry quotes and a backslash, which must arrive verbatim.
    int64_t delivered[] = {1};
    publisher_outbox_failure_t failures[] = {{2, "broker's down", false},
                                             {3, "headers \\ not an \"object\"", true}};
    PGresult *rows = NULL;
    cr_assert_eq(
        publisher_outbox_mark_start(outbox, delivered, 1, failures, 2, true, 5000, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(s_finish(outbox, &rows, err, sizeof err), 1, "%s", err);
    cr_assert_null(rows);
    cr_assert_str_eq(s_published(buf, sizeof buf), "1");
    cr_assert_str_eq(pg_test_text(s_check,
                                  "SELECT string_agg(id || ':' || attempts || ':' ||"
                                  " coalesce(last_error, '-') || ':' || (failed_at IS NOT NULL),"
                                  " ' ' ORDER BY id) FROM public.outbox WHERE id <= 3",
                                  buf, sizeof buf),
                     "1:0:-:false 2:1:broker's down:false 3:1:headers \\ not an \"object\":true");

    //  The parked row is skipped; the transient one comes back.
    s_claim(outbox, 10, ids, sizeof ids);
    cr_assert_str_eq(ids, "2,4,5");
    //  A failure in a transaction of its own (no claim) counts again.
    s_mark(outbox, NULL, 0, true);
    cr_assert_eq(
        publisher_outbox_mark_start(outbox, NULL, 0, failures, 1, false, 5000, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(s_finish(outbox, &rows, err, sizeof err), 1, "%s", err);
    cr_assert_eq(pg_test_scalar(s_check, "SELECT attempts FROM public.outbox WHERE id = 2"), 2);
    publisher_outbox_destroy(&outbox);
}
