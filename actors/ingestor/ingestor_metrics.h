/*  ingestor_metrics.h: the event-ingestor's counters and their Prometheus
    text, sent with the heartbeats (actor_link_set_metrics) and merged into
    the gateway's /metrics. */
#ifndef RECSD_INGESTOR_METRICS_H
#define RECSD_INGESTOR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "ingestor_notify.h"

typedef struct {
    uint64_t consumed[EVENT_SOURCE_COUNT]; //  messages read, per input topic
    uint64_t rejected[EVENT_SOURCE_COUNT]; //  of which invalid (dead letters), per input topic
    uint64_t stored;                       //  new interaction rows
    uint64_t duplicates;                   //  events already stored (replays)
    uint64_t dead_lettered;                //  outbox rows written
    uint64_t batches;                      //  transactions committed
    uint64_t dropped_on_revoke;            //  unstored events given up in a rebalance
    size_t in_batch;                       //  gauge: events waiting to be written
    bool paused;                           //  gauge: consumption paused
    bool postgres_failing;                 //  gauge: writes failing
} ingestor_stats_t;

//  Writes the Prometheus text for instance into buf. topics names the
//  input topics by event_source_t (borrowed). Returns 0, or -1 if it does
//  not fit.
int ingestor_metrics_format(char *buf, size_t buflen, const char *instance,
                            const char *const topics[EVENT_SOURCE_COUNT],
                            const ingestor_stats_t *stats, const ingestor_notify_stats_t *notify);

#endif
