/*  gateway_experiments.c: experiment assignment, exposures and admin API
    in the gateway (see gateway_experiments.h). */
#include "gateway_experiments.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "experiment_store.h"
#include "log.h"
#include "pg_conn.h"
#include "pg_listener.h"

#define S_QUEUE_MAX 10000   //  exposures waiting, at most
#define S_FLUSH_ROWS 500    //  a batch this large is written at once
#define S_FLUSH_MS 1000     //  else at least this often
#define S_RELOAD_MS 5000    //  reload without a notification
#define S_RECONNECT_MS 2000 //  after a lost connection
#define S_ACQUIRE_MS 2000
#define S_SERIES_MAX 64 //  per-variant exposure series in /metrics

typedef struct {
    char experiment_id[EXPERIMENT_ID_LEN + 1];
    char variant[EXPERIMENT_VARIANT_NAME_MAX + 1];
    char user_id[EXPERIMENT_STORE_ID_MAX + 1];
    char request_id[EXPERIMENT_STORE_ID_MAX + 1];
    char **video_ids;
    size_t n_videos;
    int64_t served_us;
} s_exposure_t;

typedef struct {
    char experiment_id[EXPERIMENT_ID_LEN + 1];
    char experiment_name[EXPERIMENT_NAME_MAX + 1];
    char variant[EXPERIMENT_VARIANT_NAME_MAX + 1];
    uint64_t count;
} s_series_t;

struct gateway_experiments_t {
    pg_pool_t *pool;         //  borrowed: the API handlers
    pg_listener_t *listener; //  the thread's connection: LISTENs, reloads, writes
    char layer[EXPERIMENT_LAYER_MAX + 1];
    pthread_t thread;
    bool thread_running;
    pthread_mutex_t mutex; //  guards everything below
    pthread_cond_t wake;   //  stop, reload, or a full batch
    pthread_cond_t written;
    bool stopping, reload_now, flush_now;
    experiment_set_t *set; //  replaced whole by the thread
    s_exposure_t *queue;   //  ring
    size_t head, len;
    size_t in_flight;
    s_series_t series[S_SERIES_MAX];
    int n_series;
    uint64_t other_exposures, dropped, written_rows, failed_rows;
};

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_exposure_clear(s_exposure_t *e)
{
    for (size_t i = 0; i < e->n_videos; i++)
        free(e->video_ids[i]);
    free(e->video_ids);
    e->video_ids = NULL;
    e->n_videos = 0;
}

//  ---- the loader / writer thread --------------------------------------------

//  Writes up to S_FLUSH_ROWS queued exposures. Called with the mutex held;
//  releases it around the I/O.
static void s_flush_locked(gateway_experiments_t *self, PGconn *conn)
{
    size_t n = self->len < S_FLUSH_ROWS ? self->len : S_FLUSH_ROWS;
    if (n == 0 || !conn)
        return;
    s_exposure_t batch[S_FLUSH_ROWS];
    for (size_t i = 0; i < n; i++) {
        batch[i] = self->queue[self->head];
        self->head = (self->head + 1) % S_QUEUE_MAX;
    }
    self->len -= n;
    self->in_flight = n;
    pthread_mutex_unlock(&self->mutex);
    experiment_exposure_t rows[S_FLUSH_ROWS];
    for (size_t i = 0; i < n; i++)
        rows[i] = (experiment_exposure_t){.experiment_id = batch[i].experiment_id,
                                          .variant = batch[i].variant,
                                          .user_id = batch[i].user_id,
                                          .video_ids = (const char *const *)batch[i].video_ids,
                                          .n_videos = batch[i].n_videos,
                                          .request_id =
                                              batch[i].request_id[0] ? batch[i].request_id : NULL,
                                          .served_us = batch[i].served_us};
    char err[512];
    int rc = experiment_store_record_exposures(conn, rows, n, err, sizeof err);
    if (rc != EXPERIMENT_STORE_OK)
        log_warn("experiments: %zu exposures not written: %s", n, err);
    for (size_t i = 0; i < n; i++)
        s_exposure_clear(&batch[i]);
    pthread_mutex_lock(&self->mutex);
    self->in_flight = 0;
    if (rc == EXPERIMENT_STORE_OK)
        self->written_rows += n;
    else
        self->failed_rows += n;
    pthread_cond_broadcast(&self->written);
}

//  Replaces the set from the database. Returns 0, or -1 (connection bad).
static int s_reload(gateway_experiments_t *self, PGconn *conn)
{
    char err[512];
    int skipped = 0;
    experiment_set_t *fresh = experiment_store_load_set(conn, &skipped, err, sizeof err);
    if (!fresh) {
        log_warn("experiments not reloaded: %s", err);
        return PQstatus(conn) == CONNECTION_OK ? 0 : -1;
    }
    if (skipped)
        log_warn("experiments: %d stored experiments do not validate; left out", skipped);
    pthread_mutex_lock(&self->mutex);
    experiment_set_t *old = self->set;
    self->set = fresh;
    pthread_mutex_unlock(&self->mutex);
    experiment_set_destroy(&old);
    return 0;
}

//  Takes what the connection received and (re)connects when the back-off
//  allows. Returns true if the set should be reloaded: a notification of
//  our channel came in, or the connection has just come up (changes while
//  it was down were not heard). Called without the mutex: connecting
//  blocks up to its timeout.
static bool s_service(gateway_experiments_t *self)
{
    pg_listener_event_t ev;
    bool reload = pg_listener_service(self->listener, true, &ev);
    if (ev.lost || ev.connect_failed)
        log_warn("experiments: no database connection (%s); retrying", ev.error);
    return reload;
}

static void *s_thread(void *arg)
{
    gateway_experiments_t *self = arg;
    int64_t next_reload = 0;
    pthread_mutex_lock(&self->mutex);
    while (!self->stopping || self->len > 0) {
        int64_t now = s_now_us() / 1000;
        pthread_mutex_unlock(&self->mutex);
        bool notified = s_service(self);
        pthread_mutex_lock(&self->mutex);
        PGconn *conn = pg_listener_conn(self->listener);
        if (!conn && self->stopping)
            break; //  nothing to write them with: drop what is queued
        bool reload = conn && (notified || self->reload_now || now >= next_reload);
        if (reload) {
            self->reload_now = false;
            pthread_mutex_unlock(&self->mutex);
            int rc = s_reload(self, conn);
            pthread_mutex_lock(&self->mutex);
            next_reload = now + S_RELOAD_MS;
            if (rc != 0)
                continue; //  the connection is bad: s_service drops it
        }
        if (conn && (self->len > 0)) {
            s_flush_locked(self, conn);
            self->flush_now = false;
            if (PQstatus(conn) != CONNECTION_OK)
                continue; //  s_service drops it
        }
        if (self->stopping)
            continue; //  write the rest first
        if (self->len >= S_FLUSH_ROWS || self->reload_now || self->flush_now)
            continue;
        //  Sleep until the next flush, or a wake-up (full batch, reload,
        //  stop). A notification waits at most this long too.
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)S_FLUSH_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        int rc = pthread_cond_timedwait(&self->wake, &self->mutex, &until);
        if (rc != 0 && rc != ETIMEDOUT)
            break;
    }
    //  Whatever is still queued (no database at stop) is dropped, counted.
    while (self->len > 0) {
        s_exposure_clear(&self->queue[self->head]);
        self->head = (self->head + 1) % S_QUEUE_MAX;
        self->len--;
        self->dropped++;
    }
    pthread_cond_broadcast(&self->written);
    pthread_mutex_unlock(&self->mutex);
    return NULL;
}

//  ---- life -------------------------------------------------------------------

gateway_experiments_t *gateway_experiments_new(const config_t *cfg, pg_pool_t *pool,
                                               const char *layer, char *err, size_t errlen)
{
    const char *channels[] = {EXPERIMENT_STORE_CHANNEL};
    //  A fixed pause between connect attempts, not a growing one.
    pg_listener_options_t lopts = {
        .connect_timeout_s = 2, .backoff_min_ms = S_RECONNECT_MS, .backoff_max_ms = S_RECONNECT_MS};
    gateway_experiments_t *self = calloc(1, sizeof *self);
    if (!self || !(self->queue = calloc(S_QUEUE_MAX, sizeof *self->queue)) ||
        !(self->set = experiment_set_new()) ||
        !(self->listener =
              pg_listener_new(cfg->pg_dsn, "gateway-experiments", channels, 1, &lopts))) {
        snprintf(err, errlen, "experiments: out of memory");
        if (self) {
            experiment_set_destroy(&self->set);
            free(self->queue);
            free(self);
        }
        return NULL;
    }
    self->pool = pool;
    snprintf(self->layer, sizeof self->layer, "%s",
             layer && *layer ? layer : EXPERIMENT_DEFAULT_LAYER);
    pthread_mutex_init(&self->mutex, NULL);
    pthread_cond_init(&self->wake, NULL);
    pthread_cond_init(&self->written, NULL);
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0) {
        snprintf(err, errlen, "experiments: cannot start the loader thread");
        gateway_experiments_destroy(&self);
        return NULL;
    }
    self->thread_running = true;
    return self;
}

void gateway_experiments_destroy(gateway_experiments_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_experiments_t *self = *self_p;
    if (self->thread_running) {
        pthread_mutex_lock(&self->mutex);
        self->stopping = true;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->mutex);
        pthread_join(self->thread, NULL);
    }
    for (size_t i = 0; i < self->len; i++)
        s_exposure_clear(&self->queue[(self->head + i) % S_QUEUE_MAX]);
    free(self->queue);
    experiment_set_destroy(&self->set);
    pg_listener_destroy(&self->listener);
    pthread_cond_destroy(&self->wake);
    pthread_cond_destroy(&self->written);
    pthread_mutex_destroy(&self->mutex);
    free(self);
    *self_p = NULL;
}

//  ---- assignment and exposures -----------------------------------------------

int gateway_experiments_assign(gateway_experiments_t *self, const char *experiment_id,
                               const char *user_id, gateway_assignment_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t now = s_now_us();
    int rc = 0;
    pthread_mutex_lock(&self->mutex);
    const experiment_t *exp = experiment_id && *experiment_id
                                  ? experiment_set_find(self->set, experiment_id)
                                  : experiment_set_live_in_layer(self->set, self->layer, now);
    if (!exp)
        rc = experiment_id && *experiment_id ? -1 : 0;
    else {
        const experiment_variant_t *v = experiment_assign(exp, user_id, now);
        if (v) {
            snprintf(out->experiment_id, sizeof out->experiment_id, "%s", exp->id);
            snprintf(out->experiment_name, sizeof out->experiment_name, "%s", exp->name);
            snprintf(out->variant, sizeof out->variant, "%s", v->name);
            snprintf(out->model_type, sizeof out->model_type, "%s", v->model_type);
            snprintf(out->model_id, sizeof out->model_id, "%s", v->model_id);
            out->params = v->params;
            out->live = experiment_is_live(exp, now);
            rc = 1;
        }
    }
    pthread_mutex_unlock(&self->mutex);
    return rc;
}

//  Counts one exposure in its series (mutex held).
static void s_count(gateway_experiments_t *self, const gateway_assignment_t *a)
{
    for (int i = 0; i < self->n_series; i++)
        if (strcmp(self->series[i].experiment_id, a->experiment_id) == 0 &&
            strcmp(self->series[i].variant, a->variant) == 0) {
            self->series[i].count++;
            return;
        }
    if (self->n_series == S_SERIES_MAX) {
        self->other_exposures++;
        return;
    }
    s_series_t *s = &self->series[self->n_series++];
    snprintf(s->experiment_id, sizeof s->experiment_id, "%s", a->experiment_id);
    snprintf(s->experiment_name, sizeof s->experiment_name, "%s", a->experiment_name);
    snprintf(s->variant, sizeof s->variant, "%s", a->variant);
    s->count = 1;
}

void gateway_experiments_expose(gateway_experiments_t *self, const gateway_assignment_t *a,
                                const char *user_id, const char *const *video_ids, size_t n,
                                const char *request_id)
{
    if (!a->live || !a->experiment_id[0])
        return;
    s_exposure_t e = {.served_us = s_now_us()};
    snprintf(e.experiment_id, sizeof e.experiment_id, "%s", a->experiment_id);
    snprintf(e.variant, sizeof e.variant, "%s", a->variant);
    snprintf(e.user_id, sizeof e.user_id, "%s", user_id);
    snprintf(e.request_id, sizeof e.request_id, "%s", request_id ? request_id : "");
    e.video_ids = calloc(n ? n : 1, sizeof *e.video_ids);
    if (!e.video_ids) {
        //  Nothing to free yet (n_videos is 0); counted like a full queue.
        pthread_mutex_lock(&self->mutex);
        self->dropped++;
        pthread_mutex_unlock(&self->mutex);
        return;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++, e.n_videos++)
        ok = (e.video_ids[i] = strdup(video_ids[i])) != NULL;
    pthread_mutex_lock(&self->mutex);
    if (ok && self->len < S_QUEUE_MAX && !self->stopping) {
        self->queue[(self->head + self->len) % S_QUEUE_MAX] = e;
        self->len++;
        s_count(self, a);
        if (self->len >= S_FLUSH_ROWS)
            pthread_cond_signal(&self->wake);
        ok = true;
        e.video_ids = NULL;
    } else {
        self->dropped++;
        ok = false;
    }
    pthread_mutex_unlock(&self->mutex);
    if (!ok)
        s_exposure_clear(&e);
}

int gateway_experiments_flush(gateway_experiments_t *self, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    int rc = 0;
    pthread_mutex_lock(&self->mutex);
    self->flush_now = true;
    pthread_cond_signal(&self->wake);
    while ((self->len > 0 || self->in_flight > 0) && rc == 0)
        if (pthread_cond_timedwait(&self->written, &self->mutex, &until) != 0)
            rc = -1;
    pthread_mutex_unlock(&self->mutex);
    return rc;
}

//  ---- admin API ---------------------------------------------------------------

static PGconn *s_acquire(gateway_experiments_t *self, const gateway_api_request_t *req,
                         gateway_api_reply_t *reply)
{
    char err[512];
    PGconn *conn = self->pool ? pg_pool_acquire(self->pool, S_ACQUIRE_MS, err, sizeof err) : NULL;
    if (!conn)
        gateway_api_unavailable(reply, req, "the experiment store", "no database connection",
                                self->pool ? err : "no pool");
    return conn;
}

//  Maps a store result other than OK to an answer.
static void s_store_error(const gateway_api_request_t *req, gateway_api_reply_t *reply, int rc,
                          const char *what, const char *err)
{
    switch (rc) {
    case EXPERIMENT_STORE_INVALID:
        gateway_api_problem(reply, req, 400, err, "body");
        break;
    case EXPERIMENT_STORE_NOT_FOUND:
        gateway_api_problem(reply, req, 404, "no such experiment", NULL);
        break;
    case EXPERIMENT_STORE_CONFLICT: //  err is ours: names and states, no SQL
        gateway_api_problem(reply, req, 409, err, NULL);
        break;
    default:
        gateway_api_unavailable(reply, req, "the experiment store", what, err);
        break;
    }
}

static void s_reload_soon(gateway_experiments_t *self)
{
    pthread_mutex_lock(&self->mutex);
    self->reload_now = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->mutex);
}

static void s_list(gateway_experiments_t *self, const gateway_api_request_t *req,
                   gateway_api_reply_t *reply)
{
    //  ?status=a,b: at most the three statuses.
    char text[64];
    const char *statuses[4] = {"running", NULL, NULL, NULL};
    if (req->status) {
        if (strlen(req->status) >= sizeof text) {
            gateway_api_problem(reply, req, 400,
                                "status: a comma-separated list of draft, "
                                "running, stopped",
                                "status");
            return;
        }
        snprintf(text, sizeof text, "%s", req->status);
        int n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            bool known = strcmp(tok, "draft") == 0 || strcmp(tok, "running") == 0 ||
                         strcmp(tok, "stopped") == 0;
            if (!known || n == 3) {
                gateway_api_problem(reply, req, 400,
                                    "status: a comma-separated list of draft, running, stopped",
                                    "status");
                return;
            }
            statuses[n++] = tok;
        }
        statuses[n] = NULL;
        if (n == 0) {
            gateway_api_problem(reply, req, 400,
                                "status: a comma-separated list of draft, running, stopped",
                                "status");
            return;
        }
    }
    PGconn *conn = s_acquire(self, req, reply);
    if (!conn)
        return;
    json_t *doc = NULL;
    char err[512];
    int rc = experiment_store_list(conn, statuses, &doc, err, sizeof err);
    pg_pool_release(self->pool, &conn, rc == EXPERIMENT_STORE_INTERNAL);
    if (rc != EXPERIMENT_STORE_OK)
        s_store_error(req, reply, rc, "list", err);
    else
        gateway_api_json(reply, 200, doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
}

static void s_create(gateway_experiments_t *self, const gateway_api_request_t *req,
                     gateway_api_reply_t *reply)
{
    json_t *body = gateway_api_body(reply, req);
    if (!body)
        return;
    char err[512];
    experiment_t *def = experiment_parse(body, err, sizeof err);
    json_decref(body);
    if (!def) {
        gateway_api_problem(reply, req, 400, err, "body");
        return;
    }
    PGconn *conn = s_acquire(self, req, reply);
    if (!conn) {
        experiment_destroy(&def);
        return;
    }
    char who[256], id[EXPERIMENT_ID_LEN + 1] = "";
    gateway_api_who(req, who, sizeof who);
    int rc = experiment_store_create(conn, def, who, id, err, sizeof err);
    experiment_destroy(&def);
    json_t *doc = NULL;
    if (rc == EXPERIMENT_STORE_OK)
        rc = experiment_store_get(conn, id, &doc, err, sizeof err);
    pg_pool_release(self->pool, &conn, rc == EXPERIMENT_STORE_INTERNAL);
    if (rc != EXPERIMENT_STORE_OK) {
        s_store_error(req, reply, rc, "create", err);
        return;
    }
    log_write(LOG_LEVEL_INFO, req->request_id, "experiment %s created by %s", id, who);
    snprintf(reply->location, sizeof reply->location, "/api/v1/recs/experiments/%s", id);
    gateway_api_json(reply, 201, doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
}

static void s_get(gateway_experiments_t *self, const gateway_api_request_t *req,
                  gateway_api_reply_t *reply, const char *id)
{
    PGconn *conn = s_acquire(self, req, reply);
    if (!conn)
        return;
    json_t *doc = NULL, *results = NULL;
    char err[512];
    int rc = experiment_store_get(conn, id, &doc, err, sizeof err);
    if (rc == EXPERIMENT_STORE_OK)
        rc = experiment_store_results(conn, id, &results, err, sizeof err);
    pg_pool_release(self->pool, &conn, rc == EXPERIMENT_STORE_INTERNAL);
    if (rc != EXPERIMENT_STORE_OK) {
        json_decref(doc);
        s_store_error(req, reply, rc, "get", err);
        return;
    }
    json_object_set_new(doc, "results", results);
    gateway_api_json(reply, 200, doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
}

static void s_patch(gateway_experiments_t *self, const gateway_api_request_t *req,
                    gateway_api_reply_t *reply, const char *id)
{
    json_t *body = gateway_api_body(reply, req);
    if (!body)
        return;
    const char *status = json_string_value(json_object_get(body, "status"));
    char wanted[16] = "";
    if (status && json_object_size(body) == 1 &&
        (strcmp(status, "running") == 0 || strcmp(status, "stopped") == 0))
        snprintf(wanted, sizeof wanted, "%s", status);
    json_decref(body);
    if (!wanted[0]) {
        gateway_api_problem(reply, req, 400,
                            "the body must be {\"status\": \"running\"} or "
                            "{\"status\": \"stopped\"}",
                            "status");
        return;
    }
    PGconn *conn = s_acquire(self, req, reply);
    if (!conn)
        return;
    char err[512];
    bool changed = false;
    int rc = experiment_store_set_status(conn, id, wanted, &changed, err, sizeof err);
    json_t *doc = NULL;
    if (rc == EXPERIMENT_STORE_OK)
        rc = experiment_store_get(conn, id, &doc, err, sizeof err);
    //  This gateway assigns by the new status from its next request on
    //  (the others within a second, by the notification).
    if (rc == EXPERIMENT_STORE_OK && changed && s_reload(self, conn) != 0)
        s_reload_soon(self);
    pg_pool_release(self->pool, &conn, rc == EXPERIMENT_STORE_INTERNAL);
    if (rc != EXPERIMENT_STORE_OK) {
        s_store_error(req, reply, rc, "set status", err);
        return;
    }
    if (changed) {
        char who[256];
        gateway_api_who(req, who, sizeof who);
        log_write(LOG_LEVEL_INFO, req->request_id, "experiment %s %s by %s", id, wanted, who);
    }
    gateway_api_json(reply, 200, doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
}

void gateway_experiments_handle(gateway_experiments_t *self, const gateway_api_request_t *req,
                                gateway_api_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
    if (!self) {
        gateway_api_problem(reply, req, 503, "experiments are not available", NULL);
        return;
    }
    bool read = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (req->route == GATEWAY_ROUTE_EXPERIMENTS) {
        if (read)
            s_list(self, req, reply);
        else
            s_create(self, req, reply);
        return;
    }
    char id[EXPERIMENT_ID_LEN + 1];
    if (!gateway_api_uuid(req, id, sizeof id)) {
        gateway_api_problem(reply, req, 400, "the experiment id must be a uuid", "id");
        return;
    }
    if (read)
        s_get(self, req, reply, id);
    else
        s_patch(self, req, reply, id);
}

//  A label value: the text with '"', '\\' and newlines escaped.
static void s_label(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
}

int gateway_experiments_metrics_write(gateway_experiments_t *self, FILE *out)
{
    pthread_mutex_lock(&self->mutex);
    fputs("# HELP recsd_experiment_exposures_total Lists served under a live experiment, by "
          "experiment and variant.\n# TYPE recsd_experiment_exposures_total counter\n",
          out);
    for (int i = 0; i < self->n_series; i++) {
        fputs("recsd_experiment_exposures_total{experiment=\"", out);
        s_label(out, self->series[i].experiment_name);
        fputs("\",variant=\"", out);
        s_label(out, self->series[i].variant);
        fprintf(out, "\"} %" PRIu64 "\n", self->series[i].count);
    }
    if (self->other_exposures)
        fprintf(out,
                "recsd_experiment_exposures_total{experiment=\"other\",variant=\"other\"} "
                "%" PRIu64 "\n",
                self->other_exposures);
    fprintf(out,
            "# HELP recsd_experiment_exposures_dropped_total Exposures not recorded: the queue "
            "was full.\n# TYPE recsd_experiment_exposures_dropped_total counter\n"
            "recsd_experiment_exposures_dropped_total %" PRIu64 "\n"
            "# HELP recsd_experiment_exposure_writes_total Exposures written to PostgreSQL in "
            "bulk, by result.\n# TYPE recsd_experiment_exposure_writes_total counter\n"
            "recsd_experiment_exposure_writes_total{result=\"written\"} %" PRIu64 "\n"
            "recsd_experiment_exposure_writes_total{result=\"error\"} %" PRIu64 "\n"
            "# HELP recsd_experiments_loaded Running and stopped experiments this gateway "
            "assigns from.\n# TYPE recsd_experiments_loaded gauge\n"
            "recsd_experiments_loaded %zu\n",
            self->dropped, self->written_rows, self->failed_rows, experiment_set_size(self->set));
    pthread_mutex_unlock(&self->mutex);
    return ferror(out) ? -1 : 0;
}
