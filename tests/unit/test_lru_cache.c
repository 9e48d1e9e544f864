/*  test_lru_cache.c: bound, LRU order, TTL, groups and concurrent use of
    the sharded LRU (lib/lru_cache.c). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leak_check.h"
#include "lru_cache.h"

TestSuite(lru_cache, .fini = leak_check_fini);

static void s_put(lru_cache_t *c, const char *group, const char *key, const char *value)
{
    cr_assert_eq(lru_cache_put(c, group, key, value, strlen(value)), 0);
}

//  Asserts that (group, key) holds value, or nothing when value is NULL.
static void s_expect(lru_cache_t *c, const char *group, const char *key, const char *value)
{
    size_t len = 0;
    char *got = lru_cache_get(c, group, key, &len);
    if (!value) {
        cr_assert_null(got, "%s/%s should be absent, holds %s", group, key, got);
        return;
    }
    cr_assert_not_null(got, "%s/%s missing", group, key);
    cr_assert_eq(len, strlen(value));
    cr_assert_str_eq(got, value);
    free(got);
}

Test(lru_cache, refuses_bad_arguments)
{
    cr_assert_null(lru_cache_new(0, 1, 1000));
    cr_assert_null(lru_cache_new(10, 0, 1000));
    cr_assert_null(lru_cache_new(10, 2000, 1000));
    cr_assert_null(lru_cache_new(10, 1, 0));
    lru_cache_t *c = lru_cache_new(2, 16, 1000); //  shards capped at capacity
    cr_assert_not_null(c);
    lru_cache_destroy(&c);
    cr_assert_null(c);
    lru_cache_destroy(&c);
}

Test(lru_cache, bound_evicts_least_recently_used)
{
    lru_cache_t *c = lru_cache_new(4, 1, 60000);
    s_put(c, "u1", "a", "A");
    s_put(c, "u2", "b", "B");
    s_put(c, "u3", "c", "C");
    s_put(c, "u1", "d", "D");
    s_expect(c, "u1", "a", "A"); //  a is now the most recent, b the least
    s_put(c, "u4", "e", "E");
    s_expect(c, "u2", "b", NULL);
    s_expect(c, "u1", "a", "A");
    s_expect(c, "u3", "c", "C");
    s_expect(c, "u1", "d", "D");
    s_expect(c, "u4", "e", "E");
    //  Order is now a, c, d, e (least to most recent): two more puts push
    //  out a and c.
    s_put(c, "u5", "f", "F");
    s_put(c, "u5", "g", "G");
    s_expect(c, "u1", "a", NULL);
    s_expect(c, "u3", "c", NULL);
    s_expect(c, "u1", "d", "D");
    lru_cache_stats_t st;
    lru_cache_stats(c, &st);
    cr_assert_eq(st.entries, 4);
    cr_assert_eq(st.evictions, 3);
    lru_cache_destroy(&c);
}

Test(lru_cache, replace_keeps_one_entry_and_binary_values)
{
    lru_cache_t *c = lru_cache_new(8, 1, 60000);
    s_put(c, "u", "k", "old");
    s_put(c, "u", "k", "newer value");
    s_expect(c, "u", "k", "newer value");
    //  Same key under another group, and ("ab","c") vs ("a","bc").
    s_put(c, "v", "k", "other");
    s_put(c, "ab", "c", "1");
    s_put(c, "a", "bc", "2");
    s_expect(c, "u", "k", "newer value");
    s_expect(c, "ab", "c", "1");
    s_expect(c, "a", "bc", "2");
    const char bin[] = {'x', '\0', 'y'};
    cr_assert_eq(lru_cache_put(c, "u", "bin", bin, sizeof bin), 0);
    size_t len = 0;
    char *got = lru_cache_get(c, "u", "bin", &len);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(got, bin, 3), 0);
    free(got);
    cr_assert_eq(lru_cache_put(c, "u", "empty", "", 0), 0);
    got = lru_cache_get(c, "u", "empty", &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, 0);
    free(got);
    lru_cache_stats_t st;
    lru_cache_stats(c, &st);
    cr_assert_eq(st.entries, 6);
    lru_cache_destroy(&c);
}

Test(lru_cache, entries_expire_after_ttl)
{
    lru_cache_t *c = lru_cache_new(16, 4, 100);
    s_put(c, "u", "k", "v");
    s_expect(c, "u", "k", "v");
    usleep(60 * 1000);
    s_put(c, "u", "late", "w");
    usleep(60 * 1000); //  k is 120 ms old, late 60 ms
    s_expect(c, "u", "k", NULL);
    s_expect(c, "u", "late", "w");
    usleep(60 * 1000);
    s_expect(c, "u", "late", NULL);
    lru_cache_stats_t st;
    lru_cache_stats(c, &st);
    cr_assert_eq(st.expirations, 2);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.hits, 2);
    cr_assert_eq(st.misses, 2);
    lru_cache_destroy(&c);
}

Test(lru_cache, drop_group_removes_only_that_group)
{
    lru_cache_t *c = lru_cache_new(64, 4, 60000);
    s_put(c, "alice", "t=hybrid", "1");
    s_put(c, "alice", "t=content", "2");
    s_put(c, "alice", "t=popularity", "3");
    s_put(c, "bob", "t=hybrid", "4");
    cr_assert_eq(lru_cache_drop_group(c, "alice"), 3);
    s_expect(c, "alice", "t=hybrid", NULL);
    s_expect(c, "alice", "t=content", NULL);
    s_expect(c, "bob", "t=hybrid", "4");
    cr_assert_eq(lru_cache_drop_group(c, "alice"), 0);
    cr_assert_eq(lru_cache_drop_group(c, "nobody"), 0);
    //  The group comes back to life with new entries.
    s_put(c, "alice", "t=hybrid", "5");
    s_expect(c, "alice", "t=hybrid", "5");
    lru_cache_stats_t st;
    lru_cache_stats(c, &st);
    cr_assert_eq(st.dropped, 3);
    cr_assert_eq(st.entries, 2);
    lru_cache_destroy(&c);
}

Test(lru_cache, eviction_of_a_groups_last_entry_keeps_it_usable)
{
    //  One slot: each put evicts the previous entry, often of the same
    //  group (its last one), which must not free the group under the put.
    lru_cache_t *c = lru_cache_new(1, 1, 60000);
    s_put(c, "u", "a", "1");
    s_put(c, "u", "b", "2");
    s_expect(c, "u", "a", NULL);
    s_expect(c, "u", "b", "2");
    s_put(c, "u", "b", "3");
    s_expect(c, "u", "b", "3");
    cr_assert_eq(lru_cache_drop_group(c, "u"), 1);
    lru_cache_destroy(&c);
}

#define THREADS 8
#define OPS 40000

typedef struct {
    lru_cache_t *cache;
    unsigned seed;
    int corrupt;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < OPS; i++) {
        unsigned r = rand_r(&w->seed);
        char group[16], key[16], value[48];
        snprintf(group, sizeof group, "g%u", r % 300);
        snprintf(key, sizeof key, "k%u", (r >> 10) % 4);
        //  The value names its address, so a get can tell a torn or
        //  misplaced value.
        snprintf(value, sizeof value, "%s/%s/payload", group, key);
        switch ((r >> 16) % 8) {
        case 0:
            lru_cache_drop_group(w->cache, group);
            break;
        case 1:
        case 2:
        case 3:
            if (lru_cache_put(w->cache, group, key, value, strlen(value)) != 0)
                w->corrupt++;
            break;
        default: {
            size_t len;
            char *got = lru_cache_get(w->cache, group, key, &len);
            if (got && (len != strlen(value) || strcmp(got, value) != 0))
                w->corrupt++;
            free(got);
        }
        }
    }
    return NULL;
}

Test(lru_cache, concurrent_use_from_eight_threads)
{
    lru_cache_t *c = lru_cache_new(256, 16, 60000);
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker_t){.cache = c, .seed = (unsigned)i * 7919 + 1};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_worker, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(workers[i].corrupt, 0, "thread %d saw %d bad values", i, workers[i].corrupt);
    }
    lru_cache_stats_t st;
    lru_cache_stats(c, &st);
    cr_assert_leq(st.entries, 256);
    cr_assert_gt(st.hits, 0);
    cr_assert_gt(st.evictions, 0);
    cr_assert_gt(st.dropped, 0);
    lru_cache_destroy(&c);
}
