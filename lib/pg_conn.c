/*  pg_conn.c: libpq connections with recsd's defaults (see pg_conn.h). */
#include "pg_conn.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

//  Server notices (NOTICE, WARNING, ...) would otherwise go to stderr as
//  plain text, breaking the JSON-lines log.
static void s_notice(void *arg, const PGresult *res)
{
    (void)arg; //  receiver signature; no per-connection state needed
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    log_level_t level = LOG_LEVEL_INFO;
    if (severity && strcmp(severity, "WARNING") == 0)
        level = LOG_LEVEL_WARN;
    else if (severity && strncmp(severity, "DEBUG", 5) == 0)
        level = LOG_LEVEL_DEBUG;
    log_write(level, NULL, "postgres %s: %s", severity ? severity : "NOTICE",
              text ? text : "(no message)");
}

//  Copies libpq's message into err without its trailing newline(s).
static void s_set_err(char *err, size_t errlen, const char *prefix, const char *msg)
{
    if (!err || errlen == 0)
        return;
    snprintf(err, errlen, "%s%s", prefix, msg && *msg ? msg : "unknown error");
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r'))
        err[--n] = '\0';
    //  libpq's multi-line messages ("...failed: refused\n\tIs the server
    //  running...") read better as one log line.
    for (size_t i = 0; i < n; i++)
        if (err[i] == '\n' || err[i] == '\t')
            err[i] = ' ';
}

//  Fills the keyword/value arrays. Our defaults come first and dbname (the
//  expanded DSN) last: libpq keeps the last value of a repeated keyword, so
//  whatever the DSN says wins. fallback_application_name is the keyword
//  made for exactly this (used only if nothing else sets application_name).
static void s_params(const char *dsn, const char *app, int timeout_s, char *appname,
                     size_t appname_len, char *timeout, size_t timeout_len, const char *keys[6],
                     const char *values[6])
{
    snprintf(appname, appname_len, "recsd-%s", app && *app ? app : "unknown");
    int n = 0;
    keys[n] = "fallback_application_name";
    values[n++] = appname;
    keys[n] = "client_encoding";
    values[n++] = "UTF8";
    if (timeout_s > 0) {
        snprintf(timeout, timeout_len, "%d", timeout_s);
        keys[n] = "connect_timeout";
        values[n++] = timeout;
    }
    keys[n] = "dbname";
    values[n++] = dsn;
    keys[n] = NULL;
    values[n] = NULL;
}

PGconn *pg_conn_open(const char *dsn, const char *app, int timeout_s, char *err, size_t errlen)
{
    if (!dsn || !*dsn) {
        s_set_err(err, errlen, "", "no PostgreSQL DSN configured (RECSD_PG_DSN)");
        return NULL;
    }
    char appname[64], timeout[16];
    const char *keys[6], *values[6];
    s_params(dsn, app, timeout_s, appname, sizeof appname, timeout, sizeof timeout, keys, values);

    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        s_set_err(err, errlen, "", "out of memory allocating a PostgreSQL connection");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        s_set_err(err, errlen, "cannot connect to PostgreSQL: ", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeReceiver(conn, s_notice, NULL);
    return conn;
}

int pg_conn_ping(const char *dsn, int timeout_s)
{
    if (!dsn || !*dsn)
        return 0;
    char appname[64], timeout[16];
    const char *keys[6], *values[6];
    s_params(dsn, "ping", timeout_s, appname, sizeof appname, timeout, sizeof timeout, keys,
             values);
    return PQpingParams(keys, values, 1) == PQPING_OK;
}

int pg_conn_statement_timeout(PGconn *conn, int timeout_ms, char *err, size_t errlen)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", timeout_ms < 0 ? 0 : timeout_ms);
    PGresult *res = PQexec(conn, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0)
        s_set_err(err, errlen, "cannot set statement_timeout: ", PQerrorMessage(conn));
    PQclear(res);
    return rc;
}
