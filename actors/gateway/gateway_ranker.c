/*  gateway_ranker.c: DEALER socket pool and deadline-bound calls (see gateway_ranker.h). */
#include "gateway_ranker.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"

#include "proto/proto_zmq.h"

//  Enough for bursts on a healthy ranker, small enough that a stuck one
//  cannot pile up much work: the gateway serves a fallback instead.
#define RANKER_HWM 64

//  Circuit breaker: after this many timeouts in a row the ranker is not
//  asked for RANKER_COOLDOWN_MS; requests go straight to the fallback
//  instead of each holding an HTTP thread for the whole deadline (which
//  queues every other connection of that thread behind it). After the
//  cool-down the next request tries again; one more timeout re-opens it.
#define RANKER_TRIP_TIMEOUTS 5
#define RANKER_COOLDOWN_MS 1000

//  A DEALER and the PAIR that receives its disconnect events (libzmq's
//  socket monitor): a peer whose connection drops while a request is out
//  has died (a ranker that is merely slow keeps its connection).
typedef struct {
    zsock_t *dealer;
    zsock_t *monitor; //  NULL if the monitor could not be set up
} s_conn_t;

struct gateway_ranker_t {
    char endpoint[(CONFIG_PATH_MAX + 16) * CONFIG_MAX_INSTANCES]; //  comma-separated list
    pthread_mutex_t lock;
    s_conn_t *idle; //  under lock
    int idle_count; //  under lock
    int capacity;
    atomic_uint_fast64_t monitors; //  names the monitor endpoints
    atomic_uint_fast64_t retries;  //  requests re-sent after a ranker died
    atomic_uint_fast64_t last_warn_ms;
    atomic_uint_fast64_t suppressed;
    atomic_uint_fast32_t timeouts_in_a_row;
    atomic_uint_fast64_t open_until_ms; //  circuit open (ranker skipped) until then
};

static uint64_t s_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_conn_destroy(s_conn_t *conn)
{
    if (conn->monitor) {
        //  Stop the monitor before closing its PAIR (libzmq's order).
        if (conn->dealer && zmq_socket_monitor(zsock_resolve(conn->dealer), NULL, 0) != 0)
            log_debug("stopping a ranker socket monitor failed: %s", zmq_strerror(errno));
        zsock_destroy(&conn->monitor);
    }
    zsock_destroy(&conn->dealer);
}

//  A connected DEALER with its disconnect monitor. Returns 0, or -1 (errno
//  set) when the DEALER cannot be made; a monitor that cannot be made only
//  costs the retry on a dead ranker.
static int s_conn_new(gateway_ranker_t *self, s_conn_t *conn)
{
    *conn = (s_conn_t){0};
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return -1;
    zsock_set_immediate(sock, 1);
    zsock_set_linger(sock, 0);
    zsock_set_maxmsgsize(sock, PROTO_MAX_MESSAGE);
    zsock_set_sndhwm(sock, RANKER_HWM);
    zsock_set_rcvhwm(sock, RANKER_HWM);
    //  The monitor first, so that no disconnect can be missed.
    char name[96];
    snprintf(name, sizeof name, "inproc://gateway-ranker-%p-%llu", (void *)self,
             (unsigned long long)atomic_fetch_add(&self->monitors, 1));
    if (zmq_socket_monitor(zsock_resolve(sock), name, ZMQ_EVENT_DISCONNECTED) == 0) {
        conn->monitor = zsock_new(ZMQ_PAIR);
        if (conn->monitor && zsock_connect(conn->monitor, "%s", name) != 0)
            zsock_destroy(&conn->monitor);
        if (!conn->monitor &&
            zmq_socket_monitor(zsock_resolve(sock), NULL, 0) != 0) //  nobody would read it
            log_debug("stopping a ranker socket monitor failed: %s", zmq_strerror(errno));
    }
    conn->dealer = sock;
    if (zsock_attach(sock, self->endpoint, false) != 0) {
        int saved = errno;
        s_conn_destroy(conn);
        errno = saved;
        return -1;
    }
    return 0;
}

//  Reads every monitor event waiting; returns how many were disconnects.
static int s_disconnects(s_conn_t *conn)
{
    int count = 0;
    if (!conn->monitor)
        return 0;
    void *handle = zsock_resolve(conn->monitor);
    for (;;) {
        //  Two frames: 6 bytes (uint16 event, uint32 value), the endpoint.
        uint8_t head[6];
        int n = zmq_recv(handle, head, sizeof head, ZMQ_DONTWAIT);
        if (n < 0)
            break;
        int more = 0;
        size_t more_len = sizeof more;
        while (zmq_getsockopt(handle, ZMQ_RCVMORE, &more, &more_len) == 0 && more) {
            char skip[8];
            if (zmq_recv(handle, skip, sizeof skip, ZMQ_DONTWAIT) < 0)
                break;
        }
        uint16_t event;
        memcpy(&event, head, sizeof event);
        if (n >= 2 && event == ZMQ_EVENT_DISCONNECTED)
            count++;
    }
    return count;
}

gateway_ranker_t *gateway_ranker_new(const char *endpoint, int sockets, char *err, size_t errlen)
{
    gateway_ranker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        snprintf(err, errlen, "cannot create the pool lock");
        return NULL;
    }
    atomic_init(&self->last_warn_ms, 0);
    atomic_init(&self->suppressed, 0);
    atomic_init(&self->timeouts_in_a_row, 0);
    atomic_init(&self->open_until_ms, 0);
    atomic_init(&self->monitors, 0);
    atomic_init(&self->retries, 0);
    self->capacity = sockets > 0 ? sockets : 1;
    if (snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint) >=
        (int)sizeof self->endpoint) {
        snprintf(err, errlen, "ranker endpoint too long");
        goto err;
    }
    self->idle = calloc((size_t)self->capacity, sizeof *self->idle);
    if (!self->idle) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    for (int i = 0; i < self->capacity; i++) {
        if (s_conn_new(self, &self->idle[self->idle_count]) != 0) {
            snprintf(err, errlen, "cannot connect a DEALER to %s: %s", self->endpoint,
                     zmq_strerror(errno));
            goto err;
        }
        self->idle_count++;
    }
    return self;
err:
    gateway_ranker_destroy(&self);
    return NULL;
}

void gateway_ranker_destroy(gateway_ranker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_ranker_t *self = *self_p;
    //  idle is NULL only when gateway_ranker_new failed to allocate it, and
    //  then idle_count is still 0.
    for (int i = 0; self->idle && i < self->idle_count; i++)
        s_conn_destroy(&self->idle[i]);
    free(self->idle);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

//  Takes an idle connection, or makes a new one (*fresh = true) if all are
//  busy. Returns 0, or -1 (errno set).
static int s_acquire(gateway_ranker_t *self, s_conn_t *conn, bool *fresh)
{
    bool found = false;
    pthread_mutex_lock(&self->lock);
    if (self->idle_count > 0) {
        *conn = self->idle[--self->idle_count];
        found = true;
    }
    pthread_mutex_unlock(&self->lock);
    *fresh = !found;
    return found ? 0 : s_conn_new(self, conn);
}

static void s_release(gateway_ranker_t *self, s_conn_t *conn)
{
    bool kept = false;
    pthread_mutex_lock(&self->lock);
    if (self->idle_count < self->capacity) {
        self->idle[self->idle_count++] = *conn;
        kept = true;
    }
    pthread_mutex_unlock(&self->lock);
    if (!kept)
        s_conn_destroy(conn);
    *conn = (s_conn_t){0};
}

//  Waits until sock can send or the deadline passes. Used only for a socket
//  made on the spot, whose connection is still being set up.
static bool s_wait_writable(zsock_t *sock, uint64_t end_ms)
{
    for (;;) {
        uint64_t now = s_monotonic_ms();
        if (now >= end_ms)
            return false;
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLOUT, 0};
        int rc = zmq_poll(&item, 1, (long)(end_ms - now));
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

//  Waits for the reply to msg until end_ms. When a ranker connection drops
//  meanwhile (a ranker died, perhaps the one holding the request), msg is
//  sent once more: with ZMQ_IMMEDIATE the DEALER has dropped the dead
//  peer's pipe, so the copy goes to a live ranker. Whichever answer comes
//  first is taken; a second one is dropped as a late answer by a later
//  call. *retried says whether the copy went out.
static gateway_ranker_outcome_t s_wait_reply(s_conn_t *conn, const proto_msg_t *msg,
                                             uint64_t end_ms, bool *retried, proto_msg_t **reply_p,
                                             char *detail, size_t detaillen)
{
    zsock_t *sock = conn->dealer;
    const char *request_id = msg->header.request_id;
    const char *user_id = msg->body.recs_req.user_id;
    for (;;) {
        char err[256];
        proto_msg_t *reply = proto_recv(sock, NULL, err, sizeof err);
        if (!reply && errno == EPROTO) {
            snprintf(detail, detaillen, "malformed reply: %s", err);
            return GATEWAY_RANKER_ERROR;
        }
        if (reply) {
            if (strcmp(reply->header.request_id, request_id) != 0) {
                proto_msg_destroy(&reply); //  a late answer to an earlier call
                continue;
            }
            if (reply->header.type == PROTO_RECS_REP &&
                strcmp(reply->body.recs_rep.user_id, user_id) == 0) {
                *reply_p = reply;
                return GATEWAY_RANKER_OK;
            }
            if (reply->header.type == PROTO_RESULT)
                snprintf(detail, detaillen, "ranker error %d: %s", reply->body.result.code,
                         reply->body.result.message);
            else if (reply->header.type == PROTO_RECS_REP)
                snprintf(detail, detaillen, "reply is for another user");
            else
                snprintf(detail, detaillen, "unexpected %s reply",
                         proto_type_name(reply->header.type));
            proto_msg_destroy(&reply);
            return GATEWAY_RANKER_ERROR;
        }
        if (!*retried && s_disconnects(conn) > 0) {
            //  Sending may fail (no ranker left): then wait out the
            //  first one, which may still answer if it was not the one.
            *retried = true;
            if (proto_send(sock, NULL, msg) != 0)
                log_write(LOG_LEVEL_DEBUG, request_id, "retry not sent: %s", zmq_strerror(errno));
        }
        //  Nothing waiting (EAGAIN): poll for the rest of the deadline.
        uint64_t now = s_monotonic_ms();
        if (now >= end_ms)
            break;
        zmq_pollitem_t items[2] = {
            {zsock_resolve(sock), 0, ZMQ_POLLIN, 0},
            {conn->monitor ? zsock_resolve(conn->monitor) : NULL, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, conn->monitor && !*retried ? 2 : 1, (long)(end_ms - now));
        if (rc < 0 && errno != EINTR) {
            snprintf(detail, detaillen, "poll failed: %s", zmq_strerror(errno));
            return GATEWAY_RANKER_ERROR;
        }
        if (rc == 0 && s_monotonic_ms() >= end_ms)
            break;
    }
    snprintf(detail, detaillen, "no reply within the deadline");
    return GATEWAY_RANKER_TIMEOUT;
}

gateway_ranker_outcome_t gateway_ranker_ask(gateway_ranker_t *self, const char *request_id,
                                            const char *user_id, int limit, int deadline_ms,
                                            proto_msg_t **reply_p, char *detail, size_t detaillen)
{
    proto_msg_t *query = proto_msg_new(PROTO_RECS_REQ, "");
    if (!query) {
        *reply_p = NULL;
        snprintf(detail, detaillen, "out of memory");
        return GATEWAY_RANKER_ERROR;
    }
    snprintf(query->body.recs_req.user_id, sizeof query->body.recs_req.user_id, "%s", user_id);
    query->body.recs_req.limit = (uint32_t)limit;
    gateway_ranker_outcome_t outcome = gateway_ranker_query(
        self, request_id, &query->body.recs_req, deadline_ms, reply_p, detail, detaillen);
    proto_msg_destroy(&query);
    return outcome;
}

gateway_ranker_outcome_t gateway_ranker_query(gateway_ranker_t *self, const char *request_id,
                                              const proto_recs_req_t *query, int deadline_ms,
                                              proto_msg_t **reply_p, char *detail, size_t detaillen)
{
    return gateway_ranker_query_traced(self, request_id, NULL, query, deadline_ms, reply_p, detail,
                                       detaillen);
}

gateway_ranker_outcome_t gateway_ranker_query_traced(gateway_ranker_t *self, const char *request_id,
                                                     const char *traceparent,
                                                     const proto_recs_req_t *query, int deadline_ms,
                                                     proto_msg_t **reply_p, char *detail,
                                                     size_t detaillen)
{
    *reply_p = NULL;
    uint64_t start_ms = s_monotonic_ms();
    if (start_ms < atomic_load_explicit(&self->open_until_ms, memory_order_relaxed)) {
        snprintf(detail, detaillen, "ranker skipped for %d ms after %d timeouts in a row",
                 RANKER_COOLDOWN_MS, RANKER_TRIP_TIMEOUTS);
        return GATEWAY_RANKER_UNAVAILABLE;
    }
    uint64_t end_ms = start_ms + (uint64_t)(deadline_ms > 0 ? deadline_ms : 1);
    proto_msg_t *msg = proto_msg_new(PROTO_RECS_REQ, request_id);
    if (!msg) {
        snprintf(detail, detaillen, "out of memory");
        return GATEWAY_RANKER_ERROR;
    }
    msg->header.deadline_ms = proto_now_ms() + (uint64_t)deadline_ms;
    //  proto_encode refuses a malformed context: better no trace than no answer.
    if (traceparent && strlen(traceparent) == PROTO_TRACEPARENT_LEN)
        memcpy(msg->header.traceparent, traceparent, PROTO_TRACEPARENT_LEN + 1);
    msg->body.recs_req = *query;

    gateway_ranker_outcome_t outcome = GATEWAY_RANKER_ERROR;
    bool fresh = false, retried = false;
    s_conn_t conn = {0};
    if (s_acquire(self, &conn, &fresh) != 0) {
        snprintf(detail, detaillen, "cannot create a socket: %s", zmq_strerror(errno));
        goto done;
    }
    //  Disconnects from before this call are old news.
    s_disconnects(&conn);
    int rc = proto_send(conn.dealer, NULL, msg);
    if (rc != 0 && errno == EAGAIN && fresh && s_wait_writable(conn.dealer, end_ms))
        rc = proto_send(conn.dealer, NULL, msg);
    if (rc != 0) {
        if (errno == EAGAIN) {
            outcome = GATEWAY_RANKER_UNAVAILABLE;
            snprintf(detail, detaillen, "no ranker connected at %s", self->endpoint);
        } else
            snprintf(detail, detaillen, "send failed: %s", zmq_strerror(errno));
        goto done;
    }
    outcome = s_wait_reply(&conn, msg, end_ms, &retried, reply_p, detail, detaillen);
    if (retried)
        atomic_fetch_add(&self->retries, 1);
done:
    proto_msg_destroy(&msg);
    if (conn.dealer)
        s_release(self, &conn);
    if (outcome == GATEWAY_RANKER_TIMEOUT) {
        if (atomic_fetch_add(&self->timeouts_in_a_row, 1) + 1 >= RANKER_TRIP_TIMEOUTS)
            atomic_store(&self->open_until_ms, s_monotonic_ms() + RANKER_COOLDOWN_MS);
    } else if (outcome == GATEWAY_RANKER_OK)
        atomic_store(&self->timeouts_in_a_row, 0);
    return outcome;
}

uint64_t gateway_ranker_retries(gateway_ranker_t *self)
{
    return atomic_load(&self->retries);
}

bool gateway_ranker_warn_due(gateway_ranker_t *self, int interval_ms, uint64_t *suppressed)
{
    uint64_t now = s_monotonic_ms();
    uint64_t last = atomic_load_explicit(&self->last_warn_ms, memory_order_relaxed);
    //  last == 0 means "never": the first warning always goes out.
    if ((last == 0 || now - last >= (uint64_t)interval_ms) &&
        atomic_compare_exchange_strong(&self->last_warn_ms, &last, now ? now : 1)) {
        *suppressed = atomic_exchange(&self->suppressed, 0);
        return true;
    }
    atomic_fetch_add_explicit(&self->suppressed, 1, memory_order_relaxed);
    return false;
}
