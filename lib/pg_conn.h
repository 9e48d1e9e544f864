/*  pg_conn.h: opening PostgreSQL connections the same way everywhere. */
#ifndef RECSD_PG_CONN_H
#define RECSD_PG_CONN_H

#include <libpq-fe.h>
#include <stddef.h>

//  Connects to dsn (URI or key=value) with a connect timeout of
//  timeout_s seconds and application_name "recsd-<app>". Returns an open
//  connection the caller owns (PQfinish), or NULL with the reason in err.
PGconn *pg_conn_open(const char *dsn, const char *app, int timeout_s, char *err, size_t errlen);

//  True if the server at dsn accepts connections now (PQping-based, cheap).
int pg_conn_ping(const char *dsn, int timeout_s);

#endif
