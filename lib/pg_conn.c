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

//  libpq's multi-line messages ("...failed: refused\n\tIs the server
//  running...") read better as one log line: drops the trailing line
//  breaks and spaces, turns the inner ones (and tabs) into spaces.
static void s_one_line(char *text)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        text[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (text[i] == '\n' || text[i] == '\t' || text[i] == '\r')
            text[i] = ' ';
}

//  Copies libpq's message into err as one line.
static void s_set_err(char *err, size_t errlen, const char *prefix, const char *msg)
{
    if (!err || errlen == 0)
        return;
    snprintf(err, errlen, "%s%s", prefix, msg && *msg ? msg : "unknown error");
    s_one_line(err);
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

void pg_conn_error_text(char *err, size_t errlen, const char *what, PGconn *conn,
                        const PGresult *res)
{
    if (!err || errlen == 0)
        return;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = conn ? PQerrorMessage(conn) : NULL;
    snprintf(err, errlen, "%s: %s", what, msg && *msg ? msg : "unknown error");
    s_one_line(err);
}

PGresult *pg_conn_query_diag(PGconn *conn, const char *sql, int n, const char *const *params,
                             ExecStatusType want, const char *what, pg_conn_diag_t *diag, char *err,
                             size_t errlen)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == want)
        return res;
    if (diag) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
        snprintf(diag->sqlstate, sizeof diag->sqlstate, "%s", state ? state : "");
        snprintf(diag->constraint, sizeof diag->constraint, "%s", constraint ? constraint : "");
    }
    pg_conn_error_text(err, errlen, what, conn, res);
    PQclear(res);
    return NULL;
}

PGresult *pg_conn_query(PGconn *conn, const char *sql, int n, const char *const *params,
                        ExecStatusType want, const char *what, char *err, size_t errlen)
{
    return pg_conn_query_diag(conn, sql, n, params, want, what, NULL, err, errlen);
}

int pg_conn_command(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = pg_conn_query(conn, sql, 0, NULL, PGRES_COMMAND_OK, what, err, errlen);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

void pg_conn_rollback(PGconn *conn)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return;
    PGresult *res;
    //  Bounded: a lost connection makes libpq return an error, then NULL.
    for (int i = 0; i < 16 && (res = PQgetResult(conn)) != NULL; i++)
        PQclear(res);
    PGTransactionStatusType status = PQtransactionStatus(conn);
    if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR)
        PQclear(PQexec(conn, "ROLLBACK"));
}
