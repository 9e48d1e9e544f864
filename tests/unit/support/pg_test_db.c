/*  pg_test_db.c: a throw-away PostgreSQL database per unit test (see the
    header). Shared by every test that needs a real PostgreSQL.
*/
#include "pg_test_db.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "pg_conn.h"

struct pg_test_db_t {
    char name[64];                         //  recsd_test_<random>
    char *admin_dsn;                       //  copy of RECSD_PG_DSN, for the drop
    char source_dir[CONFIG_PATH_MAX - 16]; //  room for "/migrations"
    config_t cfg;
};

//  The source tree: RECSD_SOURCE_DIR if set, else where this file was built
//  from. Returns 0, or -1 with the reason in err.
static int s_source_dir(char *buf, size_t len, char *err, size_t errlen)
{
    const char *env = getenv("RECSD_SOURCE_DIR");
    if (env && *env) {
        if ((size_t)snprintf(buf, len, "%s", env) >= len)
            goto too_long;
        return 0;
    }
    //  CMake compiles with absolute paths; failing that, the compiled-in
    //  migrations dir is <source>/migrations in a developer build.
    if ((size_t)snprintf(buf, len, "%s", __FILE__) >= len)
        goto too_long;
    char *cut = strstr(buf, "/tests/unit/");
    if (buf[0] != '/' || !cut) {
        if ((size_t)snprintf(buf, len, "%s", RECSD_DEFAULT_MIGRATIONS_DIR) >= len)
            goto too_long;
        cut = strrchr(buf, '/');
    }
    if (!cut) {
        snprintf(err, errlen, "cannot find the source dir; set RECSD_SOURCE_DIR");
        return -1;
    }
    *cut = '\0';
    return 0;
too_long:
    snprintf(err, errlen, "source dir path too long; set a shorter RECSD_SOURCE_DIR");
    return -1;
}

//  Appends key='value' to the conninfo in buf, quoted as libpq expects.
//  Returns 0, or -1 if it does not fit (buf is then unusable).
static int s_conninfo_add(char *buf, size_t len, const char *key, const char *value)
{
    size_t n = strlen(buf);
    int head = snprintf(buf + n, len - n, "%s%s='", n ? " " : "", key);
    if (head < 0 || (size_t)head >= len - n)
        return -1;
    n += (size_t)head;
    for (const char *p = value; *p; p++) {
        if (n + 4 > len) //  an escaped character, the quote and the NUL
            return -1;
        if (*p == '\'' || *p == '\\')
            buf[n++] = '\\';
        buf[n++] = *p;
    }
    if (n + 2 > len)
        return -1;
    buf[n++] = '\'';
    buf[n] = '\0';
    return 0;
}

//  Fills cfg.pg_dsn: same server, user and options as the admin connection
//  (URI or key=value), another database. Rebuilt from what libpq resolved,
//  minus the identity pg_conn_open added for the admin connection.
static int s_test_dsn(pg_test_db_t *self, PGconn *admin, char *err, size_t errlen)
{
    PQconninfoOption *options = PQconninfo(admin);
    if (!options) {
        snprintf(err, errlen, "PQconninfo: out of memory");
        return -1;
    }
    const char *skip[] = {"dbname", "application_name", "fallback_application_name",
                          "client_encoding"};
    char *dsn = self->cfg.pg_dsn;
    size_t len = sizeof self->cfg.pg_dsn;
    dsn[0] = '\0';
    int rc = 0;
    for (PQconninfoOption *o = options; rc == 0 && o->keyword; o++) {
        bool wanted = o->val && *o->val;
        for (size_t i = 0; wanted && i < sizeof skip / sizeof *skip; i++)
            wanted = strcmp(o->keyword, skip[i]) != 0;
        if (wanted)
            rc = s_conninfo_add(dsn, len, o->keyword, o->val);
    }
    PQconninfoFree(options);
    if (rc == 0)
        rc = s_conninfo_add(dsn, len, "dbname", self->name);
    if (rc != 0)
        snprintf(err, errlen, "the test database's conninfo is longer than %zu bytes", len);
    return rc;
}

static int s_random_name(char *buf, size_t len, char *err, size_t errlen)
{
    unsigned char random[8];
    FILE *urandom = fopen("/dev/urandom", "rb");
    bool ok = urandom && fread(random, 1, sizeof random, urandom) == sizeof random;
    if (urandom)
        fclose(urandom);
    if (!ok) {
        snprintf(err, errlen, "cannot read /dev/urandom");
        return -1;
    }
    int n = snprintf(buf, len, "recsd_test_");
    for (size_t i = 0; i < sizeof random; i++)
        n += snprintf(buf + n, len - (size_t)n, "%02x", random[i]);
    return 0;
}

pg_test_db_t *pg_test_db_new(char *err, size_t errlen)
{
    PGconn *admin = NULL;
    pg_test_db_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *admin_dsn = getenv("RECSD_PG_DSN");
    if (!admin_dsn || !*admin_dsn) {
        snprintf(err, errlen,
                 "RECSD_PG_DSN is not set: these tests need a real PostgreSQL server "
                 "where they may CREATE DATABASE (e.g. postgresql://recsd@127.0.0.1:57500/recsd)");
        goto err;
    }
    self->admin_dsn = strdup(admin_dsn);
    if (!self->admin_dsn) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (config_load(&self->cfg, err, errlen) != 0)
        goto err;
    if (s_source_dir(self->source_dir, sizeof self->source_dir, err, errlen) != 0)
        goto err;
    if (getenv("RECSD_SOURCE_DIR"))
        snprintf(self->cfg.migrations_dir, sizeof self->cfg.migrations_dir, "%s/migrations",
                 self->source_dir);
    else
        snprintf(self->cfg.migrations_dir, sizeof self->cfg.migrations_dir, "%s",
                 RECSD_DEFAULT_MIGRATIONS_DIR);
    if (s_random_name(self->name, sizeof self->name, err, errlen) != 0)
        goto err;
    admin = pg_conn_open(self->admin_dsn, "test", 10, err, errlen);
    if (!admin)
        goto err;
    if (s_test_dsn(self, admin, err, errlen) != 0)
        goto err;

    //  Last: from here on the database exists and only destroy removes it.
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", self->name);
    PGresult *res = PQexec(admin, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    if (!ok)
        goto err;
    PQfinish(admin);
    return self;
err:
    PQfinish(admin);
    free(self->admin_dsn);
    free(self);
    return NULL;
}

pg_test_db_t *pg_test_db_new_migrated(char *err, size_t errlen)
{
    pg_test_db_t *self = pg_test_db_new(err, errlen);
    if (self && migrate_run(&self->cfg) != 0) {
        snprintf(err, errlen, "migrations of %s failed (see the log above)", self->name);
        pg_test_db_destroy(&self);
    }
    return self;
}

void pg_test_db_destroy(pg_test_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pg_test_db_t *self = *self_p;
    char err[512];
    PGconn *admin = pg_conn_open(self->admin_dsn, "test", 10, err, sizeof err);
    if (admin) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", self->name);
        PGresult *res = PQexec(admin, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fprintf(stderr, "cannot drop %s: %s", self->name, PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(admin);
    } else
        fprintf(stderr, "cannot drop %s: %s\n", self->name, err);
    free(self->admin_dsn);
    free(self);
    *self_p = NULL;
}

config_t *pg_test_db_config(pg_test_db_t *self)
{
    return &self->cfg;
}

const char *pg_test_db_name(pg_test_db_t *self)
{
    return self->name;
}

const char *pg_test_db_source_dir(pg_test_db_t *self)
{
    return self->source_dir;
}

PGconn *pg_test_db_connect(pg_test_db_t *self)
{
    char err[512];
    PGconn *conn = pg_conn_open(self->cfg.pg_dsn, "test", 10, err, sizeof err);
    cr_assert(conn, "%s", err);
    return conn;
}

void pg_test_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(res);
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
    PQclear(res);
    cr_assert(ok, "%s: %s", sql, msg);
}

long pg_test_scalar(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
    long value = ok ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    cr_assert(ok, "%s: %s", sql, msg);
    return value;
}

const char *pg_test_text(PGconn *conn, const char *sql, char *buf, size_t len)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok)
        snprintf(buf, len, "%s", PQgetisnull(res, 0, 0) ? "<NULL>" : PQgetvalue(res, 0, 0));
    else
        snprintf(buf, len, "%s", PQresultErrorMessage(res));
    PQclear(res);
    cr_assert(ok, "%s: %s", sql, buf);
    return buf;
}
