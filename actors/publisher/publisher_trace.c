/*  publisher_trace.c: producer spans and the traceparent header (see
    publisher_trace.h). */
#include "publisher_trace.h"

#include "kafka_trace.h"
#include "log.h"

trace_span_t *publisher_trace_produce(tracer_t *tracer, rd_kafka_headers_t *hdrs, const char *topic)
{
    if (!tracer_enabled(tracer))
        return NULL;
    trace_ctx_t parent;
    bool has_parent = kafka_trace_context(hdrs, &parent);
    trace_span_t *span =
        tracer_start(tracer, "kafka.produce", TRACE_KIND_PRODUCER, has_parent ? &parent : NULL);
    if (!span)
        return NULL;
    trace_span_set_str(span, "messaging.system", "kafka");
    trace_span_set_str(span, "messaging.operation.type", "publish");
    trace_span_set_str(span, "messaging.destination.name", topic);
    char text[TRACE_TRACEPARENT_LEN + 1];
    trace_traceparent(span, NULL, text);
    //  Replace, never add a second one: a consumer takes the last, but
    //  another reader might take the first.
    rd_kafka_resp_err_t rc = rd_kafka_header_remove(hdrs, KAFKA_TRACE_HEADER);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR__NOENT)
        log_warn("publisher: traceparent header not removed: %s", rd_kafka_err2str(rc));
    else if ((rc = rd_kafka_header_add(hdrs, KAFKA_TRACE_HEADER, -1, text, -1)) !=
             RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("publisher: traceparent header not added: %s", rd_kafka_err2str(rc));
    return span;
}
