/*  gateway_cache.h: the gateway's two-level cache of rendered recommendation
    lists: an in-process LRU (level 1) in front of Redis (level 2).

    Level 1, in process: lru_cache, sharded with a mutex per shard, bounded
    by entry count (default 10,000) and TTL (default 60 s: shorter than
    Redis', because another gateway replica's level 1 is only invalidated
    by its own subscription to the ingestors' notices, so a short TTL bounds
    how stale a replica that missed a notice can be).

    Level 2, Redis (TTL 1 h by default). Key schema:
        recsd:recs:<user>                     HASH, field <variant>, value "<ms>\n<body>"
        recsd:recs-segment:<segment>          HASH, same layout, for lists shared by a segment
    A user whose list is their segment's holds "@<segment>" in their own
    hash instead of a copy (gateway_cache_set_user_segment).
    One HASH per user means the ingestor's `DEL recsd:recs:<user>` after a
    stored batch drops all of that user's lists at once. A set does
    HSET + EXPIRE (refreshing the key's TTL), so each field also carries
    its write time (Unix ms) and a get treats a field older than the TTL as
    a miss: no list outlives the TTL because a sibling was written later.
    A hash that grows past 64 fields (many exclude lists) is deleted and
    restarted on the next set. Segments use "recsd:recs-segment:" rather
    than "recsd:recs:segment:" because user ids may contain ':' and a user
    called "segment:x" must not share a key with segment x.

    <variant> is an opaque string from the caller that must cover everything
    that changes the list (type, limit, exclude, explain, A/B variant);
    gateway_cache_variant() builds one.

    Writes to Redis are behind the request: a set stores in level 1 at
    once and queues the Redis write (bounded, 4096; dropped and counted
    when full) for one writer thread, which pipelines up to 64 of them per
    round trip, letting each batch gather for up to 2 ms after its first
    write (a wake-up per batch, not per miss). A miss then costs the request one Redis round trip
   (the lookup) instead of two. Invalidating a user also drops that user's queued writes, so a list
   computed before an interaction cannot land in Redis after the ingestor's DEL.

    Redis down or slow: every command has a short timeout (default 20 ms);
    after a failure no command is sent for a back-off (default 1 s), then
    one caller probes with a reconnect. Meanwhile a get is a miss and a set
    is skipped, never an error. gateway_cache_redis_up() is for readiness.
    With no Redis URL the cache is level 1 only and reports Redis down.

    Thread safety: every function may be called from any thread at once
    (the HTTP daemon's pool): level 1 locks one shard, Redis uses a small
    pool of connections, each behind its own mutex.

    Metrics (rendered by gateway_cache_metrics_write):
        recsd_gateway_cache_requests_total{level="l1|redis|segment",result="hit|miss|error"}
        recsd_gateway_cache_evictions_total{reason="capacity|expired|invalidated"}
        recsd_gateway_cache_entries                      gauge, level 1
        recsd_gateway_cache_redis_errors_total           failed Redis commands/connects
        recsd_gateway_cache_redis_up                     gauge 0/1
        recsd_gateway_cache_redis_writes_total{result="written|dropped|error"}
        recsd_gateway_cache_redis_write_queue            gauge, writes waiting
    "l1" counts level-1 lookups of user and segment lists; "redis" and
    "segment" count Redis lookups of user and segment lists; result "error"
    is a Redis lookup that failed or was skipped while Redis was down.

    Ownership: the gateway context owns the one instance; returned bodies
    belong to the caller (free()).
*/
#ifndef RECSD_GATEWAY_CACHE_H
#define RECSD_GATEWAY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trace.h"

typedef struct gateway_cache_t gateway_cache_t;

typedef struct {
    size_t l1_capacity;    //  entries, default 10000
    size_t l1_shards;      //  default 16
    int64_t l1_ttl_ms;     //  default 60000
    const char *redis_url; //  borrowed during gateway_cache_new; NULL or "" = no level 2
    int redis_ttl_s;       //  user lists, default 3600
    int segment_ttl_s;     //  segment lists, default 3600
    int redis_timeout_ms;  //  connect and per command, default 20
    int redis_backoff_ms;  //  no Redis traffic after a failure, default 1000
    int redis_pool;        //  connections, default 4
} gateway_cache_config_t;

typedef enum {
    GATEWAY_CACHE_MISS = 0,
    GATEWAY_CACHE_L1,    //  found in process
    GATEWAY_CACHE_REDIS, //  found in Redis (and now also in level 1)
} gateway_cache_level_t;

//  Fills cfg with the defaults above (redis_url NULL).
void gateway_cache_config_defaults(gateway_cache_config_t *cfg);

//  Returns a cache, or NULL with the reason in err (bad configuration,
//  unparsable Redis URL, out of memory). Does not connect: an unreachable
//  Redis is not an error here, the first use finds out.
gateway_cache_t *gateway_cache_new(const gateway_cache_config_t *cfg, char *err, size_t errlen);

//  Idempotent, sets *self_p to NULL. No other thread may use the cache.
void gateway_cache_destroy(gateway_cache_t **self_p);

//  Looks up user's list for variant: level 1, then Redis (a Redis hit is
//  copied into level 1). Returns a malloc'd body (NUL-terminated, *len
//  excludes the NUL) the caller frees, and the level in *level (may be
//  NULL); NULL on a miss, Redis down, bad arguments (empty user or
//  variant) or out of memory. Never blocks longer than about the Redis
//  timeout.
char *gateway_cache_get_user(gateway_cache_t *self, const char *user, const char *variant,
                             size_t *len, gateway_cache_level_t *level);

//  gateway_cache_get_user with spans: each lookup is a child of trace
//  ("cache.lru", INTERNAL; "cache.redis", CLIENT; attribute
//  recsd.cache.result = hit|miss|error). trace NULL: untraced, no cost.
char *gateway_cache_get_user_traced(gateway_cache_t *self, const char *user, const char *variant,
                                    size_t *len, gateway_cache_level_t *level, trace_span_t *trace);

//  Stores body[0..len) as user's list for variant in level 1 and Redis.
//  Failures (Redis down, out of memory) are counted, not reported.
void gateway_cache_set_user(gateway_cache_t *self, const char *user, const char *variant,
                            const void *body, size_t len);

//  The serving configuration's lifetimes, from now on: Redis user lists
//  (redis_ttl_s > 0) and level 1 (l1_ttl_ms; 0 = effectively off).
//  Thread-safe.
void gateway_cache_set_ttls(gateway_cache_t *self, int redis_ttl_s, int64_t l1_ttl_ms);

//  Waits until every queued Redis write has been attempted, at most
//  timeout_ms. Returns 0, or -1 on timeout. For tests and orderly stops.
int gateway_cache_flush(gateway_cache_t *self, int timeout_ms);

//  Stores body[0..len) as segment's list for variant, and for user a
//  reference to it ("@<segment>" in the user's hash), so that every user
//  of the segment shares one copy (segment TTL) while an interaction of
//  the user still drops theirs (the ingestor's DEL of the user's key).
//  gateway_cache_get_user follows the reference.
void gateway_cache_set_user_segment(gateway_cache_t *self, const char *user, const char *variant,
                                    const char *segment, const void *body, size_t len);

//  The same for a segment's list (users with little history).
char *gateway_cache_get_segment(gateway_cache_t *self, const char *segment, const char *variant,
                                size_t *len, gateway_cache_level_t *level);
void gateway_cache_set_segment(gateway_cache_t *self, const char *segment, const char *variant,
                               const void *body, size_t len);

//  Drops every level-1 list of user (all variants). Redis is left alone:
//  the ingestor deletes the user's key there. Returns how many were dropped.
size_t gateway_cache_invalidate_user(gateway_cache_t *self, const char *user);

//  True when the last Redis command got its answer. Cheap (atomic).
bool gateway_cache_redis_up(gateway_cache_t *self);

//  Sends PING through the pool (respecting the back-off) so that the flag
//  is fresh without traffic; for the readiness probe. Returns 0 if Redis
//  answered, -1 with the reason in detail.
int gateway_cache_redis_probe(gateway_cache_t *self, char *detail, size_t detaillen);

//  Builds the variant string for a request: type, limit, explain, an
//  order-insensitive hash of the exclude list (comma-separated ids, may be
//  NULL or ""), and ab_variant (experiment and variant as the caller
//  names them, may be NULL). Returns 0, or -1 if out is too small.
int gateway_cache_variant(char *out, size_t outlen, const char *type, int limit, bool explain,
                          const char *exclude, const char *ab_variant);

//  Appends the metrics above, in the text exposition format, to out.
//  Returns 0, or -1 on a write error.
int gateway_cache_metrics_write(gateway_cache_t *self, FILE *out);

//  Counter reads for tests and logs. level is "l1", "redis" or "segment";
//  result "hit", "miss" or "error"; anything else reads 0.
uint64_t gateway_cache_count(gateway_cache_t *self, const char *level, const char *result);
uint64_t gateway_cache_redis_errors(gateway_cache_t *self);

#endif
