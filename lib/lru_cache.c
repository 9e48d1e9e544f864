/*  lru_cache.c: sharded LRU map with TTL and droppable groups (see lru_cache.h). */
#include "lru_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct group_t group_t;
typedef struct entry_t entry_t;

struct entry_t {
    entry_t *lru_prev, *lru_next; //  shard's LRU list, head = most recent
    entry_t *grp_prev, *grp_next; //  the group's entries
    entry_t *bucket_next;         //  hash chain
    group_t *group;
    uint64_t hash; //  of (group, key)
    int64_t expires_ms;
    size_t key_len;
    size_t value_len;
    char data[]; //  key, NUL, value, NUL
};

struct group_t {
    group_t *bucket_next;
    entry_t *entries;
    uint64_t hash;
    size_t count;
    char name[];
};

typedef struct {
    pthread_mutex_t mutex;
    entry_t **buckets; //  bucket_mask + 1 chains of entries
    group_t **groups;  //  bucket_mask + 1 chains of groups
    size_t bucket_mask;
    entry_t *lru_head, *lru_tail;
    size_t count, capacity;
    lru_cache_stats_t stats; //  entries unused here: count is the truth
} shard_t;

struct lru_cache_t {
    shard_t *shards;
    size_t shard_count;
    _Atomic int64_t ttl_ms; //  changeable at run time (lru_cache_set_ttl)
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  FNV-1a, 64 bit; seeded so the (group, key) hash continues the group's.
static uint64_t s_fnv(uint64_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_SEED 0xcbf29ce484222325ULL

static uint64_t s_group_hash(const char *group)
{
    return s_fnv(FNV_SEED, group, strlen(group));
}

static uint64_t s_entry_hash(uint64_t group_hash, const char *key)
{
    //  The separator keeps ("ab","c") apart from ("a","bc") beyond the
    //  group pointer comparison that decides equality anyway.
    return s_fnv(s_fnv(group_hash, "\0", 1), key, strlen(key));
}

static shard_t *s_shard(lru_cache_t *self, uint64_t group_hash)
{
    //  The high bits pick the shard, the low bits the bucket, so the two
    //  choices are independent.
    return &self->shards[(group_hash >> 32) % self->shard_count];
}

static group_t *s_group_find(shard_t *shard, const char *name, uint64_t hash)
{
    for (group_t *g = shard->groups[hash & shard->bucket_mask]; g; g = g->bucket_next)
        if (g->hash == hash && strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

static void s_group_unlink_free(shard_t *shard, group_t *group)
{
    group_t **pp = &shard->groups[group->hash & shard->bucket_mask];
    while (*pp != group)
        pp = &(*pp)->bucket_next;
    *pp = group->bucket_next;
    free(group);
}

//  Unlinks entry from every list and frees it. Its group stays, possibly
//  empty: the caller frees an empty group it does not mean to reuse
//  (s_group_release), so a put can never be left holding a freed group.
static void s_entry_remove(shard_t *shard, entry_t *entry)
{
    entry_t **pp = &shard->buckets[entry->hash & shard->bucket_mask];
    while (*pp != entry)
        pp = &(*pp)->bucket_next;
    *pp = entry->bucket_next;

    if (entry->lru_prev)
        entry->lru_prev->lru_next = entry->lru_next;
    else
        shard->lru_head = entry->lru_next;
    if (entry->lru_next)
        entry->lru_next->lru_prev = entry->lru_prev;
    else
        shard->lru_tail = entry->lru_prev;

    group_t *group = entry->group;
    if (entry->grp_prev)
        entry->grp_prev->grp_next = entry->grp_next;
    else
        group->entries = entry->grp_next;
    if (entry->grp_next)
        entry->grp_next->grp_prev = entry->grp_prev;
    group->count--;

    shard->count--;
    free(entry);
}

static void s_group_release(shard_t *shard, group_t *group)
{
    if (group->count == 0)
        s_group_unlink_free(shard, group);
}

static void s_lru_to_front(shard_t *shard, entry_t *entry)
{
    if (shard->lru_head == entry)
        return;
    //  entry is not the head, so it has a predecessor.
    entry->lru_prev->lru_next = entry->lru_next;
    if (entry->lru_next)
        entry->lru_next->lru_prev = entry->lru_prev;
    else
        shard->lru_tail = entry->lru_prev;
    entry->lru_prev = NULL;
    entry->lru_next = shard->lru_head;
    shard->lru_head->lru_prev = entry;
    shard->lru_head = entry;
}

static entry_t *s_entry_find(shard_t *shard, group_t *group, const char *key, uint64_t hash)
{
    for (entry_t *e = shard->buckets[hash & shard->bucket_mask]; e; e = e->bucket_next)
        if (e->hash == hash && e->group == group && strcmp(e->data, key) == 0)
            return e;
    return NULL;
}

lru_cache_t *lru_cache_new(size_t capacity, size_t shards, int64_t ttl_ms)
{
    if (capacity == 0 || shards == 0 || shards > 1024 || ttl_ms <= 0)
        return NULL;
    if (shards > capacity)
        shards = capacity;
    lru_cache_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ttl_ms = ttl_ms;
    self->shards = calloc(shards, sizeof *self->shards);
    if (!self->shards)
        goto err;
    size_t per_shard = (capacity + shards - 1) / shards;
    //  Fixed tables, about one chain per entry at capacity: the cache is
    //  bounded, so it never needs to grow them.
    size_t buckets = 8;
    while (buckets < per_shard)
        buckets *= 2;
    for (size_t i = 0; i < shards; i++) {
        shard_t *shard = &self->shards[i];
        shard->capacity = per_shard;
        shard->bucket_mask = buckets - 1;
        shard->buckets = calloc(buckets, sizeof(entry_t *));
        shard->groups = calloc(buckets, sizeof(group_t *));
        if (!shard->buckets || !shard->groups || pthread_mutex_init(&shard->mutex, NULL) != 0) {
            free(shard->buckets);
            free(shard->groups);
            goto err;
        }
        self->shard_count++;
    }
    return self;
err:
    lru_cache_destroy(&self);
    return NULL;
}

void lru_cache_destroy(lru_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lru_cache_t *self = *self_p;
    for (size_t i = 0; i < self->shard_count; i++) {
        shard_t *shard = &self->shards[i];
        while (shard->lru_head) {
            group_t *group = shard->lru_head->group;
            s_entry_remove(shard, shard->lru_head);
            s_group_release(shard, group);
        }
        free(shard->buckets);
        free(shard->groups);
        pthread_mutex_destroy(&shard->mutex);
    }
    free(self->shards);
    free(self);
    *self_p = NULL;
}

int lru_cache_put(lru_cache_t *self, const char *group_name, const char *key, const void *value,
                  size_t len)
{
    uint64_t ghash = s_group_hash(group_name);
    uint64_t hash = s_entry_hash(ghash, key);
    size_t key_len = strlen(key);
    size_t name_len = strlen(group_name);
    //  Allocate before taking the lock: the critical section stays short.
    entry_t *entry = malloc(sizeof *entry + key_len + 1 + len + 1);
    group_t *spare = malloc(sizeof *spare + name_len + 1);
    if (!entry || !spare) {
        free(entry);
        free(spare);
        return -1;
    }
    memcpy(entry->data, key, key_len + 1);
    if (len)
        memcpy(entry->data + key_len + 1, value, len);
    entry->data[key_len + 1 + len] = '\0';
    entry->key_len = key_len;
    entry->value_len = len;
    entry->hash = hash;
    entry->expires_ms = s_now_ms() + atomic_load_explicit(&self->ttl_ms, memory_order_relaxed);

    shard_t *shard = s_shard(self, ghash);
    pthread_mutex_lock(&shard->mutex);
    group_t *group = s_group_find(shard, group_name, ghash);
    entry_t *old = group ? s_entry_find(shard, group, key, hash) : NULL;
    if (old)
        s_entry_remove(shard, old); //  group kept, even if now empty
    //  Make room: expired entries at the tail go first, then live ones.
    int64_t now = s_now_ms();
    while (shard->count >= shard->capacity && shard->lru_tail) {
        entry_t *victim = shard->lru_tail;
        if (victim->expires_ms <= now)
            shard->stats.expirations++;
        else
            shard->stats.evictions++;
        group_t *victim_group = victim->group;
        s_entry_remove(shard, victim);
        if (victim_group != group)
            s_group_release(shard, victim_group);
    }
    if (!group) {
        group = spare;
        spare = NULL;
        memcpy(group->name, group_name, name_len + 1);
        group->hash = ghash;
        group->count = 0;
        group->entries = NULL;
        group_t **chain = &shard->groups[ghash & shard->bucket_mask];
        group->bucket_next = *chain;
        *chain = group;
    }
    entry->group = group;
    entry->grp_prev = NULL;
    entry->grp_next = group->entries;
    if (group->entries)
        group->entries->grp_prev = entry;
    group->entries = entry;
    group->count++;

    entry_t **chain = &shard->buckets[hash & shard->bucket_mask];
    entry->bucket_next = *chain;
    *chain = entry;

    entry->lru_prev = NULL;
    entry->lru_next = shard->lru_head;
    if (shard->lru_head)
        shard->lru_head->lru_prev = entry;
    shard->lru_head = entry;
    if (!shard->lru_tail)
        shard->lru_tail = entry;
    shard->count++;
    pthread_mutex_unlock(&shard->mutex);
    free(spare);
    return 0;
}

char *lru_cache_get(lru_cache_t *self, const char *group_name, const char *key, size_t *len)
{
    uint64_t ghash = s_group_hash(group_name);
    uint64_t hash = s_entry_hash(ghash, key);
    shard_t *shard = s_shard(self, ghash);
    char *copy = NULL;
    pthread_mutex_lock(&shard->mutex);
    group_t *group = s_group_find(shard, group_name, ghash);
    entry_t *entry = group ? s_entry_find(shard, group, key, hash) : NULL;
    if (entry && entry->expires_ms <= s_now_ms()) {
        shard->stats.expirations++;
        s_entry_remove(shard, entry);
        s_group_release(shard, group);
        entry = NULL;
    }
    if (entry) {
        s_lru_to_front(shard, entry);
        //  Copied under the lock: another thread may replace the entry
        //  as soon as it is released. Values are small (a few KB).
        copy = malloc(entry->value_len + 1);
        if (copy) {
            memcpy(copy, entry->data + entry->key_len + 1, entry->value_len + 1);
            *len = entry->value_len;
        }
    }
    if (copy)
        shard->stats.hits++;
    else
        shard->stats.misses++;
    pthread_mutex_unlock(&shard->mutex);
    return copy;
}

size_t lru_cache_drop_group(lru_cache_t *self, const char *group_name)
{
    uint64_t ghash = s_group_hash(group_name);
    shard_t *shard = s_shard(self, ghash);
    size_t dropped = 0;
    pthread_mutex_lock(&shard->mutex);
    group_t *group = s_group_find(shard, group_name, ghash);
    if (group) {
        dropped = group->count;
        entry_t *next;
        for (entry_t *e = group->entries; e; e = next) {
            next = e->grp_next;
            s_entry_remove(shard, e);
        }
        s_group_release(shard, group);
        shard->stats.dropped += dropped;
    }
    pthread_mutex_unlock(&shard->mutex);
    return dropped;
}

void lru_cache_stats(lru_cache_t *self, lru_cache_stats_t *stats)
{
    memset(stats, 0, sizeof *stats);
    for (size_t i = 0; i < self->shard_count; i++) {
        shard_t *shard = &self->shards[i];
        pthread_mutex_lock(&shard->mutex);
        stats->hits += shard->stats.hits;
        stats->misses += shard->stats.misses;
        stats->evictions += shard->stats.evictions;
        stats->expirations += shard->stats.expirations;
        stats->dropped += shard->stats.dropped;
        stats->entries += shard->count;
        pthread_mutex_unlock(&shard->mutex);
    }
}

void lru_cache_set_ttl(lru_cache_t *self, int64_t ttl_ms)
{
    if (ttl_ms > 0)
        atomic_store_explicit(&self->ttl_ms, ttl_ms, memory_order_relaxed);
}
