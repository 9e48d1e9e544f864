/*  ingestor_consumer.h: the event-ingestor's Kafka consumer-group member.

    A librdkafka high-level consumer in group cfg->kafka_group, subscribed
    to the four input topics (cfg->topic_watched, topic_rated,
    topic_watchlist and the catalogue's topic_video_upserted; the group's
    assignment spreads the partitions of each of them), with automatic commits and automatic offset
   stores off: the owner commits explicitly, and only what PostgreSQL has stored. A new group starts
   at the earliest offset.

    Assignment strategy: "range", an eager protocol. On a rebalance every
    partition is revoked, the owner's revoke hook runs first (it flushes
    the batch, or drops it if the flush fails), then the assignment is
    given up; partitions then restart from the committed offsets, wherever
    they land. That keeps "the batch in memory" and "the positions librdkafka
    fetches from" in step without per-partition bookkeeping: with an
    incremental (cooperative) protocol a dropped batch would also hold
    messages of partitions we keep, whose fetch position is already past
    them.

    Pausing: pause()/resume() act on the whole current assignment and are
    remembered, so partitions assigned while paused are paused too.

    Logging: librdkafka's own log lines, errors and failed commits go to
    the JSON log.

    Lag (ingestor_consumer_lag): never a request to the broker. librdkafka
    caches each partition's high watermark from every fetch response and
    knows the position we consumed up to; their difference is the lag. It
    is cheaper than the statistics callback (no JSON built and parsed every
    interval) and as fresh, since that JSON's lag comes from the same
    cached watermark. Limits: the watermark is as of the last fetch, so it
    stands still while a partition is paused or its broker unreachable; and
    a partition has no position, hence no lag, until its first message
    since it was assigned.
*/
#ifndef RECSD_INGESTOR_CONSUMER_H
#define RECSD_INGESTOR_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "event.h"
#include "ingestor_metrics.h"

typedef struct ingestor_consumer_t ingestor_consumer_t;

//  Called from inside ingestor_consumer_poll (or _close) when the group
//  takes partitions away, before they are given up: the last moment a
//  commit for them is accepted.
typedef void(ingestor_revoke_fn)(void *arg);

//  A message the owner is to handle: its payload is borrowed from msg.
typedef struct {
    rd_kafka_message_t *msg; //  owned by the caller: ingestor_consumer_release
    event_source_t source;   //  which schema its topic carries
    const char *topic;       //  the configuration's topic name (borrowed)
} ingestor_message_t;

//  Creates the consumer and subscribes. cfg is borrowed and must outlive
//  the consumer; instance names the client in broker logs; on_revoke (may
//  be NULL) and arg are borrowed. Returns NULL with the reason in err.
ingestor_consumer_t *ingestor_consumer_new(const config_t *cfg, const char *instance,
                                           ingestor_revoke_fn *on_revoke, void *arg, char *err,
                                           size_t errlen);

//  Leaves the group (if close was not called) and frees everything;
//  idempotent.
void ingestor_consumer_destroy(ingestor_consumer_t **self_p);

//  Waits up to timeout_ms for the next message and serves the group's
//  callbacks meanwhile. Returns 1 with *out filled, or 0 if there was no
//  message (timeout, or an error event, which is logged).
int ingestor_consumer_poll(ingestor_consumer_t *self, int timeout_ms, ingestor_message_t *out);

//  Frees a message returned by poll; idempotent.
void ingestor_consumer_release(ingestor_message_t *message);

//  Commits offsets (borrowed): synchronously if sync (returns once the
//  group coordinator answered, or -1 after at most 1 s without an answer,
//  so the actor's loop keeps heartbeating while Kafka is unreachable), else
//  in the background (a failure is then logged). Returns 0, or -1 with the
//  reason in err.
int ingestor_consumer_commit(ingestor_consumer_t *self,
                             const rd_kafka_topic_partition_list_t *offsets, bool sync, char *err,
                             size_t errlen);

//  Stops (pause) or restarts (resume) fetching for all assigned partitions,
//  now and for later assignments. Returns 0, or -1 (logged).
int ingestor_consumer_pause(ingestor_consumer_t *self);
int ingestor_consumer_resume(ingestor_consumer_t *self);
bool ingestor_consumer_paused(const ingestor_consumer_t *self);

//  Partitions currently assigned to this member.
int ingestor_consumer_assigned(const ingestor_consumer_t *self);

//  Fills stats->lag (the INGESTOR_LAG_MAX partitions furthest behind,
//  ordered by topic and partition; topic names borrowed from the
//  configuration), stats->lag_count and stats->partitions_assigned, from
//  what librdkafka knows locally (see the top of this file). Does not
//  block; cannot fail (a partition whose lag is unknown is left out).
void ingestor_consumer_lag(ingestor_consumer_t *self, ingestor_stats_t *stats);

//  Leaves the group: the revoke hook runs for what is assigned. Returns 0,
//  or -1 (logged). Later polls return nothing.
int ingestor_consumer_close(ingestor_consumer_t *self);

#endif
