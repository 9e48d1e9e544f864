/*  pg_pool.c: a bounded, thread-safe libpq connection pool (see pg_pool.h). */
#include "pg_pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg_conn.h"

struct pg_pool_t {
    char *dsn;
    char *app;
    int max;
    int connect_timeout_s;
    int statement_timeout_ms;

    pthread_mutex_t lock;
    pthread_cond_t returned; //  signalled when a connection or a slot frees up
    //  Under lock:
    PGconn **idle; //  stack of idle connections, capacity max
    int idle_count;
    int open; //  idle + lent + being opened
};

pg_pool_t *pg_pool_new(const pg_pool_config_t *cfg)
{
    if (!cfg || !cfg->dsn || !*cfg->dsn || cfg->max < 1)
        return NULL;
    pg_pool_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dsn = strdup(cfg->dsn);
    self->app = strdup(cfg->app && *cfg->app ? cfg->app : "pool");
    self->idle = calloc((size_t)cfg->max, sizeof(PGconn *));
    self->max = cfg->max;
    self->connect_timeout_s = cfg->connect_timeout_s;
    self->statement_timeout_ms = cfg->statement_timeout_ms;
    if (!self->dsn || !self->app || !self->idle)
        goto err;
    //  Waits are timed on the monotonic clock: a wall-clock step (NTP)
    //  must not make an acquire wait an hour or not at all.
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        goto err;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&self->returned, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        goto err;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        pthread_cond_destroy(&self->returned);
        goto err;
    }
    return self;
err:
    free(self->dsn);
    free(self->app);
    free(self->idle);
    free(self);
    return NULL;
}

void pg_pool_destroy(pg_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pg_pool_t *self = *self_p;
    pthread_mutex_lock(&self->lock);
    for (int i = 0; i < self->idle_count; i++)
        PQfinish(self->idle[i]);
    int lent = self->open - self->idle_count;
    pthread_mutex_unlock(&self->lock);
    if (lent > 0)
        //  A borrower still holds a connection: a bug in the caller. Its
        //  connection leaks rather than being closed under it.
        log_error("pg_pool: destroyed with %d connections still lent", lent);
    pthread_cond_destroy(&self->returned);
    pthread_mutex_destroy(&self->lock);
    free(self->idle);
    free(self->dsn);
    free(self->app);
    free(self);
    *self_p = NULL;
}

//  True if an idle connection is still usable. An idle connection has no
//  reason to receive anything but the odd NOTIFY or parameter report; if
//  its socket is readable, read what came: a server that shut down (or
//  was restarted) has sent its FATAL message and closed, which libpq then
//  reports as CONNECTION_BAD. Costs one poll(2) with a zero timeout.
static bool s_alive(PGconn *conn)
{
    //  A terminated session sends its FATAL message and then closes; one
    //  read may return the message alone, so read until nothing is left
    //  (bounded: a chatty server cannot keep us here).
    for (int reads = 0; reads < 8; reads++) {
        if (PQstatus(conn) != CONNECTION_OK)
            return false;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (pfd.fd < 0)
            return false;
        int rc = poll(&pfd, 1, 0);
        if (rc < 0)
            return errno == EINTR; //  cannot tell; let the query find out
        if (rc == 0)
            break;
        if (pfd.revents & (POLLERR | POLLNVAL))
            return false;
        if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
            return false;
    }
    //  Discard what arrived (notifications nobody listens for on a pool).
    PGnotify *note;
    while ((note = PQnotifies(conn)))
        PQfreemem(note);
    return PQtransactionStatus(conn) == PQTRANS_IDLE;
}

static PGconn *s_open(pg_pool_t *self, char *err, size_t errlen)
{
    PGconn *conn = pg_conn_open(self->dsn, self->app, self->connect_timeout_s, err, errlen);
    if (!conn)
        return NULL;
    if (self->statement_timeout_ms > 0 &&
        pg_conn_statement_timeout(conn, self->statement_timeout_ms, err, errlen) != 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static void s_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

PGconn *pg_pool_acquire(pg_pool_t *self, int timeout_ms, char *err, size_t errlen)
{
    struct timespec deadline;
    s_deadline(&deadline, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (self->idle_count > 0) {
            PGconn *conn = self->idle[--self->idle_count];
            if (s_alive(conn)) {
                pthread_mutex_unlock(&self->lock);
                return conn;
            }
            //  Dead while idle (server restarted): drop it, try the next.
            PQfinish(conn);
            self->open--;
        }
        if (self->open < self->max) {
            //  Reserve the slot, connect without the lock (it may take up
            //  to the connect timeout), give the slot back on failure.
            self->open++;
            pthread_mutex_unlock(&self->lock);
            PGconn *conn = s_open(self, err, errlen);
            if (conn)
                return conn;
            pthread_mutex_lock(&self->lock);
            self->open--;
            pthread_cond_signal(&self->returned);
            pthread_mutex_unlock(&self->lock);
            return NULL;
        }
        if (timeout_ms <= 0 ||
            pthread_cond_timedwait(&self->returned, &self->lock, &deadline) == ETIMEDOUT) {
            //  One last look: a release may have raced the timeout.
            if (self->idle_count > 0 || self->open < self->max)
                continue;
            pthread_mutex_unlock(&self->lock);
            snprintf(err, errlen, "no PostgreSQL connection free within %d ms (all %d in use)",
                     timeout_ms > 0 ? timeout_ms : 0, self->max);
            return NULL;
        }
    }
}

//  Readies a returned connection for the next borrower. False if it must
//  be closed instead.
static bool s_reusable(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return false;
    switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE:
        return true;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR: {
        //  A borrower that bailed out mid-transaction: the next one must
        //  not inherit its open transaction (or its locks).
        PGresult *res = PQexec(conn, "ROLLBACK");
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        return ok && PQtransactionStatus(conn) == PQTRANS_IDLE;
    }
    default: //  a query still running (PQTRANS_ACTIVE) or unknown
        return false;
    }
}

void pg_pool_release(pg_pool_t *self, PGconn **conn_p, bool broken)
{
    if (!conn_p || !*conn_p)
        return;
    PGconn *conn = *conn_p;
    *conn_p = NULL;
    bool keep = !broken && s_reusable(conn);
    if (!keep)
        PQfinish(conn); //  outside the lock: it may send a Terminate message
    pthread_mutex_lock(&self->lock);
    if (keep && self->idle_count < self->max)
        self->idle[self->idle_count++] = conn;
    else {
        if (keep) //  cannot happen (at most max are open); do not leak it
            PQfinish(conn);
        self->open--;
    }
    pthread_cond_signal(&self->returned);
    pthread_mutex_unlock(&self->lock);
}

void pg_pool_stats(pg_pool_t *self, int *open, int *idle)
{
    pthread_mutex_lock(&self->lock);
    if (open)
        *open = self->open;
    if (idle)
        *idle = self->idle_count;
    pthread_mutex_unlock(&self->lock);
}
