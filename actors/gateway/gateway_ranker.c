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

struct gateway_ranker_t {
    char endpoint[(CONFIG_PATH_MAX + 16) * CONFIG_MAX_INSTANCES]; //  comma-separated list
    pthread_mutex_t lock;
    zsock_t **idle; //  under lock
    int idle_count; //  under lock
    int capacity;
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

static zsock_t *s_socket_new(const char *endpoint)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_immediate(sock, 1);
    zsock_set_linger(sock, 0);
    zsock_set_maxmsgsize(sock, PROTO_MAX_MESSAGE);
    zsock_set_sndhwm(sock, RANKER_HWM);
    zsock_set_rcvhwm(sock, RANKER_HWM);
    if (zsock_attach(sock, endpoint, false) != 0) {
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
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
    self->capacity = sockets > 0 ? sockets : 1;
    if (snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint) >=
        (int)sizeof self->endpoint) {
        snprintf(err, errlen, "ranker endpoint too long");
        goto err;
    }
    //  NOLINTNEXTLINE(bugprone-sizeof-expression): an array of zsock_t *, so sizeof a pointer.
    self->idle = calloc((size_t)self->capacity, sizeof *self->idle);
    if (!self->idle) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    for (int i = 0; i < self->capacity; i++) {
        zsock_t *sock = s_socket_new(self->endpoint);
        if (!sock) {
            snprintf(err, errlen, "cannot connect a DEALER to %s: %s", self->endpoint,
                     zmq_strerror(errno));
            goto err;
        }
        self->idle[self->idle_count++] = sock;
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
    for (int i = 0; i < self->idle_count; i++)
        zsock_destroy(&self->idle[i]);
    free(self->idle);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

//  Takes an idle socket, or makes a new one (*fresh = true) if all are busy.
static zsock_t *s_acquire(gateway_ranker_t *self, bool *fresh)
{
    zsock_t *sock = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->idle_count > 0)
        sock = self->idle[--self->idle_count];
    pthread_mutex_unlock(&self->lock);
    *fresh = sock == NULL;
    return sock ? sock : s_socket_new(self->endpoint);
}

static void s_release(gateway_ranker_t *self, zsock_t **sock_p)
{
    pthread_mutex_lock(&self->lock);
    if (self->idle_count < self->capacity) {
        self->idle[self->idle_count++] = *sock_p;
        *sock_p = NULL;
    }
    pthread_mutex_unlock(&self->lock);
    zsock_destroy(sock_p); //  no-op if it went back into the pool
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

//  Waits for the reply to request_id until end_ms.
static gateway_ranker_outcome_t s_wait_reply(zsock_t *sock, const char *request_id,
                                             const char *user_id, uint64_t end_ms,
                                             proto_msg_t **reply_p, char *detail, size_t detaillen)
{
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
        //  Nothing waiting (EAGAIN): poll for the rest of the deadline.
        uint64_t now = s_monotonic_ms();
        if (now >= end_ms)
            break;
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)(end_ms - now));
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
    snprintf(msg->body.recs_req.user_id, sizeof msg->body.recs_req.user_id, "%s", user_id);
    msg->body.recs_req.limit = (uint32_t)limit;

    gateway_ranker_outcome_t outcome = GATEWAY_RANKER_ERROR;
    bool fresh = false;
    zsock_t *sock = s_acquire(self, &fresh);
    if (!sock) {
        snprintf(detail, detaillen, "cannot create a socket: %s", zmq_strerror(errno));
        goto done;
    }
    int rc = proto_send(sock, NULL, msg);
    if (rc != 0 && errno == EAGAIN && fresh && s_wait_writable(sock, end_ms))
        rc = proto_send(sock, NULL, msg);
    if (rc != 0) {
        if (errno == EAGAIN) {
            outcome = GATEWAY_RANKER_UNAVAILABLE;
            snprintf(detail, detaillen, "no ranker connected at %s", self->endpoint);
        } else
            snprintf(detail, detaillen, "send failed: %s", zmq_strerror(errno));
        goto done;
    }
    outcome =
        s_wait_reply(sock, msg->header.request_id, user_id, end_ms, reply_p, detail, detaillen);
done:
    proto_msg_destroy(&msg);
    if (sock)
        s_release(self, &sock);
    if (outcome == GATEWAY_RANKER_TIMEOUT) {
        if (atomic_fetch_add(&self->timeouts_in_a_row, 1) + 1 >= RANKER_TRIP_TIMEOUTS)
            atomic_store(&self->open_until_ms, s_monotonic_ms() + RANKER_COOLDOWN_MS);
    } else if (outcome == GATEWAY_RANKER_OK)
        atomic_store(&self->timeouts_in_a_row, 0);
    return outcome;
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
