/*  trace_exporter.c: bounded span queue and OTLP/HTTP JSON export thread
    (see trace_exporter.h). */
#include "trace_exporter.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "log.h"

#define S_LOG_INTERVAL_MS 10000 //  export failures: at most one warning per this
#define S_RESPONSE_MAX 65536    //  collector answer kept (for partialSuccess)

struct trace_exporter_t {
    char *url;
    struct curl_slist *headers; //  Content-Type and the configured ones
    char *prefix;               //  the body up to the first span: resource and scope, built once
    size_t max_queue, max_batch;
    int schedule_delay_ms, timeout_ms, export_timeout_ms;
    bool curl_init; //  curl_global_init succeeded (balanced at destroy)

    pthread_mutex_t lock;
    pthread_cond_t wake; //  the thread: spans, a flush or stop
    pthread_cond_t done; //  flushers: an export finished
    trace_span_t **ring; //  under lock: max_queue slots
    size_t head, count;  //  under lock
    size_t in_flight;    //  under lock: spans the thread is sending now
    int flushers;        //  under lock: callers waiting in flush
    bool idle;           //  under lock: the thread sleeps on an empty queue
    bool stopping;       //  under lock
    uint64_t stop_deadline_ms;
    atomic_uint_fast64_t abort_at_ms; //  0, or when a POST in flight at destroy is cut off
    pthread_t thread;
    bool thread_started;

    //  Thread-only: the rate limit of failure warnings.
    uint64_t last_log_ms;
    uint64_t unlogged;

    atomic_uint_fast64_t queued, exported, dropped, failed;
};

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

//  An absolute CLOCK_MONOTONIC time ms from now, for the condition variables.
static struct timespec s_deadline(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

//  {"key":k,"value":{...}} for one attribute; NULL on allocation failure
//  (or a string that is not UTF-8, which trace.c never stores).
static json_t *s_attr_json(const trace_attr_t *a)
{
    json_t *value = NULL;
    char num[32];
    switch (a->type) {
    case TRACE_ATTR_STR:
        value = json_pack("{s:s}", "stringValue", a->v.s);
        break;
    case TRACE_ATTR_INT:
        snprintf(num, sizeof num, "%" PRId64, a->v.i);
        value = json_pack("{s:s}", "intValue", num);
        break;
    case TRACE_ATTR_DOUBLE:
        value = json_pack("{s:f}", "doubleValue", a->v.d);
        break;
    case TRACE_ATTR_BOOL:
        value = json_pack("{s:b}", "boolValue", a->v.b);
        break;
    }
    if (!value)
        return NULL;
    return json_pack("{s:s, s:o}", "key", a->key, "value", value);
}

static json_t *s_attrs_json(const trace_attr_t *attrs, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        json_t *one = s_attr_json(&attrs[i]);
        if (one && json_array_append_new(list, one) == 0)
            continue;
        json_decref(list);
        return NULL;
    }
    return list;
}

//  ---- the request body ------------------------------------------------------
//  Written by hand into one growing buffer rather than built as a jansson
//  tree: a span is a dozen attributes, each an object in an object, and
//  at full sampling the tree's allocations were most of the tracing cost
//  (bench/trace_bench.sh). jansson still builds the part every request
//  repeats (resource, scope) once, and reads the collector's answers.

typedef struct {
    char *data;
    size_t len, cap;
    bool failed; //  an allocation failed: the body is unusable
} s_out_t;

static void s_raw(s_out_t *out, const char *text, size_t len)
{
    if (out->failed)
        return;
    if (out->len + len + 1 > out->cap) {
        size_t cap = out->cap ? out->cap : 4096;
        while (cap < out->len + len + 1)
            cap *= 2;
        char *bigger = realloc(out->data, cap);
        if (!bigger) {
            out->failed = true;
            return;
        }
        out->data = bigger;
        out->cap = cap;
    }
    memcpy(out->data + out->len, text, len);
    out->len += len;
    out->data[out->len] = '\0';
}

static void s_lit(s_out_t *out, const char *text)
{
    s_raw(out, text, strlen(text));
}

//  The length of the valid UTF-8 sequence at p (2..4), or 0 if invalid.
static size_t s_utf8_len(const unsigned char *p)
{
    size_t n = (p[0] & 0xe0) == 0xc0   ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || (n == 2 && p[0] < 0xc2) || (n == 4 && p[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0; //  also stops at the NUL
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
        (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
        return 0; //  overlong, surrogate or past U+10FFFF
    return n;
}

//  A JSON string; a byte that is not UTF-8 becomes U+FFFD (a URL path
//  from a client may hold anything; one bad byte must not lose a batch).
static void s_str(s_out_t *out, const char *text)
{
    s_raw(out, "\"", 1);
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        s_raw(out, (const char *)p, run);
        p += run;
        if (!*p)
            break;
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            s_raw(out, esc, 2);
            p++;
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            s_raw(out, esc, 6);
            p++;
        } else {
            size_t n = s_utf8_len(p);
            if (n)
                s_raw(out, (const char *)p, n);
            else
                s_lit(out, "\\ufffd");
            p += n ? n : 1;
        }
    }
    s_raw(out, "\"", 1);
}

static void s_hex_str(s_out_t *out, const uint8_t *bytes, size_t n)
{
    char hex[40];
    hex_encode(bytes, n, hex);
    s_raw(out, "\"", 1);
    s_raw(out, hex, 2 * n);
    s_raw(out, "\"", 1);
}

static void s_attr_out(s_out_t *out, const trace_attr_t *a)
{
    char num[64] = "}}";
    s_lit(out, "{\"key\":");
    s_str(out, a->key);
    switch (a->type) {
    case TRACE_ATTR_STR:
        s_lit(out, ",\"value\":{\"stringValue\":");
        s_str(out, a->v.s);
        break;
    case TRACE_ATTR_INT:
        snprintf(num, sizeof num, ",\"value\":{\"intValue\":\"%" PRId64 "\"}}", a->v.i);
        break;
    case TRACE_ATTR_DOUBLE:
        //  trace.c stores only finite doubles; %.17g round-trips them.
        snprintf(num, sizeof num, ",\"value\":{\"doubleValue\":%.17g}}", a->v.d);
        break;
    case TRACE_ATTR_BOOL:
        snprintf(num, sizeof num, ",\"value\":{\"boolValue\":%s}}", a->v.b ? "true" : "false");
        break;
    }
    s_lit(out, num);
}

static void s_span_out(s_out_t *out, const trace_span_t *span)
{
    char num[128];
    s_lit(out, "{\"traceId\":");
    s_hex_str(out, span->ctx.trace_id, 16);
    s_lit(out, ",\"spanId\":");
    s_hex_str(out, span->ctx.span_id, 8);
    if (span->has_parent) {
        s_lit(out, ",\"parentSpanId\":");
        s_hex_str(out, span->parent_span_id, 8);
    }
    s_lit(out, ",\"name\":");
    s_str(out, span->name);
    snprintf(num, sizeof num,
             ",\"kind\":%d,\"startTimeUnixNano\":\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64
             "\",\"attributes\":[",
             (int)span->kind, span->start_ns, span->end_ns);
    s_lit(out, num);
    for (uint32_t i = 0; i < span->n_attrs; i++) {
        if (i)
            s_raw(out, ",", 1);
        s_attr_out(out, &span->attrs[i]);
    }
    s_raw(out, "]", 1);
    if (span->dropped_attrs) {
        snprintf(num, sizeof num, ",\"droppedAttributesCount\":%u", span->dropped_attrs);
        s_lit(out, num);
    }
    if (span->error) {
        s_lit(out, ",\"status\":{\"code\":2,\"message\":");
        s_str(out, span->status_message);
        s_lit(out, "}}");
    } else
        s_lit(out, ",\"status\":{}}");
}

//  The request body for spans[0..n) in out (emptied first). Returns 0,
//  or -1 on allocation failure.
static int s_encode(trace_exporter_t *self, trace_span_t **spans, size_t n, s_out_t *out)
{
    out->len = 0;
    out->failed = false;
    s_lit(out, self->prefix);
    for (size_t i = 0; i < n; i++) {
        if (i)
            s_raw(out, ",", 1);
        s_span_out(out, spans[i]);
    }
    s_lit(out, "]}]}]}");
    return out->failed ? -1 : 0;
}

typedef struct {
    char *data;
    size_t len;
} s_buf_t;

static size_t s_on_body(char *data, size_t size, size_t n, void *arg)
{
    s_buf_t *buf = arg;
    size_t len = size * n;
    size_t keep = len;
    if (buf->len + keep > S_RESPONSE_MAX)
        keep = S_RESPONSE_MAX - buf->len;
    if (keep) {
        char *bigger = realloc(buf->data, buf->len + keep + 1);
        if (!bigger)
            return len; //  the answer is only read for partialSuccess
        buf->data = bigger;
        memcpy(buf->data + buf->len, data, keep);
        buf->len += keep;
        buf->data[buf->len] = '\0';
    }
    return len;
}

//  Spans the collector said it rejected (OTLP partial success), 0 if none.
static uint64_t s_rejected(const s_buf_t *answer)
{
    if (!answer->data)
        return 0;
    json_t *doc = json_loadb(answer->data, answer->len, 0, NULL);
    json_t *rejected = json_object_get(json_object_get(doc, "partialSuccess"), "rejectedSpans");
    uint64_t n = 0;
    if (json_is_integer(rejected) && json_integer_value(rejected) > 0)
        n = (uint64_t)json_integer_value(rejected);
    else if (json_is_string(rejected))
        n = strtoull(json_string_value(rejected), NULL, 10); //  int64 as a JSON string
    json_decref(doc);
    return n;
}

static void s_failure(trace_exporter_t *self, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_failure(trace_exporter_t *self, size_t n, const char *fmt, ...)
{
    atomic_fetch_add(&self->failed, n);
    uint64_t now = s_mono_ms();
    if (self->last_log_ms && now - self->last_log_ms < S_LOG_INTERVAL_MS) {
        self->unlogged++;
        return;
    }
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    log_warn("trace export to %s failed, %zu spans lost: %s (%llu more failures since the last "
             "warning)",
             self->url, n, text, (unsigned long long)self->unlogged);
    self->last_log_ms = now ? now : 1;
    self->unlogged = 0;
}

//  libcurl's progress callback: a POST still running past the destroy's
//  flush deadline is aborted, so a stalled collector cannot hold up a stop.
static int s_on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    trace_exporter_t *self = arg;
    uint64_t at = atomic_load_explicit(&self->abort_at_ms, memory_order_relaxed);
    return at && s_mono_ms() >= at;
}

//  POSTs one batch; counts the outcome. timeout_ms bounds the request.
static void s_export(trace_exporter_t *self, CURL *curl, trace_span_t **spans, size_t n,
                     long timeout_ms, s_out_t *out)
{
    if (s_encode(self, spans, n, out) != 0) {
        s_failure(self, n, "out of memory encoding the batch");
        return;
    }
    const char *body = out->data;
    s_buf_t answer = {0};
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_reset(curl);
    bool set =
        curl_easy_setopt(curl, CURLOPT_URL, self->url) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, self->headers) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)out->len) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_on_body) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, s_on_progress) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, self) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
    if (!set) {
        s_failure(self, n, "libcurl refused an option");
        goto done;
    }
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
        s_failure(self, n, "%s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
    else if (status < 200 || status > 299)
        s_failure(self, n, "HTTP status %ld", status);
    else {
        uint64_t rejected = s_rejected(&answer);
        if (rejected > n)
            rejected = n;
        atomic_fetch_add(&self->exported, n - rejected);
        if (rejected)
            s_failure(self, rejected, "the collector rejected %llu spans",
                      (unsigned long long)rejected);
    }
done:
    free(answer.data);
}

static void *s_run(void *arg)
{
    trace_exporter_t *self = arg;
    CURL *curl = curl_easy_init();
    if (!curl)
        log_error("trace export: curl_easy_init failed; every span will count as failed");
    trace_span_t **batch = calloc(self->max_batch, sizeof(trace_span_t *));
    if (!batch)
        log_error("trace export: out of memory; every span will count as failed");
    uint64_t next_ms = s_mono_ms() + (uint64_t)self->schedule_delay_ms;
    s_out_t out = {0}; //  the body buffer, reused from batch to batch
    pthread_mutex_lock(&self->lock);
    for (;;) {
        if (self->count == 0) {
            pthread_cond_broadcast(&self->done); //  flushers: all sent
            if (self->stopping)
                break;
            //  Idle: sleep until a span, a flush or the stop comes; the
            //  first span then waits at most the schedule delay.
            self->idle = true;
            pthread_cond_wait(&self->wake, &self->lock);
            self->idle = false;
            next_ms = s_mono_ms() + (uint64_t)self->schedule_delay_ms;
            continue;
        }
        //  Wait for a full batch, the schedule, a flush or the stop.
        while (!self->stopping && self->flushers == 0 && self->count < self->max_batch) {
            uint64_t now = s_mono_ms();
            if (now >= next_ms)
                break;
            struct timespec until = s_deadline(next_ms - now);
            pthread_cond_timedwait(&self->wake, &self->lock, &until);
        }
        size_t n = self->count < self->max_batch ? self->count : self->max_batch;
        size_t taken = 0;
        for (; taken < n; taken++) {
            trace_span_t *span = self->ring[self->head];
            self->ring[self->head] = NULL;
            self->head = (self->head + 1) % self->max_queue;
            if (batch)
                batch[taken] = span;
            else
                free(span);
        }
        self->count -= n;
        self->in_flight = n;
        bool stopping = self->stopping;
        uint64_t stop_deadline = self->stop_deadline_ms;
        pthread_mutex_unlock(&self->lock);

        long timeout = self->timeout_ms;
        uint64_t now = s_mono_ms();
        if (stopping) //  the flush at destroy is bounded as a whole
            timeout = stop_deadline > now ? (long)(stop_deadline - now) : 0;
        if (!batch || !curl)
            atomic_fetch_add(&self->failed, n);
        else if (stopping && timeout <= 0)
            atomic_fetch_add(&self->dropped, n); //  past the flush deadline
        else
            s_export(self, curl, batch, n, timeout < self->timeout_ms ? timeout : self->timeout_ms,
                     &out);
        for (size_t i = 0; batch && i < n; i++) {
            free(batch[i]);
            batch[i] = NULL;
        }
        next_ms = s_mono_ms() + (uint64_t)self->schedule_delay_ms;
        pthread_mutex_lock(&self->lock);
        self->in_flight = 0;
        pthread_cond_broadcast(&self->done);
    }
    pthread_mutex_unlock(&self->lock);
    free(batch);
    free(out.data);
    if (curl)
        curl_easy_cleanup(curl);
    return NULL;
}

static int s_fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "trace exporter: %s", what);
    return -1;
}

//  The resource and scope objects every request repeats.
static int s_build_static(trace_exporter_t *self, const trace_exporter_config_t *cfg)
{
    json_t *attrs = s_attrs_json(cfg->resource, cfg->resource ? cfg->n_resource : 0);
    json_t *resource = attrs ? json_pack("{s:o}", "attributes", attrs) : NULL;
    json_t *scope = json_pack("{s:s}", "name", cfg->scope_name ? cfg->scope_name : "recsd");
    bool ok = resource && scope;
    if (ok && cfg->scope_version && cfg->scope_version[0])
        ok = json_object_set_new(scope, "version", json_string(cfg->scope_version)) == 0;
    char *r = ok ? json_dumps(resource, JSON_COMPACT) : NULL;
    char *sc = ok ? json_dumps(scope, JSON_COMPACT) : NULL;
    json_decref(resource);
    json_decref(scope);
    if (r && sc &&
        asprintf(&self->prefix,
                 "{\"resourceSpans\":[{\"resource\":%s,\"scopeSpans\":[{\"scope\":%s,\"spans\":[",
                 r, sc) < 0)
        self->prefix = NULL;
    free(r);
    free(sc);
    return self->prefix ? 0 : -1;
}

trace_exporter_t *trace_exporter_new(const trace_exporter_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->url ||
        (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0) ||
        cfg->max_queue < 1 || cfg->max_batch < 1 || cfg->max_batch > cfg->max_queue ||
        cfg->schedule_delay_ms < 0 || cfg->timeout_ms <= 0 || cfg->export_timeout_ms < 0) {
        s_fail(err, errlen, "invalid configuration");
        return NULL;
    }
    trace_exporter_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_fail(err, errlen, "out of memory");
        return NULL;
    }
    self->max_queue = cfg->max_queue;
    self->max_batch = cfg->max_batch;
    self->schedule_delay_ms = cfg->schedule_delay_ms;
    self->timeout_ms = cfg->timeout_ms;
    self->export_timeout_ms = cfg->export_timeout_ms;
    atomic_init(&self->queued, 0);
    atomic_init(&self->exported, 0);
    atomic_init(&self->dropped, 0);
    atomic_init(&self->failed, 0);
    atomic_init(&self->abort_at_ms, 0);
    pthread_condattr_t ca;
    bool locks = pthread_mutex_init(&self->lock, NULL) == 0;
    bool conds = pthread_condattr_init(&ca) == 0;
    if (!locks || !conds || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&self->wake, &ca) != 0) {
        if (conds)
            pthread_condattr_destroy(&ca);
        if (locks)
            pthread_mutex_destroy(&self->lock);
        free(self);
        s_fail(err, errlen, "cannot create its locks");
        return NULL;
    }
    if (pthread_cond_init(&self->done, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->lock);
        free(self);
        s_fail(err, errlen, "cannot create its locks");
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    //  From here on destroy cleans up whatever was made.
    self->url = strdup(cfg->url);
    self->ring = calloc(cfg->max_queue, sizeof(trace_span_t *));
    self->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!self->url || !self->ring || !self->headers || s_build_static(self, cfg) != 0) {
        s_fail(err, errlen, "out of memory");
        goto err;
    }
    for (size_t i = 0; cfg->headers && i < cfg->n_headers; i++) {
        char line[1024];
        int n = snprintf(line, sizeof line, "%s: %s", cfg->headers[i].name,
                         cfg->headers[i].value ? cfg->headers[i].value : "");
        if (n < 0 || (size_t)n >= sizeof line || strpbrk(line, "\r\n")) {
            s_fail(err, errlen, "a request header is too long or holds a line break");
            goto err;
        }
        struct curl_slist *more = curl_slist_append(self->headers, line);
        if (!more) {
            s_fail(err, errlen, "out of memory");
            goto err;
        }
        self->headers = more;
    }
    //  Reference-counted, and thread-safe since curl 7.84.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        s_fail(err, errlen, "curl_global_init failed");
        goto err;
    }
    self->curl_init = true;
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        snprintf(err, errlen, "trace exporter: cannot start its thread: %s", strerror(errno));
        goto err;
    }
    self->thread_started = true;
    return self;
err:
    trace_exporter_destroy(&self);
    return NULL;
}

void trace_exporter_destroy(trace_exporter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trace_exporter_t *self = *self_p;
    if (self->thread_started) {
        pthread_mutex_lock(&self->lock);
        self->stopping = true;
        self->stop_deadline_ms = s_mono_ms() + (uint64_t)self->export_timeout_ms;
        atomic_store(&self->abort_at_ms, self->stop_deadline_ms);
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    //  The thread leaves nothing queued; without one, free what is there.
    for (size_t i = 0; self->ring && i < self->count; i++)
        free(self->ring[(self->head + i) % self->max_queue]);
    free(self->ring);
    if (self->curl_init)
        curl_global_cleanup();
    curl_slist_free_all(self->headers);
    free(self->prefix);
    free(self->url);
    pthread_cond_destroy(&self->wake);
    pthread_cond_destroy(&self->done);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int trace_exporter_submit(trace_exporter_t *self, trace_span_t **span_p)
{
    if (!span_p || !*span_p)
        return 0;
    trace_span_t *span = *span_p;
    *span_p = NULL;
    bool kept = false, wake = false;
    pthread_mutex_lock(&self->lock);
    if (self->count < self->max_queue && !self->stopping) {
        self->ring[(self->head + self->count) % self->max_queue] = span;
        self->count++;
        kept = true;
        //  A full batch goes without waiting for the schedule; the first
        //  span starts the schedule of an idle thread.
        wake = self->count == self->max_batch || self->idle;
    }
    pthread_mutex_unlock(&self->lock);
    if (wake)
        pthread_cond_signal(&self->wake);
    if (!kept) {
        free(span);
        atomic_fetch_add_explicit(&self->dropped, 1, memory_order_relaxed);
        return -1;
    }
    atomic_fetch_add_explicit(&self->queued, 1, memory_order_relaxed);
    return 0;
}

int trace_exporter_flush(trace_exporter_t *self, int timeout_ms)
{
    struct timespec until = s_deadline(timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    self->flushers++;
    pthread_cond_signal(&self->wake);
    while (self->count > 0 || self->in_flight > 0) {
        if (pthread_cond_timedwait(&self->done, &self->lock, &until) == ETIMEDOUT &&
            (self->count > 0 || self->in_flight > 0)) {
            rc = -1;
            break;
        }
    }
    self->flushers--;
    pthread_mutex_unlock(&self->lock);
    return rc;
}

void trace_exporter_stats(const trace_exporter_t *self, tracer_stats_t *stats)
{
    //  The counters are atomics: reading them through a const pointer is
    //  safe, the cast only satisfies atomic_load's prototype.
    trace_exporter_t *s = (trace_exporter_t *)self;
    stats->queued = atomic_load_explicit(&s->queued, memory_order_relaxed);
    stats->exported = atomic_load_explicit(&s->exported, memory_order_relaxed);
    stats->dropped = atomic_load_explicit(&s->dropped, memory_order_relaxed);
    stats->failed = atomic_load_explicit(&s->failed, memory_order_relaxed);
}
