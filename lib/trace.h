/*  trace.h: distributed tracing in the OpenTelemetry model: W3C trace
    context, spans with attributes, head sampling, and export through a
    trace_exporter_t (OTLP/HTTP JSON, batched, off the caller's thread).

    Configured by the standard OpenTelemetry variables, read by tracer_new:
      OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none   tracing off
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   full URL of the traces endpoint
      OTEL_EXPORTER_OTLP_ENDPOINT          base URL; "/v1/traces" is appended
        (neither set: tracing off; this is the default and costs one NULL
        test per instrumentation point)
      OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_TRACES_HEADERS
                                           "k1=v1,k2=v2" request headers
      OTEL_EXPORTER_OTLP_TIMEOUT / …_TRACES_TIMEOUT  export timeout, ms
      OTEL_SERVICE_NAME                    resource service.name ("recsd")
      OTEL_RESOURCE_ATTRIBUTES             "k=v,…" extra resource attributes
      OTEL_TRACES_SAMPLER                  always_on, always_off,
        traceidratio, parentbased_always_on (default),
        parentbased_always_off, parentbased_traceidratio
      OTEL_TRACES_SAMPLER_ARG              the ratio for *traceidratio
      OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512),
      OTEL_BSP_SCHEDULE_DELAY (5000 ms), OTEL_BSP_EXPORT_TIMEOUT (30000 ms)
    An invalid value is a start-up error (tracer_new returns NULL with the
    reason), never a silent default.

    Cost model: when tracing is off or a trace is not sampled, every span
    function receives NULL and returns at once; no clock read, no
    allocation. Sampled spans are allocated by tracer_start/trace_span_child,
    filled by the caller's thread, and handed to the exporter's bounded
    queue by trace_span_end; a full queue drops the span and counts it.

    Threads: a tracer_t may be used from several threads at once (the
    gateway's HTTP threads). A span belongs to one thread at a time.

    Ownership: tracer_new returns a tracer the caller destroys with
    tracer_destroy (which flushes what is queued, bounded by the export
    timeout). A span returned by tracer_start/trace_span_child is owned by
    the caller until trace_span_end, which takes it and sets the pointer to
    NULL. A span must end before its tracer is destroyed. Strings passed
    in are copied.
*/
#ifndef RECSD_TRACE_H
#define RECSD_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_TRACEPARENT_LEN 55 //  "00-<32 hex>-<16 hex>-<2 hex>"

//  A W3C trace context: what travels between processes.
typedef struct {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags; //  bit 0: sampled
} trace_ctx_t;

//  Parses a traceparent header value (version 00; a higher version is
//  accepted by its first four fields, as the W3C spec asks). Returns 0, or
//  -1 if it is malformed or has an all-zero trace or span id (the caller
//  then starts a new trace; a bad header is never an error response).
int trace_ctx_parse(const char *text, trace_ctx_t *ctx);

//  Writes "00-<trace>-<span>-<flags>" (TRACE_TRACEPARENT_LEN + 1 bytes).
void trace_ctx_format(const trace_ctx_t *ctx, char out[TRACE_TRACEPARENT_LEN + 1]);

bool trace_ctx_sampled(const trace_ctx_t *ctx);

typedef enum {
    TRACE_KIND_INTERNAL = 1, //  values are OTLP's SpanKind
    TRACE_KIND_SERVER = 2,
    TRACE_KIND_CLIENT = 3,
    TRACE_KIND_PRODUCER = 4,
    TRACE_KIND_CONSUMER = 5
} trace_kind_t;

typedef struct tracer_t tracer_t;
typedef struct trace_span_t trace_span_t;

//  A tracer for one actor process; actor becomes the resource attribute
//  service.instance.id's prefix and the instrumentation scope. Returns
//  NULL with the reason in err on an invalid OTEL_* value. With tracing
//  off the tracer exists but starts no span (tracer_enabled false) and
//  no thread.
tracer_t *tracer_new(const char *actor, char *err, size_t errlen);

//  Checks every OTEL_* variable tracer_new reads, starting nothing (no
//  thread, no libcurl), so that a process can refuse a bad configuration
//  before it forks its actors. Returns 0, or -1 with the reason in err.
//  (Added by the tracing implementation, after the first version.)
int tracer_check_env(char *err, size_t errlen);

//  Flushes queued spans (bounded by the export timeout), stops the export
//  thread, frees. Idempotent.
void tracer_destroy(tracer_t **self_p);

bool tracer_enabled(const tracer_t *self);

//  Starts a span. parent is the remote or local parent context, or NULL
//  for a new trace. Returns NULL when self is NULL, tracing is off, or the
//  sampler says no (with a parent-based sampler the parent's sampled flag
//  decides).
trace_span_t *tracer_start(tracer_t *self, const char *name, trace_kind_t kind,
                           const trace_ctx_t *parent);

//  Starts a child of parent in the same tracer; NULL if parent is NULL.
trace_span_t *trace_span_child(trace_span_t *parent, const char *name, trace_kind_t kind);

//  Attributes (at most 16 per span; more are dropped). No-ops on NULL.
void trace_span_set_str(trace_span_t *span, const char *key, const char *value);
void trace_span_set_int(trace_span_t *span, const char *key, int64_t value);
void trace_span_set_double(trace_span_t *span, const char *key, double value);
void trace_span_set_bool(trace_span_t *span, const char *key, bool value);

//  Marks the span's status as error with a short description. No-op on NULL.
void trace_span_set_error(trace_span_t *span, const char *message);

//  The span's own context, to propagate to a child process or message.
//  Returns 0, or -1 if span is NULL (ctx untouched).
int trace_span_ctx(const trace_span_t *span, trace_ctx_t *ctx);

//  The traceparent to send onward: the span's context when span is not
//  NULL, else the incoming parent's (so an unsampled or untraced request
//  still carries its caller's context on), else "". out has
//  TRACE_TRACEPARENT_LEN + 1 bytes.
void trace_traceparent(const trace_span_t *span, const trace_ctx_t *parent,
                       char out[TRACE_TRACEPARENT_LEN + 1]);

//  Ends the span now and hands it to the exporter (or drops it, counted,
//  when the queue is full). Takes ownership; sets *span_p to NULL. No-op
//  on NULL.
void trace_span_end(trace_span_t **span_p);

//  Counters for the actor's /metrics text: spans handed to the exporter's
//  queue, exported (accepted by the collector), dropped (queue full), and
//  failed (export error). All 0 when tracing is off or self is NULL.
typedef struct {
    uint64_t queued;
    uint64_t exported;
    uint64_t dropped;
    uint64_t failed;
} tracer_stats_t;
void tracer_stats(const tracer_t *self, tracer_stats_t *stats);

//  Appends the tracer's counters as Prometheus text lines
//  (recsd_trace_spans_total{actor="<instance>",result="exported|dropped|failed"})
//  to buf at *len (at most cap bytes). Writes nothing when tracing is off.
//  Returns 0, or -1 if it did not fit (buf unchanged past *len).
int tracer_metrics(const tracer_t *self, const char *instance, char *buf, size_t cap, size_t *len);

#endif
