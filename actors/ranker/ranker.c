/*  ranker.c: the ranker actor.

    Serves recommendation lists to the gateway over a ROUTER socket at
    ipc://<runtime_dir>/<instance>: the active trained models first, then
    co-occurrence, genre segment popularity, the popularity bundle and the
    popularity list from PostgreSQL (ranker_serve.h has the chain).

    Threads: the loop (this file) owns every socket, the models, the
    histories and the PostgreSQL connection of the start-up loads; the
    loader thread (ranker_loader.h) has a connection of its own, watches
    the registry, opens artifacts and reloads the lists, and hands each
    result over, to be swapped in here between two requests
    (ranker_models.h).

    State: per user, the latest events with their strengths (the scorer
    folds them in at request time, so a new event shows in the next
    answer) and the videos they consumed, loaded at start and kept current
    by the ingestors' interaction notices; the retired videos and the
    popularity list, loaded at start and then reloaded by the loader
    thread (the popularity query can take longer than a request's
    deadline, so it never runs in the loop once serving).

    Runtime serving configuration (serving_config_store.h): a watcher
    thread keeps the current version; the loop compares its number each
    iteration and applies a new one between two requests: the chain and
    the blend at once (ranker_serve_configure; the configured blend only
    once a version is stored: at version 0 hybrid bundles keep the blend
    they were tuned with), and a new seen_completion or new event weights
    by reloading the histories, seen sets and co-occurrence from
    PostgreSQL with them. The old ones answer until the new ones are in:
    the load heartbeats and serves requests between its rows.

    Requests whose deadline has already passed are dropped unanswered: the
    gateway has answered from its fallback by then and would discard a late
    reply anyway.
*/
#include "ranker.h"

#include <assert.h>
#include <cblas.h>
#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "actor_link.h"
#include "event_sender.h"
#include "log.h"
#include "pg_conn.h"
#include "popular_list.h"
#include "proto/proto_zmq.h"
#include "ranker_cooc.h"
#include "ranker_history.h"
#include "ranker_loader.h"
#include "ranker_models.h"
#include "ranker_serve.h"
#include "seen_set.h"
#include "serving_config_store.h"
#include "trace.h"
#include "training_data.h"

#define RANKER_POPULAR_MAX 500
#define RANKER_BIND_WAIT_MS 8000 //  longest a starting ranker waits for its models
//  Queries run inside the heartbeat loop: a lock or a slow plan must not
//  hold it past the heartbeat timeout (connect <= 2 s, then a beat, then
//  the query <= 1 s).
#define RANKER_STATEMENT_TIMEOUT_MS 1000
//  The start-up history load streams every interaction and beats between
//  rows, so it may take longer than one statement in the loop.
#define RANKER_LOAD_TIMEOUT_MS 120000
#define RANKER_RETIRED_REFRESH_MS 60000
#define RANKER_MODEL_CHECK_MS 30000
#define RANKER_BATCH_US 20000 //  requests handled in one go, at most this long
//  How long a starting ranker waits for the stored serving configuration
//  (so it loads its histories with it once, not twice).
#define RANKER_CONFIG_WAIT_MS 2000
#define RANKER_HISTORY_RETRY_MS 5000 //  a failed history reload is retried after

typedef struct {
    const config_t *cfg;
    const char *instance; //  "ranker", or "ranker.N" when several run
    actor_link_t *link;
    zsock_t *frontend;  //  ROUTER, requests from gateways
    char endpoint[160]; //  where it binds, once ready to serve (s_bind_when_ready)
    bool bound;
    int64_t bind_deadline;     //  bind by then whatever is still loading
    zsock_t *notices;          //  SUB to every event-ingestor: stored interactions
    event_sender_t *events;    //  RecommendationsRefreshed, through the publisher
    seen_set_t *seen;          //  what each user has consumed: never recommended
    ranker_history_t *history; //  each user's latest events, for scoring
    ranker_models_t *models;   //  active and previous bundle per type
    ranker_loader_t *loader;   //  NULL if the artifact store is unusable
    ranker_serve_t *serve;
    zhashx_t *retired;              //  retired video ids: never recommended
    PGconn *pg;                     //  NULL while PostgreSQL is unreachable
    popular_list_t *popular;        //  last good list, never NULL after start
    segment_popularity_t *segments; //  genre lists; NULL until the loader's first load
    cooccurrence_t *cooc;           //  item co-occurrence; NULL until the histories load
    int64_t next_refresh;
    int64_t next_retired;
    uint64_t dropped_late;
    bool popular_loaded; //  a list was loaded once: an empty one is then real
    bool history_loaded; //  histories loaded; retried with the refresh until then
    uint64_t answered;
    uint64_t notices_folded;
    uint64_t loads[2];               //  model loads: [0] loaded, [1] refused
    int64_t next_metrics;            //  when the heartbeat metrics text is next rebuilt
    serving_config_watch_t *watch;   //  the stored serving configuration; NULL if it cannot run
    serving_config_t config;         //  the configuration applied
    int64_t config_version;          //  its version (0: defaults), -1 before the first
    serving_config_t history_config; //  seen_completion and weights the histories use
    bool reload_history;             //  they changed: reload the histories
    int64_t next_history_reload;
    bool serving_in_load; //  a reload is running: its ticks answer requests
    tracer_t *tracer;     //  a SERVER span per request, its steps as children (off by default)
} self_t;

static void s_handle_request(self_t *self);

//  ---- metrics ---------------------------------------------------------------

typedef struct {
    char text[PROTO_METRICS_MAX];
    size_t len;
    bool overflow;
} s_text_t;

static void s_add(s_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_add(s_text_t *t, const char *fmt, ...)
{
    if (t->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->text + t->len, sizeof t->text - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof t->text - t->len)
        t->overflow = true;
    else
        t->len += (size_t)n;
}

static void s_family(s_text_t *t, const char *name, const char *type, const char *help)
{
    s_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_model_metrics(self_t *self, s_text_t *t)
{
    const char *a = self->instance;
    const ranker_serve_stats_t *st = ranker_serve_stats(self->serve);
    s_family(t, "recsd_ranker_model_info", "gauge",
             "The model the ranker serves per type (1 per active model).");
    for (int i = 0; i < RANKER_MODELS_TYPES; i++) {
        ranker_model_t m;
        if (ranker_models_get(self->models, i, false, &m))
            s_add(t, "recsd_ranker_model_info{actor=\"%s\",type=\"%s\",model_id=\"%s\"} 1\n", a,
                  ranker_models_types[i], m.model_id);
    }
    s_family(t, "recsd_ranker_model_loads_total", "counter",
             "Models opened for serving, by outcome (refused: corrupt or mismatched artifact).");
    s_add(t, "recsd_ranker_model_loads_total{actor=\"%s\",outcome=\"loaded\"} %llu\n", a,
          (unsigned long long)self->loads[0]);
    s_add(t, "recsd_ranker_model_loads_total{actor=\"%s\",outcome=\"refused\"} %llu\n", a,
          (unsigned long long)self->loads[1]);
    //  Not recsd_ranker_requests_total: the gateway reports that family
    //  (its requests to the rankers, by outcome).
    s_family(t, "recsd_ranker_served_total", "counter",
             "Recommendation lists by what served them (type popularity_list: no model).");
    for (int i = 0; i < RANKER_SERVE_ANSWERS; i++)
        s_add(t, "recsd_ranker_served_total{actor=\"%s\",source=\"model\",type=\"%s\"} %llu\n", a,
              i < RANKER_MODELS_TYPES     ? ranker_models_types[i]
              : i == RANKER_SERVE_LIST    ? "popularity_list"
              : i == RANKER_SERVE_SEGMENT ? "segment_popularity"
                                          : "cooccurrence",
              (unsigned long long)st->requests[i]);
    s_family(t, "recsd_ranker_fallbacks_total", "counter",
             "Steps down the serving chain, by model type, version and reason.");
    for (int i = 0; i < RANKER_MODELS_TYPES; i++)
        for (int p = 0; p < 2; p++)
            for (int r = 0; r < RANKER_SERVE_REASONS; r++)
                if (p == 0 || r == RANKER_SERVE_SCORER_ERROR)
                    s_add(t,
                          "recsd_ranker_fallbacks_total{actor=\"%s\",type=\"%s\",version=\"%s\","
                          "reason=\"%s\"} %llu\n",
                          a, ranker_models_types[i], p ? "previous" : "active",
                          ranker_serve_reason_names[r], (unsigned long long)st->fallbacks[i][p][r]);
    s_family(t, "recsd_ranker_segment_fallbacks_total", "counter",
             "Users the segment-popularity step passed on to global popularity, by reason.");
    for (int r = 0; r < RANKER_SERVE_SEGMENT_REASONS; r++)
        s_add(t, "recsd_ranker_segment_fallbacks_total{actor=\"%s\",reason=\"%s\"} %llu\n", a,
              ranker_serve_segment_reason_names[r], (unsigned long long)st->segment_fallbacks[r]);
    s_family(t, "recsd_ranker_cooccurrence_misses_total", "counter",
             "Users with liked videos the co-occurrence step had nothing for.");
    s_add(t, "recsd_ranker_cooccurrence_misses_total{actor=\"%s\"} %llu\n", a,
          (unsigned long long)st->cooc_misses);
    s_family(t, "recsd_ranker_cooccurrence_pairs", "gauge",
             "Neighbour entries in the co-occurrence table (bounded per video).");
    s_add(t, "recsd_ranker_cooccurrence_pairs{actor=\"%s\"} %zu\n", a,
          self->cooc ? cooccurrence_pairs(self->cooc) : 0);
    s_family(t, "recsd_ranker_cooccurrence_bytes", "gauge",
             "Estimated memory of the co-occurrence table.");
    s_add(t, "recsd_ranker_cooccurrence_bytes{actor=\"%s\"} %zu\n", a,
          self->cooc ? cooccurrence_memory(self->cooc) : 0);
    s_family(t, "recsd_ranker_pinned_models", "gauge",
             "Models pinned by running experiments' variants the ranker holds.");
    s_add(t, "recsd_ranker_pinned_models{actor=\"%s\"} %d\n", a,
          ranker_models_pinned_count(self->models));
    s_family(t, "recsd_ranker_pinned_served_total", "counter",
             "Lists served by the pinned model a request named.");
    s_add(t, "recsd_ranker_pinned_served_total{actor=\"%s\"} %llu\n", a,
          (unsigned long long)st->pinned_served);
    s_family(t, "recsd_ranker_pinned_misses_total", "counter",
             "Requests whose pinned model did not serve them, by reason (the chain did).");
    for (int r = 0; r < RANKER_SERVE_PIN_REASONS; r++)
        s_add(t, "recsd_ranker_pinned_misses_total{actor=\"%s\",reason=\"%s\"} %llu\n", a,
              ranker_serve_pin_reason_names[r], (unsigned long long)st->pinned_misses[r]);
    s_family(t, "recsd_ranker_filled_items_total", "counter",
             "Items a model's list was topped up with from the popularity list.");
    s_add(t, "recsd_ranker_filled_items_total{actor=\"%s\"} %llu\n", a,
          (unsigned long long)st->filled);
    s_family(t, "recsd_ranker_scoring_seconds", "histogram",
             "Time to build one list: history, scoring, selection.");
    uint64_t cumulative = 0;
    for (int b = 0; b <= RANKER_SERVE_BUCKETS; b++) {
        cumulative += st->latency_buckets[b];
        char le[32];
        if (b < RANKER_SERVE_BUCKETS)
            snprintf(le, sizeof le, "%g", ranker_serve_buckets[b]);
        else
            snprintf(le, sizeof le, "+Inf");
        s_add(t, "recsd_ranker_scoring_seconds_bucket{actor=\"%s\",le=\"%s\"} %llu\n", a, le,
              (unsigned long long)cumulative);
    }
    s_add(t, "recsd_ranker_scoring_seconds_sum{actor=\"%s\"} %.6f\n", a, st->latency_sum);
    s_add(t, "recsd_ranker_scoring_seconds_count{actor=\"%s\"} %llu\n", a,
          (unsigned long long)st->latency_count);
}

//  The ranker's own series for /metrics, sent with its heartbeats.
static void s_update_metrics(self_t *self)
{
    if (zclock_mono() < self->next_metrics)
        return;
    self->next_metrics = zclock_mono() + self->cfg->heartbeat_interval_ms;
    static_assert(sizeof(s_text_t) < 16384, "metrics text fits the stack");
    s_text_t t = {.len = 0};
    const char *a = self->instance;
    s_family(&t, "recsd_ranker_answered_total", "counter",
             "Recommendation requests the ranker answered.");
    s_add(&t, "recsd_ranker_answered_total{actor=\"%s\"} %llu\n", a,
          (unsigned long long)self->answered);
    s_family(&t, "recsd_ranker_late_dropped_total", "counter",
             "Requests dropped unanswered: deadline passed.");
    s_add(&t, "recsd_ranker_late_dropped_total{actor=\"%s\"} %llu\n", a,
          (unsigned long long)self->dropped_late);
    s_family(&t, "recsd_ranker_interaction_notices_total", "counter",
             "Interactions folded in from ingestors.");
    s_add(&t, "recsd_ranker_interaction_notices_total{actor=\"%s\"} %llu\n", a,
          (unsigned long long)self->notices_folded);
    s_family(&t, "recsd_ranker_refreshed_events_total", "counter",
             "RecommendationsRefreshed events handed to the publisher, or dropped (queue full, "
             "no publisher).");
    s_add(&t, "recsd_ranker_refreshed_events_total{actor=\"%s\",result=\"sent\"} %llu\n", a,
          (unsigned long long)(self->events ? event_sender_sent(self->events) : 0));
    s_add(&t, "recsd_ranker_refreshed_events_total{actor=\"%s\",result=\"dropped\"} %llu\n", a,
          (unsigned long long)(self->events ? event_sender_dropped(self->events) : 0));
    s_family(&t, "recsd_ranker_popular_items", "gauge", "Items in the ranker's popularity list.");
    s_add(&t, "recsd_ranker_popular_items{actor=\"%s\"} %zu\n", a,
          popular_list_size(self->popular));
    s_family(&t, "recsd_ranker_seen_users", "gauge", "Users whose seen videos the ranker filters.");
    s_add(&t, "recsd_ranker_seen_users{actor=\"%s\"} %zu\n", a, seen_set_users(self->seen));
    s_family(&t, "recsd_ranker_history_events", "gauge",
             "User events the ranker keeps for scoring (bounded per user).");
    s_add(&t, "recsd_ranker_history_events{actor=\"%s\"} %zu\n", a,
          ranker_history_events(self->history));
    s_family(&t, "recsd_ranker_serving_config_version", "gauge",
             "Serving configuration version applied (0: the environment's defaults).");
    s_add(&t, "recsd_ranker_serving_config_version{actor=\"%s\"} %lld\n", a,
          (long long)(self->config_version > 0 ? self->config_version : 0));
    s_family(&t, "recsd_ranker_retired_videos", "gauge", "Retired videos never recommended.");
    s_add(&t, "recsd_ranker_retired_videos{actor=\"%s\"} %zu\n", a, zhashx_size(self->retired));
    s_model_metrics(self, &t);
    if (!t.overflow && tracer_metrics(self->tracer, a, t.text, sizeof t.text, &t.len) != 0)
        t.overflow = true;
    if (t.overflow || actor_link_set_metrics(self->link, t.text) != 0)
        log_warn("metrics text too long for a heartbeat");
}

//  ---- PostgreSQL ------------------------------------------------------------

//  An open connection, or false (logged with what) if PostgreSQL is down.
static bool s_connected(self_t *self, const char *what)
{
    char err[256];
    if (self->pg && PQstatus(self->pg) == CONNECTION_OK)
        return true;
    if (self->pg)
        PQfinish(self->pg);
    self->pg = pg_conn_open(self->cfg->pg_dsn, "ranker", 2, err, sizeof err);
    if (!self->pg ||
        pg_conn_statement_timeout(self->pg, RANKER_STATEMENT_TIMEOUT_MS, err, sizeof err)) {
        log_warn("%s: %s", what, err);
        if (self->pg)
            PQfinish(self->pg);
        self->pg = NULL;
        return false;
    }
    if (self->link)
        actor_link_tick(self->link); //  the connect may have taken a while
    return true;
}

static void s_refresh_popular(self_t *self)
{
    char err[256];
    self->next_refresh = zclock_mono() + self->cfg->popular_refresh_ms;
    if (!s_connected(self, "popularity not refreshed"))
        return;
    popular_list_t *fresh = popular_list_load(self->pg, RANKER_POPULAR_MAX, err, sizeof err);
    if (!fresh) {
        log_warn("popularity not refreshed, keeping %zu items: %s",
                 popular_list_size(self->popular), err);
        PQfinish(self->pg);
        self->pg = NULL;
        return;
    }
    popular_list_destroy(&self->popular);
    self->popular = fresh;
    self->popular_loaded = true;
    log_debug("popularity list refreshed: %zu items", popular_list_size(fresh));
}

static void s_refresh_retired(self_t *self)
{
    self->next_retired = zclock_mono() + RANKER_RETIRED_REFRESH_MS;
    if (!s_connected(self, "retired videos not refreshed"))
        return;
    char err[512];
    zhashx_t *fresh = ranker_loader_retired(self->pg, err, sizeof err);
    if (!fresh) {
        log_warn("retired videos not refreshed, keeping %zu: %s", zhashx_size(self->retired), err);
        PQfinish(self->pg);
        self->pg = NULL;
        return;
    }
    zhashx_destroy(&self->retired);
    self->retired = fresh;
}

//  Called every few thousand rows of a history load: heartbeats, and
//  during a reload the requests waiting, answered from the histories in
//  force (the load fills new ones on the side). Notices wait on their
//  socket until the new histories are in.
static void s_load_tick(void *arg)
{
    self_t *self = arg;
    actor_link_tick(self->link);
    if (!self->serving_in_load || !self->bound)
        return;
    zmq_pollitem_t item = {zsock_resolve(self->frontend), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 0) > 0 && (item.revents & ZMQ_POLLIN))
        s_handle_request(self);
}

//  The strength rule of cfg's event weights (training_data.h), the rating
//  scale from the environment.
static void s_history_options(const self_t *self, const serving_config_t *cfg,
                              training_data_options_t *opts)
{
    training_data_options_from_config(opts, self->cfg);
    opts->weight_watch = cfg->weight_watch;
    opts->weight_rating = cfg->weight_rating;
    opts->rating_neutral = cfg->rating_neutral;
    opts->weight_watchlist_add = cfg->weight_watchlist_add;
    opts->weight_watchlist_remove = cfg->weight_watchlist_remove;
}

//  True if a and b build the same histories and seen sets.
static bool s_same_history_options(const serving_config_t *a, const serving_config_t *b)
{
    return a->seen_completion == b->seen_completion && a->weight_watch == b->weight_watch &&
           a->weight_rating == b->weight_rating && a->rating_neutral == b->rating_neutral &&
           a->weight_watchlist_add == b->weight_watchlist_add &&
           a->weight_watchlist_remove == b->weight_watchlist_remove;
}

//  Every user's history with the configuration in force: at start, then
//  again when seen_completion or the event weights change (later events
//  come as notices). New tables are filled on the side and swapped in
//  whole, so a failed load leaves the ones in force. Without PostgreSQL
//  the ranker still serves, unfiltered at start, and logs it.
static void s_load_history(self_t *self)
{
    char err[256];
    self->next_history_reload = zclock_mono() + RANKER_HISTORY_RETRY_MS;
    if (!self->pg) {
        log_warn("histories not loaded: no PostgreSQL connection; %s, retrying later",
                 self->history_loaded ? "keeping the ones in force"
                                      : "serving unfiltered and unpersonalised");
        return;
    }
    serving_config_t used = self->config;
    training_data_options_t opts;
    s_history_options(self, &used, &opts);
    seen_set_t *seen = seen_set_new(used.seen_completion);
    ranker_history_t *history =
        ranker_history_new(&opts, used.seen_completion, RANKER_HISTORY_MAX_EVENTS);
    if (!seen || !history) {
        log_warn("histories not loaded: out of memory");
        seen_set_destroy(&seen);
        ranker_history_destroy(&history);
        return;
    }
    long events = -1;
    if (pg_conn_statement_timeout(self->pg, RANKER_LOAD_TIMEOUT_MS, err, sizeof err) == 0) {
        self->serving_in_load = self->history_loaded;
        events = ranker_history_load(history, self->pg, seen, s_load_tick, self, err, sizeof err);
        self->serving_in_load = false;
        char again[256];
        if (pg_conn_statement_timeout(self->pg, RANKER_STATEMENT_TIMEOUT_MS, again, sizeof again) !=
            0) {
            log_warn("statement timeout not restored (%s); reconnecting", again);
            PQfinish(self->pg);
            self->pg = NULL;
        }
    }
    if (events < 0) {
        log_warn("histories not loaded (%s); %s, retrying later", err,
                 self->history_loaded ? "keeping the ones in force" : "serving unfiltered");
        seen_set_destroy(&seen);
        ranker_history_destroy(&history);
        return;
    }
    //  Built before the swap (the loop keeps answering from the one in
    //  force meanwhile), so the new tables go in together.
    self->serving_in_load = self->history_loaded;
    cooccurrence_t *cooc = ranker_cooc_build(history, s_load_tick, self);
    self->serving_in_load = false;
    if (!cooc)
        log_warn("co-occurrence not built: out of memory; serving without it");
    seen_set_destroy(&self->seen);
    self->seen = seen;
    ranker_history_destroy(&self->history);
    self->history = history;
    cooccurrence_destroy(&self->cooc);
    self->cooc = cooc;
    bool reload = self->history_loaded;
    self->history_loaded = true;
    self->history_config = used;
    self->reload_history = !s_same_history_options(&used, &self->config);
    //  The integration tests look for this line's beginning.
    log_info("seen videos loaded for %zu users; %ld recent events for %zu users kept for "
             "scoring (seen_completion %g, serving configuration version %lld%s)",
             seen_set_users(self->seen), events, ranker_history_users(self->history),
             used.seen_completion, (long long)(self->config_version > 0 ? self->config_version : 0),
             reload ? ", reloaded" : "");
}

//  Applies the watcher's configuration if its version is not the one in
//  force: the chain and blend now, the histories by a reload (flagged,
//  run by the loop). Logged once per version.
static void s_apply_config(self_t *self)
{
    if (!self->watch || serving_config_watch_version(self->watch) == self->config_version)
        return;
    serving_config_t next;
    int64_t version = serving_config_watch_get(self->watch, &next);
    if (version == self->config_version)
        return;
    ranker_serve_config_t chain;
    ranker_serve_config_from(&next, version > 0, &chain);
    if (ranker_serve_configure(self->serve, &chain) != 0) {
        //  The store validated it: only a chain this ranker cannot serve.
        log_error("serving configuration version %lld not applied: its chain does not hold",
                  (long long)version);
        self->config_version = version;
        return;
    }
    self->config = next;
    self->config_version = version;
    if (self->history_loaded && !s_same_history_options(&next, &self->history_config)) {
        self->reload_history = true;
        self->next_history_reload = 0;
    }
    char steps[128] = "";
    for (int i = 0; i < next.fallback_count; i++) {
        size_t used = strlen(steps);
        const char *name = serving_fallback_name(next.fallback_chain[i]);
        snprintf(steps + used, sizeof steps - used, "%s%s", i ? "," : "", name ? name : "?");
    }
    log_info("serving configuration version %lld applied: default type %s, fallback chain %s, "
             "blend %s (%g, %g, %g), seen_completion %g%s",
             (long long)version, serving_type_name(next.default_type), steps,
             version > 0 ? "configured" : "each model's own", next.content_k, next.content_floor,
             next.ease_share, next.seen_completion,
             self->reload_history ? "; reloading the histories" : "");
}

//  ---- sockets ---------------------------------------------------------------

//  span: the request's SERVER span (NULL: untraced); parent: the caller's
//  context from the envelope (NULL: none).
static proto_msg_t *s_recommend(self_t *self, const proto_msg_t *req, trace_span_t *span,
                                const trace_ctx_t *parent)
{
    proto_msg_t *reply = proto_msg_new(PROTO_RECS_REP, req->header.request_id);
    if (!reply)
        return NULL;
    //  The reply carries this span's context (or the caller's, untraced).
    if (span || parent)
        trace_traceparent(span, parent, reply->header.traceparent);
    else
        snprintf(reply->header.traceparent, sizeof reply->header.traceparent, "%s",
                 req->header.traceparent);
    proto_recs_rep_t *rep = &reply->body.recs_rep;
    snprintf(rep->user_id, sizeof rep->user_id, "%s", req->body.recs_req.user_id);
    ranker_serve_inputs_t in = {.models = self->models,
                                .history = self->history,
                                .seen = self->seen,
                                .retired = self->retired,
                                .popular = self->popular,
                                .segments = self->segments,
                                .cooc = self->cooc,
                                .trace = span};
    if (ranker_serve_recommend(self->serve, &in, &req->body.recs_req, rep) != 0) {
        log_write(LOG_LEVEL_WARN, req->header.request_id, "recs for user %s: out of memory",
                  rep->user_id);
        proto_msg_destroy(&reply);
        return NULL;
    }
    log_write(LOG_LEVEL_DEBUG, req->header.request_id, "recs for user %s: %u items from %s (%s)",
              rep->user_id, rep->count, rep->model_id, rep->type);
    if (span) {
        trace_span_set_str(span, "recsd.model_id", rep->model_id);
        trace_span_set_str(span, "recsd.type", rep->type);
        trace_span_set_int(span, "recsd.model_version", rep->model_version);
        trace_span_set_str(span, "recsd.source", rep->source);
        trace_span_set_int(span, "recsd.items", rep->count);
        if (rep->segment[0])
            trace_span_set_str(span, "recsd.segment", rep->segment);
    }
    return reply;
}

//  The fold-in of a notice as a CONSUMER span "ranker.interaction", child
//  of the ingestor's consume span whose context the notice carries. A
//  notice without one starts no trace: with tracing on, the ingestor gives
//  every notice a context, and a root span per interaction would only
//  flood the collector with one-span traces.
static trace_span_t *s_notice_span(self_t *self, const proto_msg_t *msg)
{
    trace_ctx_t parent;
    if (!tracer_enabled(self->tracer) || !msg->header.traceparent[0] ||
        trace_ctx_parse(msg->header.traceparent, &parent) != 0)
        return NULL;
    trace_span_t *span =
        tracer_start(self->tracer, "ranker.interaction", TRACE_KIND_CONSUMER, &parent);
    const proto_interaction_t *in = &msg->body.interaction;
    trace_span_set_str(span, "recsd.user_id", in->user_id);
    trace_span_set_str(span, "recsd.video_id", in->video_id);
    trace_span_set_str(span, "recsd.event.kind", in->kind);
    trace_span_set_double(span, "recsd.event.weight", in->weight);
    return span;
}

//  Interactions the ingestors stored: fold them into the seen sets and
//  histories so the user's next request already reflects them.
static void s_handle_notice(self_t *self)
{
    for (int batch = 0; batch < 1024; batch++) {
        char err[256];
        proto_msg_t *msg = proto_recv(self->notices, NULL, err, sizeof err);
        if (!msg) {
            if (errno == EAGAIN)
                return;
            log_warn("rejected malformed interaction notice: %s", err);
            continue;
        }
        if (msg->header.type == PROTO_INTERACTION) {
            const proto_interaction_t *in = &msg->body.interaction;
            self->notices_folded++;
            trace_span_t *span = s_notice_span(self, msg);
            int recorded = 0;
            if (seen_set_record(self->seen, in->user_id, in->video_id, in->kind, in->weight) < 0 ||
                (recorded = ranker_history_record_notice(self->history, in)) < 0 ||
                (recorded > 0 && self->cooc &&
                 ranker_cooc_notice(self->cooc, self->history, in->user_id, in->video_id) < 0)) {
                log_warn("seen set, history or co-occurrence: out of memory");
                trace_span_set_error(span, "out of memory");
            }
            trace_span_set_bool(span, "recsd.history.recorded", recorded > 0);
            trace_span_end(&span);
        } else
            log_warn("unexpected %s message on the notice socket",
                     proto_type_name(msg->header.type));
        proto_msg_destroy(&msg);
    }
}

static bool s_any_model(self_t *self)
{
    ranker_model_t m;
    for (int t = 0; t < RANKER_MODELS_TYPES; t++)
        if (ranker_models_get(self->models, t, false, &m))
            return true;
    return false;
}

static void s_handle_request(self_t *self)
{
    //  Bounded batch (in count and time) so heartbeats, notices and model
    //  swaps keep flowing under sustained load.
    int64_t until = zclock_usecs() + RANKER_BATCH_US;
    for (int batch = 0; batch < 256 && zclock_usecs() < until; batch++) {
        char err[256];
        zframe_t *identity = NULL;
        proto_msg_t *req = proto_recv(self->frontend, &identity, err, sizeof err);
        if (!req) {
            if (errno == EAGAIN)
                return;
            log_warn("rejected malformed request: %s", err);
            continue;
        }
        actor_link_count_handled(self->link, 1);
        proto_msg_t *reply = NULL;
        //  The request's SERVER span, child of the gateway's CLIENT span
        //  when the envelope carries its context (a malformed or empty one:
        //  a new trace). Nothing is parsed with tracing off.
        trace_span_t *span = NULL;
        trace_ctx_t parent_ctx;
        const trace_ctx_t *parent = NULL;
        if (tracer_enabled(self->tracer)) {
            if (trace_ctx_parse(req->header.traceparent, &parent_ctx) == 0)
                parent = &parent_ctx;
            span = tracer_start(self->tracer, "recsd.Ranker/Recommend", TRACE_KIND_SERVER, parent);
            trace_span_set_str(span, "rpc.system", "zeromq");
            trace_span_set_str(span, "rpc.service", "ranker");
            trace_span_set_str(span, "rpc.method", "Recommend");
            trace_span_set_str(span, "recsd.request_id", req->header.request_id);
            if (req->header.type == PROTO_RECS_REQ) {
                trace_span_set_str(span, "recsd.user_id", req->body.recs_req.user_id);
                trace_span_set_int(span, "recsd.limit", req->body.recs_req.limit);
                if (req->body.recs_req.model_id[0])
                    trace_span_set_str(span, "recsd.pinned_model_id", req->body.recs_req.model_id);
            }
        }
        if (req->header.type != PROTO_RECS_REQ) {
            log_write(LOG_LEVEL_WARN, req->header.request_id, "unexpected %s message",
                      proto_type_name(req->header.type));
            reply = proto_msg_new(PROTO_RESULT, req->header.request_id);
            if (reply) {
                reply->body.result.code = 400;
                snprintf(reply->body.result.message, sizeof reply->body.result.message,
                         "ranker takes recs requests only");
            }
        } else if (req->header.deadline_ms && proto_now_ms() > req->header.deadline_ms) {
            self->dropped_late++;
            trace_span_set_error(span, "deadline passed; dropped unanswered");
            log_write(LOG_LEVEL_DEBUG, req->header.request_id, "deadline passed; dropped");
        } else if (!self->popular_loaded && !s_any_model(self)) {
            //  Nothing loaded yet (PostgreSQL down since start): an empty
            //  "model" answer would be wrong; the gateway falls back instead.
            reply = proto_msg_new(PROTO_RESULT, req->header.request_id);
            if (reply) {
                reply->body.result.code = 503;
                snprintf(reply->body.result.message, sizeof reply->body.result.message,
                         "no model or popularity list loaded yet");
            }
        } else {
            reply = s_recommend(self, req, span, parent);
            self->answered += reply != NULL;
        }
        if (reply && reply->header.type == PROTO_RESULT && span)
            trace_span_set_error(span, reply->body.result.message);
        if (reply && proto_send(self->frontend, identity, reply) != 0)
            log_write(LOG_LEVEL_DEBUG, req->header.request_id, "reply undeliverable: %s",
                      zmq_strerror(errno));
        //  The event continues this request's trace (publisher_trace.h).
        char traceparent[TRACE_TRACEPARENT_LEN + 1];
        trace_traceparent(span, parent, traceparent);
        trace_span_end(&span);
        //  Every list computed here is fresh (cache hits never reach the
        //  ranker). After the reply, so it adds nothing to its latency; a
        //  full queue or no publisher drops it (counted), never blocks.
        if (reply && reply->header.type == PROTO_RECS_REP && self->events)
            event_sender_recommendations_refreshed(
                self->events, reply->body.recs_rep.user_id, reply->body.recs_rep.items,
                reply->body.recs_rep.count, reply->body.recs_rep.model_id, proto_now_ms(),
                traceparent);
        proto_msg_destroy(&reply);
        proto_msg_destroy(&req);
        zframe_destroy(&identity);
    }
}

//  Bundles the loader opened: swapped in between two requests. The one
//  pushed out of "previous" is destroyed by the install, which is safe
//  because nothing outside this thread ever points at a bundle.
static void s_handle_models(self_t *self)
{
    ranker_load_result_t *result;
    while ((result = ranker_loader_take(self->loader))) {
        if (result->kind == RANKER_LOAD_POPULAR) {
            popular_list_destroy(&self->popular);
            self->popular = result->popular;
            result->popular = NULL;
            self->popular_loaded = true;
        } else if (result->kind == RANKER_LOAD_SEGMENTS) {
            segment_popularity_destroy(&self->segments);
            self->segments = result->segments;
            result->segments = NULL;
        } else if (result->kind == RANKER_LOAD_RETIRED) {
            zhashx_destroy(&self->retired);
            self->retired = result->retired;
            result->retired = NULL;
        } else if (result->kind == RANKER_LOAD_PINNED) {
            self->loads[result->bundle ? 0 : 1]++;
            if (result->bundle) {
                int rc = ranker_models_pin(self->models, result->model_type, result->model_id,
                                           result->version, &result->bundle);
                if (rc > 0)
                    log_info("serving pinned %s model %s v%d to the variants that name it",
                             result->model_type, result->model_id, result->version);
                else if (rc < 0)
                    log_warn("pinned %s model %s not served: %d models pinned already",
                             result->model_type, result->model_id, RANKER_MODELS_PINNED_MAX);
            }
        } else if (result->kind == RANKER_LOAD_PINS) {
            const char *ids[RANKER_LOADER_PINNED_MAX];
            for (int i = 0; i < result->n_pins; i++)
                ids[i] = result->pins[i];
            int dropped = ranker_models_unpin_others(self->models, ids, result->n_pins);
            if (dropped > 0)
                log_info("%d pinned model(s) dropped: no running experiment names them", dropped);
        } else if (result->bundle) {
            self->loads[0]++;
            int changed = ranker_models_install(self->models, result->model_type, result->model_id,
                                                result->version, &result->bundle);
            if (changed > 0)
                log_info("serving %s model %s v%d", result->model_type, result->model_id,
                         result->version);
        } else
            self->loads[1]++; //  logged by the loader, once per model
        ranker_load_result_destroy(&result);
    }
}

//  Starts the configuration watcher and waits (heartbeating) up to
//  RANKER_CONFIG_WAIT_MS for its first load, so that a restarted ranker
//  starts on the stored version; then applies what it has. Without a
//  watcher (out of resources) the environment's defaults stay in force.
static void s_start_config(self_t *self)
{
    char why_not[256];
    serving_config_t defaults;
    serving_config_from_config(self->cfg, &defaults);
    self->config = defaults;
    self->config_version = -1;
    serving_config_watch_options_t wo = {
        .dsn = self->cfg->pg_dsn, .app = "ranker-config", .defaults = &defaults};
    self->watch = serving_config_watch_new(&wo, why_not, sizeof why_not);
    if (!self->watch)
        log_error("serving configuration changes will not reach this ranker: %s", why_not);
    int64_t until = zclock_mono() + RANKER_CONFIG_WAIT_MS;
    bool loaded = false;
    while (self->watch && !loaded && zclock_mono() < until) {
        loaded = serving_config_watch_wait(self->watch, 0, 100) == 0;
        actor_link_tick(self->link);
    }
    if (self->watch && !loaded)
        log_warn("stored serving configuration not loaded yet; starting on the defaults");
    s_apply_config(self);
}

static int s_setup(self_t *self)
{
    //  One ranker process scores one request at a time; OpenBLAS threads
    //  per process would only fight the other rankers for the cores.
    openblas_set_num_threads(1);
    self->popular = popular_list_new(NULL, 0);
    self->models = ranker_models_new();
    self->serve = ranker_serve_new();
    self->retired = zhashx_new();
    if (!self->popular || !self->models || !self->serve || !self->retired)
        return -1;
    self->link = actor_link_new(self->cfg, self->instance);
    if (!self->link)
        return -1;
    //  After actor_link: the export thread inherits its blocked signals.
    char why_not[512];
    self->tracer = tracer_new(self->instance, why_not, sizeof why_not);
    if (!self->tracer) {
        log_error("tracing: %s", why_not);
        return -1;
    }
    if (tracer_enabled(self->tracer))
        log_info("tracing on: OTLP/HTTP JSON export (OTEL_* variables)");
    //  The stored serving configuration before the histories, which are
    //  built with its seen_completion and event weights.
    s_start_config(self);
    training_data_options_t opts;
    s_history_options(self, &self->config, &opts);
    self->history_config = self->config;
    self->seen = seen_set_new(self->config.seen_completion);
    self->history =
        ranker_history_new(&opts, self->config.seen_completion, RANKER_HISTORY_MAX_EVENTS);
    if (!self->seen || !self->history)
        return -1;
    char endpoint[160];
    //  One endpoint per instance; the gateway connects to all of them.
    if (config_endpoint(self->cfg, self->instance, endpoint, sizeof endpoint) != 0)
        return -1;
    self->frontend = zsock_new(ZMQ_ROUTER);
    if (!self->frontend)
        return -1;
    zsock_set_router_mandatory(self->frontend, 1);
    zsock_set_maxmsgsize(self->frontend, PROTO_MAX_MESSAGE);
    zsock_set_linger(self->frontend, 0);
    zsock_set_rcvhwm(self->frontend, 10000);
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    //  Notices from every event-ingestor this pod runs (none in a worker
    //  pod). SUB connects: the ingestors bind, and come and go by restart.
    //  Optional: without a publisher the events are dropped and counted.
    char why[256];
    self->events = event_sender_new(self->cfg, why, sizeof why);
    if (!self->events)
        log_warn("RecommendationsRefreshed events off: %s", why);
    self->notices = zsock_new(ZMQ_SUB);
    if (!self->notices)
        return -1;
    zsock_set_subscribe(self->notices, "");
    zsock_set_maxmsgsize(self->notices, PROTO_MAX_MESSAGE);
    zsock_set_rcvhwm(self->notices, 100000);
    char ingestors[(CONFIG_PATH_MAX + 16) * CONFIG_MAX_INSTANCES];
    if (config_endpoints(self->cfg, "event-ingestor", ingestors, sizeof ingestors) == 0 &&
        zsock_attach(self->notices, ingestors, false) != 0) {
        log_error("cannot connect to the ingestors at %s", ingestors);
        return -1;
    }
    //  Models load in the background from the start; until the first one
    //  is in, the popularity list answers. The lists are loaded here once
    //  (before ready), then refreshed by the loader.
    char err[512];
    ranker_loader_options_t lo = {.cfg = self->cfg,
                                  .instance = self->instance,
                                  .check_interval_ms = RANKER_MODEL_CHECK_MS,
                                  .types = ranker_models_types,
                                  .n_types = RANKER_MODELS_TYPES,
                                  .popular_refresh_ms = self->cfg->popular_refresh_ms,
                                  .popular_max = RANKER_POPULAR_MAX,
                                  .segments_refresh_ms = self->cfg->popular_refresh_ms,
                                  .segments_max = RANKER_POPULAR_MAX,
                                  .retired_refresh_ms = RANKER_RETIRED_REFRESH_MS};
    self->loader = ranker_loader_new(&lo, err, sizeof err);
    if (!self->loader)
        log_error("no trained models will be served: %s", err);
    s_refresh_popular(self);
    s_refresh_retired(self);
    s_load_history(self);
    self->bind_deadline = zclock_mono() + RANKER_BIND_WAIT_MS;
    return 0;
}

//  The frontend is bound only once the histories are loaded and the
//  loader has been through the registry once (every active model loaded
//  or refused), or RANKER_BIND_WAIT_MS after start, whichever is first:
//  until then the gateways, whose sockets only send to bound peers
//  (ZMQ_IMMEDIATE), ask the other rankers, or answer from their own
//  fallback, instead of queueing requests here that would come back
//  after their deadline, or answered by a model-free step.
static int s_bind_when_ready(self_t *self)
{
    if (self->bound)
        return 0;
    bool loaded = self->loader && ranker_loader_checked(self->loader) && self->history_loaded;
    if (!loaded && zclock_mono() < self->bind_deadline)
        return 0;
    if (self->loader)
        s_handle_models(self); //  what the first check loaded
    if (zsock_bind(self->frontend, "%s", self->endpoint) != 0) {
        log_error("cannot bind %s: %s", self->endpoint, zmq_strerror(errno));
        return -1;
    }
    self->bound = true;
    log_info("serving requests on %s%s", self->endpoint,
             loaded ? "" : " (models or histories still loading)");
    return 0;
}

int ranker_main(const config_t *cfg, const char *instance)
{
    self_t self = {.cfg = cfg, .instance = instance};
    int rc = 1;
    //  A bad OTEL_* variable is a configuration error, refused before
    //  anything starts.
    char err[512];
    if (tracer_check_env(err, sizeof err) != 0) {
        log_error("tracing configuration: %s", err);
        return RECSD_EXIT_CONFIG;
    }
    if (s_setup(&self) != 0)
        goto done;
    actor_link_set_ready(self.link);
    log_info("ranker ready: %zu popular items", popular_list_size(self.popular));
    while (!actor_link_stopping(self.link)) {
        zmq_pollitem_t items[] = {
            {zsock_resolve(actor_link_socket(self.link)), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self.frontend), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self.notices), 0, ZMQ_POLLIN, 0},
            {self.loader ? zsock_resolve(ranker_loader_socket(self.loader)) : NULL, 0, ZMQ_POLLIN,
             0},
        };
        if (zmq_poll(items, self.loader ? 4 : 3, actor_link_timeout_ms(self.link)) < 0 &&
            errno != EINTR) {
            log_error("poll failed: %s", zmq_strerror(errno));
            goto done;
        }
        if (items[0].revents & ZMQ_POLLIN)
            actor_link_handle(self.link);
        //  New models and notices first: a request right after an
        //  activation or an event must see it.
        if (self.loader && (items[3].revents & ZMQ_POLLIN))
            s_handle_models(&self);
        if (items[2].revents & ZMQ_POLLIN)
            s_handle_notice(&self);
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_request(&self);
        //  Without a loader (artifact store unusable) the lists are
        //  refreshed here, as before models existed.
        if (zclock_mono() >= self.next_refresh) {
            if (!self.loader)
                s_refresh_popular(&self);
            else
                self.next_refresh = zclock_mono() + self.cfg->popular_refresh_ms;
            if (!self.history_loaded && (self.pg || s_connected(&self, "histories not loaded")))
                s_load_history(&self);
        }
        if (!self.loader && zclock_mono() >= self.next_retired)
            s_refresh_retired(&self);
        //  A new serving configuration (a lock-free read when none came).
        s_apply_config(&self);
        if (self.reload_history && zclock_mono() >= self.next_history_reload &&
            (self.pg || s_connected(&self, "histories not reloaded")))
            s_load_history(&self);
        if (s_bind_when_ready(&self) != 0)
            goto done;
        s_update_metrics(&self);
        actor_link_tick(self.link);
    }
    rc = 0;
    log_info("ranker stopping (%llu late requests dropped)", (unsigned long long)self.dropped_late);
done:
    //  The loader first: it joins its thread and frees bundles in flight.
    ranker_loader_destroy(&self.loader);
    serving_config_watch_destroy(&self.watch);
    zsock_destroy(&self.frontend);
    zsock_destroy(&self.notices);
    event_sender_destroy(&self.events);
    seen_set_destroy(&self.seen);
    ranker_history_destroy(&self.history);
    ranker_models_destroy(&self.models);
    ranker_serve_destroy(&self.serve);
    zhashx_destroy(&self.retired);
    actor_link_destroy(&self.link);
    popular_list_destroy(&self.popular);
    segment_popularity_destroy(&self.segments);
    cooccurrence_destroy(&self.cooc);
    tracer_destroy(&self.tracer); //  every span has ended; flushes what is queued
    if (self.pg)
        PQfinish(self.pg);
    return rc;
}
