/*  trace_exporter.h: the span exporter behind trace.h: a bounded queue of
    ended spans and one background thread that sends them in batches to an
    OpenTelemetry collector as OTLP/HTTP JSON (POST <url>, Content-Type
    application/json), through libcurl.

    Batching follows the OpenTelemetry batch span processor: the thread
    sends when max_batch spans are waiting or schedule_delay_ms after the
    previous export, whichever comes first. A submit to a full queue drops
    the span and counts it; it never blocks. An export that fails (no
    collector, HTTP status outside 2xx, timeout) counts its spans as
    failed and is logged at most once per 10 s with the number of
    failures left unlogged; it is not retried (the next batch is newer
    data, and a collector that is down would only back the queue up).
    Spans a collector reports rejected (partialSuccess.rejectedSpans)
    count as failed too.

    The body sent:
      {"resourceSpans":[{"resource":{"attributes":[...]},
        "scopeSpans":[{"scope":{"name":<scope>,"version":<v>},"spans":[
          {"traceId":"<32 hex>","spanId":"<16 hex>"[,"parentSpanId":"<16 hex>"],
           "name":..,"kind":<1..5>,"startTimeUnixNano":"<decimal>",
           "endTimeUnixNano":"<decimal>","attributes":[{"key":..,"value":
             {"stringValue":..}|{"intValue":"<decimal>"}|{"doubleValue":..}|
             {"boolValue":..}}],
           ["droppedAttributesCount":n,]"status":{["code":2,"message":..]}}]}]}]}
    ids in lowercase hex as the OTLP JSON encoding asks (not base64), the
    64-bit integers as decimal strings.

    The span's layout (struct trace_span_t) is defined here, shared by
    trace.c, which fills spans, and the exporter, which encodes and frees
    them: code that only traces includes trace.h, where the span is opaque.

    Threads: submit, flush and stats may be called from any thread.
    Ownership: the tracer owns the exporter; submit takes the span (freed
    with free() once sent, dropped or failed).
*/
#ifndef RECSD_TRACE_EXPORTER_H
#define RECSD_TRACE_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define TRACE_ATTRS_MAX 16 //  attributes per span (trace.h); more are dropped, counted
#define TRACE_NAME_MAX 63  //  span names longer than this are truncated
#define TRACE_KEY_MAX 47   //  attribute keys
#define TRACE_STR_MAX 127  //  string attribute values and status messages (UTF-8 safe cut)

typedef enum {
    TRACE_ATTR_STR = 0,
    TRACE_ATTR_INT,
    TRACE_ATTR_DOUBLE,
    TRACE_ATTR_BOOL
} trace_attr_type_t;

typedef struct {
    char key[TRACE_KEY_MAX + 1];
    trace_attr_type_t type;
    union {
        char s[TRACE_STR_MAX + 1];
        int64_t i;
        double d;
        bool b;
    } v;
} trace_attr_t;

//  One span, allocated by trace.c with malloc and freed by the exporter.
struct trace_span_t {
    tracer_t *tracer; //  borrowed: children start in it, the end submits to it
    char name[TRACE_NAME_MAX + 1];
    trace_kind_t kind;
    trace_ctx_t ctx; //  the span's own context (trace id, span id, sampled)
    uint8_t parent_span_id[8];
    bool has_parent;
    uint64_t start_ns; //  Unix time, ns
    uint64_t end_ns;
    uint32_t n_attrs;
    uint32_t dropped_attrs;
    bool error;
    char status_message[TRACE_STR_MAX + 1];
    trace_attr_t attrs[TRACE_ATTRS_MAX];
};

typedef struct trace_exporter_t trace_exporter_t;

//  A request header: name and value, both borrowed during trace_exporter_new.
typedef struct {
    const char *name;
    const char *value;
} trace_header_t;

typedef struct {
    const char *url;               //  the traces endpoint, http:// or https://
    const trace_header_t *headers; //  extra request headers (may be NULL)
    size_t n_headers;              //
    const trace_attr_t *resource;  //  resource attributes, in order (may be NULL)
    size_t n_resource;             //
    const char *scope_name;        //  instrumentation scope, e.g. "recsd"
    const char *scope_version;     //  NULL or "": not sent
    size_t max_queue;              //  spans waiting, at most (>= 1)
    size_t max_batch;              //  spans per request, at most (1..max_queue)
    int schedule_delay_ms;         //  longest wait before an export (>= 0)
    int timeout_ms;                //  one POST, at most (> 0)
    int export_timeout_ms;         //  the flush at destroy, at most (>= 0)
} trace_exporter_config_t;

//  Copies cfg and starts the export thread. Returns NULL with the reason
//  in err (bad configuration, no memory, thread or libcurl set-up failed).
trace_exporter_t *trace_exporter_new(const trace_exporter_config_t *cfg, char *err, size_t errlen);

//  Exports what is queued (bounded by export_timeout_ms, a POST in flight
//  included: one still running then is aborted and its spans count as
//  failed; spans still queued count as dropped), stops the thread, frees.
//  Idempotent, sets *self_p to NULL.
void trace_exporter_destroy(trace_exporter_t **self_p);

//  Queues *span_p for export and sets it to NULL. Returns 0, or -1 when
//  the queue was full (the span is freed and counted as dropped). Never
//  blocks on the network.
int trace_exporter_submit(trace_exporter_t *self, trace_span_t **span_p);

//  Exports at once what is queued and waits until it was sent (or
//  failed). Returns 0, or -1 when timeout_ms passed first.
int trace_exporter_flush(trace_exporter_t *self, int timeout_ms);

//  The counters (see tracer_stats_t in trace.h). Cheap (atomics).
void trace_exporter_stats(const trace_exporter_t *self, tracer_stats_t *stats);

#endif
