/*  ingestor_batch.h: the event-ingestor's unflushed batch and its flush
    policy.

    A batch collects the events of one PostgreSQL transaction: valid events,
    catalogue changes (VideoUpserted), dead letters (copies of the original bytes with the reason),
   and for each (topic, partition) the highest offset seen, which becomes the offset to commit once
   the batch is stored. It is due for writing when it holds batch_max entries or batch_ms have
   passed since its first one.

    Memory: events and catalogue changes are plain values (a change is a
    few KiB, so their array only grows when changes come) and dead-letter
    payloads are copied, so
    no Kafka message needs to outlive the call that added it. The batch may
    grow past batch_max (messages already fetched when the consumer was
    paused still have to go somewhere); the consumer pauses long before that
    matters. Topic names are borrowed: they must outlive the batch (the
    ingestor passes the configuration's strings).
*/
#ifndef RECSD_INGESTOR_BATCH_H
#define RECSD_INGESTOR_BATCH_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "interaction_store.h"
#include "trace.h"

typedef struct ingestor_batch_t ingestor_batch_t;

//  An event's trace context, "" if none: what its PROTO_INTERACTION
//  notice carries on.
typedef char ingestor_traceparent_t[TRACE_TRACEPARENT_LEN + 1];

//  A batch that is due at batch_max entries (>= 1) or batch_ms (>= 1) after
//  its first entry. Returns NULL on allocation failure.
ingestor_batch_t *ingestor_batch_new(size_t batch_max, int64_t batch_ms);

//  Frees the batch and everything it copied; idempotent.
void ingestor_batch_destroy(ingestor_batch_t **self_p);

//  Adds a valid event read at (topic, partition, offset), with the trace
//  context to carry on (copied; NULL or "" for none); now_ms is a
//  monotonic clock (zclock_mono). Returns 0, or -1 on allocation failure
//  (the batch is unchanged).
int ingestor_batch_add_event(ingestor_batch_t *self, const event_t *event, const char *topic,
                             int32_t partition, int64_t offset, const char *traceparent,
                             int64_t now_ms);

//  Adds a valid catalogue change read at (topic, partition, offset).
//  Returns 0, or -1 on allocation failure (the batch is unchanged).
int ingestor_batch_add_video(ingestor_batch_t *self, const event_video_t *video, const char *topic,
                             int32_t partition, int64_t offset, int64_t now_ms);

//  Adds an invalid message: its bytes (copied) and the reason (copied).
//  Returns 0, or -1 on allocation failure (the batch is unchanged).
int ingestor_batch_add_dead(ingestor_batch_t *self, const char *topic, int32_t partition,
                            int64_t offset, const void *payload, size_t len, const char *reason,
                            int64_t now_ms);

//  Entries (events + catalogue changes + dead letters) in the batch.
size_t ingestor_batch_size(const ingestor_batch_t *self);

//  The valid events (borrowed, valid until the next add or clear).
const event_t *ingestor_batch_events(const ingestor_batch_t *self, size_t *count);

//  The events' trace contexts, parallel to ingestor_batch_events (borrowed,
//  valid until the next add or clear).
const ingestor_traceparent_t *ingestor_batch_traceparents(const ingestor_batch_t *self);

//  The catalogue changes (borrowed, valid until the next add or clear).
const event_video_t *ingestor_batch_videos(const ingestor_batch_t *self, size_t *count);

//  The dead letters (borrowed, valid until the next add or clear).
const dead_letter_t *ingestor_batch_dead(const ingestor_batch_t *self, size_t *count);

//  Milliseconds until the batch is due (0: due now), or -1 if it is empty.
int64_t ingestor_batch_due_in(const ingestor_batch_t *self, int64_t now_ms);

//  The offsets to commit once the batch is stored: highest offset + 1 per
//  (topic, partition). Returns a list the caller owns
//  (rd_kafka_topic_partition_list_destroy), or NULL if the batch is empty
//  or on allocation failure.
rd_kafka_topic_partition_list_t *ingestor_batch_offsets(const ingestor_batch_t *self);

//  Empties the batch (keeps its memory for the next one).
void ingestor_batch_clear(ingestor_batch_t *self);

#endif
