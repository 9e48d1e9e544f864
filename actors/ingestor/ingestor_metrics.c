/*  ingestor_metrics.c: Prometheus text of the event-ingestor's counters
    (see ingestor_metrics.h). */
#include "ingestor_metrics.h"

#include <stdarg.h>
#include <stdio.h>

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
    const struct {
        const char *name, *type, *help;
        unsigned long long value;
    } rows[] = {
        {"recsd_ingest_stored_total", "counter", "New interaction rows committed.", stats->stored},
        {"recsd_ingest_duplicates_total", "counter", "Events that were already stored (replays).",
         stats->duplicates},
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
    return out.full ? -1 : 0;
}
