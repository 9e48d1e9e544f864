/*  gateway_ranker.h: the gateway's client for the ranker.

    A pool of DEALER sockets connected to the ranker's ROUTER endpoint.
    An HTTP thread takes a socket for the length of one call and puts it
    back; libzmq sockets may move between threads when the move is ordered
    by a mutex (a full memory barrier), which the pool's lock provides. The
    pool holds at most one socket per HTTP thread at rest.

    Socket options: ZMQ_IMMEDIATE=1 (a send with no ranker connected fails
    at once instead of queueing for a dead peer), ZMQ_LINGER=0,
    ZMQ_MAXMSGSIZE=PROTO_MAX_MESSAGE, small send/receive high-water marks.

    A call sends one PROTO_RECS_REQ whose envelope carries the request id
    and an absolute deadline, then polls until the reply with that request
    id comes or the deadline passes. Each DEALER has a libzmq socket
    monitor (an inproc PAIR) reporting disconnects; one seen during a call
    means a ranker died, and the request is re-sent once (see
    gateway_ranker_query). Replies with another id are late
    answers to earlier calls on the same socket and are dropped.

    Ownership: the gateway context owns the pool; HTTP threads borrow it
    for as long as the daemon runs. Destroy it after the daemon stopped.
*/
#ifndef RECSD_GATEWAY_RANKER_H
#define RECSD_GATEWAY_RANKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway_metrics.h"
#include "proto/proto.h"

typedef struct gateway_ranker_t gateway_ranker_t;

//  Creates the pool and pre-connects `sockets` DEALERs to endpoint (so the
//  first calls do not race the connection handshake). Returns NULL with the
//  reason in err on failure (bad endpoint, no memory).
gateway_ranker_t *gateway_ranker_new(const char *endpoint, int sockets, char *err, size_t errlen);

//  Closes every pooled socket; idempotent, sets *self_p to NULL. No call
//  may be running.
void gateway_ranker_destroy(gateway_ranker_t **self_p);

//  Asks for `limit` items for user_id, waiting at most deadline_ms. After
//  5 timeouts in a row the ranker is skipped for 1 s (circuit breaker):
//  calls then return GATEWAY_RANKER_UNAVAILABLE at once.
//  request_id goes into the envelope (must be 1..64 printable bytes).
//  Returns GATEWAY_RANKER_OK with *reply_p set to the PROTO_RECS_REP (caller
//  owns it, proto_msg_destroy); any other outcome leaves *reply_p NULL and
//  writes the reason to detail. Thread-safe.
gateway_ranker_outcome_t gateway_ranker_ask(gateway_ranker_t *self, const char *request_id,
                                            const char *user_id, int limit, int deadline_ms,
                                            proto_msg_t **reply_p, char *detail, size_t detaillen);

//  Like gateway_ranker_ask, with every RECS_REQ field from query (type,
//  exclude, explain; borrowed for the call). When a ranker connection
//  drops while the request is out (a ranker died, not one that is merely
//  slow: that keeps its connection), the request is sent once more, to a
//  live ranker, within what is left of the deadline.
gateway_ranker_outcome_t gateway_ranker_query(gateway_ranker_t *self, const char *request_id,
                                              const proto_recs_req_t *query, int deadline_ms,
                                              proto_msg_t **reply_p, char *detail,
                                              size_t detaillen);

//  gateway_ranker_query with the W3C trace context for the envelope's
//  header.traceparent (NULL or "": none): the ranker's spans join the
//  caller's trace. traceparent must be "00-<32 hex>-<16 hex>-<2 hex>"
//  (trace_ctx_format's form); anything else is sent as "".
gateway_ranker_outcome_t gateway_ranker_query_traced(gateway_ranker_t *self, const char *request_id,
                                                     const char *traceparent,
                                                     const proto_recs_req_t *query, int deadline_ms,
                                                     proto_msg_t **reply_p, char *detail,
                                                     size_t detaillen);

//  Requests re-sent after a ranker died (see gateway_ranker_query).
uint64_t gateway_ranker_retries(gateway_ranker_t *self);

//  Rate limiter for warnings about failed calls: returns true at most once
//  per interval_ms (and then *suppressed says how many were skipped since
//  the last true). Lock-free, thread-safe.
bool gateway_ranker_warn_due(gateway_ranker_t *self, int interval_ms, uint64_t *suppressed);

#endif
