/*  gateway_metrics.c: lock-free counters and their Prometheus text (see gateway_metrics.h). */
#include "gateway_metrics.h"

#include "prom_merge.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Status codes with their own series; everything else is "other".
static const int s_statuses[] = {200, 202, 400, 401, 403, 404, 405, 409, 429, 500, 503};
#define STATUS_COUNT ((int)(sizeof s_statuses / sizeof s_statuses[0]) + 1)

//  Histogram upper bounds in microseconds, and as printed in "le".
static const uint64_t s_bounds_us[] = {500,   1000,   2500,   5000,   10000,   25000,
                                       50000, 100000, 250000, 500000, 1000000, 2500000};
static const char *s_bounds_le[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                    "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};
#define BUCKET_COUNT ((int)(sizeof s_bounds_us / sizeof s_bounds_us[0]))

static const char *s_sources[] = {"model", "cache", "fallback", "other"};
#define SOURCE_COUNT 4

static const char *s_outcomes[GATEWAY_RANKER_OUTCOME_COUNT] = {"ok", "timeout", "unavailable",
                                                               "error"};

typedef struct {
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
    //  Per-bucket (not cumulative) counts, the last one is +Inf: one
    //  atomic increment per observation; rendering accumulates.
    atomic_uint_fast64_t buckets[BUCKET_COUNT + 1];
} series_t;

struct gateway_metrics_t {
    series_t http[GATEWAY_ROUTE_COUNT][STATUS_COUNT];
    atomic_uint_fast64_t sources[SOURCE_COUNT];
    atomic_uint_fast64_t ranker[GATEWAY_RANKER_OUTCOME_COUNT];
};

const char *gateway_ranker_outcome_name(gateway_ranker_outcome_t outcome)
{
    if ((int)outcome < 0 || outcome >= GATEWAY_RANKER_OUTCOME_COUNT)
        return "error";
    return s_outcomes[outcome];
}

gateway_metrics_t *gateway_metrics_new(void)
{
    gateway_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    //  calloc's zero bytes are a valid zero for lock-free atomics on every
    //  platform we build for, but say it explicitly for the standard's sake.
    for (int r = 0; r < GATEWAY_ROUTE_COUNT; r++)
        for (int s = 0; s < STATUS_COUNT; s++) {
            series_t *series = &self->http[r][s];
            atomic_init(&series->count, 0);
            atomic_init(&series->sum_us, 0);
            for (int b = 0; b <= BUCKET_COUNT; b++)
                atomic_init(&series->buckets[b], 0);
        }
    for (int i = 0; i < SOURCE_COUNT; i++)
        atomic_init(&self->sources[i], 0);
    for (int i = 0; i < GATEWAY_RANKER_OUTCOME_COUNT; i++)
        atomic_init(&self->ranker[i], 0);
    return self;
}

void gateway_metrics_destroy(gateway_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

static int s_status_index(int status)
{
    for (int i = 0; i < STATUS_COUNT - 1; i++)
        if (s_statuses[i] == status)
            return i;
    return STATUS_COUNT - 1;
}

static int s_route_index(gateway_route_t route)
{
    return ((int)route < 0 || route >= GATEWAY_ROUTE_COUNT) ? GATEWAY_ROUTE_OTHER : (int)route;
}

void gateway_metrics_observe(gateway_metrics_t *self, gateway_route_t route, int status,
                             uint64_t duration_us)
{
    series_t *series = &self->http[s_route_index(route)][s_status_index(status)];
    int b = 0;
    while (b < BUCKET_COUNT && duration_us > s_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&series->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&series->sum_us, duration_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&series->count, 1, memory_order_relaxed);
}

void gateway_metrics_count_source(gateway_metrics_t *self, const char *source)
{
    int i = 0;
    while (i < SOURCE_COUNT - 1 && (!source || strcmp(source, s_sources[i]) != 0))
        i++;
    atomic_fetch_add_explicit(&self->sources[i], 1, memory_order_relaxed);
}

void gateway_metrics_count_ranker(gateway_metrics_t *self, gateway_ranker_outcome_t outcome)
{
    if ((int)outcome < 0 || outcome >= GATEWAY_RANKER_OUTCOME_COUNT)
        outcome = GATEWAY_RANKER_ERROR;
    atomic_fetch_add_explicit(&self->ranker[outcome], 1, memory_order_relaxed);
}

uint64_t gateway_metrics_requests(gateway_metrics_t *self, gateway_route_t route, int status)
{
    return atomic_load_explicit(&self->http[s_route_index(route)][s_status_index(status)].count,
                                memory_order_relaxed);
}

uint64_t gateway_metrics_ranker(gateway_metrics_t *self, gateway_ranker_outcome_t outcome)
{
    if ((int)outcome < 0 || outcome >= GATEWAY_RANKER_OUTCOME_COUNT)
        return 0;
    return atomic_load_explicit(&self->ranker[outcome], memory_order_relaxed);
}

static void s_status_label(int index, char *buf, size_t buflen)
{
    if (index == STATUS_COUNT - 1)
        snprintf(buf, buflen, "other");
    else
        snprintf(buf, buflen, "%d", s_statuses[index]);
}

static void s_header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

//  Closes the memstream and hands its buffer over, or frees it on error.
static char *s_finish(FILE *out, char **buf, size_t *size, size_t *len)
{
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0)
        failed = true;
    if (failed) {
        free(*buf);
        return NULL;
    }
    if (len)
        *len = *size;
    return *buf;
}

char *gateway_metrics_render(gateway_metrics_t *self, uint64_t in_flight, const char *extra,
                             size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    if (!out)
        return NULL;

    //  Writers run while we read. Within one histogram series, _count is
    //  printed as the sum of the bucket counts loaded, so that +Inf always
    //  equals _count; _sum may be one observation ahead, which Prometheus
    //  tolerates.
    s_header(out, "recsd_http_requests_total", "counter",
             "HTTP requests answered, by route template and status code.");
    for (int r = 0; r < GATEWAY_ROUTE_COUNT; r++)
        for (int s = 0; s < STATUS_COUNT; s++) {
            uint64_t count = atomic_load_explicit(&self->http[r][s].count, memory_order_relaxed);
            if (!count)
                continue;
            char status[8];
            s_status_label(s, status, sizeof status);
            fprintf(out, "recsd_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                    gateway_route_template((gateway_route_t)r), status, (unsigned long long)count);
        }

    s_header(out, "recsd_http_request_duration_seconds", "histogram",
             "Time from the request's arrival to its response being queued.");
    for (int r = 0; r < GATEWAY_ROUTE_COUNT; r++)
        for (int s = 0; s < STATUS_COUNT; s++) {
            series_t *series = &self->http[r][s];
            if (!atomic_load_explicit(&series->count, memory_order_relaxed))
                continue;
            uint64_t buckets[BUCKET_COUNT + 1];
            uint64_t total = 0;
            for (int b = 0; b <= BUCKET_COUNT; b++) {
                buckets[b] = atomic_load_explicit(&series->buckets[b], memory_order_relaxed);
                total += buckets[b];
            }
            uint64_t sum_us = atomic_load_explicit(&series->sum_us, memory_order_relaxed);
            char status[8];
            s_status_label(s, status, sizeof status);
            const char *route = gateway_route_template((gateway_route_t)r);
            uint64_t cumulative = 0;
            for (int b = 0; b <= BUCKET_COUNT; b++) {
                cumulative += buckets[b];
                fprintf(out,
                        "recsd_http_request_duration_seconds_bucket{route=\"%s\",status=\"%s\","
                        "le=\"%s\"} %llu\n",
                        route, status, b < BUCKET_COUNT ? s_bounds_le[b] : "+Inf",
                        (unsigned long long)cumulative);
            }
            fprintf(out,
                    "recsd_http_request_duration_seconds_sum{route=\"%s\",status=\"%s\"} "
                    "%llu.%06llu\n",
                    route, status, (unsigned long long)(sum_us / 1000000),
                    (unsigned long long)(sum_us % 1000000));
            fprintf(out,
                    "recsd_http_request_duration_seconds_count{route=\"%s\",status=\"%s\"} "
                    "%llu\n",
                    route, status, (unsigned long long)total);
        }

    s_header(out, "recsd_http_requests_in_flight", "gauge",
             "HTTP requests being handled right now.");
    fprintf(out, "recsd_http_requests_in_flight %llu\n", (unsigned long long)in_flight);

    s_header(out, "recsd_recs_responses_total", "counter",
             "Recommendation responses, by where the items came from.");
    for (int i = 0; i < SOURCE_COUNT; i++)
        fprintf(out, "recsd_recs_responses_total{source=\"%s\"} %llu\n", s_sources[i],
                (unsigned long long)atomic_load_explicit(&self->sources[i], memory_order_relaxed));

    s_header(out, "recsd_ranker_requests_total", "counter",
             "Gateway calls to the ranker, by outcome.");
    for (int i = 0; i < GATEWAY_RANKER_OUTCOME_COUNT; i++)
        fprintf(out, "recsd_ranker_requests_total{outcome=\"%s\"} %llu\n", s_outcomes[i],
                (unsigned long long)atomic_load_explicit(&self->ranker[i], memory_order_relaxed));
    if (extra)
        fputs(extra, out);
    return s_finish(out, &buf, &size, len);
}

//  Label values are escaped per the exposition format (\\, \", \n). Actor
//  names are validated printable by proto, but this costs nothing.
static void s_label(FILE *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', out), fputc(*p, out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
}

typedef enum {
    ACTOR_UP,
    ACTOR_RESTARTS,
    ACTOR_RSS,
    ACTOR_HB_AGE,
    ACTOR_QUEUE,
    ACTOR_HANDLED
} actor_metric_t;

static const struct {
    const char *name;
    const char *type;
    const char *help;
} s_actor_metrics[] = {
    {"recsd_actor_up", "gauge", "1 if the supervisor reports the actor running, else 0."},
    {"recsd_actor_restarts_total", "counter",
     "Restarts of the actor since the supervisor started."},
    {"recsd_actor_rss_bytes", "gauge", "Resident set size of the actor process."},
    {"recsd_actor_heartbeat_age_seconds", "gauge", "Time since the actor's last heartbeat."},
    {"recsd_actor_queue_depth", "gauge", "Work waiting in the actor, as it reports it."},
    {"recsd_actor_messages_handled_total", "counter",
     "Messages the actor handled since its process started."},
};

char *gateway_metrics_render_actors(const proto_status_rep_t *status)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    if (!out)
        return NULL;
    if (!status || !status->count || !status->actors)
        return s_finish(out, &buf, &size, NULL);
    for (int m = ACTOR_UP; m <= ACTOR_HANDLED; m++) {
        s_header(out, s_actor_metrics[m].name, s_actor_metrics[m].type, s_actor_metrics[m].help);
        for (uint32_t i = 0; i < status->count; i++) {
            const proto_actor_status_t *row = &status->actors[i];
            //  Without a process there is no heartbeat age to report.
            if (m == ACTOR_HB_AGE && row->heartbeat_age_ms < 0)
                continue;
            fprintf(out, "%s{actor=\"", s_actor_metrics[m].name);
            s_label(out, row->name);
            fputs("\"} ", out);
            switch ((actor_metric_t)m) {
            case ACTOR_UP:
                fputs(strcmp(row->state, "running") == 0 ? "1" : "0", out);
                break;
            case ACTOR_RESTARTS:
                fprintf(out, "%u", (unsigned)row->restarts);
                break;
            case ACTOR_RSS:
                fprintf(out, "%llu", (unsigned long long)row->rss_bytes);
                break;
            case ACTOR_HB_AGE:
                fprintf(out, "%lld.%03lld", (long long)(row->heartbeat_age_ms / 1000),
                        (long long)(row->heartbeat_age_ms % 1000));
                break;
            case ACTOR_QUEUE:
                fprintf(out, "%llu", (unsigned long long)row->queue_depth);
                break;
            case ACTOR_HANDLED:
                fprintf(out, "%llu", (unsigned long long)row->handled);
                break;
            }
            fputc('\n', out);
        }
    }
    //  Each actor's own metrics, from its heartbeats, regrouped by family.
    const char **texts = calloc(status->count, sizeof *texts);
    char *merged = NULL;
    if (texts) {
        for (uint32_t i = 0; i < status->count; i++)
            texts[i] = status->actors[i].metrics;
        merged = prom_merge(texts, status->count);
        free(texts);
    }
    if (!merged)
        fputs("# actor metrics unavailable (out of memory)\n", out);
    else
        fputs(merged, out);
    free(merged);
    return s_finish(out, &buf, &size, NULL);
}
