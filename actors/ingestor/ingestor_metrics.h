/*  ingestor_metrics.h: the event-ingestor's counters and their Prometheus
    text, sent with the heartbeats (actor_link_set_metrics) and merged into
    the gateway's /metrics.

    Every sample carries actor="<instance>". The text stays well under
    PROTO_METRICS_MAX (12 KiB) with the default topic names: that is why
    consumer lag is reported for at most INGESTOR_LAG_MAX partitions (the
    ones furthest behind), next to the count of partitions assigned.

    Not thread-safe: the stats belong to the thread that formats them (the
    ingestor's loop); a writer thread would hand its figures back to it.
*/
#ifndef RECSD_INGESTOR_METRICS_H
#define RECSD_INGESTOR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "ingestor_notify.h"
#include "interaction_store.h"

//  Partitions whose lag is reported, at most: each sample is ~110 bytes
//  with the default topic names, so 32 of them take ~3.5 KiB of the
//  12 KiB a heartbeat may carry. More assigned partitions than this: the
//  ones with the highest lag are reported.
#define INGESTOR_LAG_MAX 32

//  Buckets of a histogram, at most (the +Inf bucket comes on top).
#define INGESTOR_HISTOGRAM_BUCKETS 13

//  A histogram's observations per bucket (not cumulative: rendering sums
//  them); the bounds are fixed in ingestor_metrics.c.
typedef struct {
    uint64_t bucket[INGESTOR_HISTOGRAM_BUCKETS + 1]; //  last: above every bound
    uint64_t count;
    double sum;
} ingestor_histogram_t;

//  One partition's consumer lag: the high watermark last seen minus the
//  consumer's position (next offset to read). topic is borrowed from the
//  configuration.
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t lag;
} ingestor_lag_t;

typedef struct {
    uint64_t consumed[EVENT_SOURCE_COUNT];  //  messages read, per input topic
    uint64_t rejected[EVENT_SOURCE_COUNT];  //  of which invalid (dead letters), per input topic
    uint64_t committed[EVENT_SOURCE_COUNT]; //  valid entries in committed batches, per topic
    //  Of the committed interactions, per topic: new rows, and events that
    //  were stored already (replays, duplicate deliveries). The catalogue's
    //  slot stays 0: its changes are counted below.
    uint64_t stored[EVENT_SOURCE_COUNT];
    uint64_t duplicates[EVENT_SOURCE_COUNT];
    uint64_t videos_applied;             //  catalogue changes that inserted or replaced a video
    uint64_t videos_stale;               //  catalogue changes not newer than the stored version
    uint64_t dead_lettered;              //  outbox rows written
    uint64_t batches;                    //  transactions committed
    uint64_t dropped_on_revoke;          //  unstored events given up in a rebalance
    size_t in_batch;                     //  gauge: events waiting to be written
    bool paused;                         //  gauge: consumption paused
    bool postgres_failing;               //  gauge: writes failing
    ingestor_histogram_t batch_size;     //  entries per committed batch
    ingestor_histogram_t commit_seconds; //  write + commit time of a batch

    //  Filled by ingestor_consumer_lag before each format.
    ingestor_lag_t lag[INGESTOR_LAG_MAX]; //  lag_count of them, by topic and partition
    size_t lag_count;
    int partitions_assigned; //  gauge: all assigned partitions, reported or not
} ingestor_stats_t;

//  Records one batch committed to PostgreSQL: entries (events, catalogue
//  changes and dead letters) in the batch-size histogram, the valid events
//  (borrowed, count of them) and video_count catalogue changes per source
//  topic in committed[], what the store reported (result, borrowed; NULL:
//  nothing) in stored[], duplicates[], videos_*, dead_lettered and
//  batches, and seconds (from the start of the write to the end of its
//  commit) in the commit-latency histogram. Cannot fail.
void ingestor_metrics_observe_batch(ingestor_stats_t *stats, const event_t *events, size_t count,
                                    size_t video_count, const store_result_t *result,
                                    size_t entries, double seconds);

//  Sum of stored[] (or duplicates[]) over the topics. Cannot fail.
uint64_t ingestor_metrics_total(const uint64_t per_topic[EVENT_SOURCE_COUNT]);

//  Writes the Prometheus text for instance into buf. topics names the
//  input topics by event_source_t (borrowed). Returns 0, or -1 if it does
//  not fit.
int ingestor_metrics_format(char *buf, size_t buflen, const char *instance,
                            const char *const topics[EVENT_SOURCE_COUNT],
                            const ingestor_stats_t *stats, const ingestor_notify_stats_t *notify);

#endif
