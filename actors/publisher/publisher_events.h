/*  publisher_events.h: the publisher's bounded in-memory event queue.

    Other actors send fire-and-forget events (proto/proto_event.h) with
    lib/event_sender.h to a PULL socket this class binds at
    event_sender_endpoint(cfg, instance) ("ipc://<runtime_dir>/publisher-events"
    for a single publisher), receive high-water mark PUBLISHER_EVENTS_RCVHWM.
    publisher_events_receive drains that socket into a FIFO of at most
    PUBLISHER_EVENTS_QUEUE_MAX decoded events; publisher_events_produce hands
    them to the shared Kafka producer while fewer than
    PUBLISHER_EVENTS_INFLIGHT_MAX are awaiting a delivery report, so events
    can never fill librdkafka's queue and starve the outbox relay.

    Backpressure (Kafka slow or down): the FIFO fills, and further events
    are dropped on arrival and counted (newest dropped: what is queued is
    produced first); the socket keeps being drained, so senders never block
    and ZeroMQ's queues stay short. A malformed message is counted invalid
    and dropped. An event whose produce fails (refused, or no ack within
    PUBLISHER_MESSAGE_TIMEOUT_MS) is counted failed and not retried.

    Delivery is at most once: nothing is persisted, so events queued or in
    flight when the publisher dies are lost, and librdkafka's own retries
    are the only ones. (The idempotent producer keeps what it does deliver
    free of duplicates and in order per partition.) Events that must not
    be lost go through the outbox.

    Logging: each kind of problem (invalid, dropped, failed) is logged at
    warn when it starts, then at most every 10 s with the count since, so a
    flood cannot flood the log; the end of a drop spell is logged at info.

    Events are produced with their seq numbers tagged PUBLISHER_EVENT_SEQ_BIT,
    so the actor's delivery callback tells them from outbox rows.
*/
#ifndef RECSD_PUBLISHER_EVENTS_H
#define RECSD_PUBLISHER_EVENTS_H

#include <czmq.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "trace.h"
#include "publisher_producer.h"

#define PUBLISHER_EVENTS_RCVHWM 1000
#define PUBLISHER_EVENTS_QUEUE_MAX 10000
#define PUBLISHER_EVENTS_INFLIGHT_MAX 10000
#define PUBLISHER_EVENTS_RECV_BATCH 1000 //  messages read per call, so the loop stays responsive
#define PUBLISHER_EVENT_SEQ_BIT (UINT64_C(1) << 63)

typedef struct publisher_events_t publisher_events_t;

typedef struct {
    uint64_t received; //  messages read from the socket (valid or not)
    uint64_t invalid;  //  of which malformed, dropped
    uint64_t dropped;  //  valid, dropped because the queue was full
    uint64_t produced; //  acknowledged by Kafka
    uint64_t failed;   //  refused by the producer or failed delivery (not retried)
    size_t queued;     //  in the FIFO now
    size_t inflight;   //  handed to the producer, awaiting a report
} publisher_events_stats_t;

//  Binds the events socket of publisher instance `instance` (borrowed).
//  cfg is only read here. queue_max (0: PUBLISHER_EVENTS_QUEUE_MAX) bounds
//  the FIFO. Returns NULL with the reason in err.
publisher_events_t *publisher_events_new(const config_t *cfg, const char *instance,
                                         size_t queue_max, char *err, size_t errlen);

//  Closes the socket and frees queued events. Idempotent.
void publisher_events_destroy(publisher_events_t **self_p);

//  The PULL socket, for the actor's poll (borrowed).
zsock_t *publisher_events_socket(publisher_events_t *self);

//  Reads up to PUBLISHER_EVENTS_RECV_BATCH waiting messages without
//  blocking, queueing, dropping or rejecting each. Returns the number read.
size_t publisher_events_receive(publisher_events_t *self);

//  Produces queued events (oldest first) while fewer than
//  PUBLISHER_EVENTS_INFLIGHT_MAX are in flight, each with a producer span
//  when tracer (may be NULL) traces (publisher_trace.h). producer and
//  tracer are borrowed. Returns the number handed over.
size_t publisher_events_produce(publisher_events_t *self, publisher_producer_t *producer,
                                tracer_t *tracer);

//  The delivery report of an event (seq has PUBLISHER_EVENT_SEQ_BIT set).
void publisher_events_delivered(publisher_events_t *self, uint64_t seq, rd_kafka_resp_err_t err);

//  The counters (see the struct).
publisher_events_stats_t publisher_events_stats(const publisher_events_t *self);

#endif
