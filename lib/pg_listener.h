/*  pg_listener.h: a PostgreSQL connection that LISTENs, for a poll loop.

    Several threads learn of database changes by LISTEN: they open a
    connection of their own, LISTEN on one or more channels, poll its
    socket next to their other sockets, take the notifications, notice
    when the connection is lost, re-open it with back-off, and load
    everything again after a reconnect, because a NOTIFY sent while
    nobody listened is lost. This class is that connection.

    pg_listener_service does the work: it reads what arrived (it never
    blocks on reading: libpq's socket is non-blocking), drops a broken
    connection, and, when the caller allows it and the back-off has
    passed, connects and LISTENs. Connecting blocks for up to the connect
    timeout (pg_conn_open has no non-blocking variant), which is why the
    caller decides when it may happen (may_connect). It reports what
    happened in a pg_listener_event_t; it logs nothing, so each caller
    keeps its own words for "lost" and "back".

    The back-off between connect attempts starts at backoff_min_ms after a
    loss or a failed attempt, doubles with each failed attempt up to
    backoff_max_ms, and is back to backoff_min_ms once connected.

    The connection may also carry the caller's own statements
    (pg_listener_conn): loaders query on the connection they listen on.
    A statement reads whatever the server sent, notifications included, so
    they then wait inside libpq and the socket does not become readable for
    them: call pg_listener_service after a statement to take them. A
    statement that found the connection broken leaves it so; the next
    service reports it lost.

    Thread-safety: none; one thread uses an instance (libpq's rule for a
    connection).
*/
#ifndef RECSD_PG_LISTENER_H
#define RECSD_PG_LISTENER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define PG_LISTENER_CHANNELS_MAX 32 //  one bit each in notified
#define PG_LISTENER_CHANNEL_MAX 63  //  bytes: PostgreSQL's identifier limit
#define PG_LISTENER_PAYLOAD_MAX 256 //  bytes kept of the last payload, with the NUL

typedef struct pg_listener_t pg_listener_t;

typedef struct {
    int connect_timeout_s;    //  per connect attempt; <= 0: 2
    int statement_timeout_ms; //  set on each new connection; <= 0: none
    int backoff_min_ms;       //  <= 0: 100
    int backoff_max_ms;       //  <= 0: 5000 (raised to backoff_min_ms if below)
    //  Called with each notification of a listened channel as
    //  pg_listener_service takes it (the event keeps only the last one),
    //  e.g. to log every one at debug; NULL: none. channel and payload are
    //  borrowed for the call.
    void (*on_notify)(void *arg, const char *channel, const char *payload);
    void *on_notify_arg;
} pg_listener_options_t;

//  What one pg_listener_service call saw. notified and connected may both
//  be set (notifications that came in with the connection); lost and
//  connect_failed exclude the others.
typedef struct {
    uint32_t notified;                          //  bit i: channels[i] was notified at least once
    int notifications;                          //  how many notifications this call took
    int last_channel;                           //  the channel index of the last one, -1 if none
    char last_payload[PG_LISTENER_PAYLOAD_MAX]; //  its payload, truncated; "" if none
    bool connected;                             //  has just connected and LISTENs: resynchronise,
                                                //  notifications sent while down were missed
    bool lost;                                  //  the connection was up and has just been lost
    bool connect_failed;                        //  a connect attempt has just failed
    bool outage_start;                          //  with lost or connect_failed: the first failure
                                                //  since the listener was last up (or created)
    int retry_ms;                               //  with lost or connect_failed: the next attempt in
    char error[512];                            //  with lost or connect_failed: why, one line
} pg_listener_event_t;

//  A listener for the n_channels (1..PG_LISTENER_CHANNELS_MAX) channels,
//  connecting to dsn with application_name "recsd-<app>" (pg_conn_open).
//  dsn, app and the channel names are copied; a channel name is
//  case-sensitive (it is quoted: "LISTEN \"name\""), 1..63 bytes. opts may
//  be NULL (every default). Does not connect. Returns NULL if out of
//  memory or an argument is bad.
pg_listener_t *pg_listener_new(const char *dsn, const char *app, const char *const *channels,
                               int n_channels, const pg_listener_options_t *opts);

//  Closes the connection, frees everything. Idempotent; sets *self_p = NULL.
void pg_listener_destroy(pg_listener_t **self_p);

//  Reads what the connection received, and if may_connect and the
//  back-off allows, connects and LISTENs (blocking up to the connect
//  timeout). Fills *ev (may be NULL) with what happened. Returns true if
//  the caller has something to do: a notification arrived or the
//  connection has just come up. Cannot fail: a lost or refused connection
//  is reported in ev and retried on a later call.
bool pg_listener_service(pg_listener_t *self, bool may_connect, pg_listener_event_t *ev);

//  Closes the connection at once, when a statement on it failed in a way
//  the caller does not trust it after (a timeout, a protocol error): the
//  next service call reports it lost, with "connection lost: <why>" (why
//  may be NULL: libpq's last error), and the reconnect is scheduled as
//  for any loss. Nothing if not connected. Cannot fail.
void pg_listener_drop(pg_listener_t *self, const char *why);

//  The socket to poll for input, or -1 while not connected.
int pg_listener_socket(pg_listener_t *self);

//  The connection, borrowed, for the caller's own statements between two
//  service calls (leave it outside any transaction; do not close it), or
//  NULL while not connected. A service call may close it: do not keep it
//  across one.
PGconn *pg_listener_conn(pg_listener_t *self);

//  True while connected and listening (a broken connection counts until a
//  service call notices).
bool pg_listener_connected(pg_listener_t *self);

//  When a connect may next be tried (zclock_mono() ms; 0: now), or
//  INT64_MAX while connected. For the caller's poll timeout.
int64_t pg_listener_next_connect(pg_listener_t *self);

//  Notifications taken so far, on every channel or on channels[channel]
//  (0 for an index out of range). Cannot fail.
uint64_t pg_listener_notifications(pg_listener_t *self);
uint64_t pg_listener_channel_notifications(pg_listener_t *self, int channel);

//  Successful connects so far (1 after the first). Cannot fail.
uint64_t pg_listener_connects(pg_listener_t *self);

#endif
