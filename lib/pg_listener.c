/*  pg_listener.c: a PostgreSQL connection that LISTENs, for a poll loop
    (see pg_listener.h). */
#include "pg_listener.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "pg_conn.h"

struct pg_listener_t {
    char *dsn;
    char *app;
    char *channels[PG_LISTENER_CHANNELS_MAX];
    int n_channels;
    pg_listener_options_t opts;
    PGconn *conn; //  NULL while not connected
    int64_t next_connect;
    int backoff_ms;     //  the wait after the next failure
    bool outage_logged; //  a failure since the last connect was reported
    bool dropped;       //  pg_listener_drop closed it: pending is the next event
    pg_listener_event_t pending;
    uint64_t notifications, connects;
    uint64_t channel_notifications[PG_LISTENER_CHANNELS_MAX];
};

pg_listener_t *pg_listener_new(const char *dsn, const char *app, const char *const *channels,
                               int n_channels, const pg_listener_options_t *opts)
{
    if (!dsn || !app || !channels || n_channels < 1 || n_channels > PG_LISTENER_CHANNELS_MAX)
        return NULL;
    for (int i = 0; i < n_channels; i++)
        if (!channels[i] || !*channels[i] || strlen(channels[i]) > PG_LISTENER_CHANNEL_MAX)
            return NULL;
    pg_listener_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (opts)
        self->opts = *opts;
    if (self->opts.connect_timeout_s <= 0)
        self->opts.connect_timeout_s = 2;
    if (self->opts.backoff_min_ms <= 0)
        self->opts.backoff_min_ms = 100;
    if (self->opts.backoff_max_ms <= 0)
        self->opts.backoff_max_ms = 5000;
    if (self->opts.backoff_max_ms < self->opts.backoff_min_ms)
        self->opts.backoff_max_ms = self->opts.backoff_min_ms;
    self->backoff_ms = self->opts.backoff_min_ms;
    self->n_channels = n_channels;
    bool ok = (self->dsn = strdup(dsn)) && (self->app = strdup(app));
    for (int i = 0; ok && i < n_channels; i++)
        ok = (self->channels[i] = strdup(channels[i])) != NULL;
    if (!ok)
        pg_listener_destroy(&self);
    return self;
}

void pg_listener_destroy(pg_listener_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pg_listener_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    for (int i = 0; i < self->n_channels; i++)
        free(self->channels[i]);
    free(self->app);
    free(self->dsn);
    free(self);
    *self_p = NULL;
}

int pg_listener_socket(pg_listener_t *self)
{
    return self->conn ? PQsocket(self->conn) : -1;
}

PGconn *pg_listener_conn(pg_listener_t *self)
{
    return self->conn;
}

bool pg_listener_connected(pg_listener_t *self)
{
    return self->conn != NULL;
}

int64_t pg_listener_next_connect(pg_listener_t *self)
{
    return self->conn ? INT64_MAX : self->next_connect;
}

uint64_t pg_listener_notifications(pg_listener_t *self)
{
    return self->notifications;
}

uint64_t pg_listener_channel_notifications(pg_listener_t *self, int channel)
{
    return channel >= 0 && channel < self->n_channels ? self->channel_notifications[channel] : 0;
}

uint64_t pg_listener_connects(pg_listener_t *self)
{
    return self->connects;
}

//  Schedules the next connect attempt after a failure and says so in ev.
static void s_down(pg_listener_t *self, pg_listener_event_t *ev)
{
    int wait = self->backoff_ms;
    self->backoff_ms = wait > self->opts.backoff_max_ms / 2 ? self->opts.backoff_max_ms : wait * 2;
    self->next_connect = zclock_mono() + wait;
    ev->retry_ms = wait;
    ev->outage_start = !self->outage_logged;
    self->outage_logged = true;
}

//  LISTENs on every channel. Returns 0, or -1 with the reason in err.
static int s_listen(pg_listener_t *self, PGconn *conn, char *err, size_t errlen)
{
    for (int i = 0; i < self->n_channels; i++) {
        //  Quoted: the name is matched as given, like pg_notify's argument.
        char *name = PQescapeIdentifier(conn, self->channels[i], strlen(self->channels[i]));
        if (!name) {
            pg_conn_error_text(err, errlen, "LISTEN", conn, NULL);
            return -1;
        }
        char sql[16 + 2 * PG_LISTENER_CHANNEL_MAX + 8];
        snprintf(sql, sizeof sql, "LISTEN %s", name);
        PQfreemem(name);
        if (pg_conn_command(conn, sql, "LISTEN", err, errlen) != 0)
            return -1;
    }
    return 0;
}

static void s_connect(pg_listener_t *self, pg_listener_event_t *ev)
{
    char err[sizeof ev->error];
    PGconn *conn =
        pg_conn_open(self->dsn, self->app, self->opts.connect_timeout_s, err, sizeof err);
    if (conn &&
        (self->opts.statement_timeout_ms <= 0 ||
         pg_conn_statement_timeout(conn, self->opts.statement_timeout_ms, err, sizeof err) == 0) &&
        s_listen(self, conn, err, sizeof err) == 0) {
        self->conn = conn;
        self->connects++;
        self->backoff_ms = self->opts.backoff_min_ms;
        self->outage_logged = false;
        ev->connected = true;
        return;
    }
    if (conn)
        PQfinish(conn);
    err[strcspn(err, "\n")] = '\0';
    snprintf(ev->error, sizeof ev->error, "%s", err);
    ev->connect_failed = true;
    s_down(self, ev);
}

//  Closes the connection; why may be NULL: libpq's last error.
static void s_lost(pg_listener_t *self, pg_listener_event_t *ev, const char *why)
{
    if (why) {
        snprintf(ev->error, sizeof ev->error, "connection lost: %s", why);
        ev->error[strcspn(ev->error, "\n")] = '\0';
    } else
        pg_conn_error_text(ev->error, sizeof ev->error, "connection lost", self->conn, NULL);
    PQfinish(self->conn);
    self->conn = NULL;
    ev->lost = true;
    s_down(self, ev);
}

//  Takes every notification waiting in libpq.
static void s_drain(pg_listener_t *self, pg_listener_event_t *ev)
{
    PGnotify *note;
    while ((note = PQnotifies(self->conn))) {
        int channel = -1;
        for (int i = 0; i < self->n_channels && channel < 0; i++)
            if (strcmp(note->relname, self->channels[i]) == 0)
                channel = i;
        //  Only our channels are listened to; anything else is ignored.
        if (channel >= 0) {
            ev->notified |= UINT32_C(1) << channel;
            ev->notifications++;
            ev->last_channel = channel;
            snprintf(ev->last_payload, sizeof ev->last_payload, "%s",
                     note->extra ? note->extra : "");
            self->notifications++;
            self->channel_notifications[channel]++;
            if (self->opts.on_notify)
                self->opts.on_notify(self->opts.on_notify_arg, self->channels[channel],
                                     note->extra ? note->extra : "");
        }
        PQfreemem(note);
    }
}

bool pg_listener_service(pg_listener_t *self, bool may_connect, pg_listener_event_t *ev)
{
    pg_listener_event_t scratch;
    if (!ev)
        ev = &scratch;
    memset(ev, 0, sizeof *ev);
    ev->last_channel = -1;
    if (self->dropped) {
        *ev = self->pending;
        self->dropped = false;
        return false;
    }
    if (!self->conn) {
        if (!may_connect || zclock_mono() < self->next_connect)
            return false;
        s_connect(self, ev);
        if (!self->conn)
            return false;
    }
    //  Never blocks: nothing but the caller's finished statements runs on
    //  this connection, so there is nothing to send, and libpq reads
    //  without blocking. A statement that failed may have left the
    //  connection broken: that counts as lost too.
    if (PQstatus(self->conn) != CONNECTION_OK || !PQconsumeInput(self->conn) ||
        PQstatus(self->conn) != CONNECTION_OK) {
        ev->connected = false; //  lost again at once: report the loss only
        s_lost(self, ev, NULL);
        return false;
    }
    s_drain(self, ev);
    return ev->connected || ev->notified != 0;
}

void pg_listener_drop(pg_listener_t *self, const char *why)
{
    if (!self->conn)
        return;
    memset(&self->pending, 0, sizeof self->pending);
    self->pending.last_channel = -1;
    s_lost(self, &self->pending, why);
    self->dropped = true;
}
