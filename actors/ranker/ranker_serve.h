/*  ranker_serve.h: one recommendation list, from the models the ranker
    holds down to its popularity list.

    The chain, for a request: the requested type (default hybrid), then
    hybrid -> collaborative -> content -> co-occurrence -> segment
    popularity -> popularity bundle -> the popularity list from PostgreSQL
    (a request for popularity goes to the popularity bundle, then the
    list). The two middle steps serve a user with liked videos whom no
    personal model could score (none loaded, scorers failing, or every
    liked video unknown to them, e.g. videos newer than the models):
    co-occurrence (ranker_cooc.h) recommends what users who liked the same
    videos liked next, kept in real time, so a video released after the
    last training is recommended as soon as people watch it; segment
    popularity (segment_popularity.h) the most popular videos of the genre
    the user leans to, rather than of the whole catalogue. The first
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

    The runtime serving configuration (serving_config.h, applied with
    ranker_serve_configure) shapes the chain: which type a request without
    one gets; whether a type's previous version is tried after its active
    one ("previous" in the fallback chain); which model-free steps run
    after the personal types, in its order ("cooccurrence",
    "segment_popularity"; "popularity", always last, is the popularity
    bundle then the list); and the blend hybrid bundles are scored with
    (has_blend; else each bundle's trained blend). A request may bring its
    own blend (req->has_blend: an experiment's variant), used for it only,
    and name a pinned model (req->model_id): served first when the set
    holds it (its type then heads the chain), else counted as a pinned miss
    and the request goes down the chain as usual. Hybrid scoring works in
    this object's scratch: nothing is allocated per request for it.

    Tracing: with in->trace set, each step is a child span of it:
    "ranker.candidates" (the user's history mapped into a model: events,
    seen, liked), "ranker.scoring" (model id, type, version, method blas |
    faiss | cooccurrence | segment_popularity | popularity_list, items
    scored), "ranker.filtering" (seen, retired and excluded videos dropped,
    items returned, items topped up from popularity) and, each time the
    chain steps down, "ranker.fallback" (step, version, reason). With
    in->trace NULL nothing is timed or allocated for tracing.

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
#include "cooccurrence.h"
#include "segment_popularity.h"
#include "serving_config.h"
#include "trace.h"

//  requests[] index of answers from the popularity list, and from a
//  segment's popularity list.
#define RANKER_SERVE_LIST RANKER_MODELS_TYPES
#define RANKER_SERVE_SEGMENT (RANKER_MODELS_TYPES + 1)
#define RANKER_SERVE_COOC (RANKER_MODELS_TYPES + 2)
#define RANKER_SERVE_ANSWERS (RANKER_MODELS_TYPES + 3)
#define RANKER_SERVE_BUCKETS 10 //  latency histogram buckets, +Inf excluded

typedef enum {
    RANKER_SERVE_NOT_LOADED = 0, //  no bundle of the type: next type
    RANKER_SERVE_SCORER_ERROR,   //  its scorer failed: previous bundle, then next type
    RANKER_SERVE_NO_HISTORY,     //  a personal model, a user with no liked video it knows
    RANKER_SERVE_REASONS
} ranker_serve_reason_t;

extern const char *const ranker_serve_reason_names[RANKER_SERVE_REASONS];

//  Why the segment step passed a user on to global popularity.
typedef enum {
    RANKER_SERVE_SEGMENTS_NOT_LOADED = 0, //  no segment lists yet
    RANKER_SERVE_NO_SEGMENT,              //  no liked video with a known genre
    RANKER_SERVE_SEGMENT_REASONS
} ranker_serve_segment_reason_t;

extern const char *const ranker_serve_segment_reason_names[RANKER_SERVE_SEGMENT_REASONS];

//  Why a request's pinned model did not answer it.
typedef enum {
    RANKER_SERVE_PIN_NOT_LOADED = 0, //  the ranker does not hold it (yet)
    RANKER_SERVE_PIN_NO_HISTORY,     //  a personal model, a user it knows nothing of
    RANKER_SERVE_PIN_SCORER_ERROR,   //  its scorer failed
    RANKER_SERVE_PIN_REASONS
} ranker_serve_pin_reason_t;

extern const char *const ranker_serve_pin_reason_names[RANKER_SERVE_PIN_REASONS];

//  What the serving configuration decides here (ranker_serve_config_from).
typedef struct {
    int default_type; //  index into ranker_models_types for a request without a type
    serving_fallback_t chain[SERVING_CONFIG_CHAIN_MAX];
    int chain_len;
    bool has_blend; //  score hybrid bundles with blend, not their trained one
    hybrid_params_t blend;
} ranker_serve_config_t;
//  Upper bounds of the latency histogram's buckets, in seconds.
extern const double ranker_serve_buckets[RANKER_SERVE_BUCKETS];

typedef struct {
    //  Answers by type; [RANKER_SERVE_LIST]: the list; [RANKER_SERVE_SEGMENT]:
    //  a segment's list.
    uint64_t requests[RANKER_SERVE_ANSWERS];
    //  [type][0 = active, 1 = previous][reason]: a step down the chain.
    uint64_t fallbacks[RANKER_MODELS_TYPES][2][RANKER_SERVE_REASONS];
    //  Users the segment step passed on to global popularity, by reason.
    uint64_t segment_fallbacks[RANKER_SERVE_SEGMENT_REASONS];
    //  Users with liked videos co-occurrence had nothing for.
    uint64_t cooc_misses;
    uint64_t filled;                                  //  items topped up from the popularity list
    uint64_t pinned_served;                           //  answers from a pinned model
    uint64_t pinned_misses[RANKER_SERVE_PIN_REASONS]; //  pinned model asked for, not served
    //  Time to build one answer (history, scoring, selection), seconds.
    uint64_t latency_buckets[RANKER_SERVE_BUCKETS + 1]; //  non-cumulative; last = +Inf
    double latency_sum;
    uint64_t latency_count;
} ranker_serve_stats_t;

//  What a request is served from; all borrowed for the call.
typedef struct {
    const ranker_models_t *models;
    const ranker_history_t *history;
    seen_set_t *seen;                     //  may be NULL
    zhashx_t *retired;                    //  video id -> anything; may be NULL
    const popular_list_t *popular;        //  may be NULL (no list yet)
    const segment_popularity_t *segments; //  may be NULL (not loaded yet)
    cooccurrence_t *cooc;                 //  may be NULL; scoring uses its scratch
    trace_span_t *trace; //  the request's span: steps are its children; NULL = untraced
} ranker_serve_inputs_t;

typedef struct ranker_serve_t ranker_serve_t;

//  Returns NULL on allocation failure.
ranker_serve_t *ranker_serve_new(void);

//  Idempotent, sets *self_p to NULL.
void ranker_serve_destroy(ranker_serve_t **self_p);

//  Fills rep's source, model_id, type, model_version, items (allocated
//  here, owned by rep) and count for req->user_id (rep->user_id is left
//  alone) with at most req->limit items, none of them in req->exclude.
//  req->model_id, if set and held, is served first; then req->type (its
//  active, then previous bundle if the chain says so; "" = the configured
//  default type), then the rest of the chain; "popularity" asked for is served
//  by the popularity bundle, else the list, never a personal model.
//  rep->type is the type that served ("popularity" for the list);
//  model_version the bundle's registry version, 0 for the list. model_id
//  is the serving bundle's registry id, "popularity" for the list,
//  "cooccurrence" for co-occurrence (type "collaborative"), or
//  "segment:<genre>" for a segment's list (type "popularity"). rep->segment
//  is set when the list is the same for every user of a segment: "all"
//  for a user without any history served by popularity, "genre:<genre>"
//  for a segment list from which nothing of the user's was filtered; never
//  when a step of the chain failed (a model not loaded, a scorer error),
//  since such a list is a stopgap the segment must not be stuck with.
//  With req->explain each item's reason is the liked history video that
//  explains it (ranker_explain.h), "" if none. Returns 0, or -1 on
//  allocation failure (rep may then hold a partial list, freed with the
//  message). req is borrowed for the call.
int ranker_serve_recommend(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                           const proto_recs_req_t *req, proto_recs_rep_t *rep);

//  The chain of a configuration: default_type and fallback_chain, and the
//  blend if use_blend (else each hybrid bundle's own). Cannot fail.
void ranker_serve_config_from(const serving_config_t *cfg, bool use_blend,
                              ranker_serve_config_t *out);

//  The configuration before any is applied: hybrid first, chain previous,
//  cooccurrence, segment_popularity, popularity, the bundles' own blends.
void ranker_serve_config_default(ranker_serve_config_t *out);

//  Applies cfg (copied) to the following requests. Returns 0, or -1 (and
//  nothing changes) if it does not hold: default_type outside the chain,
//  a step twice or unknown, popularity not last, a blend out of range.
int ranker_serve_configure(ranker_serve_t *self, const ranker_serve_config_t *cfg);

//  Borrowed; valid while self lives.
const ranker_serve_stats_t *ranker_serve_stats(const ranker_serve_t *self);

#endif
