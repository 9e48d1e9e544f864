/*  kafka_trace.h: the W3C trace context in a Kafka message's headers.

    The "traceparent" header carries it, as W3C's trace context for
    messaging asks: the ingestor reads it from what it consumes, the
    publisher reads it from what it is about to produce and replaces it with
    its producer span's context. One reader for both, so that they agree on
    what a well-formed header is.
*/
#ifndef RECSD_KAFKA_TRACE_H
#define RECSD_KAFKA_TRACE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "trace.h"

#define KAFKA_TRACE_HEADER "traceparent"

//  The context in the last "traceparent" header of hdrs (borrowed; NULL:
//  none), into ctx. Returns false if there is none or it is malformed.
bool kafka_trace_context(const rd_kafka_headers_t *hdrs, trace_ctx_t *ctx);

#endif
