/*  publisher_producer.c: the publisher's idempotent librdkafka producer
    (see publisher_producer.h). */
#include "publisher_producer.h"

#include "kafka_security.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct publisher_producer_t {
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq; //  where reports and errors wait; wakes pipe_fd[1]
    int pipe_fd[2];
    publisher_delivery_fn *on_delivery;
    void *arg;
    bool fatal;
    bool all_down;
    char last_error[256];
};

//  librdkafka's log lines come from its own threads; log_write is safe to
//  call from any thread (one write(2) per line).
static void s_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk; //  callback signature; one producer per process
    log_write(level <= 2 ? LOG_LEVEL_ERROR : LOG_LEVEL_DEBUG, NULL, "rdkafka %s: %s", fac, buf);
}

static void s_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    publisher_producer_t *self = opaque;
    snprintf(self->last_error, sizeof self->last_error, "%s", reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        self->all_down = true;
    if (err == RD_KAFKA_RESP_ERR__FATAL && !self->fatal) {
        char why[200];
        rd_kafka_fatal_error(rk, why, sizeof why);
        snprintf(self->last_error, sizeof self->last_error, "fatal: %s", why);
        self->fatal = true;
    }
}

static void s_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    publisher_producer_t *self = opaque;
    //  last_error says why Kafka is unavailable: a message refused for
    //  itself (publisher_producer_permanent) tells nothing about that.
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        self->all_down = false;
    else if (msg->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
             msg->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT &&
             !publisher_producer_permanent(msg->err))
        snprintf(self->last_error, sizeof self->last_error, "%s", rd_kafka_err2str(msg->err));
    self->on_delivery(self->arg, (uint64_t)(uintptr_t)msg->_private, msg->err);
}

static int s_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                 size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka config %s=%s: %s", name, value, why);
        return -1;
    }
    return 0;
}

publisher_producer_t *publisher_producer_new(const char *brokers, const config_t *security,
                                             publisher_delivery_fn *on_delivery, void *arg,
                                             char *err, size_t errlen)
{
    publisher_producer_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pipe_fd[0] = self->pipe_fd[1] = -1;
    self->on_delivery = on_delivery;
    self->arg = arg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", PUBLISHER_MESSAGE_TIMEOUT_MS);
    if (!conf || kafka_security_apply(conf, security, err, errlen) != 0 ||
        s_set(conf, "bootstrap.servers", brokers, err, errlen) ||
        s_set(conf, "client.id", "recsd-publisher", err, errlen) ||
        s_set(conf, "enable.idempotence", "true", err, errlen) ||
        s_set(conf, "acks", "all", err, errlen) || s_set(conf, "linger.ms", "5", err, errlen) ||
        s_set(conf, "message.timeout.ms", timeout, err, errlen) ||
        s_set(conf, "partitioner", "murmur2_random", err, errlen) ||
        //  A page waits for its acks: Nagle + delayed ACK would add ~40 ms to each.
        s_set(conf, "socket.nagle.disable", "true", err, errlen) ||
        //  Reconnect back-off like the rest of the service: 100 ms doubling to 5 s.
        s_set(conf, "reconnect.backoff.ms", "100", err, errlen) ||
        s_set(conf, "reconnect.backoff.max.ms", "5000", err, errlen))
        goto err;
    rd_kafka_conf_set_opaque(conf, self);
    rd_kafka_conf_set_log_cb(conf, s_log);
    rd_kafka_conf_set_error_cb(conf, s_error);
    rd_kafka_conf_set_dr_msg_cb(conf, s_delivery);
    char why[512];
    self->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!self->rk) {
        snprintf(err, errlen, "cannot create the kafka producer: %s", why);
        goto err; //  conf is still ours
    }
    conf = NULL; //  rd_kafka_new took it
    if (pipe2(self->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto err;
    }
    self->mainq = rd_kafka_queue_get_main(self->rk);
    //  librdkafka writes a byte when the queue turns non-empty, so the
    //  actor's poll wakes for reports instead of polling on a timer.
    rd_kafka_queue_io_event_enable(self->mainq, self->pipe_fd[1], "r", 1);
    return self;
err:
    if (conf)
        rd_kafka_conf_destroy(conf);
    publisher_producer_destroy(&self);
    return NULL;
}

void publisher_producer_destroy(publisher_producer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    publisher_producer_t *self = *self_p;
    if (self->rk) {
        rd_kafka_purge(self->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(self->rk, 0);
    }
    if (self->mainq) {
        rd_kafka_queue_io_event_enable(self->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(self->mainq);
    }
    if (self->rk)
        rd_kafka_destroy(self->rk);
    for (int i = 0; i < 2; i++)
        if (self->pipe_fd[i] >= 0)
            close(self->pipe_fd[i]);
    free(self);
    *self_p = NULL;
}

int publisher_producer_fd(publisher_producer_t *self)
{
    return self->pipe_fd[0];
}

void publisher_producer_poll(publisher_producer_t *self)
{
    char buf[64];
    //  Emptying the pipe first: an event that arrives after this read
    //  writes a new byte, so none is missed.
    while (read(self->pipe_fd[0], buf, sizeof buf) > 0)
        ;
    rd_kafka_poll(self->rk, 0);
}

int publisher_producer_send(publisher_producer_t *self, const char *topic, const char *key,
                            const char *value, size_t value_len, rd_kafka_headers_t *headers,
                            uint64_t seq, bool *permanent, char *err, size_t errlen)
{
    //  The delivery report hands the sequence number back as the opaque.
    //  NOLINTNEXTLINE(performance-no-int-to-ptr): a number, never dereferenced
    void *opaque = (void *)(uintptr_t)seq;
    rd_kafka_resp_err_t rc = rd_kafka_producev(
        self->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, value_len),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        //  On failure the headers are still ours.
        if (headers)
            rd_kafka_headers_destroy(headers);
        snprintf(err, errlen, "%s", rd_kafka_err2str(rc));
        *permanent = publisher_producer_permanent(rc);
        return -1;
    }
    return 0;
}

bool publisher_producer_fatal(publisher_producer_t *self)
{
    return self->fatal;
}

bool publisher_producer_all_down(publisher_producer_t *self)
{
    return self->all_down;
}

const char *publisher_producer_last_error(publisher_producer_t *self)
{
    return self->last_error;
}

bool publisher_producer_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}
