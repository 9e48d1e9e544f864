/*  test_trace_exporter.c: the OTLP/HTTP JSON exporter (lib/trace_exporter.c)
    against a real HTTP receiver: a libmicrohttpd daemon inside the test on
    a free loopback port, which records every POST (path, headers, body)
    and can answer with any status or stall before answering. Checks the
    JSON a collector gets, batching, headers, the drop counter with a tiny
    queue (stalled receiver, absent receiver) and failure counting. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"
#include "trace_exporter.h"

#define MAX_POSTS 64

typedef struct {
    char path[128];
    char headers[2048]; //  "name: value\n" lines, names lowercased by us
    char *body;
    size_t len;
} post_t;

static struct {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    post_t posts[MAX_POSTS];
    int n_posts;
    atomic_int status;   //  what to answer
    atomic_int stall_ms; //  wait before answering
    atomic_int arrived;  //  requests whose body was read (answered or stalling)
    char url[64];
} r = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct {
    char *body;
    size_t len;
} upload_t;

static enum MHD_Result s_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    post_t *p = cls;
    size_t used = strlen(p->headers);
    char name[128];
    snprintf(name, sizeof name, "%s", key);
    for (char *c = name; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    snprintf(p->headers + used, sizeof p->headers - used, "%s: %s\n", name, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *size, void **req_cls)
{
    (void)cls;
    (void)version;
    upload_t *up = *req_cls;
    if (!up) {
        *req_cls = calloc(1, sizeof *up);
        return *req_cls ? MHD_YES : MHD_NO;
    }
    if (*size) {
        up->body = realloc(up->body, up->len + *size + 1);
        memcpy(up->body + up->len, data, *size);
        up->len += *size;
        up->body[up->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&r.arrived, 1);
    int stall = atomic_load(&r.stall_ms);
    if (stall > 0)
        usleep((useconds_t)stall * 1000);
    pthread_mutex_lock(&r.lock);
    if (strcmp(method, "POST") == 0 && r.n_posts < MAX_POSTS) {
        post_t *p = &r.posts[r.n_posts++];
        memset(p, 0, sizeof *p);
        snprintf(p->path, sizeof p->path, "%s", url);
        MHD_get_connection_values(conn, MHD_HEADER_KIND, s_header, p);
        p->body = up->body;
        p->len = up->len;
        up->body = NULL;
    }
    pthread_mutex_unlock(&r.lock);
    static const char answer[] = "{}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(2, (void *)answer, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)atomic_load(&r.status), resp);
    MHD_destroy_response(resp);
    return ok;
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    upload_t *up = *req_cls;
    if (up) {
        free(up->body);
        free(up);
    }
    *req_cls = NULL;
}

static void s_receiver_start(void)
{
    atomic_store(&r.status, 200);
    atomic_store(&r.stall_ms, 0);
    atomic_store(&r.arrived, 0);
    r.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                                NULL, NULL, s_access, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                s_completed, NULL, MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
    cr_assert_not_null(r.daemon, "receiver did not start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r.daemon, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert(info && info->port > 0);
    r.port = info->port;
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:%d", r.port);
}

static void s_receiver_stop(void)
{
    if (r.daemon)
        MHD_stop_daemon(r.daemon);
    r.daemon = NULL;
    for (int i = 0; i < r.n_posts; i++)
        free(r.posts[i].body);
    r.n_posts = 0;
}

static int s_posts(void)
{
    pthread_mutex_lock(&r.lock);
    int n = r.n_posts;
    pthread_mutex_unlock(&r.lock);
    return n;
}

static bool s_wait_posts(int n, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (s_posts() >= n)
            return true;
        usleep(10000);
    }
    return s_posts() >= n;
}

static void s_env(const char *queue, const char *batch, const char *delay)
{
    static const char *vars[] = {"OTEL_SDK_DISABLED",
                                 "OTEL_TRACES_EXPORTER",
                                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                 "OTEL_EXPORTER_OTLP_HEADERS",
                                 "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                                 "OTEL_EXPORTER_OTLP_TIMEOUT",
                                 "OTEL_EXPORTER_OTLP_PROTOCOL",
                                 "OTEL_SERVICE_NAME",
                                 "OTEL_RESOURCE_ATTRIBUTES",
                                 "OTEL_TRACES_SAMPLER",
                                 "OTEL_TRACES_SAMPLER_ARG",
                                 "OTEL_BSP_EXPORT_TIMEOUT"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.url, 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", queue, 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", batch, 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", delay, 1);
}

static tracer_t *s_tracer(void)
{
    char err[512] = "";
    tracer_t *t = tracer_new("unit-actor", err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_assert(tracer_enabled(t));
    return t;
}

static json_t *s_spans_of(int post)
{
    json_error_t jerr;
    json_t *doc = json_loadb(r.posts[post].body, r.posts[post].len, 0, &jerr);
    cr_assert_not_null(doc, "post %d is not JSON: %s", post, jerr.text);
    return doc;
}

static json_t *s_span_list(json_t *doc)
{
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    return json_object_get(ss, "spans");
}

//  The attribute's value object, or NULL.
static json_t *s_attr(json_t *attrs, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_object_get(a, "value");
    }
    return NULL;
}

static bool s_lower_hex(const char *s, size_t len)
{
    if (!s || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

TestSuite(trace_exporter, .init = s_receiver_start, .fini = s_receiver_stop, .timeout = 60);

Test(trace_exporter, posts_otlp_json)
{
    s_env("64", "64", "60000");
    setenv("OTEL_SERVICE_NAME", "recsd-unit", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test", 1);
    tracer_t *t = s_tracer();
    trace_ctx_t remote;
    cr_assert_eq(
        trace_ctx_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", &remote), 0);
    trace_span_t *server = tracer_start(t, "GET /api/v1/recs/{userId}", TRACE_KIND_SERVER, &remote);
    trace_span_set_str(server, "http.route", "/api/v1/recs/{userId}");
    trace_span_set_int(server, "http.response.status_code", 200);
    trace_span_set_double(server, "recsd.ratio", 0.25);
    trace_span_set_bool(server, "recsd.cached", false);
    trace_span_set_str(server, "quote", "a \"quoted\" \xc3\xa9 value");
    trace_span_set_str(server, "bytes",
                       "a\xff\xc3"
                       "b\x01\\c"); //  not UTF-8, a control byte
    trace_span_t *client = trace_span_child(server, "ranker.recommend", TRACE_KIND_CLIENT);
    trace_span_set_error(client, "deadline passed");
    trace_ctx_t sctx, cctx;
    trace_span_ctx(server, &sctx);
    trace_span_ctx(client, &cctx);
    trace_span_end(&client);
    trace_span_end(&server);
    tracer_destroy(&t); //  flushes
    cr_assert_eq(s_posts(), 1, "one request, %d sent", s_posts());

    post_t *p = &r.posts[0];
    cr_assert_str_eq(p->path, "/v1/traces");
    cr_assert(strstr(p->headers, "content-type: application/json\n"), "%s", p->headers);
    json_t *doc = s_spans_of(0);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *rattrs = json_object_get(json_object_get(rs, "resource"), "attributes");
    cr_assert_str_eq(
        json_string_value(json_object_get(s_attr(rattrs, "service.name"), "stringValue")),
        "recsd-unit");
    const char *instance =
        json_string_value(json_object_get(s_attr(rattrs, "service.instance.id"), "stringValue"));
    cr_assert(instance && strncmp(instance, "unit-actor@", 11) == 0, "instance %s", instance);
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    cr_assert_str_eq(json_string_value(json_object_get(s_attr(rattrs, "process.pid"), "intValue")),
                     pid);
    cr_assert_str_eq(
        json_string_value(json_object_get(s_attr(rattrs, "deployment.environment"), "stringValue")),
        "test");
    json_t *scope = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "scope");
    cr_assert_str_eq(json_string_value(json_object_get(scope, "name")), "recsd");

    json_t *spans = s_span_list(doc);
    cr_assert_eq(json_array_size(spans), 2);
    //  Ended first, sent first: the client span, then the server span.
    json_t *c = json_array_get(spans, 0), *s = json_array_get(spans, 1);
    cr_assert_str_eq(json_string_value(json_object_get(s, "traceId")),
                     "0af7651916cd43dd8448eb211c80319c");
    cr_assert_str_eq(json_string_value(json_object_get(s, "parentSpanId")), "b7ad6b7169203331");
    cr_assert(s_lower_hex(json_string_value(json_object_get(s, "spanId")), 16));
    cr_assert_str_eq(json_string_value(json_object_get(c, "parentSpanId")),
                     json_string_value(json_object_get(s, "spanId")));
    cr_assert_str_eq(json_string_value(json_object_get(c, "traceId")),
                     "0af7651916cd43dd8448eb211c80319c");
    char span_hex[17];
    for (int i = 0; i < 8; i++)
        snprintf(span_hex + 2 * i, 3, "%02x", cctx.span_id[i]);
    cr_assert_str_eq(json_string_value(json_object_get(c, "spanId")), span_hex);
    cr_assert_eq(json_integer_value(json_object_get(s, "kind")), 2);
    cr_assert_eq(json_integer_value(json_object_get(c, "kind")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(s, "name")), "GET /api/v1/recs/{userId}");
    const char *start = json_string_value(json_object_get(s, "startTimeUnixNano"));
    const char *end = json_string_value(json_object_get(s, "endTimeUnixNano"));
    cr_assert(start && end, "times are decimal strings");
    unsigned long long st = strtoull(start, NULL, 10), en = strtoull(end, NULL, 10);
    cr_assert(en >= st && st > 1600000000ull * 1000000000ull, "start %s end %s", start, end);
    json_t *attrs = json_object_get(s, "attributes");
    cr_assert_str_eq(json_string_value(json_object_get(s_attr(attrs, "http.route"), "stringValue")),
                     "/api/v1/recs/{userId}");
    cr_assert_str_eq(
        json_string_value(json_object_get(s_attr(attrs, "http.response.status_code"), "intValue")),
        "200");
    cr_assert_eq(json_real_value(json_object_get(s_attr(attrs, "recsd.ratio"), "doubleValue")),
                 0.25);
    cr_assert(json_is_false(json_object_get(s_attr(attrs, "recsd.cached"), "boolValue")));
    cr_assert_str_eq(json_string_value(json_object_get(s_attr(attrs, "quote"), "stringValue")),
                     "a \"quoted\" \xc3\xa9 value");
    cr_assert_str_eq(json_string_value(json_object_get(s_attr(attrs, "bytes"), "stringValue")),
                     "a\xef\xbf\xbd\xef\xbf\xbd"
                     "b\x01\\c",
                     "bad bytes become U+FFFD");
    //  Status: error with its message on the client span, unset on the other.
    json_t *cst = json_object_get(c, "status");
    cr_assert_eq(json_integer_value(json_object_get(cst, "code")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(cst, "message")), "deadline passed");
    cr_assert_null(json_object_get(json_object_get(s, "status"), "code"));
    json_decref(doc);
}

Test(trace_exporter, headers_from_the_environment)
{
    s_env("64", "64", "60000");
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret,x-tenant=a%20b", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Tenant=traces", 1);
    tracer_t *t = s_tracer();
    trace_span_t *s = tracer_start(t, "one", TRACE_KIND_INTERNAL, NULL);
    trace_span_end(&s);
    tracer_destroy(&t);
    cr_assert_eq(s_posts(), 1);
    const char *h = r.posts[0].headers;
    cr_assert(strstr(h, "x-api-key: secret\n"), "%s", h);
    cr_assert(strstr(h, "x-tenant: traces\n"), "the traces variable wins: %s", h);
    cr_assert_null(strstr(h, "x-tenant: a b"), "%s", h);
}

Test(trace_exporter, full_batches_go_at_once_the_rest_on_flush)
{
    s_env("100", "10", "60000"); //  the schedule never fires during the test
    tracer_t *t = s_tracer();
    for (int i = 0; i < 25; i++) {
        trace_span_t *s = tracer_start(t, "batch", TRACE_KIND_INTERNAL, NULL);
        trace_span_set_int(s, "i", i);
        trace_span_end(&s);
    }
    cr_assert(s_wait_posts(2, 5000), "two full batches sent without waiting for the schedule");
    usleep(200000);
    cr_assert_eq(s_posts(), 2, "the 5 left wait for the schedule");
    tracer_destroy(&t);
    cr_assert_eq(s_posts(), 3);
    size_t sizes[3];
    int next = 0;
    for (int p = 0; p < 3; p++) {
        json_t *doc = s_spans_of(p);
        json_t *spans = s_span_list(doc);
        sizes[p] = json_array_size(spans);
        //  In order: each span's "i" follows the last one's.
        for (size_t k = 0; k < sizes[p]; k++) {
            json_t *attrs = json_object_get(json_array_get(spans, k), "attributes");
            const char *i = json_string_value(json_object_get(s_attr(attrs, "i"), "intValue"));
            cr_assert_eq(atoi(i), next++);
        }
        json_decref(doc);
    }
    cr_assert(sizes[0] == 10 && sizes[1] == 10 && sizes[2] == 5, "%zu %zu %zu", sizes[0], sizes[1],
              sizes[2]);
}

Test(trace_exporter, schedule_delay_sends_a_partial_batch)
{
    s_env("100", "50", "100");
    tracer_t *t = s_tracer();
    trace_span_t *s = tracer_start(t, "alone", TRACE_KIND_INTERNAL, NULL);
    trace_span_end(&s);
    cr_assert(s_wait_posts(1, 3000), "sent by the schedule");
    tracer_stats_t st;
    for (int i = 0; i < 100 && (tracer_stats(t, &st), st.exported < 1); i++)
        usleep(10000);
    cr_assert_eq(st.exported, 1);
    cr_assert_eq(st.queued, 1);
    tracer_destroy(&t);
}

Test(trace_exporter, tiny_queue_and_stalled_receiver_drop_and_count)
{
    s_env("4", "2", "0");
    setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10000", 1);
    atomic_store(&r.stall_ms, 3000);
    tracer_t *t = s_tracer();
    //  A first batch, until the receiver holds it: the export thread is
    //  now stuck in its POST.
    for (int i = 0; i < 2; i++) {
        trace_span_t *s = tracer_start(t, "first", TRACE_KIND_INTERNAL, NULL);
        trace_span_end(&s);
    }
    for (int i = 0; i < 300 && atomic_load(&r.arrived) < 1; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&r.arrived), 1, "the first batch reached the receiver");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 50; i++) {
        trace_span_t *s = tracer_start(t, "flood", TRACE_KIND_INTERNAL, NULL);
        trace_span_end(&s);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert(took < 0.5, "ending spans blocked on a stalled collector (%.3f s)", took);
    tracer_stats_t st;
    tracer_stats(t, &st);
    cr_assert_eq(st.dropped, 46, "a queue of 4 keeps 4 of 50: dropped %llu",
                 (unsigned long long)st.dropped);
    cr_assert_eq(st.queued, 2 + 4);
    cr_assert_eq(st.exported, 0, "the first batch is still stalled");
    char text[1024];
    size_t len = 0;
    cr_assert_eq(tracer_metrics(t, "gw", text, sizeof text, &len), 0);
    cr_assert(strstr(text, "recsd_trace_spans_total{actor=\"gw\",result=\"dropped\"} 46\n"), "%s",
              text);
    atomic_store(&r.stall_ms, 0);
    tracer_destroy(&t); //  waits for the stalled request, then sends the 4 queued
    cr_assert_eq(s_posts(), 1 + 2);
    size_t total = 0;
    for (int p = 0; p < 3; p++) {
        json_t *doc = s_spans_of(p);
        total += json_array_size(s_span_list(doc));
        json_decref(doc);
    }
    cr_assert_eq(total, 6);
}

Test(trace_exporter, absent_receiver_counts_failures_without_blocking)
{
    s_env("1000", "10", "0");
    char url[64];
    snprintf(url, sizeof url, "%s", r.url);
    s_receiver_stop(); //  nobody listens on the port any more
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    tracer_t *t = s_tracer();
    for (int i = 0; i < 30; i++) {
        trace_span_t *s = tracer_start(t, "lost", TRACE_KIND_INTERNAL, NULL);
        trace_span_end(&s);
    }
    tracer_stats_t st = {0};
    for (int i = 0; i < 300 && (tracer_stats(t, &st), st.failed < 30); i++)
        usleep(10000);
    cr_assert_eq(st.failed, 30);
    cr_assert_eq(st.exported, 0);
    tracer_destroy(&t);
}

Test(trace_exporter, error_status_counts_as_failed)
{
    s_env("100", "5", "0");
    atomic_store(&r.status, 503);
    tracer_t *t = s_tracer();
    for (int i = 0; i < 5; i++) {
        trace_span_t *s = tracer_start(t, "refused", TRACE_KIND_INTERNAL, NULL);
        trace_span_end(&s);
    }
    tracer_destroy(&t);
    cr_assert_geq(s_posts(), 1);
    //  (stats are gone with the tracer: check through the exporter directly)
    trace_exporter_config_t cfg = {.url = r.url,
                                   .max_queue = 4,
                                   .max_batch = 4,
                                   .schedule_delay_ms = 0,
                                   .timeout_ms = 2000,
                                   .export_timeout_ms = 2000};
    char err[256];
    trace_exporter_t *x = trace_exporter_new(&cfg, err, sizeof err);
    cr_assert_not_null(x, "%s", err);
    trace_span_t *span = calloc(1, sizeof *span);
    span->ctx.trace_id[15] = 1;
    span->ctx.span_id[7] = 1;
    span->kind = TRACE_KIND_INTERNAL;
    cr_assert_eq(trace_exporter_submit(x, &span), 0);
    cr_assert_null(span);
    cr_assert_eq(trace_exporter_flush(x, 3000), 0);
    tracer_stats_t st;
    trace_exporter_stats(x, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.exported, 0);
    trace_exporter_destroy(&x);
    cr_assert_null(x);
}

Test(trace_exporter, invalid_configuration_is_refused)
{
    char err[256] = "";
    trace_exporter_config_t bad[] = {
        {.url = "ftp://x", .max_queue = 1, .max_batch = 1, .timeout_ms = 1},
        {.url = r.url, .max_queue = 0, .max_batch = 1, .timeout_ms = 1},
        {.url = r.url, .max_queue = 2, .max_batch = 3, .timeout_ms = 1},
        {.url = r.url, .max_queue = 2, .max_batch = 1, .timeout_ms = 0},
        {.url = NULL, .max_queue = 2, .max_batch = 1, .timeout_ms = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_null(trace_exporter_new(&bad[i], err, sizeof err), "config %zu accepted", i);
    trace_header_t crlf = {"x-evil", "a\r\nInjected: yes"};
    trace_exporter_config_t inj = {.url = r.url,
                                   .headers = &crlf,
                                   .n_headers = 1,
                                   .max_queue = 1,
                                   .max_batch = 1,
                                   .timeout_ms = 1};
    cr_assert_null(trace_exporter_new(&inj, err, sizeof err));
    cr_assert(strstr(err, "line break"), "%s", err);
}

Test(trace_exporter, destroy_is_bounded_by_the_export_timeout)
{
    atomic_store(&r.stall_ms, 5000);
    trace_exporter_config_t cfg = {.url = r.url,
                                   .max_queue = 8,
                                   .max_batch = 1,
                                   .schedule_delay_ms = 0,
                                   .timeout_ms = 10000,
                                   .export_timeout_ms = 300};
    char err[256];
    trace_exporter_t *x = trace_exporter_new(&cfg, err, sizeof err);
    cr_assert_not_null(x, "%s", err);
    for (int i = 0; i < 3; i++) {
        trace_span_t *span = calloc(1, sizeof *span);
        span->ctx.trace_id[15] = 1;
        span->ctx.span_id[7] = (uint8_t)(i + 1);
        span->kind = TRACE_KIND_INTERNAL;
        cr_assert_eq(trace_exporter_submit(x, &span), 0);
    }
    for (int i = 0; i < 300 && atomic_load(&r.arrived) < 1; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&r.arrived), 1, "the first span's POST is stalled");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    trace_exporter_destroy(&x); //  the stalled POST is cut off at 300 ms
    clock_gettime(CLOCK_MONOTONIC, &b);
    double took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert(took < 2.0, "destroy took %.2f s with a 0.3 s export timeout", took);
    cr_assert_null(x);
    atomic_store(&r.stall_ms, 0);
}
