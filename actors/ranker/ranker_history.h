/*  ranker_history.h: every user's recent interactions, as the ranker scores
    them.

    A model scores a user from their history (scorer.h), so the ranker
    keeps, per user, the latest events with their signed strength, built
    with the trainer's own rule (training_data_strength and the configured
    per-event weights): what the model saw in training and what it sees at
    serving time mean the same. Memory is bounded: at most max_events
    events per user (the oldest are dropped), video ids interned once.

    Filled from PostgreSQL at start (ranker_history_load, which also fills
    a seen set in the same pass) and from the ingestors' interaction
    notices afterwards. An event recorded twice (the same video, kind
    and occurrence time to the millisecond: a redelivered notice, or a notice for an
    event the start-up load already read) counts once.

    Not thread-safe: owned and used by the ranker's loop.
*/
#ifndef RECSD_RANKER_HISTORY_H
#define RECSD_RANKER_HISTORY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "scorer.h"
#include "seen_set.h"
#include "training_data.h"

#define RANKER_HISTORY_MAX_EVENTS 500 //  default per-user bound

typedef struct ranker_history_t ranker_history_t;

//  An empty history. opts (copied) gives the strength rule;
//  seen_completion the watch completion from which a watch counts as seen
//  (as seen_set); max_events >= 1 the per-user bound. Returns NULL on
//  allocation failure or max_events < 1.
ranker_history_t *ranker_history_new(const training_data_options_t *opts, double seen_completion,
                                     int max_events);

//  Frees everything; idempotent, sets *self_p to NULL.
void ranker_history_destroy(ranker_history_t **self_p);

//  Records one event: kind as in features.interactions.kind, weight as
//  stored (watch completion), rating the rating (ratings only), at
//  occurred_ms (ms since the epoch). Returns 1 if recorded, 0 if ignored
//  (strength 0, a duplicate, an unknown kind), -1 on allocation failure.
int ranker_history_record(ranker_history_t *self, const char *user_id, const char *video_id,
                          const char *kind, double weight, double rating, int64_t occurred_ms);

//  Records an interaction notice. Its weight for a rating is
//  rating / rating_max (the ingestor's rule), so the rating is recovered
//  as weight * opts->rating_max. Returns as ranker_history_record.
int ranker_history_record_notice(ranker_history_t *self, const proto_interaction_t *in);

//  Replaces the contents with every user's latest events from PostgreSQL,
//  streamed row by row (single-row mode), and records every row into seen
//  (an empty set the caller owns; filled whatever the outcome). tick, if
//  not NULL, is called with arg every few thousand rows (heartbeats during
//  a long load). Returns the number of events kept, or -1 with the reason
//  in err (the history is then left as it was; seen is partial).
long ranker_history_load(ranker_history_t *self, PGconn *conn, seen_set_t *seen,
                         void (*tick)(void *arg), void *arg, char *err, size_t errlen);

//  Users with at least one event, and events kept over all users.
size_t ranker_history_users(const ranker_history_t *self);
size_t ranker_history_events(const ranker_history_t *self);

//  Maps a video id to a model's index, or -1 if the model does not know it.
typedef int32_t (*ranker_history_index_fn)(const void *arg, const char *video_id);

//  A user's history in a model's index space, the way the trainer built
//  its rows (feedback_matrix.h): videos the model does not know dropped,
//  several events on a video summed, sums of exactly 0 dropped, ascending
//  index order. The buffers are the caller's, each holding max_events
//  entries: items/values receive the history (*h points at them), seen
//  the indexes of the videos among them the user has consumed (watched
//  to seen_completion, or rated), *n_seen their count. An unknown user
//  gives an empty history. Cannot fail.
void ranker_history_user(const ranker_history_t *self, const char *user_id,
                         ranker_history_index_fn index_of, const void *arg, int32_t *items,
                         float *values, int32_t *seen, int32_t *n_seen, user_history_t *h);

//  The user's events as recorded, oldest first: video ids (borrowed from
//  the history, valid until its next change) and signed strengths, at
//  most max of the latest. Returns how many were written (0 for an
//  unknown user).
int32_t ranker_history_events_of(const ranker_history_t *self, const char *user_id,
                                 const char **video_ids, float *strengths, int32_t max);

//  Calls fn(user_id, arg) for every user with events, in no particular
//  order (over a copy of the user ids: nothing at all if that copy cannot
//  be allocated). fn must not change the history.
typedef void (*ranker_history_user_fn)(const char *user_id, void *arg);
void ranker_history_each_user(const ranker_history_t *self, ranker_history_user_fn fn, void *arg);

//  The per-user bound this history was made with.
int ranker_history_max_events(const ranker_history_t *self);

#endif
