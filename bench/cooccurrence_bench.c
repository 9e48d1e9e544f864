/*  cooccurrence_bench.c: the cost of the ranker's online co-occurrence
    (lib/cooccurrence.h) on MovieLens-sized data: records per second and
    score calls per second, plus the memory it ends up holding.

    Synthetic data shaped like MovieLens latest-small: 610 users, ~100k
    events, ~9.7k videos; user activity and video popularity both
    Zipf-like, each user consuming a video at most once, users interleaved
    in time. Every event is recorded with the user's previous distinct
    videos (most recent first, as the ranker would pass them). Scoring asks
    for the top 10 from each user's latest `history` videos, with a seen
    filter (a bitmap) as the skip predicate, as the ranker's would be.

    Prints a markdown table; nothing is asserted (speed is measured, not
    tested).

      bench/cooccurrence_bench [--users 610] [--videos 9742] [--events 100836]
                               [--window 10] [--neighbours 32] [--history 50]
                               [--queries 20000] [--seed 42]
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cooccurrence.h"

#define K 10

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

//  splitmix64: seedable, good enough for synthetic data.
static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double s_uniform(uint64_t *state)
{
    return (double)(s_next(state) >> 11) / 9007199254740992.0;
}

//  Cumulative Zipf(s) weights over n ranks, for sampling by bisection.
static double *s_zipf_cdf(int n, double s)
{
    double *cdf = malloc((size_t)n * sizeof *cdf);
    if (!cdf)
        return NULL;
    double sum = 0;
    for (int i = 0; i < n; i++)
        cdf[i] = (sum += 1.0 / pow(i + 1, s));
    for (int i = 0; i < n; i++)
        cdf[i] /= sum;
    return cdf;
}

static int s_sample(const double *cdf, int n, uint64_t *state)
{
    double u = s_uniform(state);
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct {
    const uint8_t *seen; //  one user's bitmap over the catalogue
    int n_videos;
} s_filter_t;

//  The ranker's seen filter, by id: parse the number back (cheap, like a
//  hash lookup would be).
static bool s_skip(void *arg, const char *video_id)
{
    const s_filter_t *f = (const s_filter_t *)arg;
    int v = atoi(video_id + 1);
    return v >= 0 && v < f->n_videos && (f->seen[v / 8] >> (v % 8)) & 1;
}

static long s_arg(int argc, char **argv, const char *name, long fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return fallback;
}

int main(int argc, char **argv)
{
    int users = (int)s_arg(argc, argv, "--users", 610);
    int n_videos = (int)s_arg(argc, argv, "--videos", 9742);
    long events = s_arg(argc, argv, "--events", 100836);
    int window = (int)s_arg(argc, argv, "--window", COOCCURRENCE_WINDOW);
    int neighbours = (int)s_arg(argc, argv, "--neighbours", COOCCURRENCE_MAX_NEIGHBOURS);
    int history = (int)s_arg(argc, argv, "--history", 50);
    long queries = s_arg(argc, argv, "--queries", 20000);
    uint64_t rng = (uint64_t)s_arg(argc, argv, "--seed", 42);
    if (users < 1 || n_videos < 1 || events < 1 || history < 1 || queries < 1) {
        fprintf(stderr, "cooccurrence_bench: every figure must be >= 1\n");
        return 2;
    }
    int rc = 1;
    cooccurrence_t *co = cooccurrence_new(window, neighbours, COOCCURRENCE_MAX_VIDEOS);
    char(*names)[16] = malloc((size_t)n_videos * sizeof *names);
    double *user_cdf = s_zipf_cdf(users, 0.8), *video_cdf = s_zipf_cdf(n_videos, 1.0);
    size_t bitmap = ((size_t)n_videos + 7) / 8;
    uint8_t *seen = calloc((size_t)users, bitmap);
    //  Each user's videos in order of consumption (the newest last).
    const char **log = malloc((size_t)events * sizeof *log);
    int *log_user = malloc((size_t)events * sizeof *log_user);
    int *count = calloc((size_t)users, sizeof *count);
    long *first = malloc((size_t)users * sizeof *first);
    //  The log regrouped per user (first[u] onwards), filled as it replays.
    const char **by_user = malloc((size_t)events * sizeof *by_user);
    int *filled = calloc((size_t)users, sizeof *filled);
    const char **recent = malloc((size_t)(window > history ? window : history) * sizeof *recent);
    const char *ids[K];
    float scores[K];
    if (!co || !names || !user_cdf || !video_cdf || !seen || !log || !log_user || !count ||
        !first || !by_user || !filled || !recent) {
        fprintf(stderr, "cooccurrence_bench: out of memory or bad --window/--neighbours\n");
        goto err;
    }
    for (int v = 0; v < n_videos; v++)
        snprintf(names[v], sizeof names[v], "v%d", v);

    //  The stream, generated before timing. A user who has seen most of
    //  the catalogue's head retries a few times, then gives up the event.
    long n_events = 0;
    for (long e = 0; e < events; e++) {
        int u = s_sample(user_cdf, users, &rng);
        for (int attempt = 0; attempt < 50; attempt++) {
            int v = s_sample(video_cdf, n_videos, &rng);
            uint8_t *bits = seen + (size_t)u * bitmap;
            if ((bits[v / 8] >> (v % 8)) & 1)
                continue;
            bits[v / 8] |= (uint8_t)(1u << (v % 8));
            log[n_events] = names[v];
            log_user[n_events++] = u;
            count[u]++;
            break;
        }
    }
    long offset = 0;
    for (int u = 0; u < users; u++) {
        first[u] = offset;
        offset += count[u];
    }

    //  Records: the user's previous distinct videos, most recent first.
    double t0 = s_now();
    long paired = 0;
    for (long e = 0; e < n_events; e++) {
        int u = log_user[e];
        const char **mine = by_user + first[u];
        int n = filled[u] < window ? filled[u] : window;
        for (int i = 0; i < n; i++)
            recent[i] = mine[filled[u] - 1 - i];
        int got = cooccurrence_record(co, recent, (size_t)n, log[e]);
        if (got < 0) {
            fprintf(stderr, "cooccurrence_bench: out of memory recording\n");
            goto err;
        }
        paired += got;
        mine[filled[u]++] = log[e];
    }
    double t_record = s_now() - t0;

    //  Score calls: random users (by activity), their latest `history`.
    long returned = 0;
    s_filter_t filter = {.n_videos = n_videos};
    t0 = s_now();
    for (long q = 0; q < queries; q++) {
        int u = s_sample(user_cdf, users, &rng);
        const char **mine = by_user + first[u];
        int n = filled[u] < history ? filled[u] : history;
        for (int i = 0; i < n; i++)
            recent[i] = mine[filled[u] - 1 - i];
        filter.seen = seen + (size_t)u * bitmap;
        int got = cooccurrence_score(co, recent, NULL, (size_t)n, s_skip, &filter, ids, scores, K);
        if (got < 0) {
            fprintf(stderr, "cooccurrence_bench: out of memory scoring\n");
            goto err;
        }
        returned += got;
    }
    double t_score = s_now() - t0;

    printf("| users | videos | events | window | neighbours | history | records/s | pairs/record "
           "| score calls/s | us/score | items/score | videos kept | pairs stored | memory MB |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    printf(
        "| %d | %d | %ld | %d | %d | %d | %.0f | %.2f | %.0f | %.1f | %.2f | %zu | %zu | %.2f |\n",
        users, n_videos, n_events, window, neighbours, history, (double)n_events / t_record,
        (double)paired / (double)n_events, (double)queries / t_score,
        t_score / (double)queries * 1e6, (double)returned / (double)queries,
        cooccurrence_videos(co), cooccurrence_pairs(co),
        (double)cooccurrence_memory(co) / (1024.0 * 1024.0));
    rc = 0;
err:
    cooccurrence_destroy(&co);
    free(names);
    free(user_cdf);
    free(video_cdf);
    free(seen);
    free(log);
    free(log_user);
    free(count);
    free(first);
    free(by_user);
    free(filled);
    free(recent);
    return rc;
}
