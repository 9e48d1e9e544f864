/*  ranker_loader.h: the ranker's background loader thread.

    Watches the model registry and opens the artifacts the ranker is to
    serve, off the request loop: fetching and checksumming a large artifact
    takes seconds, the loop must keep answering meanwhile. For the same
    reason it also reloads the popularity list and the retired videos
    periodically: the popularity query aggregates every interaction, which
    takes tens of milliseconds on a small catalogue and seconds on a big
    one, longer than a request's deadline.

    The thread owns its PostgreSQL connection: it LISTENs on
    MODEL_REGISTRY_CHANNEL_ACTIVATED (polled with PQsocket next to its
    command pipe), and asks the registry for every served type's active
    model at connect, on each notification and every check_interval_ms as
    a safety net (a NOTIFY sent while it was disconnected is lost). Lost
    connections are re-opened with a doubling back-off. Blocking calls
    (connect, queries, fetch, open) happen only in this thread.

    A new active model_id is fetched into the artifact cache (model_fetch)
    and opened against the registry checksum (model_bundle_open). An open
    that fails (corrupt file, checksum mismatch, bad sections, a type other
    than the registry's) refuses the model: logged at error once, reported
    as a refused result, and not tried again until the registry's active
    model of that type changes. A fetch that fails (store unreachable) is
    transient: retried at the next check.

    Pinned models (issue 6): the versions that the variants of RUNNING
    experiments name (experiments.variants.model_id), of the served types,
    at most RANKER_LOADER_PINNED_MAX (the newest first). The thread also
    LISTENs on EXPERIMENT_STORE_CHANNEL; at connect, on either channel's
    notification and at every check it asks for them and fetches and opens
    each new one exactly like an active model (registry checksum, refused
    once if corrupt), posting it as RANKER_LOAD_PINNED; whenever the set
    of pinned ids changes it posts RANKER_LOAD_PINS, and the loop drops
    the pinned bundles no longer in it.

    Results (models, lists, retired sets) go to the loop through a
    mutex-protected queue; a message on the pipe wakes it. The loop takes
    them with ranker_loader_take and owns what it takes; whatever it has
    not taken is destroyed with the loader, so no bundle is ever lost or
    leaked in flight.
*/
#ifndef RECSD_RANKER_LOADER_H
#define RECSD_RANKER_LOADER_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "model_artifact.h"
#include "model_registry.h"
#include "popular_list.h"
#include "segment_popularity.h"

#define RANKER_LOADER_PINNED_MAX 8 //  pinned models, at most

typedef struct {
    const config_t *cfg;      //  pg_dsn, artifact store and cache (borrowed; outlives the loader)
    const char *instance;     //  for the connection's application name and logs
    int check_interval_ms;    //  registry poll without notifications; <= 0: 30000
    int reconnect_min_ms;     //  back-off after a lost connection; <= 0: 500
    int reconnect_max_ms;     //  <= 0: 30000
    const char *const *types; //  model types to serve (borrowed)
    int n_types;
    int popular_refresh_ms; //  popularity list reload period; <= 0: never
    size_t popular_max;     //  its length
    int retired_refresh_ms; //  retired videos reload period; <= 0: never
    //  Genre segments' popularity lists: loaded at once, then every period;
    //  <= 0: never.
    int segments_refresh_ms;
    size_t segments_max; //  videos per segment list
} ranker_loader_options_t;

typedef enum {
    RANKER_LOAD_MODEL = 0, //  model_* fields, bundle (NULL: refused, see error)
    RANKER_LOAD_POPULAR,   //  popular
    RANKER_LOAD_RETIRED,   //  retired
    RANKER_LOAD_SEGMENTS,  //  segments
    RANKER_LOAD_PINNED,    //  model_* fields, bundle (NULL: refused): a pinned model
    RANKER_LOAD_PINS       //  pins: the model ids pinned now (the rest are dropped)
} ranker_load_kind_t;

//  One outcome, owned by whoever took it with everything in it (take a
//  pointer out and set it to NULL to keep it past the destroy).
typedef struct {
    ranker_load_kind_t kind;
    popular_list_t *popular;
    zhashx_t *retired; //  video id -> non-NULL
    segment_popularity_t *segments;
    char model_type[MODEL_REGISTRY_TYPE_MAX];
    model_registry_id_t model_id;
    int version;
    model_bundle_t *bundle; //  the opened model; NULL when refused
    char error[512];        //  why it was refused
    int64_t load_ms;        //  fetch + open time
    model_registry_id_t pins[RANKER_LOADER_PINNED_MAX];
    int n_pins;
} ranker_load_result_t;

typedef struct ranker_loader_t ranker_loader_t;

//  Starts the thread. Returns a loader the caller owns, or NULL with the
//  reason in err (artifact store or cache directory unusable, thread).
ranker_loader_t *ranker_loader_new(const ranker_loader_options_t *opts, char *err, size_t errlen);

//  Stops the thread (waiting for a load in progress to finish) and
//  destroys every result not taken. Idempotent, sets *self_p to NULL.
void ranker_loader_destroy(ranker_loader_t **self_p);

//  The socket to poll: readable when results may be waiting (borrowed).
zsock_t *ranker_loader_socket(ranker_loader_t *self);

//  Reads the wake-up messages waiting on the socket (never blocks) and
//  takes the oldest result, or NULL if there is none. The caller owns it.
ranker_load_result_t *ranker_loader_take(ranker_loader_t *self);

//  Asks for a registry check now (e.g. in tests). Returns 0, or -1.
int ranker_loader_check(ranker_loader_t *self);

//  True once the thread has completed at least one registry check.
bool ranker_loader_checked(ranker_loader_t *self);

//  Frees a result and what it holds; idempotent, sets *result_p to NULL.
void ranker_load_result_destroy(ranker_load_result_t **result_p);

//  The models pinned by running experiments' variants, of the given types
//  (borrowed, n_types of them), newest first, at most max (<=
//  RANKER_LOADER_PINNED_MAX): into out[] (model_type, when found), *n.
//  Returns 0, or -1 with the reason in err.
typedef struct {
    model_registry_active_t model;
    char model_type[MODEL_REGISTRY_TYPE_MAX];
} ranker_pinned_t;
int ranker_loader_pinned(PGconn *conn, const char *const *types, int n_types, ranker_pinned_t *out,
                         int max, int *n, char *err, size_t errlen);

//  The ids of the retired videos (features.videos.retired) as a set the
//  caller owns, or NULL with the reason in err.
zhashx_t *ranker_loader_retired(PGconn *conn, char *err, size_t errlen);

#endif
