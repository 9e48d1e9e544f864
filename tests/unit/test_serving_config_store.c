/*  test_serving_config_store.c: the versions of the serving configuration
    (serving_config_store.c) on a real PostgreSQL, one migrated database
    per test: put, current, list, get, rollback, version numbering, the
    NOTIFY heard on a second connection, concurrent puts, and the watcher:
    a change reaches it within a second, and it keeps the last
    configuration while the database refuses it.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leak_check.h"
#include "pg_test_db.h"
#include "serving_config_store.h"

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

TestSuite(serving_config_store, .init = s_setup, .fini = s_teardown, .timeout = 60);

static serving_config_t s_defaults(void)
{
    serving_config_t cfg;
    serving_config_from_config(pg_test_db_config(s_db), &cfg);
    return cfg;
}

//  A configuration that differs from the defaults in a few fields, by n.
static serving_config_t s_variant(int n)
{
    serving_config_t cfg = s_defaults();
    cfg.default_type = (serving_type_t)(n % SERVING_TYPE_COUNT);
    cfg.limit_default = 1 + n % 50;
    cfg.cache_ttl_s = 60 + n;
    cfg.weight_watch = n * 0.25;
    return cfg;
}

static int64_t s_put(PGconn *conn, const serving_config_t *cfg, const char *who)
{
    char err[512];
    int64_t version = -1;
    cr_assert_eq(serving_config_store_put(conn, cfg, who, "test", &version, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    return version;
}

static int64_t s_current(PGconn *conn, serving_config_t *out)
{
    serving_config_t defaults = s_defaults();
    char err[512];
    int64_t version = -1;
    cr_assert_eq(serving_config_store_current(conn, &defaults, out, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    return version;
}

static int64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  ---- store -----------------------------------------------------------------

Test(serving_config_store, no_version_yet_is_version_0_with_the_defaults)
{
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t defaults = s_defaults(), out;
    memset(&out, 0, sizeof out);
    cr_assert_eq(s_current(conn, &out), 0);
    cr_assert(serving_config_equal(&out, &defaults));
    json_t *list = NULL;
    char err[512];
    cr_assert_eq(serving_config_store_list(conn, 0, 0, &list, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    cr_assert_eq(json_array_size(list), 0);
    json_decref(list);
    PQfinish(conn);
}

Test(serving_config_store, put_numbers_versions_and_the_highest_is_current)
{
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t a = s_variant(1), b = s_variant(2), out;
    cr_assert_eq(s_put(conn, &a, "alice@10.0.0.1"), 1);
    cr_assert_eq(s_current(conn, &out), 1);
    cr_assert(serving_config_equal(&out, &a));
    cr_assert_eq(s_put(conn, &b, "bob"), 2);
    cr_assert_eq(s_current(conn, &out), 2);
    cr_assert(serving_config_equal(&out, &b));
    //  The same document again is still a change of its own.
    cr_assert_eq(s_put(conn, &b, "bob"), 3);
    //  Stored as written: canonical text, 0.25 as 0.25.
    char buf[1024];
    pg_test_text(conn,
                 "SELECT document->'event_weights'->>'watch' FROM serving.config_versions"
                 " WHERE version = 1",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "0.25");
    pg_test_text(conn, "SELECT created_by FROM serving.config_versions WHERE version = 1", buf,
                 sizeof buf);
    cr_assert_str_eq(buf, "alice@10.0.0.1");
    PQfinish(conn);
}

Test(serving_config_store, refused_puts_write_nothing)
{
    PGconn *conn = pg_test_db_connect(s_db);
    char err[512];
    int64_t version = 77;
    serving_config_t bad = s_defaults();
    bad.content_floor = 1.5;
    cr_assert_eq(serving_config_store_put(conn, &bad, "alice", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    cr_assert_str_eq(err, "hybrid.content_floor: must be within [0, 1]");
    bad = s_defaults();
    bad.fallback_count = 2;
    bad.fallback_chain[1] = SERVING_FALLBACK_SEGMENT_POPULARITY;
    cr_assert_eq(serving_config_store_put(conn, &bad, "alice", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    cr_assert(strncmp(err, "fallback_chain: ", 16) == 0, "%s", err);

    serving_config_t good = s_defaults();
    cr_assert_eq(serving_config_store_put(conn, &good, "", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    cr_assert_eq(serving_config_store_put(conn, &good, NULL, NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    char who[SERVING_CONFIG_WHO_MAX + 2];
    memset(who, 'w', sizeof who - 1);
    who[sizeof who - 1] = '\0';
    cr_assert_eq(serving_config_store_put(conn, &good, who, NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    char note[SERVING_CONFIG_NOTE_MAX + 2];
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    cr_assert_eq(serving_config_store_put(conn, &good, "alice", note, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    //  Inside the caller's transaction: our COMMIT would end theirs.
    pg_test_exec(conn, "BEGIN");
    cr_assert_eq(serving_config_store_put(conn, &good, "alice", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    pg_test_exec(conn, "ROLLBACK");
    cr_assert_eq(version, 77, "version written on failure");
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM serving.config_versions"), 0);
    PQfinish(conn);
}

Test(serving_config_store, versions_are_append_only)
{
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t a = s_variant(1);
    s_put(conn, &a, "alice");
    PGresult *res = PQexec(conn, "UPDATE serving.config_versions SET created_by = 'mallory'");
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    cr_assert(strstr(PQresultErrorMessage(res), "append-only"), "%s", PQresultErrorMessage(res));
    PQclear(res);
    res = PQexec(conn, "DELETE FROM serving.config_versions");
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM serving.config_versions"
                                      " WHERE created_by = 'alice'"),
                 1);
    PQfinish(conn);
}

Test(serving_config_store, list_and_get_show_the_history)
{
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t cfgs[5];
    char err[512];
    for (int i = 0; i < 5; i++) {
        cfgs[i] = s_variant(i + 1);
        char who[32];
        snprintf(who, sizeof who, "user%d", i + 1);
        cr_assert_eq(s_put(conn, &cfgs[i], who), i + 1);
    }
    json_t *list = NULL;
    cr_assert_eq(serving_config_store_list(conn, 0, 0, &list, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    cr_assert_eq(json_array_size(list), 5);
    for (int i = 0; i < 5; i++) {
        json_t *item = json_array_get(list, (size_t)i);
        cr_assert_eq(json_integer_value(json_object_get(item, "version")), 5 - i, "newest first");
        char who[32];
        snprintf(who, sizeof who, "user%d", 5 - i);
        cr_assert_str_eq(json_string_value(json_object_get(item, "created_by")), who);
        cr_assert_str_eq(json_string_value(json_object_get(item, "note")), "test");
        cr_assert(json_is_null(json_object_get(item, "rolled_back_from")));
        const char *at = json_string_value(json_object_get(item, "created_at"));
        cr_assert(at && strlen(at) == 24 && at[10] == 'T' && at[23] == 'Z', "%s", at);
        serving_config_t back;
        cr_assert_eq(
            serving_config_parse(json_object_get(item, "document"), &back, err, sizeof err), 0,
            "%s", err);
        cr_assert(serving_config_equal(&back, &cfgs[4 - i]));
    }
    //  The document in its documented key order.
    json_t *first = json_object_get(json_array_get(list, 0), "document");
    cr_assert_str_eq(json_object_iter_key(json_object_iter(first)), "default_type");
    json_decref(list);

    //  Pages: at most limit, below `before`.
    cr_assert_eq(serving_config_store_list(conn, 2, 0, &list, err, sizeof err),
                 SERVING_CONFIG_STORE_OK);
    cr_assert_eq(json_array_size(list), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 1), "version")), 4);
    json_decref(list);
    cr_assert_eq(serving_config_store_list(conn, 2, 4, &list, err, sizeof err),
                 SERVING_CONFIG_STORE_OK);
    cr_assert_eq(json_array_size(list), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 0), "version")), 3);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 1), "version")), 2);
    json_decref(list);
    cr_assert_eq(serving_config_store_list(conn, 10, 1, &list, err, sizeof err),
                 SERVING_CONFIG_STORE_OK);
    cr_assert_eq(json_array_size(list), 0);
    json_decref(list);

    json_t *item = NULL;
    cr_assert_eq(serving_config_store_get(conn, 2, &item, err, sizeof err), SERVING_CONFIG_STORE_OK,
                 "%s", err);
    cr_assert_eq(json_integer_value(json_object_get(item, "version")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(item, "created_by")), "user2");
    serving_config_t back;
    cr_assert_eq(serving_config_parse(json_object_get(item, "document"), &back, err, sizeof err),
                 0);
    cr_assert(serving_config_equal(&back, &cfgs[1]));
    json_decref(item);
    item = NULL;
    cr_assert_eq(serving_config_store_get(conn, 6, &item, err, sizeof err),
                 SERVING_CONFIG_STORE_NOT_FOUND);
    cr_assert_str_eq(err, "no serving configuration version 6");
    cr_assert_eq(serving_config_store_get(conn, -1, &item, err, sizeof err),
                 SERVING_CONFIG_STORE_NOT_FOUND);
    cr_assert_null(item);
    PQfinish(conn);
}

Test(serving_config_store, rollback_makes_a_new_version_with_the_old_document)
{
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t a = s_variant(1), b = s_variant(2), out;
    char err[512];
    s_put(conn, &a, "alice");
    s_put(conn, &b, "bob");
    int64_t version = -1;
    cr_assert_eq(serving_config_store_rollback(conn, 1, "carol", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    cr_assert_eq(version, 3);
    cr_assert_eq(s_current(conn, &out), 3);
    cr_assert(serving_config_equal(&out, &a));
    //  The stored document is the old one, as it was.
    cr_assert_eq(pg_test_scalar(conn, "SELECT (a.document = b.document)::int"
                                      "  FROM serving.config_versions a, serving.config_versions b"
                                      " WHERE a.version = 1 AND b.version = 3"),
                 1);
    json_t *item = NULL;
    cr_assert_eq(serving_config_store_get(conn, 3, &item, err, sizeof err),
                 SERVING_CONFIG_STORE_OK);
    cr_assert_eq(json_integer_value(json_object_get(item, "rolled_back_from")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(item, "created_by")), "carol");
    cr_assert_str_eq(json_string_value(json_object_get(item, "note")), "rollback to version 1");
    json_decref(item);

    //  Back to the version before the rollback, with a note of our own.
    cr_assert_eq(
        serving_config_store_rollback(conn, 2, "dave", "b was fine", &version, err, sizeof err),
        SERVING_CONFIG_STORE_OK, "%s", err);
    cr_assert_eq(version, 4);
    cr_assert_eq(s_current(conn, &out), 4);
    cr_assert(serving_config_equal(&out, &b));
    //  Rolling back to the current one is allowed and recorded.
    cr_assert_eq(serving_config_store_rollback(conn, 4, "dave", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    cr_assert_eq(version, 5);

    //  Unknown versions.
    version = 99;
    cr_assert_eq(serving_config_store_rollback(conn, 6, "eve", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_NOT_FOUND);
    cr_assert_str_eq(err, "no serving configuration version 6");
    cr_assert_eq(serving_config_store_rollback(conn, 0, "eve", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_NOT_FOUND);
    cr_assert_eq(serving_config_store_rollback(conn, -3, "eve", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_NOT_FOUND);
    cr_assert_eq(serving_config_store_rollback(conn, 1, "", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    cr_assert_eq(version, 99);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM serving.config_versions"), 5);
    //  The connection is left usable (outside a transaction).
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    PQfinish(conn);
}

Test(serving_config_store, a_stored_document_that_no_longer_validates)
{
    //  As if written by a build with other rules: never served, never
    //  restored, still listed as stored.
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t a = s_variant(1), out;
    char err[512];
    s_put(conn, &a, "alice");
    pg_test_exec(conn, "INSERT INTO serving.config_versions (version, document, created_by)"
                       " VALUES (2, '{\"default_type\": \"hybrid\", \"legacy\": 1}', 'old-build')");
    serving_config_t defaults = s_defaults();
    out = defaults;
    int64_t version = -1;
    cr_assert_eq(serving_config_store_current(conn, &defaults, &out, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INTERNAL);
    cr_assert(strstr(err, "version 2 is invalid: legacy: unknown field"), "%s", err);
    cr_assert_eq(version, -1);
    cr_assert_eq(serving_config_store_rollback(conn, 2, "bob", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    cr_assert_str_eq(err, "version 2 cannot be restored: legacy: unknown field");
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    json_t *item = NULL;
    cr_assert_eq(serving_config_store_get(conn, 2, &item, err, sizeof err), SERVING_CONFIG_STORE_OK,
                 "%s", err);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(item, "document"), "legacy")),
                 1);
    json_decref(item);
    //  Rolling back to a good version repairs the current one.
    cr_assert_eq(serving_config_store_rollback(conn, 1, "bob", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    cr_assert_eq(s_current(conn, &out), 3);
    cr_assert(serving_config_equal(&out, &a));
    PQfinish(conn);
}

Test(serving_config_store, a_lost_connection_is_an_internal_error)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *admin = pg_test_db_connect(s_db);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(conn));
    pg_test_exec(admin, sql);
    usleep(100 * 1000);
    serving_config_t cfg = s_defaults(), out;
    char err[512];
    int64_t version;
    cr_assert_eq(serving_config_store_current(conn, &cfg, &out, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INTERNAL);
    cr_assert_eq(serving_config_store_put(conn, &cfg, "alice", NULL, &version, err, sizeof err),
                 SERVING_CONFIG_STORE_INTERNAL);
    cr_assert_eq(pg_test_scalar(admin, "SELECT count(*) FROM serving.config_versions"), 0);
    PQfinish(conn);
    PQfinish(admin);
}

//  Waits up to timeout_ms for a notification on conn. Returns it (the
//  caller frees it with PQfreemem) or NULL.
static PGnotify *s_wait_notify(PGconn *conn, int timeout_ms)
{
    int64_t deadline = s_ms() + timeout_ms;
    while (true) {
        cr_assert(PQconsumeInput(conn), "%s", PQerrorMessage(conn));
        PGnotify *note = PQnotifies(conn);
        if (note)
            return note;
        int64_t left = deadline - s_ms();
        if (left <= 0)
            return NULL;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        poll(&pfd, 1, (int)left);
    }
}

Test(serving_config_store, put_and_rollback_notify_listeners_with_the_version)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *listener = pg_test_db_connect(s_db);
    pg_test_exec(listener, "LISTEN " SERVING_CONFIG_CHANNEL);
    serving_config_t a = s_variant(1);
    char err[512];

    //  A refused put says nothing.
    serving_config_t bad = a;
    bad.limit_default = 0;
    cr_assert_eq(serving_config_store_put(conn, &bad, "alice", NULL, NULL, err, sizeof err),
                 SERVING_CONFIG_STORE_INVALID);
    cr_assert_null(s_wait_notify(listener, 200));

    cr_assert_eq(s_put(conn, &a, "alice"), 1);
    PGnotify *note = s_wait_notify(listener, 2000);
    cr_assert_not_null(note, "no notification after put");
    cr_assert_str_eq(note->relname, SERVING_CONFIG_CHANNEL);
    cr_assert_str_eq(note->extra, "1");
    cr_assert_neq(note->be_pid, PQbackendPID(listener));
    PQfreemem(note);

    cr_assert_eq(serving_config_store_rollback(conn, 1, "bob", NULL, NULL, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    note = s_wait_notify(listener, 2000);
    cr_assert_not_null(note, "no notification after rollback");
    cr_assert_str_eq(note->extra, "2");
    PQfreemem(note);
    cr_assert_null(s_wait_notify(listener, 100));
    PQfinish(conn);
    PQfinish(listener);
}

//  ---- concurrency -----------------------------------------------------------

typedef struct {
    PGconn *conn;
    serving_config_t cfg;
    int64_t version;
    int rc;
    char err[512];
    int repeat;
    int64_t versions[64];
} s_putter_t;

static void *s_putter(void *arg)
{
    s_putter_t *p = arg;
    for (int i = 0; i < p->repeat; i++) {
        p->rc = serving_config_store_put(p->conn, &p->cfg, "putter", NULL, &p->version, p->err,
                                         sizeof p->err);
        if (p->rc != SERVING_CONFIG_STORE_OK)
            break;
        p->versions[i] = p->version;
    }
    return NULL;
}

//  Backends of this database waiting for a lock.
static long s_lock_waiters(PGconn *admin)
{
    return pg_test_scalar(admin,
                          "SELECT count(*) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND wait_event_type = 'Lock'");
}

static void s_wait_waiters(PGconn *admin, long n)
{
    int64_t deadline = s_ms() + 10000;
    while (s_lock_waiters(admin) < n) {
        cr_assert(s_ms() < deadline, "no %ld waiters on the lock", n);
        usleep(10 * 1000);
    }
}

Test(serving_config_store, concurrent_puts_get_distinct_versions_in_commit_order)
{
    //  A third session holds the writers' lock, so both puts are in flight
    //  at once: A queues first, then B. Released, they commit in that
    //  order, and the later (B) must be the current one.
    PGconn *holder = pg_test_db_connect(s_db);
    PGconn *admin = pg_test_db_connect(s_db);
    pg_test_exec(holder, "BEGIN");
    pg_test_exec(holder, "LOCK TABLE serving.config_versions IN SHARE ROW EXCLUSIVE MODE");

    s_putter_t a = {.conn = pg_test_db_connect(s_db), .cfg = s_variant(1), .repeat = 1};
    s_putter_t b = {.conn = pg_test_db_connect(s_db), .cfg = s_variant(2), .repeat = 1};
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, s_putter, &a), 0);
    s_wait_waiters(admin, 1);
    cr_assert_eq(pthread_create(&tb, NULL, s_putter, &b), 0);
    s_wait_waiters(admin, 2);
    //  Readers are not blocked by writers.
    serving_config_t out;
    cr_assert_eq(s_current(admin, &out), 0);
    pg_test_exec(holder, "COMMIT");
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.rc, SERVING_CONFIG_STORE_OK, "%s", a.err);
    cr_assert_eq(b.rc, SERVING_CONFIG_STORE_OK, "%s", b.err);
    cr_assert_eq(a.version, 1);
    cr_assert_eq(b.version, 2);
    cr_assert_eq(s_current(admin, &out), 2);
    cr_assert(serving_config_equal(&out, &b.cfg));
    PQfinish(a.conn);
    PQfinish(b.conn);
    PQfinish(holder);
    PQfinish(admin);
}

Test(serving_config_store, many_concurrent_puts_number_without_gaps_or_doubles)
{
    enum { N = 25 };
    s_putter_t p[2] = {{.conn = pg_test_db_connect(s_db), .cfg = s_variant(1), .repeat = N},
                       {.conn = pg_test_db_connect(s_db), .cfg = s_variant(2), .repeat = N}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, s_putter, &p[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    bool seen[2 * N + 1] = {false};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(p[i].rc, SERVING_CONFIG_STORE_OK, "%s", p[i].err);
        for (int k = 0; k < N; k++) {
            int64_t v = p[i].versions[k];
            cr_assert(v >= 1 && v <= 2 * N, "version %" PRId64, v);
            cr_assert_not(seen[v], "version %" PRId64 " twice", v);
            seen[v] = true;
            //  Each putter's own versions increase.
            cr_assert(k == 0 || v > p[i].versions[k - 1]);
        }
    }
    //  The current one is whichever put got the highest number.
    serving_config_t out;
    cr_assert_eq(s_current(p[0].conn, &out), 2 * N);
    int last = p[0].versions[N - 1] == 2 * N ? 0 : 1;
    cr_assert(serving_config_equal(&out, &p[last].cfg));
    PQfinish(p[0].conn);
    PQfinish(p[1].conn);
}

//  ---- watcher ---------------------------------------------------------------

typedef struct {
    pthread_mutex_t lock;
    int calls;
    int64_t version;
    serving_config_t cfg;
} s_seen_t;

static void s_on_change(const serving_config_t *cfg, int64_t version, void *arg)
{
    s_seen_t *seen = arg;
    pthread_mutex_lock(&seen->lock);
    seen->calls++;
    seen->version = version;
    seen->cfg = *cfg;
    pthread_mutex_unlock(&seen->lock);
}

static serving_config_watch_t *s_watch(const char *dsn, const serving_config_t *defaults,
                                       int poll_ms, s_seen_t *seen)
{
    serving_config_watch_options_t opts = {.dsn = dsn,
                                           .app = "scfg-test-watch",
                                           .defaults = defaults,
                                           .poll_ms = poll_ms,
                                           .reconnect_min_ms = 50,
                                           .reconnect_max_ms = 400,
                                           .on_change = seen ? s_on_change : NULL,
                                           .arg = seen};
    char err[512];
    serving_config_watch_t *watch = serving_config_watch_new(&opts, err, sizeof err);
    cr_assert_not_null(watch, "%s", err);
    return watch;
}

//  Polls until the watcher holds version, returns how long that took.
static int64_t s_until_version(serving_config_watch_t *watch, int64_t version, int timeout_ms)
{
    int64_t start = s_ms();
    while (serving_config_watch_version(watch) != version) {
        cr_assert(s_ms() - start < timeout_ms, "watcher still at %" PRId64 ", wanted %" PRId64,
                  serving_config_watch_version(watch), version);
        usleep(2000);
    }
    return s_ms() - start;
}

//  The watcher stores a version before it calls on_change (outside its
//  lock): waiting for the version is not waiting for the call.
static void s_until_calls(s_seen_t *seen, int calls, int timeout_ms)
{
    int64_t start = s_ms();
    pthread_mutex_lock(&seen->lock);
    while (seen->calls < calls) {
        pthread_mutex_unlock(&seen->lock);
        cr_assert(s_ms() - start < timeout_ms, "on_change not called %d times", calls);
        usleep(2000);
        pthread_mutex_lock(&seen->lock);
    }
    pthread_mutex_unlock(&seen->lock);
}

Test(serving_config_store, watcher_picks_up_a_put_within_a_second)
{
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t defaults = s_defaults(), out;
    s_seen_t seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    //  The safety-net poll is a minute away: only the NOTIFY can do it.
    serving_config_watch_t *watch =
        s_watch(pg_test_db_config(s_db)->pg_dsn, &defaults, 60000, &seen);
    cr_assert_eq(serving_config_watch_wait(watch, 0, 5000), 0, "never loaded");
    cr_assert(serving_config_watch_connected(watch));
    cr_assert_eq(serving_config_watch_get(watch, &out), 0);
    cr_assert(serving_config_equal(&out, &defaults));
    cr_assert_eq(seen.calls, 0, "the defaults are not a change");

    serving_config_t a = s_variant(3);
    cr_assert_eq(s_put(conn, &a, "alice"), 1);
    int64_t took = s_until_version(watch, 1, 1000);
    cr_assert_eq(serving_config_watch_get(watch, &out), 1);
    cr_assert(serving_config_equal(&out, &a));
    s_until_calls(&seen, 1, 1000);
    pthread_mutex_lock(&seen.lock);
    cr_assert_eq(seen.calls, 1);
    cr_assert_eq(seen.version, 1);
    cr_assert(serving_config_equal(&seen.cfg, &a));
    pthread_mutex_unlock(&seen.lock);

    //  A rollback is a change like any other.
    serving_config_t b = s_variant(4);
    s_put(conn, &b, "bob");
    char err[512];
    cr_assert_eq(serving_config_store_rollback(conn, 1, "carol", NULL, NULL, err, sizeof err),
                 SERVING_CONFIG_STORE_OK, "%s", err);
    s_until_version(watch, 3, 1000);
    cr_assert_eq(serving_config_watch_wait(watch, 3, 0), 0);
    serving_config_watch_get(watch, &out);
    cr_assert(serving_config_equal(&out, &a));
    cr_assert_eq(serving_config_watch_wait(watch, 4, 50), -1, "no version 4 yet");
    serving_config_watch_destroy(&watch);
    cr_assert_null(watch);
    serving_config_watch_destroy(&watch);
    cr_log_info("put -> watcher: %" PRId64 " ms", took);
    PQfinish(conn);
}

Test(serving_config_store, watcher_reloads_on_request_and_on_its_poll)
{
    //  A row written without NOTIFY (psql, a restore) is found by the
    //  poll, or at once on request.
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t defaults = s_defaults(), a = s_variant(5), b = s_variant(6);
    serving_config_watch_t *watch = s_watch(pg_test_db_config(s_db)->pg_dsn, &defaults, 300, NULL);
    cr_assert_eq(serving_config_watch_wait(watch, 0, 5000), 0);
    char *text = serving_config_to_text(&a);
    const char *params[1] = {text};
    PGresult *res =
        PQexecParams(conn,
                     "INSERT INTO serving.config_versions (version, document, created_by)"
                     " VALUES (1, $1::jsonb, 'psql')",
                     1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    free(text);
    s_until_version(watch, 1, 3000);

    serving_config_watch_destroy(&watch);
    watch = s_watch(pg_test_db_config(s_db)->pg_dsn, &defaults, 60000, NULL);
    cr_assert_eq(serving_config_watch_wait(watch, 1, 5000), 0);
    text = serving_config_to_text(&b);
    params[0] = text;
    res = PQexecParams(conn,
                       "INSERT INTO serving.config_versions (version, document, created_by)"
                       " VALUES (2, $1::jsonb, 'psql')",
                       1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    free(text);
    usleep(200 * 1000);
    cr_assert_eq(serving_config_watch_version(watch), 1, "nothing said to reload yet");
    serving_config_watch_reload(watch);
    s_until_version(watch, 2, 1000);
    serving_config_t out;
    serving_config_watch_get(watch, &out);
    cr_assert(serving_config_equal(&out, &b));
    serving_config_watch_destroy(&watch);
    PQfinish(conn);
}

//  The watcher's backend, by its application_name; 0 if none.
static long s_watcher_pid(PGconn *admin)
{
    return pg_test_scalar(admin, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity"
                                 " WHERE datname = current_database()"
                                 "   AND application_name = 'recsd-scfg-test-watch'");
}

Test(serving_config_store, watcher_keeps_the_last_config_while_postgresql_is_unreachable)
{
    //  A real outage of the watcher's database: its session is killed and
    //  new connections are refused (datallowconn off) until we let them in
    //  again. The test's own sessions stay open to change things meanwhile.
    PGconn *conn = pg_test_db_connect(s_db);
    serving_config_t defaults = s_defaults(), a = s_variant(7), b = s_variant(8), out;
    s_put(conn, &a, "alice");
    s_seen_t seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    serving_config_watch_t *watch = s_watch(pg_test_db_config(s_db)->pg_dsn, &defaults, 200, &seen);
    cr_assert_eq(serving_config_watch_wait(watch, 1, 5000), 0);
    long pid = s_watcher_pid(conn);
    cr_assert_gt(pid, 0);

    //  A database cannot lock itself out: that takes the server's admin DSN.
    PGconn *admin = PQconnectdb(getenv("RECSD_PG_DSN"));
    cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS false", pg_test_db_name(s_db));
    pg_test_exec(admin, sql);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%ld)", pid);
    pg_test_exec(conn, sql);
    int64_t start = s_ms();
    while (serving_config_watch_connected(watch)) {
        cr_assert(s_ms() - start < 5000, "the watcher did not notice its connection was gone");
        usleep(5000);
    }
    //  A change made during the outage: the NOTIFY is lost to the watcher.
    s_put(conn, &b, "bob");
    //  Several reconnect attempts fail (back-off 50 -> 400 ms) and polls
    //  would be due (200 ms): the last configuration stays in force.
    usleep(1500 * 1000);
    cr_assert_not(serving_config_watch_connected(watch));
    cr_assert_eq(serving_config_watch_get(watch, &out), 1);
    cr_assert(serving_config_equal(&out, &a));
    cr_assert_eq(s_watcher_pid(conn), 0);

    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS true", pg_test_db_name(s_db));
    pg_test_exec(admin, sql);
    PQfinish(admin);
    //  Back: reconnects within the back-off cap and finds version 2 itself.
    s_until_version(watch, 2, 3000);
    cr_assert(serving_config_watch_connected(watch));
    serving_config_watch_get(watch, &out);
    cr_assert(serving_config_equal(&out, &b));
    s_until_calls(&seen, 2, 1000);
    pthread_mutex_lock(&seen.lock);
    cr_assert_eq(seen.calls, 2);
    cr_assert_eq(seen.version, 2);
    pthread_mutex_unlock(&seen.lock);
    serving_config_watch_destroy(&watch);
    PQfinish(conn);
}

Test(serving_config_store, watcher_without_a_server_serves_the_defaults)
{
    //  Port 1: nothing listens there, every connect is refused at once.
    int64_t start = s_ms();
    serving_config_t defaults = s_defaults(), out;
    serving_config_watch_t *watch =
        s_watch("postgresql://recsd@127.0.0.1:1/recsd?connect_timeout=1", &defaults, 100, NULL);
    cr_assert_eq(serving_config_watch_wait(watch, 0, 500), -1, "loaded from nowhere");
    cr_assert_not(serving_config_watch_connected(watch));
    cr_assert_eq(serving_config_watch_get(watch, &out), 0);
    cr_assert(serving_config_equal(&out, &defaults));
    serving_config_watch_reload(watch); //  harmless while disconnected
    serving_config_watch_destroy(&watch);
    cr_assert_lt(s_ms() - start, 3000, "destroy waited too long");
}

Test(serving_config_store, watcher_refuses_bad_options)
{
    char err[512];
    serving_config_t bad = s_defaults();
    serving_config_watch_options_t opts = {.dsn = "postgresql://x@127.0.0.1:1/x", .defaults = &bad};
    bad.limit_max = 0;
    cr_assert_null(serving_config_watch_new(&opts, err, sizeof err));
    cr_assert(strstr(err, "limits.max"), "%s", err);
    opts.defaults = NULL;
    cr_assert_null(serving_config_watch_new(&opts, err, sizeof err));
    opts.dsn = NULL;
    cr_assert_null(serving_config_watch_new(&opts, err, sizeof err));
    cr_assert_null(serving_config_watch_new(NULL, err, sizeof err));
}
