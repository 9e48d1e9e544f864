/*  publisher_trace.h: a producer span for each Kafka message the publisher
    sends, joined to the trace its event came from.

    An event's trace context arrives as its "traceparent" header: an
    outbox row's headers column (the training registry copies the
    requester's context there) or an actor's event (the ranker puts the
    request's context on RecommendationsRefreshed). The publisher starts
    a PRODUCER span "kafka.produce" under it and rewrites that header to
    the span's own context, so that a consumer's span becomes its child,
    as W3C's trace context for messaging asks. Without tracing the
    headers go out untouched.
*/
#ifndef RECSD_PUBLISHER_TRACE_H
#define RECSD_PUBLISHER_TRACE_H

#include <librdkafka/rdkafka.h>

#include "trace.h"

//  Starts the span for a message to topic with the headers hdrs (borrowed;
//  its "traceparent" is replaced by the span's context). Returns the span
//  (the caller ends it once the message is handed to librdkafka), or NULL
//  when tracing is off, not sampled, or tracer is NULL.
trace_span_t *publisher_trace_produce(tracer_t *tracer, rd_kafka_headers_t *hdrs,
                                      const char *topic);

#endif
