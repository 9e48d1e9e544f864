/*  test_ingestor_metrics.c: the event-ingestor's Prometheus text
    (actors/ingestor/ingestor_metrics.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/ingestor/ingestor_metrics.h"
#include "leak_check.h"
#include "proto/proto.h"

TestSuite(ingestor_metrics, .fini = leak_check_fini);

static const char *const s_topics[EVENT_SOURCE_COUNT] = {"watched", "rated", "watchlist", "videos"};

Test(ingestor_metrics, samples_per_topic_and_totals)
{
    ingestor_stats_t stats = {.consumed = {10, 20, 30, 8},
                              .rejected = {1, 0, 2, 1},
                              .stored = {5, 20, 30},
                              .duplicates = {2, 0, 0},
                              .videos_applied = 6,
                              .videos_stale = 1,
                              .dead_lettered = 3,
                              .batches = 4,
                              .in_batch = 7,
                              .paused = true};
    ingestor_notify_stats_t notify = {.published = 57, .invalidate_failed = 5};
    char text[8192];
    cr_assert_eq(
        ingestor_metrics_format(text, sizeof text, "event-ingestor.2", s_topics, &stats, &notify),
        0);
    const char *want[] = {
        "# TYPE recsd_ingest_consumed_total counter\n",
        "recsd_ingest_consumed_total{actor=\"event-ingestor.2\",topic=\"rated\"} 20\n",
        "recsd_ingest_rejected_total{actor=\"event-ingestor.2\",topic=\"watchlist\"} 2\n",
        "recsd_ingest_consumed_total{actor=\"event-ingestor.2\",topic=\"videos\"} 8\n",
        "recsd_ingest_rejected_total{actor=\"event-ingestor.2\",topic=\"videos\"} 1\n",
        "# TYPE recsd_ingest_stored_total counter\n",
        "recsd_ingest_stored_total{actor=\"event-ingestor.2\",topic=\"watched\"} 5\n",
        "recsd_ingest_stored_total{actor=\"event-ingestor.2\",topic=\"watchlist\"} 30\n",
        "recsd_ingest_duplicates_total{actor=\"event-ingestor.2\",topic=\"watched\"} 2\n",
        "recsd_ingest_duplicates_total{actor=\"event-ingestor.2\",topic=\"rated\"} 0\n",
        "recsd_ingest_catalog_upserts_total{actor=\"event-ingestor.2\",topic=\"videos\","
        "result=\"applied\"} 6\n",
        "recsd_ingest_catalog_upserts_total{actor=\"event-ingestor.2\",topic=\"videos\","
        "result=\"stale\"} 1\n",
        "recsd_ingest_dead_lettered_total{actor=\"event-ingestor.2\"} 3\n",
        "recsd_ingest_notices_total{actor=\"event-ingestor.2\"} 57\n",
        "recsd_ingest_invalidate_failed_total{actor=\"event-ingestor.2\"} 5\n",
        "# TYPE recsd_ingest_batch_events gauge\n",
        "recsd_ingest_batch_events{actor=\"event-ingestor.2\"} 7\n",
        "recsd_ingest_paused{actor=\"event-ingestor.2\"} 1\n",
        "recsd_ingest_postgres_failing{actor=\"event-ingestor.2\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(text, want[i]), "missing %s in:\n%s", want[i], text);
    cr_assert_eq(text[strlen(text) - 1], '\n');
    //  The catalogue's changes are not interaction rows.
    cr_assert_null(
        strstr(text, "recsd_ingest_stored_total{actor=\"event-ingestor.2\",topic=\"videos\""));
    cr_assert_null(
        strstr(text, "recsd_ingest_duplicates_total{actor=\"event-ingestor.2\",topic=\"videos\""));
}

//  What the store reports lands per topic: new rows apart from replays.
Test(ingestor_metrics, observe_batch_counts_per_topic_from_the_store)
{
    ingestor_stats_t stats = {0};
    event_t events[] = {{.kind = EVENT_WATCH},
                        {.kind = EVENT_WATCH},
                        {.kind = EVENT_RATING},
                        {.kind = EVENT_WATCHLIST_ADD},
                        {.kind = EVENT_WATCHLIST_REMOVE}};
    store_result_t result = {.inserted = 3, .duplicates = 2, .dead_lettered = 1};
    result.inserted_by_kind[EVENT_WATCH] = 1;
    result.duplicates_by_kind[EVENT_WATCH] = 1;
    result.duplicates_by_kind[EVENT_RATING] = 1;
    result.inserted_by_kind[EVENT_WATCHLIST_ADD] = 1;
    result.inserted_by_kind[EVENT_WATCHLIST_REMOVE] = 1;
    result.videos_applied = 2;
    result.videos_stale = 1;
    ingestor_metrics_observe_batch(&stats, events, 5, 3, &result, 9, 0.01);
    ingestor_metrics_observe_batch(&stats, events, 1, 0, &result, 1, 0.01);
    cr_assert_eq(stats.committed[EVENT_SOURCE_WATCHED], 3);
    cr_assert_eq(stats.committed[EVENT_SOURCE_RATED], 1);
    cr_assert_eq(stats.committed[EVENT_SOURCE_WATCHLIST], 2);
    cr_assert_eq(stats.committed[EVENT_SOURCE_VIDEO_UPSERTED], 3);
    cr_assert_eq(stats.stored[EVENT_SOURCE_WATCHED], 2);
    cr_assert_eq(stats.duplicates[EVENT_SOURCE_WATCHED], 2);
    cr_assert_eq(stats.stored[EVENT_SOURCE_RATED], 0);
    cr_assert_eq(stats.duplicates[EVENT_SOURCE_RATED], 2);
    cr_assert_eq(stats.stored[EVENT_SOURCE_WATCHLIST], 4);
    cr_assert_eq(stats.duplicates[EVENT_SOURCE_WATCHLIST], 0);
    cr_assert_eq(stats.stored[EVENT_SOURCE_VIDEO_UPSERTED], 0);
    cr_assert_eq(stats.videos_applied, 4);
    cr_assert_eq(stats.videos_stale, 2);
    cr_assert_eq(stats.dead_lettered, 2);
    cr_assert_eq(stats.batches, 2);
    cr_assert_eq(ingestor_metrics_total(stats.stored), 6);
    cr_assert_eq(ingestor_metrics_total(stats.duplicates), 4);
}

Test(ingestor_metrics, refuses_a_buffer_too_small)
{
    ingestor_stats_t stats = {0};
    ingestor_notify_stats_t notify = {0};
    char text[200];
    cr_assert_eq(
        ingestor_metrics_format(text, sizeof text, "event-ingestor", s_topics, &stats, &notify),
        -1);
}

//  The value of the sample line that starts with prefix (name and labels),
//  or -1 if there is none.
static double s_sample(const char *text, const char *prefix)
{
    size_t len = strlen(prefix);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL)
        if (strncmp(line, prefix, len) == 0 && line[len] == ' ')
            return strtod(line + len + 1, NULL);
    return -1;
}

static size_t s_count_lines(const char *text, const char *prefix)
{
    size_t n = 0;
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix))
        if (p == text || p[-1] == '\n')
            n++;
    return n;
}

Test(ingestor_metrics, histograms_are_cumulative_with_sum_and_count)
{
    ingestor_stats_t stats = {0};
    ingestor_notify_stats_t notify = {0};
    event_t events[5] = {{.kind = EVENT_WATCH},
                         {.kind = EVENT_RATING},
                         {.kind = EVENT_WATCHLIST_ADD},
                         {.kind = EVENT_WATCHLIST_REMOVE},
                         {.kind = EVENT_WATCH}};
    //  Sizes 1, 7 (5 events + 2 dead letters), 5000 and 200000 (past every bound);
    //  latencies 0.5 ms, 30 ms, 2 s, 20 s.
    ingestor_metrics_observe_batch(&stats, events, 1, 0, NULL, 1, 0.0005);
    ingestor_metrics_observe_batch(&stats, events, 5, 0, NULL, 7, 0.030);
    ingestor_metrics_observe_batch(&stats, NULL, 0, 0, NULL, 5000, 2.0);
    ingestor_metrics_observe_batch(&stats, NULL, 0, 0, NULL, 200000, 20.0);
    cr_assert_eq(stats.committed[EVENT_SOURCE_WATCHED], 3);
    cr_assert_eq(stats.committed[EVENT_SOURCE_RATED], 1);
    cr_assert_eq(stats.committed[EVENT_SOURCE_WATCHLIST], 2);

    char text[PROTO_METRICS_MAX];
    cr_assert_eq(
        ingestor_metrics_format(text, sizeof text, "event-ingestor", s_topics, &stats, &notify), 0);
    const char *a = "{actor=\"event-ingestor\"";
    char key[256];
    const struct {
        const char *name, *le;
        double want;
    } buckets[] = {
        {"recsd_ingest_batch_size_bucket", "1", 1},
        {"recsd_ingest_batch_size_bucket", "10", 2},
        {"recsd_ingest_batch_size_bucket", "2500", 2},
        {"recsd_ingest_batch_size_bucket", "5000", 3}, //  le is inclusive
        {"recsd_ingest_batch_size_bucket", "100000", 3},
        {"recsd_ingest_batch_size_bucket", "+Inf", 4},
        {"recsd_ingest_commit_seconds_bucket", "0.001", 1},
        {"recsd_ingest_commit_seconds_bucket", "0.025", 1},
        {"recsd_ingest_commit_seconds_bucket", "0.05", 2},
        {"recsd_ingest_commit_seconds_bucket", "2.5", 3},
        {"recsd_ingest_commit_seconds_bucket", "10", 3},
        {"recsd_ingest_commit_seconds_bucket", "+Inf", 4},
    };
    for (size_t i = 0; i < sizeof buckets / sizeof buckets[0]; i++) {
        snprintf(key, sizeof key, "%s%s,le=\"%s\"}", buckets[i].name, a, buckets[i].le);
        cr_assert_eq(s_sample(text, key), buckets[i].want, "%s: got %g in\n%s", key,
                     s_sample(text, key), text);
    }
    snprintf(key, sizeof key, "recsd_ingest_batch_size_count%s}", a);
    cr_assert_eq(s_sample(text, key), 4);
    snprintf(key, sizeof key, "recsd_ingest_batch_size_sum%s}", a);
    cr_assert_eq(s_sample(text, key), 1 + 7 + 5000 + 200000);
    snprintf(key, sizeof key, "recsd_ingest_commit_seconds_sum%s}", a);
    cr_assert_float_eq(s_sample(text, key), 22.0305, 1e-6);
    snprintf(key, sizeof key, "recsd_ingest_committed_total%s,topic=\"watchlist\"}", a);
    cr_assert_eq(s_sample(text, key), 2);
    cr_assert(strstr(text, "# TYPE recsd_ingest_batch_size histogram\n"));
    cr_assert(strstr(text, "# TYPE recsd_ingest_commit_seconds histogram\n"));
    //  Every bucket line of each histogram, +Inf included, once.
    cr_assert_eq(s_count_lines(text, "recsd_ingest_batch_size_bucket{"), 13);
    cr_assert_eq(s_count_lines(text, "recsd_ingest_commit_seconds_bucket{"), 14);
}

Test(ingestor_metrics, lag_per_partition_and_assigned_count)
{
    ingestor_stats_t stats = {.partitions_assigned = 5, .lag_count = 2};
    stats.lag[0] = (ingestor_lag_t){.topic = "rated", .partition = 3, .lag = 0};
    stats.lag[1] = (ingestor_lag_t){.topic = "watched", .partition = 0, .lag = 123456};
    ingestor_notify_stats_t notify = {0};
    char text[PROTO_METRICS_MAX];
    cr_assert_eq(
        ingestor_metrics_format(text, sizeof text, "event-ingestor.3", s_topics, &stats, &notify),
        0);
    cr_assert(strstr(text, "# TYPE recsd_ingest_consumer_lag gauge\n"));
    cr_assert_eq(s_sample(text, "recsd_ingest_consumer_lag{actor=\"event-ingestor.3\",topic="
                                "\"rated\",partition=\"3\"}"),
                 0);
    cr_assert_eq(s_sample(text, "recsd_ingest_consumer_lag{actor=\"event-ingestor.3\",topic="
                                "\"watched\",partition=\"0\"}"),
                 123456);
    cr_assert_eq(s_count_lines(text, "recsd_ingest_consumer_lag{"), 2);
    cr_assert_eq(s_sample(text, "recsd_ingest_partitions_assigned{actor=\"event-ingestor.3\"}"), 5);
}

//  Every sample carries the actor label, and the worst case the ingestor
//  can report (every counter huge, INGESTOR_LAG_MAX partitions of the
//  default topics with the highest partition numbers) fits in a heartbeat.
Test(ingestor_metrics, worst_case_fits_a_heartbeat_and_every_sample_is_labelled)
{
    static const char *const topics[EVENT_SOURCE_COUNT] = {
        "analytics-service.video-watched", "profile-service.video-rated",
        "profile-service.watchlist-updated", "catalog-service.video-upserted"};
    ingestor_stats_t stats;
    memset(&stats, 0, sizeof stats);
    for (int i = 0; i < 50; i++)
        ingestor_metrics_observe_batch(&stats, NULL, 0, 0, NULL, (size_t)i * 3000, i * 0.3);
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        stats.consumed[i] = stats.rejected[i] = stats.committed[i] = stats.stored[i] =
            stats.duplicates[i] = UINT64_MAX;
    stats.videos_applied = stats.videos_stale = UINT64_MAX;
    stats.dead_lettered = stats.batches = UINT64_MAX;
    stats.dropped_on_revoke = UINT64_MAX;
    stats.in_batch = SIZE_MAX;
    stats.batch_size.sum = stats.commit_seconds.sum = 1.2345678901234e300;
    for (size_t i = 0; i < INGESTOR_LAG_MAX; i++)
        stats.lag[i] = (ingestor_lag_t){.topic = topics[i % EVENT_SOURCE_COUNT],
                                        .partition = 1000 + (int32_t)i,
                                        .lag = INT64_MAX};
    stats.lag_count = INGESTOR_LAG_MAX;
    stats.partitions_assigned = 3072;
    ingestor_notify_stats_t notify = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};
    char *text = malloc(PROTO_METRICS_MAX + 1);
    cr_assert_not_null(text);
    const char *instance = "event-ingestor.16";
    cr_assert_eq(
        ingestor_metrics_format(text, PROTO_METRICS_MAX + 1, instance, topics, &stats, &notify), 0,
        "the worst case does not fit in PROTO_METRICS_MAX");
    cr_log_info("worst-case metrics text: %zu of %d bytes", strlen(text), PROTO_METRICS_MAX);
    cr_assert_eq(s_count_lines(text, "recsd_ingest_consumer_lag{"), INGESTOR_LAG_MAX);
    size_t samples = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        cr_assert_not_null(end, "unterminated last line");
        if (line[0] != '#') {
            samples++;
            char *brace = strchr(line, '{');
            const char *label = "{actor=\"event-ingestor.16\"";
            cr_assert(brace && brace < end && strncmp(brace, label, strlen(label)) == 0 &&
                          (brace[strlen(label)] == ',' || brace[strlen(label)] == '}'),
                      "sample without the actor label: %.*s", (int)(end - line), line);
        }
        line = end + 1;
    }
    cr_assert_gt(samples, 70);
    free(text);
}
