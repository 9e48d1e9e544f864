/*  ranker_serve.h: one recommendation list, from the models the ranker
    holds down to its popularity list.

    The chain, for a request: the requested type (default hybrid), then
    hybrid -> collaborative -> content -> popularity bundle -> the
    popularity list from PostgreSQL (a request for popularity goes to the
    popularity bundle, then the list). The first
    type with a bundle loaded scores the user, except that the personal
    types (all but popularity) are passed over for a user whose history
    holds no liked video they know: a cold user gets popularity, not the
    ties a model without a signal produces (an empty fold-in scores every
    video alike). the user's history is mapped
    into the bundle's index space (videos it does not know dropped), the
    scorer folds it in, and the top `limit` videos are taken by partial
    selection, never a video the user has seen (seen set, and the history's
    seen entries) nor a retired one. If the scorer fails, the type's
    previous bundle is tried, then the next type. A model that has fewer
    than `limit` finite scores for the user (a user with no history: the
    content-based side has nothing to go on) is topped up from the
    popularity list; those items carry score 0 (they come after the
    model's own, which are its scores).

    Counters for the ranker's /metrics are kept in the transparent stats.
    Not thread-safe: one per loop (it keeps scratch buffers).
*/
#ifndef RECSD_RANKER_SERVE_H
#define RECSD_RANKER_SERVE_H

#include <czmq.h>
#include <stdint.h>

#include "popular_list.h"
#include "proto/proto.h"
#include "ranker_history.h"
#include "ranker_models.h"
#include "seen_set.h"

//  requests[] index of answers from the popularity list.
#define RANKER_SERVE_LIST RANKER_MODELS_TYPES
#define RANKER_SERVE_BUCKETS 10 //  latency histogram buckets, +Inf excluded

typedef enum {
    RANKER_SERVE_NOT_LOADED = 0, //  no bundle of the type: next type
    RANKER_SERVE_SCORER_ERROR,   //  its scorer failed: previous bundle, then next type
    RANKER_SERVE_NO_HISTORY,     //  a personal model, a user with no liked video it knows
    RANKER_SERVE_REASONS
} ranker_serve_reason_t;

extern const char *const ranker_serve_reason_names[RANKER_SERVE_REASONS];
//  Upper bounds of the latency histogram's buckets, in seconds.
extern const double ranker_serve_buckets[RANKER_SERVE_BUCKETS];

typedef struct {
    uint64_t requests[RANKER_MODELS_TYPES + 1]; //  answers by type; [RANKER_SERVE_LIST]: the list
    //  [type][0 = active, 1 = previous][reason]: a step down the chain.
    uint64_t fallbacks[RANKER_MODELS_TYPES][2][RANKER_SERVE_REASONS];
    uint64_t filled; //  items topped up from the popularity list
    //  Time to build one answer (history, scoring, selection), seconds.
    uint64_t latency_buckets[RANKER_SERVE_BUCKETS + 1]; //  non-cumulative; last = +Inf
    double latency_sum;
    uint64_t latency_count;
} ranker_serve_stats_t;

//  What a request is served from; all borrowed for the call.
typedef struct {
    const ranker_models_t *models;
    const ranker_history_t *history;
    seen_set_t *seen;              //  may be NULL
    zhashx_t *retired;             //  video id -> anything; may be NULL
    const popular_list_t *popular; //  may be NULL (no list yet)
} ranker_serve_inputs_t;

typedef struct ranker_serve_t ranker_serve_t;

//  Returns NULL on allocation failure.
ranker_serve_t *ranker_serve_new(void);

//  Idempotent, sets *self_p to NULL.
void ranker_serve_destroy(ranker_serve_t **self_p);

//  Fills rep's source, model_id, type, model_version, items (allocated
//  here, owned by rep) and count for req->user_id (rep->user_id is left
//  alone) with at most req->limit items, none of them in req->exclude.
//  req->type is served first (its active, then previous bundle; "" =
//  hybrid), then the rest of the chain; "popularity" asked for is served
//  by the popularity bundle, else the list, never a personal model.
//  rep->type is the type that served ("popularity" for the list);
//  model_version the bundle's registry version, 0 for the list. model_id
//  is the serving bundle's registry id, or "popularity" for the list.
//  With req->explain each item's reason is the liked history video that
//  explains it (ranker_explain.h), "" if none. Returns 0, or -1 on
//  allocation failure (rep may then hold a partial list, freed with the
//  message). req is borrowed for the call.
int ranker_serve_recommend(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                           const proto_recs_req_t *req, proto_recs_rep_t *rep);

//  Borrowed; valid while self lives.
const ranker_serve_stats_t *ranker_serve_stats(const ranker_serve_t *self);

#endif
