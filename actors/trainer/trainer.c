/*  trainer.c: the trainer actor.

    Two threads. This one is the actor: it heartbeats, answers the
    supervisor, runs the schedule and publishes metrics. The job thread
    (trainer_worker.h) claims and trains models from the queue in
    PostgreSQL, so a training run of minutes never delays a heartbeat.

    Schedule: every SCHEDULE_CHECK_MS this actor tries to be the leader
    among all trainers (a session advisory lock on its own connection,
    model_registry_try_leader); the leader queues an "all" run, trigger
    "schedule", when none was queued in the last RECSD_TRAIN_INTERVAL_S
    (model_registry_schedule_if_due, itself safe against two leaders).
    A deployment with no model yet therefore trains at start.
    RECSD_TRAIN_INTERVAL_S=0 turns the schedule off.

    Metrics (through the heartbeat): queue depth (queued, running), run
    durations, runs by outcome, gate decisions, last success time, and
    NDCG@10 of each active model.
*/
#include "trainer.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "actor_link.h"
#include "log.h"
#include "model_registry.h"
#include "pg_conn.h"
#include "trace.h"
#include "trainer_worker.h"

#define SCHEDULE_CHECK_MS 10000
#define METRICS_MS 5000
#define QUERY_TIMEOUT_MS 2000

typedef struct {
    const config_t *cfg;
    const char *instance;
    actor_link_t *link;
    tracer_t *tracer; //  shared with the worker thread (thread-safe)
    trainer_worker_t *worker;
    PGconn *conn; //  schedule and metrics (not the worker's)
    bool leader;
    int64_t next_schedule, next_metrics, next_connect;
    long queued, running;
    json_t *active_quality; //  model_type -> NDCG@10 of the active model
} self_t;

static void s_disconnect(self_t *self)
{
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
    if (self->leader)
        log_info("trainer: schedule leadership lost with the PostgreSQL connection");
    self->leader = false;
}

static bool s_ensure_pg(self_t *self)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return true;
    s_disconnect(self);
    if (zclock_mono() < self->next_connect)
        return false;
    char err[512];
    self->conn = pg_conn_open(self->cfg->pg_dsn, "trainer-schedule", 2, err, sizeof err);
    if (!self->conn ||
        pg_conn_statement_timeout(self->conn, QUERY_TIMEOUT_MS, err, sizeof err) != 0) {
        s_disconnect(self);
        self->next_connect = zclock_mono() + 5000;
        log_debug("trainer: schedule connection unavailable: %s", err);
        return false;
    }
    return true;
}

static void s_schedule(self_t *self)
{
    if (self->cfg->train_interval_s <= 0 || !s_ensure_pg(self))
        return;
    char err[512], who[96];
    bool leader = false;
    if (model_registry_try_leader(self->conn, &leader, err, sizeof err) != MODEL_REGISTRY_OK) {
        log_warn("trainer: schedule leader check failed: %s", err);
        s_disconnect(self);
        return;
    }
    if (leader != self->leader)
        log_info("trainer: %s the schedule leader", leader ? "now" : "no longer");
    self->leader = leader;
    if (!leader)
        return;
    snprintf(who, sizeof who, "trainer:%s", self->instance);
    model_registry_enqueued_t queued;
    int rc = model_registry_schedule_if_due(self->conn, self->cfg->train_interval_s, who, &queued,
                                            err, sizeof err);
    if (rc == 1)
        log_info("trainer: scheduled training %s queued (%d models)", queued.training_id,
                 queued.count);
    else if (rc < 0)
        log_warn("trainer: scheduled training not queued: %s", err);
}

//  NDCG@10 of each active model, from the registry listing.
static void s_refresh_quality(self_t *self)
{
    char err[512];
    int rc = 0;
    json_t *list =
        model_registry_list(self->conn, NULL, MODEL_REGISTRY_LIST_MAX, &rc, err, sizeof err);
    if (!list) {
        log_debug("trainer: model listing for metrics failed: %s", err);
        return;
    }
    json_t *quality = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(list, "models"), i, m)
    {
        if (!json_is_true(json_object_get(m, "active")))
            continue;
        json_t *ndcg =
            json_object_get(json_object_get(json_object_get(m, "metrics"), "model"), "ndcg_at_10");
        const char *type = json_string_value(json_object_get(m, "model_type"));
        if (type && json_is_number(ndcg))
            json_object_set(quality, type, ndcg);
    }
    json_decref(list);
    json_decref(self->active_quality);
    self->active_quality = quality;
}

static void s_metrics(self_t *self)
{
    if (s_ensure_pg(self)) {
        char err[512];
        if (model_registry_queue_depth(self->conn, &self->queued, &self->running, err,
                                       sizeof err) != MODEL_REGISTRY_OK) {
            log_debug("trainer: queue depth unavailable: %s", err);
            s_disconnect(self);
        } else
            s_refresh_quality(self);
    }
    trainer_status_t st;
    trainer_worker_status(self->worker, &st);
    actor_link_set_queue_depth(self->link, (uint64_t)(self->queued > 0 ? self->queued : 0));
    const char *a = self->instance;
    char text[4096];
    size_t len = 0;
#define S_APPEND(...)                                                                              \
    do {                                                                                           \
        int n_ = snprintf(text + len, sizeof text - len, __VA_ARGS__);                             \
        if (n_ < 0 || (size_t)n_ >= sizeof text - len)                                             \
            return;                                                                                \
        len += (size_t)n_;                                                                         \
    } while (0)
    S_APPEND("# HELP recsd_training_queue_depth Models waiting in the training queue, by state.\n"
             "# TYPE recsd_training_queue_depth gauge\n"
             "recsd_training_queue_depth{actor=\"%s\",state=\"queued\"} %ld\n"
             "recsd_training_queue_depth{actor=\"%s\",state=\"running\"} %ld\n",
             a, self->queued, a, self->running);
    S_APPEND("# HELP recsd_training_runs_total Training runs of this trainer, by outcome.\n"
             "# TYPE recsd_training_runs_total counter\n"
             "recsd_training_runs_total{actor=\"%s\",outcome=\"succeeded\"} %" PRIu64 "\n"
             "recsd_training_runs_total{actor=\"%s\",outcome=\"failed\"} %" PRIu64 "\n",
             a, st.succeeded, a, st.failed);
    S_APPEND("# HELP recsd_training_gate_total Quality gate decisions on succeeded runs.\n"
             "# TYPE recsd_training_gate_total counter\n"
             "recsd_training_gate_total{actor=\"%s\",decision=\"activated\"} %" PRIu64 "\n"
             "recsd_training_gate_total{actor=\"%s\",decision=\"refused\"} %" PRIu64 "\n",
             a, st.activated, a, st.refused);
    S_APPEND("# HELP recsd_training_last_success_timestamp_seconds When a run last succeeded.\n"
             "# TYPE recsd_training_last_success_timestamp_seconds gauge\n"
             "recsd_training_last_success_timestamp_seconds{actor=\"%s\"} %.3f\n",
             a, st.last_success);
    S_APPEND("# HELP recsd_training_running Whether this trainer is training now.\n"
             "# TYPE recsd_training_running gauge\n"
             "recsd_training_running{actor=\"%s\"} %d\n",
             a, st.busy ? 1 : 0);
    S_APPEND("# HELP recsd_training_duration_seconds Training run durations.\n"
             "# TYPE recsd_training_duration_seconds histogram\n");
    for (int b = 0; b < TRAINER_DURATION_BUCKETS; b++)
        S_APPEND("recsd_training_duration_seconds_bucket{actor=\"%s\",le=\"%g\"} %" PRIu64 "\n", a,
                 trainer_duration_bounds[b], st.duration_counts[b]);
    S_APPEND("recsd_training_duration_seconds_bucket{actor=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
             "recsd_training_duration_seconds_sum{actor=\"%s\"} %.3f\n"
             "recsd_training_duration_seconds_count{actor=\"%s\"} %" PRIu64 "\n",
             a, st.duration_counts[TRAINER_DURATION_BUCKETS], a, st.duration_sum, a,
             st.duration_counts[TRAINER_DURATION_BUCKETS]);
    S_APPEND("# HELP recsd_model_ndcg_at_10 Offline NDCG@10 of the active model of each type.\n"
             "# TYPE recsd_model_ndcg_at_10 gauge\n");
    const char *type;
    json_t *value;
    json_object_foreach(self->active_quality, type, value)
        S_APPEND("recsd_model_ndcg_at_10{actor=\"%s\",model_type=\"%s\"} %.6f\n", a, type,
                 json_number_value(value));
#undef S_APPEND
    if (tracer_metrics(self->tracer, a, text, sizeof text, &len) != 0)
        log_warn("trainer: no room for the tracing counters in the metrics text");
    if (actor_link_set_metrics(self->link, text) != 0)
        log_warn("trainer: metrics text too long for a heartbeat");
}

int trainer_main(const config_t *cfg, const char *instance)
{
    self_t self = {.cfg = cfg, .instance = instance, .active_quality = json_object()};
    self.link = actor_link_new(cfg, instance);
    if (!self.link)
        return 1;
    char err[512];
    self.tracer = tracer_new(instance, err, sizeof err);
    if (!self.tracer) {
        log_error("trainer: tracing: %s", err);
        actor_link_destroy(&self.link);
        return 1;
    }
    self.worker = trainer_worker_new(cfg, instance, self.tracer);
    if (!self.worker) {
        tracer_destroy(&self.tracer);
        actor_link_destroy(&self.link);
        return 1;
    }
    actor_link_set_ready(self.link);
    log_info("trainer ready (schedule every %d s%s)", cfg->train_interval_s,
             cfg->train_interval_s > 0 ? "" : ": off");
    int64_t now = zclock_mono();
    self.next_schedule = now; //  a deployment without models trains at start
    self.next_metrics = now;
    while (!actor_link_stopping(self.link)) {
        zmq_pollitem_t item = {zsock_resolve(actor_link_socket(self.link)), 0, ZMQ_POLLIN, 0};
        long timeout = actor_link_timeout_ms(self.link);
        if (timeout > 1000)
            timeout = 1000;
        if (zmq_poll(&item, 1, timeout) < 0 && errno != EINTR)
            break;
        if (item.revents & ZMQ_POLLIN)
            actor_link_handle(self.link);
        now = zclock_mono();
        if (now >= self.next_schedule) {
            s_schedule(&self);
            self.next_schedule = now + SCHEDULE_CHECK_MS;
        }
        if (now >= self.next_metrics) {
            s_metrics(&self);
            self.next_metrics = now + METRICS_MS;
        }
        actor_link_tick(self.link);
    }
    log_info("trainer stopping");
    trainer_worker_destroy(&self.worker);
    //  After the worker: its last job's spans are flushed with the rest.
    tracer_destroy(&self.tracer);
    s_disconnect(&self);
    json_decref(self.active_quality);
    actor_link_destroy(&self.link);
    return 0;
}
