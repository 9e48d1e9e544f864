/*  model_registry.h: the training job queue and model registry in PostgreSQL.

    Every statement on training.* (migrations/007_training.sql) lives here;
    the gateway (HTTP API) and the trainer call these functions. They take
    a connection the caller owns and never keep it: a pooled connection is
    fine for everything but the claim's lifetime (below).

    Queue. A training request is a training.runs row plus one queued
    training.models row per concrete model type ('all' queues
    collaborative, content, hybrid, popularity, in that order), written in
    one transaction with `NOTIFY recsd_training, '<training_id>'` so that
    idle trainers wake at once. Trainers claim the oldest queued model with
    FOR UPDATE SKIP LOCKED: several trainers never claim the same row.

    Liveness. The claim also takes a session-level advisory lock on the
    model (key hashtextextended('recsd.training.model:' || model_id, 0)),
    held by the claiming connection until model_registry_succeed/fail
    releases it. If the trainer dies (kill -9, lost connection) PostgreSQL
    drops the lock with the session, and model_registry_recover, run by any
    trainer later, finds "running but nobody holds its lock" and marks the
    model failed ("trainer died mid-run"). So the claiming connection must
    stay open for the whole run, and the same connection must report the
    result (a plain connection per training run, not a pooled one).

    Events. Writes that change a model's state put the matching domain
    event into public.outbox in the same transaction (the publisher relays
    it to Kafka), keyed by model_id:
      recommendation-service.model-training-started (in the claim)
        {"model_id","model_type","training_id","start_time","parameters"}
      recommendation-service.model-training-completed (succeed, fail,
      recover)
        {"model_id","training_id","status":"success"|"failed","metrics",
         "artifact_path","completion_time"}
    with header event-type ModelTrainingStarted / ModelTrainingCompleted.
    Times are RFC 3339 UTC with milliseconds ("2024-05-01T12:00:00.000Z").

    Activation moves the "active" pointer of a model type: the previous
    active model becomes retired, an audit row goes to training.activations
    and `NOTIFY recsd_model_activated, '<model_type>:<model_id>'` tells the
    rankers, all in one transaction. At most one model per type is active
    (a partial unique index enforces it).

    Return codes: MODEL_REGISTRY_OK (0) or a negative model_registry_rc_t.
    MODEL_REGISTRY_ERROR is a database failure: err holds the server's
    message, for logs only (it may contain SQL details; never show it to a
    client). The other codes leave a short human reason in err.

    Thread-safety: the functions share nothing; a connection must not be
    used by two threads at once (libpq's rule).
*/
#ifndef RECSD_MODEL_REGISTRY_H
#define RECSD_MODEL_REGISTRY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_REGISTRY_UUID_LEN 36      //  canonical text form, without the NUL
#define MODEL_REGISTRY_TYPE_MAX 16      //  longest type name + NUL ("collaborative")
#define MODEL_REGISTRY_TYPES_MAX 6      //  concrete model types
#define MODEL_REGISTRY_PATH_MAX 1024    //  artifact_path, bytes incl. NUL
#define MODEL_REGISTRY_CHECKSUM_MAX 129 //  artifact_checksum (hex SHA-512 at most) + NUL
#define MODEL_REGISTRY_ERROR_MAX 500    //  stored error text, bytes
#define MODEL_REGISTRY_WHO_MAX 200      //  requested_by / activated_by, bytes
#define MODEL_REGISTRY_LIST_DEFAULT 200 //  model_registry_list default limit
#define MODEL_REGISTRY_LIST_MAX 1000

#define MODEL_REGISTRY_CHANNEL_TRAINING "recsd_training"
#define MODEL_REGISTRY_CHANNEL_ACTIVATED "recsd_model_activated"
#define MODEL_REGISTRY_TOPIC_STARTED "recommendation-service.model-training-started"
#define MODEL_REGISTRY_TOPIC_COMPLETED "recommendation-service.model-training-completed"
//  The error stored on a model whose trainer vanished mid-run.
#define MODEL_REGISTRY_ORPHAN_ERROR "trainer died mid-run"

typedef enum {
    MODEL_REGISTRY_OK = 0,
    MODEL_REGISTRY_ERROR = -1,     //  database or connection failure
    MODEL_REGISTRY_NOT_FOUND = -2, //  no such model (or not in the state the call needs)
    MODEL_REGISTRY_CONFLICT = -3,  //  the model's state forbids it (activate a failed one)
    MODEL_REGISTRY_INVALID = -4    //  an argument was refused before any SQL ran
} model_registry_rc_t;

typedef char model_registry_id_t[MODEL_REGISTRY_UUID_LEN + 1];

//  ---- names and ids (pure) --------------------------------------------

//  True if type is a concrete model type the registry stores:
//  collaborative, content, hybrid, popularity, ease, item_knn.
bool model_registry_type_known(const char *type);

//  True if type may be requested through the API: collaborative, content,
//  hybrid, popularity, or all.
bool model_registry_type_requestable(const char *type);

//  True if text is a uuid in canonical form (8-4-4-4-12 hex digits, either
//  case). Ids from the outside are checked with this before any SQL.
bool model_registry_uuid_valid(const char *text);

//  Writes the stored form of a trainer's error message into out: its first
//  line, control characters as spaces, at most MODEL_REGISTRY_ERROR_MAX
//  bytes (cut on a UTF-8 boundary, "..." appended when cut); "unknown
//  error" for NULL or blank. Returns out. Cannot fail.
char *model_registry_sanitize_error(const char *text, char *out, size_t outlen);

//  ---- queue -----------------------------------------------------------

typedef struct {
    const char *model_type;   //  a concrete type or "all"
    const char *trigger;      //  "manual" or "schedule"
    const char *requested_by; //  who asked (1..MODEL_REGISTRY_WHO_MAX bytes)
    bool has_start;           //  start_us bounds the interactions used
    int64_t start_us;         //  microseconds since the epoch, UTC
    bool has_end;
    int64_t end_us;
    //  W3C traceparent of the request, kept with the run so the trainer
    //  continues its trace; NULL or "" for none. Must be a well-formed
    //  traceparent, else the request is INVALID.
    const char *traceparent;
} model_registry_request_t;

typedef struct {
    model_registry_id_t training_id;
    int count; //  models queued (4 for "all", else 1)
    model_registry_id_t model_ids[MODEL_REGISTRY_TYPES_MAX];
    char model_types[MODEL_REGISTRY_TYPES_MAX][MODEL_REGISTRY_TYPE_MAX];
    int versions[MODEL_REGISTRY_TYPES_MAX];
} model_registry_enqueued_t;

//  Queues a training request (see the header comment). Returns OK with
//  *out filled; INVALID (unknown type or trigger, end before start, no
//  requested_by); ERROR. Nothing is written unless everything is.
int model_registry_enqueue(PGconn *conn, const model_registry_request_t *req,
                           model_registry_enqueued_t *out, char *err, size_t errlen);

//  A claimed model, for the trainer.
typedef struct {
    model_registry_id_t model_id;
    model_registry_id_t training_id;
    char model_type[MODEL_REGISTRY_TYPE_MAX];
    char trigger[16];
    int version;
    bool has_start; //  interaction bounds of the request (inclusive)
    int64_t start_us;
    bool has_end;
    int64_t end_us;
    char traceparent[56]; //  the request's trace context, "" if none
    json_t *params;       //  object, owned by the claim: model_registry_claim_clear
} model_registry_claim_t;

//  Claims the oldest queued model: status running, worker, started_at and
//  heartbeat set, params = defaults[model_type] (an object, if defaults
//  has one) overlaid with the params the request stored; this
//  connection's session takes the model's advisory lock; the
//  ModelTrainingStarted event goes to the outbox. All in one transaction:
//  if any of it fails nothing happened (no event, lock released).
//  defaults may be NULL, else an object of objects keyed by model type
//  (borrowed). Returns 1 with *out filled (clear it with
//  model_registry_claim_clear), 0 if nothing is queued (*out zeroed),
//  INVALID (bad worker or defaults), ERROR.
int model_registry_claim(PGconn *conn, const char *worker, const json_t *defaults,
                         model_registry_claim_t *out, char *err, size_t errlen);

//  Frees what a claim owns and zeroes it; idempotent.
void model_registry_claim_clear(model_registry_claim_t *claim);

//  Records progress of a running model and its heartbeat: phase (NULL
//  keeps the last one; at most 64 bytes), iteration (< 0 keeps it),
//  percent (0..100; < 0 keeps it). Returns OK; NOT_FOUND if the model is
//  not running any more (recovered as failed meanwhile: stop training it);
//  INVALID; ERROR.
int model_registry_progress(PGconn *conn, const char *model_id, const char *phase, int iteration,
                            double percent, char *err, size_t errlen);

//  What a successful run produced.
typedef struct {
    const json_t *metrics;         //  object (borrowed); NULL stores {}
    const char *artifact_path;     //  required, < MODEL_REGISTRY_PATH_MAX bytes
    const char *artifact_checksum; //  may be NULL, < MODEL_REGISTRY_CHECKSUM_MAX bytes
    bool gate_decided;             //  false: gate_passed/gate_reason stored as NULL
    bool gate_passed;
    const char *gate_reason; //  may be NULL
    //  Activate in the same transaction if the gate passed (reason
    //  "gate", by activated_by, e.g. "trainer:<instance>").
    bool activate;
    const char *activated_by;
} model_registry_result_t;

//  Marks a running model succeeded with its result and writes
//  ModelTrainingCompleted (status "success") to the outbox, and if asked
//  activates it, in one transaction; then releases the claim's advisory
//  lock (call it on the claiming connection). Returns OK; NOT_FOUND if the
//  model is not running (recovered meanwhile: nothing is written);
//  INVALID; ERROR.
int model_registry_succeed(PGconn *conn, const char *model_id,
                           const model_registry_result_t *result, char *err, size_t errlen);

//  Marks a running model failed with model_registry_sanitize_error(error)
//  and writes ModelTrainingCompleted (status "failed", metrics and
//  artifact_path null) in one transaction, then releases the claim's
//  advisory lock. Returns OK, NOT_FOUND (not running), INVALID, ERROR.
int model_registry_fail(PGconn *conn, const char *model_id, const char *error, char *err,
                        size_t errlen);

//  Marks failed ("trainer died mid-run", with a ModelTrainingCompleted
//  event each) every running model whose claimer's session is gone, i.e.
//  whose advisory lock nobody holds. Models whose lock this connection
//  holds are left alone, so a trainer may call it on its claiming
//  connection (outside a transaction). Concurrent recoveries do not
//  double up (each orphan is updated by one statement that locks it).
//  Returns the number recovered (>= 0), INVALID (conn is inside a
//  transaction), or ERROR.
int model_registry_recover(PGconn *conn, char *err, size_t errlen);

//  Models queued and running right now. Returns OK or ERROR.
int model_registry_queue_depth(PGconn *conn, long *queued, long *running, char *err, size_t errlen);

//  ---- activation ------------------------------------------------------

typedef struct {
    char model_type[MODEL_REGISTRY_TYPE_MAX];
    model_registry_id_t previous_model_id; //  "" if the type had no active model
    char reason[16];                       //  the reason recorded
    bool changed;                          //  false: the model was already active
} model_registry_activation_t;

//  Makes model_id the active model of its type. Only a succeeded or
//  retired model (so one with an artifact) can be activated; activating
//  the active model changes nothing (OK, changed false, no audit row).
//  who: 1..MODEL_REGISTRY_WHO_MAX bytes. reason: "gate", "manual",
//  "rollback", or NULL for "rollback" if the model was active before
//  (retired) else "manual". out may be NULL. Returns OK; NOT_FOUND;
//  CONFLICT (queued, running or failed: err says which); INVALID; ERROR.
int model_registry_activate(PGconn *conn, const char *model_id, const char *who, const char *reason,
                            model_registry_activation_t *out, char *err, size_t errlen);

typedef struct {
    model_registry_id_t model_id;
    int version;
    char artifact_path[MODEL_REGISTRY_PATH_MAX];
    char artifact_checksum[MODEL_REGISTRY_CHECKSUM_MAX]; //  "" if none
} model_registry_active_t;

//  The active model of model_type. Returns OK with *out filled, NOT_FOUND
//  if the type has none, INVALID (unknown type), ERROR.
int model_registry_active(PGconn *conn, const char *model_type, model_registry_active_t *out,
                          char *err, size_t errlen);

//  ---- reading for the API ---------------------------------------------

//  Models, newest first, optionally of one type (NULL: all), at most
//  limit (<= 0: MODEL_REGISTRY_LIST_DEFAULT; capped at _LIST_MAX):
//    {"models":[{"model_id","training_id","model_type","version","status",
//                "active":bool,"created_at","started_at","finished_at",
//                "metrics","artifact_path","gate":{"passed","reason"}|null,
//                "error"}, ...],
//     "active":{"<model_type>":"<model_id>", ...}}
//  Times are RFC 3339 UTC strings or null. Returns a new reference the
//  caller owns (json_decref), or NULL with the reason in err (*rc_p, if
//  not NULL, gets INVALID for an unknown type, else ERROR).
json_t *model_registry_list(PGconn *conn, const char *model_type, int limit, int *rc_p, char *err,
                            size_t errlen);

//  One model with everything known about it:
//    {"model_id","training_id","model_type","version","status","active",
//     "created_at","started_at","finished_at",
//     "progress":{"phase","iteration","percent","heartbeat_at"},
//     "worker","params","metrics","artifact_path","artifact_checksum",
//     "error","gate":{"passed","reason"}|null,
//     "training":{"trigger","requested_by","model_type","start_date",
//                 "end_date","created_at"},
//     "activations":[{"activated_at","activated_by","reason",
//                     "previous_model_id"}, ...newest first]}
//  Returns OK with *out a new reference the caller owns, NOT_FOUND,
//  INVALID (not a uuid), ERROR.
int model_registry_get(PGconn *conn, const char *model_id, json_t **out, char *err, size_t errlen);

//  ---- schedule --------------------------------------------------------

//  Tries to become (or confirms being) the schedule leader: a
//  session-level advisory lock on a fixed key, held until
//  model_registry_leader_release or until this connection closes. Calling
//  it again while leader does not stack the lock. Returns OK with *leader
//  set, or ERROR.
int model_registry_try_leader(PGconn *conn, bool *leader, char *err, size_t errlen);

//  Gives up leadership if this connection holds it. Returns OK or ERROR.
int model_registry_leader_release(PGconn *conn, char *err, size_t errlen);

//  When the schedule last queued a run: OK with *any false if never, else
//  *any true and *at_us (microseconds since the epoch). ERROR.
int model_registry_last_scheduled(PGconn *conn, bool *any, int64_t *at_us, char *err,
                                  size_t errlen);

//  Queues a scheduled "all" run (trigger "schedule", by requested_by) if
//  none was queued in the last interval_s seconds. Check and insert run
//  in one transaction under a transaction-level advisory lock, so even
//  two trainers that both think they lead fire once per interval. Returns
//  1 with *out filled if it queued one, 0 if not due yet, INVALID, ERROR.
int model_registry_schedule_if_due(PGconn *conn, int interval_s, const char *requested_by,
                                   model_registry_enqueued_t *out, char *err, size_t errlen);

#endif
