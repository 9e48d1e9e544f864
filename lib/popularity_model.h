/*  popularity_model.h: time-decayed, completion-weighted popularity,
    global and per segment; the baseline every model must beat and the
    ranker's answer for a user with no usable history.

    Each event contributes its positive strength (watch completion, rating
    or watchlist signal, as in feedback_matrix.h) times
    exp(-ln 2 * age / half_life), age = now - event time (events after
    `now` have age 0). Negative strengths are ignored: a dislike is not
    "less popular", it is a personal signal.

    Segments are genres. A history's segment is the genre with the largest
    sum of positive strengths over the history's videos (each video counts
    for every one of its genres; ties go to the genre that sorts first);
    a history with no positive strength on a video with a genre has none.

    A segment's list is the popularity AMONG THE USERS of that segment (the
    users whose training history has that segment), not the global list
    restricted to videos of that genre. A segment is a group of users: what
    comedy fans watch includes the big cross-genre hits they watch too, and
    a genre filter could never show them; it also lets the segment list
    surface the videos that audience prefers within its own genre rather
    than the globally popular ones. Small segments are noisy, so the list is
    shrunk towards the global one:
        segment[s][i] = (pop_s[i] + prior * global[i] / G) / (M_s + prior)
    with G the sum of global and M_s the sum of pop_s: a probability, equal
    to the global share for an empty segment, and every video keeps a rank.

    The struct is transparent so the ranker can point it at an mmapped
    artifact (owned = false): the item-to-segment map is CSR over int32 so
    it maps as a section; only segment_names needs building.
*/
#ifndef RECSD_POPULARITY_MODEL_H
#define RECSD_POPULARITY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scorer.h"

typedef struct {
    double half_life_s; //  seconds, > 0
    int64_t now;        //  reference unix time; 0 = the latest event's time
    double prior;       //  shrinkage of segment lists towards global, >= 0 (in strength units)
} popularity_params_t;

typedef struct {
    int32_t n_items;
    int32_t n_segments;
    float *global;             //  n_items decayed weighted counts
    float *segment_scores;     //  n_segments x n_items, row s = segment s (shares, see above)
    char **segment_names;      //  n_segments genre names, sorted (strcmp)
    int32_t *item_segment_ptr; //  n_items + 1 offsets into item_segments
    int32_t *item_segments;    //  segment indexes of each video's genres, ascending
    int32_t *segment_users;    //  n_segments: training users in each segment (diagnostics)
    bool owned;                //  true: destroy frees every array and name; false: only the struct
} popularity_model_t;

//  Half-life 30 days, now 0 (latest event), prior 50. Cannot fail.
popularity_params_t popularity_params_default(void);

//  Trains on n events (users[e], items[e], values[e], times[e]), user
//  indexes 0..n_users-1 and video indexes 0..n_items-1; item_genres[i] is
//  video i's genre list (n_item_genres[i] names; the arrays may be NULL
//  when no video has a genre; "(no genres listed)" is not a genre).
//  Everything is borrowed for the call. params NULL = defaults. Returns a
//  model the caller owns, or NULL with the reason in err (index out of
//  range, bad parameter, out of memory).
popularity_model_t *
popularity_model_train(const int32_t *users, const int32_t *items, const float *values,
                       const int64_t *times, size_t n, int32_t n_users, int32_t n_items,
                       const char *const *const *item_genres, const int32_t *n_item_genres,
                       const popularity_params_t *params, char *err, size_t errlen);

//  Frees the model (arrays and names only if owned); idempotent, sets
//  *self_p to NULL.
void popularity_model_destroy(popularity_model_t **self_p);

//  The segment of a history (see above), or -1 if it has none. Videos
//  outside the model are ignored. Uses no heap memory; cannot fail.
int32_t popularity_model_segment(const popularity_model_t *self, const user_history_t *history);

//  Scorer: the history's segment list when it has a segment, else the
//  global list. Never -INFINITY. The model pointer is self.
scorer_t popularity_scorer(const popularity_model_t *self);

//  Scorer of the global list only, whatever the history.
scorer_t popularity_global_scorer(const popularity_model_t *self);

#endif
