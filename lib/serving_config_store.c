/*  serving_config_store.c: versions of the serving configuration in
    PostgreSQL, and the watcher thread (see serving_config_store.h).
*/
#include "serving_config_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "log.h"
#include "pg_conn.h"
#include "pg_listener.h"

#define TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char s_sql_current[] = "SELECT version, document::text FROM serving.config_versions"
                                    " ORDER BY version DESC LIMIT 1";

//  Writers serialise on the table lock (SHARE ROW EXCLUSIVE conflicts with
//  itself, not with readers), so max + 1 cannot race and versions follow
//  commit order: of two concurrent puts the later is the current one.
static const char s_sql_lock[] = "LOCK TABLE serving.config_versions IN SHARE ROW EXCLUSIVE MODE";

#define NEXT_VERSION "(SELECT coalesce(max(version), 0) + 1 FROM serving.config_versions)"
#define NOTIFY_NEW "SELECT version, pg_notify('" SERVING_CONFIG_CHANNEL "', version::text) FROM v"

static const char s_sql_put[] =
    "WITH v AS (INSERT INTO serving.config_versions (version, document, created_by, note)"
    "           VALUES (" NEXT_VERSION ", $1::jsonb, $2, $3) RETURNING version) " NOTIFY_NEW;

static const char s_sql_old_document[] =
    "SELECT document::text FROM serving.config_versions WHERE version = $1::bigint";

//  The old document is copied as stored, byte for byte of its jsonb.
static const char s_sql_rollback[] =
    "WITH v AS (INSERT INTO serving.config_versions"
    "             (version, document, created_by, note, rolled_back_from)"
    "           SELECT " NEXT_VERSION ", o.document, $2, $3, o.version"
    "             FROM serving.config_versions o WHERE o.version = $1::bigint"
    "           RETURNING version) " NOTIFY_NEW;

#define LIST_COLUMNS                                                                               \
    "SELECT version, created_by, " TS("created_at") ", note, rolled_back_from, document::text"     \
                                                    "  FROM serving.config_versions"

static const char s_sql_list[] = LIST_COLUMNS
    " WHERE $1::bigint <= 0 OR version < $1::bigint ORDER BY version DESC LIMIT $2::int";

static const char s_sql_get[] = LIST_COLUMNS " WHERE version = $1::bigint";

//  ---- helpers ---------------------------------------------------------------

//  put and rollback open their own transaction: one the caller left open
//  would be committed by ours.
static int s_check_write(PGconn *conn, const char *created_by, const char *note, char *err,
                         size_t errlen)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        errbuf_set(err, errlen, "no connection to PostgreSQL");
        return SERVING_CONFIG_STORE_INTERNAL;
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        errbuf_set(err, errlen, "the connection is busy or inside a transaction");
        return SERVING_CONFIG_STORE_INVALID;
    }
    if (!created_by || !*created_by || strlen(created_by) > SERVING_CONFIG_WHO_MAX) {
        errbuf_set(err, errlen, "created_by: must be 1 to %d bytes", SERVING_CONFIG_WHO_MAX);
        return SERVING_CONFIG_STORE_INVALID;
    }
    if (note && strlen(note) > SERVING_CONFIG_NOTE_MAX) {
        errbuf_set(err, errlen, "note: must be at most %d bytes", SERVING_CONFIG_NOTE_MAX);
        return SERVING_CONFIG_STORE_INVALID;
    }
    return SERVING_CONFIG_STORE_OK;
}

static int s_parse_version(const char *text, int64_t *version)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text)
        return -1;
    *version = v;
    return 0;
}

//  Opens the write transaction and takes the table lock that orders the
//  versions. Returns OK, or INTERNAL (the caller rolls back).
static int s_begin_locked(PGconn *conn, char *err, size_t errlen)
{
    if (pg_conn_command(conn, "BEGIN", "begin", err, errlen) != 0 ||
        pg_conn_command(conn, s_sql_lock, "lock serving.config_versions", err, errlen) != 0)
        return SERVING_CONFIG_STORE_INTERNAL;
    return SERVING_CONFIG_STORE_OK;
}

//  Runs a write statement that ends in NOTIFY_NEW and commits. Returns OK
//  with *version set, or INTERNAL (rolled back).
static int s_write_commit(PGconn *conn, const char *sql, int n, const char *const *params,
                          const char *what, int64_t *version, char *err, size_t errlen)
{
    PGresult *res = pg_conn_query(conn, sql, n, params, PGRES_TUPLES_OK, what, err, errlen);
    if (!res)
        return SERVING_CONFIG_STORE_INTERNAL;
    int64_t v = 0;
    int rc = PQntuples(res) == 1 && s_parse_version(PQgetvalue(res, 0, 0), &v) == 0
                 ? SERVING_CONFIG_STORE_OK
                 : SERVING_CONFIG_STORE_INTERNAL;
    PQclear(res);
    if (rc != SERVING_CONFIG_STORE_OK) {
        errbuf_set(err, errlen, "%s: no version returned", what);
        return rc;
    }
    if (pg_conn_command(conn, "COMMIT", "commit", err, errlen) != 0)
        return SERVING_CONFIG_STORE_INTERNAL;
    if (version)
        *version = v;
    return SERVING_CONFIG_STORE_OK;
}

//  ---- store -----------------------------------------------------------------

int serving_config_store_current(PGconn *conn, const serving_config_t *defaults,
                                 serving_config_t *out, int64_t *version, char *err, size_t errlen)
{
    PGresult *res = pg_conn_query(conn, s_sql_current, 0, NULL, PGRES_TUPLES_OK,
                                  "read the serving configuration", err, errlen);
    if (!res)
        return SERVING_CONFIG_STORE_INTERNAL;
    int rc = SERVING_CONFIG_STORE_OK;
    if (PQntuples(res) == 0) {
        *out = *defaults;
        *version = 0;
        goto done;
    }
    int64_t v;
    serving_config_t cfg;
    char why[256];
    if (s_parse_version(PQgetvalue(res, 0, 0), &v) != 0) {
        errbuf_set(err, errlen, "read the serving configuration: bad version \"%s\"",
                   PQgetvalue(res, 0, 0));
        rc = SERVING_CONFIG_STORE_INTERNAL;
        goto done;
    }
    const char *doc = PQgetvalue(res, 0, 1);
    if (serving_config_parse_text(doc, strlen(doc), &cfg, why, sizeof why) != 0) {
        errbuf_set(err, errlen, "stored serving configuration version %" PRId64 " is invalid: %s",
                   v, why);
        rc = SERVING_CONFIG_STORE_INTERNAL;
        goto done;
    }
    *out = cfg;
    *version = v;
done:
    PQclear(res);
    return rc;
}

int serving_config_store_put(PGconn *conn, const serving_config_t *cfg, const char *created_by,
                             const char *note, int64_t *version, char *err, size_t errlen)
{
    int rc = s_check_write(conn, created_by, note, err, errlen);
    if (rc != SERVING_CONFIG_STORE_OK)
        return rc;
    if (serving_config_validate(cfg, err, errlen) != 0)
        return SERVING_CONFIG_STORE_INVALID;
    char *doc = serving_config_to_text(cfg);
    if (!doc) {
        errbuf_set(err, errlen, "out of memory");
        return SERVING_CONFIG_STORE_INTERNAL;
    }
    const char *params[3] = {doc, created_by, note};
    rc = s_begin_locked(conn, err, errlen);
    if (rc == SERVING_CONFIG_STORE_OK)
        rc = s_write_commit(conn, s_sql_put, 3, params, "store the serving configuration", version,
                            err, errlen);
    if (rc != SERVING_CONFIG_STORE_OK)
        pg_conn_rollback(conn);
    free(doc);
    return rc;
}

int serving_config_store_rollback(PGconn *conn, int64_t to_version, const char *created_by,
                                  const char *note, int64_t *new_version, char *err, size_t errlen)
{
    int rc = s_check_write(conn, created_by, note, err, errlen);
    if (rc != SERVING_CONFIG_STORE_OK)
        return rc;
    if (to_version < 1) {
        errbuf_set(err, errlen, "no serving configuration version %" PRId64, to_version);
        return SERVING_CONFIG_STORE_NOT_FOUND;
    }
    char number[24], default_note[64];
    snprintf(number, sizeof number, "%" PRId64, to_version);
    snprintf(default_note, sizeof default_note, "rollback to version %" PRId64, to_version);
    const char *params[3] = {number, created_by, note ? note : default_note};
    PGresult *res = NULL;

    rc = s_begin_locked(conn, err, errlen);
    if (rc != SERVING_CONFIG_STORE_OK)
        goto err;
    res = pg_conn_query(conn, s_sql_old_document, 1, params, PGRES_TUPLES_OK,
                        "read the serving configuration", err, errlen);
    if (!res) {
        rc = SERVING_CONFIG_STORE_INTERNAL;
        goto err;
    }
    if (PQntuples(res) != 1) {
        errbuf_set(err, errlen, "no serving configuration version %" PRId64, to_version);
        rc = SERVING_CONFIG_STORE_NOT_FOUND;
        goto err;
    }
    //  Restored documents are held to today's rules, like a PUT.
    serving_config_t old;
    char why[256];
    const char *doc = PQgetvalue(res, 0, 0);
    if (serving_config_parse_text(doc, strlen(doc), &old, why, sizeof why) != 0) {
        errbuf_set(err, errlen, "version %" PRId64 " cannot be restored: %s", to_version, why);
        rc = SERVING_CONFIG_STORE_INVALID;
        goto err;
    }
    PQclear(res);
    res = NULL;
    rc = s_write_commit(conn, s_sql_rollback, 3, params, "roll the serving configuration back",
                        new_version, err, errlen);
    if (rc != SERVING_CONFIG_STORE_OK)
        goto err;
    return SERVING_CONFIG_STORE_OK;
err:
    PQclear(res);
    pg_conn_rollback(conn);
    return rc;
}

//  A version row (LIST_COLUMNS) as the API shows it. NULL if out of memory.
static json_t *s_row_json(PGresult *res, int row)
{
    int64_t version = 0, from = 0;
    if (s_parse_version(PQgetvalue(res, row, 0), &version) != 0)
        return NULL;
    bool has_from =
        !PQgetisnull(res, row, 4) && s_parse_version(PQgetvalue(res, row, 4), &from) == 0;
    const char *text = PQgetvalue(res, row, 5);
    serving_config_t cfg;
    //  Canonical key order when it parses (jsonb keeps its own order);
    //  else as stored, so that a bad version can still be looked at.
    json_t *doc = serving_config_parse_text(text, strlen(text), &cfg, NULL, 0) == 0
                      ? serving_config_to_json(&cfg)
                      : json_loads(text, 0, NULL);
    if (!doc)
        return NULL;
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o}", "version", (json_int_t)version, "created_by",
                     PQgetvalue(res, row, 1), "created_at", PQgetvalue(res, row, 2), "note",
                     PQgetisnull(res, row, 3) ? json_null() : json_string(PQgetvalue(res, row, 3)),
                     "rolled_back_from", has_from ? json_integer((json_int_t)from) : json_null(),
                     "document", doc);
}

int serving_config_store_list(PGconn *conn, int limit, int64_t before, json_t **out, char *err,
                              size_t errlen)
{
    if (limit <= 0)
        limit = SERVING_CONFIG_LIST_DEFAULT;
    if (limit > SERVING_CONFIG_LIST_MAX)
        limit = SERVING_CONFIG_LIST_MAX;
    char before_text[24], limit_text[16];
    snprintf(before_text, sizeof before_text, "%" PRId64, before);
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    const char *params[2] = {before_text, limit_text};
    PGresult *res = pg_conn_query(conn, s_sql_list, 2, params, PGRES_TUPLES_OK,
                                  "list serving configuration versions", err, errlen);
    if (!res)
        return SERVING_CONFIG_STORE_INTERNAL;
    json_t *list = json_array();
    for (int i = 0; list && i < PQntuples(res); i++)
        if (json_array_append_new(list, s_row_json(res, i)) != 0) {
            json_decref(list);
            list = NULL;
        }
    PQclear(res);
    if (!list) {
        errbuf_set(err, errlen, "list serving configuration versions: out of memory");
        return SERVING_CONFIG_STORE_INTERNAL;
    }
    *out = list;
    return SERVING_CONFIG_STORE_OK;
}

int serving_config_store_get(PGconn *conn, int64_t version, json_t **out, char *err, size_t errlen)
{
    char number[24];
    snprintf(number, sizeof number, "%" PRId64, version);
    const char *params[1] = {number};
    PGresult *res = pg_conn_query(conn, s_sql_get, 1, params, PGRES_TUPLES_OK,
                                  "read a serving configuration version", err, errlen);
    if (!res)
        return SERVING_CONFIG_STORE_INTERNAL;
    int rc = SERVING_CONFIG_STORE_OK;
    json_t *item = NULL;
    if (PQntuples(res) != 1) {
        errbuf_set(err, errlen, "no serving configuration version %" PRId64, version);
        rc = SERVING_CONFIG_STORE_NOT_FOUND;
    } else if (!(item = s_row_json(res, 0))) {
        errbuf_set(err, errlen, "read a serving configuration version: out of memory");
        rc = SERVING_CONFIG_STORE_INTERNAL;
    }
    PQclear(res);
    if (rc == SERVING_CONFIG_STORE_OK)
        *out = item;
    return rc;
}

//  ---- watcher ---------------------------------------------------------------

//  The watcher's connection may wait, but not forever: a hung query would
//  stop reloads without anything noticing.
#define S_STATEMENT_TIMEOUT_MS 5000
#define S_CONNECT_TIMEOUT_S 2

struct serving_config_watch_t {
    //  Set by new, read-only afterwards.
    serving_config_t defaults;
    int poll_ms;
    serving_config_watch_fn *on_change;
    void *arg;
    int wake[2]; //  self-pipe: [1] written by any thread, [0] read by the watcher
    pthread_t thread;
    bool started;
    pg_listener_t *listener; //  the LISTEN connection: the thread's alone while it runs

    //  lock guards current and loaded; version is also written under it
    //  and may be read without it.
    pthread_mutex_t lock;
    pthread_cond_t cond; //  signalled when current or loaded changes
    serving_config_t current;
    bool loaded;
    _Atomic int64_t version;
    atomic_bool connected;
    atomic_bool reload_asked;
    atomic_bool stop;
};

//  The thread's own state.
typedef struct {
    int64_t next_poll;
    bool load_now;
    bool load_warned; //  a failed load was logged; quiet until one works
} s_thread_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_wake(serving_config_watch_t *self)
{
    //  The pipe is non-blocking: a full pipe already holds a wake-up.
    ssize_t n = write(self->wake[1], "w", 1);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        log_warn("serving configuration watcher: wake-up not sent: %s", strerror(errno));
}

//  Each notification, at debug.
static void s_log_notify(void *arg, const char *channel, const char *payload)
{
    (void)arg;
    (void)channel; //  one channel: SERVING_CONFIG_CHANNEL
    log_debug("serving configuration: version %s stored", payload);
}

//  Takes what the connection received, (re)connects when the back-off
//  allows, and logs the change: a notification, or a connect (what
//  changed while we were away), asks for a load.
static void s_service(serving_config_watch_t *self, s_thread_t *t)
{
    pg_listener_event_t ev;
    if (pg_listener_service(self->listener, true, &ev))
        t->load_now = true;
    if (ev.connected) {
        log_info("serving configuration: watching (LISTEN %s)", SERVING_CONFIG_CHANNEL);
        atomic_store(&self->connected, true);
    } else if (ev.lost) {
        log_warn("serving configuration: %s; keeping version %" PRId64 ", reconnecting in %d ms",
                 ev.error, atomic_load(&self->version), ev.retry_ms);
        atomic_store(&self->connected, false);
    } else if (ev.connect_failed)
        log_warn("serving configuration: PostgreSQL unreachable (%s); keeping version %" PRId64
                 ", retrying in %d ms",
                 ev.error, atomic_load(&self->version), ev.retry_ms);
}

static void s_load(serving_config_watch_t *self, s_thread_t *t)
{
    serving_config_t cfg;
    int64_t version;
    char err[512];
    t->next_poll = s_now_ms() + self->poll_ms;
    PGconn *conn = pg_listener_conn(self->listener);
    if (serving_config_store_current(conn, &self->defaults, &cfg, &version, err, sizeof err) !=
        SERVING_CONFIG_STORE_OK) {
        if (PQstatus(conn) != CONNECTION_OK)
            return; //  the next service reports the loss
        //  E.g. a stored document this build refuses: keep what we have.
        if (!t->load_warned)
            log_error("serving configuration not loaded (%s); keeping version %" PRId64, err,
                      atomic_load(&self->version));
        t->load_warned = true;
        return;
    }
    t->load_warned = false;
    pthread_mutex_lock(&self->lock);
    bool changed =
        version != atomic_load(&self->version) || !serving_config_equal(&cfg, &self->current);
    if (changed) {
        self->current = cfg;
        atomic_store(&self->version, version);
    }
    self->loaded = true;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->lock);
    if (!changed)
        return;
    log_info("serving configuration: version %" PRId64 " in force", version);
    if (self->on_change)
        self->on_change(&cfg, version, self->arg);
}

static void *s_thread(void *args)
{
    serving_config_watch_t *self = args;
    s_thread_t t = {0};
    while (!atomic_load(&self->stop)) {
        s_service(self, &t);
        if (pg_listener_connected(self->listener) &&
            (t.load_now || atomic_exchange(&self->reload_asked, false) ||
             s_now_ms() >= t.next_poll)) {
            t.load_now = false;
            s_load(self, &t);
            //  Any query reads what the server sent, notifications included:
            //  they wait in libpq now, not on the socket. A failed load may
            //  also have found the connection broken.
            s_service(self, &t);
        }
        int64_t now = s_now_ms();
        int fd = pg_listener_socket(self->listener);
        int64_t wake =
            fd >= 0 ? (t.load_now ? now : t.next_poll) : pg_listener_next_connect(self->listener);
        int timeout = wake > now ? (int)(wake - now) : 0;
        struct pollfd fds[2] = {{.fd = self->wake[0], .events = POLLIN},
                                {.fd = fd, .events = POLLIN}};
        if (poll(fds, fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR) {
            log_error("serving configuration watcher: poll failed: %s", strerror(errno));
            break;
        }
        if (fds[0].revents & POLLIN) {
            char buf[64];
            while (read(self->wake[0], buf, sizeof buf) > 0)
                ;
        }
        //  The connection's input is taken by s_service at the top.
    }
    atomic_store(&self->connected, false);
    return NULL;
}

serving_config_watch_t *serving_config_watch_new(const serving_config_watch_options_t *opts,
                                                 char *err, size_t errlen)
{
    if (!opts || !opts->dsn || !*opts->dsn || !opts->defaults) {
        errbuf_set(err, errlen, "serving configuration watcher: dsn and defaults are required");
        return NULL;
    }
    char why[256];
    if (serving_config_validate(opts->defaults, why, sizeof why) != 0) {
        errbuf_set(err, errlen, "serving configuration watcher: bad defaults: %s", why);
        return NULL;
    }
    serving_config_watch_t *self = calloc(1, sizeof *self);
    if (!self) {
        errbuf_set(err, errlen, "serving configuration watcher: out of memory");
        return NULL;
    }
    self->wake[0] = self->wake[1] = -1;
    bool lock_made = false, cond_made = false;
    pthread_condattr_t attr;
    const char *channels[] = {SERVING_CONFIG_CHANNEL};
    pg_listener_options_t lopts = {
        .connect_timeout_s = S_CONNECT_TIMEOUT_S,
        .statement_timeout_ms = S_STATEMENT_TIMEOUT_MS,
        .backoff_min_ms = opts->reconnect_min_ms > 0 ? opts->reconnect_min_ms : 500,
        .backoff_max_ms = opts->reconnect_max_ms > 0 ? opts->reconnect_max_ms : 30000,
        .on_notify = s_log_notify};
    self->listener =
        pg_listener_new(opts->dsn, opts->app ? opts->app : "serving-config", channels, 1, &lopts);
    if (!self->listener || pthread_condattr_init(&attr) != 0) {
        errbuf_set(err, errlen, "serving configuration watcher: out of memory");
        goto err;
    }
    //  Waits measure time on the monotonic clock, like everything else here.
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0 && (rc = pthread_cond_init(&self->cond, &attr)) == 0)
        cond_made = true;
    pthread_condattr_destroy(&attr);
    if (rc == 0 && (rc = pthread_mutex_init(&self->lock, NULL)) == 0)
        lock_made = true;
    if (rc != 0) {
        errbuf_set(err, errlen, "serving configuration watcher: %s", strerror(rc));
        goto err;
    }
    if (pipe2(self->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        errbuf_set(err, errlen, "serving configuration watcher: pipe: %s", strerror(errno));
        goto err;
    }
    self->defaults = *opts->defaults;
    self->current = *opts->defaults;
    self->poll_ms = opts->poll_ms > 0 ? opts->poll_ms : 5000;
    self->on_change = opts->on_change;
    self->arg = opts->arg;
    atomic_init(&self->version, 0);
    atomic_init(&self->connected, false);
    atomic_init(&self->reload_asked, false);
    atomic_init(&self->stop, false);
    if ((rc = pthread_create(&self->thread, NULL, s_thread, self)) != 0) {
        errbuf_set(err, errlen, "serving configuration watcher: thread: %s", strerror(rc));
        goto err;
    }
    self->started = true;
    return self;
err:
    if (self->wake[0] >= 0)
        close(self->wake[0]);
    if (self->wake[1] >= 0)
        close(self->wake[1]);
    if (lock_made)
        pthread_mutex_destroy(&self->lock);
    if (cond_made)
        pthread_cond_destroy(&self->cond);
    pg_listener_destroy(&self->listener);
    free(self);
    return NULL;
}

void serving_config_watch_destroy(serving_config_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    serving_config_watch_t *self = *self_p;
    if (self->started) {
        atomic_store(&self->stop, true);
        s_wake(self);
        pthread_join(self->thread, NULL);
    }
    close(self->wake[0]);
    close(self->wake[1]);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->cond);
    pg_listener_destroy(&self->listener);
    free(self);
    *self_p = NULL;
}

int64_t serving_config_watch_get(serving_config_watch_t *self, serving_config_t *out)
{
    pthread_mutex_lock(&self->lock);
    if (out)
        *out = self->current;
    int64_t version = atomic_load(&self->version);
    pthread_mutex_unlock(&self->lock);
    return version;
}

int64_t serving_config_watch_version(serving_config_watch_t *self)
{
    return atomic_load(&self->version);
}

bool serving_config_watch_connected(serving_config_watch_t *self)
{
    return atomic_load(&self->connected);
}

void serving_config_watch_reload(serving_config_watch_t *self)
{
    atomic_store(&self->reload_asked, true);
    s_wake(self);
}

int serving_config_watch_wait(serving_config_watch_t *self, int64_t min_version, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    int64_t ns = deadline.tv_nsec + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000;
    deadline.tv_sec += ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&self->lock);
    while (!(self->loaded && atomic_load(&self->version) >= min_version))
        if (pthread_cond_timedwait(&self->cond, &self->lock, &deadline) == ETIMEDOUT)
            break;
    bool ok = self->loaded && atomic_load(&self->version) >= min_version;
    pthread_mutex_unlock(&self->lock);
    return ok ? 0 : -1;
}
