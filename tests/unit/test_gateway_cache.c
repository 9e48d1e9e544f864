/*  test_gateway_cache.c: the gateway's two-level recommendation cache
    (actors/gateway/gateway_cache.c) against a real Redis: RECSD_REDIS_URL
    for the round trips, and a redis-server of the test's own (started,
    stopped, frozen and restarted by pid) for the failure cases. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/gateway/gateway_cache.h"
#include "leak_check.h"
#include "redis_conn.h"
#include "redis_server.h"

//  The redis-server of the failure test (criterion runs each test in a
//  worker of its own), stopped in .fini even if the test fails half-way.
static redis_server_t *s_own;

static void s_fini(void)
{
    redis_server_destroy(&s_own);
    leak_check_fini();
}

TestSuite(gateway_cache, .fini = s_fini);

static const char *s_redis_url(void)
{
    const char *url = getenv("RECSD_REDIS_URL");
    if (!url || !*url)
        cr_skip_test("RECSD_REDIS_URL not set (ops/test.sh starts Redis and sets it)");
    return url;
}

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  A user id no other test run shares, so runs against one Redis do not
//  see each other's keys.
static void s_unique(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "test-%s-%d-%lld", what, (int)getpid(), (long long)s_now_us());
}

static gateway_cache_t *s_cache(const char *url, int l1_ttl_ms)
{
    gateway_cache_config_t cfg;
    gateway_cache_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.l1_ttl_ms = l1_ttl_ms;
    char err[160];
    gateway_cache_t *c = gateway_cache_new(&cfg, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

static void s_redis_cmd(const char *url, const char *fmt, const char *arg)
{
    char err[160];
    redisContext *r = redis_conn_open(url, 1000, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    redisReply *reply = redisCommand(r, fmt, arg);
    cr_assert_not_null(reply);
    cr_assert_neq(reply->type, REDIS_REPLY_ERROR, "%s", reply->str);
    freeReplyObject(reply);
    redisFree(r);
}

Test(gateway_cache, config_and_variant)
{
    gateway_cache_config_t cfg;
    gateway_cache_config_defaults(&cfg);
    cr_assert_eq(cfg.l1_capacity, 10000);
    cr_assert_eq(cfg.l1_ttl_ms, 60000);
    cr_assert_eq(cfg.redis_ttl_s, 3600);
    char err[160];
    cfg.redis_url = "http://nope";
    cr_assert_null(gateway_cache_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "Redis URL"), "%s", err);
    cfg.redis_url = NULL;
    cfg.redis_pool = 0;
    cr_assert_null(gateway_cache_new(&cfg, err, sizeof err));

    char a[128], b[128], c[128], d[128];
    cr_assert_eq(gateway_cache_variant(a, sizeof a, "hybrid", 10, false, "v2,v1,v1", NULL), 0);
    cr_assert_eq(gateway_cache_variant(b, sizeof b, "hybrid", 10, false, "v1,v2", NULL), 0);
    cr_assert_str_eq(a, b);
    cr_assert_eq(gateway_cache_variant(c, sizeof c, "hybrid", 10, false, "v1,v3", NULL), 0);
    cr_assert_str_neq(a, c);
    cr_assert_eq(gateway_cache_variant(c, sizeof c, "hybrid", 10, false, "", "exp1:B"), 0);
    cr_assert_eq(gateway_cache_variant(d, sizeof d, "hybrid", 10, false, NULL, "exp1:A"), 0);
    cr_assert_str_neq(c, d);
    cr_assert_eq(gateway_cache_variant(d, sizeof d, "hybrid", 10, true, NULL, "exp1:B"), 0);
    cr_assert_str_neq(c, d);
    cr_assert_eq(gateway_cache_variant(d, sizeof d, "hybrid", 20, false, NULL, "exp1:B"), 0);
    cr_assert_str_neq(c, d);
    cr_assert_eq(gateway_cache_variant(d, 8, "hybrid", 20, false, NULL, NULL), -1);
}

Test(gateway_cache, level1_only_without_redis)
{
    gateway_cache_config_t cfg;
    gateway_cache_config_defaults(&cfg);
    char err[160];
    gateway_cache_t *c = gateway_cache_new(&cfg, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    size_t len;
    gateway_cache_level_t level;
    cr_assert_null(gateway_cache_get_user(c, "u1", "t=hybrid", &len, &level));
    cr_assert_eq(level, GATEWAY_CACHE_MISS);
    gateway_cache_set_user(c, "u1", "t=hybrid", "{\"a\":1}", 7);
    char *body = gateway_cache_get_user(c, "u1", "t=hybrid", &len, &level);
    cr_assert_str_eq(body, "{\"a\":1}");
    cr_assert_eq(level, GATEWAY_CACHE_L1);
    free(body);
    cr_assert_not(gateway_cache_redis_up(c));
    char detail[160];
    cr_assert_eq(gateway_cache_redis_probe(c, detail, sizeof detail), -1);
    //  Bad arguments are misses, not crashes.
    cr_assert_null(gateway_cache_get_user(c, "", "t", &len, NULL));
    cr_assert_null(gateway_cache_get_user(c, "u1", "", &len, NULL));
    cr_assert_null(gateway_cache_get_user(c, NULL, "t", &len, NULL));
    gateway_cache_destroy(&c);
    cr_assert_null(c);
}

Test(gateway_cache, user_round_trip_through_redis)
{
    const char *url = s_redis_url();
    char user[96];
    s_unique(user, sizeof user, "user");
    gateway_cache_t *writer = s_cache(url, 60000);
    gateway_cache_t *reader = s_cache(url, 60000); //  another gateway replica
    const char *body = "{\"user_id\":\"x\",\"items\":[]}";
    gateway_cache_set_user(writer, user, "t=hybrid;n=10", body, strlen(body));
    gateway_cache_set_user(writer, user, "t=content;n=10", "other", 5);
    //  Redis writes are behind the request: wait for them.
    cr_assert_eq(gateway_cache_flush(writer, 2000), 0);

    size_t len = 0;
    gateway_cache_level_t level;
    char *got = gateway_cache_get_user(reader, user, "t=hybrid;n=10", &len, &level);
    cr_assert_not_null(got);
    cr_assert_eq(level, GATEWAY_CACHE_REDIS);
    cr_assert_eq(len, strlen(body));
    cr_assert_str_eq(got, body);
    free(got);
    //  Now in the reader's level 1.
    got = gateway_cache_get_user(reader, user, "t=hybrid;n=10", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_L1);
    free(got);
    cr_assert_null(gateway_cache_get_user(reader, user, "t=hybrid;n=20", &len, &level));
    cr_assert_eq(level, GATEWAY_CACHE_MISS);
    cr_assert(gateway_cache_redis_up(reader));
    cr_assert_eq(gateway_cache_count(reader, "redis", "hit"), 1);
    cr_assert_eq(gateway_cache_count(reader, "redis", "miss"), 1);
    cr_assert_eq(gateway_cache_count(reader, "l1", "hit"), 1);
    cr_assert_eq(gateway_cache_count(reader, "l1", "miss"), 2);

    //  The key schema the ingestor relies on: one hash at recsd:recs:<user>
    //  with a TTL of about an hour.
    char err[160];
    redisContext *r = redis_conn_open(url, 1000, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    redisReply *reply = redisCommand(r, "TYPE recsd:recs:%s", user);
    cr_assert_str_eq(reply->str, "hash");
    freeReplyObject(reply);
    reply = redisCommand(r, "HLEN recsd:recs:%s", user);
    cr_assert_eq(reply->integer, 2);
    freeReplyObject(reply);
    reply = redisCommand(r, "TTL recsd:recs:%s", user);
    cr_assert(reply->integer > 3500 && reply->integer <= 3600, "TTL %lld", reply->integer);
    freeReplyObject(reply);

    //  Timing: a Redis hit (level 1 bypassed by a fresh variant each time).
    char variant[64];
    int64_t best = INT64_MAX, total = 0;
    const int rounds = 200;
    for (int i = 0; i < rounds; i++) {
        snprintf(variant, sizeof variant, "t=hybrid;n=%d", 100 + i);
        gateway_cache_set_user(writer, user, variant, body, strlen(body));
        cr_assert_eq(gateway_cache_flush(writer, 2000), 0);
        int64_t t0 = s_now_us();
        got = gateway_cache_get_user(reader, user, variant, &len, &level);
        int64_t dt = s_now_us() - t0;
        cr_assert_eq(level, GATEWAY_CACHE_REDIS);
        free(got);
        total += dt;
        if (dt < best)
            best = dt;
    }
    int64_t t0 = s_now_us();
    for (int i = 0; i < rounds; i++) {
        got = gateway_cache_get_user(reader, user, "t=hybrid;n=10", &len, &level);
        free(got);
    }
    int64_t l1_total = s_now_us() - t0;
    fprintf(stderr,
            "gateway_cache timing: redis hit mean %lld us (best %lld us), l1 hit mean %.2f us\n",
            (long long)(total / rounds), (long long)best, (double)l1_total / rounds);
    cr_assert_lt(total / rounds, 1000, "Redis hit takes %lld us on average",
                 (long long)(total / rounds));
    //  More than 64 variants: the hash restarts instead of growing.
    reply = redisCommand(r, "HLEN recsd:recs:%s", user);
    cr_assert_leq(reply->integer, 65);
    freeReplyObject(reply);
    //  Every write made it, and the metrics say so.
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    cr_assert_eq(gateway_cache_metrics_write(writer, mem), 0);
    fclose(mem);
    char want[96];
    snprintf(want, sizeof want, "recsd_gateway_cache_redis_writes_total{result=\"written\"} %d\n",
             2 + rounds);
    cr_assert_not_null(strstr(text, want), "%s", text);
    cr_assert_not_null(strstr(text, "recsd_gateway_cache_redis_write_queue 0\n"), "%s", text);
    free(text);

    freeReplyObject(redisCommand(r, "DEL recsd:recs:%s", user));
    redisFree(r);
    gateway_cache_destroy(&writer);
    gateway_cache_destroy(&reader);
}

Test(gateway_cache, segment_round_trip_is_separate_from_users)
{
    const char *url = s_redis_url();
    char segment[96];
    s_unique(segment, sizeof segment, "seg");
    gateway_cache_t *writer = s_cache(url, 60000);
    gateway_cache_t *reader = s_cache(url, 60000);
    gateway_cache_set_segment(writer, segment, "t=popularity;n=10", "seglist", 7);
    cr_assert_eq(gateway_cache_flush(writer, 2000), 0);
    size_t len;
    gateway_cache_level_t level;
    //  A user named like the segment does not see its list.
    cr_assert_null(gateway_cache_get_user(reader, segment, "t=popularity;n=10", &len, &level));
    char *got = gateway_cache_get_segment(reader, segment, "t=popularity;n=10", &len, &level);
    cr_assert_not_null(got);
    cr_assert_eq(level, GATEWAY_CACHE_REDIS);
    cr_assert_str_eq(got, "seglist");
    free(got);
    got = gateway_cache_get_segment(reader, segment, "t=popularity;n=10", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_L1);
    free(got);
    cr_assert_eq(gateway_cache_count(reader, "segment", "hit"), 1);
    cr_assert_eq(gateway_cache_count(reader, "redis", "miss"), 1);
    //  invalidate_user does not touch segments.
    cr_assert_eq(gateway_cache_invalidate_user(reader, segment), 0);
    got = gateway_cache_get_segment(reader, segment, "t=popularity;n=10", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_L1);
    free(got);

    char err[160];
    redisContext *r = redis_conn_open(url, 1000, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    redisReply *reply = redisCommand(r, "EXISTS recsd:recs-segment:%s", segment);
    cr_assert_eq(reply->integer, 1);
    freeReplyObject(reply);
    freeReplyObject(redisCommand(r, "DEL recsd:recs-segment:%s", segment));
    redisFree(r);
    gateway_cache_destroy(&writer);
    gateway_cache_destroy(&reader);
}

Test(gateway_cache, ingestor_del_and_invalidate_user)
{
    const char *url = s_redis_url();
    char user[96];
    s_unique(user, sizeof user, "inval");
    gateway_cache_t *c = s_cache(url, 60000);
    gateway_cache_set_user(c, user, "t=hybrid", "A", 1);
    gateway_cache_set_user(c, user, "t=content", "B", 1);
    gateway_cache_set_user(c, "bystander", "t=hybrid", "C", 1);
    cr_assert_eq(gateway_cache_flush(c, 2000), 0);
    //  What the ingestor does after storing the user's events...
    s_redis_cmd(url, "DEL recsd:recs:%s", user);
    //  ... level 1 still holds them until the notice arrives ...
    size_t len;
    gateway_cache_level_t level;
    char *got = gateway_cache_get_user(c, user, "t=hybrid", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_L1);
    free(got);
    //  ... and what the gateway does on the notice.
    cr_assert_eq(gateway_cache_invalidate_user(c, user), 2);
    cr_assert_null(gateway_cache_get_user(c, user, "t=hybrid", &len, &level));
    cr_assert_eq(level, GATEWAY_CACHE_MISS);
    cr_assert_null(gateway_cache_get_user(c, user, "t=content", &len, &level));
    cr_assert_eq(gateway_cache_count(c, "redis", "miss"), 2);
    got = gateway_cache_get_user(c, "bystander", "t=hybrid", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_L1);
    free(got);
    s_redis_cmd(url, "DEL recsd:recs:%s", "bystander");
    gateway_cache_destroy(&c);
}

Test(gateway_cache, stale_fields_and_level1_ttl_expire)
{
    const char *url = s_redis_url();
    char user[96];
    s_unique(user, sizeof user, "ttl");
    gateway_cache_config_t cfg;
    gateway_cache_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.l1_ttl_ms = 100;
    cfg.redis_ttl_s = 1;
    char err[160];
    gateway_cache_t *c = gateway_cache_new(&cfg, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    gateway_cache_set_user(c, user, "old", "1", 1);
    cr_assert_eq(gateway_cache_flush(c, 2000), 0);
    usleep(150 * 1000);
    size_t len;
    gateway_cache_level_t level;
    char *got = gateway_cache_get_user(c, user, "old", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_REDIS, "level 1 should have expired");
    free(got);
    usleep(1000 * 1000);
    //  A sibling written now renews the key's TTL; the old field is past
    //  its own and must not be served.
    gateway_cache_set_user(c, user, "new", "2", 1);
    cr_assert_eq(gateway_cache_flush(c, 2000), 0);
    usleep(150 * 1000);
    cr_assert_null(gateway_cache_get_user(c, user, "old", &len, &level));
    got = gateway_cache_get_user(c, user, "new", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_REDIS);
    free(got);
    s_redis_cmd(url, "DEL recsd:recs:%s", user);
    gateway_cache_destroy(&c);
}

#define THREADS 8
#define OPS 3000

typedef struct {
    gateway_cache_t *cache;
    const char *prefix;
    unsigned seed;
    int bad;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < OPS; i++) {
        unsigned r = rand_r(&w->seed);
        char user[128], variant[32], body[192];
        snprintf(user, sizeof user, "%s-%u", w->prefix, r % 50);
        snprintf(variant, sizeof variant, "t=hybrid;n=%u", (r >> 8) % 3);
        snprintf(body, sizeof body, "{\"user\":\"%s\",\"variant\":\"%s\"}", user, variant);
        switch ((r >> 16) % 10) {
        case 0:
            gateway_cache_invalidate_user(w->cache, user);
            break;
        case 1:
        case 2:
            gateway_cache_set_user(w->cache, user, variant, body, strlen(body));
            break;
        default: {
            size_t len;
            char *got = gateway_cache_get_user(w->cache, user, variant, &len, NULL);
            if (got && strcmp(got, body) != 0)
                w->bad++;
            free(got);
        }
        }
    }
    return NULL;
}

Test(gateway_cache, concurrent_use_from_eight_threads)
{
    const char *url = s_redis_url();
    char prefix[96];
    s_unique(prefix, sizeof prefix, "conc");
    gateway_cache_config_t cfg;
    gateway_cache_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.l1_capacity = 64; //  small: evictions and Redis refills happen
    char err[160];
    gateway_cache_t *c = gateway_cache_new(&cfg, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker_t){.cache = c, .prefix = prefix, .seed = (unsigned)i * 31 + 7};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_worker, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(workers[i].bad, 0);
    }
    cr_assert_gt(gateway_cache_count(c, "l1", "hit"), 0);
    cr_assert_gt(gateway_cache_count(c, "redis", "hit"), 0);
    cr_assert_eq(gateway_cache_redis_errors(c), 0);
    cr_assert(gateway_cache_redis_up(c));
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_eq(gateway_cache_metrics_write(c, out), 0);
    fclose(out);
    cr_assert(strstr(text, "recsd_gateway_cache_requests_total{level=\"redis\",result=\"hit\"} "));
    cr_assert(strstr(text, "# TYPE recsd_gateway_cache_evictions_total counter\n"));
    cr_assert(strstr(text, "recsd_gateway_cache_evictions_total{reason=\"capacity\"} "));
    cr_assert(strstr(text, "recsd_gateway_cache_redis_up 1\n"));
    free(text);
    char err2[160];
    redisContext *r = redis_conn_open(url, 1000, err2, sizeof err2);
    cr_assert_not_null(r, "%s", err2);
    for (int i = 0; i < 50; i++)
        freeReplyObject(redisCommand(r, "DEL recsd:recs:%s-%d", prefix, i));
    redisFree(r);
    gateway_cache_destroy(&c);
}

//  --- a Redis of the test's own, to stop and freeze -------------------

//  Every call must come back quickly and quietly while Redis is away.
static void s_calls_are_quick_misses(gateway_cache_t *c, const char *user, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        char variant[32];
        snprintf(variant, sizeof variant, "v%d", i);
        size_t len;
        gateway_cache_level_t level;
        int64_t t0 = s_now_us();
        char *got = gateway_cache_get_user(c, user, variant, &len, &level);
        int64_t dt_get = s_now_us() - t0;
        cr_assert_null(got);
        cr_assert_eq(level, GATEWAY_CACHE_MISS);
        t0 = s_now_us();
        gateway_cache_set_segment(c, "seg", variant, "x", 1);
        int64_t dt_set = s_now_us() - t0;
        cr_assert_lt(dt_get, 100000, "get took %lld us", (long long)dt_get);
        cr_assert_lt(dt_set, 100000, "set took %lld us", (long long)dt_set);
        //  The set still fills level 1.
        got = gateway_cache_get_segment(c, "seg", variant, &len, &level);
        cr_assert_eq(level, GATEWAY_CACHE_L1);
        free(got);
        usleep(2000);
    }
}

Test(gateway_cache, redis_killed_frozen_and_back)
{
    s_own = redis_server_new("gwcache");
    const char *url = redis_server_url(s_own);
    gateway_cache_config_t cfg;
    gateway_cache_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.redis_backoff_ms = 300; //  shorter than production, to keep the test short
    char err[160];
    gateway_cache_t *c = gateway_cache_new(&cfg, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    char detail[160];
    cr_assert_eq(gateway_cache_redis_probe(c, detail, sizeof detail), 0, "%s", detail);
    cr_assert(gateway_cache_redis_up(c));
    gateway_cache_set_user(c, "u", "t", "cached", 6);

    //  Killed: connection refused, then back-off.
    redis_server_kill(s_own);
    s_calls_are_quick_misses(c, "u-killed", 150);
    cr_assert_not(gateway_cache_redis_up(c));
    uint64_t errors = gateway_cache_redis_errors(c);
    cr_assert_gt(errors, 0);
    //  About one failure per back-off period, not one per call.
    cr_assert_lt(errors, 10, "%llu Redis errors for 150 calls", (unsigned long long)errors);
    cr_assert_gt(gateway_cache_count(c, "redis", "error"), 0);
    cr_assert_eq(gateway_cache_redis_probe(c, detail, sizeof detail), -1);
    cr_assert_neq(detail[0], '\0');

    //  Back (an empty Redis): reconnects after the back-off.
    redis_server_restart(s_own);
    usleep(cfg.redis_backoff_ms * 1000 + 50000);
    gateway_cache_set_user(c, "u2", "t", "again", 5);
    cr_assert_eq(gateway_cache_flush(c, 2000), 0);
    cr_assert(gateway_cache_redis_up(c));
    gateway_cache_t *other = s_cache(url, 60000);
    size_t len;
    gateway_cache_level_t level;
    char *got = gateway_cache_get_user(other, "u2", "t", &len, &level);
    cr_assert_eq(level, GATEWAY_CACHE_REDIS);
    cr_assert_str_eq(got, "again");
    free(got);

    //  Frozen (SIGSTOP): the connection stays open but nothing answers,
    //  so every command runs into the timeout, once per back-off.
    redis_server_freeze(s_own);
    errors = gateway_cache_redis_errors(c);
    s_calls_are_quick_misses(c, "u-frozen", 100);
    cr_assert_not(gateway_cache_redis_up(c));
    cr_assert_gt(gateway_cache_redis_errors(c), errors);
    redis_server_thaw(s_own);
    usleep(cfg.redis_backoff_ms * 1000 + 50000);
    cr_assert_eq(gateway_cache_redis_probe(c, detail, sizeof detail), 0, "%s", detail);
    cr_assert(gateway_cache_redis_up(c));

    gateway_cache_destroy(&other);
    gateway_cache_destroy(&c);
    redis_server_destroy(&s_own);
}
