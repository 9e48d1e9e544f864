/*  trace.c: W3C trace context, the tracer (configuration from the OTEL_*
    variables, ids, sampling) and spans (see trace.h). Export is
    trace_exporter.c's.

    Ids come from a xoshiro256** generator per tracer, seeded from
    getrandom(2) and advanced under the tracer's lock: ids must be unique,
    not secret, and a system call per span would cost more than the span.
*/
#include "trace.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "trace_exporter.h"

#define S_RESOURCE_MAX 16 //  resource attributes, ours and OTEL_RESOURCE_ATTRIBUTES'
#define S_HEADERS_MAX 16  //  OTEL_EXPORTER_OTLP_HEADERS entries

typedef enum {
    S_ALWAYS_ON = 0,
    S_ALWAYS_OFF,
    S_RATIO,
    S_PARENT_ON,
    S_PARENT_OFF,
    S_PARENT_RATIO
} s_sampler_t;

static const char *const s_sampler_names[] = {"always_on",
                                              "always_off",
                                              "traceidratio",
                                              "parentbased_always_on",
                                              "parentbased_always_off",
                                              "parentbased_traceidratio"};

struct tracer_t {
    bool enabled;
    s_sampler_t sampler;
    double ratio;
    uint64_t threshold; //  traceidratio: sampled when the id's low 8 bytes < this
    bool ratio_all;     //  ratio 1: every id (the threshold cannot say 2^64)
    pthread_mutex_t lock;
    uint64_t rng[4]; //  under lock
    trace_exporter_t *exporter;
};

//  ---- trace context ---------------------------------------------------------

static int s_unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; //  W3C: lowercase only
}

//  n bytes from 2n lowercase hex digits. Returns 0, or -1.
static int s_parse_hex(const char *text, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = s_unhex(text[2 * i]), lo = s_unhex(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static bool s_all_zero(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bytes[i])
            return false;
    return true;
}

int trace_ctx_parse(const char *text, trace_ctx_t *ctx)
{
    if (!text || !ctx)
        return -1;
    size_t len = strnlen(text, 512);
    if (len < TRACE_TRACEPARENT_LEN)
        return -1;
    uint8_t version;
    if (s_parse_hex(text, &version, 1) != 0 || version == 0xff)
        return -1;
    //  Version 00 is exactly 55 bytes; a later version may add fields
    //  after another '-', and is read by its first four.
    if (version == 0 ? len != TRACE_TRACEPARENT_LEN
                     : len > TRACE_TRACEPARENT_LEN && text[TRACE_TRACEPARENT_LEN] != '-')
        return -1;
    if (text[2] != '-' || text[35] != '-' || text[52] != '-')
        return -1;
    trace_ctx_t out;
    uint8_t flags;
    if (s_parse_hex(text + 3, out.trace_id, 16) != 0 ||
        s_parse_hex(text + 36, out.span_id, 8) != 0 || s_parse_hex(text + 53, &flags, 1) != 0)
        return -1;
    if (s_all_zero(out.trace_id, 16) || s_all_zero(out.span_id, 8))
        return -1;
    out.flags = flags;
    *ctx = out;
    return 0;
}

void trace_ctx_format(const trace_ctx_t *ctx, char out[TRACE_TRACEPARENT_LEN + 1])
{
    //  Each hex_encode writes a NUL that the next '-' replaces; the last one
    //  ends the string at out[TRACE_TRACEPARENT_LEN].
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    hex_encode(ctx->trace_id, sizeof ctx->trace_id, out + 3);
    out[35] = '-';
    hex_encode(ctx->span_id, sizeof ctx->span_id, out + 36);
    out[52] = '-';
    hex_encode(&ctx->flags, 1, out + 53);
}

bool trace_ctx_sampled(const trace_ctx_t *ctx)
{
    return ctx && (ctx->flags & 1);
}

//  ---- configuration ---------------------------------------------------------

static int s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

//  getenv, with "" read as unset (the OpenTelemetry rule).
static const char *s_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

//  An integer variable in [min, max]; absent: def. Returns 0, or -1 with err.
static int s_env_int(const char *name, long def, long min, long max, long *out, char *err,
                     size_t errlen)
{
    const char *text = s_env(name);
    *out = def;
    if (!text)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return s_err(err, errlen, "%s=%s: must be an integer between %ld and %ld", name, text, min,
                     max);
    *out = v;
    return 0;
}

//  "true"/"false" in any case; absent: false.
static int s_env_bool(const char *name, bool *out, char *err, size_t errlen)
{
    const char *text = s_env(name);
    *out = false;
    if (!text || strcasecmp(text, "false") == 0)
        return 0;
    if (strcasecmp(text, "true") == 0) {
        *out = true;
        return 0;
    }
    return s_err(err, errlen, "%s=%s: must be true or false", name, text);
}

//  Percent-decodes src[0..len) into dst (dstlen bytes), trimming blanks
//  around it (W3C baggage, which OTEL_*_HEADERS and _RESOURCE_ATTRIBUTES use).
//  Returns 0, or -1 (bad escape, too long, control byte).
static int s_decode(const char *src, size_t len, char *dst, size_t dstlen)
{
    while (len && isspace((unsigned char)*src))
        src++, len--;
    while (len && isspace((unsigned char)src[len - 1]))
        len--;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            uint8_t byte;
            char hex[2] = {(char)tolower((unsigned char)(i + 1 < len ? src[i + 1] : 'x')),
                           (char)tolower((unsigned char)(i + 2 < len ? src[i + 2] : 'x'))};
            if (s_parse_hex(hex, &byte, 1) != 0)
                return -1;
            c = byte;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || n + 1 >= dstlen)
            return -1;
        dst[n++] = (char)c;
    }
    dst[n] = '\0';
    return 0;
}

//  "k1=v1,k2=v2" into keys/values (each keylen/vallen bytes). Returns the
//  count, or -1 with err naming var.
static int s_parse_pairs(const char *var, const char *text, char (*keys)[TRACE_KEY_MAX + 1],
                         char (*values)[TRACE_STR_MAX + 1], int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (len == 0 || (len && strspn(p, " \t") == len)) {
            p += len + (p[len] == ',');
            continue; //  empty member: skipped
        }
        if (!eq || n == max || s_decode(p, (size_t)(eq - p), keys[n], TRACE_KEY_MAX + 1) != 0 ||
            !keys[n][0] ||
            s_decode(eq + 1, len - (size_t)(eq - p) - 1, values[n], TRACE_STR_MAX + 1) != 0)
            return s_err(err, errlen,
                         "%s: \"%.*s\" is not key=value (at most %d pairs, keys of at most %d "
                         "and values of at most %d bytes, %%-escapes for ',' and controls)",
                         var, (int)len, p, max, TRACE_KEY_MAX, TRACE_STR_MAX);
        n++;
        p += len + (p[len] == ',');
    }
    return n;
}

static void s_attr_str(trace_attr_t *a, const char *key, const char *value);

//  The exporter's configuration read from the environment, with the
//  storage its pointers point into.
typedef struct {
    trace_exporter_config_t cfg;
    char keys[2][S_HEADERS_MAX][TRACE_KEY_MAX + 1];
    char values[2][S_HEADERS_MAX][TRACE_STR_MAX + 1];
    trace_header_t headers[2 * S_HEADERS_MAX];
    char rkeys[S_RESOURCE_MAX][TRACE_KEY_MAX + 1];
    char rvalues[S_RESOURCE_MAX][TRACE_STR_MAX + 1];
    trace_attr_t resource[S_RESOURCE_MAX];
} s_conf_t;

//  Reads every exporter variable into conf (url borrowed). Returns 0, or
//  -1 with err naming the variable.
static int s_read_exporter(s_conf_t *conf, const char *actor, const char *url, char *err,
                           size_t errlen)
{
    long queue, batch, delay, export_timeout, timeout;
    if (s_env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1 << 20, &queue, err, errlen) ||
        s_env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 1 << 20, &batch, err, errlen) ||
        s_env_int("OTEL_BSP_SCHEDULE_DELAY", 5000, 0, 3600000, &delay, err, errlen) ||
        s_env_int("OTEL_BSP_EXPORT_TIMEOUT", 30000, 0, 3600000, &export_timeout, err, errlen))
        return -1;
    //  OTEL_BSP_MAX_EXPORT_BATCH_SIZE "must be less than or equal to
    //  OTEL_BSP_MAX_QUEUE_SIZE"; the default batch shrinks to a small queue.
    if (batch > queue) {
        if (s_env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"))
            return s_err(err, errlen,
                         "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=%ld is larger than "
                         "OTEL_BSP_MAX_QUEUE_SIZE=%ld",
                         batch, queue);
        batch = queue;
    }
    const char *tvar = s_env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
                           ? "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
                           : "OTEL_EXPORTER_OTLP_TIMEOUT";
    if (s_env_int(tvar, 10000, 1, 3600000, &timeout, err, errlen))
        return -1;

    //  The generic headers, then the traces ones, which win over a generic
    //  one of the same name.
    size_t n_headers = 0;
    const char *hvars[2] = {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"};
    for (int v = 0; v < 2; v++) {
        const char *text = s_env(hvars[v]);
        int n = text ? s_parse_pairs(hvars[v], text, conf->keys[v], conf->values[v], S_HEADERS_MAX,
                                     err, errlen)
                     : 0;
        if (n < 0)
            return -1;
        for (int i = 0; i < n; i++) {
            size_t at = n_headers;
            for (size_t j = 0; j < n_headers; j++)
                if (strcasecmp(conf->headers[j].name, conf->keys[v][i]) == 0)
                    at = j;
            conf->headers[at] = (trace_header_t){conf->keys[v][i], conf->values[v][i]};
            if (at == n_headers)
                n_headers++;
        }
    }

    //  Resource: service.name, service.instance.id, process.pid, recsd.actor,
    //  then OTEL_RESOURCE_ATTRIBUTES' others (its service.name counts when
    //  OTEL_SERVICE_NAME is unset; the instance and pid are ours).
    const char *rtext = s_env("OTEL_RESOURCE_ATTRIBUTES");
    int n_extra = rtext ? s_parse_pairs("OTEL_RESOURCE_ATTRIBUTES", rtext, conf->rkeys,
                                        conf->rvalues, S_RESOURCE_MAX - 4, err, errlen)
                        : 0;
    if (n_extra < 0)
        return -1;
    const char *service = s_env("OTEL_SERVICE_NAME");
    if (service && strlen(service) > TRACE_STR_MAX)
        return s_err(err, errlen, "OTEL_SERVICE_NAME: longer than %d bytes", TRACE_STR_MAX);
    for (int i = 0; !service && i < n_extra; i++)
        if (strcmp(conf->rkeys[i], "service.name") == 0)
            service = conf->rvalues[i];
    char host[64] = "";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    char instance[TRACE_STR_MAX + 1];
    snprintf(instance, sizeof instance, "%.40s@%.60s:%ld", actor, host, (long)getpid());
    size_t n = 0;
    trace_attr_t *r = conf->resource;
    s_attr_str(&r[n++], "service.name", service ? service : "recsd");
    s_attr_str(&r[n++], "service.instance.id", instance);
    r[n] = (trace_attr_t){.type = TRACE_ATTR_INT, .v.i = (int64_t)getpid()};
    snprintf(r[n++].key, TRACE_KEY_MAX + 1, "process.pid");
    s_attr_str(&r[n++], "recsd.actor", actor);
    for (int i = 0; i < n_extra; i++)
        if (strcmp(conf->rkeys[i], "service.name") != 0 &&
            strcmp(conf->rkeys[i], "service.instance.id") != 0 &&
            strcmp(conf->rkeys[i], "process.pid") != 0 &&
            strcmp(conf->rkeys[i], "recsd.actor") != 0)
            s_attr_str(&r[n++], conf->rkeys[i], conf->rvalues[i]);

    conf->cfg = (trace_exporter_config_t){.url = url,
                                          .headers = conf->headers,
                                          .n_headers = n_headers,
                                          .resource = conf->resource,
                                          .n_resource = n,
                                          .scope_name = "recsd",
#ifdef RECSD_VERSION
                                          .scope_version = RECSD_VERSION,
#endif
                                          .max_queue = (size_t)queue,
                                          .max_batch = (size_t)batch,
                                          .schedule_delay_ms = (int)delay,
                                          .timeout_ms = (int)timeout,
                                          .export_timeout_ms = (int)export_timeout};
    return 0;
}

//  Sampler and ratio from the environment.
static int s_parse_sampler(tracer_t *self, char *err, size_t errlen)
{
    const char *name = s_env("OTEL_TRACES_SAMPLER");
    self->sampler = S_PARENT_ON;
    if (name) {
        size_t i = 0;
        for (; i < sizeof s_sampler_names / sizeof *s_sampler_names; i++)
            if (strcmp(name, s_sampler_names[i]) == 0)
                break;
        if (i == sizeof s_sampler_names / sizeof *s_sampler_names)
            return s_err(err, errlen,
                         "OTEL_TRACES_SAMPLER=%s: must be one of always_on, always_off, "
                         "traceidratio, parentbased_always_on, parentbased_always_off, "
                         "parentbased_traceidratio",
                         name);
        self->sampler = (s_sampler_t)i;
    }
    self->ratio = 1.0;
    const char *arg = s_env("OTEL_TRACES_SAMPLER_ARG");
    if (self->sampler == S_RATIO || self->sampler == S_PARENT_RATIO) {
        if (arg) {
            char *end;
            errno = 0;
            double v = strtod(arg, &end);
            if (errno || end == arg || *end || !isfinite(v) || v < 0 || v > 1)
                return s_err(err, errlen,
                             "OTEL_TRACES_SAMPLER_ARG=%s: must be a number between 0 and 1", arg);
            self->ratio = v;
        }
        //  The spec's suggestion: compare the trace id's low 8 bytes (as a
        //  big-endian integer, random in W3C level 2 ids) to ratio * 2^64.
        self->ratio_all = self->ratio >= 1.0;
        self->threshold = self->ratio_all ? UINT64_MAX : (uint64_t)ldexp(self->ratio, 64);
    }
    return 0;
}

//  Reads and checks every variable; with start, and tracing on, seeds the
//  ids and starts the exporter. Returns 0, or -1 with err.
static int s_configure(tracer_t *self, const char *actor, bool start, char *err, size_t errlen)
{
    bool disabled = false;
    if (s_env_bool("OTEL_SDK_DISABLED", &disabled, err, errlen) != 0 ||
        s_parse_sampler(self, err, errlen) != 0)
        return -1;
    const char *exporter = s_env("OTEL_TRACES_EXPORTER");
    if (exporter && strcmp(exporter, "otlp") != 0 && strcmp(exporter, "none") != 0) {
        s_err(err, errlen, "OTEL_TRACES_EXPORTER=%s: recsd exports with otlp, or none", exporter);
        return -1;
    }
    const char *protocol = s_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                               ? s_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                               : s_env("OTEL_EXPORTER_OTLP_PROTOCOL");
    if (protocol && strcmp(protocol, "http/json") != 0) {
        s_err(err, errlen,
              "OTEL_EXPORTER_OTLP_PROTOCOL=%s: recsd exports OTLP/HTTP JSON only (http/json)",
              protocol);
        return -1;
    }
    char url[1024] = "";
    const char *traces = s_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *base = s_env("OTEL_EXPORTER_OTLP_ENDPOINT");
    const char *var = traces ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
    if (traces || base) {
        const char *given = traces ? traces : base;
        size_t len = strlen(given);
        while (!traces && len && given[len - 1] == '/')
            len--; //  "http://c:4318/" + "/v1/traces" would double the slash
        int n = traces ? snprintf(url, sizeof url, "%s", given)
                       : snprintf(url, sizeof url, "%.*s/v1/traces", (int)len, given);
        if (n < 0 || (size_t)n >= sizeof url ||
            (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
            strpbrk(url, " \t\r\n")) {
            s_err(err, errlen, "%s=%s: must be an http:// or https:// URL", var, given);
            return -1;
        }
    }
    //  Every variable is read even with tracing off, so that a typo shows
    //  at the first start, not when tracing is turned on in a hurry.
    s_conf_t *conf = calloc(1, sizeof *conf);
    if (!conf) {
        s_err(err, errlen, "tracer: out of memory");
        return -1;
    }
    const char *name = actor && *actor ? actor : "recsd";
    int rc = s_read_exporter(conf, name, url, err, errlen);
    bool off = disabled || (exporter && strcmp(exporter, "none") == 0) || !url[0] ||
               self->sampler == S_ALWAYS_OFF;
    if (rc == 0 && !off && start) {
        if (getrandom(self->rng, sizeof self->rng, 0) != (ssize_t)sizeof self->rng)
            rc = s_err(err, errlen, "tracer: getrandom failed: %s", strerror(errno));
        else if (!(self->rng[0] | self->rng[1] | self->rng[2] | self->rng[3]))
            self->rng[0] = 1; //  xoshiro's one forbidden state
        if (rc == 0 && !(self->exporter = trace_exporter_new(&conf->cfg, err, errlen)))
            rc = -1;
    }
    free(conf);
    if (rc == 0)
        self->enabled = !off && start;
    return rc;
}

tracer_t *tracer_new(const char *actor, char *err, size_t errlen)
{
    tracer_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_err(err, errlen, "tracer: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        s_err(err, errlen, "tracer: cannot create its lock");
        return NULL;
    }
    if (s_configure(self, actor, true, err, errlen) == 0)
        return self;
    tracer_destroy(&self);
    return NULL;
}

int tracer_check_env(char *err, size_t errlen)
{
    tracer_t probe = {.enabled = false};
    return s_configure(&probe, "check", false, err, errlen);
}

void tracer_destroy(tracer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tracer_t *self = *self_p;
    trace_exporter_destroy(&self->exporter);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

bool tracer_enabled(const tracer_t *self)
{
    return self && self->enabled;
}

//  ---- ids and sampling ------------------------------------------------------

static inline uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

//  xoshiro256** (Blackman and Vigna); the caller holds the lock.
static uint64_t s_next(tracer_t *self)
{
    uint64_t *s = self->rng;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

static void s_put64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

//  Fresh non-zero ids: a trace id if trace_id is not NULL, and a span id.
static void s_new_ids(tracer_t *self, uint8_t *trace_id, uint8_t *span_id)
{
    pthread_mutex_lock(&self->lock);
    if (trace_id)
        do {
            s_put64(trace_id, s_next(self));
            s_put64(trace_id + 8, s_next(self));
        } while (s_all_zero(trace_id, 16));
    do
        s_put64(span_id, s_next(self));
    while (s_all_zero(span_id, 8));
    pthread_mutex_unlock(&self->lock);
}

static bool s_ratio_says(const tracer_t *self, const uint8_t trace_id[16])
{
    if (self->ratio_all)
        return true;
    uint64_t low = 0;
    for (int i = 8; i < 16; i++)
        low = low << 8 | trace_id[i];
    return low < self->threshold;
}

//  A root span's fresh trace id (drawn now: the ratio decides on it).
static bool s_ratio_root(tracer_t *self, uint8_t trace_id[16])
{
    uint8_t unused[8];
    s_new_ids(self, trace_id, unused);
    return s_ratio_says(self, trace_id);
}

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static trace_span_t *s_span_new(tracer_t *self, const char *name, trace_kind_t kind)
{
    trace_span_t *span = malloc(sizeof *span);
    if (!span)
        return NULL; //  a span lost to memory pressure is not worth failing a request
    span->tracer = self;
    snprintf(span->name, sizeof span->name, "%s", name ? name : "");
    span->kind =
        kind >= TRACE_KIND_INTERNAL && kind <= TRACE_KIND_CONSUMER ? kind : TRACE_KIND_INTERNAL;
    span->has_parent = false;
    span->n_attrs = 0;
    span->dropped_attrs = 0;
    span->error = false;
    span->status_message[0] = '\0';
    span->end_ns = 0;
    span->ctx.flags = 1;
    return span;
}

trace_span_t *tracer_start(tracer_t *self, const char *name, trace_kind_t kind,
                           const trace_ctx_t *parent)
{
    if (!self || !self->enabled)
        return NULL;
    uint8_t trace_id[16];
    bool sampled;
    bool fresh = !parent;
    if (!fresh)
        memcpy(trace_id, parent->trace_id, sizeof trace_id);
    if (self->sampler == S_PARENT_ON || self->sampler == S_PARENT_OFF ||
        self->sampler == S_PARENT_RATIO) {
        //  Parent-based: a parent's flag decides; a root goes to the root sampler.
        sampled = parent ? trace_ctx_sampled(parent)
                         : self->sampler == S_PARENT_ON ||
                               (self->sampler == S_PARENT_RATIO && s_ratio_root(self, trace_id));
    } else if (self->sampler == S_RATIO) {
        sampled = fresh ? s_ratio_root(self, trace_id) : s_ratio_says(self, trace_id);
    } else
        sampled = self->sampler == S_ALWAYS_ON;
    if (!sampled)
        return NULL;
    trace_span_t *span = s_span_new(self, name, kind);
    if (!span)
        return NULL;
    bool have_trace_id = !fresh || self->sampler == S_RATIO || self->sampler == S_PARENT_RATIO;
    if (have_trace_id)
        memcpy(span->ctx.trace_id, trace_id, sizeof trace_id);
    s_new_ids(self, have_trace_id ? NULL : span->ctx.trace_id, span->ctx.span_id);
    if (parent) {
        memcpy(span->parent_span_id, parent->span_id, sizeof span->parent_span_id);
        span->has_parent = true;
    }
    span->start_ns = s_now_ns();
    return span;
}

trace_span_t *trace_span_child(trace_span_t *parent, const char *name, trace_kind_t kind)
{
    if (!parent)
        return NULL;
    trace_span_t *span = s_span_new(parent->tracer, name, kind);
    if (!span)
        return NULL;
    memcpy(span->ctx.trace_id, parent->ctx.trace_id, sizeof span->ctx.trace_id);
    memcpy(span->parent_span_id, parent->ctx.span_id, sizeof span->parent_span_id);
    span->has_parent = true;
    s_new_ids(parent->tracer, NULL, span->ctx.span_id);
    span->start_ns = s_now_ns();
    return span;
}

//  ---- attributes ------------------------------------------------------------

//  Copies at most max - 1 bytes of src, never cutting a UTF-8 sequence.
static void s_copy_utf8(char *dst, size_t max, const char *src)
{
    size_t n = strnlen(src, max);
    if (n == max) {
        n = max - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--; //  src[n] continues a sequence: cut before its lead byte
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void s_attr_str(trace_attr_t *a, const char *key, const char *value)
{
    snprintf(a->key, sizeof a->key, "%s", key);
    a->type = TRACE_ATTR_STR;
    s_copy_utf8(a->v.s, sizeof a->v.s, value ? value : "");
}

//  The slot for key: its earlier value (set again: replaced, as OTel does)
//  or a new one; NULL when the span is full (counted).
static trace_attr_t *s_slot(trace_span_t *span, const char *key)
{
    for (uint32_t i = 0; i < span->n_attrs; i++)
        if (strncmp(span->attrs[i].key, key, TRACE_KEY_MAX) == 0)
            return &span->attrs[i];
    if (span->n_attrs == TRACE_ATTRS_MAX) {
        span->dropped_attrs++;
        return NULL;
    }
    trace_attr_t *a = &span->attrs[span->n_attrs++];
    snprintf(a->key, sizeof a->key, "%s", key);
    return a;
}

void trace_span_set_str(trace_span_t *span, const char *key, const char *value)
{
    trace_attr_t *a = span && key ? s_slot(span, key) : NULL;
    if (a)
        s_attr_str(a, key, value);
}

void trace_span_set_int(trace_span_t *span, const char *key, int64_t value)
{
    trace_attr_t *a = span && key ? s_slot(span, key) : NULL;
    if (a) {
        a->type = TRACE_ATTR_INT;
        a->v.i = value;
    }
}

void trace_span_set_double(trace_span_t *span, const char *key, double value)
{
    trace_attr_t *a = span && key ? s_slot(span, key) : NULL;
    if (a) {
        //  JSON has no NaN or infinity: such a value is sent as a string.
        if (!isfinite(value)) {
            a->type = TRACE_ATTR_STR;
            snprintf(a->v.s, sizeof a->v.s, "%s",
                     isnan(value) ? "NaN"
                     : value > 0  ? "Infinity"
                                  : "-Infinity");
            return;
        }
        a->type = TRACE_ATTR_DOUBLE;
        a->v.d = value;
    }
}

void trace_span_set_bool(trace_span_t *span, const char *key, bool value)
{
    trace_attr_t *a = span && key ? s_slot(span, key) : NULL;
    if (a) {
        a->type = TRACE_ATTR_BOOL;
        a->v.b = value;
    }
}

void trace_span_set_error(trace_span_t *span, const char *message)
{
    if (!span)
        return;
    span->error = true;
    s_copy_utf8(span->status_message, sizeof span->status_message, message ? message : "");
}

int trace_span_ctx(const trace_span_t *span, trace_ctx_t *ctx)
{
    if (!span || !ctx)
        return -1;
    *ctx = span->ctx;
    return 0;
}

void trace_traceparent(const trace_span_t *span, const trace_ctx_t *parent,
                       char out[TRACE_TRACEPARENT_LEN + 1])
{
    if (span)
        trace_ctx_format(&span->ctx, out);
    else if (parent)
        trace_ctx_format(parent, out);
    else
        out[0] = '\0';
}

void trace_span_end(trace_span_t **span_p)
{
    if (!span_p || !*span_p)
        return;
    trace_span_t *span = *span_p;
    *span_p = NULL;
    span->end_ns = s_now_ns();
    if (span->end_ns < span->start_ns)
        span->end_ns = span->start_ns; //  the wall clock stepped back
    tracer_t *tracer = span->tracer;
    if (tracer && tracer->exporter)
        trace_exporter_submit(tracer->exporter, &span); //  a drop is counted there
    else
        free(span);
}

//  ---- counters --------------------------------------------------------------

void tracer_stats(const tracer_t *self, tracer_stats_t *stats)
{
    *stats = (tracer_stats_t){0};
    if (self && self->exporter)
        trace_exporter_stats(self->exporter, stats);
}

int tracer_metrics(const tracer_t *self, const char *instance, char *buf, size_t cap, size_t *len)
{
    if (!tracer_enabled(self))
        return 0;
    tracer_stats_t st;
    tracer_stats(self, &st);
    size_t at = *len;
    if (at > cap)
        return -1;
    int n = snprintf(buf + at, cap - at,
                     "# HELP recsd_trace_spans_total Spans by outcome: exported (accepted by the "
                     "collector), dropped (export queue full), failed (export error).\n"
                     "# TYPE recsd_trace_spans_total counter\n"
                     "recsd_trace_spans_total{actor=\"%s\",result=\"exported\"} %llu\n"
                     "recsd_trace_spans_total{actor=\"%s\",result=\"dropped\"} %llu\n"
                     "recsd_trace_spans_total{actor=\"%s\",result=\"failed\"} %llu\n",
                     instance, (unsigned long long)st.exported, instance,
                     (unsigned long long)st.dropped, instance, (unsigned long long)st.failed);
    if (n < 0 || (size_t)n >= cap - at) {
        if (cap > at)
            buf[at] = '\0';
        return -1;
    }
    *len = at + (size_t)n;
    return 0;
}
