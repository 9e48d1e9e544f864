/*  gateway_metrics.h: the gateway's Prometheus metrics.

    A fixed table of C11 atomic counters, updated lock-free by the HTTP
    threads and rendered in the text exposition format 0.0.4:
        recsd_http_requests_total{route,status}             counter
        recsd_http_request_duration_seconds{route,status}   histogram
        recsd_http_requests_in_flight                       gauge
        recsd_recs_responses_total{source}                  counter
        recsd_ranker_requests_total{outcome}                counter
    plus, rendered separately from the supervisor's actor table,
        recsd_actor_up / _restarts_total / _rss_bytes /
        _heartbeat_age_seconds / _queue_depth / _messages_handled_total {actor}
    HTTP series appear once observed (a route/status pair never seen is not
    exported); the source and outcome counters are always all exported.

    Ownership: the gateway context owns the one instance; HTTP threads use
    it through a borrowed pointer for as long as the daemon runs.
*/
#ifndef RECSD_GATEWAY_METRICS_H
#define RECSD_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway_route.h"
#include "proto/proto.h"

#define GATEWAY_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum {
    GATEWAY_RANKER_OK = 0,      //  a usable reply before the deadline
    GATEWAY_RANKER_TIMEOUT,     //  deadline passed
    GATEWAY_RANKER_UNAVAILABLE, //  no ranker connected (send refused)
    GATEWAY_RANKER_ERROR,       //  malformed reply, or the ranker said error
    GATEWAY_RANKER_OUTCOME_COUNT
} gateway_ranker_outcome_t;

//  "ok", "timeout", "unavailable", "error".
const char *gateway_ranker_outcome_name(gateway_ranker_outcome_t outcome);

typedef struct gateway_metrics_t gateway_metrics_t;

//  Returns a zeroed metrics table, or NULL on allocation failure.
gateway_metrics_t *gateway_metrics_new(void);

//  Idempotent, sets *self_p to NULL.
void gateway_metrics_destroy(gateway_metrics_t **self_p);

//  Records one answered request. Lock-free, cannot fail; statuses outside
//  the fixed table (200,400,401,403,404,405,429,500,503) count as "other".
void gateway_metrics_observe(gateway_metrics_t *self, gateway_route_t route, int status,
                             uint64_t duration_us);

//  Counts a recommendation answer by source ("model", "cache", "fallback";
//  anything else counts as "other"). Lock-free.
void gateway_metrics_count_source(gateway_metrics_t *self, const char *source);

//  Counts a ranker call outcome. Lock-free.
void gateway_metrics_count_ranker(gateway_metrics_t *self, gateway_ranker_outcome_t outcome);

//  Reads a counter back (for tests and logs).
uint64_t gateway_metrics_requests(gateway_metrics_t *self, gateway_route_t route, int status);
uint64_t gateway_metrics_ranker(gateway_metrics_t *self, gateway_ranker_outcome_t outcome);

//  Renders the HTTP, source and ranker metrics, the in-flight gauge, then
//  appends extra (the actor section, may be NULL) verbatim. Returns a
//  string the caller frees with free(), its length in *len; NULL on
//  allocation failure.
char *gateway_metrics_render(gateway_metrics_t *self, uint64_t in_flight, const char *extra,
                             size_t *len);

//  Renders the actor section from a supervisor status reply (borrowed):
//  the actor table as recsd_actor_* series, then every actor's own metrics
//  (heartbeat texts) merged by family (prom_merge).
//  Returns a string the caller frees with free(); NULL on allocation
//  failure. status NULL gives an empty string.
char *gateway_metrics_render_actors(const proto_status_rep_t *status);

#endif
