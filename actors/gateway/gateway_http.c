/*  gateway_http.c: libmicrohttpd daemon, routing and handlers (see gateway_http.h). */
#include "gateway_http.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway_cors.h"
#include "gateway_docs.h"
#include "gateway_models.h"
#include "gateway_problem.h"
#include "gateway_recs.h"
#include "gateway_route.h"
#include "log.h"

//  Idle keep-alive connections (and stalled clients) are closed after this.
#define CONNECTION_TIMEOUT_S 30
#define LISTEN_BACKLOG 1024
//  Ranker failure warnings: at most one per this interval.
#define RANKER_WARN_INTERVAL_MS 1000

#define JSON_CONTENT_TYPE "application/json"

struct gateway_http_t {
    gateway_http_deps_t deps;
    tracer_t *tracer;               //  borrowed; NULL or off: no spans
    gateway_cors_t *cors;           //  browser origins allowed (none by default)
    _Atomic int64_t config_version; //  serving configuration whose cache TTLs are applied
    char *tls_cert;                 //  PEM, for the daemon's lifetime; NULL: plain HTTP
    char *tls_key;
    struct MHD_Daemon *daemon;
    int listen_fd; //  ours until the daemon starts, then the daemon's
    int port;
    bool quiesced;
};

static const char *s_types[4] = {"hybrid", "collaborative", "content", "popularity"};

static int s_type_index(const char *type)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(type, s_types[i]) == 0)
            return i;
    return 0; //  "" is the default, hybrid
}

//  One answer being put together by a handler.
typedef struct {
    int status;
    const char *content_type;
    char *body; //  malloc'd, or NULL if static_body is used
    const char *static_body;
    size_t len;
    const char *allow;   //  Allow header for 405, else NULL
    char location[96];   //  Location header, "" if none
    char extra_name[32]; //  one more header, "" if none
    char extra_value[256];
    char limit_headers[160]; //  "RateLimit-*" values, "" if none: see s_rate_limit
    char retry_after[24];    //  Retry-After seconds, "" if none
    char cors_origin[256];   //  an allowed Origin to echo, "" if none
    char traceparent[TRACE_TRACEPARENT_LEN + 1]; //  sent as traceparent, "" if none
    const char *cors_methods; //  a preflight's answer: the route's methods, else NULL
} reply_t;

static const char s_health_body[] = "{\"status\":\"ok\"}";
//  Used when building the real answer failed (no memory): fixed bytes.
static const char s_oom_body[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                                 "\"status\":500,\"detail\":\"out of memory\"}";

static uint64_t s_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void s_reply_static(reply_t *reply, int status, const char *type, const char *body,
                           size_t len)
{
    reply->status = status;
    reply->content_type = type;
    reply->static_body = body;
    reply->len = len;
}

//  Takes ownership of body; a NULL body (allocation failed) becomes a 500.
static void s_reply_owned(reply_t *reply, int status, const char *type, char *body, size_t len)
{
    if (!body) {
        s_reply_static(reply, 500, GATEWAY_PROBLEM_CONTENT_TYPE, s_oom_body, sizeof s_oom_body - 1);
        return;
    }
    reply->status = status;
    reply->content_type = type;
    reply->body = body;
    reply->len = len;
}

static void s_problem(reply_t *reply, int status, const char *detail, const char *url,
                      const char *param)
{
    size_t len = 0;
    char *body = gateway_problem_body(status, detail, url, param, &len);
    s_reply_owned(reply, status, GATEWAY_PROBLEM_CONTENT_TYPE, body, len);
}

//  Fills items from the gateway's own popularity copy, skipping what the
//  client excluded, and renders: type "popularity", no model, no reasons
//  (the copy knows nothing of the user) even when they were asked for.
static char *s_render_fallback(gateway_http_t *self, const proto_recs_req_t *query,
                               const char *request_id, const gateway_assignment_t *ab, size_t *len)
{
    gateway_recs_item_t items[GATEWAY_LIMIT_MAX];
    size_t count = 0;
    gateway_popular_t *ref = gateway_state_popular(self->deps.state);
    const popular_list_t *list = gateway_popular_list(ref);
    size_t size = list ? popular_list_size(list) : 0;
    for (size_t i = 0; i < size && count < query->limit && count < GATEWAY_LIMIT_MAX; i++) {
        const popular_item_t *item = popular_list_item(list, i);
        if (!gateway_recs_excluded(query, item->video_id))
            items[count++] = (gateway_recs_item_t){item->video_id, item->score, NULL};
    }
    gateway_recs_meta_t meta = {.source = "fallback",
                                .type = "popularity",
                                .explain = query->explain,
                                .generated_at_ms = proto_now_ms(),
                                .request_id = request_id,
                                .experiment_id = ab ? ab->experiment_id : NULL,
                                .variant = ab ? ab->variant : NULL};
    //  Render while holding the reference: items point into the list.
    char *body = gateway_recs_render_meta(query->user_id, items, count, &meta, len);
    gateway_popular_release(&ref);
    return body;
}

//  Reads limit, type, exclude and explain into query; on a bad one, a 400
//  naming the parameter. Returns 0, or -1 with the reply set.
static int s_recs_params(struct MHD_Connection *conn, const char *url, proto_recs_req_t *query,
                         reply_t *reply)
{
    char why[160];
    int limit;
    const char *text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    if (gateway_route_limit_parse(text, &limit, why, sizeof why) != 0) {
        s_problem(reply, 400, why, url, "limit");
        return -1;
    }
    query->limit = (uint32_t)limit;
    text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "type");
    if (gateway_recs_type_parse(text, query->type, sizeof query->type, why, sizeof why) != 0) {
        s_problem(reply, 400, why, url, "type");
        return -1;
    }
    text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "exclude");
    if (gateway_recs_exclude_parse(text, query, why, sizeof why) != 0) {
        s_problem(reply, 400, why, url, "exclude");
        return -1;
    }
    text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "explain");
    if (gateway_recs_explain_parse(text, &query->explain, why, sizeof why) != 0) {
        s_problem(reply, 400, why, url, "explain");
        return -1;
    }
    return 0;
}

//  A cached answer for user/variant, stamped for this request: source
//  "cache", this request's id, and this user (a segment's list is shared
//  by its users). The cache holds shared parts (gateway_recs.h), so this
//  is two copies, not a JSON parse and re-serialisation. Returns a body
//  the caller owns, or NULL on a miss (or a value that is not a shared
//  part, e.g. a whole body an older gateway cached: treated as a miss).
static char *s_cache_hit(gateway_http_t *self, const char *user_id, const char *variant,
                         const char *request_id, trace_span_t *span)
{
    size_t len = 0;
    gateway_cache_level_t level;
    char *cached =
        gateway_cache_get_user_traced(self->deps.cache, user_id, variant, &len, &level, span);
    if (!cached)
        return NULL;
    char *body =
        gateway_recs_stamp(cached, len, user_id, "cache", request_id ? request_id : "", NULL);
    if (body && span) { //  traced: worth a parse for the span's attributes
        json_t *doc = json_loadb(cached, len, 0, NULL);
        trace_span_set_str(span, "recsd.cache.level", level == GATEWAY_CACHE_L1 ? "lru" : "redis");
        trace_span_set_str(span, "recsd.model_id",
                           json_string_value(json_object_get(doc, "model_id")));
        trace_span_set_str(span, "recsd.type", json_string_value(json_object_get(doc, "type")));
        trace_span_set_int(span, "recsd.items",
                           (int64_t)json_array_size(json_object_get(doc, "items")));
        json_decref(doc);
    }
    free(cached);
    return body;
}

//  The serving configuration in force: the default type and limit, and
//  the largest limit. Returns 0, or -1 with a 400 in reply.
static int s_apply_serving(gateway_http_t *self, struct MHD_Connection *conn, const char *url,
                           proto_recs_req_t *q, reply_t *reply)
{
    if (!self->deps.serving)
        return 0;
    serving_config_t sc;
    int64_t version = gateway_config_current(self->deps.serving, &sc);
    //  A new version's cache lifetimes, applied by whichever request sees
    //  it first.
    int64_t seen = atomic_load(&self->config_version);
    if (version != seen && self->deps.cache &&
        atomic_compare_exchange_strong(&self->config_version, &seen, version))
        gateway_cache_set_ttls(self->deps.cache, sc.cache_ttl_s, sc.cache_l1_ttl_ms);
    if (!MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit"))
        q->limit = (uint32_t)sc.limit_default;
    else if (q->limit > (uint32_t)sc.limit_max) {
        char why[96];
        snprintf(why, sizeof why, "limit must be an integer between 1 and %d", sc.limit_max);
        s_problem(reply, 400, why, url, "limit");
        return -1;
    }
    if (!q->type[0])
        snprintf(q->type, sizeof q->type, "%s", serving_type_name(sc.default_type));
    return 0;
}

//  What the variant serves: its model type (unless the client named one),
//  its pinned model, its hybrid blend (the configured one for the values
//  it leaves out).
static void s_apply_variant(gateway_http_t *self, struct MHD_Connection *conn,
                            const gateway_assignment_t *ab, proto_recs_req_t *q)
{
    if (ab->model_type[0] && proto_recs_type_valid(ab->model_type) &&
        !MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "type"))
        snprintf(q->type, sizeof q->type, "%s", ab->model_type);
    if (ab->model_id[0])
        snprintf(q->model_id, sizeof q->model_id, "%s", ab->model_id);
    const experiment_params_t *p = &ab->params;
    if (!p->has_content_k && !p->has_content_floor && !p->has_ease_share)
        return;
    serving_config_t sc;
    if (self->deps.serving)
        gateway_config_current(self->deps.serving, &sc);
    else
        serving_config_from_config(self->deps.cfg, &sc);
    q->has_blend = true;
    q->blend[0] = p->has_content_k ? p->content_k : sc.content_k;
    q->blend[1] = p->has_content_floor ? p->content_floor : sc.content_floor;
    q->blend[2] = p->has_ease_share ? p->ease_share : sc.ease_share;
}

//  Records the list in body (a rendered answer) as an exposure of ab.
static void s_expose(gateway_http_t *self, const gateway_assignment_t *ab, const char *user_id,
                     const char *body, size_t len, const char *request_id)
{
    if (!self->deps.experiments || !ab->live)
        return;
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *items = json_object_get(doc, "items");
    const char *ids[GATEWAY_LIMIT_MAX];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(items) && n < GATEWAY_LIMIT_MAX; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(items, i), "video_id"));
        if (id)
            ids[n++] = id;
    }
    gateway_experiments_expose(self->deps.experiments, ab, user_id, ids, n, request_id);
    json_decref(doc);
}

static void s_handle_recs(gateway_http_t *self, struct MHD_Connection *conn, const char *url,
                          const char *user_id, const char *request_id, trace_span_t *span,
                          const trace_ctx_t *incoming, reply_t *reply)
{
    char why[160];
    if (gateway_route_user_id_check(user_id, why, sizeof why) != 0) {
        s_problem(reply, 400, why, url, "userId");
        return;
    }
    //  The query is ~7 KB with its exclude list: on the heap, not on an
    //  HTTP thread's stack.
    proto_msg_t *query = proto_msg_new(PROTO_RECS_REQ, request_id);
    if (!query) {
        s_reply_owned(reply, 500, JSON_CONTENT_TYPE, NULL, 0);
        return;
    }
    proto_recs_req_t *q = &query->body.recs_req;
    snprintf(q->user_id, sizeof q->user_id, "%s", user_id);
    if (s_recs_params(conn, url, q, reply) != 0 ||
        s_apply_serving(self, conn, url, q, reply) != 0) {
        proto_msg_destroy(&query);
        return;
    }
    //  An experiment: the one named, or the default layer's live one.
    gateway_assignment_t ab_store, *ab = NULL;
    const char *experiment_id =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "experiment_id");
    int assigned =
        self->deps.experiments
            ? gateway_experiments_assign(self->deps.experiments, experiment_id, user_id, &ab_store)
        : experiment_id && *experiment_id ? -1
                                          : 0;
    if (assigned < 0) {
        s_problem(reply, 404, "no running or stopped experiment has this id", url, "experiment_id");
        proto_msg_destroy(&query);
        return;
    }
    trace_span_set_str(span, "recsd.user_id", user_id);
    char ab_key[160] = "";
    if (assigned > 0) {
        ab = &ab_store;
        trace_span_set_str(span, "recsd.experiment_id", ab->experiment_id);
        trace_span_set_str(span, "recsd.variant", ab->variant);
        s_apply_variant(self, conn, ab, q);
        snprintf(ab_key, sizeof ab_key, "%.36s/%.64s/%.36s", ab->experiment_id, ab->variant,
                 ab->model_id);
    }

    //  The cache holds rendered answers per user and variant: everything
    //  that changes the list, including the model that computed it. Lists
    //  are looked up under the model the ranker serves for the type, which
    //  is forgotten as soon as the registry's active model changes
    //  (gateway_state.h), so a swap or a rollback is not hidden behind the
    //  cache. A hit is re-stamped as source "cache" with this request's id.
    int type_index = s_type_index(q->type);
    const char *exclude = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "exclude");
    char variant[256] = "", model[PROTO_ID_MAX + 1];
    gateway_state_served_model(self->deps.state, s_types[type_index], model, sizeof model);
    char cache_model[PROTO_ID_MAX * 2 + 168];
    snprintf(cache_model, sizeof cache_model, "%s%s%s", model, ab_key[0] ? "@" : "", ab_key);
    if (self->deps.cache && model[0] &&
        gateway_cache_variant(variant, sizeof variant, s_types[type_index], (int)q->limit,
                              q->explain, exclude, cache_model) == 0) {
        char *hit = s_cache_hit(self, user_id, variant, request_id, span);
        if (hit) {
            trace_span_set_str(span, "recsd.source", "cache");
            gateway_metrics_count_source(self->deps.metrics, "cache");
            if (ab)
                s_expose(self, ab, user_id, hit, strlen(hit), request_id);
            proto_msg_destroy(&query);
            s_reply_owned(reply, 200, JSON_CONTENT_TYPE, hit, strlen(hit));
            return;
        }
    }

    trace_span_set_str(span, "recsd.cache.level", "none");
    proto_msg_t *answer = NULL;
    char detail[320];
    //  The ranker's spans join this trace through the envelope: the
    //  client span's context, or the caller's when this one is not traced.
    trace_span_t *call = trace_span_child(span, "recsd.Ranker/Recommend", TRACE_KIND_CLIENT);
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_traceparent(call, incoming, traceparent);
    if (call) {
        trace_span_set_str(call, "rpc.system", "zeromq");
        trace_span_set_str(call, "rpc.service", "ranker");
        trace_span_set_str(call, "rpc.method", "Recommend");
        trace_span_set_int(call, "recsd.limit", q->limit);
        trace_span_set_str(call, "recsd.type", q->type);
    }
    gateway_ranker_outcome_t outcome = gateway_ranker_query_traced(
        self->deps.ranker, request_id, traceparent, q, self->deps.cfg->ranker_deadline_ms, &answer,
        detail, sizeof detail);
    if (call) {
        trace_span_set_str(call, "recsd.ranker.outcome", gateway_ranker_outcome_name(outcome));
        if (outcome != GATEWAY_RANKER_OK)
            trace_span_set_error(call, detail);
        trace_span_end(&call);
    }
    gateway_metrics_count_ranker(self->deps.metrics, outcome);

    char *body = NULL;
    size_t len = 0;
    const char *source = "fallback";
    if (outcome == GATEWAY_RANKER_OK) {
        const proto_recs_rep_t *rep = &answer->body.recs_rep;
        gateway_recs_item_t items[GATEWAY_LIMIT_MAX];
        size_t count = 0;
        //  The ranker already left the excluded ids out; checking again
        //  keeps the promise with an older ranker that ignores exclude.
        for (uint32_t i = 0; i < rep->count && count < q->limit && count < GATEWAY_LIMIT_MAX; i++)
            if (!gateway_recs_excluded(q, rep->items[i].video_id))
                items[count++] = (gateway_recs_item_t){rep->items[i].video_id, rep->items[i].score,
                                                       rep->items[i].reason};
        source = rep->source;
        gateway_recs_meta_t meta = {.source = rep->source,
                                    .model_id = rep->model_id,
                                    .type = rep->type,
                                    .model_version = rep->model_version,
                                    .explain = q->explain,
                                    .generated_at_ms = proto_now_ms(),
                                    .request_id = request_id,
                                    .experiment_id = ab ? ab->experiment_id : NULL,
                                    .variant = ab ? ab->variant : NULL};
        //  The list's shared part is what the cache keeps; this answer is
        //  it stamped with the request's head.
        size_t shared_len = 0;
        char *shared = gateway_recs_render_shared(items, count, &meta, &shared_len);
        body = shared
                   ? gateway_recs_stamp(shared, shared_len, user_id, meta.source, request_id, &len)
                   : NULL;
        //  Only a model's list is kept: a fallback must not outlive the
        //  reason for it. The variant names the model the requested type
        //  is served by, which must be the registry's active one.
        //  A list of the type asked for is the user's own. A list the
        //  ranker says is its segment's (nothing personal filtered out: a
        //  user without history, a light user's genre) is stored once for
        //  the segment (segment TTL) with a reference for this user, even
        //  when another type served it: a cold user's hybrid request is
        //  answered by popularity, and is the same for every cold user
        //  while the hybrid model stays.
        bool own = strcmp(rep->type, s_types[type_index]) == 0;
        const char *variant_model = own && rep->model_id[0] ? rep->model_id : model;
        char variant_key[sizeof cache_model];
        snprintf(variant_key, sizeof variant_key, "%s%s%s", variant_model, ab_key[0] ? "@" : "",
                 ab_key);
        if (body && self->deps.cache && strcmp(rep->source, "model") == 0 &&
            (own || rep->segment[0]) && variant_model[0] &&
            gateway_state_confirm_served_model(self->deps.state, s_types[type_index],
                                               variant_model) &&
            gateway_cache_variant(variant, sizeof variant, s_types[type_index], (int)q->limit,
                                  q->explain, exclude, variant_key) == 0) {
            if (rep->segment[0])
                gateway_cache_set_user_segment(self->deps.cache, user_id, variant, rep->segment,
                                               shared, shared_len);
            else
                gateway_cache_set_user(self->deps.cache, user_id, variant, shared, shared_len);
        }
        free(shared);
    } else {
        uint64_t suppressed = 0;
        if (gateway_ranker_warn_due(self->deps.ranker, RANKER_WARN_INTERVAL_MS, &suppressed))
            log_write(LOG_LEVEL_WARN, request_id,
                      "ranker call %s (%s), serving fallback; %llu similar warnings suppressed",
                      gateway_ranker_outcome_name(outcome), detail, (unsigned long long)suppressed);
        body = s_render_fallback(self, q, request_id, ab, &len);
    }
    if (ab && body)
        s_expose(self, ab, user_id, body, len, request_id);
    if (span) {
        trace_span_set_str(span, "recsd.source", source);
        if (outcome == GATEWAY_RANKER_OK) {
            trace_span_set_str(span, "recsd.model_id", answer->body.recs_rep.model_id);
            trace_span_set_str(span, "recsd.type", answer->body.recs_rep.type);
            trace_span_set_int(span, "recsd.items", answer->body.recs_rep.count);
        } else {
            trace_span_set_str(span, "recsd.type", "popularity");
            trace_span_set_str(span, "recsd.fallback.reason", gateway_ranker_outcome_name(outcome));
        }
    }
    gateway_metrics_count_source(self->deps.metrics, source);
    proto_msg_destroy(&answer);
    proto_msg_destroy(&query);
    s_reply_owned(reply, 200, JSON_CONTENT_TYPE, body, len);
}

//  Per request, from the first access-handler call to the completion
//  notice: its presence is what the in-flight count counts.
typedef struct {
    uint64_t start_us;
    bool answered;
    bool collect;   //  a command route: the body is read into `body`
    bool too_large; //  ...and it was larger than GATEWAY_API_BODY_MAX
    size_t body_len;
    char *body;                            //  GATEWAY_API_BODY_MAX bytes, allocated only to collect
    char principal[AUTH_SUBJECT_MAX + 16]; //  who asks, "" if anonymous
    trace_span_t *span;                    //  the SERVER span while answering; NULL: untraced
    trace_ctx_t parent;                    //  the caller's traceparent, if parent_p
    const trace_ctx_t *parent_p;           //  &parent, or NULL: none or malformed
} request_t;

//  The client's address in numeric form ("" if unknown), for the
//  "anonymous@<address>" the model API records until JWT exists.
static void s_client(struct MHD_Connection *conn, char *out, size_t len)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr)
        return;
    socklen_t addrlen = info->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                 : sizeof(struct sockaddr_in);
    if (getnameinfo(info->client_addr, addrlen, out, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
        out[0] = '\0';
}

//  /openapi.json, /docs, /redoc and their assets, from RECSD_DOCS_DIR.
static void s_handle_docs(gateway_http_t *self, const char *url, reply_t *reply)
{
    char *body = NULL;
    size_t len = 0;
    const char *type = NULL;
    int status = gateway_docs_read(self->deps.cfg->docs_dir, url, &body, &len, &type);
    if (status == 200)
        s_reply_owned(reply, 200, type, body, len);
    else
        s_problem(reply, status,
                  status == 404 ? "no such resource" : "the documentation could not be read", url,
                  NULL);
}

//  The API's own routes (training and models, experiments, serving
//  configuration): PostgreSQL through their handlers, never the ranker.
static void s_handle_api(gateway_http_t *self, struct MHD_Connection *conn, const char *url,
                         const char *method, gateway_route_t route, const char *id, size_t id_len,
                         const request_t *req, const char *request_id, reply_t *reply)
{
    char client[64];
    s_client(conn, client, sizeof client);
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_traceparent(req->span, req->parent_p, traceparent);
    gateway_api_request_t in = {
        .route = route,
        .method = method,
        .id = id,
        .id_len = id_len,
        .body = req->body,
        .body_len = req->body_len,
        .body_too_large = req->too_large,
        .client = client,
        .principal = req->principal,
        .limit = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit"),
        .model_type = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "model_type"),
        .status = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "status"),
        .before = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "before"),
        .url = url,
        .request_id = request_id,
        .traceparent = traceparent};
    gateway_api_reply_t out;
    switch (route) {
    case GATEWAY_ROUTE_EXPERIMENTS:
    case GATEWAY_ROUTE_EXPERIMENT:
        gateway_experiments_handle(self->deps.experiments, &in, &out);
        break;
    case GATEWAY_ROUTE_CONFIG:
    case GATEWAY_ROUTE_CONFIG_VERSIONS:
    case GATEWAY_ROUTE_CONFIG_ROLLBACK:
        gateway_config_handle(self->deps.serving, &in,
                              MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Change-Note"),
                              &out);
        break;
    default:
        gateway_models_handle(gateway_state_models(self->deps.state), &in, &out);
        break;
    }
    s_reply_owned(reply, out.status, out.content_type, out.body, out.len);
    memcpy(reply->location, out.location, sizeof reply->location);
    memcpy(reply->extra_name, out.extra_name, sizeof reply->extra_name);
    snprintf(reply->extra_value, sizeof reply->extra_value, "%s", out.extra_value);
}

static void s_route(gateway_http_t *self, struct MHD_Connection *conn, const char *url,
                    const char *method, gateway_route_t route, const char *tail, size_t tail_len,
                    const request_t *req, const char *request_id, reply_t *reply)
{
    if (route == GATEWAY_ROUTE_OTHER) {
        s_problem(reply, 404, "no such resource", url, NULL);
        return;
    }
    if (!gateway_route_method_allowed(route, method)) {
        char detail[96];
        snprintf(detail, sizeof detail, "%s allows only %s", gateway_route_template(route),
                 gateway_route_allow(route));
        s_problem(reply, 405, detail, url, NULL);
        reply->allow = gateway_route_allow(route);
        return;
    }
    switch (route) {
    case GATEWAY_ROUTE_HEALTH:
        s_reply_static(reply, 200, JSON_CONTENT_TYPE, s_health_body, sizeof s_health_body - 1);
        break;
    case GATEWAY_ROUTE_READY: {
        int status = 503;
        size_t len = 0;
        char *body = gateway_state_ready(self->deps.state, &status, &len);
        s_reply_owned(reply, status, JSON_CONTENT_TYPE, body, len);
        break;
    }
    case GATEWAY_ROUTE_METRICS: {
        size_t len = 0;
        char *body = gateway_state_render_metrics(self->deps.state, self->deps.metrics,
                                                  self->deps.cache, &len);
        if (body && (self->deps.experiments || self->deps.limiter)) {
            //  The experiments' and the rate limiter's series after the rest.
            char *all = NULL;
            size_t all_len = 0;
            FILE *out = open_memstream(&all, &all_len);
            bool ok =
                out && fwrite(body, 1, len, out) == len &&
                (!self->deps.experiments ||
                 gateway_experiments_metrics_write(self->deps.experiments, out) == 0) &&
                (!self->deps.limiter || rate_limiter_metrics_write(self->deps.limiter, out) == 0);
            if (out && fclose(out) == 0 && ok) {
                free(body);
                body = all;
                len = all_len;
            } else
                free(all);
        }
        s_reply_owned(reply, 200, GATEWAY_METRICS_CONTENT_TYPE, body, len);
        break;
    }
    case GATEWAY_ROUTE_RECS:
        s_handle_recs(self, conn, url, tail, request_id, req->span, req->parent_p, reply);
        break;
    case GATEWAY_ROUTE_TRAIN:
    case GATEWAY_ROUTE_MODELS:
    case GATEWAY_ROUTE_MODEL:
    case GATEWAY_ROUTE_ACTIVATE:
    case GATEWAY_ROUTE_EXPERIMENTS:
    case GATEWAY_ROUTE_EXPERIMENT:
    case GATEWAY_ROUTE_CONFIG:
    case GATEWAY_ROUTE_CONFIG_VERSIONS:
    case GATEWAY_ROUTE_CONFIG_ROLLBACK:
        s_handle_api(self, conn, url, method, route, tail, tail_len, req, request_id, reply);
        break;
    case GATEWAY_ROUTE_OPENAPI:
    case GATEWAY_ROUTE_DOCS:
        s_handle_docs(self, url, reply);
        break;
    default:
        s_problem(reply, 404, "no such resource", url, NULL);
        break;
    }
}

//  The CORS headers for an allowed origin (gateway_cors.h). Returns 0 or -1.
static int s_add_cors_headers(struct MHD_Response *response, const reply_t *reply)
{
    bool ok = MHD_add_response_header(response, "Access-Control-Allow-Origin",
                                      reply->cors_origin) == MHD_YES &&
              MHD_add_response_header(response, "Vary", "Origin") == MHD_YES;
    if (reply->cors_methods)
        ok = ok &&
             MHD_add_response_header(response, "Access-Control-Allow-Methods",
                                     reply->cors_methods) == MHD_YES &&
             MHD_add_response_header(response, "Access-Control-Allow-Headers",
                                     GATEWAY_CORS_ALLOW_HEADERS) == MHD_YES &&
             MHD_add_response_header(response, "Access-Control-Max-Age", GATEWAY_CORS_MAX_AGE) ==
                 MHD_YES;
    else
        ok = ok && MHD_add_response_header(response, "Access-Control-Expose-Headers",
                                           GATEWAY_CORS_EXPOSE_HEADERS) == MHD_YES;
    return ok ? 0 : -1;
}

//  Adds "RateLimit-Limit", "-Remaining" and "-Reset" from their values
//  "L R S". Returns 0, or -1 if one could not be added.
static int s_add_limit_headers(struct MHD_Response *response, const char *values)
{
    char limit[32], remaining[32], reset[32];
    if (sscanf(values, "%31s %31s %31s", limit, remaining, reset) != 3)
        return 0;
    return MHD_add_response_header(response, "RateLimit-Limit", limit) == MHD_NO ||
                   MHD_add_response_header(response, "RateLimit-Remaining", remaining) == MHD_NO ||
                   MHD_add_response_header(response, "RateLimit-Reset", reset) == MHD_NO
               ? -1
               : 0;
}

//  Per-user request rate, across gateway processes and replicas (Redis
//  GCRA, a local table when Redis is down). The user: the authenticated
//  principal, else the {userId} of a recommendations request, else the
//  client address. Returns true if the request may go on; else reply is
//  a 429 with Retry-After. Either way the RateLimit headers are set.
static bool s_rate_limit(gateway_http_t *self, struct MHD_Connection *conn, gateway_route_t route,
                         const char *tail, const gateway_auth_result_t *access, const char *url,
                         reply_t *reply)
{
    if (!self->deps.limiter || gateway_route_roles(route, NULL) == GATEWAY_ROUTE_PUBLIC)
        return true;
    char who[AUTH_SUBJECT_MAX + 72];
    if (access->authenticated)
        snprintf(who, sizeof who, "p:%s", access->principal.subject);
    else if (route == GATEWAY_ROUTE_RECS && tail)
        snprintf(who, sizeof who, "u:%.64s", tail);
    else {
        char client[64];
        s_client(conn, client, sizeof client);
        snprintf(who, sizeof who, "a:%s", client);
    }
    rate_limiter_result_t r;
    if (rate_limiter_check(self->deps.limiter, who, strlen(who), &r) != 0)
        return true;
    snprintf(reply->limit_headers, sizeof reply->limit_headers, "%d %d %lld", r.limit, r.remaining,
             (long long)((r.reset_after_ms + 999) / 1000));
    if (r.allowed)
        return true;
    char detail[128];
    snprintf(detail, sizeof detail, "too many requests: at most %d per %d s per user",
             self->deps.cfg->rate_limit, self->deps.cfg->rate_limit_period_s);
    char limits[sizeof reply->limit_headers];
    memcpy(limits, reply->limit_headers, sizeof limits);
    s_problem(reply, 429, detail, url, NULL);
    memcpy(reply->limit_headers, limits, sizeof limits);
    snprintf(reply->retry_after, sizeof reply->retry_after, "%lld",
             (long long)((r.retry_after_ms + 999) / 1000));
    return false;
}

//  Sends reply with the common headers. Returns MHD_YES or MHD_NO.
static enum MHD_Result s_send(gateway_http_t *self, struct MHD_Connection *conn, reply_t *reply,
                              const char *request_id)
{
    struct MHD_Response *response;
    if (reply->body) {
        response = MHD_create_response_from_buffer(reply->len, reply->body, MHD_RESPMEM_MUST_FREE);
        if (response)
            reply->body = NULL; //  the response frees it now
    } else
        response = MHD_create_response_from_buffer(reply->len, (void *)reply->static_body,
                                                   MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO; //  libmicrohttpd closes the connection
    enum MHD_Result ok = MHD_YES;
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type) ==
            MHD_NO ||
        MHD_add_response_header(response, "X-Request-Id", request_id) == MHD_NO ||
        (reply->allow &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, reply->allow) == MHD_NO) ||
        (reply->location[0] &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, reply->location) == MHD_NO) ||
        (reply->extra_name[0] &&
         MHD_add_response_header(response, reply->extra_name, reply->extra_value) == MHD_NO) ||
        (reply->retry_after[0] && MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER,
                                                          reply->retry_after) == MHD_NO) ||
        (reply->limit_headers[0] && s_add_limit_headers(response, reply->limit_headers) != 0) ||
        (reply->cors_origin[0] && s_add_cors_headers(response, reply) != 0) ||
        (reply->traceparent[0] &&
         MHD_add_response_header(response, "traceparent", reply->traceparent) == MHD_NO) ||
        (gateway_state_stopping(self->deps.state) &&
         MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_NO))
        ok = MHD_NO;
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, (unsigned int)reply->status, response);
    MHD_destroy_response(response);
    return ok;
}

static bool s_get_or_head(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

//  The route of url: the model routes first (their {id} in *tail_p, not
//  NUL-terminated, length *tail_len_p), then the others.
static gateway_route_t s_match(const char *url, const char **tail_p, size_t *tail_len_p)
{
    gateway_route_t route = gateway_route_match_models(url, tail_p, tail_len_p);
    if (route != GATEWAY_ROUTE_OTHER)
        return route;
    route = gateway_route_match(url, tail_p);
    *tail_len_p = *tail_p ? strlen(*tail_p) : 0;
    return route;
}

//  A POST to a command route reads its body (bounded); nothing else does.
static bool s_wants_body(const char *url, const char *method)
{
    const char *tail;
    size_t len;
    gateway_route_t route = gateway_route_match_models(url, &tail, &len);
    bool write =
        strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    return write && route != GATEWAY_ROUTE_OTHER && gateway_route_method_allowed(route, method);
}

//  Appends a piece of the body; past the limit it only notes that.
static void s_collect(request_t *req, const char *data, size_t len)
{
    if (req->too_large || len > GATEWAY_API_BODY_MAX - req->body_len) {
        req->too_large = true;
        return;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
}

//  The request's SERVER span: its HTTP attributes, then to the exporter.
static void s_end_server_span(request_t *req, const char *method, const char *url,
                              gateway_route_t route, int status)
{
    trace_span_t *span = req->span;
    trace_span_set_str(span, "http.request.method", method);
    if (route != GATEWAY_ROUTE_OTHER)
        trace_span_set_str(span, "http.route", gateway_route_template(route));
    char path[256];
    trace_span_set_str(span, "url.path", gateway_route_sanitize(url, path, sizeof path));
    trace_span_set_int(span, "http.response.status_code", status);
    if (status >= 500) {
        char what[16];
        snprintf(what, sizeof what, "%d", status);
        trace_span_set_error(span, what);
    }
    trace_span_end(&req->span);
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls)
{
    (void)version;
    gateway_http_t *self = cls;
    request_t *req = *req_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO; //  libmicrohttpd closes the connection
        req->start_us = s_monotonic_us();
        *req_cls = req;
        gateway_state_enter(self->deps.state);
        //  GET/HEAD are answered on the next call, once the (normally empty)
        //  body has been read: an answer queued on this first call makes
        //  libmicrohttpd close the connection, which kills keep-alive.
        //  Commands (POST on the training/model routes) read their body
        //  first, up to GATEWAY_API_BODY_MAX; one that announces more
        //  is refused at once, unread. Other methods only ever get an
        //  error, answered at once; the unread body is then dropped with
        //  the connection.
        if (s_get_or_head(method))
            return MHD_YES;
        if (s_wants_body(url, method)) {
            req->collect = true;
            req->body = malloc(GATEWAY_API_BODY_MAX);
            if (!req->body)
                return MHD_NO; //  s_completed frees req
            const char *length =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (length && strtoull(length, NULL, 10) > GATEWAY_API_BODY_MAX)
                req->too_large = true;
            else
                return MHD_YES;
        }
    } else if (req->answered) {
        *upload_data_size = 0; //  after the answer: discard
        return MHD_YES;
    } else if (*upload_data_size) {
        if (req->collect)
            s_collect(req, upload_data, *upload_data_size);
        *upload_data_size = 0; //  consumed (or, for a body we do not use, discarded)
        return MHD_YES;
    }
    req->answered = true;

    char request_id[PROTO_ID_MAX + 1];
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (gateway_route_request_id_valid(given))
        snprintf(request_id, sizeof request_id, "%s", given);
    else
        proto_request_id(request_id, sizeof request_id);

    const char *tail = NULL;
    size_t tail_len = 0;
    gateway_route_t route = s_match(url, &tail, &tail_len);
    reply_t reply = {0};
    //  A malformed traceparent is ignored (a new trace), never an error.
    const char *tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    req->parent_p = tp && trace_ctx_parse(tp, &req->parent) == 0 ? &req->parent : NULL;
    if (tracer_enabled(self->tracer)) {
        char name[96];
        snprintf(name, sizeof name, "%.16s %s", method,
                 route == GATEWAY_ROUTE_OTHER ? "" : gateway_route_template(route));
        req->span = tracer_start(self->tracer, name, TRACE_KIND_SERVER, req->parent_p);
    }
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    bool cors = gateway_cors_allowed(self->cors, origin);
    if (cors)
        snprintf(reply.cors_origin, sizeof reply.cors_origin, "%s", origin);
    const char *preflight =
        strcmp(method, "OPTIONS") == 0
            ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Method")
            : NULL;
    gateway_auth_result_t access = {0};
    if (preflight) {
        //  Before authentication: a preflight carries no credentials.
        if (!cors)
            s_problem(&reply, 403, "this origin may not call the API from a browser", url, NULL);
        else if (route == GATEWAY_ROUTE_OTHER)
            s_problem(&reply, 404, "no such resource", url, NULL);
        else {
            reply.status = 204;
            reply.content_type = JSON_CONTENT_TYPE;
            reply.static_body = "";
            reply.len = 0;
            reply.cors_methods = gateway_route_allow(route);
        }
    } else
        gateway_auth_check(
            self->deps.auth, route, method, route == GATEWAY_ROUTE_RECS ? tail : NULL,
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key"), &access);
    if (preflight) {
        //  answered above
    } else if (access.status) {
        s_problem(&reply, access.status, access.detail, url, NULL);
        if (access.status == 401) {
            snprintf(reply.extra_name, sizeof reply.extra_name, "WWW-Authenticate");
            snprintf(reply.extra_value, sizeof reply.extra_value, "%s", access.challenge);
        }
    } else if (s_rate_limit(self, conn, route, tail, &access, url, &reply)) {
        if (access.authenticated)
            snprintf(req->principal, sizeof req->principal, "%s", access.principal.subject);
        char limits[sizeof reply.limit_headers];
        memcpy(limits, reply.limit_headers, sizeof limits);
        s_route(self, conn, url, method, route, tail, tail_len, req, request_id, &reply);
        memcpy(reply.limit_headers, limits, sizeof limits);
    }
    trace_traceparent(req->span, req->parent_p, reply.traceparent);
    enum MHD_Result ok = s_send(self, conn, &reply, request_id);
    free(reply.body); //  NULL unless sending failed before the handover
    if (req->span)
        s_end_server_span(req, method, url, route, reply.status);

    uint64_t elapsed = s_monotonic_us() - req->start_us;
    gateway_metrics_observe(self->deps.metrics, route, reply.status, elapsed);
    gateway_state_count_handled(self->deps.state);
    if (ok == MHD_NO)
        log_write(LOG_LEVEL_WARN, request_id, "could not queue the %d answer", reply.status);
    //  The level may change at run time (recsd ctl log-level): asked per
    //  request, an atomic load, so the path is only sanitised when logged.
    if (log_enabled(LOG_LEVEL_DEBUG)) {
        char path[256];
        log_write(LOG_LEVEL_DEBUG, request_id, "%.16s %s -> %d in %llu us", method,
                  gateway_route_sanitize(url, path, sizeof path), reply.status,
                  (unsigned long long)elapsed);
    }
    return ok;
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    gateway_http_t *self = cls;
    if (!req_cls || !*req_cls)
        return; //  never reached the access handler (e.g. a malformed request)
    request_t *req = *req_cls;
    trace_span_end(&req->span); //  NULL unless the answer was never built
    free(req->body);
    free(req);
    *req_cls = NULL;
    gateway_state_leave(self->deps.state);
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    log_warn("libmicrohttpd: %s", text);
}

//  Binds and listens ourselves, so a failure names the address and errno,
//  and port 0 can be read back.
static int s_listen(gateway_http_t *self, char *err, size_t errlen)
{
    const config_t *cfg = self->deps.cfg;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->http_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *addrs = NULL;
    int rc = getaddrinfo(cfg->http_addr, port, &hints, &addrs);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->http_addr, cfg->http_port,
                 gai_strerror(rc));
        return -1;
    }
    int fd = socket(addrs->ai_family, addrs->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    addrs->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, addrs->ai_addr, addrs->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->http_addr, cfg->http_port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(addrs);
        return -1;
    }
    freeaddrinfo(addrs);
    struct sockaddr_storage bound;
    socklen_t boundlen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &boundlen) == 0)
        //  NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): set by getsockname.
        self->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                       : ((struct sockaddr_in *)&bound)->sin_port);
    self->listen_fd = fd;
    return 0;
}

//  A PEM file's contents (NUL-terminated, caller frees), or NULL with the
//  reason in err naming var (never the contents: a key is secret).
static char *s_read_pem(const char *path, const char *var, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s=%s: %s", var, path, strerror(errno));
        return NULL;
    }
    char *text = malloc(65537);
    size_t n = text ? fread(text, 1, 65536, f) : 0;
    bool bad = !text || ferror(f) || n == 0 || n == 65536;
    fclose(f);
    if (!bad) {
        text[n] = '\0';
        bad = !strstr(text, "-----BEGIN ");
    }
    if (bad) {
        snprintf(err, errlen, "%s=%s: not a PEM file of at most 64 KiB", var, path);
        free(text);
        return NULL;
    }
    return text;
}

gateway_http_t *gateway_http_new(const gateway_http_deps_t *deps, char *err, size_t errlen)
{
    return gateway_http_new_traced(deps, NULL, err, errlen);
}

gateway_http_t *gateway_http_new_traced(const gateway_http_deps_t *deps, tracer_t *tracer,
                                        char *err, size_t errlen)
{
    gateway_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->deps = *deps;
    self->tracer = tracer;
    self->listen_fd = -1;
    self->cors = gateway_cors_new(deps->cfg->cors_origins, err, errlen);
    if (!self->cors)
        goto err;
    if (deps->cfg->tls_cert_file[0]) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "HTTPS: this libmicrohttpd has no TLS support");
            goto err;
        }
        self->tls_cert = s_read_pem(deps->cfg->tls_cert_file, "RECSD_TLS_CERT_FILE", err, errlen);
        if (!self->tls_cert)
            goto err;
        self->tls_key = s_read_pem(deps->cfg->tls_key_file, "RECSD_TLS_KEY_FILE", err, errlen);
        if (!self->tls_key)
            goto err;
    }
    if (s_listen(self, err, errlen) != 0)
        goto err;
    //  libmicrohttpd refuses a connection limit below the pool size.
    unsigned int threads = (unsigned int)deps->cfg->http_threads;
    unsigned int limit = (unsigned int)deps->cfg->http_max_connections;
    if (threads > limit)
        threads = limit;
    //  MHD_USE_ITC: needed by MHD_quiesce_daemon in this threading mode.
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    //  The logger goes first, so that option errors are logged through it.
    //  With TLS the key and certificate options come last (MHD reads them
    //  only with MHD_USE_TLS); without, they end the list early.
    self->daemon = MHD_start_daemon(
        flags | (self->tls_cert ? MHD_USE_TLS : 0), 0, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, self->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        self->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, self->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, self->tls_key, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server on %s:%d", deps->cfg->http_addr,
                 deps->cfg->http_port);
        goto err;
    }
    return self;
err:
    if (self->listen_fd >= 0 && !self->daemon)
        close(self->listen_fd);
    gateway_cors_destroy(&self->cors);
    free(self->tls_cert);
    free(self->tls_key);
    free(self);
    return NULL;
}

int gateway_http_port(gateway_http_t *self)
{
    return self->port;
}

void gateway_http_quiesce(gateway_http_t *self)
{
    if (self->quiesced || !self->daemon)
        return;
    self->quiesced = true;
    MHD_socket fd = MHD_quiesce_daemon(self->daemon);
    if (fd == MHD_INVALID_SOCKET) {
        log_warn("could not stop accepting connections; closing them at stop instead");
        return;
    }
    //  Clients whose handshake completed but who were not accepted yet sit
    //  in the backlog; closing the socket would reset them mid-request.
    //  Hand them to the daemon instead (they are answered with
    //  Connection: close), then close: later connects are refused.
    int adopted = 0;
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t addrlen = sizeof addr;
        int client = accept4(fd, (struct sockaddr *)&addr, &addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0)
            break; //  EAGAIN: the backlog is empty
        //  On failure libmicrohttpd closes the socket itself.
        if (MHD_add_connection(self->daemon, client, (struct sockaddr *)&addr, addrlen) == MHD_YES)
            adopted++;
    }
    close(fd);
    if (adopted)
        log_debug("adopted %d queued connections while closing the listener", adopted);
}

unsigned int gateway_http_connections(gateway_http_t *self)
{
    if (!self->daemon)
        return 0;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void gateway_http_destroy(gateway_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_http_t *self = *self_p;
    if (self->daemon)
        MHD_stop_daemon(self->daemon); //  closes the listening socket unless quiesced
    gateway_cors_destroy(&self->cors);
    free(self->tls_cert);
    free(self->tls_key);
    free(self);
    *self_p = NULL;
}
