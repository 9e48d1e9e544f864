/*  publisher_wake.h: when the publisher claims the outbox next.

    Every transaction that inserts into public.outbox sends NOTIFY
    PUBLISHER_WAKE_CHANNEL at its commit (migrations/013_outbox_notify.sql,
    a statement-level trigger). This class holds a PostgreSQL connection of
    its own (a pg_listener, which does the connection handling;
    application_name "recsd-publisher-listen", so an operator can
    tell it from the claim connection) that LISTENs on that channel; the
    actor polls its socket in its loop and claims as soon as a notification
    arrives, instead of polling the outbox every 50 ms.

    The idle poll does not go away, it slows down: publisher_wake_poll_ms
    is fallback_ms while the LISTEN connection is up (a notification can
    only be missed around a reconnect, and each reconnect asks for a claim
    at once; the fallback bounds anything else, e.g. a trigger disabled by
    hand), and degraded_ms while it is down, so latency does not suffer
    then. A lost connection is re-opened with back-off (100 ms doubling to
    5 s), logged once when lost and once when back.

    The LISTEN connection never runs a statement after LISTEN, so reading
    it never blocks. Connecting does, for at most the 2 s connect timeout
    (pg_conn_open has no non-blocking variant); the caller decides when a
    connect may be tried (publisher_wake_service's may_connect).
*/
#ifndef RECSD_PUBLISHER_WAKE_H
#define RECSD_PUBLISHER_WAKE_H

#include <stdbool.h>
#include <stdint.h>

#define PUBLISHER_WAKE_CHANNEL "recsd_outbox"

typedef struct publisher_wake_t publisher_wake_t;

//  dsn is copied. fallback_ms: the idle poll while notifications are
//  heard; degraded_ms: while they are not (both > 0). Does not connect.
//  Returns NULL if out of memory or an interval is not positive.
publisher_wake_t *publisher_wake_new(const char *dsn, int fallback_ms, int degraded_ms);

//  Closes the connection, frees everything. Idempotent; sets *self_p = NULL.
void publisher_wake_destroy(publisher_wake_t **self_p);

//  The socket to poll for input, or -1 while not listening.
int publisher_wake_socket(publisher_wake_t *self);

//  Reads what the LISTEN connection received (call when its socket is
//  readable, or any time: it does not block), and, if may_connect and the
//  back-off allows, (re)connects and LISTENs. Returns true when the outbox
//  should be claimed at once: a notification arrived, or the connection
//  has just come up (inserts while it was down were not heard). Cannot
//  fail: a lost or refused connection is logged and retried.
bool publisher_wake_service(publisher_wake_t *self, bool may_connect);

//  True while the LISTEN connection is up.
bool publisher_wake_listening(publisher_wake_t *self);

//  The idle poll in force: fallback_ms while listening, else degraded_ms.
int publisher_wake_poll_ms(publisher_wake_t *self);

//  When a connect may next be tried (zclock_mono() ms; 0: now), or
//  INT64_MAX while listening. For the caller's poll timeout.
int64_t publisher_wake_next_connect(publisher_wake_t *self);

//  Notifications received so far (several folded into one read count as
//  they came). Cannot fail.
uint64_t publisher_wake_notifications(publisher_wake_t *self);

#endif
