/*  ranker_loader.c: the model loader thread (see ranker_loader.h). */
#include "ranker_loader.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiment_store.h"
#include "log.h"
#include "model_fetch.h"
#include "pg_conn.h"
#include "pg_listener.h"

#define S_MAX_TYPES 8
//  The thread may block, but not forever: a hung query would stop model
//  updates without anything noticing.
#define S_STATEMENT_TIMEOUT_MS 5000
#define S_CONNECT_TIMEOUT_S 2

//  Shared by the loop and the thread. The lock guards results and checked;
//  everything else is set before the thread starts and is the thread's.
typedef struct {
    pthread_mutex_t lock;
    zlist_t *results; //  ranker_load_result_t *, oldest first
    bool checked;
    ranker_loader_options_t opts;
    artifact_store_t *store;
    char cache_dir[512];
} s_shared_t;

struct ranker_loader_t {
    s_shared_t *shared;
    zactor_t *actor;
};

//  The thread's own state.
typedef struct {
    s_shared_t *shared;
    zsock_t *pipe;
    pg_listener_t *listener; //  the connection: LISTENs, and every query runs on it
    PGconn *conn;            //  pg_listener_conn, refreshed by s_service; NULL while down
    int64_t next_check, next_popular, next_retired, next_segments;
    bool refresh_warned; //  a failed list refresh was logged; quiet until one works
    model_registry_id_t handled[S_MAX_TYPES];      //  last model loaded or refused, per type
    model_registry_id_t fetch_warned[S_MAX_TYPES]; //  last model whose fetch failure was logged
    //  Pinned models loaded or refused (among those pinned now), and the
    //  set of ids last posted to the loop.
    model_registry_id_t pinned_handled[RANKER_LOADER_PINNED_MAX];
    int n_pinned_handled;
    model_registry_id_t pins_posted[RANKER_LOADER_PINNED_MAX];
    int n_pins_posted;
    model_registry_id_t pin_fetch_warned; //  last pinned model whose fetch failure was logged
    bool pinned_warned;                   //  a failed pinned query was logged
} s_thread_t;

void ranker_load_result_destroy(ranker_load_result_t **result_p)
{
    if (!result_p || !*result_p)
        return;
    model_bundle_destroy(&(*result_p)->bundle);
    popular_list_destroy(&(*result_p)->popular);
    zhashx_destroy(&(*result_p)->retired);
    segment_popularity_destroy(&(*result_p)->segments);
    free(*result_p);
    *result_p = NULL;
}

//  ---- the thread ------------------------------------------------------------

//  Closes the connection after a failed query (the next s_service logs it).
static void s_disconnect(s_thread_t *self, const char *why)
{
    pg_listener_drop(self->listener, why);
    self->conn = NULL;
}

//  Each notification, at debug (what a debug log is for: every one).
static void s_log_notify(void *arg, const char *channel, const char *payload)
{
    (void)arg; //  nothing to carry: the line is the whole job
    log_debug("%s: %s", channel, payload);
}

//  Takes what the connection received and (re)connects when the back-off
//  allows. A notification, or a connect (what changed while we were away),
//  asks for a check now. Returns true in both cases.
static bool s_service(s_thread_t *self)
{
    pg_listener_event_t ev;
    bool check = pg_listener_service(self->listener, true, &ev);
    self->conn = pg_listener_conn(self->listener);
    if (ev.connected)
        log_info("watching the model registry (LISTEN %s, %s)", MODEL_REGISTRY_CHANNEL_ACTIVATED,
                 EXPERIMENT_STORE_CHANNEL);
    else if (ev.lost)
        log_warn("model registry %s; reconnecting in %d ms", ev.error, ev.retry_ms);
    else if (ev.connect_failed)
        log_warn("model registry unreachable (%s); retrying in %d ms", ev.error, ev.retry_ms);
    if (check)
        self->next_check = 0;
    return check;
}

static void s_post(s_thread_t *self, ranker_load_result_t *result)
{
    s_shared_t *sh = self->shared;
    pthread_mutex_lock(&sh->lock);
    int rc = zlist_append(sh->results, result);
    pthread_mutex_unlock(&sh->lock);
    if (rc != 0) {
        log_error("model %s not handed over: out of memory", result->model_id);
        ranker_load_result_destroy(&result);
        return;
    }
    //  A wake-up only: the result itself travels through the locked list,
    //  so one still in flight at shutdown is freed, not leaked.
    if (zstr_send(self->pipe, "R") != 0)
        log_warn("model loader: wake-up not sent: %s", zmq_strerror(errno));
}

//  Fetches and opens model m of type into *out. Returns 0 (opened), 1
//  (fetch failed: transient, err says why) or -1 (refused: corrupt,
//  checksum or type mismatch; err says why).
static int s_open(s_thread_t *self, const char *type, const model_registry_active_t *m,
                  model_bundle_t **out, char *err, size_t errlen)
{
    s_shared_t *sh = self->shared;
    char local[1024];
    *out = NULL;
    if (model_fetch(sh->store, m->artifact_path, m->artifact_checksum, sh->cache_dir, local,
                    sizeof local, err, errlen) != 0)
        return 1;
    model_bundle_t *bundle = model_bundle_open(local, m->artifact_checksum, err, errlen);
    if (!bundle && access(local, F_OK) == 0) {
        //  The cached copy is named by its checksum, so a copy that fails
        //  the check is damaged: fetch a fresh one from the store, once.
        char first[512];
        snprintf(first, sizeof first, "%s", err);
        unlink(local);
        if (model_fetch(sh->store, m->artifact_path, m->artifact_checksum, sh->cache_dir, local,
                        sizeof local, err, errlen) == 0)
            bundle = model_bundle_open(local, m->artifact_checksum, err, errlen);
        else
            snprintf(err, errlen, "%.400s (and fetching it again failed)", first);
    }
    if (bundle && strcmp(model_bundle_type(bundle), type) != 0) {
        snprintf(err, errlen, "the artifact holds a %s model, the registry says %s",
                 model_bundle_type(bundle), type);
        model_bundle_destroy(&bundle);
    }
    if (!bundle)
        return -1;
    //  A catalogue too large to score in full gets its ANN index here, off
    //  the serving loop; without one (FAISS failed) it is scored in full.
    int ann_min = sh->opts.cfg->ann_min_videos;
    if (ann_min > 0 && strcmp(type, "collaborative") == 0 &&
        model_bundle_videos(bundle) >= ann_min) {
        int64_t ann_started = zclock_mono();
        char why[256];
        if (model_bundle_build_ann(bundle, why, sizeof why) != 0)
            log_warn("%s model %s: no ANN index, scoring in full: %s", type, m->model_id, why);
        else
            log_info("%s model %s: ANN index over %d videos built in %lld ms", type, m->model_id,
                     model_bundle_videos(bundle), (long long)(zclock_mono() - ann_started));
    }
    *out = bundle;
    return 0;
}

//  A result of kind for model m of type, holding bundle (taken; NULL =
//  refused for err). NULL when out of memory (bundle destroyed, logged).
static ranker_load_result_t *s_result(ranker_load_kind_t kind, const char *type,
                                      const model_registry_active_t *m, model_bundle_t **bundle,
                                      const char *err, int64_t started)
{
    ranker_load_result_t *result = calloc(1, sizeof *result);
    if (!result) {
        log_error("%s model %s: out of memory", type, m->model_id);
        model_bundle_destroy(bundle);
        return NULL;
    }
    result->kind = kind;
    snprintf(result->model_type, sizeof result->model_type, "%s", type);
    snprintf(result->model_id, sizeof result->model_id, "%s", m->model_id);
    result->version = m->version;
    result->bundle = *bundle;
    *bundle = NULL;
    result->load_ms = zclock_mono() - started;
    if (!result->bundle)
        snprintf(result->error, sizeof result->error, "%s", err);
    return result;
}

//  Fetches and opens type t's active model. A fetch failure returns
//  without marking it handled (retried at the next check).
static void s_load(s_thread_t *self, int t, const model_registry_active_t *active)
{
    s_shared_t *sh = self->shared;
    const char *type = sh->opts.types[t];
    int64_t started = zclock_mono();
    char err[512];
    model_bundle_t *bundle = NULL;
    int rc = s_open(self, type, active, &bundle, err, sizeof err);
    if (rc == 1) {
        if (strcmp(self->fetch_warned[t], active->model_id) != 0)
            log_warn("%s model %s v%d not fetched, retrying at the next check: %s", type,
                     active->model_id, active->version, err);
        snprintf(self->fetch_warned[t], sizeof self->fetch_warned[t], "%s", active->model_id);
        return;
    }
    ranker_load_result_t *result = s_result(RANKER_LOAD_MODEL, type, active, &bundle, err, started);
    if (!result)
        return; //  not handled: tried again at the next check
    if (!result->bundle)
        //  Once per model: it is not retried until the active model changes.
        log_error("%s model %s v%d refused, keeping the model served before: %s (%s)", type,
                  active->model_id, active->version, err, active->artifact_path);
    else
        log_info("%s model %s v%d opened: %d videos in %lld ms", type, active->model_id,
                 active->version, model_bundle_videos(result->bundle), (long long)result->load_ms);
    snprintf(self->handled[t], sizeof self->handled[t], "%s", active->model_id);
    s_post(self, result);
}

//  The text of an int column as an int. Returns 0, or -1 if it is not one.
static int s_parse_int(const char *text, int *value)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX)
        return -1;
    *value = (int)v;
    return 0;
}

int ranker_loader_pinned(PGconn *conn, const char *const *types, int n_types, ranker_pinned_t *out,
                         int max, int *n, char *err, size_t errlen)
{
    *n = 0;
    if (max > RANKER_LOADER_PINNED_MAX)
        max = RANKER_LOADER_PINNED_MAX;
    //  The served types as an array literal: type names are plain words.
    char array[256] = "{", limit[16];
    for (int t = 0; t < n_types; t++) {
        size_t used = strlen(array);
        snprintf(array + used, sizeof array - used, "%s%s", t ? "," : "", types[t]);
    }
    strncat(array, "}", sizeof array - strlen(array) - 1);
    snprintf(limit, sizeof limit, "%d", max > 0 ? max : 0);
    const char *params[] = {array, limit};
    //  Only models with an artifact, trained to the end (a failed or queued
    //  one has nothing to serve).
    PGresult *res = pg_conn_query(
        conn,
        "SELECT m.model_id, m.model_type, m.version, m.artifact_path,"
        " coalesce(m.artifact_checksum, '')"
        " FROM training.models m"
        " WHERE m.model_id IN (SELECT v.model_id FROM experiments.variants v"
        "   JOIN experiments.experiments e USING (experiment_id)"
        "   WHERE e.status = 'running' AND v.model_id IS NOT NULL)"
        " AND m.artifact_path IS NOT NULL AND m.status IN ('succeeded', 'active', 'retired')"
        " AND m.model_type = ANY ($1::text[])"
        " ORDER BY m.created_at DESC, m.model_id LIMIT $2::int",
        2, params, PGRES_TUPLES_OK, "pinned models", err, errlen);
    if (!res)
        return -1;
    for (int row = 0; row < PQntuples(res) && row < max; row++) {
        int version;
        if (s_parse_int(PQgetvalue(res, row, 2), &version) != 0) {
            snprintf(err, errlen, "pinned model %.64s: version '%.32s' is not an integer",
                     PQgetvalue(res, row, 0), PQgetvalue(res, row, 2));
            PQclear(res);
            *n = 0;
            return -1;
        }
        ranker_pinned_t *p = &out[(*n)++];
        *p = (ranker_pinned_t){0};
        snprintf(p->model.model_id, sizeof p->model.model_id, "%s", PQgetvalue(res, row, 0));
        snprintf(p->model_type, sizeof p->model_type, "%s", PQgetvalue(res, row, 1));
        p->model.version = version;
        snprintf(p->model.artifact_path, sizeof p->model.artifact_path, "%s",
                 PQgetvalue(res, row, 3));
        snprintf(p->model.artifact_checksum, sizeof p->model.artifact_checksum, "%s",
                 PQgetvalue(res, row, 4));
    }
    PQclear(res);
    return 0;
}

static bool s_among(const model_registry_id_t *ids, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return true;
    return false;
}

//  Fetches and opens a pinned model. Returns 0 when handled (posted:
//  opened or refused, or out of memory), 1 when the fetch failed
//  (retried at the next check).
static int s_load_pinned(s_thread_t *self, const ranker_pinned_t *p)
{
    int64_t started = zclock_mono();
    char err[512];
    model_bundle_t *bundle = NULL;
    const model_registry_active_t *m = &p->model;
    int rc = s_open(self, p->model_type, m, &bundle, err, sizeof err);
    if (rc == 1) {
        if (strcmp(self->pin_fetch_warned, m->model_id) != 0)
            log_warn("pinned %s model %s v%d not fetched, retrying at the next check: %s",
                     p->model_type, m->model_id, m->version, err);
        snprintf(self->pin_fetch_warned, sizeof self->pin_fetch_warned, "%.36s", m->model_id);
        return 1;
    }
    ranker_load_result_t *result =
        s_result(RANKER_LOAD_PINNED, p->model_type, m, &bundle, err, started);
    if (!result)
        return 1;
    if (!result->bundle)
        log_error("pinned %s model %s v%d refused; its variant gets the active model: %s (%s)",
                  p->model_type, m->model_id, m->version, err, m->artifact_path);
    else
        log_info("pinned %s model %s v%d opened: %d videos in %lld ms", p->model_type, m->model_id,
                 m->version, model_bundle_videos(result->bundle), (long long)result->load_ms);
    s_post(self, result);
    return 0;
}

//  Loads the models running experiments pin that are new, and tells the
//  loop the set when it changed. Returns -1 if the connection was lost.
static int s_check_pinned(s_thread_t *self)
{
    s_shared_t *sh = self->shared;
    ranker_pinned_t rows[RANKER_LOADER_PINNED_MAX];
    int n = 0;
    char err[512];
    if (ranker_loader_pinned(self->conn, sh->opts.types, sh->opts.n_types, rows,
                             RANKER_LOADER_PINNED_MAX, &n, err, sizeof err) != 0) {
        err[strcspn(err, "\n")] = '\0';
        if (PQstatus(self->conn) != CONNECTION_OK) {
            s_disconnect(self, err);
            return -1;
        }
        if (!self->pinned_warned)
            log_warn("pinned models not checked, keeping those loaded: %s", err);
        self->pinned_warned = true;
        return 0;
    }
    self->pinned_warned = false;
    model_registry_id_t handled[RANKER_LOADER_PINNED_MAX];
    int n_handled = 0;
    for (int i = 0; i < n; i++) {
        const char *id = rows[i].model.model_id;
        if (s_among(self->pinned_handled, self->n_pinned_handled, id) ||
            s_load_pinned(self, &rows[i]) == 0)
            snprintf(handled[n_handled++], sizeof handled[0], "%.36s", id);
    }
    memcpy(self->pinned_handled, handled, sizeof handled);
    self->n_pinned_handled = n_handled;
    //  After the loads, so the loop installs before it prunes.
    bool same = n == self->n_pins_posted;
    for (int i = 0; i < n && same; i++)
        same = s_among(self->pins_posted, self->n_pins_posted, rows[i].model.model_id);
    if (same)
        return 0;
    ranker_load_result_t *result = calloc(1, sizeof *result);
    if (!result) {
        log_error("pinned models not handed over: out of memory");
        return 0;
    }
    result->kind = RANKER_LOAD_PINS;
    for (int i = 0; i < n; i++)
        snprintf(result->pins[i], sizeof result->pins[i], "%.36s", rows[i].model.model_id);
    result->n_pins = n;
    memcpy(self->pins_posted, result->pins, sizeof result->pins);
    self->n_pins_posted = n;
    s_post(self, result);
    return 0;
}

//  Asks the registry for every type's active model and loads what changed.
static void s_check(s_thread_t *self)
{
    s_shared_t *sh = self->shared;
    for (int t = 0; t < sh->opts.n_types && self->conn; t++) {
        model_registry_active_t active;
        char err[512];
        int rc = model_registry_active(self->conn, sh->opts.types[t], &active, err, sizeof err);
        if (rc == MODEL_REGISTRY_NOT_FOUND)
            continue;
        if (rc != MODEL_REGISTRY_OK) {
            err[strcspn(err, "\n")] = '\0';
            s_disconnect(self, err);
            return;
        }
        if (strcmp(self->handled[t], active.model_id) != 0)
            s_load(self, t, &active);
    }
    if (!self->conn || s_check_pinned(self) != 0)
        return;
    pthread_mutex_lock(&sh->lock);
    sh->checked = true;
    pthread_mutex_unlock(&sh->lock);
}

zhashx_t *ranker_loader_retired(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT video_id FROM features.videos WHERE retired");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "retired videos: %s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        return NULL;
    }
    zhashx_t *set = zhashx_new();
    for (int row = 0; set && row < PQntuples(res); row++)
        if (zhashx_insert(set, PQgetvalue(res, row, 0), (void *)1) != 0 &&
            !zhashx_lookup(set, PQgetvalue(res, row, 0)))
            zhashx_destroy(&set);
    PQclear(res);
    if (!set)
        snprintf(err, errlen, "retired videos: out of memory");
    return set;
}

//  Reloads the popularity list, the retired set or the segment lists
//  (one of them per call) when due and posts it.
static void s_refresh(s_thread_t *self)
{
    const ranker_loader_options_t *o = &self->shared->opts;
    int64_t now = zclock_mono();
    ranker_load_kind_t kind;
    if (o->popular_refresh_ms > 0 && now >= self->next_popular) {
        kind = RANKER_LOAD_POPULAR;
        self->next_popular = now + o->popular_refresh_ms;
    } else if (o->retired_refresh_ms > 0 && now >= self->next_retired) {
        kind = RANKER_LOAD_RETIRED;
        self->next_retired = now + o->retired_refresh_ms;
    } else if (o->segments_refresh_ms > 0 && now >= self->next_segments) {
        kind = RANKER_LOAD_SEGMENTS;
        self->next_segments = now + o->segments_refresh_ms;
    } else
        return;
    static const char *const what[] = {[RANKER_LOAD_POPULAR] = "popularity list",
                                       [RANKER_LOAD_RETIRED] = "retired videos",
                                       [RANKER_LOAD_SEGMENTS] = "segment popularity lists"};
    ranker_load_result_t *result = calloc(1, sizeof *result);
    char err[512] = "out of memory";
    bool loaded = false;
    if (result) {
        result->kind = kind;
        if (kind == RANKER_LOAD_POPULAR)
            loaded = (result->popular =
                          popular_list_load(self->conn, o->popular_max, err, sizeof err)) != NULL;
        else if (kind == RANKER_LOAD_RETIRED)
            loaded = (result->retired = ranker_loader_retired(self->conn, err, sizeof err)) != NULL;
        else
            loaded =
                (result->segments = segment_popularity_load(
                     self->conn, o->segments_max ? o->segments_max : 1, err, sizeof err)) != NULL;
    }
    if (!loaded) {
        free(result);
        err[strcspn(err, "\n")] = '\0';
        if (!self->refresh_warned)
            log_warn("%s not refreshed, keeping the last one: %s", what[kind], err);
        self->refresh_warned = true;
        if (PQstatus(self->conn) != CONNECTION_OK)
            s_disconnect(self, err);
        return;
    }
    self->refresh_warned = false;
    s_post(self, result);
}

static void s_thread(zsock_t *pipe, void *args)
{
    s_thread_t self = {.shared = args, .pipe = pipe};
    const ranker_loader_options_t *o = &self.shared->opts;
    //  The loop loaded both at start: the first refreshes are a period away.
    self.next_popular = zclock_mono() + o->popular_refresh_ms;
    self.next_retired = zclock_mono() + o->retired_refresh_ms;
    self.next_segments = zclock_mono(); //  not loaded by the loop: at once
    const char *channels[] = {MODEL_REGISTRY_CHANNEL_ACTIVATED, EXPERIMENT_STORE_CHANNEL};
    pg_listener_options_t lopts = {.connect_timeout_s = S_CONNECT_TIMEOUT_S,
                                   .statement_timeout_ms = S_STATEMENT_TIMEOUT_MS,
                                   .backoff_min_ms = o->reconnect_min_ms,
                                   .backoff_max_ms = o->reconnect_max_ms,
                                   .on_notify = s_log_notify};
    self.listener = pg_listener_new(o->cfg->pg_dsn, "ranker-models", channels, 2, &lopts);
    if (!self.listener)
        log_error("model loader: cannot create the registry listener: out of memory");
    zsock_signal(pipe, 0);
    while (self.listener) {
        s_service(&self);
        int64_t now = zclock_mono();
        int64_t wake = pg_listener_next_connect(self.listener);
        if (self.conn) {
            wake = self.next_check;
            if (o->popular_refresh_ms > 0 && self.next_popular < wake)
                wake = self.next_popular;
            if (o->retired_refresh_ms > 0 && self.next_retired < wake)
                wake = self.next_retired;
            if (o->segments_refresh_ms > 0 && self.next_segments < wake)
                wake = self.next_segments;
        }
        long timeout = wake > now ? (long)(wake - now) : 0;
        int fd = pg_listener_socket(self.listener);
        zmq_pollitem_t items[] = {
            {zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
            {NULL, fd, ZMQ_POLLIN, 0},
        };
        if (zmq_poll(items, fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR) {
            log_error("model loader: poll failed: %s", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv(pipe);
            bool term = !command || strcmp(command, "$TERM") == 0;
            if (command && strcmp(command, "CHECK") == 0)
                self.next_check = 0;
            free(command);
            if (term)
                break;
        }
        if (fd >= 0 && (items[1].revents & ZMQ_POLLIN))
            s_service(&self);
        if (self.conn && zclock_mono() >= self.next_check) {
            //  Notifications that arrive during a check may concern a type
            //  already checked: check again until none came in.
            for (int round = 0; round < 16 && self.conn; round++) {
                s_check(&self);
                if (!s_service(&self))
                    break;
            }
            self.next_check = zclock_mono() + o->check_interval_ms;
        }
        if (self.conn)
            s_refresh(&self);
        //  Any query reads what the server sent, notifications included:
        //  they wait in libpq, not on the socket, so look for them here.
        if (self.conn)
            s_service(&self);
    }
    pg_listener_destroy(&self.listener);
}

//  ---- the loop's side -------------------------------------------------------

static void s_shared_destroy(s_shared_t **shared_p)
{
    s_shared_t *sh = *shared_p;
    if (!sh)
        return;
    ranker_load_result_t *result;
    while (sh->results && (result = zlist_pop(sh->results)))
        ranker_load_result_destroy(&result);
    zlist_destroy(&sh->results);
    artifact_store_destroy(&sh->store);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
    *shared_p = NULL;
}

ranker_loader_t *ranker_loader_new(const ranker_loader_options_t *opts, char *err, size_t errlen)
{
    if (!opts->cfg || !opts->types || opts->n_types < 1 || opts->n_types > S_MAX_TYPES) {
        snprintf(err, errlen, "model loader: bad options");
        return NULL;
    }
    ranker_loader_t *self = calloc(1, sizeof *self);
    s_shared_t *sh = calloc(1, sizeof *sh);
    if (!self || !sh || pthread_mutex_init(&sh->lock, NULL) != 0) {
        snprintf(err, errlen, "model loader: out of memory");
        free(self);
        free(sh);
        return NULL;
    }
    self->shared = sh;
    sh->opts = *opts;
    if (sh->opts.check_interval_ms <= 0)
        sh->opts.check_interval_ms = 30000;
    if (sh->opts.reconnect_min_ms <= 0)
        sh->opts.reconnect_min_ms = 500;
    if (sh->opts.reconnect_max_ms <= 0)
        sh->opts.reconnect_max_ms = 30000;
    if (sh->opts.reconnect_max_ms < sh->opts.reconnect_min_ms)
        sh->opts.reconnect_max_ms = sh->opts.reconnect_min_ms;
    if (!(sh->results = zlist_new())) {
        snprintf(err, errlen, "model loader: out of memory");
        goto err;
    }
    if (!(sh->store = model_fetch_store(opts->cfg, err, errlen)) ||
        model_fetch_cache_dir(opts->cfg, sh->cache_dir, sizeof sh->cache_dir, err, errlen) != 0)
        goto err;
    if (!(self->actor = zactor_new(s_thread, sh))) {
        snprintf(err, errlen, "model loader: cannot start its thread");
        goto err;
    }
    return self;
err:
    s_shared_destroy(&self->shared);
    free(self);
    return NULL;
}

void ranker_loader_destroy(ranker_loader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ranker_loader_t *self = *self_p;
    zactor_destroy(&self->actor); //  joins: the thread touches nothing after this
    s_shared_destroy(&self->shared);
    free(self);
    *self_p = NULL;
}

zsock_t *ranker_loader_socket(ranker_loader_t *self)
{
    return zactor_sock(self->actor);
}

ranker_load_result_t *ranker_loader_take(ranker_loader_t *self)
{
    zsock_t *sock = zactor_sock(self->actor);
    while (zsock_events(sock) & ZMQ_POLLIN) {
        char *wake = zstr_recv(sock);
        if (!wake)
            break;
        free(wake);
    }
    s_shared_t *sh = self->shared;
    pthread_mutex_lock(&sh->lock);
    ranker_load_result_t *result = zlist_pop(sh->results);
    pthread_mutex_unlock(&sh->lock);
    return result;
}

int ranker_loader_check(ranker_loader_t *self)
{
    return zstr_send(zactor_sock(self->actor), "CHECK");
}

bool ranker_loader_checked(ranker_loader_t *self)
{
    s_shared_t *sh = self->shared;
    pthread_mutex_lock(&sh->lock);
    bool checked = sh->checked;
    pthread_mutex_unlock(&sh->lock);
    return checked;
}
