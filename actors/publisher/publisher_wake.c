/*  publisher_wake.c: the publisher's LISTEN connection and idle poll
    period (see publisher_wake.h). */
#include "publisher_wake.h"

#include <czmq.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg_conn.h"

#define S_CONNECT_TIMEOUT_S 2
#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 5000

struct publisher_wake_t {
    char *dsn;
    int fallback_ms, degraded_ms;
    PGconn *conn; //  NULL while not listening
    int64_t next_connect;
    int backoff_ms;
    bool ever_connected;
    bool down_logged; //  "not listening" logged at warn; quiet until it is back
    uint64_t notifications;
};

publisher_wake_t *publisher_wake_new(const char *dsn, int fallback_ms, int degraded_ms)
{
    if (fallback_ms <= 0 || degraded_ms <= 0)
        return NULL;
    publisher_wake_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dsn = strdup(dsn ? dsn : "");
    self->fallback_ms = fallback_ms;
    self->degraded_ms = degraded_ms;
    self->backoff_ms = S_BACKOFF_MIN_MS;
    if (!self->dsn)
        publisher_wake_destroy(&self);
    return self;
}

void publisher_wake_destroy(publisher_wake_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    publisher_wake_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    free(self->dsn);
    free(self);
    *self_p = NULL;
}

int publisher_wake_socket(publisher_wake_t *self)
{
    return self->conn ? PQsocket(self->conn) : -1;
}

bool publisher_wake_listening(publisher_wake_t *self)
{
    return self->conn != NULL;
}

int publisher_wake_poll_ms(publisher_wake_t *self)
{
    return self->conn ? self->fallback_ms : self->degraded_ms;
}

int64_t publisher_wake_next_connect(publisher_wake_t *self)
{
    return self->conn ? INT64_MAX : self->next_connect;
}

uint64_t publisher_wake_notifications(publisher_wake_t *self)
{
    return self->notifications;
}

//  Schedules the next connect attempt and logs why (one line), at warn
//  once per outage.
static void s_down(publisher_wake_t *self, const char *why)
{
    int wait = self->backoff_ms;
    self->backoff_ms = wait * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : wait * 2;
    self->next_connect = zclock_mono() + wait;
    log_write(self->down_logged ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, NULL,
              "outbox notifications: %s; polling the outbox every %d ms, reconnecting in %d ms",
              why, self->degraded_ms, wait);
    self->down_logged = true;
}

static void s_lost(publisher_wake_t *self)
{
    char why[512];
    pg_conn_error_text(why, sizeof why, "LISTEN connection lost", self->conn, NULL);
    PQfinish(self->conn);
    self->conn = NULL;
    s_down(self, why);
}

//  Opens the connection and LISTENs. Returns true if listening now.
static bool s_connect(publisher_wake_t *self)
{
    char err[512];
    PGconn *conn =
        pg_conn_open(self->dsn, "publisher-listen", S_CONNECT_TIMEOUT_S, err, sizeof err);
    if (conn &&
        pg_conn_command(conn, "LISTEN " PUBLISHER_WAKE_CHANNEL, "LISTEN", err, sizeof err) == 0) {
        self->conn = conn;
        self->backoff_ms = S_BACKOFF_MIN_MS;
        if (self->down_logged || !self->ever_connected)
            log_info("outbox notifications: %s (LISTEN %s); idle poll every %d ms",
                     self->ever_connected ? "listening again" : "listening", PUBLISHER_WAKE_CHANNEL,
                     self->fallback_ms);
        self->ever_connected = true;
        self->down_logged = false;
        return true;
    }
    if (conn)
        PQfinish(conn);
    char why[600];
    snprintf(why, sizeof why, "cannot LISTEN: %s", err);
    s_down(self, why);
    return false;
}

bool publisher_wake_service(publisher_wake_t *self, bool may_connect)
{
    if (self->conn) {
        //  Never blocks: libpq's socket is non-blocking and nothing else
        //  runs on this connection.
        if (!PQconsumeInput(self->conn) || PQstatus(self->conn) != CONNECTION_OK) {
            s_lost(self);
            return false;
        }
        uint64_t before = self->notifications;
        PGnotify *note;
        while ((note = PQnotifies(self->conn))) {
            self->notifications++;
            PQfreemem(note);
        }
        return self->notifications != before;
    }
    if (!may_connect || zclock_mono() < self->next_connect)
        return false;
    //  Coming up asks for a claim: whatever was inserted while nobody
    //  listened was announced to no one.
    return s_connect(self);
}
