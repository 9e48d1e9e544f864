/*  publisher_events.c: events socket -> bounded FIFO -> Kafka (see
    publisher_events.h). */
#include "publisher_events.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "event_sender.h"
#include "log.h"
#include "proto/proto_event.h"
#include "publisher_trace.h"

#define PROBLEM_LOG_MS 10000

typedef enum { P_INVALID, P_DROPPED, P_FAILED, P_COUNT } s_problem_t;

static const char *s_problem_text[P_COUNT] = {"malformed events rejected",
                                              "events dropped (queue full, Kafka behind or down)",
                                              "events not delivered to Kafka (not retried)"};

struct publisher_events_t {
    zsock_t *pull;
    proto_event_t **ring; //  FIFO of cap slots, count used from head
    size_t cap, head, count;
    size_t inflight;
    uint64_t next_seq;
    uint64_t received, invalid, dropped, produced, failed;
    struct {
        uint64_t since;   //  occurrences since the last log line
        int64_t next_log; //  0: log the next one at once
    } problems[P_COUNT];
};

//  Counts one occurrence; logs when due (see the header).
static void s_problem(publisher_events_t *self, s_problem_t kind, const char *why)
{
    int64_t now = zclock_mono();
    self->problems[kind].since++;
    if (now < self->problems[kind].next_log)
        return;
    log_warn("%s: %llu since the last report; latest: %s", s_problem_text[kind],
             (unsigned long long)self->problems[kind].since, why);
    self->problems[kind].since = 0;
    self->problems[kind].next_log = now + PROBLEM_LOG_MS;
}

publisher_events_t *publisher_events_new(const config_t *cfg, const char *instance,
                                         size_t queue_max, char *err, size_t errlen)
{
    char endpoint[160];
    if (event_sender_endpoint(cfg, instance, endpoint, sizeof endpoint) != 0) {
        snprintf(err, errlen, "events endpoint too long (RECSD_RUNTIME_DIR)");
        return NULL;
    }
    publisher_events_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cap = queue_max ? queue_max : PUBLISHER_EVENTS_QUEUE_MAX;
    self->ring = calloc(self->cap, sizeof(proto_event_t *)); //  slots hold pointers
    self->pull = zsock_new(ZMQ_PULL);
    if (!self->ring || !self->pull) {
        snprintf(err, errlen, "cannot create the events queue: %s",
                 self->ring ? zmq_strerror(errno) : "out of memory");
        goto err;
    }
    zsock_set_rcvhwm(self->pull, PUBLISHER_EVENTS_RCVHWM);
    zsock_set_linger(self->pull, 0);
    //  Larger frames are cut off by ZeroMQ itself (the peer is disconnected).
    zsock_set_maxmsgsize(self->pull, PROTO_EVENT_MAX);
    if (zsock_bind(self->pull, "%s", endpoint) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        goto err;
    }
    return self;
err:
    publisher_events_destroy(&self);
    return NULL;
}

void publisher_events_destroy(publisher_events_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    publisher_events_t *self = *self_p;
    for (size_t i = 0; self->ring && i < self->count; i++)
        proto_event_destroy(&self->ring[(self->head + i) % self->cap]);
    free(self->ring);
    zsock_destroy(&self->pull);
    free(self);
    *self_p = NULL;
}

zsock_t *publisher_events_socket(publisher_events_t *self)
{
    return self->pull;
}

//  Handles one message read from the socket (msg borrowed).
static void s_accept(publisher_events_t *self, zmq_msg_t *msg, bool multipart)
{
    self->received++;
    if (self->count == self->cap) {
        //  Not even decoded: under a flood the cheapest path wins.
        self->dropped++;
        s_problem(self, P_DROPPED, "the queue holds its maximum of events");
        return;
    }
    char err[256];
    proto_event_t *event = NULL;
    if (multipart)
        snprintf(err, sizeof err, "a multi-part message (an event is one frame)");
    else
        event = proto_event_decode(zmq_msg_data(msg), zmq_msg_size(msg), err, sizeof err);
    if (!event) {
        self->invalid++;
        s_problem(self, P_INVALID, err);
        return;
    }
    self->ring[(self->head + self->count) % self->cap] = event;
    self->count++;
}

size_t publisher_events_receive(publisher_events_t *self)
{
    void *sock = zsock_resolve(self->pull);
    size_t n = 0;
    while (n < PUBLISHER_EVENTS_RECV_BATCH) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        bool multipart = zmq_msg_more(&msg);
        s_accept(self, &msg, multipart);
        //  The rest of a multi-part message is already here (atomic delivery).
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
            ;
        zmq_msg_close(&msg);
        n++;
    }
    return n;
}

//  Kafka headers of event, or NULL (out of memory / refused, with err).
static rd_kafka_headers_t *s_headers(const proto_event_t *event, char *err, size_t errlen)
{
    size_t count = proto_event_header_count(event);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(count ? count : 1);
    if (!hdrs) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        proto_event_header(event, i, &name, &value);
        rd_kafka_resp_err_t rc = rd_kafka_header_add(hdrs, name, -1, value, -1);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "header %s: %s", name, rd_kafka_err2str(rc));
            rd_kafka_headers_destroy(hdrs);
            return NULL;
        }
    }
    return hdrs;
}

size_t publisher_events_produce(publisher_events_t *self, publisher_producer_t *producer,
                                tracer_t *tracer)
{
    size_t n = 0;
    while (self->count && self->inflight < PUBLISHER_EVENTS_INFLIGHT_MAX) {
        proto_event_t *event = self->ring[self->head];
        self->ring[self->head] = NULL;
        self->head = (self->head + 1) % self->cap;
        self->count--;
        char err[256];
        bool permanent = false;
        rd_kafka_headers_t *hdrs = s_headers(event, err, sizeof err);
        trace_span_t *span =
            hdrs ? publisher_trace_produce(tracer, hdrs, proto_event_topic(event)) : NULL;
        uint64_t seq = PUBLISHER_EVENT_SEQ_BIT | self->next_seq++;
        //  At most once: a produce that fails here is counted, not retried.
        if (!hdrs ||
            publisher_producer_send(producer, proto_event_topic(event), proto_event_key(event),
                                    proto_event_payload(event), proto_event_payload_len(event),
                                    hdrs, seq, &permanent, err, sizeof err) != 0) {
            self->failed++;
            s_problem(self, P_FAILED, err);
            trace_span_set_error(span, err);
        } else {
            self->inflight++;
            n++;
        }
        trace_span_end(&span);
        proto_event_destroy(&event);
    }
    return n;
}

void publisher_events_delivered(publisher_events_t *self, uint64_t seq, rd_kafka_resp_err_t err)
{
    (void)seq; //  events need no per-message bookkeeping, only the count
    if (self->inflight)
        self->inflight--;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        self->produced++;
        return;
    }
    self->failed++;
    s_problem(self, P_FAILED, rd_kafka_err2str(err));
}

publisher_events_stats_t publisher_events_stats(const publisher_events_t *self)
{
    return (publisher_events_stats_t){.received = self->received,
                                      .invalid = self->invalid,
                                      .dropped = self->dropped,
                                      .produced = self->produced,
                                      .failed = self->failed,
                                      .queued = self->count,
                                      .inflight = self->inflight};
}
