/*  migrate.c: `recsd migrate`, numbered SQL files applied once, in order.

    Files are migrations_dir/NNN_name.sql (three digits, lower-case name).
    Each pending file runs in its own transaction together with the row that
    records it in public.schema_migrations, so a file is either applied and
    recorded or neither. A session advisory lock serialises concurrent runs
    (several pods starting at once): the second waits, then finds nothing to
    do. A recorded file whose checksum no longer matches the file on disk is
    an error: migrations are immutable once applied.
*/
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg_conn.h"

#define MIGRATION_MAX_BYTES (64u << 20) //  sanity bound, far above any real file

typedef struct {
    int version;
    char name[256]; //  file name, e.g. "001_features.sql"
    char *sql;      //  file contents, NUL-terminated, owned
    size_t len;
    char checksum[65]; //  hex SHA-256 of the contents, computed by the server
    bool applied;
} migration_t;

typedef struct {
    migration_t *items;
    size_t count;
} migration_set_t;

static void s_set_free(migration_set_t *set)
{
    for (size_t i = 0; i < set->count; i++)
        free(set->items[i].sql);
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

//  The advisory lock key: 64-bit FNV-1a of "recsd.migrate". Fixed, so every
//  recsd version and every pod takes the same lock.
static int64_t s_lock_key(void)
{
    uint64_t hash = 14695981039346656037ull;
    for (const char *p = "recsd.migrate"; *p; p++) {
        hash ^= (unsigned char)*p;
        hash *= 1099511628211ull;
    }
    return (int64_t)hash;
}

static double s_ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static int s_cmp_version(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

//  Reads path into a NUL-terminated buffer. SQL goes to PQexec as a C
//  string, so a NUL byte inside would silently cut the file: refuse it.
static int s_read_file(const char *path, migration_t *m)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        log_error("migrate: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        log_error("migrate: out of memory reading %s", path);
        fclose(file);
        return -1;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= MIGRATION_MAX_BYTES) {
                log_error("migrate: %s is larger than %u bytes", path, MIGRATION_MAX_BYTES);
                goto err;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                goto err;
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, file);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(file)) {
        log_error("migrate: cannot read %s: %s", path, strerror(errno));
        goto err;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        log_error("migrate: %s contains a NUL byte; not a SQL text file", path);
        goto err;
    }
    fclose(file);
    m->sql = buf;
    m->len = len;
    return 0;
err:
    free(buf);
    fclose(file);
    return -1;
}

//  Lists, sorts and reads the migration files of dir. Files that do not
//  match the pattern are ignored (a README may live there), but a .sql file
//  that does not is most likely a misnamed migration, so it is warned about.
static int s_scan(const char *dir, migration_set_t *set)
{
    regex_t pattern;
    if (regcomp(&pattern, "^[0-9]{3}_[a-z0-9_]+\\.sql$", REG_EXTENDED | REG_NOSUB) != 0) {
        log_error("migrate: cannot compile the file name pattern");
        return -1;
    }
    DIR *handle = opendir(dir);
    size_t cap = 0;
    if (!handle) {
        log_error("migrate: cannot open migrations directory %s: %s", dir, strerror(errno));
        goto err;
    }
    struct dirent *entry;
    while ((entry = readdir(handle))) {
        const char *name = entry->d_name;
        if (regexec(&pattern, name, 0, NULL, 0) != 0) {
            size_t n = strlen(name);
            if (n > 4 && strcmp(name + n - 4, ".sql") == 0)
                log_warn("migrate: ignoring %s/%s: name is not NNN_lower_case.sql", dir, name);
            continue;
        }
        if (strlen(name) >= sizeof set->items[0].name) {
            log_error("migrate: file name too long: %s", name);
            goto err;
        }
        if (set->count == cap) {
            size_t bigger_cap = cap ? cap * 2 : 16;
            migration_t *bigger = realloc(set->items, bigger_cap * sizeof *bigger);
            if (!bigger) {
                log_error("migrate: out of memory listing %s", dir);
                goto err;
            }
            set->items = bigger;
            cap = bigger_cap;
        }
        migration_t *m = &set->items[set->count++];
        memset(m, 0, sizeof *m);
        m->version = (name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0');
        snprintf(m->name, sizeof m->name, "%s", name);
    }
    closedir(handle);
    handle = NULL;

    if (set->count == 0) {
        log_error("migrate: no migration files (NNN_name.sql) in %s", dir);
        goto err;
    }
    qsort(set->items, set->count, sizeof *set->items, s_cmp_version);
    //  Two files with one number would apply in an arbitrary order, and the
    //  second would be skipped as "already applied": refuse outright.
    int duplicates = 0;
    for (size_t i = 1; i < set->count; i++)
        if (set->items[i].version == set->items[i - 1].version) {
            log_error("migrate: duplicate migration number %03d: %s and %s", set->items[i].version,
                      set->items[i - 1].name, set->items[i].name);
            duplicates++;
        }
    if (duplicates)
        goto err;
    for (size_t i = 0; i < set->count; i++) {
        char path[CONFIG_PATH_MAX + 260];
        snprintf(path, sizeof path, "%s/%s", dir, set->items[i].name);
        if (s_read_file(path, &set->items[i]) != 0)
            goto err;
    }
    regfree(&pattern);
    return 0;

err:
    if (handle)
        closedir(handle);
    regfree(&pattern);
    s_set_free(set);
    return -1;
}

//  Logs a failed statement: what we were doing, the server's message, its
//  SQLSTATE, and for a migration file the line the error points at.
static void s_log_result(const char *what, const PGresult *res, PGconn *conn, const char *sql)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *position = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    char where[48] = "";
    if (sql && position) {
        //  The position counts characters (not bytes) from 1 in the string
        //  we sent; count UTF-8 lead bytes and newlines up to it.
        long target = strtol(position, NULL, 10), chars = 0, line = 1;
        for (const char *p = sql; *p && chars < target; p++) {
            if (((unsigned char)*p & 0xC0) != 0x80)
                chars++;
            if (chars < target && *p == '\n')
                line++;
        }
        snprintf(where, sizeof where, " at line %ld", line);
    }
    char message[1024];
    if (primary)
        snprintf(message, sizeof message, "%s%s%s%s%s [%s]", primary, detail ? "; " : "",
                 detail ? detail : "", hint ? "; hint: " : "", hint ? hint : "",
                 state ? state : "?");
    else
        snprintf(message, sizeof message, "%s", PQerrorMessage(conn));
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        message[--n] = '\0';
    log_error("migrate: %s failed%s: %s", what, where, message);
}

//  Runs a statement that returns no rows; 0, or -1 (logged).
static int s_command(PGconn *conn, const char *what, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(res);
    int rc = 0;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        s_log_result(what, res, conn, NULL);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

//  Takes the migration lock, saying so if another run holds it: an
//  operator watching a stuck deploy should see what it waits for.
static int s_lock(PGconn *conn, int64_t key)
{
    char key_text[32];
    snprintf(key_text, sizeof key_text, "%lld", (long long)key);
    const char *params[1] = {key_text};
    PGresult *res = PQexecParams(conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, params,
                                 NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_log_result("taking the migration lock", res, conn, NULL);
        PQclear(res);
        return -1;
    }
    bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got)
        return 0;
    log_info("migrate: another migration holds advisory lock %lld; waiting for it", (long long)key);
    res = PQexecParams(conn, "SELECT pg_advisory_lock($1::bigint)", 1, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_log_result("waiting for the migration lock", res, conn, NULL);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

//  The server computes the checksum (sha256 over the exact bytes, sent as
//  a binary bytea parameter), so no crypto library is needed here and the
//  value is the one `SELECT encode(sha256(...), 'hex')` gives an operator.
static int s_checksum(PGconn *conn, migration_t *m)
{
    const char *params[1] = {m->sql};
    int lengths[1] = {(int)m->len};
    int formats[1] = {1};
    PGresult *res = PQexecParams(conn, "SELECT encode(sha256($1::bytea), 'hex')", 1, NULL, params,
                                 lengths, formats, 0);
    int rc = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQgetlength(res, 0, 0) != 64) {
        s_log_result("computing a checksum", res, conn, NULL);
        goto out;
    }
    memcpy(m->checksum, PQgetvalue(res, 0, 0), 64);
    m->checksum[64] = '\0';
    rc = 0;
out:
    PQclear(res);
    return rc;
}

static migration_t *s_find(migration_set_t *set, int version)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->items[i].version == version)
            return &set->items[i];
    return NULL;
}

//  Marks files already recorded and checks them against the database.
//  Returns the number of problems (checksum mismatches), or -1 on a query
//  error. *max_applied gets the highest recorded version (-1 if none).
static int s_check_applied(PGconn *conn, migration_set_t *set, int *max_applied)
{
    PGresult *res = PQexec(conn, "SELECT version, name, checksum FROM public.schema_migrations"
                                 " ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_log_result("reading public.schema_migrations", res, conn, NULL);
        PQclear(res);
        return -1;
    }
    int problems = 0;
    *max_applied = -1;
    for (int row = 0; row < PQntuples(res); row++) {
        //  NOLINTNEXTLINE(cert-err34-c): the text of an int column is always a valid decimal.
        int version = atoi(PQgetvalue(res, row, 0));
        const char *name = PQgetvalue(res, row, 1);
        const char *checksum = PQgetvalue(res, row, 2);
        if (version > *max_applied)
            *max_applied = version;
        migration_t *m = s_find(set, version);
        if (!m) {
            //  Likely an older binary against a newer database: not ours
            //  to undo, but worth knowing.
            log_warn("migrate: database has migration %03d (%s) that is not in the "
                     "migrations directory",
                     version, name);
            continue;
        }
        m->applied = true;
        if (strcmp(m->checksum, checksum) != 0) {
            log_error("migrate: %s was changed after it was applied (recorded checksum %s, "
                      "file %s); applied migrations are immutable, add a new file instead",
                      m->name, checksum, m->checksum);
            problems++;
        } else if (strcmp(m->name, name) != 0)
            log_warn("migrate: migration %03d was applied as %s and is now named %s", version, name,
                     m->name);
    }
    PQclear(res);
    return problems;
}

//  Applies one file and records it, in one transaction. 0, or -1 (logged,
//  rolled back).
static int s_apply(PGconn *conn, const migration_t *m)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char what[300];
    snprintf(what, sizeof what, "migration %s", m->name);
    if (s_command(conn, "BEGIN", "BEGIN") != 0)
        return -1;

    PGresult *res = PQexec(conn, m->sql);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
        if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
            log_error("migrate: %s uses COPY to or from the client, which migrations cannot "
                      "do",
                      m->name);
        else
            s_log_result(what, res, conn, m->sql);
        PQclear(res);
        goto err;
    }
    PQclear(res);
    //  A COMMIT or ROLLBACK inside the file would end our transaction early
    //  and the rest would run unprotected; catch it rather than record it.
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        log_error("migrate: %s ended the transaction itself, so part of it may be committed "
                  "and it is not recorded; migration files must not contain "
                  "BEGIN/COMMIT/ROLLBACK. Check the database by hand before re-running",
                  m->name);
        return -1;
    }

    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[3] = {version, m->name, m->checksum};
    res = PQexecParams(conn,
                       "INSERT INTO public.schema_migrations (version, name, checksum)"
                       " VALUES ($1::int, $2, $3)",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        s_log_result("recording the migration", res, conn, NULL);
        PQclear(res);
        goto err;
    }
    PQclear(res);

    //  COMMIT of an aborted transaction "succeeds" with tag ROLLBACK.
    res = PQexec(conn, "COMMIT");
    bool committed =
        PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0;
    if (!committed)
        s_log_result(what, res, conn, NULL);
    PQclear(res);
    if (!committed)
        goto err;
    log_info("migrate: applied %s (%.0f ms)", m->name, s_ms_since(&start));
    return 0;

err:
    if (PQtransactionStatus(conn) != PQTRANS_IDLE && s_command(conn, "ROLLBACK", "ROLLBACK") != 0)
        log_error("migrate: rollback of %s failed; the connection will be closed, which "
                  "aborts the transaction",
                  m->name);
    log_error("migrate: %s was not applied (rolled back); stopping", m->name);
    return -1;
}

int migrate_run(const config_t *cfg)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    migration_set_t set = {NULL, 0};
    PGconn *conn = NULL;
    int rc = -1;
    if (s_scan(cfg->migrations_dir, &set) != 0)
        goto out;

    char err[512];
    conn = pg_conn_open(cfg->pg_dsn, "migrate", 10, err, sizeof err);
    if (!conn) {
        log_error("migrate: %s", err);
        goto out;
    }
    int64_t key = s_lock_key();
    if (s_lock(conn, key) != 0)
        goto out;
    //  Under the lock, so two first runs do not race to create it.
    //  (A DO block rather than IF NOT EXISTS: no "already exists" notice
    //  in the log on every run.)
    if (s_command(conn, "creating public.schema_migrations",
                  "DO $$ BEGIN IF to_regclass('public.schema_migrations') IS NULL THEN"
                  " CREATE TABLE public.schema_migrations ("
                  " version integer PRIMARY KEY,"
                  " name text NOT NULL,"
                  " checksum text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now());"
                  " END IF; END $$") != 0)
        goto out;
    for (size_t i = 0; i < set.count; i++)
        if (s_checksum(conn, &set.items[i]) != 0)
            goto out;
    int max_applied;
    int problems = s_check_applied(conn, &set, &max_applied);
    if (problems != 0) {
        if (problems > 0)
            log_error("migrate: %d applied migration(s) differ from their files; nothing "
                      "applied",
                      problems);
        goto out;
    }

    size_t applied = 0, already = 0;
    for (size_t i = 0; i < set.count; i++) {
        migration_t *m = &set.items[i];
        if (m->applied) {
            already++;
            continue;
        }
        //  Gaps are allowed, so a file can appear below the newest applied
        //  one (branches merged in another order). Apply it, but say so.
        if (m->version < max_applied)
            log_warn("migrate: applying %s out of order (database is at %03d)", m->name,
                     max_applied);
        if (s_apply(conn, m) != 0) {
            log_error("migrate: applied %zu, already %zu, then %s failed", applied, already,
                      m->name);
            goto out;
        }
        applied++;
    }

    char key_text[32];
    snprintf(key_text, sizeof key_text, "%lld", (long long)key);
    const char *params[1] = {key_text};
    PGresult *res =
        PQexecParams(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        //  Not fatal: closing the session below releases it anyway.
        s_log_result("releasing the migration lock", res, conn, NULL);
    PQclear(res);
    log_info("migrate: applied %zu, already %zu (%s, %.0f ms)", applied, already,
             cfg->migrations_dir, s_ms_since(&start));
    rc = 0;

out:
    if (conn)
        PQfinish(conn); //  also releases the session lock on any error path
    s_set_free(&set);
    return rc;
}
