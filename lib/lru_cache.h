/*  lru_cache.h: a thread-safe, sharded, bounded LRU map of byte strings
    with a TTL, whose entries belong to groups that can be dropped at once.

    An entry is addressed by (group, key), both NUL-terminated strings; the
    value is an opaque byte string. All entries of one group live in one
    shard (the shard is chosen by the group's hash), so dropping a group
    locks one shard and touches only that group's entries (a per-group
    list, not a scan). Each shard has its own mutex, its own LRU order and
    capacity ceil(capacity / shards); a put into a full shard evicts that
    shard's least recently used entry. An entry older than the TTL is never
    returned (it is freed when met, or when it reaches the LRU tail).

    Used by the gateway's recommendation cache (group = user, key = variant
    of the list), but knows nothing about recommendations.

    Ownership: the caller owns the cache; put copies group, key and value;
    get returns a copy the caller frees.
*/
#ifndef RECSD_LRU_CACHE_H
#define RECSD_LRU_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lru_cache_t lru_cache_t;

typedef struct {
    uint64_t hits;        //  get found a live entry
    uint64_t misses;      //  get found nothing, or only an expired entry
    uint64_t evictions;   //  live entries pushed out by the capacity bound
    uint64_t expirations; //  entries freed because their TTL had passed
    uint64_t dropped;     //  entries freed by lru_cache_drop_group
    uint64_t entries;     //  entries held now (expired ones not yet freed included)
} lru_cache_stats_t;

//  capacity: total entries (>= 1); shards: mutex-protected partitions
//  (1..1024, fewer if capacity is smaller); ttl_ms: lifetime of an entry
//  from its put (> 0). Returns NULL on bad arguments or out of memory.
lru_cache_t *lru_cache_new(size_t capacity, size_t shards, int64_t ttl_ms);

//  Idempotent, sets *self_p to NULL. No other thread may use the cache.
void lru_cache_destroy(lru_cache_t **self_p);

//  Stores a copy of value[0..len) under (group, key), replacing any entry
//  there and making it the most recently used. Returns 0, or -1 when out
//  of memory (the cache is then unchanged except that an old entry under
//  the same address is gone).
int lru_cache_put(lru_cache_t *self, const char *group, const char *key, const void *value,
                  size_t len);

//  Returns a malloc'd copy of the live value under (group, key), with a NUL
//  byte after it (not counted in *len), and marks it most recently used;
//  the caller frees it. NULL on a miss, an expired entry or out of memory.
char *lru_cache_get(lru_cache_t *self, const char *group, const char *key, size_t *len);

//  Frees every entry of group. Returns how many there were.
size_t lru_cache_drop_group(lru_cache_t *self, const char *group);

//  Entries put from now on live ttl_ms (> 0; other values are ignored);
//  entries already there keep their expiry. Thread-safe.
void lru_cache_set_ttl(lru_cache_t *self, int64_t ttl_ms);

//  Sums the shards' counters (each shard read under its lock).
void lru_cache_stats(lru_cache_t *self, lru_cache_stats_t *stats);

#endif
