/*  gateway_cache.c: level-1 LRU in front of Redis for rendered
    recommendation lists (see gateway_cache.h). */
#include "gateway_cache.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "lru_cache.h"
#include "redis_pool.h"
#include "trace.h"

#define USER_PREFIX "recsd:recs:"
#define SEGMENT_PREFIX "recsd:recs-segment:"
#define NAME_MAX_LEN 256    //  user or segment id
#define VARIANT_MAX_LEN 512 //  longer variants are refused (miss, no store)
#define MAX_FIELDS 64       //  per Redis hash before it is restarted
//  Redis writes wait here for the writer thread. A request never waits for
//  a write; when the writer falls this far behind a write is dropped
//  (counted): the list is still in level 1 and the next miss rewrites it.
#define WRITE_QUEUE_MAX 4096
#define WRITE_BATCH_MAX 64 //  writes per pipelined round trip
//  How long the writer lets a batch gather once the first write of it is
//  queued (unless WRITE_BATCH_MAX arrive first): at a few thousand misses
//  a second, writing each list as it came cost the gateway and Redis a
//  wake-up per miss; 2 ms batches them ~10 to one. A list is in level 1
//  meanwhile, and a Redis lookup elsewhere in those 2 ms is a miss.
#define WRITE_LINGER_US 2000

enum { LEVEL_L1, LEVEL_REDIS, LEVEL_SEGMENT, LEVEL_COUNT };
enum { RESULT_HIT, RESULT_MISS, RESULT_ERROR, RESULT_COUNT };
static const char *s_levels[LEVEL_COUNT] = {"l1", "redis", "segment"};
static const char *s_results[RESULT_COUNT] = {"hit", "miss", "error"};

typedef enum { KIND_USER, KIND_SEGMENT } kind_t;

//  One pending Redis write: key, field and stamped value, all owned.
typedef struct {
    char *group; //  the level-1 group (kind + name): invalidation matches on it
    char *key;
    char *variant;
    char *value;
    size_t value_len;
    int ttl_s;
} pending_write_t;

enum { WRITE_WRITTEN, WRITE_DROPPED, WRITE_FAILED, WRITE_RESULTS };
static const char *s_write_results[WRITE_RESULTS] = {"written", "dropped", "error"};

struct gateway_cache_t {
    lru_cache_t *l1;
    redis_pool_t *redis;     //  NULL: no Redis configured (level 1 only)
    _Atomic int redis_ttl_s; //  changeable at run time (gateway_cache_set_ttls)
    int segment_ttl_s;
    atomic_uint_fast64_t counts[LEVEL_COUNT][RESULT_COUNT];
    //  Write-behind: a ring of pending writes and the thread that pipelines
    //  them to Redis, so a miss costs the request one Redis round trip (the
    //  lookup), not two, and Redis sees batches rather than one write per
    //  request.
    pthread_mutex_t queue_mutex;
    pthread_cond_t queue_wake;    //  writes queued, or stop
    pthread_cond_t queue_drained; //  the writer finished a batch
    pending_write_t *queue;
    size_t queue_head, queue_len;
    size_t in_flight; //  taken by the writer, not yet written
    bool writer_running, stopping;
    pthread_t writer;
    atomic_uint_fast64_t writes[WRITE_RESULTS];
};

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_count(gateway_cache_t *self, int level, int result)
{
    atomic_fetch_add_explicit(&self->counts[level][result], 1, memory_order_relaxed);
}

static void *s_writer_main(void *arg);

static void s_pending_free(pending_write_t *w)
{
    free(w->group);
    free(w->key);
    free(w->variant);
    free(w->value);
    memset(w, 0, sizeof *w);
}

void gateway_cache_config_defaults(gateway_cache_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->l1_capacity = 10000;
    cfg->l1_shards = 16;
    cfg->l1_ttl_ms = 60000;
    cfg->redis_ttl_s = 3600;
    cfg->segment_ttl_s = 3600;
    cfg->redis_timeout_ms = 20;
    cfg->redis_backoff_ms = 1000;
    cfg->redis_pool = 4;
}

gateway_cache_t *gateway_cache_new(const gateway_cache_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->l1_capacity == 0 || cfg->l1_shards == 0 || cfg->l1_shards > 1024 ||
        cfg->l1_ttl_ms <= 0 || cfg->redis_ttl_s <= 0 || cfg->segment_ttl_s <= 0 ||
        cfg->redis_timeout_ms <= 0 || cfg->redis_backoff_ms < 0 || cfg->redis_pool <= 0 ||
        cfg->redis_pool > REDIS_POOL_SIZE_MAX) {
        snprintf(err, errlen, "invalid cache configuration");
        return NULL;
    }
    gateway_cache_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->redis_ttl_s = cfg->redis_ttl_s;
    self->segment_ttl_s = cfg->segment_ttl_s;
    for (int l = 0; l < LEVEL_COUNT; l++)
        for (int r = 0; r < RESULT_COUNT; r++)
            atomic_init(&self->counts[l][r], 0);
    pthread_mutex_init(&self->queue_mutex, NULL);
    //  The writer's linger is a timed wait on queue_wake: on the monotonic
    //  clock, so that a wall-clock step cannot stretch it.
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->queue_wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&self->queue_drained, NULL);
    for (int w = 0; w < WRITE_RESULTS; w++)
        atomic_init(&self->writes[w], 0);

    self->l1 = lru_cache_new(cfg->l1_capacity, cfg->l1_shards, cfg->l1_ttl_ms);
    if (!self->l1) {
        snprintf(err, errlen, "cannot create the level-1 cache");
        goto err;
    }
    if (cfg->redis_url && *cfg->redis_url) {
        self->redis = redis_pool_new(cfg->redis_url, cfg->redis_timeout_ms, cfg->redis_backoff_ms,
                                     cfg->redis_pool, "recommendation cache", err, errlen);
        if (!self->redis)
            goto err;
        self->queue = calloc(WRITE_QUEUE_MAX, sizeof *self->queue);
        if (!self->queue) {
            snprintf(err, errlen, "out of memory");
            goto err;
        }
        if (pthread_create(&self->writer, NULL, s_writer_main, self) != 0) {
            snprintf(err, errlen, "cannot start the Redis writer thread");
            goto err;
        }
        self->writer_running = true;
    }
    return self;
err:
    gateway_cache_destroy(&self);
    return NULL;
}

void gateway_cache_destroy(gateway_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_cache_t *self = *self_p;
    if (self->writer_running) {
        //  The writer drains what is queued first (each write fails fast
        //  while Redis is down), so a clean stop loses no list.
        pthread_mutex_lock(&self->queue_mutex);
        self->stopping = true;
        pthread_cond_signal(&self->queue_wake);
        pthread_mutex_unlock(&self->queue_mutex);
        pthread_join(self->writer, NULL);
    }
    for (size_t i = 0; self->queue && i < self->queue_len; i++)
        s_pending_free(&self->queue[(self->queue_head + i) % WRITE_QUEUE_MAX]);
    free(self->queue);
    pthread_cond_destroy(&self->queue_wake);
    pthread_cond_destroy(&self->queue_drained);
    pthread_mutex_destroy(&self->queue_mutex);
    redis_pool_destroy(&self->redis);
    lru_cache_destroy(&self->l1);
    free(self);
    *self_p = NULL;
}

//  A locked connection, or NULL when Redis is not configured, down
//  (backing off) or the connect failed. If all are busy it queues on one:
//  a command takes well under a millisecond, at most the timeout.
static redis_pool_slot_t *s_acquire(gateway_cache_t *self)
{
    return self->redis ? redis_pool_acquire(self->redis, -1, NULL) : NULL;
}

//  "u:<user>" / "s:<segment>": level-1 group names, kept apart by kind.
//  Returns 0, or -1 if name is empty or too long.
static int s_group(kind_t kind, const char *name, char *out, size_t outlen)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > NAME_MAX_LEN)
        return -1;
    snprintf(out, outlen, "%c:%s", kind == KIND_USER ? 'u' : 's', name);
    return 0;
}

static bool s_variant_ok(const char *variant)
{
    size_t len = variant ? strlen(variant) : 0;
    return len > 0 && len <= VARIANT_MAX_LEN;
}

static void s_key(kind_t kind, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s", kind == KIND_USER ? USER_PREFIX : SEGMENT_PREFIX, name);
}

//  Parses "<write ms>\n<body>"; returns the body or NULL if malformed or
//  older than ttl_s.
static const char *s_fresh_body(const char *value, size_t len, int ttl_s, size_t *body_len)
{
    const char *nl = memchr(value, '\n', len < 24 ? len : 24);
    if (!nl || nl == value)
        return NULL;
    int64_t written = 0;
    for (const char *p = value; p < nl; p++) {
        if (*p < '0' || *p > '9')
            return NULL;
        written = written * 10 + (*p - '0');
    }
    if (s_wall_ms() - written > (int64_t)ttl_s * 1000)
        return NULL;
    *body_len = len - (size_t)(nl + 1 - value);
    return nl + 1;
}

//  Ends a lookup's span with its outcome ("hit", "miss" or "error").
static void s_span_done(trace_span_t **span_p, const char *result)
{
    if (!*span_p)
        return;
    trace_span_set_str(*span_p, "recsd.cache.result", result);
    if (strcmp(result, "error") == 0)
        trace_span_set_error(*span_p, "Redis unavailable or failing");
    trace_span_end(span_p);
}

//  trace: the span the lookups are children of (NULL: untraced).
static char *s_get(gateway_cache_t *self, kind_t kind, const char *name, const char *variant,
                   size_t *len, gateway_cache_level_t *level, trace_span_t *trace)
{
    char group[NAME_MAX_LEN + 3];
    if (level)
        *level = GATEWAY_CACHE_MISS;
    if (s_group(kind, name, group, sizeof group) != 0 || !s_variant_ok(variant))
        return NULL;
    size_t body_len = 0;
    trace_span_t *span = trace_span_child(trace, "cache.lru", TRACE_KIND_INTERNAL);
    trace_span_set_str(span, "recsd.cache.kind", kind == KIND_USER ? "user" : "segment");
    char *body = lru_cache_get(self->l1, group, variant, &body_len);
    if (body) {
        s_count(self, LEVEL_L1, RESULT_HIT);
        s_span_done(&span, "hit");
        if (level)
            *level = GATEWAY_CACHE_L1;
        *len = body_len;
        return body;
    }
    s_count(self, LEVEL_L1, RESULT_MISS);
    s_span_done(&span, "miss");

    int counter = kind == KIND_USER ? LEVEL_REDIS : LEVEL_SEGMENT;
    span = trace_span_child(trace, "cache.redis", TRACE_KIND_CLIENT);
    trace_span_set_str(span, "db.system", "redis");
    trace_span_set_str(span, "db.operation", "HGET");
    trace_span_set_str(span, "recsd.cache.kind", kind == KIND_USER ? "user" : "segment");
    redis_pool_slot_t *slot = s_acquire(self);
    if (!slot) {
        s_count(self, counter, RESULT_ERROR);
        s_span_done(&span, "error");
        return NULL;
    }
    char key[NAME_MAX_LEN + 32];
    s_key(kind, name, key, sizeof key);
    redisReply *reply = redisCommand(redis_pool_context(slot), "HGET %s %s", key, variant);
    if (!reply) {
        redis_pool_fail(self->redis, slot, "HGET");
        redis_pool_release(self->redis, &slot);
        s_count(self, counter, RESULT_ERROR);
        s_span_done(&span, "error");
        return NULL;
    }
    redis_pool_release(self->redis, &slot);
    redis_pool_ok(self->redis);
    const char *fresh = NULL;
    if (reply->type == REDIS_REPLY_STRING)
        fresh = s_fresh_body(
            reply->str, reply->len,
            kind == KIND_USER ? atomic_load(&self->redis_ttl_s) : self->segment_ttl_s, &body_len);
    else if (reply->type == REDIS_REPLY_ERROR) {
        //  e.g. WRONGTYPE: Redis works, this key is unusable; a set repairs it.
        redis_pool_error(self->redis, "HGET", reply->str);
        freeReplyObject(reply);
        s_count(self, counter, RESULT_ERROR);
        s_span_done(&span, "error");
        return NULL;
    }
    if (fresh)
        body = malloc(body_len + 1);
    if (body) {
        memcpy(body, fresh, body_len);
        body[body_len] = '\0';
        if (lru_cache_put(self->l1, group, variant, body, body_len) != 0)
            log_warn("recommendation cache: out of memory filling level 1");
        s_count(self, counter, RESULT_HIT);
        if (level)
            *level = GATEWAY_CACHE_REDIS;
        *len = body_len;
    } else
        s_count(self, counter, RESULT_MISS);
    s_span_done(&span, body ? "hit" : "miss");
    freeReplyObject(reply);
    return body;
}

//  Reads n pipelined replies; returns the last HLEN-style integer seen
//  (or -1), or -2 if the connection failed (slot already failed).
static long long s_drain(gateway_cache_t *self, redis_pool_slot_t *slot, int n, const char *what)
{
    long long integer = -1;
    for (int i = 0; i < n; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(redis_pool_context(slot), (void **)&reply) != REDIS_OK || !reply) {
            redis_pool_fail(self->redis, slot, what);
            return -2;
        }
        if (reply->type == REDIS_REPLY_ERROR)
            redis_pool_error(self->redis, what, reply->str);
        else if (reply->type == REDIS_REPLY_INTEGER)
            integer = reply->integer;
        freeReplyObject(reply);
    }
    return integer;
}

static void s_set(gateway_cache_t *self, kind_t kind, const char *name, const char *variant,
                  const void *body, size_t len)
{
    char group[NAME_MAX_LEN + 3];
    if (s_group(kind, name, group, sizeof group) != 0 || !s_variant_ok(variant) || !body)
        return;
    if (lru_cache_put(self->l1, group, variant, body, len) != 0)
        log_warn("recommendation cache: out of memory storing in level 1");
    if (!self->redis)
        return;
    char stamp[24];
    int stamp_len = snprintf(stamp, sizeof stamp, "%" PRId64 "\n", s_wall_ms());
    char *value = malloc((size_t)stamp_len + len);
    if (!value) {
        log_warn("recommendation cache: out of memory storing in Redis");
        return;
    }
    memcpy(value, stamp, (size_t)stamp_len);
    memcpy(value + stamp_len, body, len);
    char key[NAME_MAX_LEN + 32];
    s_key(kind, name, key, sizeof key);
    pending_write_t w = {.group = strdup(group),
                         .key = strdup(key),
                         .variant = strdup(variant),
                         .value = value,
                         .value_len = (size_t)stamp_len + len,
                         .ttl_s = kind == KIND_USER ? atomic_load(&self->redis_ttl_s)
                                                    : self->segment_ttl_s};
    bool queued = false;
    pthread_mutex_lock(&self->queue_mutex);
    if (w.group && w.key && w.variant && self->queue_len < WRITE_QUEUE_MAX && !self->stopping) {
        self->queue[(self->queue_head + self->queue_len) % WRITE_QUEUE_MAX] = w;
        self->queue_len++;
        //  The writer waits for the first write, then lingers for more
        //  unless a full batch is here: a signal per write would end the
        //  linger at once.
        if (self->queue_len == 1 || self->queue_len == WRITE_BATCH_MAX)
            pthread_cond_signal(&self->queue_wake);
        queued = true;
    }
    pthread_mutex_unlock(&self->queue_mutex);
    if (!queued) {
        atomic_fetch_add_explicit(&self->writes[WRITE_DROPPED], 1, memory_order_relaxed);
        s_pending_free(&w);
    }
}

//  Writes a batch in one pipelined round trip: per list HSET, EXPIRE (the
//  key's TTL renewed) and HLEN; a hash grown past MAX_FIELDS (many exclude
//  lists) is deleted and restarted with just that list.
static void s_write_batch(gateway_cache_t *self, pending_write_t *batch, size_t n)
{
    redis_pool_slot_t *slot = s_acquire(self);
    if (!slot) {
        atomic_fetch_add_explicit(&self->writes[WRITE_FAILED], n, memory_order_relaxed);
        return;
    }
    redisContext *ctx = redis_pool_context(slot);
    for (size_t i = 0; i < n; i++) {
        pending_write_t *w = &batch[i];
        redisAppendCommand(ctx, "HSET %s %s %b", w->key, w->variant, w->value, w->value_len);
        redisAppendCommand(ctx, "EXPIRE %s %d", w->key, w->ttl_s);
        redisAppendCommand(ctx, "HLEN %s", w->key);
    }
    bool restart[WRITE_BATCH_MAX] = {false};
    size_t restarts = 0;
    for (size_t i = 0; i < n; i++) {
        long long fields = s_drain(self, slot, 3, "HSET");
        if (fields == -2) { //  the connection failed: the rest is lost
            atomic_fetch_add_explicit(&self->writes[WRITE_FAILED], n - i, memory_order_relaxed);
            redis_pool_release(self->redis, &slot);
            return;
        }
        atomic_fetch_add_explicit(&self->writes[WRITE_WRITTEN], 1, memory_order_relaxed);
        if (fields > MAX_FIELDS) {
            restart[i] = true;
            restarts++;
        }
    }
    for (size_t i = 0; i < n && restarts > 0; i++) {
        if (!restart[i])
            continue;
        pending_write_t *w = &batch[i];
        redisAppendCommand(ctx, "DEL %s", w->key);
        redisAppendCommand(ctx, "HSET %s %s %b", w->key, w->variant, w->value, w->value_len);
        redisAppendCommand(ctx, "EXPIRE %s %d", w->key, w->ttl_s);
        if (s_drain(self, slot, 3, "HSET") == -2)
            break;
    }
    bool answered = redis_pool_context(slot) != NULL;
    redis_pool_release(self->redis, &slot);
    if (answered)
        redis_pool_ok(self->redis);
}

//  With queue_mutex held and a write queued: waits up to WRITE_LINGER_US
//  for a full batch, unless stopping.
static void s_linger(gateway_cache_t *self)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WRITE_LINGER_US * 1000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (self->queue_len > 0 && self->queue_len < WRITE_BATCH_MAX && !self->stopping)
        if (pthread_cond_timedwait(&self->queue_wake, &self->queue_mutex, &until) == ETIMEDOUT)
            break;
}

static void *s_writer_main(void *arg)
{
    gateway_cache_t *self = arg;
    pending_write_t batch[WRITE_BATCH_MAX];
    pthread_mutex_lock(&self->queue_mutex);
    while (true) {
        while (self->queue_len == 0 && !self->stopping)
            pthread_cond_wait(&self->queue_wake, &self->queue_mutex);
        if (self->queue_len == 0)
            break; //  stopping, and everything is written
        s_linger(self);
        if (self->queue_len == 0)
            continue; //  all of it invalidated meanwhile
        size_t n = 0;
        while (n < WRITE_BATCH_MAX && self->queue_len > 0) {
            batch[n++] = self->queue[self->queue_head];
            self->queue_head = (self->queue_head + 1) % WRITE_QUEUE_MAX;
            self->queue_len--;
        }
        self->in_flight = n;
        pthread_mutex_unlock(&self->queue_mutex);
        s_write_batch(self, batch, n);
        for (size_t i = 0; i < n; i++)
            s_pending_free(&batch[i]);
        pthread_mutex_lock(&self->queue_mutex);
        self->in_flight = 0;
        pthread_cond_broadcast(&self->queue_drained);
    }
    pthread_cond_broadcast(&self->queue_drained);
    pthread_mutex_unlock(&self->queue_mutex);
    return NULL;
}

int gateway_cache_flush(gateway_cache_t *self, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&self->queue_mutex);
    while ((self->queue_len > 0 || self->in_flight > 0) && self->writer_running && rc == 0)
        if (pthread_cond_timedwait(&self->queue_drained, &self->queue_mutex, &deadline) != 0)
            rc = -1;
    pthread_mutex_unlock(&self->queue_mutex);
    return rc;
}

char *gateway_cache_get_user(gateway_cache_t *self, const char *user, const char *variant,
                             size_t *len, gateway_cache_level_t *level)
{
    return gateway_cache_get_user_traced(self, user, variant, len, level, NULL);
}

char *gateway_cache_get_user_traced(gateway_cache_t *self, const char *user, const char *variant,
                                    size_t *len, gateway_cache_level_t *level, trace_span_t *trace)
{
    char *body = s_get(self, KIND_USER, user, variant, len, level, trace);
    if (!body || body[0] != '@')
        return body;
    //  A reference: the user's list is their segment's (a rendered list is
    //  JSON and never starts with '@').
    char segment[NAME_MAX_LEN + 1];
    snprintf(segment, sizeof segment, "%s", body + 1);
    free(body);
    return s_get(self, KIND_SEGMENT, segment, variant, len, level, trace);
}

void gateway_cache_set_user_segment(gateway_cache_t *self, const char *user, const char *variant,
                                    const char *segment, const void *body, size_t len)
{
    char ref[NAME_MAX_LEN + 2];
    int n = snprintf(ref, sizeof ref, "@%s", segment ? segment : "");
    if (!segment || !*segment || n < 0 || (size_t)n >= sizeof ref)
        return;
    s_set(self, KIND_SEGMENT, segment, variant, body, len);
    s_set(self, KIND_USER, user, variant, ref, (size_t)n);
}

void gateway_cache_set_user(gateway_cache_t *self, const char *user, const char *variant,
                            const void *body, size_t len)
{
    s_set(self, KIND_USER, user, variant, body, len);
}

char *gateway_cache_get_segment(gateway_cache_t *self, const char *segment, const char *variant,
                                size_t *len, gateway_cache_level_t *level)
{
    return s_get(self, KIND_SEGMENT, segment, variant, len, level, NULL);
}

void gateway_cache_set_segment(gateway_cache_t *self, const char *segment, const char *variant,
                               const void *body, size_t len)
{
    s_set(self, KIND_SEGMENT, segment, variant, body, len);
}

size_t gateway_cache_invalidate_user(gateway_cache_t *self, const char *user)
{
    char group[NAME_MAX_LEN + 3];
    if (s_group(KIND_USER, user, group, sizeof group) != 0)
        return 0;
    //  A list still queued for Redis was computed before the interaction:
    //  it must not land after the ingestor's DEL of the user's key.
    pthread_mutex_lock(&self->queue_mutex);
    size_t kept = 0;
    for (size_t i = 0; i < self->queue_len; i++) {
        pending_write_t *w = &self->queue[(self->queue_head + i) % WRITE_QUEUE_MAX];
        if (strcmp(w->group, group) == 0) {
            s_pending_free(w);
            atomic_fetch_add_explicit(&self->writes[WRITE_DROPPED], 1, memory_order_relaxed);
        } else
            self->queue[(self->queue_head + kept++) % WRITE_QUEUE_MAX] = *w;
    }
    self->queue_len = kept;
    pthread_mutex_unlock(&self->queue_mutex);
    return lru_cache_drop_group(self->l1, group);
}

bool gateway_cache_redis_up(gateway_cache_t *self)
{
    return self->redis && redis_pool_up(self->redis);
}

int gateway_cache_redis_probe(gateway_cache_t *self, char *detail, size_t detaillen)
{
    if (!self->redis) {
        snprintf(detail, detaillen, "no Redis configured");
        return -1;
    }
    redis_pool_slot_t *slot = s_acquire(self);
    if (!slot) {
        redis_pool_last_error(self->redis, detail, detaillen);
        return -1;
    }
    redisContext *ctx = redis_pool_context(slot);
    redisReply *reply = redisCommand(ctx, "PING");
    int rc = -1;
    if (!reply) {
        snprintf(detail, detaillen, "PING: %s", ctx->errstr);
        redis_pool_fail(self->redis, slot, "PING");
    } else if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0) {
        snprintf(detail, detaillen, "PONG");
        redis_pool_ok(self->redis);
        rc = 0;
    } else
        snprintf(detail, detaillen, "PING answered %.100s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "something unexpected");
    redis_pool_release(self->redis, &slot);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int gateway_cache_variant(char *out, size_t outlen, const char *type, int limit, bool explain,
                          const char *exclude, const char *ab_variant)
{
    char hash[24] = "-";
    if (exclude && *exclude) {
        //  Sorted and deduplicated, so "a,b" and "b,a,a" share a list.
        char *copy = strdup(exclude);
        size_t cap = 1;
        for (const char *p = exclude; *p; p++)
            cap += *p == ',';
        char **ids = calloc(cap, sizeof *ids);
        if (!copy || !ids) {
            free(copy);
            free(ids);
            return -1;
        }
        size_t n = 0;
        char *save = NULL;
        for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save))
            ids[n++] = id;
        qsort(ids, n, sizeof *ids, s_cmp_str);
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < n; i++) {
            if (i && strcmp(ids[i], ids[i - 1]) == 0)
                continue;
            for (const char *p = ids[i]; *p; p++)
                h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
            h = (h ^ ',') * 0x100000001b3ULL;
        }
        if (n)
            snprintf(hash, sizeof hash, "%016" PRIx64, h);
        free(ids);
        free(copy);
    }
    int written = snprintf(out, outlen, "t=%s;n=%d;e=%d;x=%s;v=%s", type ? type : "-", limit,
                           explain ? 1 : 0, hash, ab_variant && *ab_variant ? ab_variant : "-");
    return written < 0 || (size_t)written >= outlen ? -1 : 0;
}

int gateway_cache_metrics_write(gateway_cache_t *self, FILE *out)
{
    lru_cache_stats_t stats;
    lru_cache_stats(self->l1, &stats);
    fputs("# HELP recsd_gateway_cache_requests_total Recommendation cache lookups, by level "
          "and result.\n# TYPE recsd_gateway_cache_requests_total counter\n",
          out);
    for (int l = 0; l < LEVEL_COUNT; l++)
        for (int r = 0; r < RESULT_COUNT; r++)
            fprintf(out, "recsd_gateway_cache_requests_total{level=\"%s\",result=\"%s\"} %llu\n",
                    s_levels[l], s_results[r],
                    (unsigned long long)atomic_load_explicit(&self->counts[l][r],
                                                             memory_order_relaxed));
    fprintf(out,
            "# HELP recsd_gateway_cache_evictions_total Level-1 entries removed, by reason.\n"
            "# TYPE recsd_gateway_cache_evictions_total counter\n"
            "recsd_gateway_cache_evictions_total{reason=\"capacity\"} %llu\n"
            "recsd_gateway_cache_evictions_total{reason=\"expired\"} %llu\n"
            "recsd_gateway_cache_evictions_total{reason=\"invalidated\"} %llu\n",
            (unsigned long long)stats.evictions, (unsigned long long)stats.expirations,
            (unsigned long long)stats.dropped);
    fprintf(out,
            "# HELP recsd_gateway_cache_entries Entries in the level-1 cache.\n"
            "# TYPE recsd_gateway_cache_entries gauge\n"
            "recsd_gateway_cache_entries %llu\n",
            (unsigned long long)stats.entries);
    fprintf(out,
            "# HELP recsd_gateway_cache_redis_errors_total Failed Redis connects and commands "
            "of the recommendation cache.\n"
            "# TYPE recsd_gateway_cache_redis_errors_total counter\n"
            "recsd_gateway_cache_redis_errors_total %llu\n",
            (unsigned long long)gateway_cache_redis_errors(self));
    fprintf(out,
            "# HELP recsd_gateway_cache_redis_up 1 if the cache's last Redis call succeeded.\n"
            "# TYPE recsd_gateway_cache_redis_up gauge\n"
            "recsd_gateway_cache_redis_up %d\n",
            gateway_cache_redis_up(self) ? 1 : 0);
    fputs("# HELP recsd_gateway_cache_redis_writes_total Lists written to Redis behind the "
          "request, by result (dropped: the queue was full or the user's lists were "
          "invalidated first).\n# TYPE recsd_gateway_cache_redis_writes_total counter\n",
          out);
    for (int w = 0; w < WRITE_RESULTS; w++)
        fprintf(out, "recsd_gateway_cache_redis_writes_total{result=\"%s\"} %llu\n",
                s_write_results[w],
                (unsigned long long)atomic_load_explicit(&self->writes[w], memory_order_relaxed));
    pthread_mutex_lock(&self->queue_mutex);
    size_t queued = self->queue_len;
    pthread_mutex_unlock(&self->queue_mutex);
    fprintf(out,
            "# HELP recsd_gateway_cache_redis_write_queue Lists waiting to be written to Redis.\n"
            "# TYPE recsd_gateway_cache_redis_write_queue gauge\n"
            "recsd_gateway_cache_redis_write_queue %zu\n",
            queued);
    return ferror(out) ? -1 : 0;
}

uint64_t gateway_cache_count(gateway_cache_t *self, const char *level, const char *result)
{
    for (int l = 0; l < LEVEL_COUNT; l++)
        for (int r = 0; r < RESULT_COUNT; r++)
            if (level && result && strcmp(level, s_levels[l]) == 0 &&
                strcmp(result, s_results[r]) == 0)
                return atomic_load_explicit(&self->counts[l][r], memory_order_relaxed);
    return 0;
}

uint64_t gateway_cache_redis_errors(gateway_cache_t *self)
{
    return self->redis ? redis_pool_errors(self->redis) : 0;
}

void gateway_cache_set_ttls(gateway_cache_t *self, int redis_ttl_s, int64_t l1_ttl_ms)
{
    if (redis_ttl_s > 0)
        atomic_store(&self->redis_ttl_s, redis_ttl_s);
    //  0 turns level 1 off in the serving configuration: a millisecond
    //  lifetime is the same for every purpose.
    lru_cache_set_ttl(self->l1, l1_ttl_ms > 0 ? l1_ttl_ms : 1);
}
