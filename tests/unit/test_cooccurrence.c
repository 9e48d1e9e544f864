/*  test_cooccurrence.c: bounded real-time item co-occurrence
    (lib/cooccurrence.c): pairing rules, scoring order and filters, the
    Space-Saving bound, the max_videos bound, and a long random stream.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cooccurrence.h"
#include "leak_check.h"
#include "proto/proto.h"

TestSuite(cooccurrence, .fini = leak_check_fini);

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

Test(cooccurrence, new_rejects_bad_bounds_and_destroy_is_idempotent)
{
    cr_assert_null(cooccurrence_new(0, 32, 100));
    cr_assert_null(cooccurrence_new(COOCCURRENCE_WINDOW_LIMIT + 1, 32, 100));
    cr_assert_null(cooccurrence_new(10, 0, 100));
    cr_assert_null(cooccurrence_new(10, COOCCURRENCE_NEIGHBOURS_LIMIT + 1, 100));
    cr_assert_null(cooccurrence_new(10, 32, 0));
    cr_assert_null(cooccurrence_new(10, 32, INT32_MAX));
    cooccurrence_t *co =
        cooccurrence_new(COOCCURRENCE_WINDOW, COOCCURRENCE_MAX_NEIGHBOURS, COOCCURRENCE_MAX_VIDEOS);
    cr_assert_not_null(co);
    cr_assert_eq(cooccurrence_videos(co), 0);
    cr_assert_eq(cooccurrence_pairs(co), 0);
    cr_assert_eq(cooccurrence_dropped(co), 0);
    cr_assert_gt(cooccurrence_memory(co), 0);
    const char *ids[1];
    float scores[1];
    const char *recent[] = {"a"};
    cr_assert_eq(cooccurrence_score(co, recent, NULL, 1, NULL, NULL, ids, scores, 1), 0,
                 "an empty table scores nothing");
    cooccurrence_destroy(&co);
    cr_assert_null(co);
    cooccurrence_destroy(&co);
}

Test(cooccurrence, pairs_are_symmetric)
{
    cooccurrence_t *co = cooccurrence_new(10, 32, 1000);
    const char *r1[] = {"b", "a"};
    cr_assert_eq(cooccurrence_record(co, r1, 2, "c"), 2);
    const char *r2[] = {"c"};
    cr_assert_eq(cooccurrence_record(co, r2, 1, "a"), 1);
    cr_assert_eq(cooccurrence_record(co, NULL, 0, "d"), 0, "a first video pairs with nothing");
    cr_assert_eq(cooccurrence_count(co, "c", "b"), 1);
    cr_assert_eq(cooccurrence_count(co, "b", "c"), 1);
    cr_assert_eq(cooccurrence_count(co, "a", "c"), 2);
    cr_assert_eq(cooccurrence_count(co, "c", "a"), 2);
    cr_assert_eq(cooccurrence_count(co, "a", "b"), 0, "a and b were never paired");
    cr_assert_eq(cooccurrence_count(co, "b", "a"), 0);
    cr_assert_eq(cooccurrence_count(co, "a", "nope"), 0);
    cr_assert_eq(cooccurrence_videos(co), 4);
    cr_assert_eq(cooccurrence_pairs(co), 4, "a-c, c-a, b-c, c-b");
    cooccurrence_destroy(&co);
}

Test(cooccurrence, window_is_respected)
{
    cooccurrence_t *co = cooccurrence_new(10, 32, 1000);
    const char *recent[] = {"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11"};
    cr_assert_eq(cooccurrence_record(co, recent, N_OF(recent), "v"), 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(cooccurrence_count(co, "v", recent[i]), 1, "%s", recent[i]);
        cr_assert_eq(cooccurrence_count(co, recent[i], "v"), 1, "%s", recent[i]);
    }
    cr_assert_eq(cooccurrence_count(co, "v", "p11"), 0, "the 11th previous video is out");
    cr_assert_eq(cooccurrence_count(co, "p11", "v"), 0);
    cooccurrence_destroy(&co);
}

Test(cooccurrence, repeats_the_video_itself_and_invalid_ids_are_skipped)
{
    cooccurrence_t *co = cooccurrence_new(3, 32, 1000);
    char too_long[PROTO_ID_MAX + 2];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    //  Window 3 counts distinct partners: a, b, c; d is the 4th.
    const char *recent[] = {"a", "a", "v", NULL, "", too_long, "b", "a", "c", "d"};
    cr_assert_eq(cooccurrence_record(co, recent, N_OF(recent), "v"), 3);
    cr_assert_eq(cooccurrence_count(co, "v", "a"), 1, "a repeated counts once");
    cr_assert_eq(cooccurrence_count(co, "a", "v"), 1);
    cr_assert_eq(cooccurrence_count(co, "v", "b"), 1);
    cr_assert_eq(cooccurrence_count(co, "v", "c"), 1);
    cr_assert_eq(cooccurrence_count(co, "v", "d"), 0, "repeats do not use up the window");
    cr_assert_eq(cooccurrence_count(co, "v", "v"), 0, "never paired with itself");
    cr_assert_eq(cooccurrence_pairs(co), 6);
    cr_assert_eq(cooccurrence_videos(co), 4, "v a b c: invalid ids are not interned");
    cr_assert_eq(cooccurrence_record(co, recent, N_OF(recent), NULL), 0);
    cr_assert_eq(cooccurrence_record(co, recent, N_OF(recent), ""), 0);
    cr_assert_eq(cooccurrence_record(co, recent, N_OF(recent), too_long), 0);
    cr_assert_eq(cooccurrence_pairs(co), 6, "an invalid video records nothing");
    cooccurrence_destroy(&co);
}

//  Builds count(a, x) = 3, (a, y) = 2, (a, z) = 2, (a, w) = 1 and
//  (b, x) = 1, (b, q) = 1, inserting z before y (so insertion order and
//  id order disagree on the tie).
static cooccurrence_t *s_fixture(void)
{
    cooccurrence_t *co = cooccurrence_new(10, 32, 1000);
    cr_assert_not_null(co);
    const char *a[] = {"a"}, *b[] = {"b"};
    const char *seq[] = {"x", "z", "x", "y", "z", "x", "y", "w"};
    for (size_t i = 0; i < N_OF(seq); i++)
        cr_assert_eq(cooccurrence_record(co, a, 1, seq[i]), 1);
    cr_assert_eq(cooccurrence_record(co, b, 1, "x"), 1);
    cr_assert_eq(cooccurrence_record(co, b, 1, "q"), 1);
    return co;
}

Test(cooccurrence, top_k_order_and_ties_by_id)
{
    cooccurrence_t *co = s_fixture();
    const char *recent[] = {"a"};
    const char *ids[8];
    float scores[8];
    int n = cooccurrence_score(co, recent, NULL, 1, NULL, NULL, ids, scores, 8);
    cr_assert_eq(n, 4);
    const char *want[] = {"x", "y", "z", "w"};
    const float want_score[] = {3, 2, 2, 1};
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(ids[i], want[i], "rank %d", i);
        cr_assert_float_eq(scores[i], want_score[i], 1e-6, "rank %d", i);
    }
    //  k smaller than the candidates: the best k, same order.
    cr_assert_eq(cooccurrence_score(co, recent, NULL, 1, NULL, NULL, ids, scores, 2), 2);
    cr_assert_str_eq(ids[0], "x");
    cr_assert_str_eq(ids[1], "y", "the tie y/z goes to the lower id, not the first inserted");
    cr_assert_eq(cooccurrence_score(co, recent, NULL, 1, NULL, NULL, ids, scores, 0), 0);
    //  An unknown user history scores nothing.
    const char *unknown[] = {"nobody"};
    cr_assert_eq(cooccurrence_score(co, unknown, NULL, 1, NULL, NULL, ids, scores, 8), 0);
    cooccurrence_destroy(&co);
}

Test(cooccurrence, weights_sum_over_the_history)
{
    cooccurrence_t *co = s_fixture();
    const char *recent[] = {"a", "b"};
    const float w[] = {1.0f, 4.0f};
    const char *ids[8];
    float scores[8];
    //  x = 1*3 + 4*1 = 7, q = 4, y = 2, z = 2, w = 1.
    int n = cooccurrence_score(co, recent, w, 2, NULL, NULL, ids, scores, 8);
    cr_assert_eq(n, 5);
    const char *want[] = {"x", "q", "y", "z", "w"};
    const float want_score[] = {7, 4, 2, 2, 1};
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(ids[i], want[i], "rank %d", i);
        cr_assert_float_eq(scores[i], want_score[i], 1e-6, "rank %d", i);
    }
    //  A negative weight subtracts; scores <= 0 are never returned; a
    //  non-finite weight counts for nothing.
    const float neg[] = {1.0f, -3.0f};
    n = cooccurrence_score(co, recent, neg, 2, NULL, NULL, ids, scores, 8);
    //  x = 3 - 3 = 0 (out), q = -3 (out), y = 2, z = 2, w = 1.
    cr_assert_eq(n, 3);
    cr_assert_str_eq(ids[0], "y");
    cr_assert_str_eq(ids[1], "z");
    cr_assert_str_eq(ids[2], "w");
    const float bad[] = {1.0f, NAN};
    n = cooccurrence_score(co, recent, bad, 2, NULL, NULL, ids, scores, 8);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(ids[0], "x");
    cr_assert_float_eq(scores[0], 3.0f, 1e-6, "b's NaN weight adds nothing");
    cooccurrence_destroy(&co);
}

typedef struct {
    const char **skip;
    size_t n_skip;
    int calls;
} s_filter_t;

static bool s_skip(void *arg, const char *video_id)
{
    s_filter_t *f = (s_filter_t *)arg;
    f->calls++;
    for (size_t i = 0; i < f->n_skip; i++)
        if (strcmp(f->skip[i], video_id) == 0)
            return true;
    return false;
}

Test(cooccurrence, skip_predicate_is_honoured)
{
    cooccurrence_t *co = s_fixture();
    const char *recent[] = {"a"};
    const char *ids[8];
    float scores[8];
    const char *skip[] = {"x", "z"};
    s_filter_t f = {.skip = skip, .n_skip = 2};
    int n = cooccurrence_score(co, recent, NULL, 1, s_skip, &f, ids, scores, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ids[0], "y");
    cr_assert_str_eq(ids[1], "w");
    cr_assert_eq(f.calls, 4, "asked once per candidate");
    //  k = 1: filling the top 1 asks about x (skipped) then y, no more.
    f.calls = 0;
    n = cooccurrence_score(co, recent, NULL, 1, s_skip, &f, ids, scores, 1);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], "y");
    cr_assert_eq(f.calls, 2, "the filter is asked only while the top k fills");
    cooccurrence_destroy(&co);
}

Test(cooccurrence, recent_videos_are_never_returned)
{
    cooccurrence_t *co = cooccurrence_new(10, 32, 1000);
    //  a and b co-occur heavily; c lightly with a.
    const char *ra[] = {"a"}, *rab[] = {"b", "a"};
    for (int i = 0; i < 50; i++)
        cr_assert_eq(cooccurrence_record(co, ra, 1, "b"), 1);
    cr_assert_eq(cooccurrence_record(co, rab, 2, "c"), 2);
    const char *ids[8];
    float scores[8];
    const char *recent[] = {"a", "b"};
    int n = cooccurrence_score(co, recent, NULL, 2, NULL, NULL, ids, scores, 8);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], "c");
    cr_assert_float_eq(scores[0], 2.0f, 1e-6);
    //  Weighted or not, listed once or twice: still never returned.
    const char *twice[] = {"a", "a", "c"};
    const float w[] = {1.0f, 1.0f, 0.0f};
    n = cooccurrence_score(co, twice, w, 3, NULL, NULL, ids, scores, 8);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], "b", "c has weight 0 but is still in the history");
    cr_assert_float_eq(scores[0], 100.0f, 1e-6, "a repeated id counts each time");
    cooccurrence_destroy(&co);
}

Test(cooccurrence, ids_are_borrowed_until_destroy_and_scores_track_records)
{
    cooccurrence_t *co = cooccurrence_new(10, 32, 1000);
    const char *ra[] = {"a"};
    cr_assert_eq(cooccurrence_record(co, ra, 1, "b"), 1);
    const char *ids[2];
    float scores[2];
    cr_assert_eq(cooccurrence_score(co, ra, NULL, 1, NULL, NULL, ids, scores, 2), 1);
    cr_assert_str_eq(ids[0], "b");
    cr_assert_float_eq(scores[0], 1.0f, 1e-6);
    //  The next request reflects the event at once.
    cr_assert_eq(cooccurrence_record(co, ra, 1, "c"), 1);
    cr_assert_eq(cooccurrence_record(co, ra, 1, "c"), 1);
    cr_assert_eq(cooccurrence_score(co, ra, NULL, 1, NULL, NULL, ids, scores, 2), 2);
    cr_assert_str_eq(ids[0], "c");
    cr_assert_float_eq(scores[0], 2.0f, 1e-6);
    cr_assert_str_eq(ids[1], "b");
    cooccurrence_destroy(&co);
}

Test(cooccurrence, space_saving_keeps_the_heavy_pair_and_bounds_memory)
{
    enum { MAX_N = 4, N_LIGHT = 200, ROUNDS = 10 };
    cooccurrence_t *co = cooccurrence_new(10, MAX_N, 1000);
    const char *h[] = {"heavy-1"};
    char light[N_LIGHT][16];
    for (int i = 0; i < N_LIGHT; i++)
        snprintf(light[i], sizeof light[i], "light-%03d", i);
    //  heavy-1's list sees ROUNDS * (N_LIGHT + N_LIGHT / 2) updates:
    //  every light video once per round, heavy-2 once per two lights (1/3).
    uint32_t heavy_true = 0, total = 0;
    size_t memory_after_warmup = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N_LIGHT; i++) {
            cr_assert_eq(cooccurrence_record(co, h, 1, light[i]), 1);
            total++;
            if (i % 2 == 1) {
                cr_assert_eq(cooccurrence_record(co, h, 1, "heavy-2"), 1);
                heavy_true++;
                total++;
            }
        }
        if (round == 0)
            memory_after_warmup = cooccurrence_memory(co);
        //  Every list is at most MAX_N entries.
        cr_assert_leq(cooccurrence_pairs(co), (size_t)MAX_N * cooccurrence_videos(co));
    }
    cr_assert_eq(cooccurrence_videos(co), N_LIGHT + 2);
    cr_assert_eq(cooccurrence_memory(co), memory_after_warmup,
                 "no growth once every video is known");
    uint32_t heavy = cooccurrence_count(co, "heavy-1", "heavy-2");
    cr_assert_geq(heavy, heavy_true, "never under-estimated (%u < %u)", heavy, heavy_true);
    cr_assert_leq(heavy, heavy_true + total / MAX_N, "over-estimate bounded by N/m");
    //  heavy-2's own list only ever held heavy-1: exact.
    cr_assert_eq(cooccurrence_count(co, "heavy-2", "heavy-1"), heavy_true);
    //  And heavy-1's best neighbour by score is heavy-2.
    const char *ids[MAX_N];
    float scores[MAX_N];
    int n = cooccurrence_score(co, h, NULL, 1, NULL, NULL, ids, scores, MAX_N);
    cr_assert_eq(n, MAX_N, "the list is full, no more");
    cr_assert_str_eq(ids[0], "heavy-2");
    //  Space-Saving keeps the list's total equal to the stream length.
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += scores[i];
    cr_assert_float_eq(sum, (double)total, 1e-3);
    cooccurrence_destroy(&co);
}

Test(cooccurrence, max_videos_bound_counts_drops)
{
    cooccurrence_t *co = cooccurrence_new(10, 32, 3);
    const char *r[] = {"a", "b"};
    cr_assert_eq(cooccurrence_record(co, r, 2, "c"), 2);
    cr_assert_eq(cooccurrence_videos(co), 3);
    cr_assert_eq(cooccurrence_record(co, r, 2, "d"), 0, "d is beyond the bound");
    cr_assert_eq(cooccurrence_dropped(co), 1);
    const char *r2[] = {"e", "a", "f", "b"};
    cr_assert_eq(cooccurrence_record(co, r2, 4, "c"), 2, "e and f are dropped, a and b paired");
    cr_assert_eq(cooccurrence_dropped(co), 3);
    cr_assert_eq(cooccurrence_count(co, "c", "a"), 2);
    cr_assert_eq(cooccurrence_count(co, "c", "e"), 0);
    cr_assert_eq(cooccurrence_videos(co), 3);
    cr_assert_eq(cooccurrence_record(co, r, 2, "d"), 0);
    cr_assert_eq(cooccurrence_dropped(co), 4, "each ignored occurrence counts");
    cooccurrence_destroy(&co);
}

//  splitmix64: seedable, good enough for a synthetic stream.
static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

//  100k events from 610 users over a catalogue bigger than max_videos,
//  with scoring in between: invariants hold, no leak (the suite's fini).
Test(cooccurrence, random_stream_100k, .timeout = 120)
{
    enum { USERS = 610, CATALOGUE = 12000, MAX_VIDEOS = 9000, EVENTS = 100000, WIN = 10 };
    cooccurrence_t *co = cooccurrence_new(WIN, 8, MAX_VIDEOS);
    cr_assert_not_null(co);
    static char names[CATALOGUE][24];
    for (int i = 0; i < CATALOGUE; i++)
        snprintf(names[i], sizeof names[i], "video-%05d", i);
    static const char *recent[USERS][WIN];
    static int n_recent[USERS];
    uint64_t rng = 42;
    const char *ids[10];
    float scores[10];
    for (int e = 0; e < EVENTS; e++) {
        int u = (int)(s_next(&rng) % USERS);
        //  Skewed popularity: the min of two uniforms favours low ids.
        uint64_t a = s_next(&rng) % CATALOGUE, b = s_next(&rng) % CATALOGUE;
        const char *v = names[a < b ? a : b];
        int rc = cooccurrence_record(co, recent[u], (size_t)n_recent[u], v);
        cr_assert(rc >= 0 && rc <= WIN && rc <= n_recent[u], "rc %d", rc);
        //  Most recent first, distinct.
        int j = 0;
        while (j < n_recent[u] && recent[u][j] != v)
            j++;
        if (j == n_recent[u] && n_recent[u] < WIN)
            n_recent[u]++;
        if (j == n_recent[u])
            j--;
        memmove(&recent[u][1], &recent[u][0], (size_t)j * sizeof recent[u][0]);
        recent[u][0] = v;
        if (e % 100 == 0) {
            int n = cooccurrence_score(co, recent[u], NULL, (size_t)n_recent[u], NULL, NULL, ids,
                                       scores, 10);
            cr_assert(n >= 0 && n <= 10);
            for (int i = 0; i < n; i++) {
                cr_assert_gt(scores[i], 0.0f);
                if (i > 0)
                    cr_assert_geq(scores[i - 1], scores[i]);
                for (int r = 0; r < n_recent[u]; r++)
                    cr_assert_str_neq(ids[i], recent[u][r]);
            }
        }
    }
    cr_assert_eq(cooccurrence_videos(co), MAX_VIDEOS);
    cr_assert_gt(cooccurrence_dropped(co), 0);
    cr_assert_leq(cooccurrence_pairs(co), (size_t)8 * MAX_VIDEOS);
    cr_assert_gt(cooccurrence_pairs(co), 0);
    cooccurrence_destroy(&co);
}
