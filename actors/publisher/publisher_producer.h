/*  publisher_producer.h: the publisher's librdkafka producer.

    One idempotent producer (enable.idempotence=true, acks=all, linger 5 ms,
    murmur2 partitioning like the Java client, so keyed events land where
    other services expect them). Every message carries a caller-chosen
    sequence number; its delivery report comes back through the callback
    given to publisher_producer_new, on the caller's thread, from inside
    publisher_producer_poll. message.timeout.ms is set below the
    publisher's page deadline, so every message gets a report (delivered or
    failed) before the publisher gives up on its page.

    The producer never blocks: publisher_producer_fd is readable when
    reports or errors are waiting, for the actor's poll loop. Broker errors
    are remembered (publisher_producer_last_error) rather than logged: the
    actor logs state changes once, not every retry. librdkafka's own log
    lines go to log_debug (to log_error when critical).
*/
#ifndef RECSD_PUBLISHER_PRODUCER_H
#define RECSD_PUBLISHER_PRODUCER_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  How long librdkafka keeps trying one message before it reports failure.
#define PUBLISHER_MESSAGE_TIMEOUT_MS 5000

typedef struct publisher_producer_t publisher_producer_t;

//  Called once per produced message with its sequence number and outcome
//  (RD_KAFKA_RESP_ERR_NO_ERROR = acknowledged by all in-sync replicas).
typedef void(publisher_delivery_fn)(void *arg, uint64_t seq, rd_kafka_resp_err_t err);

//  Creates the producer for brokers ("host:port,..."), with the TLS/SASL
//  settings of security (kafka_security.h; NULL = plaintext). on_delivery
//  and arg are borrowed and must outlive the producer. Does not connect
//  yet (no broker needs to be up). Returns NULL with the reason in err.
publisher_producer_t *publisher_producer_new(const char *brokers, const config_t *security,
                                             publisher_delivery_fn *on_delivery, void *arg,
                                             char *err, size_t errlen);

//  Purges what was not sent yet (the outbox still has those rows), serves
//  the resulting reports, and frees. Does not wait for brokers. Idempotent.
void publisher_producer_destroy(publisher_producer_t **self_p);

//  A file descriptor that is readable when events are waiting (borrowed).
int publisher_producer_fd(publisher_producer_t *self);

//  Serves every waiting delivery report and error. Never blocks.
void publisher_producer_poll(publisher_producer_t *self);

//  Produces one message: value (value_len bytes) to topic, with key (NULL:
//  no key) and headers (taken: freed here whatever the outcome; may be
//  NULL). Returns 0 when queued (a report will follow), or -1 with the
//  reason in err and, in *permanent, whether the failure is permanent
//  (publisher_producer_permanent) (no report will follow).
int publisher_producer_send(publisher_producer_t *self, const char *topic, const char *key,
                            const char *value, size_t value_len, rd_kafka_headers_t *headers,
                            uint64_t seq, bool *permanent, char *err, size_t errlen);

//  True if a message that failed with err will fail the same way however
//  often it is sent again: the failure is the message's own, not the
//  cluster's state. Permanent: the message is over message.max.bytes
//  (locally or at the broker: MSG_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE),
//  the broker rejects the record (INVALID_RECORD) or the topic name
//  (TOPIC_EXCEPTION), the cluster's metadata says the topic does not exist
//  (__UNKNOWN_TOPIC: a topic named by mistake; an operator who creates it
//  replays the parked rows), or librdkafka refuses the arguments
//  (__INVALID_ARG, e.g. an empty topic name). Everything else is
//  transient: brokers down or timing out, queue full, leadership moving
//  (the broker-side UNKNOWN_TOPIC_OR_PART is among those: it is what a
//  partition being reassigned answers), authorisation (a cluster-wide
//  setting, fixed without touching the rows), and fatal producer errors
//  (rd_kafka_fatal_error: the idempotent producer's state is lost, a new
//  producer sends the row fine).
bool publisher_producer_permanent(rd_kafka_resp_err_t err);

//  True once librdkafka raised a fatal error: this instance can deliver
//  nothing more and must be destroyed and recreated.
bool publisher_producer_fatal(publisher_producer_t *self);

//  True while every broker is down (error callback), until a message is
//  delivered again.
bool publisher_producer_all_down(publisher_producer_t *self);

//  The most recent broker error text, "" if none yet. Borrowed.
const char *publisher_producer_last_error(publisher_producer_t *self);

#endif
