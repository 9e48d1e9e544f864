/*  test_pg_listener.c: the LISTEN connection class (lib/pg_listener.c) on
    a real PostgreSQL. A NOTIFY on one of two channels sets that channel's
    bit, once per transaction and never for a rollback; notifications a
    caller's own statement read are still reported; a terminated backend
    is noticed, reconnected only when allowed and after the back-off, and
    the reconnect asks for a resync; an unreachable server is retried with
    a doubling back-off and never blocks past the connect timeout.
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "leak_check.h"
#include "pg_listener.h"
#include "pg_test_db.h"

#define S_APP "pg-listener-test" //  application_name "recsd-pg-listener-test"

static pg_test_db_t *s_db;
static PGconn *s_check; //  our own connection: NOTIFY and pg_stat_activity

static const char *const s_channels[] = {"recsd_test_a", "Recsd Test B"};

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_check = pg_test_db_connect(s_db);
}

static void s_teardown(void)
{
    PQfinish(s_check);
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(pg_listener, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  A listener on both channels, connected.
static pg_listener_t *s_listening(void)
{
    pg_listener_options_t opts = {.backoff_min_ms = 200, .backoff_max_ms = 1000};
    pg_listener_t *listener =
        pg_listener_new(pg_test_db_config(s_db)->pg_dsn, S_APP, s_channels, 2, &opts);
    cr_assert(listener);
    cr_assert_not(pg_listener_connected(listener));
    cr_assert_eq(pg_listener_socket(listener), -1);
    cr_assert_null(pg_listener_conn(listener));
    cr_assert_eq(pg_listener_next_connect(listener), 0, "may connect at once");
    pg_listener_event_t ev;
    cr_assert_not(pg_listener_service(listener, false, &ev), "not allowed: no attempt");
    cr_assert_not(ev.connected || ev.connect_failed);
    cr_assert(pg_listener_service(listener, true, &ev), "coming up asks for a resync");
    cr_assert(ev.connected, "%s", ev.error);
    cr_assert_eq(ev.notified, 0);
    cr_assert(pg_listener_connected(listener));
    cr_assert_geq(pg_listener_socket(listener), 0);
    cr_assert_not_null(pg_listener_conn(listener));
    cr_assert_eq(pg_listener_next_connect(listener), INT64_MAX);
    cr_assert_eq(pg_listener_connects(listener), 1);
    cr_assert_not(pg_listener_service(listener, true, &ev), "nothing sent: nothing to do");
    cr_assert_not(ev.connected || ev.lost || ev.connect_failed);
    return listener;
}

//  Waits like a caller's loop (poll the socket, then service) up to
//  timeout_ms for service to return true. Returns the milliseconds it
//  took, or -1; *ev is the last call's event.
static int64_t s_wait(pg_listener_t *listener, bool may_connect, int timeout_ms,
                      pg_listener_event_t *ev)
{
    int64_t start = zclock_mono();
    while (zclock_mono() - start < timeout_ms) {
        int fd = pg_listener_socket(listener);
        if (fd >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            poll(&pfd, 1, 20);
        } else
            zclock_sleep(10);
        if (pg_listener_service(listener, may_connect, ev))
            return zclock_mono() - start;
    }
    return -1;
}

static long s_backends(void)
{
    return pg_test_scalar(s_check, "SELECT count(*) FROM pg_stat_activity"
                                   " WHERE application_name = 'recsd-" S_APP "'"
                                   " AND datname = current_database()");
}

Test(pg_listener, a_notification_sets_its_channels_bit)
{
    pg_listener_t *listener = s_listening();
    pg_test_exec(s_check, "NOTIFY \"Recsd Test B\", 'hello'");
    pg_listener_event_t ev;
    int64_t took = s_wait(listener, true, 2000, &ev);
    cr_assert_geq(took, 0, "the NOTIFY must be heard");
    cr_assert_lt(took, 1000);
    cr_assert_eq(ev.notified, 2u, "channel 1's bit only (notified %#x)", ev.notified);
    cr_assert_eq(ev.notifications, 1);
    cr_assert_eq(ev.last_channel, 1);
    cr_assert_str_eq(ev.last_payload, "hello");
    cr_assert_not(ev.connected);

    pg_test_exec(s_check, "SELECT pg_notify('recsd_test_a', '')");
    cr_assert_geq(s_wait(listener, true, 2000, &ev), 0);
    cr_assert_eq(ev.notified, 1u, "channel 0's bit only (notified %#x)", ev.notified);
    cr_assert_str_eq(ev.last_payload, "");

    //  A channel nobody listens to, and the other case of a listened name.
    pg_test_exec(s_check, "NOTIFY recsd_test_c; NOTIFY \"RECSD_TEST_A\"");
    cr_assert_eq(s_wait(listener, true, 300, &ev), -1, "not our channels");
    cr_assert_eq(pg_listener_notifications(listener), 2);
    cr_assert_eq(pg_listener_channel_notifications(listener, 0), 1);
    cr_assert_eq(pg_listener_channel_notifications(listener, 1), 1);
    cr_assert_eq(pg_listener_channel_notifications(listener, 2), 0, "out of range");
    pg_listener_destroy(&listener);
    pg_listener_destroy(&listener); //  idempotent
    cr_assert_null(listener);
}

Test(pg_listener, one_per_transaction_none_for_a_rollback)
{
    pg_listener_t *listener = s_listening();
    pg_listener_event_t ev;
    pg_test_exec(s_check, "BEGIN");
    pg_test_exec(s_check, "NOTIFY recsd_test_a, 'x'");
    pg_test_exec(s_check, "NOTIFY recsd_test_a, 'x'"); //  folded: same channel and payload
    cr_assert_eq(s_wait(listener, true, 300, &ev), -1, "nothing is sent before the commit");
    pg_test_exec(s_check, "COMMIT");
    cr_assert_geq(s_wait(listener, true, 2000, &ev), 0, "the commit sends it");
    cr_assert_eq(ev.notified, 1u);
    cr_assert_eq(ev.notifications, 1);
    cr_assert_eq(s_wait(listener, true, 300, &ev), -1, "and only once");

    pg_test_exec(s_check, "BEGIN");
    pg_test_exec(s_check, "NOTIFY recsd_test_a, 'r'");
    pg_test_exec(s_check, "ROLLBACK");
    cr_assert_eq(s_wait(listener, true, 500, &ev), -1, "a rollback notifies nobody");
    cr_assert_eq(pg_listener_notifications(listener), 1);
    pg_listener_destroy(&listener);
}

Test(pg_listener, notifications_read_by_a_callers_statement_are_reported)
{
    pg_listener_t *listener = s_listening();
    pg_test_exec(s_check, "NOTIFY \"Recsd Test B\", 'during'");
    zclock_sleep(200); //  it is on the listener's socket now
    //  The caller's own query reads it off the socket into libpq.
    long one = pg_test_scalar(pg_listener_conn(listener), "SELECT 1");
    cr_assert_eq(one, 1);
    pg_listener_event_t ev;
    cr_assert(pg_listener_service(listener, true, &ev), "taken from libpq, not the socket");
    cr_assert_eq(ev.notified, 2u);
    cr_assert_str_eq(ev.last_payload, "during");
    pg_listener_destroy(&listener);
}

Test(pg_listener, a_terminated_backend_is_lost_then_reconnected_after_the_back_off)
{
    pg_listener_t *listener = s_listening();
    cr_assert_eq(s_backends(), 1, "one connection, found by its application_name");
    //  With a timeout, pg_terminate_backend waits for the backend to exit,
    //  so it is gone from pg_stat_activity below even on a loaded machine.
    cr_assert_eq(pg_test_scalar(s_check, "SELECT count(pg_terminate_backend(pid, 5000))"
                                         " FROM pg_stat_activity"
                                         " WHERE application_name = 'recsd-" S_APP "'"
                                         " AND datname = current_database()"),
                 1);
    //  Not allowed to reconnect: the loss is noticed and reported once.
    pg_listener_event_t ev;
    int lost = 0;
    int64_t start = zclock_mono(), called = start;
    while (zclock_mono() - start < 2000 && pg_listener_connected(listener)) {
        struct pollfd pfd = {.fd = pg_listener_socket(listener), .events = POLLIN};
        poll(&pfd, 1, 20);
        called = zclock_mono(); //  the call that notices sets the back-off
        cr_assert_not(pg_listener_service(listener, false, &ev));
        lost += ev.lost;
    }
    int64_t noticed = zclock_mono();
    cr_assert_eq(lost, 1, "the loss is reported");
    cr_assert(ev.lost && ev.outage_start && !ev.connected);
    cr_assert_eq(ev.retry_ms, 200, "the first back-off is backoff_min_ms");
    cr_assert(strstr(ev.error, "connection lost"), "%s", ev.error);
    cr_assert_eq(pg_listener_socket(listener), -1);
    cr_assert_null(pg_listener_conn(listener));
    int64_t next = pg_listener_next_connect(listener);
    cr_assert(next >= called + 200 && next <= noticed + 200, "next attempt in 200 ms (%lld)",
              (long long)(next - noticed));

    //  Allowed, but not before the back-off has passed.
    cr_assert_not(pg_listener_service(listener, true, &ev));
    cr_assert_not(ev.connected || ev.connect_failed || ev.lost, "no attempt before the back-off");
    cr_assert_eq(s_backends(), 0);
    int64_t took = s_wait(listener, true, 3000, &ev);
    cr_assert_geq(took, 0, "reconnected");
    cr_assert_geq(zclock_mono(), next, "not before the back-off");
    cr_assert(ev.connected, "the reconnect asks for a resync");
    cr_assert_eq(pg_listener_connects(listener), 2);
    cr_assert_eq(s_backends(), 1);

    pg_test_exec(s_check, "NOTIFY recsd_test_a");
    cr_assert_geq(s_wait(listener, true, 2000, &ev), 0, "heard again");
    cr_assert_eq(ev.notified, 1u);
    pg_listener_destroy(&listener);
    //  The backend exits after it reads the goodbye: give it a moment.
    for (int i = 0; i < 200 && s_backends() > 0; i++)
        zclock_sleep(10);
    cr_assert_eq(s_backends(), 0, "destroy closes the connection");
}

Test(pg_listener, drop_closes_at_once_and_reports_the_reason)
{
    pg_listener_t *listener = s_listening();
    pg_listener_drop(listener, "statement timeout\nsecond line");
    cr_assert_not(pg_listener_connected(listener));
    cr_assert_null(pg_listener_conn(listener));
    pg_listener_drop(listener, "again"); //  nothing: not connected
    pg_listener_event_t ev;
    cr_assert_not(pg_listener_service(listener, true, &ev));
    cr_assert(ev.lost && ev.outage_start);
    cr_assert_str_eq(ev.error, "connection lost: statement timeout");
    cr_assert_eq(ev.retry_ms, 200);
    cr_assert_not(pg_listener_service(listener, true, &ev));
    cr_assert_not(ev.lost, "reported once");
    cr_assert_geq(s_wait(listener, true, 2000, &ev), 0);
    cr_assert(ev.connected);
    pg_listener_destroy(&listener);
}

Test(pg_listener, an_unreachable_server_backs_off_without_blocking)
{
    pg_listener_options_t opts = {.connect_timeout_s = 1, .backoff_min_ms = 100};
    const char *chan[] = {"recsd_test_a"};
    pg_listener_t *listener =
        pg_listener_new("postgresql://recsd@127.0.0.1:1/recsd", S_APP, chan, 1, &opts);
    cr_assert(listener);
    pg_listener_event_t ev;
    cr_assert_not(pg_listener_service(listener, false, &ev), "not allowed: no attempt");
    cr_assert_not(ev.connect_failed);
    cr_assert_eq(pg_listener_next_connect(listener), 0);

    int64_t now = zclock_mono();
    cr_assert_not(pg_listener_service(listener, true, &ev));
    cr_assert(ev.connect_failed && ev.outage_start && !ev.lost);
    cr_assert_neq(ev.error[0], '\0');
    cr_assert_null(strchr(ev.error, '\n'), "one line: %s", ev.error);
    cr_assert_eq(ev.retry_ms, 100);
    int64_t first = pg_listener_next_connect(listener) - now;
    cr_assert(first >= 100 && first < 1100, "first back-off ~100 ms (%lld)", (long long)first);
    cr_assert_not(pg_listener_service(listener, true, &ev));
    cr_assert_not(ev.connect_failed, "not again before the back-off");
    zclock_sleep((int)first + 10);
    now = zclock_mono();
    cr_assert_not(pg_listener_service(listener, true, &ev));
    cr_assert(ev.connect_failed && !ev.outage_start, "the same outage");
    cr_assert_eq(ev.retry_ms, 200, "the back-off doubles");
    int64_t second = pg_listener_next_connect(listener) - now;
    cr_assert(second >= 200 && second < 1200, "(%lld)", (long long)second);
    cr_assert_eq(pg_listener_socket(listener), -1);
    cr_assert_eq(pg_listener_connects(listener), 0);
    pg_listener_destroy(&listener);

    //  A server that never answers (a blackholed address, or an unreachable
    //  network): one attempt costs at most the connect timeout.
    listener = pg_listener_new("host=10.255.255.1 port=5432 user=recsd dbname=recsd", S_APP, chan,
                               1, &opts);
    cr_assert(listener);
    now = zclock_mono();
    cr_assert_not(pg_listener_service(listener, true, &ev));
    int64_t took = zclock_mono() - now;
    cr_assert(ev.connect_failed, "%s", ev.error);
    cr_assert_lt(took, 2500, "bounded by the 1 s connect timeout (%lld ms)", (long long)took);
    pg_listener_destroy(&listener);
}

Test(pg_listener, bad_arguments_are_refused)
{
    const char *one[] = {"recsd_test_a"};
    const char *empty[] = {""};
    char long_name[80];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *too_long[] = {long_name};
    const char *many[PG_LISTENER_CHANNELS_MAX + 1];
    for (int i = 0; i <= PG_LISTENER_CHANNELS_MAX; i++)
        many[i] = "recsd_test_a";
    cr_assert_null(pg_listener_new(NULL, S_APP, one, 1, NULL));
    cr_assert_null(pg_listener_new("dbname=x", NULL, one, 1, NULL));
    cr_assert_null(pg_listener_new("dbname=x", S_APP, NULL, 1, NULL));
    cr_assert_null(pg_listener_new("dbname=x", S_APP, one, 0, NULL));
    cr_assert_null(pg_listener_new("dbname=x", S_APP, empty, 1, NULL));
    cr_assert_null(pg_listener_new("dbname=x", S_APP, too_long, 1, NULL));
    cr_assert_null(pg_listener_new("dbname=x", S_APP, many, PG_LISTENER_CHANNELS_MAX + 1, NULL));
    pg_listener_t *listener =
        pg_listener_new("dbname=x", S_APP, many, PG_LISTENER_CHANNELS_MAX, NULL);
    cr_assert(listener, "the maximum is allowed");
    pg_listener_destroy(&listener);
}

typedef struct {
    int calls;
    char seen[8][32];
} s_hook_t;

static void s_hook(void *arg, const char *channel, const char *payload)
{
    s_hook_t *h = arg;
    if (h->calls < 8)
        snprintf(h->seen[h->calls], sizeof h->seen[0], "%s/%s", channel, payload);
    h->calls++;
}

//  The event keeps the last notification only; the hook sees every one,
//  in order (the ranker and the serving-config watcher log each at debug).
Test(pg_listener, the_hook_sees_every_notification)
{
    s_hook_t hook = {0};
    pg_listener_options_t opts = {.on_notify = s_hook, .on_notify_arg = &hook};
    pg_listener_t *listener =
        pg_listener_new(pg_test_db_config(s_db)->pg_dsn, S_APP, s_channels, 2, &opts);
    cr_assert(listener);
    pg_listener_event_t ev;
    cr_assert_geq(s_wait(listener, true, 5000, &ev), 0, "connects");
    cr_assert(ev.connected, "%s", ev.error);
    pg_test_exec(s_check, "BEGIN; NOTIFY recsd_test_a, 'one'; NOTIFY \"Recsd Test B\", 'two';"
                          " NOTIFY recsd_test_a, 'three'; COMMIT");
    for (int i = 0; i < 100 && hook.calls < 3; i++)
        s_wait(listener, true, 50, &ev);
    cr_assert_eq(hook.calls, 3);
    cr_assert_str_eq(hook.seen[0], "recsd_test_a/one");
    cr_assert_str_eq(hook.seen[1], "Recsd Test B/two");
    cr_assert_str_eq(hook.seen[2], "recsd_test_a/three");
    pg_listener_destroy(&listener);
}
