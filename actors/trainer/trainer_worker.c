/*  trainer_worker.c: claim, train, record (see trainer_worker.h). */
#include "trainer_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "model_fetch.h"
#include "model_registry.h"
#include "pg_conn.h"
#include "pg_listener.h"
#include "serving_config_store.h"
#include "trace.h"
#include "trainer_pipeline.h"
#include "training_data.h"

const double trainer_duration_bounds[TRAINER_DURATION_BUCKETS] = {1,   5,   15,   60,
                                                                  300, 900, 3600, 14400};

#define PROGRESS_INTERVAL_S 0.5 //  progress rows at most this often
#define RECONNECT_MAX_MS 5000

struct trainer_worker_t {
    const config_t *cfg;
    const char *instance;
    char who[80]; //  "trainer:<instance>", the activating identity
    pthread_t thread;
    int wake_fd; //  eventfd: stop
    atomic_bool stopping;
    pg_listener_t *listener; //  the worker's connection: LISTENs, claims, records
    PGconn *conn;            //  pg_listener_conn, refreshed by s_service; NULL while down
    artifact_store_t *store;
    char cache_dir[512];
    json_t *defaults; //  hyper-parameters per type, from the configuration
    pthread_mutex_t mutex;
    trainer_status_t status; //  under mutex
    //  The run in progress (worker thread only).
    char run_model_id[40];
    double last_progress;
    bool lost_claim;
    //  Tracing of the run in progress (worker thread only): the job's span
    //  and the current phase's child; NULL when not traced.
    tracer_t *tracer; //  borrowed
    trace_span_t *job_span;
    trace_span_t *phase_span;
    char span_phase[24];
    int span_iterations;
};

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

//  Ends the current phase's span, with the iterations it went through.
static void s_end_phase_span(trainer_worker_t *self)
{
    if (self->span_iterations > 0)
        trace_span_set_int(self->phase_span, "recsd.training.iterations", self->span_iterations);
    trace_span_end(&self->phase_span);
    self->span_phase[0] = '\0';
    self->span_iterations = 0;
}

//  A new phase name starts a child span of the job's, "training.<phase>";
//  progress within the phase only counts its iterations.
static void s_trace_phase(trainer_worker_t *self, const char *phase, int iteration)
{
    if (!self->job_span || !phase || !*phase)
        return;
    if (strcmp(phase, self->span_phase) != 0) {
        s_end_phase_span(self);
        char name[48];
        snprintf(name, sizeof name, "training.%s", phase);
        self->phase_span = trace_span_child(self->job_span, name, TRACE_KIND_INTERNAL);
        snprintf(self->span_phase, sizeof self->span_phase, "%s", phase);
    }
    if (iteration + 1 > self->span_iterations)
        self->span_iterations = iteration + 1;
}

//  The phase in the status (and its span); iteration < 0: none.
static void s_set_phase(trainer_worker_t *self, const char *phase, int iteration, double percent)
{
    s_trace_phase(self, phase, iteration);
    pthread_mutex_lock(&self->mutex);
    snprintf(self->status.phase, sizeof self->status.phase, "%s", phase ? phase : "");
    if (percent >= 0)
        self->status.percent = percent;
    pthread_mutex_unlock(&self->mutex);
}

//  ---- connection -------------------------------------------------------------

//  Takes what the connection received (notifications only wake us: the
//  loop claims after every wait) and, when the back-off allows, connects
//  (blocking up to the connect timeout).
static void s_service(trainer_worker_t *self)
{
    pg_listener_event_t ev;
    pg_listener_service(self->listener, true, &ev);
    self->conn = pg_listener_conn(self->listener);
    if (ev.lost)
        log_warn("trainer: PostgreSQL %s", ev.error);
    else if (ev.connect_failed)
        log_warn("trainer: PostgreSQL unavailable, jobs wait: %s", ev.error);
    if (ev.connected || ev.lost) {
        pthread_mutex_lock(&self->mutex);
        self->status.pg_up = self->conn != NULL;
        pthread_mutex_unlock(&self->mutex);
    }
}

//  Waits up to timeout_ms for a notification on the connection or a stop.
static void s_wait(trainer_worker_t *self, int timeout_ms)
{
    int fd = pg_listener_socket(self->listener);
    struct pollfd fds[2] = {{.fd = self->wake_fd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    int n = poll(fds, fd >= 0 ? 2 : 1, timeout_ms > 0 ? timeout_ms : 0);
    if (n > 0 && fd >= 0 && (fds[1].revents & POLLIN))
        s_service(self);
}

//  ---- one job -----------------------------------------------------------------

static int s_progress(const char *phase, int iteration, double percent, void *arg)
{
    trainer_worker_t *self = arg;
    if (atomic_load(&self->stopping))
        return -1;
    s_set_phase(self, phase, iteration, percent);
    double now = s_mono();
    if (now - self->last_progress < PROGRESS_INTERVAL_S && percent < 100)
        return 0;
    self->last_progress = now;
    char err[512];
    int rc = model_registry_progress(self->conn, self->run_model_id, phase, iteration, percent, err,
                                     sizeof err);
    if (rc == MODEL_REGISTRY_NOT_FOUND) {
        //  Someone marked the run failed (it looked orphaned): whatever we
        //  produce now would not be recorded.
        self->lost_claim = true;
        return -1;
    }
    if (rc != MODEL_REGISTRY_OK)
        log_warn("trainer: progress of %s not recorded: %s", self->run_model_id, err);
    return 0;
}

static void s_record_duration(trainer_worker_t *self, double seconds, bool ok)
{
    pthread_mutex_lock(&self->mutex);
    for (int b = 0; b < TRAINER_DURATION_BUCKETS; b++)
        if (seconds <= trainer_duration_bounds[b])
            self->status.duration_counts[b]++;
    self->status.duration_counts[TRAINER_DURATION_BUCKETS]++;
    self->status.duration_sum += seconds;
    if (ok) {
        self->status.succeeded++;
        self->status.last_success = s_now();
    } else
        self->status.failed++;
    pthread_mutex_unlock(&self->mutex);
}

//  The active model of the type as a local file, or "" if none (or it
//  cannot be fetched: then the gate has nothing to compare with, logged).
static void s_active_local(trainer_worker_t *self, const char *type, char *path, size_t pathlen,
                           char *checksum, size_t checksumlen)
{
    path[0] = checksum[0] = '\0';
    model_registry_active_t active;
    char err[512];
    int rc = model_registry_active(self->conn, type, &active, err, sizeof err);
    if (rc == MODEL_REGISTRY_NOT_FOUND)
        return;
    if (rc != MODEL_REGISTRY_OK ||
        model_fetch(self->store, active.artifact_path, active.artifact_checksum, self->cache_dir,
                    path, pathlen, err, sizeof err) != 0) {
        log_warn("trainer: active %s model not available for comparison: %s", type, err);
        path[0] = '\0';
        return;
    }
    snprintf(checksum, checksumlen, "%s", active.artifact_checksum);
}

//  The event weights of the serving configuration in force (the stored
//  current version, else the environment's: version 0) into opts, and as
//  {"watch", "rating", "rating_neutral", "watchlist_add",
//  "watchlist_remove", "config_version"} for the run's params: a model
//  says which weights trained it, and the ranker scores histories with
//  the same ones. Returns the object (owned by the caller), or NULL if out
//  of memory.
static json_t *s_event_weights(trainer_worker_t *self, training_data_options_t *opts)
{
    serving_config_t defaults, cfg;
    serving_config_from_config(self->cfg, &defaults);
    int64_t version = 0;
    char err[512];
    if (serving_config_store_current(self->conn, &defaults, &cfg, &version, err, sizeof err) !=
        SERVING_CONFIG_STORE_OK) {
        //  Unreadable (a document a later recsd wrote, a failing query):
        //  the environment's weights, said so in the log and the params.
        log_warn("trainer: serving configuration not read, training with the environment's "
                 "event weights: %s",
                 err);
        cfg = defaults;
        version = -1;
    }
    opts->weight_watch = cfg.weight_watch;
    opts->weight_rating = cfg.weight_rating;
    opts->rating_neutral = cfg.rating_neutral;
    opts->weight_watchlist_add = cfg.weight_watchlist_add;
    opts->weight_watchlist_remove = cfg.weight_watchlist_remove;
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I}", "watch", cfg.weight_watch, "rating",
                     cfg.weight_rating, "rating_neutral", cfg.rating_neutral, "watchlist_add",
                     cfg.weight_watchlist_add, "watchlist_remove", cfg.weight_watchlist_remove,
                     "config_version", (json_int_t)version);
}

static int s_run(trainer_worker_t *self, const model_registry_claim_t *claim, char *err,
                 size_t errlen, char *artifact_url, size_t urllen, trainer_pipeline_output_t *out)
{
    training_data_options_t opts;
    training_data_options_from_config(&opts, self->cfg);
    json_t *weights = s_event_weights(self, &opts);
    if (!weights) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *weights_text = json_dumps(weights, JSON_COMPACT | JSON_REAL_PRECISION(15));
    log_info("trainer: %s model %s trains with event weights %s", claim->model_type,
             claim->model_id, weights_text ? weights_text : "(out of memory)");
    free(weights_text);
    if (claim->has_start)
        opts.start_time = claim->start_us / 1000000;
    //  The request's end date is inclusive; the loader's bound exclusive.
    if (claim->has_end)
        opts.end_time = claim->end_us / 1000000 + 1;
    s_set_phase(self, "load", -1, 0);
    training_data_t *data = training_data_load(self->conn, &opts, err, errlen);
    if (!data) {
        json_decref(weights);
        //  The text may hold SQL details: log it, store a plain reason.
        log_error("trainer: loading training data failed: %s", err);
        snprintf(err, errlen, "loading the training data failed");
        return -1;
    }
    char active[600], active_sum[130], local[600];
    s_active_local(self, claim->model_type, active, sizeof active, active_sum, sizeof active_sum);
    snprintf(local, sizeof local, "%s/new-%s.rca", self->cache_dir, claim->model_id);
    trainer_pipeline_input_t in = {.cfg = self->cfg,
                                   .data = data,
                                   .model_type = claim->model_type,
                                   .params = claim->params,
                                   .event_weights = weights,
                                   .active_path = active[0] ? active : NULL,
                                   .active_checksum = active_sum[0] ? active_sum : NULL,
                                   .out_path = local,
                                   .progress = s_progress,
                                   .progress_arg = self};
    int rc = trainer_pipeline_run(&in, out, err, errlen);
    training_data_destroy(&data);
    json_decref(weights);
    if (rc != 0)
        return -1;
    char key[256];
    snprintf(key, sizeof key, "models/%s/v%d-%s.rca", claim->model_type, claim->version,
             claim->model_id);
    s_set_phase(self, "upload", -1, 99);
    char why[512];
    if (artifact_store_put(self->store, local, key, why, sizeof why) != 0) {
        log_error("trainer: artifact upload failed: %s", why);
        snprintf(err, errlen, "artifact upload failed");
        unlink(local);
        return -1;
    }
    //  Keep the uploaded file in the cache under its checksum name, where a
    //  later fetch looks for it.
    char cached[600];
    snprintf(cached, sizeof cached, "%s/%s.rca", self->cache_dir, out->checksum);
    if (rename(local, cached) != 0)
        unlink(local);
    char *url = artifact_store_url(self->store, key);
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(artifact_url, urllen, "%s", url);
    free(url);
    return 0;
}

static void s_job(trainer_worker_t *self, model_registry_claim_t *claim)
{
    snprintf(self->run_model_id, sizeof self->run_model_id, "%s", claim->model_id);
    self->lost_claim = false;
    self->last_progress = 0;
    pthread_mutex_lock(&self->mutex);
    self->status.busy = true;
    snprintf(self->status.model_id, sizeof self->status.model_id, "%s", claim->model_id);
    snprintf(self->status.model_type, sizeof self->status.model_type, "%s", claim->model_type);
    self->status.percent = 0;
    pthread_mutex_unlock(&self->mutex);
    log_info("trainer: training %s model %s (version %d)", claim->model_type, claim->model_id,
             claim->version);
    //  A run asked for over HTTP continues the request's trace (the
    //  context came with the queued row); a scheduled one starts its own.
    trace_ctx_t parent;
    bool has_parent = claim->traceparent[0] && trace_ctx_parse(claim->traceparent, &parent) == 0;
    self->job_span = tracer_start(self->tracer, "training.job", TRACE_KIND_CONSUMER,
                                  has_parent ? &parent : NULL);
    trace_span_set_str(self->job_span, "recsd.model_id", claim->model_id);
    trace_span_set_str(self->job_span, "recsd.model_type", claim->model_type);
    trace_span_set_str(self->job_span, "recsd.training_id", claim->training_id);
    trace_span_set_int(self->job_span, "recsd.model_version", claim->version);
    trace_span_set_str(self->job_span, "recsd.trigger", claim->trigger);

    double started = s_mono();
    char err[512] = "", url[1024] = "", dberr[512];
    trainer_pipeline_output_t out = {0};
    int rc = s_run(self, claim, err, sizeof err, url, sizeof url, &out);
    double seconds = s_mono() - started;
    s_end_phase_span(self);
    if (rc == 0) {
        trace_span_set_bool(self->job_span, "recsd.gate_passed", out.gate_passed);
        model_registry_result_t result = {.metrics = out.metrics,
                                          .artifact_path = url,
                                          .artifact_checksum = out.checksum,
                                          .gate_decided = true,
                                          .gate_passed = out.gate_passed,
                                          .gate_reason = out.gate_reason,
                                          .activate = out.gate_passed,
                                          .activated_by = self->who};
        int r = model_registry_succeed(self->conn, claim->model_id, &result, dberr, sizeof dberr);
        if (r != MODEL_REGISTRY_OK)
            log_error("trainer: %s model %s trained but not recorded: %s", claim->model_type,
                      claim->model_id, dberr);
        else
            log_info("trainer: %s model %s succeeded in %.1f s; gate %s: %s", claim->model_type,
                     claim->model_id, seconds, out.gate_passed ? "passed, activated" : "refused",
                     out.gate_reason);
        pthread_mutex_lock(&self->mutex);
        self->status.activated += r == MODEL_REGISTRY_OK && out.gate_passed;
        self->status.refused += r == MODEL_REGISTRY_OK && !out.gate_passed;
        pthread_mutex_unlock(&self->mutex);
        s_record_duration(self, seconds, r == MODEL_REGISTRY_OK);
    } else {
        if (atomic_load(&self->stopping) && !self->lost_claim)
            snprintf(err, sizeof err, "trainer stopped mid-run");
        if (self->lost_claim)
            log_warn("trainer: %s model %s was taken from this trainer mid-run", claim->model_type,
                     claim->model_id);
        else if (model_registry_fail(self->conn, claim->model_id, err, dberr, sizeof dberr) !=
                 MODEL_REGISTRY_OK)
            log_error("trainer: failure of %s not recorded: %s", claim->model_id, dberr);
        else
            log_warn("trainer: %s model %s failed after %.1f s: %s", claim->model_type,
                     claim->model_id, seconds, err);
        s_record_duration(self, seconds, false);
        trace_span_set_error(self->job_span, err);
    }
    trace_span_end(&self->job_span);
    trainer_pipeline_output_clear(&out);
    pthread_mutex_lock(&self->mutex);
    self->status.busy = false;
    self->status.phase[0] = '\0';
    pthread_mutex_unlock(&self->mutex);
}

//  ---- the thread --------------------------------------------------------------

static void *s_thread(void *arg)
{
    trainer_worker_t *self = arg;
    while (!atomic_load(&self->stopping)) {
        s_service(self);
        if (!self->conn) {
            int64_t wait = pg_listener_next_connect(self->listener) - (int64_t)(s_mono() * 1000);
            s_wait(self, wait > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : (int)wait);
            continue;
        }
        char err[512];
        int recovered = model_registry_recover(self->conn, err, sizeof err);
        if (recovered > 0)
            log_warn("trainer: %d run(s) whose trainer died marked failed", recovered);
        model_registry_claim_t claim;
        int rc = recovered < 0 ? MODEL_REGISTRY_ERROR
                               : model_registry_claim(self->conn, self->who, self->defaults, &claim,
                                                      err, sizeof err);
        if (rc == 1) {
            s_job(self, &claim);
            model_registry_claim_clear(&claim);
            continue; //  more may be queued
        }
        if (rc < 0) {
            log_warn("trainer: queue unavailable: %s", err);
            if (PQstatus(self->conn) != CONNECTION_OK) {
                s_service(self); //  reports the loss, schedules the reconnect
                continue;
            }
        }
        s_wait(self, self->cfg->train_poll_ms);
    }
    pg_listener_destroy(&self->listener);
    self->conn = NULL;
    pthread_mutex_lock(&self->mutex);
    self->status.pg_up = false;
    pthread_mutex_unlock(&self->mutex);
    return NULL;
}

//  Hyper-parameter defaults per type, recorded with each claimed model.
static json_t *s_defaults(const config_t *cfg)
{
    json_t *als = json_pack("{s:i, s:i, s:f, s:f, s:i}", "factors", cfg->als_factors, "iterations",
                            cfg->als_iterations, "regularization", cfg->als_regularization, "alpha",
                            cfg->als_alpha, "seed", cfg->train_seed);
    json_t *hybrid = json_deep_copy(als);
    if (hybrid) {
        json_object_set_new(hybrid, "ease_max_items", json_integer(cfg->ease_max_items));
        json_object_set_new(hybrid, "ease_lambda", json_real(cfg->ease_lambda));
        json_object_set_new(hybrid, "neighbours", json_integer(cfg->neighbours_k));
    }
    return json_pack("{s:o, s:{s:i}, s:o*, s:{}, s:{s:i, s:f}, s:{s:i}}", "collaborative", als,
                     "content", "neighbours", cfg->neighbours_k, "hybrid", hybrid, "popularity",
                     "ease", "ease_max_items", cfg->ease_max_items, "ease_lambda", cfg->ease_lambda,
                     "item_knn", "neighbours", cfg->neighbours_k);
}

trainer_worker_t *trainer_worker_new(const config_t *cfg, const char *instance, tracer_t *tracer)
{
    trainer_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->instance = instance;
    self->tracer = tracer;
    snprintf(self->who, sizeof self->who, "trainer:%s", instance);
    self->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&self->mutex, NULL);
    char err[512];
    self->defaults = s_defaults(cfg);
    const char *channels[] = {MODEL_REGISTRY_CHANNEL_TRAINING};
    pg_listener_options_t lopts = {
        .connect_timeout_s = 5, .backoff_min_ms = 100, .backoff_max_ms = RECONNECT_MAX_MS};
    self->listener = pg_listener_new(cfg->pg_dsn, "trainer", channels, 1, &lopts);
    if (self->wake_fd < 0 || !self->defaults || !self->listener)
        goto err;
    if (!(self->store = model_fetch_store(cfg, err, sizeof err)) ||
        model_fetch_cache_dir(cfg, self->cache_dir, sizeof self->cache_dir, err, sizeof err) != 0) {
        log_error("trainer: artifact store: %s", err);
        goto err;
    }
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0) {
        log_error("trainer: cannot start the worker thread: %s", strerror(errno));
        goto err;
    }
    return self;
err:
    pg_listener_destroy(&self->listener);
    artifact_store_destroy(&self->store);
    json_decref(self->defaults);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    pthread_mutex_destroy(&self->mutex);
    free(self);
    return NULL;
}

void trainer_worker_destroy(trainer_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trainer_worker_t *self = *self_p;
    atomic_store(&self->stopping, true);
    uint64_t one = 1;
    if (write(self->wake_fd, &one, sizeof one) != sizeof one)
        log_warn("trainer: cannot wake the worker: %s", strerror(errno));
    pthread_join(self->thread, NULL);
    pg_listener_destroy(&self->listener); //  a no-op: the thread closed it at exit
    artifact_store_destroy(&self->store);
    json_decref(self->defaults);
    close(self->wake_fd);
    pthread_mutex_destroy(&self->mutex);
    free(self);
    *self_p = NULL;
}

void trainer_worker_status(trainer_worker_t *self, trainer_status_t *out)
{
    pthread_mutex_lock(&self->mutex);
    *out = self->status;
    pthread_mutex_unlock(&self->mutex);
}
