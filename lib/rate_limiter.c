/*  rate_limiter.c: GCRA rate limiting in Redis (one Lua script round trip)
    with a bounded in-process fallback (see rate_limiter.h). */
#include "rate_limiter.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_pool.h"

#define DEFAULT_PREFIX "recsd:ratelimit:"
#define PREFIX_MAX 128
#define PLAIN_ID_MAX 64 //  longer ids are hashed into the key
#define LIMIT_MAX 10000000
#define SPAN_MAX_US (30LL * 86400 * 1000000) //  burst * T; keeps Lua's doubles exact
#define LOCAL_WAYS 8
#define LOCAL_STRIPES 64
#define LOCAL_CAPACITY_MAX ((size_t)1 << 28)

//  KEYS[1]: the user's TAT, in microseconds of the Redis server's clock.
//  ARGV[1]: emission interval T in microseconds; ARGV[2]: burst.
//  Returns {allowed, remaining, reset_after_us, retry_after_us}. Numbers
//  are written with string.format because Redis would render a Lua number
//  with 14 significant digits, which loses a microsecond timestamp.
static const char s_script[] = "if redis.replicate_commands then redis.replicate_commands() end\n"
                               "local interval = tonumber(ARGV[1])\n"
                               "local burst = tonumber(ARGV[2])\n"
                               "local t = redis.call('TIME')\n"
                               "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                               "local stored = redis.call('GET', KEYS[1])\n"
                               "local tat = stored and tonumber(stored) or now\n"
                               "if tat < now then tat = now end\n"
                               "local span = interval * burst\n"
                               "local new_tat = tat + interval\n"
                               "local allow_at = new_tat - span\n"
                               "if now < allow_at then\n"
                               "  return {0, 0, tat - now, allow_at - now}\n"
                               "end\n"
                               "local reset = new_tat - now\n"
                               "redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',\n"
                               "           string.format('%.0f', math.ceil(reset / 1000)))\n"
                               "return {1, math.floor((span - reset) / interval), reset, 0}\n";

enum { RESULT_ALLOWED, RESULT_REFUSED, RESULT_COUNT };
enum { FALLBACK_NONE = -1, FALLBACK_DOWN, FALLBACK_ERROR, FALLBACK_BUSY, FALLBACK_COUNT };
static const char *s_backends[2] = {"redis", "local"};
static const char *s_results[RESULT_COUNT] = {"allowed", "refused"};
static const char *s_fallbacks[FALLBACK_COUNT] = {"down", "error", "busy"};

typedef struct {
    int64_t interval_us; //  T
    int burst;
} gcra_t;

//  One user in the local table; tat_us == 0 marks an empty entry (a real
//  TAT is a monotonic time plus at least T, so never 0).
typedef struct {
    uint64_t id;
    int64_t tat_us;
} local_entry_t;

struct rate_limiter_t {
    gcra_t redis_gcra, local_gcra;
    int limit;
    char prefix[PREFIX_MAX + 1];
    char script_sha[41];
    redis_pool_t *redis; //  NULL: no Redis configured (local only)
    int timeout_ms;      //  also how long a check waits for a free connection
    //  Local table: sets of LOCAL_WAYS entries, set s guarded by stripe
    //  s % LOCAL_STRIPES.
    local_entry_t *local;
    size_t local_sets;
    pthread_mutex_t stripes[LOCAL_STRIPES];
    int stripe_count; //  initialised mutexes, for destroy
    atomic_uint_fast64_t checks[2][RESULT_COUNT];
    atomic_uint_fast64_t fallbacks[FALLBACK_COUNT];
    atomic_uint_fast64_t local_evictions;
};

static int64_t s_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_inc(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static uint64_t s_read(atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

void rate_limiter_config_defaults(rate_limiter_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->limit = 500;
    cfg->period_ms = 60000;
    cfg->burst = 0;
    cfg->prefix = DEFAULT_PREFIX;
    cfg->redis_timeout_ms = 10;
    cfg->redis_backoff_ms = 1000;
    cfg->redis_pool = 4;
    cfg->local_capacity = 65536;
    cfg->local_limit = 0;
}

//  T = period / limit, rounded up so that a full burst never exceeds the
//  configured rate. Returns 0, or -1 if burst * T is out of range.
static int s_gcra_init(gcra_t *g, int64_t period_ms, int limit, int burst)
{
    int64_t period_us = period_ms * 1000;
    g->interval_us = (period_us + limit - 1) / limit;
    g->burst = burst;
    return g->interval_us * burst > SPAN_MAX_US ? -1 : 0;
}

static int s_sha1_hex(const char *text, char out[41])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text, strlen(text), digest, &len, EVP_sha1(), NULL) != 1 || len != 20)
        return -1;
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

static bool s_prefix_ok(const char *prefix)
{
    size_t len = strlen(prefix);
    if (len > PREFIX_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (prefix[i] < 0x21 || prefix[i] > 0x7e)
            return false;
    return true;
}

rate_limiter_t *rate_limiter_new(const rate_limiter_config_t *cfg, char *err, size_t errlen)
{
    const char *prefix = cfg->prefix ? cfg->prefix : DEFAULT_PREFIX;
    int burst = cfg->burst ? cfg->burst : cfg->limit;
    int local_limit = cfg->local_limit ? cfg->local_limit : cfg->limit;
    if (cfg->limit < 1 || cfg->limit > LIMIT_MAX || cfg->period_ms < 1 ||
        cfg->period_ms > 30LL * 86400 * 1000 || burst < 1 || burst > LIMIT_MAX || local_limit < 1 ||
        local_limit > LIMIT_MAX) {
        snprintf(err, errlen,
                 "invalid rate limit: limit, burst and local_limit must be "
                 "1..10000000 and the period 1 ms..30 days");
        return NULL;
    }
    if (cfg->redis_timeout_ms <= 0 || cfg->redis_backoff_ms < 0 || cfg->redis_pool <= 0 ||
        cfg->redis_pool > REDIS_POOL_SIZE_MAX || cfg->local_capacity == 0 ||
        cfg->local_capacity > LOCAL_CAPACITY_MAX) {
        snprintf(err, errlen,
                 "invalid rate limiter configuration (Redis timeout, back-off, "
                 "pool or local capacity)");
        return NULL;
    }
    if (!s_prefix_ok(prefix)) {
        snprintf(err, errlen,
                 "rate limit key prefix must be at most %d printable characters "
                 "without spaces",
                 PREFIX_MAX);
        return NULL;
    }
    rate_limiter_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->limit = cfg->limit;
    //  The local burst keeps the same window (burst * T) as the shared one,
    //  so a TAT copied from Redis means the same thing locally.
    int64_t local_burst = (int64_t)burst * local_limit / cfg->limit;
    if (s_gcra_init(&self->redis_gcra, cfg->period_ms, cfg->limit, burst) != 0 ||
        s_gcra_init(&self->local_gcra, cfg->period_ms, local_limit,
                    (int)(local_burst < 1           ? 1
                          : local_burst > LIMIT_MAX ? LIMIT_MAX
                                                    : local_burst)) != 0) {
        snprintf(err, errlen, "invalid rate limit: burst * period / limit exceeds 30 days");
        goto err;
    }
    snprintf(self->prefix, sizeof self->prefix, "%s", prefix);
    self->timeout_ms = cfg->redis_timeout_ms;
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < RESULT_COUNT; r++)
            atomic_init(&self->checks[b][r], 0);
    for (int f = 0; f < FALLBACK_COUNT; f++)
        atomic_init(&self->fallbacks[f], 0);
    atomic_init(&self->local_evictions, 0);
    if (s_sha1_hex(s_script, self->script_sha) != 0) {
        snprintf(err, errlen, "cannot compute the script's SHA-1");
        goto err;
    }

    self->local_sets = (cfg->local_capacity + LOCAL_WAYS - 1) / LOCAL_WAYS;
    self->local = calloc(self->local_sets * LOCAL_WAYS, sizeof *self->local);
    if (!self->local) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    for (int i = 0; i < LOCAL_STRIPES; i++) {
        pthread_mutex_init(&self->stripes[i], NULL);
        self->stripe_count++;
    }
    if (cfg->redis_url && *cfg->redis_url) {
        self->redis = redis_pool_new(cfg->redis_url, cfg->redis_timeout_ms, cfg->redis_backoff_ms,
                                     cfg->redis_pool, "rate limiter", err, errlen);
        if (!self->redis)
            goto err;
    }
    return self;
err:
    rate_limiter_destroy(&self);
    return NULL;
}

void rate_limiter_destroy(rate_limiter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rate_limiter_t *self = *self_p;
    redis_pool_destroy(&self->redis);
    for (int i = 0; i < self->stripe_count; i++)
        pthread_mutex_destroy(&self->stripes[i]);
    free(self->local);
    free(self);
    *self_p = NULL;
}

//  --- GCRA ----------------------------------------------------------------

static int64_t s_ceil_ms(int64_t us)
{
    return us <= 0 ? 0 : (us + 999) / 1000;
}

static void s_fill(rate_limiter_result_t *result, bool allowed, int64_t remaining, int64_t reset_us,
                   int64_t retry_us, int burst, rate_limiter_backend_t backend)
{
    result->allowed = allowed;
    result->limit = burst;
    result->remaining = (int)(remaining < 0 ? 0 : remaining > burst ? burst : remaining);
    result->reset_after_ms = s_ceil_ms(reset_us);
    result->retry_after_ms = allowed ? 0 : s_ceil_ms(retry_us) > 0 ? s_ceil_ms(retry_us) : 1;
    result->backend = backend;
}

//  One GCRA step at now for a user whose TAT is tat (0 = unknown). Fills
//  result; returns true and the new TAT in *new_tat if allowed. The same
//  arithmetic as the Lua script.
static bool s_gcra(const gcra_t *g, int64_t tat, int64_t now, int64_t *new_tat,
                   rate_limiter_result_t *result)
{
    if (tat < now)
        tat = now;
    int64_t span = g->interval_us * g->burst;
    int64_t next = tat + g->interval_us;
    int64_t allow_at = next - span;
    if (now < allow_at) {
        s_fill(result, false, 0, tat - now, allow_at - now, g->burst, RATE_LIMITER_LOCAL);
        return false;
    }
    *new_tat = next;
    s_fill(result, true, (span - (next - now)) / g->interval_us, next - now, 0, g->burst,
           RATE_LIMITER_LOCAL);
    return true;
}

//  --- local table ---------------------------------------------------------

//  Returns id's entry in its set, or the entry to replace (an empty or
//  expired one, else the one with the smallest TAT), with *found telling
//  which. The caller holds the set's stripe.
static local_entry_t *s_local_find(rate_limiter_t *self, uint64_t id, bool *found)
{
    local_entry_t *set = &self->local[(id % self->local_sets) * LOCAL_WAYS];
    local_entry_t *victim = &set[0];
    for (int w = 0; w < LOCAL_WAYS; w++) {
        if (set[w].tat_us != 0 && set[w].id == id) {
            *found = true;
            return &set[w];
        }
        if (set[w].tat_us < victim->tat_us)
            victim = &set[w];
    }
    *found = false;
    return victim;
}

static pthread_mutex_t *s_stripe(rate_limiter_t *self, uint64_t id)
{
    return &self->stripes[(id % self->local_sets) % LOCAL_STRIPES];
}

//  Stores tat as id's TAT, replacing another user's entry if need be.
//  Must hold the stripe.
static void s_local_put(rate_limiter_t *self, local_entry_t *entry, bool found, uint64_t id,
                        int64_t tat, int64_t now)
{
    if (!found && entry->tat_us > now)
        s_inc(&self->local_evictions);
    entry->id = id;
    entry->tat_us = tat;
}

static void s_local_check(rate_limiter_t *self, uint64_t id, rate_limiter_result_t *result)
{
    pthread_mutex_t *stripe = s_stripe(self, id);
    pthread_mutex_lock(stripe);
    int64_t now = s_mono_us();
    bool found;
    local_entry_t *entry = s_local_find(self, id, &found);
    int64_t new_tat = 0;
    if (s_gcra(&self->local_gcra, found ? entry->tat_us : 0, now, &new_tat, result))
        s_local_put(self, entry, found, id, new_tat, now);
    pthread_mutex_unlock(stripe);
}

//  Copies a decision of Redis into the local table: the budget is full
//  again reset_us from now.
static void s_local_mirror(rate_limiter_t *self, uint64_t id, int64_t reset_us)
{
    pthread_mutex_t *stripe = s_stripe(self, id);
    pthread_mutex_lock(stripe);
    int64_t now = s_mono_us();
    bool found;
    local_entry_t *entry = s_local_find(self, id, &found);
    if (reset_us > 0)
        s_local_put(self, entry, found, id, now + reset_us, now);
    else if (found)
        entry->tat_us = now; //  full budget: as good as empty
    pthread_mutex_unlock(stripe);
}

//  --- Redis connections ---------------------------------------------------

//  Runs the script for key. Returns 0 with {allowed, remaining, reset_us,
//  retry_us} in out; -1 if the connection failed (the caller drops it);
//  -2 on an error or malformed reply (reason in why).
static int s_redis_eval(rate_limiter_t *self, redisContext *ctx, const char *key, int64_t out[4],
                        char *why, size_t whylen)
{
    char interval[24], burst[24];
    snprintf(interval, sizeof interval, "%" PRId64, self->redis_gcra.interval_us);
    snprintf(burst, sizeof burst, "%d", self->redis_gcra.burst);
    const char *argv[6] = {"EVALSHA", self->script_sha, "1", key, interval, burst};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    redisReply *reply = redisCommandArgv(ctx, 6, argv, lens);
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        //  Redis restarted or its script cache was flushed: EVAL runs the
        //  script and caches it again, so the next EVALSHA finds it.
        freeReplyObject(reply);
        argv[0] = "EVAL";
        argv[1] = s_script;
        lens[0] = 4;
        lens[1] = sizeof s_script - 1;
        reply = redisCommandArgv(ctx, 6, argv, lens);
    }
    if (!reply)
        return -1;
    int rc = -2;
    if (reply->type == REDIS_REPLY_ERROR)
        snprintf(why, whylen, "%.150s", reply->str);
    else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
        snprintf(why, whylen, "unexpected reply to the rate limit script");
    else {
        rc = 0;
        for (int i = 0; i < 4; i++) {
            if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
                snprintf(why, whylen, "unexpected reply to the rate limit script");
                rc = -2;
                break;
            }
            out[i] = reply->element[i]->integer;
        }
    }
    freeReplyObject(reply);
    return rc;
}

//  Decides through Redis. Returns 0 with the result filled, or -1 with the
//  reason for deciding locally in *reason.
static int s_redis_check(rate_limiter_t *self, const char *key, uint64_t id,
                         rate_limiter_result_t *result, int *reason)
{
    //  Waits for a free connection at most the timeout (a stalled Redis
    //  holds every connection that long), then decides locally rather
    //  than queue.
    redis_pool_miss_t miss;
    redis_pool_slot_t *slot = redis_pool_acquire(self->redis, self->timeout_ms, &miss);
    if (!slot) {
        *reason = miss == REDIS_POOL_BUSY             ? FALLBACK_BUSY
                  : miss == REDIS_POOL_CONNECT_FAILED ? FALLBACK_ERROR
                                                      : FALLBACK_DOWN;
        return -1;
    }
    int64_t out[4];
    char why[160];
    int rc = s_redis_eval(self, redis_pool_context(slot), key, out, why, sizeof why);
    if (rc == -1)
        redis_pool_fail(self->redis, slot, "EVALSHA");
    redis_pool_release(self->redis, &slot);
    if (rc == -2)
        //  Redis answers but not as it should (OOM, READONLY after a
        //  failover, BUSY, a foreign value under our key): no decision from
        //  it for a back-off either.
        redis_pool_down(self->redis, "EVALSHA", why);
    if (rc != 0) {
        *reason = FALLBACK_ERROR;
        return -1;
    }
    redis_pool_ok(self->redis);
    s_fill(result, out[0] == 1, out[1], out[2], out[3], self->redis_gcra.burst, RATE_LIMITER_REDIS);
    s_local_mirror(self, id, out[2]);
    return 0;
}

//  --- public --------------------------------------------------------------

static bool s_plain_id(const unsigned char *id, size_t len)
{
    if (len == 0 || len > PLAIN_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

//  The id's SHA-256 (the local table's id, and the Redis key of an id that
//  is not plain) and its Redis key. Returns 0, or -1 if out is too small
//  or hashing failed.
static int s_identify(rate_limiter_t *self, const void *user, size_t len, uint64_t *id, char *out,
                      size_t outlen)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest(user, len, digest, &digest_len, EVP_sha256(), NULL) != 1 || digest_len < 16)
        return -1;
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | digest[i];
    *id = h;
    int written;
    if (s_plain_id(user, len))
        written = snprintf(out, outlen, "%su:%.*s", self->prefix, (int)len, (const char *)user);
    else {
        char hex[33];
        for (size_t i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        written = snprintf(out, outlen, "%sh:%s", self->prefix, hex);
    }
    return written < 0 || (size_t)written >= outlen ? -1 : 0;
}

int rate_limiter_check(rate_limiter_t *self, const void *user, size_t len,
                       rate_limiter_result_t *result)
{
    memset(result, 0, sizeof *result);
    char key[PREFIX_MAX + PLAIN_ID_MAX + 8];
    uint64_t id;
    if (!user || len == 0 || s_identify(self, user, len, &id, key, sizeof key) != 0)
        return -1;
    int reason = FALLBACK_NONE;
    if (self->redis) {
        if (s_redis_check(self, key, id, result, &reason) == 0) {
            s_inc(&self->checks[RATE_LIMITER_REDIS]
                               [result->allowed ? RESULT_ALLOWED : RESULT_REFUSED]);
            return 0;
        }
        s_inc(&self->fallbacks[reason]);
    }
    s_local_check(self, id, result);
    s_inc(&self->checks[RATE_LIMITER_LOCAL][result->allowed ? RESULT_ALLOWED : RESULT_REFUSED]);
    return 0;
}

int rate_limiter_key(rate_limiter_t *self, const void *user, size_t len, char *out, size_t outlen)
{
    uint64_t id;
    if (!user || len == 0 || !out || outlen == 0)
        return -1;
    return s_identify(self, user, len, &id, out, outlen);
}

bool rate_limiter_redis_up(rate_limiter_t *self)
{
    return self->redis && redis_pool_up(self->redis);
}

const char *rate_limiter_backend_name(rate_limiter_backend_t backend)
{
    return backend == RATE_LIMITER_REDIS ? "redis" : "local";
}

void rate_limiter_stats(rate_limiter_t *self, rate_limiter_stats_t *stats)
{
    stats->redis_allowed = s_read(&self->checks[RATE_LIMITER_REDIS][RESULT_ALLOWED]);
    stats->redis_refused = s_read(&self->checks[RATE_LIMITER_REDIS][RESULT_REFUSED]);
    stats->local_allowed = s_read(&self->checks[RATE_LIMITER_LOCAL][RESULT_ALLOWED]);
    stats->local_refused = s_read(&self->checks[RATE_LIMITER_LOCAL][RESULT_REFUSED]);
    stats->fallback_down = s_read(&self->fallbacks[FALLBACK_DOWN]);
    stats->fallback_error = s_read(&self->fallbacks[FALLBACK_ERROR]);
    stats->fallback_busy = s_read(&self->fallbacks[FALLBACK_BUSY]);
    stats->redis_errors = self->redis ? redis_pool_errors(self->redis) : 0;
    stats->local_evictions = s_read(&self->local_evictions);
}

int rate_limiter_metrics_write(rate_limiter_t *self, FILE *out)
{
    fputs("# HELP recsd_rate_limit_checks_total Rate limit decisions, by the backend that "
          "decided and the result.\n# TYPE recsd_rate_limit_checks_total counter\n",
          out);
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < RESULT_COUNT; r++)
            fprintf(out,
                    "recsd_rate_limit_checks_total{backend=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                    s_backends[b], s_results[r], (uint64_t)s_read(&self->checks[b][r]));
    fputs("# HELP recsd_rate_limit_fallbacks_total Decisions made locally although Redis is "
          "configured, by reason.\n# TYPE recsd_rate_limit_fallbacks_total counter\n",
          out);
    for (int f = 0; f < FALLBACK_COUNT; f++)
        fprintf(out, "recsd_rate_limit_fallbacks_total{reason=\"%s\"} %" PRIu64 "\n",
                s_fallbacks[f], (uint64_t)s_read(&self->fallbacks[f]));
    fprintf(out,
            "# HELP recsd_rate_limit_redis_errors_total Failed Redis connects and commands of "
            "the rate limiter.\n"
            "# TYPE recsd_rate_limit_redis_errors_total counter\n"
            "recsd_rate_limit_redis_errors_total %" PRIu64 "\n",
            (uint64_t)(self->redis ? redis_pool_errors(self->redis) : 0));
    fprintf(out,
            "# HELP recsd_rate_limit_redis_up 1 if the rate limiter's last Redis call "
            "succeeded.\n"
            "# TYPE recsd_rate_limit_redis_up gauge\n"
            "recsd_rate_limit_redis_up %d\n",
            rate_limiter_redis_up(self) ? 1 : 0);
    fprintf(out,
            "# HELP recsd_rate_limit_local_evictions_total Users with a budget in use pushed out "
            "of the full local table.\n"
            "# TYPE recsd_rate_limit_local_evictions_total counter\n"
            "recsd_rate_limit_local_evictions_total %" PRIu64 "\n",
            (uint64_t)s_read(&self->local_evictions));
    return ferror(out) ? -1 : 0;
}
