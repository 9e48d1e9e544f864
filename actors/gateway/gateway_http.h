/*  gateway_http.h: the gateway's HTTP server (libmicrohttpd) and its routes.

    GET /health                 200 {"status":"ok"} while the process serves
    GET /health/ready           200/503 readiness document (gateway_health.h)
    GET /metrics                Prometheus text 0.0.4 (gateway_metrics.h)
    GET /api/v1/recs/{userId}   ?limit=1..100 (default 10); ranker answer, or
                                the gateway's popularity copy marked
                                "source":"fallback" -- never an error because
                                the ranker is down or late
    POST /api/v1/recs/train, GET /api/v1/recs/models[/{id}],
    POST /api/v1/recs/models/{id}/activate   the training API
                                (gateway_models.h), on a PostgreSQL pool
    other paths 404, other methods on known routes 405 (problem+json).
    Every answer carries X-Request-Id (the client's if it is 1..64 printable
    bytes, else a fresh one); answers sent while stopping carry
    Connection: close.

    Tracing (trace.h): a valid incoming `traceparent` is the parent of the
    request's SERVER span "<METHOD> <route template>" (a malformed one is
    ignored: a new trace). Every answer carries `traceparent`: the server
    span's context, or with tracing off or unsampled the caller's, as it
    came (none when there is neither). Recommendation requests add child
    spans for the cache lookups (gateway_cache.h) and the ranker call
    ("recsd.Ranker/Recommend", CLIENT), whose context goes to the ranker in
    the envelope. Server span attributes: http.request.method, http.route,
    http.response.status_code, url.path, and for recommendations
    recsd.user_id, recsd.cache.level (lru|redis|none), recsd.source,
    recsd.model_id, recsd.type, recsd.items, recsd.experiment_id and
    recsd.variant when an experiment applied. 5xx answers mark the span as
    an error.

    Threads: libmicrohttpd's internal thread pool (cfg->http_threads). The
    recommendation handlers read the shared state and metrics and call the
    ranker; they never talk to PostgreSQL or Redis. The training API's
    handlers use their own small PostgreSQL pool (gateway_models.h), so a
    slow database never holds up a recommendation.

    Ownership: the gateway context owns the server. deps (and everything it
    points to) are borrowed and must outlive it.
*/
#ifndef RECSD_GATEWAY_HTTP_H
#define RECSD_GATEWAY_HTTP_H

#include <stddef.h>

#include "config.h"
#include "gateway_auth.h"
#include "gateway_cache.h"
#include "gateway_config.h"
#include "gateway_experiments.h"
#include "gateway_metrics.h"
#include "gateway_ranker.h"
#include "gateway_state.h"
#include "rate_limiter.h"
#include "trace.h"

typedef struct {
    const config_t *cfg; //  http_addr/port/threads/max_connections, ranker_deadline_ms
    gateway_state_t *state;
    gateway_metrics_t *metrics;
    gateway_ranker_t *ranker;
    gateway_cache_t *cache;             //  recommendation cache; NULL = none
    gateway_config_t *serving;          //  serving configuration; NULL = the environment's
    gateway_experiments_t *experiments; //  A/B tests; NULL = none apply
    const gateway_auth_t *auth;         //  NULL = authentication off
    rate_limiter_t *limiter;            //  per-user request rate; NULL = off
} gateway_http_deps_t;

typedef struct gateway_http_t gateway_http_t;

//  Binds cfg->http_addr:cfg->http_port (port 0 = any free port) and starts
//  serving. Returns NULL with the reason in err (naming the address) if the
//  address cannot be bound or the daemon does not start.
gateway_http_t *gateway_http_new(const gateway_http_deps_t *deps, char *err, size_t errlen);

//  gateway_http_new with a tracer (borrowed; must outlive the server):
//  a span per request as described above. NULL or off: no spans, and the
//  caller's traceparent is still passed on.
gateway_http_t *gateway_http_new_traced(const gateway_http_deps_t *deps, tracer_t *tracer,
                                        char *err, size_t errlen);

//  The port actually bound (useful with port 0).
int gateway_http_port(gateway_http_t *self);

//  Stops accepting new connections (the listening socket is closed);
//  connections already open, or already waiting in the listen backlog, are
//  served on. Idempotent.
void gateway_http_quiesce(gateway_http_t *self);

//  Open client connections right now (idle keep-alive ones included).
unsigned int gateway_http_connections(gateway_http_t *self);

//  Stops the daemon (closes every connection, joins its threads);
//  idempotent, sets *self_p to NULL.
void gateway_http_destroy(gateway_http_t **self_p);

#endif
