/*  training_data.h: the feature store as the trainer needs it — every
    event of a time window as (user, video, signed strength, time), the
    whole catalogue with its metadata, and the id <-> index maps.

    Strengths come from the per-event-type weights of the configuration:
      watch             weight_watch * completion              (> 0)
      rating            weight_rating * (rating - neutral) scaled so the
                        top of the scale is +1 and the bottom -1
      watchlist_add     +weight_watchlist_add
      watchlist_remove  -weight_watchlist_remove               (counts against)
    An event whose strength is 0 (a rating exactly at neutral) is dropped.

    Video indexes 0..n_videos-1 cover the catalogue (features.videos, in
    id order) followed by any video that events name but the catalogue does
    not know yet; user indexes are in order of first appearance.
    Immutable once loaded; may be shared by threads.
*/
#ifndef RECSD_TRAINING_DATA_H
#define RECSD_TRAINING_DATA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct {
    double weight_watch, weight_rating, rating_neutral, rating_min, rating_max;
    double weight_watchlist_add, weight_watchlist_remove;
    int64_t start_time; //  unix seconds, inclusive; INT64_MIN = unbounded
    int64_t end_time;   //  unix seconds, exclusive; INT64_MAX = unbounded
} training_data_options_t;

typedef struct {
    int32_t n_users, n_videos;
    char **user_ids;  //  n_users, owned
    char **video_ids; //  n_videos, owned
    //  Catalogue metadata per video (NULL / 0 for videos the catalogue
    //  does not know); all owned.
    char **titles;
    char ***genres;
    int32_t *n_genres;
    char ***tags;
    int32_t *n_tags;
    bool *retired;
    int32_t n_catalogue; //  videos 0..n_catalogue-1 come from the catalogue
    //  Events, in (user, time) order.
    size_t n_events;
    int32_t *ev_user;
    int32_t *ev_video;
    float *ev_value;
    int64_t *ev_time; //  unix seconds
} training_data_t;

//  Options from the configuration, unbounded in time.
void training_data_options_from_config(training_data_options_t *opts, const config_t *cfg);

//  The signed strength of one event (the table above); 0 means "no signal".
float training_data_strength(const training_data_options_t *opts, const char *kind, double weight,
                             double rating);

//  Loads everything in one REPEATABLE READ snapshot, streaming the events
//  (single-row mode) so memory is the arrays, not a libpq result of
//  millions of rows. Returns data the caller owns, or NULL with the reason
//  in err (query failed, out of memory).
training_data_t *training_data_load(PGconn *conn, const training_data_options_t *opts, char *err,
                                    size_t errlen);

//  Frees everything; idempotent, sets *self_p to NULL.
void training_data_destroy(training_data_t **self_p);

#endif
