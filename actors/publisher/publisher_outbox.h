/*  publisher_outbox.h: the publisher's side of public.outbox in PostgreSQL.

    Claiming. Several publishers (one per pod) may drain the same outbox.
    A page is claimed with SELECT ... FOR UPDATE SKIP LOCKED inside a
    transaction that stays open while the page is produced and its delivery
    reports arrive (bounded by the publisher's page deadline, ~10 s), and
    the same transaction sets published_at and commits. Chosen over a lease
    column because it needs no schema change and cleans up after itself: if
    the publisher dies (kill -9) or its connection drops, PostgreSQL aborts
    the transaction and the rows are free for the next claim at once, with
    no lease to expire. The cost is a transaction open for the length of a
    page (milliseconds when Kafka is healthy, at most the page deadline);
    idle_in_transaction_session_timeout (60 s) bounds it should the
    publisher hang without dying.

    If the connection is lost after Kafka acknowledged a page but before
    the commit, the publisher marks those ids again in a transaction of
    their own once it has reconnected (publisher_outbox_mark_start with
    in_claim false); until then, or if it dies first, the rows are
    unpublished and will be sent again: delivery is at-least-once.

    A row whose produce failed gets attempts + 1 and last_error in the same
    transaction that marks the page's delivered rows; a permanent failure
    also sets failed_at, which parks the row: the claim skips it from then
    on (migrations/006_outbox_attempts.sql), so one message Kafka will
    never take cannot hold up the rows behind it.

    Never blocks on a query: statements go out with PQsendQuery and the
    caller polls publisher_outbox_socket and calls publisher_outbox_service.
    Connecting does block, for at most the 2 s connect timeout
    (pg_conn_open has no non-blocking variant); a refused connection fails
    at once. Any failure closes the connection: the next connect starts
    clean, and the server rolls back whatever was open.
*/
#ifndef RECSD_PUBLISHER_OUTBOX_H
#define RECSD_PUBLISHER_OUTBOX_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct publisher_outbox_t publisher_outbox_t;

//  A row whose produce failed, for publisher_outbox_mark_start. reason is
//  borrowed for the call (NULL: none).
typedef struct {
    int64_t id;
    const char *reason;
    bool park; //  permanent: set failed_at so the claim skips the row from now on
} publisher_outbox_failure_t;

//  Columns of the result publisher_outbox_service returns for a claim.
enum { OUTBOX_COL_ID, OUTBOX_COL_TOPIC, OUTBOX_COL_KEY, OUTBOX_COL_PAYLOAD, OUTBOX_COL_HEADERS };

//  dsn is copied. Does not connect. Returns NULL if out of memory.
publisher_outbox_t *publisher_outbox_new(const char *dsn);

//  Closes the connection (rolling back an open claim); idempotent.
void publisher_outbox_destroy(publisher_outbox_t **self_p);

//  Connects (blocking, at most ~2 s). Returns 0, or -1 with the reason in err.
int publisher_outbox_connect(publisher_outbox_t *self, char *err, size_t errlen);

//  Closes the connection; the server rolls back an open claim.
void publisher_outbox_disconnect(publisher_outbox_t *self);

bool publisher_outbox_connected(publisher_outbox_t *self);

//  True while a statement is in flight.
bool publisher_outbox_busy(publisher_outbox_t *self);

//  The socket to poll for input while busy, or -1.
int publisher_outbox_socket(publisher_outbox_t *self);

//  Starts claiming up to limit unpublished, unparked rows, oldest first (opens the
//  claim transaction). The statement fails if it has not completed within
//  timeout_ms. Returns 0, or -1 with the reason in err (connection closed).
int publisher_outbox_claim_start(publisher_outbox_t *self, int limit, int timeout_ms, char *err,
                                 size_t errlen);

//  Starts setting published_at = now() on ids (count of them), and
//  recording the failed attempts (nfailures of them; see
//  publisher_outbox_failure_t). in_claim: inside the open claim
//  transaction, which this commits (nothing to do: just ends it);
//  otherwise a transaction of its own, for rows whose claim was lost
//  (nothing to do: does nothing). Returns 0, or -1 with the reason in err.
int publisher_outbox_mark_start(publisher_outbox_t *self, const int64_t *ids, size_t count,
                                const publisher_outbox_failure_t *failures, size_t nfailures,
                                bool in_claim, int timeout_ms, char *err, size_t errlen);

//  Advances the statement in flight; call when the socket is readable and
//  at least every 100 ms (for its deadline). Returns 0 while it runs, 1
//  when done, -1 if it failed (reason in err; the connection is closed).
//  When a claim is done, *rows gets its result, which the caller owns
//  (PQclear); otherwise *rows is NULL.
int publisher_outbox_service(publisher_outbox_t *self, PGresult **rows, char *err, size_t errlen);

#endif
