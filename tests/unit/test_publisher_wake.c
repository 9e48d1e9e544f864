/*  test_publisher_wake.c: the publisher's LISTEN wake-up
    (actors/publisher/publisher_wake.c) and the outbox trigger
    (migrations/013_outbox_notify.sql) on a real PostgreSQL. The fallback
    poll is set to a minute here, so every wake-up these tests see within
    their 2 s bound came from a NOTIFY: an insert wakes the listener at
    its commit, once per transaction, a rollback does not; a killed LISTEN
    connection switches to the fast degraded poll, asks for a claim when it
    is back, and hears inserts again. The connection handling itself
    (back-off, may_connect, an unreachable server) is pg_listener's, tested
    in test_pg_listener.c.
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include <poll.h>
#include <stdio.h>

#include "actors/publisher/publisher_wake.h"
#include "leak_check.h"
#include "pg_test_db.h"

#define S_FALLBACK_MS 60000 //  so long that no test can pass by polling
#define S_DEGRADED_MS 50

static pg_test_db_t *s_db;
static PGconn *s_check; //  our own connection: inserts and pg_stat_activity

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_check = pg_test_db_connect(s_db);
}

static void s_teardown(void)
{
    PQfinish(s_check);
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(publisher_wake, .init = s_setup, .fini = s_teardown, .timeout = 60);

static publisher_wake_t *s_listening(void)
{
    publisher_wake_t *wake =
        publisher_wake_new(pg_test_db_config(s_db)->pg_dsn, S_FALLBACK_MS, S_DEGRADED_MS);
    cr_assert(wake);
    cr_assert_not(publisher_wake_listening(wake));
    cr_assert_eq(publisher_wake_poll_ms(wake), S_DEGRADED_MS, "not listening yet: fast poll");
    cr_assert(publisher_wake_service(wake, true), "coming up asks for a claim");
    cr_assert(publisher_wake_listening(wake));
    cr_assert_geq(publisher_wake_socket(wake), 0);
    cr_assert_eq(publisher_wake_poll_ms(wake), S_FALLBACK_MS);
    cr_assert_eq(publisher_wake_next_connect(wake), INT64_MAX);
    cr_assert_not(publisher_wake_service(wake, true), "nothing inserted: no wake-up");
    return wake;
}

//  Waits like the actor (poll the socket, then service) up to timeout_ms
//  for service to ask for a claim. Returns the milliseconds it took, or -1.
static int64_t s_wait_wake(publisher_wake_t *wake, bool may_connect, int timeout_ms)
{
    int64_t start = zclock_mono();
    while (zclock_mono() - start < timeout_ms) {
        int fd = publisher_wake_socket(wake);
        if (fd >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            poll(&pfd, 1, 20);
        } else
            zclock_sleep(10);
        if (publisher_wake_service(wake, may_connect))
            return zclock_mono() - start;
    }
    return -1;
}

static void s_insert(const char *sql_tail)
{
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO public.outbox (topic, key, payload) %s", sql_tail);
    pg_test_exec(s_check, sql);
}

Test(publisher_wake, an_insert_wakes_the_listener_at_commit)
{
    publisher_wake_t *wake = s_listening();
    s_insert("VALUES ('t', 'k', '{}')");
    int64_t took = s_wait_wake(wake, true, 2000);
    cr_assert_geq(took, 0, "an insert must wake the listener (trigger and LISTEN)");
    cr_assert_lt(took, 1000, "woken in %lld ms, well under the fallback", (long long)took);
    cr_assert_eq(publisher_wake_notifications(wake), 1);
    publisher_wake_destroy(&wake);
    publisher_wake_destroy(&wake); //  idempotent
    cr_assert_null(wake);
}

Test(publisher_wake, one_wake_up_per_transaction_none_for_a_rollback)
{
    publisher_wake_t *wake = s_listening();
    //  Three statements, seven rows, one transaction: one notification.
    pg_test_exec(s_check, "BEGIN");
    s_insert("VALUES ('t', 'a', '{}')");
    s_insert("SELECT 't', 'b' || g, '{}' FROM generate_series(1, 5) g");
    s_insert("VALUES ('t', 'c', '{}')");
    cr_assert_eq(s_wait_wake(wake, true, 300), -1, "nothing is announced before the commit");
    pg_test_exec(s_check, "COMMIT");
    cr_assert_geq(s_wait_wake(wake, true, 2000), 0, "the commit wakes the listener");
    cr_assert_eq(s_wait_wake(wake, true, 300), -1, "and only once");
    cr_assert_eq(publisher_wake_notifications(wake), 1);

    pg_test_exec(s_check, "BEGIN");
    s_insert("VALUES ('t', 'r', '{}')");
    pg_test_exec(s_check, "ROLLBACK");
    cr_assert_eq(s_wait_wake(wake, true, 500), -1, "a rolled-back insert wakes nobody");
    cr_assert_eq(publisher_wake_notifications(wake), 1);
    publisher_wake_destroy(&wake);
}

Test(publisher_wake, a_killed_connection_polls_fast_and_reconnects_with_back_off)
{
    publisher_wake_t *wake = s_listening();
    //  With a timeout it waits for the backend to exit: the count of
    //  connections below cannot see it on its way out.
    cr_assert_eq(pg_test_scalar(s_check, "SELECT count(pg_terminate_backend(pid, 5000))"
                                         " FROM pg_stat_activity"
                                         " WHERE application_name = 'recsd-publisher-listen'"
                                         " AND datname = current_database()"),
                 1, "one LISTEN connection, found by its application_name");
    //  Not allowed to reconnect: it notices the loss and stays down.
    cr_assert_eq(s_wait_wake(wake, false, 1000), -1);
    cr_assert_not(publisher_wake_listening(wake), "the loss was noticed");
    cr_assert_eq(publisher_wake_socket(wake), -1);
    cr_assert_eq(publisher_wake_poll_ms(wake), S_DEGRADED_MS, "the fast poll while down");
    cr_assert_lt(publisher_wake_next_connect(wake), INT64_MAX, "a reconnect is scheduled");

    //  Allowed: it comes back once the back-off has passed, asking for a claim.
    int64_t took = s_wait_wake(wake, true, 3000);
    cr_assert_geq(took, 0, "reconnected");
    cr_assert(publisher_wake_listening(wake));
    cr_assert_eq(publisher_wake_poll_ms(wake), S_FALLBACK_MS);
    cr_assert_eq(pg_test_scalar(s_check, "SELECT count(*) FROM pg_stat_activity"
                                         " WHERE application_name = 'recsd-publisher-listen'"
                                         " AND datname = current_database()"),
                 1);

    s_insert("VALUES ('t', 'k', '{}')");
    cr_assert_geq(s_wait_wake(wake, true, 2000), 0, "inserts are heard again");
    cr_assert_eq(publisher_wake_notifications(wake), 1);
    publisher_wake_destroy(&wake);
}

Test(publisher_wake, an_unreachable_server_polls_fast)
{
    publisher_wake_t *wake =
        publisher_wake_new("postgresql://recsd@127.0.0.1:1/recsd", S_FALLBACK_MS, S_DEGRADED_MS);
    cr_assert(wake);
    cr_assert_not(publisher_wake_service(wake, false), "not allowed: no attempt");
    cr_assert_eq(publisher_wake_next_connect(wake), 0);
    int64_t now = zclock_mono();
    cr_assert_not(publisher_wake_service(wake, true));
    int64_t first = publisher_wake_next_connect(wake) - now;
    cr_assert(first >= 100 && first < 1100, "the publisher's back-off starts at 100 ms (%lld)",
              (long long)first);
    cr_assert_not(publisher_wake_listening(wake));
    cr_assert_eq(publisher_wake_socket(wake), -1);
    cr_assert_eq(publisher_wake_poll_ms(wake), S_DEGRADED_MS);
    publisher_wake_destroy(&wake);
}

Test(publisher_wake, intervals_must_be_positive)
{
    cr_assert_null(publisher_wake_new("dbname=x", 0, 50));
    cr_assert_null(publisher_wake_new("dbname=x", 1000, -1));
}
