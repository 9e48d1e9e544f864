/*  rate_limiter.h: per-user request rate limiting shared by every gateway
    process and replica through Redis, with an in-process fallback.

    Algorithm: GCRA (the generic cell rate algorithm, a leaky bucket that
    stores one number per user). A user may make `limit` requests per
    `period`, i.e. one every T = period / limit (the emission interval;
    500/min gives T = 120 ms), and up to `burst` of them at once. The state
    is the user's theoretical arrival time (TAT): a request at `now` is
    allowed when max(TAT, now) + T - now <= burst * T, and then moves TAT to
    max(TAT, now) + T. A refused request changes nothing.

    What "500 per minute, burst 500" (the defaults) means exactly: a user
    with a full budget can make 500 requests at once; the 501st is refused
    if it comes less than T (120 ms) after the first of them, and from then
    on one more request is allowed every 120 ms. In general, from a full
    budget, at most burst + floor(elapsed / T) requests pass in `elapsed`
    time, so in any one minute at most 500 + 499 (a full burst at the start
    of the minute and the refill during it). This is the usual reading of
    a rate limit with a burst (the budget refills continuously, not at
    fixed minute boundaries, so there is no double burst at a window edge
    for free). A test of "the 501st request gets 429" must send the 501
    requests within T of each other, or use a longer period (500 per hour:
    T = 7.2 s) so that the refill during the test is zero; see
    tests/unit/test_rate_limiter.c. burst = 1 paces requests strictly one
    per T.

    Redis: one EVALSHA round trip per check (EVAL on NOSCRIPT, which also
    loads the script again after a Redis restart or SCRIPT FLUSH). The Lua
    script reads the clock with the Redis server's TIME, not the caller's:
    every replica then judges against the same clock, so a gateway host
    whose clock is ahead (or behind) by d can not take d / T extra requests
    (or starve its users); one clock also makes the stored TAT meaningful
    to every replica. The cost is that a Redis failover to a server whose
    clock differs moves every TAT by that difference, bounded by burst * T
    and healed by the keys' TTL. Redis 5 or later (script effects
    replication; the script asks for it on 3.2 and 4).

    Keys: <prefix>u:<user> when the user id is 1..64 characters of
    [A-Za-z0-9._@-] (readable in redis-cli), else <prefix>h:<32 hex digits
    of the id's SHA-256> (any length, any bytes: binary, spaces, CR/LF,
    ':'). The two forms can not collide ('u:' ids never contain ':').
    Commands are sent as hiredis argv, never formatted. Each key lives only
    until the user's budget is full again (PX = TAT - now), so an idle user
    costs nothing. Every replica must use the same limit, period, burst and
    prefix; two limiters (say, one for reads and one for training) need two
    prefixes.

    Redis down or slow (refused connection, timeout, error reply): the
    check is decided by the local limiter (same algorithm, the process's
    monotonic clock), reported as backend LOCAL; the outage is logged once
    (and its end once), no Redis command is sent for a back-off, then one
    caller probes with a reconnect. Each check costs at most about the
    timeout per step: if no pooled connection is free within the timeout
    (all busy on a slow Redis), the check is decided locally too (reason
    "busy"). The production timeout of 10 ms is far above a healthy round
    trip (about 50 us on loopback), yet short enough for the 200 ms
    budget; one timeout sends the whole process local for the back-off.
    While Redis answers, each decision is copied into the local table, so
    a user who spent the budget just before an outage is still limited
    during it. During an outage each process enforces local_limit (default
    = limit) on its own, so N replicas allow up to N times that in total;
    set local_limit = limit / N to keep the total. What a process admits
    locally during an outage is not written back to Redis when it returns.

    Local table: fixed capacity (entries of 16 bytes, 8-way set
    associative, a mutex per stripe of sets); a user not in a full set
    replaces the entry whose budget is closest to full (smallest TAT; an
    expired entry counts as empty), so a flood of new ids pushes out idle
    users first and heavy users last. Users are told apart by 64 bits of
    the id's SHA-256 (ids can not be chosen to collide).

    Thread safety: every function except _new and _destroy may be called
    from any number of threads at once (the HTTP daemon's pool). Redis is
    used through a small pool of connections, each behind a mutex, with
    the back-off above (lib/redis_pool.h, which also writes the outage's
    log lines, "rate limiter: Redis unavailable ..." and "... reachable
    again").

    Metrics (rate_limiter_metrics_write, for /metrics):
        recsd_rate_limit_checks_total{backend="redis|local",result="allowed|refused"}
        recsd_rate_limit_fallbacks_total{reason="down|error|busy"}
            local decisions although Redis is configured: backing off after
            a failure / this call's command or connect failed / no free
            connection within the timeout
        recsd_rate_limit_redis_errors_total   failed Redis connects and commands
        recsd_rate_limit_redis_up             gauge 0/1, last Redis call succeeded
        recsd_rate_limit_local_evictions_total  live local entries replaced
    Each family is written with its HELP and TYPE lines, so one /metrics
    page can carry one limiter's metrics (a second limiter would need a
    label, which this API does not add).

    Ownership: the caller owns the limiter; the configuration's strings are
    copied by rate_limiter_new; results are plain values.
*/
#ifndef RECSD_RATE_LIMITER_H
#define RECSD_RATE_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rate_limiter_t rate_limiter_t;

typedef struct {
    int limit;             //  requests per period, default 500
    int64_t period_ms;     //  default 60000
    int burst;             //  requests at once, 0 = limit (the default)
    const char *prefix;    //  Redis key prefix, default "recsd:ratelimit:"; NULL = default
    const char *redis_url; //  NULL or "" = local only (backend always LOCAL)
    int redis_timeout_ms;  //  connect, each command, and waiting for a connection; default 10
    int redis_backoff_ms;  //  no Redis traffic after a failure, default 1000
    int redis_pool;        //  connections, default 4
    size_t local_capacity; //  users in the local table, default 65536 (1 MiB)
    int local_limit;       //  per process per period while Redis is down, 0 = limit
} rate_limiter_config_t;

typedef enum {
    RATE_LIMITER_REDIS = 0, //  decided by the shared Redis state
    RATE_LIMITER_LOCAL,     //  decided in process (no Redis configured, or Redis down)
} rate_limiter_backend_t;

typedef struct {
    bool allowed;
    int limit;              //  most requests at once (the burst of the backend that decided);
                            //  for RateLimit-Limit
    int remaining;          //  further requests that would be allowed right now
    int64_t reset_after_ms; //  until the whole burst is available again (>= 0)
    int64_t retry_after_ms; //  until the next request can be allowed: > 0 when refused,
                            //  0 when allowed; Retry-After = ceil(retry_after_ms / 1000) s
    rate_limiter_backend_t backend;
} rate_limiter_result_t;

typedef struct {
    uint64_t redis_allowed, redis_refused;
    uint64_t local_allowed, local_refused;
    uint64_t fallback_down, fallback_error, fallback_busy;
    uint64_t redis_errors;
    uint64_t local_evictions;
} rate_limiter_stats_t;

//  Fills cfg with the defaults above.
void rate_limiter_config_defaults(rate_limiter_config_t *cfg);

//  Returns a limiter, or NULL with the reason in err (bad configuration,
//  unparsable Redis URL, out of memory). Does not connect: an unreachable
//  Redis is not an error here, the first check finds out.
rate_limiter_t *rate_limiter_new(const rate_limiter_config_t *cfg, char *err, size_t errlen);

//  Idempotent, sets *self_p to NULL. No other thread may use the limiter.
void rate_limiter_destroy(rate_limiter_t **self_p);

//  Counts one request of user[0..len) (any bytes, any length >= 1) and
//  fills *result. Returns 0 with a decision (Redis trouble is not an
//  error: the local limiter decides), or -1 if len is 0 or user is NULL
//  (result is then zeroed and not allowed). Blocks for one Redis round
//  trip when Redis is healthy; at worst (Redis stalling) for a few
//  timeouts: waiting for a connection, (re)connecting, the script (and
//  its EVAL retry after NOSCRIPT), each bounded by redis_timeout_ms.
int rate_limiter_check(rate_limiter_t *self, const void *user, size_t len,
                       rate_limiter_result_t *result);

//  Writes the Redis key of user[0..len) into out (NUL-terminated), for
//  tests and for operators. Returns 0, or -1 on bad arguments or if out is
//  too small (256 bytes always suffice).
int rate_limiter_key(rate_limiter_t *self, const void *user, size_t len, char *out, size_t outlen);

//  True when the last Redis command or connect succeeded. Cheap (atomic).
bool rate_limiter_redis_up(rate_limiter_t *self);

//  "redis" or "local".
const char *rate_limiter_backend_name(rate_limiter_backend_t backend);

//  Reads the counters (each atomically; not a consistent snapshot).
void rate_limiter_stats(rate_limiter_t *self, rate_limiter_stats_t *stats);

//  Appends the metrics above, in the text exposition format, to out.
//  Returns 0, or -1 on a write error.
int rate_limiter_metrics_write(rate_limiter_t *self, FILE *out);

#endif
