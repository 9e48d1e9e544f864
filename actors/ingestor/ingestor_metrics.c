/*  ingestor_metrics.c: Prometheus text of the event-ingestor's counters
    (see ingestor_metrics.h). */
#include "ingestor_metrics.h"

#include <stdarg.h>
#include <stdio.h>

//  Bucket bounds ("le"). Batch sizes: the default batch is 5000 entries and
//  RECSD_INGEST_BATCH_MAX goes to 100000. Commit latency: a healthy batch
//  commits in milliseconds; seconds mean PostgreSQL is struggling.
static const double s_batch_bounds[] = {1,    10,   50,    100,   500,   1000,
                                        2500, 5000, 10000, 25000, 50000, 100000};
static const double s_commit_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10};
#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(S_COUNT(s_batch_bounds) <= INGESTOR_HISTOGRAM_BUCKETS, "too many batch buckets");
_Static_assert(S_COUNT(s_commit_bounds) <= INGESTOR_HISTOGRAM_BUCKETS, "too many commit buckets");

typedef struct {
    char *buf;
    size_t len, used;
    bool full;
} s_out_t;

static void s_add(s_out_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_add(s_out_t *out, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    size_t room = out->len - out->used;
    int n = out->full ? 0 : vsnprintf(out->buf + out->used, room, fmt, args);
    va_end(args);
    if (n < 0 || (size_t)n >= room)
        out->full = true;
    else
        out->used += (size_t)n;
}

static void s_family(s_out_t *out, const char *name, const char *type, const char *help)
{
    s_add(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_observe(ingestor_histogram_t *h, const double *bounds, size_t nbounds, double value)
{
    size_t i = 0;
    while (i < nbounds && value > bounds[i])
        i++;
    h->bucket[i]++; //  i == nbounds: above every bound
    h->count++;
    h->sum += value;
}

//  The topic an interaction kind comes from.
static event_source_t s_source_of(event_kind_t kind)
{
    switch (kind) {
    case EVENT_WATCH:
        return EVENT_SOURCE_WATCHED;
    case EVENT_RATING:
        return EVENT_SOURCE_RATED;
    case EVENT_WATCHLIST_ADD:
    case EVENT_WATCHLIST_REMOVE:
        return EVENT_SOURCE_WATCHLIST;
    }
    return EVENT_SOURCE_COUNT; //  not a kind: counted nowhere
}

void ingestor_metrics_observe_batch(ingestor_stats_t *stats, const event_t *events, size_t count,
                                    size_t video_count, const store_result_t *result,
                                    size_t entries, double seconds)
{
    s_observe(&stats->batch_size, s_batch_bounds, S_COUNT(s_batch_bounds), (double)entries);
    s_observe(&stats->commit_seconds, s_commit_bounds, S_COUNT(s_commit_bounds),
              seconds > 0 ? seconds : 0);
    for (size_t i = 0; i < count; i++) {
        event_source_t source = s_source_of(events[i].kind);
        if (source < EVENT_SOURCE_COUNT)
            stats->committed[source]++;
    }
    stats->committed[EVENT_SOURCE_VIDEO_UPSERTED] += video_count;
    stats->batches++;
    if (!result)
        return;
    for (int kind = 0; kind < STORE_KINDS; kind++) {
        event_source_t source = s_source_of((event_kind_t)kind);
        if (source < EVENT_SOURCE_COUNT) {
            stats->stored[source] += result->inserted_by_kind[kind];
            stats->duplicates[source] += result->duplicates_by_kind[kind];
        }
    }
    stats->videos_applied += result->videos_applied;
    stats->videos_stale += result->videos_stale;
    stats->dead_lettered += result->dead_lettered;
}

uint64_t ingestor_metrics_total(const uint64_t per_topic[EVENT_SOURCE_COUNT])
{
    uint64_t sum = 0;
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        sum += per_topic[i];
    return sum;
}

//  Cumulative buckets, +Inf, _sum and _count, as Prometheus wants them.
static void s_histogram(s_out_t *out, const char *name, const char *help, const char *actor,
                        const ingestor_histogram_t *h, const double *bounds, size_t nbounds)
{
    s_family(out, name, "histogram", help);
    unsigned long long cumulative = 0;
    for (size_t i = 0; i < nbounds; i++) {
        cumulative += h->bucket[i];
        s_add(out, "%s_bucket{actor=\"%s\",le=\"%g\"} %llu\n", name, actor, bounds[i], cumulative);
    }
    s_add(out, "%s_bucket{actor=\"%s\",le=\"+Inf\"} %llu\n", name, actor,
          (unsigned long long)h->count);
    s_add(out, "%s_sum{actor=\"%s\"} %.9g\n", name, actor, h->sum);
    s_add(out, "%s_count{actor=\"%s\"} %llu\n", name, actor, (unsigned long long)h->count);
}

int ingestor_metrics_format(char *buf, size_t buflen, const char *instance,
                            const char *const topics[EVENT_SOURCE_COUNT],
                            const ingestor_stats_t *stats, const ingestor_notify_stats_t *notify)
{
    s_out_t out = {.buf = buf, .len = buflen};
    const char *a = instance;
    s_family(&out, "recsd_ingest_consumed_total", "counter", "Events read from Kafka, per topic.");
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        s_add(&out, "recsd_ingest_consumed_total{actor=\"%s\",topic=\"%s\"} %llu\n", a, topics[i],
              (unsigned long long)stats->consumed[i]);
    s_family(&out, "recsd_ingest_rejected_total", "counter",
             "Invalid events sent to the dead-letter topic, per source topic.");
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        s_add(&out, "recsd_ingest_rejected_total{actor=\"%s\",topic=\"%s\"} %llu\n", a, topics[i],
              (unsigned long long)stats->rejected[i]);
    s_family(&out, "recsd_ingest_committed_total", "counter",
             "Valid events in batches committed to PostgreSQL, per topic (new or not).");
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        s_add(&out, "recsd_ingest_committed_total{actor=\"%s\",topic=\"%s\"} %llu\n", a, topics[i],
              (unsigned long long)stats->committed[i]);
    //  Interaction topics only: the catalogue's changes are not rows of
    //  their own (recsd_ingest_catalog_upserts_total).
    s_family(&out, "recsd_ingest_stored_total", "counter",
             "New interaction rows committed, per topic.");
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        if (i != EVENT_SOURCE_VIDEO_UPSERTED)
            s_add(&out, "recsd_ingest_stored_total{actor=\"%s\",topic=\"%s\"} %llu\n", a, topics[i],
                  (unsigned long long)stats->stored[i]);
    s_family(&out, "recsd_ingest_duplicates_total", "counter",
             "Events already stored (replays), per topic.");
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        if (i != EVENT_SOURCE_VIDEO_UPSERTED)
            s_add(&out, "recsd_ingest_duplicates_total{actor=\"%s\",topic=\"%s\"} %llu\n", a,
                  topics[i], (unsigned long long)stats->duplicates[i]);
    s_family(&out, "recsd_ingest_catalog_upserts_total", "counter",
             "Catalogue changes committed: applied, or stale (not newer than the stored one).");
    s_add(&out,
          "recsd_ingest_catalog_upserts_total{actor=\"%s\",topic=\"%s\",result=\"applied\"} "
          "%llu\n",
          a, topics[EVENT_SOURCE_VIDEO_UPSERTED], (unsigned long long)stats->videos_applied);
    s_add(&out,
          "recsd_ingest_catalog_upserts_total{actor=\"%s\",topic=\"%s\",result=\"stale\"} "
          "%llu\n",
          a, topics[EVENT_SOURCE_VIDEO_UPSERTED], (unsigned long long)stats->videos_stale);
    const struct {
        const char *name, *type, *help;
        unsigned long long value;
    } rows[] = {
        {"recsd_ingest_dead_lettered_total", "counter", "Dead letters committed to the outbox.",
         stats->dead_lettered},
        {"recsd_ingest_batches_total", "counter", "Batches committed to PostgreSQL.",
         stats->batches},
        {"recsd_ingest_dropped_on_revoke_total", "counter",
         "Unstored events given up in a rebalance (their next reader gets them).",
         stats->dropped_on_revoke},
        {"recsd_ingest_notices_total", "counter", "Interaction notices published.",
         notify->published},
        {"recsd_ingest_notices_dropped_total", "counter", "Interaction notices dropped.",
         notify->publish_dropped},
        {"recsd_ingest_invalidated_users_total", "counter", "Users whose cached list was deleted.",
         notify->invalidated},
        {"recsd_ingest_invalidate_failed_total", "counter",
         "Users whose cached list could not be deleted (Redis trouble).",
         notify->invalidate_failed},
        {"recsd_ingest_batch_events", "gauge", "Events waiting in the unflushed batch.",
         stats->in_batch},
        {"recsd_ingest_paused", "gauge", "1 while consumption is paused.", stats->paused},
        {"recsd_ingest_postgres_failing", "gauge", "1 while PostgreSQL writes fail.",
         stats->postgres_failing},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        s_family(&out, rows[i].name, rows[i].type, rows[i].help);
        s_add(&out, "%s{actor=\"%s\"} %llu\n", rows[i].name, a, rows[i].value);
    }
    s_histogram(&out, "recsd_ingest_batch_size",
                "Entries (events and dead letters) per batch committed to PostgreSQL.", a,
                &stats->batch_size, s_batch_bounds, S_COUNT(s_batch_bounds));
    s_histogram(&out, "recsd_ingest_commit_seconds",
                "Time to write and commit one batch in PostgreSQL.", a, &stats->commit_seconds,
                s_commit_bounds, S_COUNT(s_commit_bounds));
    s_family(&out, "recsd_ingest_partitions_assigned", "gauge",
             "Kafka partitions assigned to this consumer.");
    s_add(&out, "recsd_ingest_partitions_assigned{actor=\"%s\"} %d\n", a,
          stats->partitions_assigned);
    s_add(&out,
          "# HELP recsd_ingest_consumer_lag Messages behind the last high watermark seen, per "
          "partition (the %d furthest behind; absent before its first message since "
          "assigned).\n# TYPE recsd_ingest_consumer_lag gauge\n",
          INGESTOR_LAG_MAX);
    for (size_t i = 0; i < stats->lag_count && i < INGESTOR_LAG_MAX; i++)
        s_add(&out, "recsd_ingest_consumer_lag{actor=\"%s\",topic=\"%s\",partition=\"%d\"} %lld\n",
              a, stats->lag[i].topic, (int)stats->lag[i].partition, (long long)stats->lag[i].lag);
    return out.full ? -1 : 0;
}
