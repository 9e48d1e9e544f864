/*  gateway_experiments.h: A/B experiments in the gateway: which variant a
    request gets, the exposures it records, and the admin API.

    Assignment. The running and stopped experiments (experiment.h) are
    held in memory, reloaded by a background thread when one changes
    (LISTEN recsd_experiments_changed, and every 5 s as a safety net), so
    assigning costs a hash, not a query. A request that names
    ?experiment_id= gets that experiment: its variant by the user's bucket
    while it is live, its control when stopped or outside its window; an
    id that is not a running or stopped experiment (unknown, or a draft)
    is 404. A request that names none is subject to the experiment live
    in the default layer (RECSD_EXPERIMENT_LAYER), if any: experiments on
    other layers apply only to the clients that name them, which is how
    overlapping experiments stay on disjoint traffic.

    Exposures. Every list served under a live experiment is queued (bounded;
    dropped and counted when full) and written in bulk by the same thread,
    every second or every 500 rows, never on the request path. Lists a
    stopped experiment's control serves are not exposures: they would mix
    post-stop traffic into the control's numbers.

    API:
      GET   /api/v1/recs/experiments[?status=running,stopped,draft]
            200 {"experiments":[...]} (default: running)
      POST  /api/v1/recs/experiments            (admin)
            201 the experiment (a draft), Location; 400 names the field;
            409 the name is taken
      GET   /api/v1/recs/experiments/{id}
            200 the experiment with "results" (experiment_store_results)
      PATCH /api/v1/recs/experiments/{id}       (admin)
            body {"status":"running"|"stopped"}; 200 the experiment; 409
            a forbidden transition or a busy layer

    Metrics: recsd_experiment_exposures_total{experiment,variant} (per
    variant, bounded to 64 series, the rest under experiment="other"),
    recsd_experiment_exposures_dropped_total, recsd_experiment_exposure_
    writes_total{result}, recsd_experiments_loaded.

    Ownership: the gateway context owns it; the pool is borrowed.
*/
#ifndef RECSD_GATEWAY_EXPERIMENTS_H
#define RECSD_GATEWAY_EXPERIMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "experiment.h"
#include "gateway_api.h"
#include "pg_pool.h"

typedef struct gateway_experiments_t gateway_experiments_t;

//  What one request is served under.
typedef struct {
    char experiment_id[EXPERIMENT_ID_LEN + 1];
    char experiment_name[EXPERIMENT_NAME_MAX + 1];
    char variant[EXPERIMENT_VARIANT_NAME_MAX + 1];
    char model_type[EXPERIMENT_MODEL_TYPE_MAX]; //  "" = the request's own type
    char model_id[EXPERIMENT_ID_LEN + 1];       //  "" = the type's active model
    experiment_params_t params;                 //  hybrid blend overrides
    bool live;                                  //  false: a stopped experiment's control
} gateway_assignment_t;

//  Starts the loader thread (it connects in the background). layer: the
//  default layer. Returns NULL with the reason in err.
gateway_experiments_t *gateway_experiments_new(const config_t *cfg, pg_pool_t *pool,
                                               const char *layer, char *err, size_t errlen);

//  Stops the thread after writing the queued exposures (best effort);
//  idempotent, sets *self_p to NULL.
void gateway_experiments_destroy(gateway_experiments_t **self_p);

//  The assignment of user_id under experiment_id (NULL or "": the default
//  layer's live experiment). Returns 1 with *out filled, 0 when no
//  experiment applies, -1 when experiment_id names no running or stopped
//  experiment (404). Thread-safe.
int gateway_experiments_assign(gateway_experiments_t *self, const char *experiment_id,
                               const char *user_id, gateway_assignment_t *out);

//  Queues the exposure of a list (video_ids[0..n), borrowed) served under
//  a (a live assignment; others are ignored). Never blocks on I/O.
void gateway_experiments_expose(gateway_experiments_t *self, const gateway_assignment_t *a,
                                const char *user_id, const char *const *video_ids, size_t n,
                                const char *request_id);

//  Writes the queued exposures now and waits (at most timeout_ms) until
//  they are written. Returns 0, or -1 on timeout. For tests and shutdown.
int gateway_experiments_flush(gateway_experiments_t *self, int timeout_ms);

//  Answers the EXPERIMENTS and EXPERIMENT routes. Thread-safe.
void gateway_experiments_handle(gateway_experiments_t *self, const gateway_api_request_t *req,
                                gateway_api_reply_t *reply);

//  Appends the metrics above. Returns 0, or -1 on a write error.
int gateway_experiments_metrics_write(gateway_experiments_t *self, FILE *out);

#endif
