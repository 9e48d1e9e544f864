/*  test_rate_limiter.c: the GCRA rate limiter (lib/rate_limiter.c) against
    a real Redis: RECSD_REDIS_URL when set (else a redis-server of the
    test's own), and a redis-server of the test's own (killed, frozen and
    restarted by pid) for the failure cases. Every test uses a key prefix
    of its own and deletes its keys at the end. */
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
#include "rate_limiter.h"
#include "redis_conn.h"
#include "redis_server.h"

#define HOUR_MS (3600 * 1000)

//  A redis-server this test worker started (criterion runs each test in a
//  worker of its own), stopped in .fini.
static redis_server_t *s_own;

static void s_fini(void)
{
    redis_server_destroy(&s_own);
    leak_check_fini();
}

TestSuite(rate_limiter, .fini = s_fini);

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  A redis-server of this worker's own, for the failure tests; its URL.
static const char *s_own_redis(void)
{
    s_own = redis_server_new("ratelimit");
    return redis_server_url(s_own);
}

//  The shared test Redis (as ops/test.sh and the dev stack set it up), or
//  one of our own, so that no test is skipped for want of a Redis.
static const char *s_redis_url(void)
{
    const char *url = getenv("RECSD_REDIS_URL");
    return url && *url ? url : s_own_redis();
}

//  A key prefix no other run or test shares.
static void s_prefix(char *out, size_t len, const char *test)
{
    snprintf(out, len, "recsd:test:rl:%d:%" PRId64 ":%s:", (int)getpid(), s_now_us(), test);
}

static redisContext *s_raw(const char *url)
{
    char err[160];
    redisContext *r = redis_conn_open(url, 1000, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    return r;
}

//  Keys under prefix (SCAN MATCH prefix*); deletes them if del.
static int s_keys(const char *url, const char *prefix, bool del)
{
    redisContext *r = s_raw(url);
    char pattern[256];
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    char cursor[32] = "0";
    int count = 0;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        redisReply *reply = redisCommandArgv(r, 6, argv, NULL);
        cr_assert(reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2);
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        redisReply *keys = reply->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            count++;
            if (del) {
                const char *dargv[] = {"DEL", keys->element[i]->str};
                size_t dlens[] = {3, keys->element[i]->len};
                freeReplyObject(redisCommandArgv(r, 2, dargv, dlens));
            }
        }
        freeReplyObject(reply);
    } while (strcmp(cursor, "0") != 0);
    redisFree(r);
    return count;
}

static rate_limiter_t *s_limiter(const char *url, const char *prefix, int limit, int64_t period_ms,
                                 int burst)
{
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.prefix = prefix;
    cfg.limit = limit;
    cfg.period_ms = period_ms;
    cfg.burst = burst;
    //  Not the production 10 ms: on a loaded two-core test machine a
    //  command can stall that long, and these tests are about decisions,
    //  not timeouts (the failure tests set their own).
    cfg.redis_timeout_ms = 500;
    char err[200];
    rate_limiter_t *rl = rate_limiter_new(&cfg, err, sizeof err);
    cr_assert_not_null(rl, "%s", err);
    return rl;
}

static rate_limiter_result_t s_check(rate_limiter_t *rl, const char *user)
{
    rate_limiter_result_t r;
    cr_assert_eq(rate_limiter_check(rl, user, strlen(user), &r), 0);
    return r;
}

//  --- configuration ------------------------------------------------------

Test(rate_limiter, defaults_are_500_per_minute_with_a_full_burst)
{
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cr_assert_eq(cfg.limit, 500);
    cr_assert_eq(cfg.period_ms, 60000);
    cr_assert_eq(cfg.burst, 0);
    cr_assert_str_eq(cfg.prefix, "recsd:ratelimit:");
    cr_assert_eq(cfg.redis_timeout_ms, 10);
    char err[200];
    rate_limiter_t *rl = rate_limiter_new(&cfg, err, sizeof err);
    cr_assert_not_null(rl, "%s", err);
    //  No Redis configured: local, and the burst is the whole limit.
    rate_limiter_result_t r = s_check(rl, "alice");
    cr_assert(r.allowed);
    cr_assert_eq(r.backend, RATE_LIMITER_LOCAL);
    cr_assert_eq(r.limit, 500);
    cr_assert_eq(r.remaining, 499);
    cr_assert_eq(r.retry_after_ms, 0);
    cr_assert_eq(r.reset_after_ms, 120); //  one emission interval: 60 s / 500
    cr_assert_not(rate_limiter_redis_up(rl));
    char key[256];
    cr_assert_eq(rate_limiter_key(rl, "alice", 5, key, sizeof key), 0);
    cr_assert_str_eq(key, "recsd:ratelimit:u:alice");
    cr_assert_str_eq(rate_limiter_backend_name(RATE_LIMITER_REDIS), "redis");
    cr_assert_str_eq(rate_limiter_backend_name(RATE_LIMITER_LOCAL), "local");
    rate_limiter_destroy(&rl);
    cr_assert_null(rl);
    rate_limiter_destroy(&rl);
}

Test(rate_limiter, refuses_bad_configuration)
{
    char err[200];
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cfg.limit = 0;
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "limit"), "%s", err);
    rate_limiter_config_defaults(&cfg);
    cfg.period_ms = 0;
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    rate_limiter_config_defaults(&cfg);
    cfg.burst = -1;
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    rate_limiter_config_defaults(&cfg);
    cfg.limit = 1;
    cfg.period_ms = 30LL * 86400 * 1000;
    cfg.burst = 2; //  two periods of 30 days at once: beyond the range
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    rate_limiter_config_defaults(&cfg);
    cfg.prefix = "has space:";
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "prefix"), "%s", err);
    rate_limiter_config_defaults(&cfg);
    cfg.redis_url = "http://nope";
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "Redis URL"), "%s", err);
    rate_limiter_config_defaults(&cfg);
    cfg.redis_pool = 0;
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    rate_limiter_config_defaults(&cfg);
    cfg.local_capacity = 0;
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
    rate_limiter_config_defaults(&cfg);
    cfg.redis_timeout_ms = 0;
    cr_assert_null(rate_limiter_new(&cfg, err, sizeof err));
}

//  --- through Redis ------------------------------------------------------

//  500 per hour: T = 7.2 s, so nothing refills while the test runs and the
//  count is exact however slow the machine.
Test(rate_limiter, allows_500_then_refuses_the_501st)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "501");
    rate_limiter_t *rl = s_limiter(url, prefix, 500, HOUR_MS, 0);
    for (int i = 0; i < 500; i++) {
        rate_limiter_result_t r = s_check(rl, "user-501");
        cr_assert(r.allowed, "request %d refused", i + 1);
        cr_assert_eq(r.backend, RATE_LIMITER_REDIS);
        cr_assert_eq(r.limit, 500);
        cr_assert_eq(r.remaining, 499 - i, "request %d: remaining %d", i + 1, r.remaining);
        cr_assert_eq(r.retry_after_ms, 0);
    }
    rate_limiter_result_t r = s_check(rl, "user-501");
    cr_assert_not(r.allowed);
    cr_assert_eq(r.backend, RATE_LIMITER_REDIS);
    cr_assert_eq(r.remaining, 0);
    //  The next request in one T (7.2 s), the full budget in an hour.
    cr_assert(r.retry_after_ms > 7000 && r.retry_after_ms <= 7200, "%" PRId64, r.retry_after_ms);
    cr_assert(r.reset_after_ms > HOUR_MS - 10000 && r.reset_after_ms <= HOUR_MS, "%" PRId64,
              r.reset_after_ms);
    //  Refusals do not push the penalty further out.
    rate_limiter_result_t again = s_check(rl, "user-501");
    cr_assert_not(again.allowed);
    cr_assert_leq(again.retry_after_ms, r.retry_after_ms);

    //  The key expires when the budget would be full again.
    char key[256];
    cr_assert_eq(rate_limiter_key(rl, "user-501", 8, key, sizeof key), 0);
    redisContext *raw = s_raw(url);
    const char *argv[] = {"PTTL", key};
    redisReply *ttl = redisCommandArgv(raw, 2, argv, NULL);
    cr_assert(ttl && ttl->type == REDIS_REPLY_INTEGER);
    cr_assert(ttl->integer > HOUR_MS - 10000 && ttl->integer <= HOUR_MS, "PTTL %lld", ttl->integer);
    freeReplyObject(ttl);
    redisFree(raw);

    rate_limiter_stats_t st;
    rate_limiter_stats(rl, &st);
    cr_assert_eq(st.redis_allowed, 500);
    cr_assert_eq(st.redis_refused, 2);
    cr_assert_eq(st.local_allowed + st.local_refused + st.redis_errors, 0);
    cr_assert(rate_limiter_redis_up(rl));
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_eq(rate_limiter_metrics_write(rl, out), 0);
    fclose(out);
    cr_assert(strstr(text, "# TYPE recsd_rate_limit_checks_total counter\n"));
    cr_assert(
        strstr(text, "recsd_rate_limit_checks_total{backend=\"redis\",result=\"allowed\"} 500\n"));
    cr_assert(
        strstr(text, "recsd_rate_limit_checks_total{backend=\"redis\",result=\"refused\"} 2\n"));
    cr_assert(strstr(text, "recsd_rate_limit_fallbacks_total{reason=\"down\"} 0\n"));
    cr_assert(strstr(text, "recsd_rate_limit_redis_errors_total 0\n"));
    cr_assert(strstr(text, "recsd_rate_limit_redis_up 1\n"));
    free(text);
    rate_limiter_destroy(&rl);
    cr_assert_eq(s_keys(url, prefix, true), 1);
}

//  The defaults (500 per minute, T = 120 ms): a fast burst gets exactly 500,
//  and however slow it is, no more than the refill since its start.
Test(rate_limiter, default_rate_refills_one_request_per_120_ms)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "default");
    rate_limiter_t *rl = s_limiter(url, prefix, 500, 60000, 0);
    int64_t start = s_now_us();
    int allowed = 0;
    rate_limiter_result_t r;
    for (int i = 0; i < 2000; i++) {
        r = s_check(rl, "user-default");
        cr_assert_eq(r.backend, RATE_LIMITER_REDIS);
        if (!r.allowed)
            break;
        allowed++;
    }
    int64_t elapsed_us = s_now_us() - start;
    cr_assert_not(r.allowed, "never refused");
    cr_assert_geq(allowed, 500);
    cr_assert_leq(allowed, 500 + elapsed_us / 120000 + 1, "%d allowed in %" PRId64 " us", allowed,
                  elapsed_us);
    cr_assert(r.retry_after_ms > 0 && r.retry_after_ms <= 120, "%" PRId64, r.retry_after_ms);
    fprintf(stderr, "rate_limiter: default limit, %d allowed before the first refusal in %.1f ms\n",
            allowed, elapsed_us / 1000.0);
    rate_limiter_destroy(&rl);
    s_keys(url, prefix, true);
}

//  Two limiters on one Redis are two gateway processes: one budget.
Test(rate_limiter, two_processes_share_one_budget)
{
    const char *url = s_redis_url();
    char prefix[128], other_prefix[128];
    s_prefix(prefix, sizeof prefix, "shared");
    s_prefix(other_prefix, sizeof other_prefix, "other");
    rate_limiter_t *a = s_limiter(url, prefix, 500, HOUR_MS, 0);
    rate_limiter_t *b = s_limiter(url, prefix, 500, HOUR_MS, 0);
    for (int i = 0; i < 250; i++) {
        cr_assert(s_check(a, "user-shared").allowed, "a: request %d refused", i + 1);
        cr_assert(s_check(b, "user-shared").allowed, "b: request %d refused", i + 1);
    }
    rate_limiter_result_t ra = s_check(a, "user-shared");
    rate_limiter_result_t rb = s_check(b, "user-shared");
    cr_assert_not(ra.allowed);
    cr_assert_not(rb.allowed);
    cr_assert_eq(ra.backend, RATE_LIMITER_REDIS);
    cr_assert_eq(rb.backend, RATE_LIMITER_REDIS);
    //  Another prefix is another limiter.
    rate_limiter_t *c = s_limiter(url, other_prefix, 500, HOUR_MS, 0);
    rate_limiter_result_t rc = s_check(c, "user-shared");
    cr_assert(rc.allowed);
    cr_assert_eq(rc.remaining, 499);
    rate_limiter_destroy(&a);
    rate_limiter_destroy(&b);
    rate_limiter_destroy(&c);
    s_keys(url, prefix, true);
    s_keys(url, other_prefix, true);
}

Test(rate_limiter, users_are_independent)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "indep");
    rate_limiter_t *rl = s_limiter(url, prefix, 3, HOUR_MS, 0);
    for (int i = 0; i < 3; i++)
        cr_assert(s_check(rl, "carol").allowed);
    cr_assert_not(s_check(rl, "carol").allowed);
    rate_limiter_result_t r = s_check(rl, "dave");
    cr_assert(r.allowed);
    cr_assert_eq(r.remaining, 2);
    cr_assert_not(s_check(rl, "carol").allowed);
    rate_limiter_destroy(&rl);
    cr_assert_eq(s_keys(url, prefix, true), 2);
}

//  5 per second: one request back every 200 ms, all five after a second,
//  and the key gone once the budget is full again.
Test(rate_limiter, budget_returns_after_the_period)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "refill");
    rate_limiter_t *rl = s_limiter(url, prefix, 5, 1000, 0);
    for (int i = 0; i < 5; i++)
        cr_assert(s_check(rl, "erin").allowed, "request %d refused", i + 1);
    rate_limiter_result_t r = s_check(rl, "erin");
    cr_assert_not(r.allowed);
    cr_assert(r.retry_after_ms > 0 && r.retry_after_ms <= 200, "%" PRId64, r.retry_after_ms);
    cr_assert(r.reset_after_ms > 800 && r.reset_after_ms <= 1000, "%" PRId64, r.reset_after_ms);

    usleep((useconds_t)(r.retry_after_ms + 20) * 1000);
    cr_assert(s_check(rl, "erin").allowed, "not allowed after Retry-After");
    r = s_check(rl, "erin");
    cr_assert_not(r.allowed, "two allowed after one interval");

    usleep((useconds_t)(r.reset_after_ms + 20) * 1000);
    char key[256];
    cr_assert_eq(rate_limiter_key(rl, "erin", 4, key, sizeof key), 0);
    redisContext *raw = s_raw(url);
    const char *argv[] = {"EXISTS", key};
    redisReply *exists = redisCommandArgv(raw, 2, argv, NULL);
    cr_assert(exists && exists->type == REDIS_REPLY_INTEGER);
    cr_assert_eq(exists->integer, 0, "the key outlived the budget's reset");
    freeReplyObject(exists);
    redisFree(raw);
    for (int i = 0; i < 5; i++) {
        r = s_check(rl, "erin");
        cr_assert(r.allowed, "request %d refused after the reset", i + 1);
        cr_assert_eq(r.remaining, 4 - i);
    }
    cr_assert_not(s_check(rl, "erin").allowed);
    rate_limiter_destroy(&rl);
    s_keys(url, prefix, true);
}

//  A smaller burst than the limit: 60 per minute, at most 3 at once.
Test(rate_limiter, burst_smaller_than_the_limit)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "burst");
    rate_limiter_t *rl = s_limiter(url, prefix, 60, 60000, 3);
    for (int i = 0; i < 3; i++) {
        rate_limiter_result_t r = s_check(rl, "frank");
        cr_assert(r.allowed);
        cr_assert_eq(r.limit, 3);
        cr_assert_eq(r.remaining, 2 - i);
    }
    rate_limiter_result_t r = s_check(rl, "frank");
    cr_assert_not(r.allowed);
    cr_assert(r.retry_after_ms > 900 && r.retry_after_ms <= 1000, "%" PRId64, r.retry_after_ms);
    cr_assert(r.reset_after_ms > 2900 && r.reset_after_ms <= 3000, "%" PRId64, r.reset_after_ms);
    rate_limiter_destroy(&rl);
    s_keys(url, prefix, true);
}

//  Redis lost its script cache (restart, SCRIPT FLUSH): EVALSHA answers
//  NOSCRIPT, the limiter sends EVAL and carries on through Redis.
Test(rate_limiter, reloads_the_script_after_a_flush)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "noscript");
    rate_limiter_t *rl = s_limiter(url, prefix, 4, HOUR_MS, 0);
    cr_assert_eq(s_check(rl, "gina").backend, RATE_LIMITER_REDIS);
    cr_assert_eq(s_check(rl, "gina").backend, RATE_LIMITER_REDIS);
    redisContext *raw = s_raw(url);
    redisReply *flush = redisCommand(raw, "SCRIPT FLUSH");
    cr_assert(flush && flush->type == REDIS_REPLY_STATUS);
    freeReplyObject(flush);
    redisFree(raw);
    rate_limiter_result_t r = s_check(rl, "gina");
    cr_assert(r.allowed);
    cr_assert_eq(r.backend, RATE_LIMITER_REDIS);
    cr_assert_eq(r.remaining, 1);
    cr_assert(s_check(rl, "gina").allowed);
    r = s_check(rl, "gina");
    cr_assert_not(r.allowed);
    cr_assert_eq(r.backend, RATE_LIMITER_REDIS);
    rate_limiter_stats_t st;
    rate_limiter_stats(rl, &st);
    cr_assert_eq(st.redis_errors, 0);
    rate_limiter_destroy(&rl);
    s_keys(url, prefix, true);
}

//  --- many threads -------------------------------------------------------

typedef struct {
    rate_limiter_t *rl;
    int calls;
    int allowed;
    int redis;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < w->calls; i++) {
        rate_limiter_result_t r;
        if (rate_limiter_check(w->rl, "user-threads", 12, &r) != 0)
            return NULL;
        w->allowed += r.allowed;
        w->redis += r.backend == RATE_LIMITER_REDIS;
    }
    return NULL;
}

static int s_run_threads(rate_limiter_t *rl, int *redis, int calls)
{
    pthread_t threads[4];
    worker_t workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker_t){.rl = rl, .calls = calls};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_worker, &workers[i]), 0);
    }
    int allowed = 0;
    *redis = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        allowed += workers[i].allowed;
        *redis += workers[i].redis;
    }
    return allowed;
}

Test(rate_limiter, four_threads_get_exactly_the_limit)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "threads");
    rate_limiter_t *rl = s_limiter(url, prefix, 500, HOUR_MS, 0);
    int redis = 0;
    int allowed = s_run_threads(rl, &redis, 200);
    cr_assert_eq(allowed, 500);
    cr_assert_eq(redis, 800, "only %d of 800 decided by Redis", redis);
    rate_limiter_destroy(&rl);
    s_keys(url, prefix, true);

    //  The same without Redis: the local table is exact too.
    rl = s_limiter(NULL, prefix, 500, HOUR_MS, 0);
    allowed = s_run_threads(rl, &redis, 200);
    cr_assert_eq(allowed, 500);
    cr_assert_eq(redis, 0);
    rate_limiter_destroy(&rl);
}

//  Many more calls, so that a lost update between threads (a TAT read by
//  two of them before either writes) would show as extra allowed checks.
Test(rate_limiter, local_table_is_exact_under_contention)
{
    rate_limiter_t *rl = s_limiter(NULL, NULL, 100000, 30LL * 24 * HOUR_MS, 0); //  T = 26 s
    int redis = 0;
    int allowed = s_run_threads(rl, &redis, 50000);
    cr_assert_eq(allowed, 100000);
    rate_limiter_destroy(&rl);
}

//  --- hostile user ids ---------------------------------------------------

Test(rate_limiter, hostile_user_ids)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "hostile");
    size_t prefix_len = strlen(prefix);
    rate_limiter_t *rl = s_limiter(url, prefix, 1, HOUR_MS, 0);
    rate_limiter_result_t r;
    cr_assert_eq(rate_limiter_check(rl, NULL, 3, &r), -1);
    cr_assert_not(r.allowed);
    cr_assert_eq(rate_limiter_check(rl, "x", 0, &r), -1);
    cr_assert_not(r.allowed);

    //  An id that is a Redis command if glued into a protocol line.
    char inject[400];
    snprintf(inject, sizeof inject, "x\r\n*3\r\n$3\r\nSET\r\n$%zu\r\n%spwned\r\n$1\r\n1\r\n",
             prefix_len + 5, prefix);
    size_t big_len = 100000;
    char *big1 = malloc(big_len), *big2 = malloc(big_len);
    cr_assert(big1 && big2);
    memset(big1, 'a', big_len);
    memcpy(big2, big1, big_len);
    big2[big_len - 1] = 'b'; //  differs in the last byte only
    unsigned char binary[256];
    for (int i = 0; i < 256; i++)
        binary[i] = (unsigned char)i;
    struct {
        const void *id;
        size_t len;
    } ids[] = {
        {"has space", 9}, {"new\nline", 8}, {inject, strlen(inject)},
        {big1, big_len},  {big2, big_len},  {binary, sizeof binary},
        {"a\0b", 3},                  //  NUL inside: not "a"
        {"a", 1},         {"u:a", 3}, //  looks like a key form; must not be user "a"
        {"*", 1},         {"{slot}", 6},    {"\xff\xfe", 2},
    };
    size_t n = sizeof ids / sizeof ids[0];
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(rate_limiter_check(rl, ids[i].id, ids[i].len, &r), 0, "id %zu", i);
        cr_assert(r.allowed, "id %zu shares a budget with an earlier one", i);
        cr_assert_eq(r.backend, RATE_LIMITER_REDIS, "id %zu", i);
        char key[256];
        cr_assert_eq(rate_limiter_key(rl, ids[i].id, ids[i].len, key, sizeof key), 0);
        //  Bounded, printable, no spaces.
        cr_assert_leq(strlen(key), prefix_len + 2 + 64);
        for (const char *p = key; *p; p++)
            cr_assert(*p > 0x20 && *p < 0x7f, "id %zu: key byte 0x%02x", i, (unsigned char)*p);
    }
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(rate_limiter_check(rl, ids[i].id, ids[i].len, &r), 0);
        cr_assert_not(r.allowed, "id %zu: second request allowed", i);
    }
    char key[256];
    cr_assert_eq(rate_limiter_key(rl, "a", 1, key, sizeof key), 0);
    cr_assert(strcmp(key + prefix_len, "u:a") == 0, "%s", key);
    cr_assert_eq(rate_limiter_key(rl, big1, big_len, key, sizeof key), 0);
    cr_assert_eq(strncmp(key + prefix_len, "h:", 2), 0, "%s", key);
    cr_assert_eq(strlen(key), prefix_len + 34);
    cr_assert_eq(rate_limiter_key(rl, "a", 1, key, 8), -1, "a short buffer must be refused");
    //  One key per id, nothing else (no injected key).
    cr_assert_eq(s_keys(url, prefix, false), (int)n);
    free(big1);
    free(big2);
    rate_limiter_destroy(&rl);
    s_keys(url, prefix, true);
}

//  --- Redis down, frozen and back ---------------------------------------

Test(rate_limiter, redis_killed_falls_back_to_local_and_comes_back)
{
    const char *url = s_own_redis();
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.limit = 10;
    cfg.period_ms = HOUR_MS;
    cfg.redis_timeout_ms = 200; //  a killed Redis refuses at once; this is slack for the rest
    cfg.redis_backoff_ms = 300; //  shorter than production, to keep the test short
    char err[200];
    rate_limiter_t *rl = rate_limiter_new(&cfg, err, sizeof err);
    cr_assert_not_null(rl, "%s", err);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(s_check(rl, "heavy").backend, RATE_LIMITER_REDIS);
    cr_assert_not(s_check(rl, "heavy").allowed);
    cr_assert(rate_limiter_redis_up(rl));

    redis_server_stderr_capture(s_own);
    redis_server_kill(s_own);
    //  A user who spent the budget through Redis stays limited locally.
    rate_limiter_result_t r = s_check(rl, "heavy");
    cr_assert_eq(r.backend, RATE_LIMITER_LOCAL);
    cr_assert_not(r.allowed);
    cr_assert_gt(r.retry_after_ms, 0);
    //  A new user gets the limit, locally, and no more.
    for (int i = 0; i < 10; i++) {
        r = s_check(rl, "light");
        cr_assert(r.allowed, "local request %d refused", i + 1);
        cr_assert_eq(r.backend, RATE_LIMITER_LOCAL);
    }
    r = s_check(rl, "light");
    cr_assert_not(r.allowed);
    cr_assert_eq(r.backend, RATE_LIMITER_LOCAL);
    cr_assert_gt(r.retry_after_ms, 0);
    //  Quick while down, with about one Redis error per back-off period.
    int64_t worst = 0;
    for (int i = 0; i < 200; i++) {
        int64_t t0 = s_now_us();
        r = s_check(rl, "light");
        int64_t dt = s_now_us() - t0;
        worst = dt > worst ? dt : worst;
        cr_assert_eq(r.backend, RATE_LIMITER_LOCAL);
        cr_assert_not(r.allowed);
        usleep(2000);
    }
    cr_assert_lt(worst, 50000, "a check took %" PRId64 " us with Redis down", worst);
    cr_assert_not(rate_limiter_redis_up(rl));
    rate_limiter_stats_t st;
    rate_limiter_stats(rl, &st);
    cr_assert_gt(st.redis_errors, 0);
    cr_assert_lt(st.redis_errors, 10, "%" PRIu64 " Redis errors", st.redis_errors);
    cr_assert_gt(st.fallback_down, 0);
    cr_assert_gt(st.fallback_error, 0);
    cr_assert_eq(st.local_allowed, 10);
    cr_assert_eq(st.local_refused, 202);

    //  Back (empty): Redis decides again after the back-off.
    redis_server_restart(s_own);
    usleep((useconds_t)cfg.redis_backoff_ms * 1000 + 50000);
    r = s_check(rl, "light");
    cr_assert_eq(r.backend, RATE_LIMITER_REDIS);
    cr_assert(r.allowed); //  the new Redis knows nothing of the outage
    cr_assert(rate_limiter_redis_up(rl));
    redis_server_stderr_restore(s_own);
    cr_assert_eq(redis_server_stderr_count(s_own, "rate limiter: Redis unavailable"), 1,
                 "the outage must be logged exactly once");
    cr_assert_eq(redis_server_stderr_count(s_own, "rate limiter: Redis reachable again"), 1);

    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_eq(rate_limiter_metrics_write(rl, out), 0);
    fclose(out);
    cr_assert(
        strstr(text, "recsd_rate_limit_checks_total{backend=\"local\",result=\"refused\"} 202\n"),
        "%s", text);
    cr_assert(strstr(text, "recsd_rate_limit_redis_up 1\n"));
    free(text);
    rate_limiter_destroy(&rl);
}

//  SIGSTOP: connections stay open and nothing answers, so a check runs
//  into the timeout (once per back-off) and is decided locally.
Test(rate_limiter, redis_frozen_costs_at_most_the_timeout)
{
    const char *url = s_own_redis();
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.limit = 5;
    cfg.period_ms = HOUR_MS;
    cfg.redis_timeout_ms = 30;
    cfg.redis_backoff_ms = 300;
    char err[200];
    rate_limiter_t *rl = rate_limiter_new(&cfg, err, sizeof err);
    cr_assert_not_null(rl, "%s", err);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(s_check(rl, "ivan").backend, RATE_LIMITER_REDIS);

    redis_server_stderr_capture(s_own);
    redis_server_freeze(s_own);
    int64_t worst = 0;
    int allowed = 0;
    for (int i = 0; i < 100; i++) {
        int64_t t0 = s_now_us();
        rate_limiter_result_t r = s_check(rl, "ivan");
        int64_t dt = s_now_us() - t0;
        worst = dt > worst ? dt : worst;
        cr_assert_eq(r.backend, RATE_LIMITER_LOCAL);
        allowed += r.allowed;
        usleep(5000);
    }
    //  Two left of five, carried over from Redis into the local table.
    cr_assert_eq(allowed, 2);
    //  The timeout is 30 ms; a loaded machine (or ASan) gets slack.
    cr_assert_lt(worst, 150000, "a check took %" PRId64 " us with Redis frozen", worst);
    rate_limiter_stats_t st;
    rate_limiter_stats(rl, &st);
    cr_assert_gt(st.redis_errors, 0);
    redis_server_thaw(s_own);
    usleep((useconds_t)cfg.redis_backoff_ms * 1000 + 50000);
    rate_limiter_result_t r = s_check(rl, "ivan");
    cr_assert_eq(r.backend, RATE_LIMITER_REDIS);
    cr_assert_not(r.allowed); //  Redis still holds ivan's three, local ones are not written back
    redis_server_stderr_restore(s_own);
    cr_assert_eq(redis_server_stderr_count(s_own, "rate limiter: Redis unavailable"), 1);
    rate_limiter_destroy(&rl);
}

//  One connection, four threads, Redis frozen, no back-off: a thread waits
//  for the connection at most the timeout (then decides locally, "busy"),
//  and one that gets it after a failure finds Redis marked down, so no
//  check takes much longer than twice the timeout. (Whether a waiter times
//  out or gets the connection just before is a matter of microseconds, so
//  the split between "busy" and "down" is printed, not asserted.)
typedef struct {
    rate_limiter_t *rl;
    int64_t worst_us;
    int local;
} frozen_worker_t;

static void *s_frozen_worker(void *arg)
{
    frozen_worker_t *w = arg;
    for (int i = 0; i < 20; i++) {
        rate_limiter_result_t r;
        int64_t t0 = s_now_us();
        if (rate_limiter_check(w->rl, "kim", 3, &r) != 0)
            return NULL;
        int64_t dt = s_now_us() - t0;
        w->worst_us = dt > w->worst_us ? dt : w->worst_us;
        w->local += r.backend == RATE_LIMITER_LOCAL;
    }
    return NULL;
}

Test(rate_limiter, more_threads_than_connections_on_a_frozen_redis_stay_quick)
{
    const char *url = s_own_redis();
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.redis_pool = 1;
    cfg.redis_timeout_ms = 30;
    cfg.redis_backoff_ms = 0;
    char err[200];
    rate_limiter_t *rl = rate_limiter_new(&cfg, err, sizeof err);
    cr_assert_not_null(rl, "%s", err);
    cr_assert_eq(s_check(rl, "kim").backend, RATE_LIMITER_REDIS);
    redis_server_stderr_capture(s_own);
    redis_server_freeze(s_own);
    pthread_t threads[4];
    frozen_worker_t workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (frozen_worker_t){.rl = rl};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_frozen_worker, &workers[i]), 0);
    }
    int64_t worst = 0;
    int local = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        worst = workers[i].worst_us > worst ? workers[i].worst_us : worst;
        local += workers[i].local;
    }
    redis_server_thaw(s_own);
    redis_server_stderr_restore(s_own);
    cr_assert_eq(local, 80);
    rate_limiter_stats_t st;
    rate_limiter_stats(rl, &st);
    cr_assert_eq(st.fallback_busy + st.fallback_down + st.fallback_error, 80);
    //  2 x 30 ms, and slack for a loaded machine or ASan.
    cr_assert_lt(worst, 150000, "a check took %" PRId64 " us", worst);
    fprintf(stderr,
            "rate_limiter: frozen Redis, pool 1, 4 threads: worst check %.1f ms, fallbacks "
            "busy %" PRIu64 " down %" PRIu64 " error %" PRIu64 "\n",
            worst / 1000.0, st.fallback_busy, st.fallback_down, st.fallback_error);
    rate_limiter_destroy(&rl);
}

//  --- the local table ----------------------------------------------------

//  A full table replaces the entry closest to a full budget: a flood of
//  new ids pushes out each other, not the user who spent their budget.
Test(rate_limiter, local_table_is_bounded_and_keeps_heavy_users)
{
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cfg.limit = 4;
    cfg.period_ms = HOUR_MS;
    cfg.local_capacity = 16;
    char err[200];
    rate_limiter_t *rl = rate_limiter_new(&cfg, err, sizeof err);
    cr_assert_not_null(rl, "%s", err);
    for (int i = 0; i < 4; i++)
        cr_assert(s_check(rl, "heavy").allowed);
    cr_assert_not(s_check(rl, "heavy").allowed);
    for (int i = 0; i < 5000; i++) {
        char id[32];
        snprintf(id, sizeof id, "flood-%d", i);
        cr_assert(s_check(rl, id).allowed);
    }
    rate_limiter_stats_t st;
    rate_limiter_stats(rl, &st);
    cr_assert_gt(st.local_evictions, 4000);
    rate_limiter_result_t r = s_check(rl, "heavy");
    cr_assert_not(r.allowed, "the heavy user was evicted by the flood");
    rate_limiter_destroy(&rl);
}

//  local_limit: what each process allows while Redis is down.
Test(rate_limiter, local_limit_applies_without_redis)
{
    rate_limiter_config_t cfg;
    rate_limiter_config_defaults(&cfg);
    cfg.limit = 500;
    cfg.period_ms = HOUR_MS;
    cfg.local_limit = 100; //  say, five replicas
    char err[200];
    rate_limiter_t *rl = rate_limiter_new(&cfg, err, sizeof err);
    cr_assert_not_null(rl, "%s", err);
    int allowed = 0;
    rate_limiter_result_t r;
    for (int i = 0; i < 200; i++) {
        r = s_check(rl, "judy");
        allowed += r.allowed;
    }
    cr_assert_eq(allowed, 100);
    cr_assert_eq(r.limit, 100);
    rate_limiter_destroy(&rl);
}

//  --- a figure, not an assertion -----------------------------------------

Test(rate_limiter, benchmark_one_thread)
{
    const char *url = s_redis_url();
    char prefix[128];
    s_prefix(prefix, sizeof prefix, "bench");
    rate_limiter_t *rl = s_limiter(url, prefix, 1000000, HOUR_MS, 0);
    const int calls = 20000;
    int64_t t0 = s_now_us();
    for (int i = 0; i < calls; i++) {
        char id[32];
        snprintf(id, sizeof id, "bench-%d", i % 1000);
        rate_limiter_result_t r = s_check(rl, id);
        cr_assert(r.allowed && r.backend == RATE_LIMITER_REDIS);
    }
    int64_t redis_us = s_now_us() - t0;
    rate_limiter_destroy(&rl);
    s_keys(url, prefix, true);
    rl = s_limiter(NULL, prefix, 1000000, HOUR_MS, 0);
    t0 = s_now_us();
    for (int i = 0; i < calls; i++) {
        char id[32];
        snprintf(id, sizeof id, "bench-%d", i % 1000);
        cr_assert(s_check(rl, id).allowed);
    }
    int64_t local_us = s_now_us() - t0;
    rate_limiter_destroy(&rl);
    fprintf(stderr,
            "rate_limiter benchmark (%s): %.0f checks/s through Redis (%.1f us each), "
            "%.0f checks/s local (%.2f us each), one thread\n",
            url, calls * 1e6 / (double)redis_us, redis_us / (double)calls,
            calls * 1e6 / (double)local_us, local_us / (double)calls);
}
