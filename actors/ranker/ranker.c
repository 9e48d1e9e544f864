/*  ranker.c: the ranker actor.

    Walking-skeleton scope: it serves the popularity list (most interacted
    videos in PostgreSQL) to the gateway over a ROUTER socket at
    ipc://<runtime_dir>/ranker. Models, personalisation and seen-item
    filtering come with the ranking issue; the loop, the socket contract and
    the deadline handling are the ones they will extend.

    Requests whose deadline has already passed are dropped unanswered: the
    gateway has answered from its fallback by then and would discard a late
    reply anyway.
*/
#include "ranker.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>

#include "actor_link.h"
#include "log.h"
#include "pg_conn.h"
#include "popular_list.h"
#include "proto/proto_zmq.h"
#include "seen_set.h"

#define RANKER_POPULAR_MAX 500
//  Queries run inside the heartbeat loop: a lock or a slow plan must not
//  hold it past the heartbeat timeout (connect <= 2 s, then a beat, then
//  the query <= 1 s).
#define RANKER_STATEMENT_TIMEOUT_MS 1000

typedef struct {
    const config_t *cfg;
    const char *instance; //  "ranker", or "ranker.N" when several run
    actor_link_t *link;
    zsock_t *frontend;       //  ROUTER, requests from gateways
    zsock_t *notices;        //  SUB to every event-ingestor: stored interactions
    seen_set_t *seen;        //  what each user has consumed: never recommended
    PGconn *pg;              //  NULL while PostgreSQL is unreachable
    popular_list_t *popular; //  last good list, never NULL after start
    int64_t next_refresh;
    uint64_t dropped_late;
    bool popular_loaded; //  a list was loaded once: an empty one is then real
    bool seen_loaded;    //  histories loaded; retried with the refresh until then
    uint64_t answered;
    uint64_t notices_folded;
    int64_t next_metrics; //  when the heartbeat metrics text is next rebuilt
} self_t;

//  The ranker's own series for /metrics, sent with its heartbeats.
static void s_update_metrics(self_t *self)
{
    if (zclock_mono() < self->next_metrics)
        return;
    self->next_metrics = zclock_mono() + self->cfg->heartbeat_interval_ms;
    char text[2048];
    const char *a = self->instance;
    int n = snprintf(
        text, sizeof text,
        "# HELP recsd_ranker_answered_total Recommendation requests the ranker answered.\n"
        "# TYPE recsd_ranker_answered_total counter\n"
        "recsd_ranker_answered_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_ranker_late_dropped_total Requests dropped unanswered: deadline passed.\n"
        "# TYPE recsd_ranker_late_dropped_total counter\n"
        "recsd_ranker_late_dropped_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_ranker_interaction_notices_total Interactions folded in from ingestors.\n"
        "# TYPE recsd_ranker_interaction_notices_total counter\n"
        "recsd_ranker_interaction_notices_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_ranker_popular_items Items in the ranker's popularity list.\n"
        "# TYPE recsd_ranker_popular_items gauge\n"
        "recsd_ranker_popular_items{actor=\"%s\"} %zu\n"
        "# HELP recsd_ranker_seen_users Users whose seen videos the ranker filters.\n"
        "# TYPE recsd_ranker_seen_users gauge\n"
        "recsd_ranker_seen_users{actor=\"%s\"} %zu\n",
        a, (unsigned long long)self->answered, a, (unsigned long long)self->dropped_late, a,
        (unsigned long long)self->notices_folded, a, popular_list_size(self->popular), a,
        seen_set_users(self->seen));
    if (n > 0 && (size_t)n < sizeof text && actor_link_set_metrics(self->link, text) != 0)
        log_warn("metrics text too long for a heartbeat");
}

static void s_refresh_popular(self_t *self)
{
    char err[256];
    self->next_refresh = zclock_mono() + self->cfg->popular_refresh_ms;
    if (!self->pg || PQstatus(self->pg) != CONNECTION_OK) {
        if (self->pg)
            PQfinish(self->pg);
        self->pg = pg_conn_open(self->cfg->pg_dsn, "ranker", 2, err, sizeof err);
        if (!self->pg ||
            pg_conn_statement_timeout(self->pg, RANKER_STATEMENT_TIMEOUT_MS, err, sizeof err)) {
            log_warn("popularity not refreshed: %s", err);
            if (self->pg)
                PQfinish(self->pg);
            self->pg = NULL;
            return;
        }
        if (self->link)
            actor_link_tick(self->link); //  the connect may have taken a while
    }
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

static proto_msg_t *s_recommend(self_t *self, const proto_msg_t *req)
{
    proto_msg_t *reply = proto_msg_new(PROTO_RECS_REP, req->header.request_id);
    if (!reply)
        return NULL;
    snprintf(reply->header.traceparent, sizeof reply->header.traceparent, "%s",
             req->header.traceparent);
    proto_recs_rep_t *rep = &reply->body.recs_rep;
    snprintf(rep->user_id, sizeof rep->user_id, "%s", req->body.recs_req.user_id);
    snprintf(rep->source, sizeof rep->source, "model");
    snprintf(rep->model_id, sizeof rep->model_id, "popularity");
    size_t available = popular_list_size(self->popular);
    size_t limit = req->body.recs_req.limit;
    if (limit > available)
        limit = available;
    if (limit) {
        rep->items = calloc(limit, sizeof *rep->items);
        if (!rep->items) {
            proto_msg_destroy(&reply);
            return NULL;
        }
    }
    //  Most popular first, minus what this user has already seen.
    size_t count = 0;
    for (size_t i = 0; i < available && count < limit; i++) {
        const popular_item_t *item = popular_list_item(self->popular, i);
        if (seen_set_contains(self->seen, rep->user_id, item->video_id))
            continue;
        snprintf(rep->items[count].video_id, sizeof rep->items[count].video_id, "%s",
                 item->video_id);
        rep->items[count].score = item->score;
        count++;
    }
    rep->count = (uint32_t)count;
    log_write(LOG_LEVEL_DEBUG, req->header.request_id, "recs for user %s: %zu items", rep->user_id,
              count);
    return reply;
}

//  Interactions the ingestors stored: fold them into the seen sets so the
//  user's next request already reflects them.
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
            if (seen_set_record(self->seen, in->user_id, in->video_id, in->kind, in->weight) < 0)
                log_warn("seen set: out of memory");
        } else
            log_warn("unexpected %s message on the notice socket",
                     proto_type_name(msg->header.type));
        proto_msg_destroy(&msg);
    }
}

static void s_handle_request(self_t *self)
{
    //  Bounded batch so heartbeats keep flowing under sustained load.
    for (int batch = 0; batch < 256; batch++) {
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
            log_write(LOG_LEVEL_DEBUG, req->header.request_id, "deadline passed; dropped");
        } else if (!self->popular_loaded) {
            //  Nothing loaded yet (PostgreSQL down since start): an empty
            //  "model" answer would be wrong; the gateway falls back instead.
            reply = proto_msg_new(PROTO_RESULT, req->header.request_id);
            if (reply) {
                reply->body.result.code = 503;
                snprintf(reply->body.result.message, sizeof reply->body.result.message,
                         "no popularity list loaded yet");
            }
        } else {
            reply = s_recommend(self, req);
            self->answered += reply != NULL;
        }
        if (reply && proto_send(self->frontend, identity, reply) != 0)
            log_write(LOG_LEVEL_DEBUG, req->header.request_id, "reply undeliverable: %s",
                      zmq_strerror(errno));
        proto_msg_destroy(&reply);
        proto_msg_destroy(&req);
        zframe_destroy(&identity);
    }
}

//  Every user's history, once at start (later updates come as notices).
//  Without PostgreSQL the ranker still serves, unfiltered, and logs it.
static void s_load_seen(self_t *self)
{
    char err[256];
    if (!self->pg) {
        log_warn("seen videos not loaded: no PostgreSQL connection; serving unfiltered, "
                 "retrying with the next refresh");
        return;
    }
    long pairs = seen_set_load(self->seen, self->pg, err, sizeof err);
    if (pairs < 0)
        log_warn("seen videos not loaded (%s); serving unfiltered, retrying with the next "
                 "refresh",
                 err);
    else {
        self->seen_loaded = true;
        log_info("seen videos loaded: %ld for %zu users", pairs, seen_set_users(self->seen));
    }
}

static int s_setup(self_t *self)
{
    self->popular = popular_list_new(NULL, 0);
    self->seen = seen_set_new(self->cfg->seen_completion);
    if (!self->popular || !self->seen)
        return -1;
    self->link = actor_link_new(self->cfg, self->instance);
    if (!self->link)
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
    if (zsock_bind(self->frontend, "%s", endpoint) != 0) {
        log_error("cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    //  Notices from every event-ingestor this pod runs (none in a worker
    //  pod). SUB connects: the ingestors bind, and come and go by restart.
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
    s_refresh_popular(self);
    s_load_seen(self);
    return 0;
}

int ranker_main(const config_t *cfg, const char *instance)
{
    self_t self = {.cfg = cfg, .instance = instance};
    int rc = 1;
    if (s_setup(&self) != 0)
        goto done;
    actor_link_set_ready(self.link);
    log_info("ranker ready: %zu popular items", popular_list_size(self.popular));
    while (!actor_link_stopping(self.link)) {
        zmq_pollitem_t items[] = {
            {zsock_resolve(actor_link_socket(self.link)), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self.frontend), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self.notices), 0, ZMQ_POLLIN, 0},
        };
        if (zmq_poll(items, 3, actor_link_timeout_ms(self.link)) < 0 && errno != EINTR) {
            log_error("poll failed: %s", zmq_strerror(errno));
            goto done;
        }
        if (items[0].revents & ZMQ_POLLIN)
            actor_link_handle(self.link);
        //  Notices first: a request right after an event must see it.
        if (items[2].revents & ZMQ_POLLIN)
            s_handle_notice(&self);
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_request(&self);
        if (zclock_mono() >= self.next_refresh) {
            s_refresh_popular(&self);
            if (!self.seen_loaded)
                s_load_seen(&self);
        }
        s_update_metrics(&self);
        actor_link_tick(self.link);
    }
    rc = 0;
    log_info("ranker stopping (%llu late requests dropped)", (unsigned long long)self.dropped_late);
done:
    zsock_destroy(&self.frontend);
    zsock_destroy(&self.notices);
    seen_set_destroy(&self.seen);
    actor_link_destroy(&self.link);
    popular_list_destroy(&self.popular);
    if (self.pg)
        PQfinish(self.pg);
    return rc;
}
