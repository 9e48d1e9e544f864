/*  pg_conn.h: opening PostgreSQL connections the same way everywhere.

    Every connection gets the same defaults: a connect timeout, an
    application_name "recsd-<app>" (visible in pg_stat_activity), client
    encoding UTF8, and a notice receiver that turns server NOTICE/WARNING
    messages into log lines (stderr stays JSON lines). Values given in the
    DSN itself, and libpq's PG* environment variables, take precedence over
    these defaults, so an operator can always override them.
*/
#ifndef RECSD_PG_CONN_H
#define RECSD_PG_CONN_H

#include <libpq-fe.h>
#include <stddef.h>

//  Connects to dsn (URI "postgresql://..." or "key=value ...") with a
//  connect timeout of timeout_s seconds (<= 0: libpq's default, no limit)
//  and application_name "recsd-<app>". Returns an open connection the
//  caller owns (PQfinish), or NULL with the reason in err.
PGconn *pg_conn_open(const char *dsn, const char *app, int timeout_s, char *err, size_t errlen);

//  True if the server at dsn accepts connections now (PQping-based, cheap:
//  does not authenticate or run a query).
int pg_conn_ping(const char *dsn, int timeout_s);

//  Bounds every later statement on conn to timeout_ms (0 = no limit), so a
//  caller whose loop must keep heartbeating cannot be held by a lock or a
//  slow query for longer. Returns 0, or -1 with the reason in err.
int pg_conn_statement_timeout(PGconn *conn, int timeout_ms, char *err, size_t errlen);

#endif
