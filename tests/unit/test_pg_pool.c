/*  test_pg_pool.c: the libpq connection pool (pg_pool.c) against a real
    PostgreSQL: lazy connects, the bound, timed waits, broken connections
    replaced, leftover transactions rolled back, many threads at once.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leak_check.h"
#include "pg_pool.h"
#include "pg_test_db.h"

static pg_test_db_t *s_db;

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new(err, sizeof err);
    cr_assert(s_db, "%s", err);
}

static void s_teardown(void)
{
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(pg_pool, .init = s_setup, .fini = s_teardown, .timeout = 60);

static pg_pool_t *s_pool(int max)
{
    pg_pool_config_t cfg = {.dsn = pg_test_db_config(s_db)->pg_dsn,
                            .app = "pooltest",
                            .max = max,
                            .connect_timeout_s = 2,
                            .statement_timeout_ms = 250};
    pg_pool_t *pool = pg_pool_new(&cfg);
    cr_assert(pool);
    return pool;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

Test(pg_pool, refuses_bad_config)
{
    pg_pool_config_t cfg = {.dsn = "postgresql://x", .max = 0};
    cr_assert_null(pg_pool_new(&cfg));
    cfg.max = 1;
    cfg.dsn = "";
    cr_assert_null(pg_pool_new(&cfg));
    cr_assert_null(pg_pool_new(NULL));
    pg_pool_t *none = NULL;
    pg_pool_destroy(&none); //  idempotent on NULL
}

Test(pg_pool, connects_lazily_and_reuses)
{
    pg_pool_t *pool = s_pool(2);
    int open = -1, idle = -1;
    pg_pool_stats(pool, &open, &idle);
    cr_assert_eq(open, 0);
    char err[512];
    PGconn *conn = pg_pool_acquire(pool, 1000, err, sizeof err);
    cr_assert(conn, "%s", err);
    int pid = PQbackendPID(conn);
    //  Every connection gets the statement timeout and the application name.
    cr_assert_str_eq(pg_test_text(conn, "SHOW statement_timeout", err, sizeof err), "250ms");
    cr_assert_str_eq(pg_test_text(conn, "SHOW application_name", err, sizeof err),
                     "recsd-pooltest");
    PGresult *res = PQexec(conn, "SELECT pg_sleep(2)");
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR, "statement_timeout not applied");
    PQclear(res);
    pg_pool_release(pool, &conn, false);
    cr_assert_null(conn);
    pg_pool_stats(pool, &open, &idle);
    cr_assert_eq(open, 1);
    cr_assert_eq(idle, 1);
    conn = pg_pool_acquire(pool, 1000, err, sizeof err);
    cr_assert_eq(PQbackendPID(conn), pid, "an idle connection was not reused");
    pg_pool_release(pool, &conn, false);
    pg_pool_release(pool, &conn, false); //  NULL: nothing to do
    pg_pool_destroy(&pool);
    cr_assert_null(pool);
}

Test(pg_pool, bounded_and_waits_with_a_timeout)
{
    pg_pool_t *pool = s_pool(2);
    char err[512];
    PGconn *a = pg_pool_acquire(pool, 1000, err, sizeof err);
    PGconn *b = pg_pool_acquire(pool, 1000, err, sizeof err);
    cr_assert(a && b && a != b);
    uint64_t start = s_now_ms();
    PGconn *c = pg_pool_acquire(pool, 200, err, sizeof err);
    uint64_t waited = s_now_ms() - start;
    cr_assert_null(c);
    cr_assert(strstr(err, "no PostgreSQL connection free"), "%s", err);
    cr_assert_geq(waited, 190);
    cr_assert_lt(waited, 2000);
    //  timeout 0: no wait at all.
    start = s_now_ms();
    cr_assert_null(pg_pool_acquire(pool, 0, err, sizeof err));
    cr_assert_lt(s_now_ms() - start, 100);
    int open;
    pg_pool_stats(pool, &open, NULL);
    cr_assert_eq(open, 2);
    pg_pool_release(pool, &a, false);
    pg_pool_release(pool, &b, false);
    pg_pool_destroy(&pool);
}

typedef struct {
    pg_pool_t *pool;
    PGconn *got;
    uint64_t waited_ms;
} waiter_t;

static void *s_waiter(void *arg)
{
    waiter_t *w = arg;
    char err[512];
    uint64_t start = s_now_ms();
    w->got = pg_pool_acquire(w->pool, 5000, err, sizeof err);
    w->waited_ms = s_now_ms() - start;
    return NULL;
}

Test(pg_pool, a_waiter_gets_the_released_connection)
{
    pg_pool_t *pool = s_pool(1);
    char err[512];
    PGconn *held = pg_pool_acquire(pool, 1000, err, sizeof err);
    cr_assert(held, "%s", err);
    int pid = PQbackendPID(held);
    waiter_t w = {.pool = pool};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_waiter, &w), 0);
    usleep(150 * 1000);
    pg_pool_release(pool, &held, false);
    pthread_join(thread, NULL);
    cr_assert(w.got);
    cr_assert_eq(PQbackendPID(w.got), pid);
    cr_assert_geq(w.waited_ms, 100);
    cr_assert_lt(w.waited_ms, 4000);
    pg_pool_release(pool, &w.got, false);
    pg_pool_destroy(&pool);
}

//  The server ends the session of an idle pooled connection (a restart,
//  an admin's pg_terminate_backend): the next acquire notices and opens a
//  new one instead of lending the dead one.
Test(pg_pool, dead_idle_connection_is_replaced)
{
    pg_pool_t *pool = s_pool(1);
    char err[512];
    PGconn *conn = pg_pool_acquire(pool, 1000, err, sizeof err);
    int pid = PQbackendPID(conn);
    pg_pool_release(pool, &conn, false);

    PGconn *admin = pg_test_db_connect(s_db);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", pid);
    pg_test_exec(admin, sql);
    PQfinish(admin);

    conn = pg_pool_acquire(pool, 1000, err, sizeof err);
    cr_assert(conn, "%s", err);
    cr_assert_neq(PQbackendPID(conn), pid, "the dead connection was lent out");
    cr_assert_eq(pg_test_scalar(conn, "SELECT 1"), 1);
    int open;
    pg_pool_stats(pool, &open, NULL);
    cr_assert_eq(open, 1);

    //  A connection the borrower says is broken is closed, not kept.
    pg_pool_release(pool, &conn, true);
    int idle;
    pg_pool_stats(pool, &open, &idle);
    cr_assert_eq(open, 0);
    cr_assert_eq(idle, 0);
    pg_pool_destroy(&pool);
}

Test(pg_pool, leftover_transaction_is_rolled_back)
{
    pg_pool_t *pool = s_pool(1);
    char err[512];
    PGconn *conn = pg_pool_acquire(pool, 1000, err, sizeof err);
    pg_test_exec(conn, "CREATE TABLE t (x int)");
    pg_test_exec(conn, "BEGIN");
    pg_test_exec(conn, "INSERT INTO t VALUES (1)");
    pg_pool_release(pool, &conn, false);
    conn = pg_pool_acquire(pool, 1000, err, sizeof err);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM t"), 0);
    //  Same for a transaction in the failed state.
    pg_test_exec(conn, "BEGIN");
    PQclear(PQexec(conn, "SELEC 1"));
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_INERROR);
    pg_pool_release(pool, &conn, false);
    conn = pg_pool_acquire(pool, 1000, err, sizeof err);
    cr_assert_eq(pg_test_scalar(conn, "SELECT 2"), 2);
    pg_pool_release(pool, &conn, false);
    pg_pool_destroy(&pool);
}

Test(pg_pool, unreachable_server_fails_and_frees_the_slot)
{
    pg_pool_config_t cfg = {.dsn = "postgresql://recsd@127.0.0.1:1/recsd",
                            .app = "pooltest",
                            .max = 1,
                            .connect_timeout_s = 2};
    pg_pool_t *pool = pg_pool_new(&cfg);
    char err[512] = "";
    for (int i = 0; i < 2; i++) { //  twice: the first failure gave its slot back
        cr_assert_null(pg_pool_acquire(pool, 100, err, sizeof err));
        cr_assert(strstr(err, "cannot connect"), "%s", err);
    }
    int open;
    pg_pool_stats(pool, &open, NULL);
    cr_assert_eq(open, 0);
    pg_pool_destroy(&pool);
}

typedef struct {
    pg_pool_t *pool;
    atomic_int *in_use;
    atomic_int *peak;
    int failures;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    char err[512];
    for (int i = 0; i < 40; i++) {
        PGconn *conn = pg_pool_acquire(w->pool, 5000, err, sizeof err);
        if (!conn) {
            w->failures++;
            continue;
        }
        int now = atomic_fetch_add(w->in_use, 1) + 1;
        int peak = atomic_load(w->peak);
        while (now > peak && !atomic_compare_exchange_weak(w->peak, &peak, now))
            ;
        PGresult *res = PQexec(conn, "SELECT pg_sleep(0.001)");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            w->failures++;
        PQclear(res);
        atomic_fetch_sub(w->in_use, 1);
        pg_pool_release(w->pool, &conn, false);
    }
    return NULL;
}

//  Sixteen threads (the gateway's HTTP pool) share three connections.
Test(pg_pool, many_threads_share_at_most_max)
{
    enum { THREADS = 16, MAX = 3 };
    pg_pool_t *pool = s_pool(MAX);
    atomic_int in_use = 0, peak = 0;
    worker_t workers[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker_t){.pool = pool, .in_use = &in_use, .peak = &peak};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_worker, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(workers[i].failures, 0, "worker %d failed", i);
    }
    cr_assert_leq(atomic_load(&peak), MAX);
    cr_assert_geq(atomic_load(&peak), 2, "the threads never overlapped: a useless test");
    int open, idle;
    pg_pool_stats(pool, &open, &idle);
    cr_assert_leq(open, MAX);
    cr_assert_eq(open, idle);
    PGconn *admin = pg_test_db_connect(s_db);
    cr_assert_leq(pg_test_scalar(admin, "SELECT count(*) FROM pg_stat_activity"
                                        " WHERE application_name = 'recsd-pooltest'"),
                  MAX);
    PQfinish(admin);
    pg_pool_destroy(&pool);
}
