/*  pg_pool.h: a small thread-safe pool of libpq connections.

    Threads that run short queries now and then (the gateway's HTTP
    threads) share at most `max` connections instead of opening one each.
    A connection is lent to one thread at a time (pg_pool_acquire) and
    given back (pg_pool_release); while lent it is the borrower's alone.

    - Connections are opened lazily, on an acquire that finds none idle
      and fewer than `max` open, so a pool can be made while PostgreSQL is
      down; connecting happens outside the pool's lock.
    - An acquire waits for a connection to come back, at most timeout_ms.
    - Broken connections never go back to a borrower: release drops a
      connection whose status is bad, that is busy, or whose transaction
      cannot be rolled back; acquire drops an idle connection whose server
      has hung up meanwhile (a restarted PostgreSQL), and opens a new one.
    - Every connection is opened with pg_conn_open (application_name
      "recsd-<app>") and gets statement_timeout, so no borrower can hold a
      connection on a slow query for longer than that.

    Ownership: the creator owns the pool. A PGconn from pg_pool_acquire
    belongs to the pool; the borrower must give it back with
    pg_pool_release before pg_pool_destroy, and must not PQfinish it.
*/
#ifndef RECSD_PG_POOL_H
#define RECSD_PG_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pg_pool_t pg_pool_t;

typedef struct {
    const char *dsn;          //  copied
    const char *app;          //  application_name suffix, copied (NULL: "pool")
    int max;                  //  connections at most (>= 1)
    int connect_timeout_s;    //  per connection attempt (<= 0: libpq's default)
    int statement_timeout_ms; //  set on every connection (0: no limit)
} pg_pool_config_t;

//  Makes a pool; connects nothing. Returns NULL if cfg is invalid (no
//  dsn, max < 1) or out of memory.
pg_pool_t *pg_pool_new(const pg_pool_config_t *cfg);

//  Closes every idle connection and frees the pool; idempotent, sets
//  *self_p to NULL. Every acquired connection must have been released.
void pg_pool_destroy(pg_pool_t **self_p);

//  Lends a connection: an idle one if any (checked to be alive), else a
//  new one if fewer than max are open, else waits up to timeout_ms for one
//  to be released (timeout_ms <= 0: do not wait). Returns the connection,
//  or NULL with the reason in err: the wait timed out, or connecting
//  failed (libpq's message, which names host and port, never a password).
//  Thread-safe.
PGconn *pg_pool_acquire(pg_pool_t *self, int timeout_ms, char *err, size_t errlen);

//  Gives *conn_p back and sets it to NULL (NULL *conn_p: nothing to do).
//  The connection is closed instead of kept if `broken` is true, if its
//  status is not CONNECTION_OK, or if a transaction left open cannot be
//  rolled back. Thread-safe; wakes one waiting acquire.
void pg_pool_release(pg_pool_t *self, PGconn **conn_p, bool broken);

//  Connections open right now (idle + lent) and idle ones. Thread-safe.
void pg_pool_stats(pg_pool_t *self, int *open, int *idle);

#endif
