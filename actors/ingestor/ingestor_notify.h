/*  ingestor_notify.h: what the event-ingestor says after a batch is
    stored, so the rest of the service sees the new interactions at once.

    - Redis: DEL "recsd:recs:<user_id>" for every distinct user of the batch
      (one pipeline), so the gateway's cached list is recomputed on the next
      request. Redis trouble is logged (once per state change) and never
      holds ingestion up: commands time out after REDIS_TIMEOUT_MS, and
      after a failure Redis is left alone for a back-off (1 s doubling to
      10 s). Users whose keys could not be deleted then keep their cached
      list until its TTL: counted, not retried.
    - ZeroMQ: one PROTO_INTERACTION per event on a PUB socket bound at
      config_endpoint(cfg, instance); the ranker subscribes to every
      instance's endpoint. ZMQ_XPUB_NODROP makes a full subscriber queue
      visible (EAGAIN) instead of a silent drop: such a notice is dropped
      and counted. Duplicates of stored events are published too (the
      store does not say which events of a batch were new); the ranker's
      fold-in must tolerate a repeat.
*/
#ifndef RECSD_INGESTOR_NOTIFY_H
#define RECSD_INGESTOR_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "ingestor_batch.h"

#define INGESTOR_NOTIFY_SNDHWM 200000
#define INGESTOR_REDIS_TIMEOUT_MS 200

typedef struct ingestor_notify_t ingestor_notify_t;

typedef struct {
    uint64_t published;         //  PROTO_INTERACTION notices sent
    uint64_t publish_dropped;   //  not sent: subscriber queue full, or unencodable
    uint64_t invalidated;       //  users whose cache key was deleted
    uint64_t invalidate_failed; //  users whose key could not be deleted
} ingestor_notify_stats_t;

//  Binds the PUB socket. cfg is borrowed and must outlive the notifier;
//  instance is copied. Redis is connected lazily. Returns NULL with the
//  reason in err.
ingestor_notify_t *ingestor_notify_new(const config_t *cfg, const char *instance, char *err,
                                       size_t errlen);

//  Closes both; idempotent.
void ingestor_notify_destroy(ingestor_notify_t **self_p);

//  Invalidates and announces the stored events (borrowed); each notice
//  carries its event's trace context from traceparents (parallel to
//  events; NULL: none). now_ms is monotonic. Cannot fail: trouble is
//  logged and counted.
void ingestor_notify_batch(ingestor_notify_t *self, const event_t *events,
                           const ingestor_traceparent_t *traceparents, size_t count,
                           const event_rules_t *rules, int64_t now_ms);

//  Counters since start.
ingestor_notify_stats_t ingestor_notify_stats(const ingestor_notify_t *self);

#endif
