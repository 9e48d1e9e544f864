/*  evaluation.h: offline evaluation of a scorer on a time-ordered hold-out.

    Split: per user, events are ordered by time (ties by input order); a
    user with at least min_history events puts the latest
    max(1, round(fraction * n)) of them (never all: at least one stays) in
    the test part; everyone else keeps all events in train. The train part
    becomes the feedback matrix the models are trained on; a user's test
    RELEVANT items are the videos whose test events sum to > 0 and that are
    not in the user's train row at all (a video the user already has in
    train, liked or disliked, is excluded from the candidates, so it could
    never be a hit). The same split applied to the train part gives
    train/validation for tuning: never tune on the test part.

    Metrics, over the users with at least one relevant item, each user
    scored from their train row (the history) with the train videos masked:
      NDCG@10   DCG = sum over ranks r <= 10 of hit(r) / log2(r + 1), divided
                by the ideal DCG for min(10, |relevant|) hits;
      recall@K  hits in the top K / |relevant| (the common definition: a user
                with 30 relevant items cannot reach 1 at K = 10);
      MAP@10    sum over hit ranks r <= 10 of precision@r, divided by
                min(10, |relevant|); then averaged over users;
      coverage@10  share of the catalogue in at least one top-10 list.
    Multi-threaded over users; per-user results are summed in user order,
    so the figures do not depend on the number of threads.
*/
#ifndef RECSD_EVALUATION_H
#define RECSD_EVALUATION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "feedback_matrix.h"
#include "scorer.h"

typedef struct {
    double ndcg10, recall10, recall20, map10, coverage10;
    int32_t users; //  users evaluated (with at least one relevant item)
} evaluation_metrics_t;

//  A split. Every array belongs to the split (evaluation_split_destroy).
typedef struct {
    int32_t n_users, n_items;
    feedback_matrix_t *train; //  n_users x n_items, the models' input
    //  The train events themselves (input order kept), for time-aware
    //  models (popularity) and for splitting again.
    size_t n_train_events;
    int32_t *train_users, *train_items;
    float *train_values;
    int64_t *train_times;
    //  Relevant test videos per user, CSR: user u's are
    //  test_items[test_ptr[u] .. test_ptr[u + 1]), ascending.
    int64_t *test_ptr;
    int32_t *test_items;
    int32_t n_test_users; //  users with at least one relevant video
} evaluation_split_t;

//  Splits n events (users[e], items[e], values[e], times[e]); indexes in
//  0..n_users-1 and 0..n_items-1. fraction in (0, 1) (0.2 is the usual),
//  min_history >= 2. Inputs are borrowed. Returns a split the caller owns,
//  or NULL with the reason in err (bad argument, index out of range, out of
//  memory).
evaluation_split_t *evaluation_split_new(const int32_t *users, const int32_t *items,
                                         const float *values, const int64_t *times, size_t n,
                                         int32_t n_users, int32_t n_items, double fraction,
                                         int32_t min_history, char *err, size_t errlen);

//  The same split applied to self's train events: train/validation for
//  tuning. A new split the caller owns, or NULL with the reason in err.
evaluation_split_t *evaluation_split_again(const evaluation_split_t *self, double fraction,
                                           int32_t min_history, char *err, size_t errlen);

//  Frees the split; idempotent, sets *self_p to NULL.
void evaluation_split_destroy(evaluation_split_t **self_p);

//  Scores user `user` (history = the user's train row) into scores[0..n_items-1],
//  as scorer_t.score does. Called from several threads at once, each user
//  exactly once per run. Returns 0 or -1 (the run fails).
typedef int (*evaluation_score_fn)(void *ctx, int32_t user, const user_history_t *history,
                                   float *scores);

//  Evaluates scorer (its n_items must equal split->n_items) on split's test
//  users with `threads` threads (<= 0: online CPUs). Fills *out and returns
//  0, or returns -1 with the reason in err (the scorer failed, out of
//  memory, thread start failed). No test user gives 0 and users = 0.
int evaluation_run(const evaluation_split_t *split, const scorer_t *scorer, int threads,
                   evaluation_metrics_t *out, char *err, size_t errlen);

//  The same with a scoring callback that also receives the user index (for
//  callers that cache per-user work across runs, as hybrid_tune does).
int evaluation_run_fn(const evaluation_split_t *split, evaluation_score_fn fn, void *ctx,
                      int threads, evaluation_metrics_t *out, char *err, size_t errlen);

//  The metrics as a JSON object {"ndcg_at_10", "recall_at_10",
//  "recall_at_20", "map_at_10", "coverage_at_10", "users"}: a new reference
//  the caller owns, or NULL on allocation failure.
json_t *evaluation_metrics_to_json(const evaluation_metrics_t *self);

//  Reads metrics back from such an object; 0, or -1 if a key is missing or
//  not a number (out is then unchanged).
int evaluation_metrics_from_json(const json_t *json, evaluation_metrics_t *out);

#endif
