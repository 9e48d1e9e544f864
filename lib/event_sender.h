/*  event_sender.h: how an actor hands a fire-and-forget event to the
    publisher, the only Kafka producer, without ever waiting for it.

    A PUSH socket connected to every publisher instance's events endpoint
    (event_sender_endpoint), ZMQ_IMMEDIATE (nothing is queued for a
    publisher that is not connected), a small send high-water mark
    (EVENT_SENDER_SNDHWM) and ZMQ_DONTWAIT sends. A message that cannot be
    queued at once -- no publisher, or the publisher is behind (its own
    bounded queue and ZeroMQ's are full) -- is dropped and counted
    (event_sender_dropped); the caller never blocks and never sees an error
    it must act on. Delivery is at most once: the publisher may also drop
    under backpressure or lose what it holds when it dies (see
    actors/publisher/publisher.c). Events that must not be lost go through
    the outbox instead.

    Not thread-safe: one sender per thread (ZeroMQ sockets are not shared).
    Create it in the thread that uses it, after the actor's fork.

    RecommendationsRefreshed (issue 5): topic
    EVENT_TOPIC_RECOMMENDATIONS_REFRESHED, key = user_id, headers
    content-type: application/json and event-type: RecommendationsRefreshed,
    payload
        {"user_id": str, "recommendation_ids": [str...], "model_id": str|null,
         "timestamp": "2026-11-29T02:50:38.123Z"}
    (model_id null when the list came from no model, e.g. popularity
    fallback with an empty model id; timestamp RFC 3339 UTC, milliseconds).
*/
#ifndef RECSD_EVENT_SENDER_H
#define RECSD_EVENT_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto/proto.h"
#include "proto/proto_event.h"

#define EVENT_TOPIC_RECOMMENDATIONS_REFRESHED "recommendation-service.recommendations-refreshed"
#define EVENT_SENDER_SNDHWM 100       //  messages ZeroMQ holds on the sending side
#define EVENT_SENDER_SUFFIX "-events" //  endpoint of publisher instance X: ipc://<rt>/X-events

typedef struct event_sender_t event_sender_t;

//  "ipc://<runtime_dir>/<instance>-events": where publisher instance
//  `instance` (e.g. "publisher", "publisher.2") binds its PULL socket.
//  Returns 0, or -1 if it does not fit.
int event_sender_endpoint(const config_t *cfg, const char *instance, char *buf, size_t buflen);

//  Creates a sender connected to every publisher instance cfg runs (none:
//  every event is dropped and counted). cfg is only read here. Returns NULL
//  with the reason in err (socket creation failed, endpoint too long).
event_sender_t *event_sender_new(const config_t *cfg, char *err, size_t errlen);

//  Closes the socket without lingering (queued events are lost: at most
//  once). Idempotent, sets *self_p to NULL.
void event_sender_destroy(event_sender_t **self_p);

//  Sends event (borrowed) without blocking. Returns 0 if queued for the
//  publisher, -1 if dropped (counted; also an event that fails to encode).
int event_sender_send(event_sender_t *self, const proto_event_t *event);

//  Builds and sends a RecommendationsRefreshed event (format above) for
//  user_id's freshly computed list: the video ids of items[0..n) (borrowed;
//  at most PROTO_MAX_ITEMS are sent), model_id ("" or NULL: null) and
//  now_ms (ms since the Unix epoch), with a "traceparent" header when
//  traceparent (the computing request's trace context) is neither NULL nor
//  "": the publisher's producer span joins that trace. Never blocks.
//  Returns 0 if queued, -1 if dropped (counted).
int event_sender_recommendations_refreshed(event_sender_t *self, const char *user_id,
                                           const proto_rec_item_t *items, size_t n,
                                           const char *model_id, uint64_t now_ms,
                                           const char *traceparent);

//  Events queued for the publisher since creation.
uint64_t event_sender_sent(const event_sender_t *self);

//  Events dropped since creation (no publisher, queue full, or not encodable).
uint64_t event_sender_dropped(const event_sender_t *self);

#endif
