/*  experiment.h: A/B experiment definitions and deterministic assignment.

    Pure code, no database: lib/experiment_store.h reads and writes the
    experiments schema (migrations/008, 010) and hands back the same types.

    Definition. An experiment has a name, a traffic layer, a salt and 2..16
    variants. A variant's weight is its share of the experiment's traffic in
    basis points (1..10000, summing to exactly 10000; the API speaks percent
    with at most two decimals, 12.5 = 1250 bp). A variant serves a model
    type (its active version; "" = the serving default), optionally one
    pinned model version (model_id), and optionally hybrid blend
    parameters. Exactly one variant is the control.

    Assignment. bucket(salt, user) = the first 8 bytes of
    SHA-256(salt ":" user_id), read as a big-endian unsigned 64-bit number,
    mod 10000. Variants own consecutive bucket ranges in their order
    (position): variant i gets [sum of earlier weights, that + weight_i).
    Nothing per user is stored; every process and restart computes the same
    answer. The Python equivalent, for cross-checks:
        int.from_bytes(hashlib.sha256(f"{salt}:{user}".encode()).digest()[:8],
                       "big") % 10000
    Changing the salt re-shuffles that experiment alone. A user gets a
    non-control variant only while the experiment is running and inside
    its [start_at, end_at) window; a draft, a stopped experiment, or a
    running one outside its window answers with the control.

    Ownership: experiment_t is a plain value (fixed-size fields, no
    pointers), so it can be copied with `=`; experiment_parse returns a
    heap copy the caller frees with experiment_destroy. experiment_set_t is
    an immutable-once-built snapshot of several experiments that the
    gateway reloads from PostgreSQL and swaps by pointer; readers on other
    threads may use a snapshot concurrently as long as nobody adds to it or
    destroys it meanwhile (the swapping code owns that lifetime).
*/
#ifndef RECSD_EXPERIMENT_H
#define RECSD_EXPERIMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPERIMENT_BUCKETS 10000 //  basis points: weights sum to this
#define EXPERIMENT_VARIANTS_MIN 2
#define EXPERIMENT_VARIANTS_MAX 16
#define EXPERIMENT_ID_LEN 36            //  uuid text form, without the NUL
#define EXPERIMENT_NAME_MAX 200         //  bytes (the table's CHECK)
#define EXPERIMENT_DESCRIPTION_MAX 2000 //  bytes
#define EXPERIMENT_LAYER_MAX 64         //  [A-Za-z0-9_-]
#define EXPERIMENT_SALT_MAX 64          //  [A-Za-z0-9_-]
#define EXPERIMENT_VARIANT_NAME_MAX 64  //  [A-Za-z0-9_-] (the table's CHECK)
#define EXPERIMENT_MODEL_TYPE_MAX 16    //  "collaborative" + NUL
#define EXPERIMENT_PARAMS_JSON_MAX 256  //  canonical params text + NUL
#define EXPERIMENT_WHO_MAX 200          //  created_by
#define EXPERIMENT_CONTENT_K_MAX 1e6    //  content_k upper bound (sanity)
#define EXPERIMENT_DEFAULT_LAYER "default"

//  Hybrid blend overrides (lib/hybrid.h): each applies only if its has_
//  flag is set; the others keep the serving configuration's value.
typedef struct {
    bool has_content_k;
    double content_k; //  >= 0
    bool has_content_floor;
    double content_floor; //  [0, 1]
    bool has_ease_share;
    double ease_share; //  [0, 1]
} experiment_params_t;

typedef struct {
    char name[EXPERIMENT_VARIANT_NAME_MAX + 1];
    int weight_bp;                                //  1..10000
    char model_type[EXPERIMENT_MODEL_TYPE_MAX];   //  "" = serving default
    char model_id[EXPERIMENT_ID_LEN + 1];         //  "" = none (the type's active model)
    char params_json[EXPERIMENT_PARAMS_JSON_MAX]; //  canonical object text, "{}" if none
    experiment_params_t params;                   //  the same, parsed
    bool is_control;
} experiment_variant_t;

typedef struct {
    char id[EXPERIMENT_ID_LEN + 1]; //  "" until stored
    char name[EXPERIMENT_NAME_MAX + 1];
    char description[EXPERIMENT_DESCRIPTION_MAX + 1];
    char status[8]; //  "draft", "running" or "stopped"
    char layer[EXPERIMENT_LAYER_MAX + 1];
    char salt[EXPERIMENT_SALT_MAX + 1];
    bool has_start; //  start_us: microseconds since the epoch, UTC
    int64_t start_us;
    bool has_end;
    int64_t end_us;
    char created_by[EXPERIMENT_WHO_MAX + 1]; //  "" if unknown (not stored yet)
    bool has_created;
    int64_t created_us;
    int n_variants;
    experiment_variant_t variants[EXPERIMENT_VARIANTS_MAX];
} experiment_t;

//  ---- definitions -----------------------------------------------------

//  Parses and validates an experiment definition as an admin POSTs it:
//    {"name", "description"?, "layer"? ("default"), "salt"? (random),
//     "start_at"?, "end_at"? (RFC 3339 strings or null),
//     "variants": [{"name", "weight" (percent), "model_type"?, "model_id"?,
//                   "params"?, "is_control"?}, ...]}
//  Unknown keys are refused. If no variant has is_control true, the first
//  is the control. Status is "draft", id "". model_id is checked for form
//  only (a uuid); whether the model exists is experiment_store_create's
//  job. doc is borrowed. Returns a new experiment the caller owns
//  (experiment_destroy), or NULL with a message naming the field in err,
//  e.g. "variants[1].weight: at most two decimals" (fit for a 400 reply).
experiment_t *experiment_parse(const json_t *doc, char *err, size_t errlen);

//  The same from JSON text (len bytes, need not be NUL-terminated).
experiment_t *experiment_parse_text(const char *text, size_t len, char *err, size_t errlen);

//  Checks an experiment_t built by other code (the store's loader) by the
//  same rules as experiment_parse: names, layer, salt, status, weights
//  summing to 10000, exactly one control, known model types, params.
//  Returns 0, or -1 with the reason in err.
int experiment_validate(const experiment_t *self, char *err, size_t errlen);

//  Parses a variant's params object (NULL or JSON null = none) into *out
//  and its canonical text (compact, sorted keys) into json_out. field
//  names it in messages ("variants[0].params"). Returns 0, or -1 with the
//  reason in err (unknown key, not a number, out of range).
int experiment_params_parse(const json_t *params, const char *field, experiment_params_t *out,
                            char *json_out, size_t json_outlen, char *err, size_t errlen);

//  Frees an experiment; idempotent, sets *self_p = NULL.
void experiment_destroy(experiment_t **self_p);

//  The experiment as JSON for GET list/detail:
//    {"experiment_id","name","description","status","layer","salt",
//     "start_at","end_at","created_by","created_at",
//     "variants":[{"name","weight","model_type","model_id","params",
//                  "is_control"}, ...]}
//  weight in percent (an integer when whole, else a real with two
//  decimals: dump with JSON_REAL_PRECISION(15) or less to print 12.34 as
//  such); times RFC 3339 UTC with milliseconds or null; model_type and
//  model_id null when empty; params an object. Returns a new reference
//  the caller owns, or NULL on allocation failure.
json_t *experiment_to_json(const experiment_t *self);

//  The control variant (borrowed from self), or NULL if self has none
//  (impossible for a validated experiment).
const experiment_variant_t *experiment_control(const experiment_t *self);

//  ---- assignment ------------------------------------------------------

//  The user's bucket in 0..EXPERIMENT_BUCKETS-1 for salt (see the header
//  comment), or -1 if SHA-256 failed (OpenSSL out of memory).
int experiment_bucket(const char *salt, const char *user_id);

//  True if the experiment hands out its variants at now_us: running and
//  now_us inside [start_at, end_at) (an unset bound is open).
bool experiment_is_live(const experiment_t *self, int64_t now_us);

//  The variant user_id sees at now_us (borrowed from self): by bucket if
//  the experiment is live, else the control (also if hashing failed).
//  NULL only if self has no variants or no control.
const experiment_variant_t *experiment_assign(const experiment_t *self, const char *user_id,
                                              int64_t now_us);

//  ---- RFC 3339 times --------------------------------------------------

//  Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" (t or space for
//  T, z for Z) into microseconds since the epoch. Returns 0 or -1.
int experiment_time_parse(const char *text, int64_t *out_us);

//  Writes us as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (at least 25 bytes).
//  Returns out. Cannot fail for years 0..9999.
char *experiment_time_format(int64_t us, char *out, size_t outlen);

//  ---- snapshots -------------------------------------------------------

typedef struct experiment_set_t experiment_set_t;

//  An empty set; NULL on allocation failure.
experiment_set_t *experiment_set_new(void);

//  Frees the set and every experiment in it; idempotent, sets *self_p = NULL.
void experiment_set_destroy(experiment_set_t **self_p);

//  Adds a copy of *exp. Returns 0, or -1 on allocation failure (the set
//  is unchanged).
int experiment_set_add(experiment_set_t *self, const experiment_t *exp);

//  Number of experiments.
size_t experiment_set_size(const experiment_set_t *self);

//  The i-th experiment (borrowed), NULL if i is out of range.
const experiment_t *experiment_set_at(const experiment_set_t *self, size_t i);

//  The experiment with this id (case-insensitive uuid text), borrowed, or
//  NULL.
const experiment_t *experiment_set_find(const experiment_set_t *self, const char *id);

//  The experiment live at now_us in layer (at most one: a layer runs one
//  experiment at a time), borrowed, or NULL. This is what a request that
//  names no experiment_id is subject to.
const experiment_t *experiment_set_live_in_layer(const experiment_set_t *self, const char *layer,
                                                 int64_t now_us);

#endif
