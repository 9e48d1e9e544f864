/*  gateway.c: the http-gateway actor: its context, start-up, poll loop and
    orderly stop.

    Threads: the main thread runs the actor loop (supervisor link,
    readiness, reporting); libmicrohttpd's pool serves HTTP (gateway_http);
    one probe thread does the blocking PostgreSQL/Redis work
    (gateway_probe). They meet only in gateway_state, gateway_metrics and
    the ranker socket pool.

    Stop (STOP from the supervisor, or SIGTERM/SIGINT through actor_link):
    readiness false, stop accepting (MHD_quiesce_daemon), let in-flight
    requests finish (at most most of stop_timeout_ms), then tear down.
*/
#include "gateway.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "actor_link.h"
#include "gateway_cache.h"
#include "gateway_health.h"
#include "gateway_http.h"
#include "gateway_metrics.h"
#include "gateway_config.h"
#include "gateway_experiments.h"
#include "gateway_models.h"
#include "gateway_probe.h"
#include "gateway_ranker.h"
#include "gateway_state.h"
#include "log.h"
#include "proto/proto_zmq.h"
#include "trace.h"

//  The loop wakes at least this often; actor_link reads SIGTERM from a
//  signalfd at each tick, so this bounds how late a signal is noticed.
#define LOOP_MAX_WAIT_MS 100
#define STOP_POLL_MS 10
//  While stopping, how long keep-alive connections get to send one more
//  request (answered with Connection: close) before they are closed. A
//  busy client's connection closes itself well before; this bounds how long
//  an idle one delays the stop. 300 ms proved too short under load (a
//  client's next request met the close: connection reset).
#define STOP_LINGER_MS 1000

typedef struct {
    const config_t *cfg;
    const char *instance; //  "http-gateway" or "http-gateway.N"
    actor_link_t *link;
    gateway_state_t *state;
    gateway_metrics_t *metrics;
    gateway_ranker_t *ranker;
    gateway_probe_t *probe;
    gateway_models_t *models;           //  training/model API; NULL if it could not be set up
    pg_pool_t *admin_pool;              //  connections of the experiment and configuration APIs
    gateway_config_t *serving;          //  serving configuration (watched) and its API
    gateway_experiments_t *experiments; //  A/B assignment, exposures and API
    gateway_auth_t *auth;               //  NULL: authentication off
    rate_limiter_t *limiter;            //  NULL: no per-user rate limit
    gateway_cache_t *cache;             //  recommendation cache (in-process + Redis)
    zsock_t *notices;                   //  SUB to the ingestors: evict a user's cached lists
    uint64_t invalidated;               //  notices that evicted at least one entry
    gateway_http_t *http;
    tracer_t *tracer; //  spans of the HTTP requests (off unless OTEL_* say otherwise)

    proto_msg_t *status;        //  latest supervisor status reply, or NULL
    uint64_t status_at_ms;      //  when it arrived (monotonic)
    uint64_t next_readiness_ms; //  next status request + readiness render
    uint64_t handled_reported;  //  handled count already told the supervisor
    int ready_status;           //  last rendered readiness HTTP status
    bool draining;              //  drain flag as last seen
} self_t;

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

//  Renders the readiness document and the actor metrics from what we know
//  now, and hands both to the HTTP threads.
static void s_refresh_readiness(self_t *self)
{
    const config_t *cfg = self->cfg;
    gateway_health_input_t in = {0};
    gateway_state_deps(self->state, &in.postgres, &in.redis);
    const proto_status_rep_t *status = self->status ? &self->status->body.status : NULL;
    int64_t age = status ? (int64_t)(s_now_ms() - self->status_at_ms) : -1;
    bool fresh = status && gateway_health_status_fresh(age, cfg->readiness_interval_ms);
    gateway_health_actors(cfg->required, cfg->required_count, status, age,
                          cfg->readiness_interval_ms, &in.actors);
    in.status = status;
    in.draining = actor_link_draining(self->link) || (fresh && status->draining);
    in.stopping = gateway_state_stopping(self->state);

    int http_status = 503;
    char *body = gateway_health_render(&in, &http_status);
    if (!body) {
        log_error("cannot render the readiness document (out of memory)");
        return;
    }
    if (http_status != self->ready_status) {
        if (http_status == 200)
            log_info("ready");
        else
            log_info("not ready: %s", body);
        self->ready_status = http_status;
    }
    gateway_state_set_ready(self->state, http_status, &body);

    //  Stale actor figures are dropped rather than exported as current.
    char *actors = fresh ? gateway_metrics_render_actors(status) : NULL;
    gateway_state_set_actor_metrics(self->state, &actors);
}

//  Keeps the newest status reply. Returns true if a new one arrived.
static bool s_take_status(self_t *self)
{
    proto_msg_t *msg = actor_link_take_status(self->link);
    if (!msg)
        return false;
    if (msg->header.type != PROTO_STATUS_REP) {
        proto_msg_destroy(&msg);
        return false;
    }
    proto_msg_destroy(&self->status);
    self->status = msg;
    self->status_at_ms = s_now_ms();
    return true;
}

//  The tracer's counters go to /metrics through the heartbeat, merged
//  with the other actors' (the ranker reports the same family).
static void s_report_metrics(self_t *self, const char *instance)
{
    if (!tracer_enabled(self->tracer))
        return;
    char text[1024];
    size_t len = 0;
    if (tracer_metrics(self->tracer, instance, text, sizeof text, &len) != 0 ||
        actor_link_set_metrics(self->link, text) != 0)
        log_warn("tracing metrics text does not fit a heartbeat");
}

//  Tells the supervisor how much we did and how much is waiting.
static void s_report(self_t *self)
{
    uint64_t handled = gateway_state_handled(self->state);
    if (handled > self->handled_reported) {
        actor_link_count_handled(self->link, handled - self->handled_reported);
        self->handled_reported = handled;
    }
    actor_link_set_queue_depth(self->link, gateway_state_in_flight(self->state));
}

//  Interaction notices from the ingestors: the user's lists cached in this
//  process are stale now (the ingestor deleted the Redis ones itself).
//  Bounded per round so heartbeats keep their pace under an event flood.
static void s_handle_notices(self_t *self)
{
    for (int n = 0; n < 1000; n++) {
        char err[256];
        proto_msg_t *msg = proto_recv(self->notices, NULL, err, sizeof err);
        if (!msg) {
            if (errno == EAGAIN)
                return;
            log_warn("rejected malformed interaction notice: %s", err);
            continue;
        }
        if (msg->header.type == PROTO_INTERACTION &&
            gateway_cache_invalidate_user(self->cache, msg->body.interaction.user_id) > 0)
            self->invalidated++;
        proto_msg_destroy(&msg);
    }
}

//  The cache and its invalidation feed. Neither is required to serve:
//  without them every request goes to the ranker.
static void s_start_cache(self_t *self)
{
    const config_t *cfg = self->cfg;
    gateway_cache_config_t cc;
    gateway_cache_config_defaults(&cc);
    cc.l1_capacity = (size_t)cfg->cache_l1_entries;
    cc.l1_ttl_ms = cfg->cache_l1_ttl_ms;
    cc.redis_url = cfg->redis_url;
    cc.redis_ttl_s = cfg->cache_ttl_s;
    cc.segment_ttl_s = cfg->cache_segment_ttl_s;
    cc.redis_timeout_ms = cfg->cache_redis_timeout_ms;
    char err[512];
    self->cache = gateway_cache_new(&cc, err, sizeof err);
    if (!self->cache) {
        log_warn("recommendation cache unavailable (%s); serving without it", err);
        return;
    }
    char ingestors[(CONFIG_PATH_MAX + 16) * CONFIG_MAX_INSTANCES];
    if (config_endpoints(cfg, "event-ingestor", ingestors, sizeof ingestors) != 0)
        return; //  no ingestor in this pod: lists expire by TTL only
    self->notices = zsock_new(ZMQ_SUB);
    if (!self->notices) {
        log_warn("cannot create the notice socket; cached lists expire by TTL only");
        return;
    }
    zsock_set_subscribe(self->notices, "");
    zsock_set_maxmsgsize(self->notices, PROTO_MAX_MESSAGE);
    zsock_set_rcvhwm(self->notices, 100000);
    if (zsock_attach(self->notices, ingestors, false) != 0) {
        log_warn("cannot connect to the ingestors at %s; cached lists expire by TTL only",
                 ingestors);
        zsock_destroy(&self->notices);
    }
}

//  One round of the loop: wait for the supervisor or a timer, then do what
//  is due. max_wait_ms caps the wait.
static void s_turn(self_t *self, long max_wait_ms)
{
    long timeout = actor_link_timeout_ms(self->link);
    uint64_t now = s_now_ms();
    long until_readiness =
        self->next_readiness_ms > now ? (long)(self->next_readiness_ms - now) : 0;
    if (timeout < 0 || timeout > until_readiness)
        timeout = until_readiness;
    if (timeout > max_wait_ms)
        timeout = max_wait_ms;

    zmq_pollitem_t items[2] = {
        {zsock_resolve(actor_link_socket(self->link)), 0, ZMQ_POLLIN, 0},
        {self->notices ? zsock_resolve(self->notices) : NULL, 0, ZMQ_POLLIN, 0}};
    int rc = zmq_poll(items, self->notices ? 2 : 1, timeout);
    if (rc < 0 && errno != EINTR) {
        log_warn("poll failed: %s", zmq_strerror(errno));
        zclock_sleep((int)timeout); //  do not spin on a persistent error
    }
    if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
        actor_link_handle(self->link);
    if (rc > 0 && self->notices && (items[1].revents & ZMQ_POLLIN))
        s_handle_notices(self);

    bool refresh = s_take_status(self);
    bool draining = actor_link_draining(self->link);
    if (draining != self->draining) { //  readiness must turn false at once
        self->draining = draining;
        refresh = true;
    }
    now = s_now_ms();
    if (now >= self->next_readiness_ms) {
        //  The answer arrives through actor_link_handle in a later round; a
        //  failed send shows up as a stale status, which fails readiness.
        if (actor_link_request_status(self->link) != 0)
            log_debug("could not ask the supervisor for its status");
        self->next_readiness_ms = now + (uint64_t)self->cfg->readiness_interval_ms;
        refresh = true;
        s_report_metrics(self, self->instance);
    }
    if (refresh)
        s_refresh_readiness(self);
    s_report(self);
    actor_link_tick(self->link);
}

//  Stop accepting, wait for in-flight requests, keep heartbeating meanwhile.
static void s_stop(self_t *self)
{
    gateway_state_set_stopping(self->state);
    s_refresh_readiness(self);
    gateway_http_quiesce(self->http);
    //  Leave a quarter of the supervisor's STOP -> SIGKILL budget for the
    //  teardown itself, so we exit 0 instead of being killed.
    uint64_t start = s_now_ms();
    uint64_t budget = (uint64_t)self->cfg->stop_timeout_ms * 3 / 4;
    uint64_t linger = budget < STOP_LINGER_MS ? budget : STOP_LINGER_MS;
    log_info("stopping: not accepting connections, %llu requests in flight",
             (unsigned long long)gateway_state_in_flight(self->state));
    for (;;) {
        uint64_t elapsed = s_now_ms() - start;
        if (elapsed >= budget)
            break;
        //  Done when nothing is in flight and either every connection is
        //  closed or the linger passed: a keep-alive client that sends its
        //  next request meanwhile gets an answer with Connection: close
        //  instead of a reset; one that stays idle does not hold us up.
        if (gateway_state_in_flight(self->state) == 0 &&
            (gateway_http_connections(self->http) == 0 || elapsed >= linger))
            break;
        s_turn(self, STOP_POLL_MS);
    }
    uint64_t left = gateway_state_in_flight(self->state);
    if (left)
        log_warn("stop: %llu requests still in flight after %llu ms, closing them",
                 (unsigned long long)left, (unsigned long long)budget);
    gateway_http_destroy(&self->http);
    s_report(self);
}

int gateway_main(const config_t *cfg, const char *instance)
{
    self_t ctx = {.cfg = cfg, .instance = instance, .ready_status = 503};
    self_t *self = &ctx;
    int rc = 1;
    char err[512];

    //  hiredis writes with write(2): a Redis that hangs up mid-PING must not
    //  kill the gateway with SIGPIPE. The actor owns its process.
    signal(SIGPIPE, SIG_IGN);

    //  A bad OTEL_* variable is a configuration error: refused before
    //  anything starts (the tracer itself starts after actor_link, so
    //  that its export thread inherits the blocked signals).
    if (tracer_check_env(err, sizeof err) != 0) {
        log_error("tracing configuration: %s", err);
        return RECSD_EXIT_CONFIG;
    }

    //  First: actor_link blocks SIGTERM/SIGINT (read through a signalfd at
    //  each tick), and every thread started after it inherits that mask.
    self->link = actor_link_new(cfg, instance);
    if (!self->link)
        goto done; //  logged by actor_link_new
    self->tracer = tracer_new(instance, err, sizeof err);
    if (!self->tracer) {
        log_error("tracing: %s", err);
        goto done;
    }
    if (tracer_enabled(self->tracer))
        log_info("tracing on: OTLP/HTTP JSON export (OTEL_* variables)");
    self->state = gateway_state_new();
    self->metrics = gateway_metrics_new();
    if (!self->state || !self->metrics) {
        log_error("out of memory");
        goto done;
    }
    //  Every ranker instance's endpoint: each DEALER spreads requests over
    //  the connected ones, and ZMQ_IMMEDIATE skips the ones that are down.
    char endpoint[(CONFIG_PATH_MAX + 16) * CONFIG_MAX_INSTANCES];
    if (config_endpoints(cfg, "ranker", endpoint, sizeof endpoint) != 0 &&
        config_endpoint(cfg, "ranker", endpoint, sizeof endpoint) != 0) {
        log_error("ranker endpoint under %s is too long", cfg->runtime_dir);
        goto done;
    }
    self->ranker = gateway_ranker_new(endpoint, cfg->http_threads, err, sizeof err);
    if (!self->ranker) {
        log_error("ranker client: %s", err);
        goto done;
    }
    self->probe = gateway_probe_new(cfg, self->state, err, sizeof err);
    if (!self->probe) {
        log_error("%s", err);
        goto done;
    }
    //  The model API is optional to serving: without it the model routes
    //  answer 503 and recommendations go on. It connects lazily, so a
    //  PostgreSQL that is down does not stop the gateway from starting.
    self->models = gateway_models_new(cfg->pg_dsn, err, sizeof err);
    if (!self->models)
        log_warn("%s; the model routes will answer 503", err);
    gateway_state_set_models(self->state, self->models);
    //  The same for experiments and the serving configuration: both load
    //  in background threads; until then no experiment applies and the
    //  environment's configuration serves.
    pg_pool_config_t pc = {.dsn = cfg->pg_dsn,
                           .app = "gateway-admin",
                           .max = GATEWAY_MODELS_POOL_MAX,
                           .connect_timeout_s = GATEWAY_MODELS_CONNECT_S,
                           .statement_timeout_ms = GATEWAY_MODELS_STATEMENT_MS};
    self->admin_pool = cfg->pg_dsn[0] ? pg_pool_new(&pc) : NULL;
    self->serving = gateway_config_new(cfg, self->admin_pool, err, sizeof err);
    if (!self->serving)
        log_warn("serving configuration: %s; the environment's serves", err);
    self->experiments =
        gateway_experiments_new(cfg, self->admin_pool, cfg->experiment_layer, err, sizeof err);
    if (!self->experiments)
        log_warn("%s; no experiment applies", err);
    bool auth_off = false;
    self->auth = gateway_auth_new(cfg, &auth_off, err, sizeof err);
    if (!self->auth && !auth_off) {
        log_error("%s", err);
        goto done;
    }
    if (auth_off)
        log_warn("API authentication is off (RECSD_AUTH=%s, no credential configured): every "
                 "endpoint is open",
                 cfg->auth_mode);
    if (cfg->rate_limit > 0) {
        rate_limiter_config_t rc;
        rate_limiter_config_defaults(&rc);
        rc.limit = cfg->rate_limit;
        rc.period_ms = (int64_t)cfg->rate_limit_period_s * 1000;
        rc.redis_url = cfg->redis_url;
        self->limiter = rate_limiter_new(&rc, err, sizeof err);
        if (!self->limiter) {
            log_error("rate limiter: %s", err);
            goto done;
        }
    }
    s_start_cache(self);
    gateway_http_deps_t deps = {.cfg = cfg,
                                .auth = self->auth,
                                .limiter = self->limiter,
                                .state = self->state,
                                .metrics = self->metrics,
                                .ranker = self->ranker,
                                .cache = self->cache,
                                .serving = self->serving,
                                .experiments = self->experiments};
    self->http = gateway_http_new_traced(&deps, self->tracer, err, sizeof err);
    if (!self->http) {
        log_error("%s", err);
        goto done;
    }
    log_info("serving HTTP on %s:%d with %d threads; ranker at %s", cfg->http_addr,
             gateway_http_port(self->http), cfg->http_threads, endpoint);

    actor_link_set_ready(self->link);
    s_refresh_readiness(self);
    while (!actor_link_stopping(self->link))
        s_turn(self, LOOP_MAX_WAIT_MS);
    s_stop(self);
    log_info("stopped");
    rc = 0;
done:
    gateway_http_destroy(&self->http);
    zsock_destroy(&self->notices);
    gateway_cache_destroy(&self->cache);
    if (self->state)
        gateway_state_set_models(self->state, NULL);
    gateway_models_destroy(&self->models);
    gateway_experiments_destroy(&self->experiments);
    gateway_auth_destroy(&self->auth);
    rate_limiter_destroy(&self->limiter);
    gateway_config_destroy(&self->serving);
    pg_pool_destroy(&self->admin_pool);
    gateway_probe_destroy(&self->probe);
    gateway_ranker_destroy(&self->ranker);
    proto_msg_destroy(&self->status);
    gateway_state_destroy(&self->state);
    gateway_metrics_destroy(&self->metrics);
    //  After the HTTP daemon: every span has ended. Flushes what is queued.
    tracer_destroy(&self->tracer);
    actor_link_destroy(&self->link);
    return rc;
}
