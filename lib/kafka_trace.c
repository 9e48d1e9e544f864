/*  kafka_trace.c: reading a traceparent header (see kafka_trace.h). */
#include "kafka_trace.h"

#include <string.h>

bool kafka_trace_context(const rd_kafka_headers_t *hdrs, trace_ctx_t *ctx)
{
    const void *value = NULL;
    size_t size = 0;
    char text[TRACE_TRACEPARENT_LEN + 1];
    if (!hdrs ||
        rd_kafka_header_get_last(hdrs, KAFKA_TRACE_HEADER, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value || size != TRACE_TRACEPARENT_LEN)
        return false;
    memcpy(text, value, size);
    text[size] = '\0';
    return trace_ctx_parse(text, ctx) == 0;
}
