/*  test_ingestor_metrics.c: the event-ingestor's Prometheus text
    (actors/ingestor/ingestor_metrics.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/ingestor/ingestor_metrics.h"
#include "leak_check.h"

TestSuite(ingestor_metrics, .fini = leak_check_fini);

static const char *const s_topics[EVENT_SOURCE_COUNT] = {"watched", "rated", "watchlist"};

Test(ingestor_metrics, samples_per_topic_and_totals)
{
    ingestor_stats_t stats = {.consumed = {10, 20, 30},
                              .rejected = {1, 0, 2},
                              .stored = 55,
                              .duplicates = 2,
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
        "recsd_ingest_stored_total{actor=\"event-ingestor.2\"} 55\n",
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
