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

//  ---- running statements --------------------------------------------------
//  The helpers every store uses around its SQL. err may be NULL (nothing is
//  written); the text in it is always one line, without libpq's newlines.

//  What a failed statement said, for telling constraint violations apart.
typedef struct {
    char sqlstate[6];    //  "23505" ..., "" if the server sent none
    char constraint[64]; //  PG_DIAG_CONSTRAINT_NAME, "" if none
} pg_conn_diag_t;

//  Writes "what: <server message>" into err: res's error message if it has
//  one, else conn's (res may be NULL). Cannot fail.
void pg_conn_error_text(char *err, size_t errlen, const char *what, PGconn *conn,
                        const PGresult *res);

//  Runs sql with n text parameters (PQexecParams; one statement). Returns
//  the result, which the caller owns (PQclear), if its status is want;
//  else NULL with "what: <server message>" in err (the result is cleared).
PGresult *pg_conn_query(PGconn *conn, const char *sql, int n, const char *const *params,
                        ExecStatusType want, const char *what, char *err, size_t errlen);

//  pg_conn_query, and on failure the SQLSTATE and constraint name in *diag
//  (if not NULL; zeroed strings when there was no result at all).
PGresult *pg_conn_query_diag(PGconn *conn, const char *sql, int n, const char *const *params,
                             ExecStatusType want, const char *what, pg_conn_diag_t *diag, char *err,
                             size_t errlen);

//  Runs sql, without parameters, that returns no rows ("BEGIN", "COMMIT",
//  "LOCK ..."). Returns 0, or -1 with "what: <server message>" in err.
int pg_conn_command(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen);

//  Best effort after a failure: leaves conn outside any transaction, so the
//  next caller can use it. Reads away results still pending (a failed COPY),
//  then sends ROLLBACK if a transaction is open. A dead connection needs
//  nothing (the server rolled back). Cannot fail; the caller learns of a
//  broken connection from PQstatus / PQtransactionStatus.
void pg_conn_rollback(PGconn *conn);

#endif
