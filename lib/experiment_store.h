/*  experiment_store.h: A/B experiments in PostgreSQL (experiments schema,
    migrations/008_experiments.sql and 010_experiment_results.sql).

    Every statement on experiments.* lives here; the gateway (admin API,
    exposures, results), the ranker and the ingestor (attribution) call
    these functions. They take a connection the caller owns and never keep
    it (a pooled connection is fine).

    Lifecycle: draft -> running (start_at = now() unless set) -> stopped
    (end_at = now()); draft -> stopped cancels a draft; a stopped
    experiment is never restarted (create a new one: its results would mix
    two periods). At most one experiment runs per layer (the partial unique
    index experiments_running_layer_idx). Every change sends
    `NOTIFY recsd_experiments_changed, '<experiment_id>'` in the same
    transaction, so gateways reload their experiment_set_t at once.

    Exposures and outcomes. Every list served under an experiment is an
    exposure {experiment, variant, user, video ids, request id, time},
    written in bulk (experiment_store_record_exposures). A VideoWatched of a
    video of an exposure of the same user, served within the attribution
    window before the watch, is an outcome (experiment_store_attribute_-
    watches); an exposure with at least one outcome is a conversion.
    Replays of the same watch count once (unique (exposure_id, video_id)).
    The window compares the gateway's served_at with the event's watched
    time, so clock skew between them shifts it.

    Return codes: EXPERIMENT_STORE_OK (0) or a negative
    experiment_store_rc_t, mapping to HTTP as INVALID 400, NOT_FOUND 404,
    CONFLICT 409, INTERNAL 500. For INTERNAL err holds the server's
    message, for logs only (it may contain SQL details); the other codes
    leave a short reason fit for a client, naming the field where there is
    one ("variants[1].model_id: ...").

    Thread-safety: the functions share nothing; a connection must not be
    used by two threads at once (libpq's rule).
*/
#ifndef RECSD_EXPERIMENT_STORE_H
#define RECSD_EXPERIMENT_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "experiment.h"

#define EXPERIMENT_STORE_CHANNEL "recsd_experiments_changed"
#define EXPERIMENT_STORE_WINDOW_MAX (30 * 86400) //  attribution window bound, seconds
#define EXPERIMENT_STORE_ID_MAX 512              //  user, video, request id bytes

typedef enum {
    EXPERIMENT_STORE_OK = 0,
    EXPERIMENT_STORE_INTERNAL = -1,  //  database or connection failure
    EXPERIMENT_STORE_NOT_FOUND = -2, //  no such experiment
    EXPERIMENT_STORE_CONFLICT = -3,  //  duplicate name, layer busy, forbidden transition
    EXPERIMENT_STORE_INVALID = -4    //  refused input (before or by SQL)
} experiment_store_rc_t;

//  ---- definitions -----------------------------------------------------

//  Stores def (validated again with experiment_validate; its id, status,
//  created_* are ignored) as a draft created by created_by (1..200 bytes;
//  NULL = "unknown"), with its variants in their order, in one
//  transaction, and notifies. A variant's model_id must name a model in
//  training.models that has an artifact (succeeded, active or retired) and
//  whose type equals the variant's model_type; a variant with a model_id
//  and no model_type gets the model's type. Writes the new id into id_out.
//  Returns OK; INVALID (field named in err); CONFLICT (the name is taken);
//  INTERNAL.
int experiment_store_create(PGconn *conn, const experiment_t *def, const char *created_by,
                            char id_out[EXPERIMENT_ID_LEN + 1], char *err, size_t errlen);

//  Moves experiment id to status "running" or "stopped" (see the header
//  comment); *changed (may be NULL) tells whether anything changed
//  (asking for the current status is OK and changes nothing). Returns OK;
//  INVALID (not a uuid, unknown status); NOT_FOUND; CONFLICT (restart a
//  stopped one, end_at already passed, another experiment runs in the
//  layer: err names it); INTERNAL.
int experiment_store_set_status(PGconn *conn, const char *id, const char *status, bool *changed,
                                char *err, size_t errlen);

//  Every running and stopped experiment with its variants (what serving
//  needs: stopped ones still answer with their control), newest first. A
//  row that fails experiment_validate (edited by hand) is left out and
//  counted in *skipped (may be NULL). Returns a new set the caller owns
//  (experiment_set_destroy), or NULL with the reason in err.
experiment_set_t *experiment_store_load_set(PGconn *conn, int *skipped, char *err, size_t errlen);

//  One experiment as an experiment_t. Returns OK with *out a new
//  experiment the caller owns (experiment_destroy); INVALID (not a uuid);
//  NOT_FOUND; INTERNAL.
int experiment_store_fetch(PGconn *conn, const char *id, experiment_t **out, char *err,
                           size_t errlen);

//  One experiment rendered by experiment_to_json. Returns OK with *out a
//  new reference the caller owns; INVALID; NOT_FOUND; INTERNAL.
int experiment_store_get(PGconn *conn, const char *id, json_t **out, char *err, size_t errlen);

//  {"experiments": [experiment_to_json..., newest first]}, only those with
//  status in statuses (a NULL-terminated list of "draft", "running",
//  "stopped"; NULL = all). Returns OK with *out a new reference the
//  caller owns; INVALID (unknown status); INTERNAL.
int experiment_store_list(PGconn *conn, const char *const *statuses, json_t **out, char *err,
                          size_t errlen);

//  ---- exposures and outcomes ------------------------------------------

typedef struct {
    const char *experiment_id;    //  uuid
    const char *variant;          //  variant name
    const char *user_id;          //  1..EXPERIMENT_STORE_ID_MAX bytes
    const char *const *video_ids; //  n_videos ids as served, in order
    size_t n_videos;
    const char *request_id; //  may be NULL
    int64_t served_us;      //  microseconds since the epoch; <= 0: now()
} experiment_exposure_t;

//  Inserts n exposures (all pointers borrowed) in one statement. Rows are
//  checked first (uuid, variant name, ids valid UTF-8 of bounded length):
//  a bad one makes the call INVALID, naming the row, and writes nothing.
//  Runs in the caller's transaction if one is open, else on its own.
//  Returns OK (n rows written; n == 0 does nothing), INVALID, INTERNAL.
int experiment_store_record_exposures(PGconn *conn, const experiment_exposure_t *rows, size_t n,
                                      char *err, size_t errlen);

typedef struct {
    const char *user_id;
    const char *video_id;
    int64_t watched_us; //  when watched, microseconds since the epoch
    double completion;  //  0..1 (clipped to 1); negative or NaN: unknown
    int watched_s;      //  seconds watched; negative: unknown
} experiment_watch_t;

//  Attributes n VideoWatched events: for each, one outcome per exposure of
//  that user served within [watched - window_s, watched] whose video_ids
//  contain the video (ON CONFLICT DO NOTHING: replays count once; two
//  watches of one video in a batch keep the earliest). One statement for
//  the batch, inside the caller's open transaction (the ingestor's: the
//  outcomes commit with the interactions); it neither begins nor commits.
//  *attributed (may be NULL) gets the number of outcomes written. Returns
//  OK; INVALID (no transaction open, window_s outside
//  1..EXPERIMENT_STORE_WINDOW_MAX, a bad row: nothing written);
//  INTERNAL (the caller's transaction is then aborted: roll it back).
int experiment_store_attribute_watches(PGconn *conn, const experiment_watch_t *watches, size_t n,
                                       int window_s, long *attributed, char *err, size_t errlen);

//  Results of experiment id, per variant in order:
//    {"experiment_id","name","status","start_at","end_at",
//     "confidence_level":0.95,
//     "variants":[{"name","is_control","users","exposures","conversions",
//                  "outcomes","conversion_rate",
//                  "conversion_rate_ci":{"lower","upper"},
//                  "mean_watch_completion","mean_watched_s",
//                  "vs_control": null for the control, else
//                    {"rate_difference" (variant - control, absolute),
//                     "relative_lift" (difference / control rate),
//                     "z","p_value" (two-sided pooled z-test),
//                     "significant" (p < 0.05),
//                     "completion_difference","completion_p_value"
//                     (Welch t-test on outcomes' watch completion)}}]}
//  users = distinct exposed users, exposures = exposures recorded,
//  conversions = exposures with at least one outcome, outcomes = (exposure,
//  video) pairs watched. Numbers that are undefined (no exposures, too few
//  outcomes for a t-test) are null. Formulas in experiment_stats.h.
//  Returns OK with *out a new reference the caller owns; INVALID;
//  NOT_FOUND; INTERNAL.
int experiment_store_results(PGconn *conn, const char *id, json_t **out, char *err, size_t errlen);

#endif
