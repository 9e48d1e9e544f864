/*  trainer_worker.h: the trainer's job thread.

    Training takes seconds to minutes; the actor's own thread must keep
    heartbeating and answering meanwhile, so jobs run here. The worker owns
    one PostgreSQL connection for its whole life: it LISTENs on
    recsd_training (woken at once by a new request), claims queued models
    on it (the claim's advisory lock lives with this connection, see
    model_registry.h) and reports progress and the result on it. Between
    jobs it recovers orphans (runs whose trainer died) and waits for a
    notification, at most train_poll_ms.

    One job: load the data (training_data), fetch the active model of the
    type, run trainer_pipeline, upload the artifact
    (models/<type>/v<version>-<model_id>.rca, immutable), then record
    success with the gate's decision, activating the model in the same
    transaction when the gate passed; or record the failure.
*/
#ifndef RECSD_TRAINER_WORKER_H
#define RECSD_TRAINER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "trace.h"

//  Duration histogram buckets (seconds) of the runs, for /metrics.
#define TRAINER_DURATION_BUCKETS 8

typedef struct {
    bool busy;
    char model_id[40];
    char model_type[16];
    char phase[24];
    double percent;
    uint64_t succeeded, failed, activated, refused;
    double last_success; //  unix time of the last successful run, 0 = none
    uint64_t duration_counts[TRAINER_DURATION_BUCKETS + 1]; //  cumulative, last = +Inf
    double duration_sum;
    bool pg_up;
} trainer_status_t;

extern const double trainer_duration_bounds[TRAINER_DURATION_BUCKETS];

typedef struct trainer_worker_t trainer_worker_t;

//  Starts the thread. cfg, instance and tracer (may be NULL: no spans) are
//  borrowed and must outlive the worker. Each job is a "training.job" span
//  (continuing the requester's trace when the run has its context) with a
//  child span per phase: training.load, .split, .train, .tune, .evaluate,
//  .write, .upload. Returns NULL (logged) if the thread cannot start.
trainer_worker_t *trainer_worker_new(const config_t *cfg, const char *instance, tracer_t *tracer);

//  Asks the thread to stop (a run in progress is cancelled at its next
//  progress report and recorded as failed), joins it, frees everything.
//  Idempotent; sets *self_p to NULL.
void trainer_worker_destroy(trainer_worker_t **self_p);

//  A snapshot of the worker's state; thread-safe.
void trainer_worker_status(trainer_worker_t *self, trainer_status_t *out);

#endif
