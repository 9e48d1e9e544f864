/*  test_redis_pool.c: the Redis connection pool (lib/redis_pool.c) against
    a redis-server of the test's own, killed, frozen and restarted by pid:
    lending slots, waiting for one, the back-off after a failure, one probe
    per back-off, every slot reconnecting after a failure, the up flag and
    its log lines, the error counter and the last error. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leak_check.h"
#include "redis_pool.h"
#include "redis_server.h"

#define BACKOFF_MS 300 //  shorter than production, to keep the tests short

static redis_server_t *s_server;

static void s_fini(void)
{
    redis_server_destroy(&s_server);
    leak_check_fini();
}

TestSuite(redis_pool, .fini = s_fini);

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static redis_pool_t *s_pool(int size, int timeout_ms)
{
    s_server = redis_server_new("redispool");
    char err[200];
    redis_pool_t *pool = redis_pool_new(redis_server_url(s_server), timeout_ms, BACKOFF_MS, size,
                                        "test pool", err, sizeof err);
    cr_assert_not_null(pool, "%s", err);
    return pool;
}

//  Sends cmd on the slot's connection. Returns the integer reply (CLIENT
//  ID), 0 for any other reply, or -1 if the connection failed (the slot
//  is then failed, as a user of the pool does).
static long long s_send(redis_pool_t *pool, redis_pool_slot_t *slot, const char *cmd)
{
    redisReply *reply = redisCommand(redis_pool_context(slot), cmd);
    if (!reply) {
        redis_pool_fail(pool, slot, cmd);
        return -1;
    }
    long long value = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    cr_assert_neq(reply->type, REDIS_REPLY_ERROR, "%s: %s", cmd, reply->str);
    freeReplyObject(reply);
    redis_pool_ok(pool);
    return value;
}

static redis_pool_slot_t *s_acquire_ok(redis_pool_t *pool)
{
    redis_pool_miss_t miss = -1;
    redis_pool_slot_t *slot = redis_pool_acquire(pool, -1, &miss);
    cr_assert_not_null(slot, "acquire failed (miss %d)", (int)miss);
    cr_assert_not_null(redis_pool_context(slot));
    return slot;
}

//  A pool whose first call succeeded (up).
static redis_pool_t *s_pool_up(int size, int timeout_ms)
{
    redis_pool_t *pool = s_pool(size, timeout_ms);
    redis_pool_slot_t *slot = s_acquire_ok(pool);
    cr_assert_eq(s_send(pool, slot, "PING"), 0);
    redis_pool_release(pool, &slot);
    cr_assert(redis_pool_up(pool));
    return pool;
}

static redis_pool_miss_t s_acquire_none(redis_pool_t *pool)
{
    redis_pool_miss_t miss = -1;
    redis_pool_slot_t *slot = redis_pool_acquire(pool, -1, &miss);
    cr_assert_null(slot, "acquire lent a slot although Redis is away");
    return miss;
}

Test(redis_pool, refuses_bad_arguments)
{
    char err[200] = "";
    cr_assert_null(redis_pool_new("http://nope", 10, 0, 1, "t", err, sizeof err));
    cr_assert(strncmp(err, "Redis URL: ", 11) == 0, "%s", err);
    cr_assert_null(redis_pool_new("redis://127.0.0.1:1", 0, 0, 1, "t", err, sizeof err));
    cr_assert_null(redis_pool_new("redis://127.0.0.1:1", 10, -1, 1, "t", err, sizeof err));
    cr_assert_null(redis_pool_new("redis://127.0.0.1:1", 10, 0, 0, "t", err, sizeof err));
    cr_assert_null(redis_pool_new("redis://127.0.0.1:1", 10, 0, REDIS_POOL_SIZE_MAX + 1, "t", err,
                                  sizeof err));
    cr_assert_null(redis_pool_new(NULL, 10, 0, 1, "t", err, sizeof err));
    //  Does not connect: nothing listens on port 1, and that is no error yet.
    redis_pool_t *pool = redis_pool_new("redis://127.0.0.1:1", 10, 0, 1, NULL, err, sizeof err);
    cr_assert_not_null(pool, "%s", err);
    cr_assert_not(redis_pool_up(pool));
    cr_assert_eq(redis_pool_errors(pool), 0);
    char last[160];
    cr_assert_str_eq(redis_pool_last_error(pool, last, sizeof last), "not connected yet");
    redis_pool_destroy(&pool);
    cr_assert_null(pool);
    redis_pool_destroy(&pool); //  idempotent
}

Test(redis_pool, lends_live_connections_and_marks_up)
{
    redis_pool_t *pool = s_pool(2, 1000);
    cr_assert_not(redis_pool_up(pool), "up before any call succeeded");
    redis_pool_slot_t *a = s_acquire_ok(pool);
    cr_assert_not(redis_pool_up(pool), "a connect alone is not a successful call");
    long long id_a = s_send(pool, a, "CLIENT ID");
    cr_assert_gt(id_a, 0);
    cr_assert(redis_pool_up(pool));
    //  While a is lent, the other slot is: another connection.
    redis_pool_slot_t *b = s_acquire_ok(pool);
    long long id_b = s_send(pool, b, "CLIENT ID");
    cr_assert_neq(id_a, id_b);
    redis_pool_release(pool, &a);
    cr_assert_null(a);
    redis_pool_release(pool, &a); //  NULL: nothing
    redis_pool_release(pool, &b);
    //  Released connections are kept and lent again.
    a = s_acquire_ok(pool);
    b = s_acquire_ok(pool);
    long long again_a = s_send(pool, a, "CLIENT ID"), again_b = s_send(pool, b, "CLIENT ID");
    cr_assert((again_a == id_a && again_b == id_b) || (again_a == id_b && again_b == id_a),
              "connections were not reused: %lld %lld, then %lld %lld", id_a, id_b, again_a,
              again_b);
    redis_pool_release(pool, &a);
    redis_pool_release(pool, &b);
    cr_assert_eq(redis_pool_errors(pool), 0);
    redis_pool_destroy(&pool);
}

//  A slot is lent to one caller at a time: with every slot out, a bounded
//  wait gives up (BUSY) after about wait_ms, an unbounded one gets the
//  slot as soon as it is released.
typedef struct {
    redis_pool_t *pool;
    int64_t waited_us;
    bool got;
} waiter_t;

static void *s_waiter(void *arg)
{
    waiter_t *w = arg;
    int64_t t0 = s_now_us();
    redis_pool_slot_t *slot = redis_pool_acquire(w->pool, -1, NULL);
    w->waited_us = s_now_us() - t0;
    w->got = slot != NULL;
    redis_pool_release(w->pool, &slot);
    return NULL;
}

Test(redis_pool, waits_for_a_free_slot)
{
    redis_pool_t *pool = s_pool(1, 1000);
    redis_pool_slot_t *only = s_acquire_ok(pool);
    redis_pool_miss_t miss = -1;
    int64_t t0 = s_now_us();
    cr_assert_null(redis_pool_acquire(pool, 50, &miss));
    int64_t waited = s_now_us() - t0;
    cr_assert_eq(miss, REDIS_POOL_BUSY);
    cr_assert_geq(waited, 45000, "gave up after %" PRId64 " us", waited);
    cr_assert_lt(waited, 500000, "waited %" PRId64 " us for 50 ms", waited);

    waiter_t w = {.pool = pool};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_waiter, &w), 0);
    usleep(100 * 1000);
    redis_pool_release(pool, &only);
    pthread_join(thread, NULL);
    cr_assert(w.got);
    cr_assert_geq(w.waited_us, 90000, "the waiter did not wait: %" PRId64 " us", w.waited_us);
    cr_assert_eq(redis_pool_errors(pool), 0, "waiting is not an error");
    redis_pool_destroy(&pool);
}

//  Killed: the failure marks the pool down; for the back-off nothing is
//  sent (acquire says DOWN at once); then one caller probes, and while
//  Redis is still away that probe fails and starts the next back-off.
//  Back: the probe gets through, and the other slots connect at once.
//  The outage and the return are logged once each.
Test(redis_pool, killed_backs_off_probes_once_and_comes_back)
{
    redis_pool_t *pool = s_pool(3, 200);
    redis_pool_slot_t *slots[3];
    for (int i = 0; i < 3; i++) { //  every slot connected, whichever is lent next
        slots[i] = s_acquire_ok(pool);
        cr_assert_gt(s_send(pool, slots[i], "CLIENT ID"), 0);
    }
    for (int i = 0; i < 3; i++)
        redis_pool_release(pool, &slots[i]);
    cr_assert(redis_pool_up(pool));

    redis_server_stderr_capture(s_server);
    redis_server_kill(s_server);
    redis_pool_slot_t *slot = s_acquire_ok(pool); //  the connection is there; its use fails
    cr_assert_eq(s_send(pool, slot, "PING"), -1);
    cr_assert_null(redis_pool_context(slot), "a failed slot keeps no connection");
    redis_pool_release(pool, &slot);
    cr_assert_not(redis_pool_up(pool));
    cr_assert_eq(redis_pool_errors(pool), 1);
    char last[160];
    redis_pool_last_error(pool, last, sizeof last);
    cr_assert(strncmp(last, "PING: ", 6) == 0, "%s", last);

    //  Backing off: quick, and no connect is tried (no error counted).
    int64_t t0 = s_now_us();
    for (int i = 0; i < 100; i++)
        cr_assert_eq(s_acquire_none(pool), REDIS_POOL_DOWN);
    cr_assert_lt(s_now_us() - t0, 50000, "acquire is not quick while backing off");
    cr_assert_eq(redis_pool_errors(pool), 1);

    //  After the back-off one probe, which fails; then backing off again.
    usleep((BACKOFF_MS + 50) * 1000);
    cr_assert_eq(s_acquire_none(pool), REDIS_POOL_CONNECT_FAILED);
    cr_assert_eq(redis_pool_errors(pool), 2);
    redis_pool_last_error(pool, last, sizeof last);
    cr_assert(strncmp(last, "connect: ", 9) == 0, "%s", last);
    cr_assert_eq(s_acquire_none(pool), REDIS_POOL_DOWN);
    cr_assert_eq(redis_pool_errors(pool), 2);

    //  Back: the next probe connects, and the other slots follow at once.
    redis_server_restart(s_server);
    usleep((BACKOFF_MS + 50) * 1000);
    for (int i = 0; i < 3; i++) {
        slots[i] = s_acquire_ok(pool);
        cr_assert_gt(s_send(pool, slots[i], "CLIENT ID"), 0);
    }
    for (int i = 0; i < 3; i++)
        redis_pool_release(pool, &slots[i]);
    cr_assert(redis_pool_up(pool));
    cr_assert_eq(redis_pool_errors(pool), 2);
    redis_server_stderr_restore(s_server);
    cr_assert_eq(redis_server_stderr_count(s_server, "test pool: Redis unavailable"), 1,
                 "the outage must be logged exactly once");
    cr_assert_eq(redis_server_stderr_count(s_server, "test pool: Redis reachable again"), 1);
    redis_pool_destroy(&pool);
}

//  A failure on one connection makes every slot reconnect before its next
//  use: the others are most likely as dead as the one that failed.
Test(redis_pool, a_failure_renews_every_connection)
{
    redis_pool_t *pool = s_pool(2, 1000);
    redis_pool_slot_t *a = s_acquire_ok(pool);
    redis_pool_slot_t *b = s_acquire_ok(pool);
    long long id_a = s_send(pool, a, "CLIENT ID");
    long long id_b = s_send(pool, b, "CLIENT ID");
    //  The server drops a's connection (as a restart or a proxy would).
    char kill_cmd[64];
    snprintf(kill_cmd, sizeof kill_cmd, "CLIENT KILL ID %lld", id_a);
    cr_assert_eq(s_send(pool, b, kill_cmd), 1);
    cr_assert_eq(s_send(pool, a, "PING"), -1);
    redis_pool_release(pool, &a);
    redis_pool_release(pool, &b);
    cr_assert_eq(redis_pool_errors(pool), 1);

    usleep((BACKOFF_MS + 50) * 1000);
    a = s_acquire_ok(pool);
    b = s_acquire_ok(pool);
    long long new_a = s_send(pool, a, "CLIENT ID"), new_b = s_send(pool, b, "CLIENT ID");
    cr_assert(new_a != id_a && new_a != id_b && new_b != id_a && new_b != id_b,
              "a connection from before the failure was lent again (%lld %lld -> %lld %lld)", id_a,
              id_b, new_a, new_b);
    redis_pool_release(pool, &a);
    redis_pool_release(pool, &b);
    cr_assert(redis_pool_up(pool));
    redis_pool_destroy(&pool);
}

//  Frozen (SIGSTOP): connections stay open and nothing answers. A command
//  costs about the timeout, once; then the back-off keeps callers quick.
Test(redis_pool, frozen_costs_one_timeout_per_back_off)
{
    redis_pool_t *pool = s_pool_up(1, 50);
    redis_server_freeze(s_server);
    redis_pool_slot_t *slot = s_acquire_ok(pool);
    int64_t t0 = s_now_us();
    cr_assert_eq(s_send(pool, slot, "PING"), -1);
    int64_t dt = s_now_us() - t0;
    redis_pool_release(pool, &slot);
    cr_assert_geq(dt, 40000, "PING failed after %" PRId64 " us, before the timeout", dt);
    cr_assert_lt(dt, 500000, "PING took %" PRId64 " us with a 50 ms timeout", dt);
    t0 = s_now_us();
    for (int i = 0; i < 50; i++)
        cr_assert_eq(s_acquire_none(pool), REDIS_POOL_DOWN);
    cr_assert_lt(s_now_us() - t0, 50000);
    cr_assert_eq(redis_pool_errors(pool), 1);
    redis_server_thaw(s_server);
    usleep((BACKOFF_MS + 50) * 1000);
    slot = s_acquire_ok(pool);
    cr_assert_eq(s_send(pool, slot, "PING"), 0);
    redis_pool_release(pool, &slot);
    cr_assert(redis_pool_up(pool));
    redis_pool_destroy(&pool);
}

//  What a user reports itself: an answer that should stop traffic for a
//  back-off (down), and one that concerns a single command (error).
Test(redis_pool, down_backs_off_and_error_only_counts)
{
    redis_pool_t *pool = s_pool_up(1, 1000);
    redis_pool_error(pool, "HGET", "WRONGTYPE Operation against a key holding the wrong kind");
    cr_assert_eq(redis_pool_errors(pool), 1);
    cr_assert(redis_pool_up(pool), "a command's error reply does not make Redis down");
    char last[160];
    redis_pool_last_error(pool, last, sizeof last);
    cr_assert(strncmp(last, "HGET: WRONGTYPE", 15) == 0, "%s", last);
    redis_pool_slot_t *slot = s_acquire_ok(pool);
    redis_pool_release(pool, &slot);

    redis_pool_down(pool, "EVALSHA", "READONLY You can't write against a read only replica.");
    cr_assert_eq(redis_pool_errors(pool), 2);
    cr_assert_not(redis_pool_up(pool));
    cr_assert_eq(s_acquire_none(pool), REDIS_POOL_DOWN);
    redis_pool_last_error(pool, last, sizeof last);
    cr_assert(strncmp(last, "EVALSHA: READONLY", 17) == 0, "%s", last);
    usleep((BACKOFF_MS + 50) * 1000);
    slot = s_acquire_ok(pool);
    s_send(pool, slot, "PING");
    redis_pool_release(pool, &slot);
    cr_assert(redis_pool_up(pool));
    redis_pool_destroy(&pool);
}

//  Many threads, few slots, a healthy Redis: every call gets a connection
//  of its own (a slot is never lent twice at once) and nothing fails.
typedef struct {
    redis_pool_t *pool;
    int done;
} hammer_t;

static void *s_hammer(void *arg)
{
    hammer_t *h = arg;
    for (int i = 0; i < 200; i++) {
        redis_pool_slot_t *slot = redis_pool_acquire(h->pool, -1, NULL);
        if (!slot)
            return NULL;
        redisReply *reply = redisCommand(redis_pool_context(slot), "INCR recsd:test:redispool");
        bool ok = reply && reply->type == REDIS_REPLY_INTEGER;
        if (reply)
            freeReplyObject(reply);
        else
            redis_pool_fail(h->pool, slot, "INCR");
        redis_pool_release(h->pool, &slot);
        if (!ok)
            return NULL;
        h->done++;
    }
    return NULL;
}

Test(redis_pool, threads_share_the_slots)
{
    redis_pool_t *pool = s_pool(3, 1000);
    pthread_t threads[8];
    hammer_t hammers[8];
    for (int i = 0; i < 8; i++) {
        hammers[i] = (hammer_t){.pool = pool};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_hammer, &hammers[i]), 0);
    }
    int done = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        done += hammers[i].done;
    }
    cr_assert_eq(done, 8 * 200);
    redis_pool_slot_t *slot = s_acquire_ok(pool);
    redisReply *reply = redisCommand(redis_pool_context(slot), "GET recsd:test:redispool");
    cr_assert(reply && reply->type == REDIS_REPLY_STRING);
    cr_assert_str_eq(reply->str, "1600");
    freeReplyObject(reply);
    redis_pool_release(pool, &slot);
    cr_assert_eq(redis_pool_errors(pool), 0);
    redis_pool_destroy(&pool);
}
