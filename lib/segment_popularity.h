/*  segment_popularity.h: popularity within audience segments, the step of
    the serving chain between a user's own models and the global
    popularity list.

    A segment is a genre: the segment of a user is the genre that weighs
    most in their liked history (sum of positive strengths of the videos
    carrying it). A user whose models cannot answer (none loaded, or none
    knows a video they liked) still gets the most popular videos of the
    genre they lean to, rather than those of the whole catalogue.

    Loaded from PostgreSQL in two queries: per genre its most interacted
    videos (retired ones left out), and the genres of every video that has
    interactions (the only videos a history can name). Genres are ranked
    by total interactions, at most SEGMENT_POPULARITY_MAX_SEGMENTS kept;
    a video keeps at most 8 of its genres (the most popular ones).

    Immutable once loaded: the owner swaps in a fresh instance, and readers
    on other threads may use an instance for as long as its owner keeps it.
    Ownership: the caller owns what _load returns; lists and names returned
    are borrowed from the instance.
*/
#ifndef RECSD_SEGMENT_POPULARITY_H
#define RECSD_SEGMENT_POPULARITY_H

#include <libpq-fe.h>
#include <stddef.h>

#include "popular_list.h"

#define SEGMENT_POPULARITY_MAX_SEGMENTS 255
#define SEGMENT_POPULARITY_NAME_MAX 48 //  longer genre names are left out

typedef struct segment_popularity_t segment_popularity_t;

//  Queries both tables; per_segment (>= 1) videos per genre. An empty
//  catalogue gives an instance with no segments, not an error. Returns an
//  instance the caller owns, or NULL with the reason in err.
segment_popularity_t *segment_popularity_load(PGconn *conn, size_t per_segment, char *err,
                                              size_t errlen);

//  Idempotent, sets *self_p to NULL.
void segment_popularity_destroy(segment_popularity_t **self_p);

//  Segments (genres) held, and videos whose genres are known.
size_t segment_popularity_segments(const segment_popularity_t *self);
size_t segment_popularity_videos(const segment_popularity_t *self);

//  The segment of a history given as n video ids with their strengths:
//  the genre with the largest sum of positive strengths (ties: the more
//  popular genre). Returns its name (borrowed), or NULL when no liked
//  video has a known genre.
const char *segment_popularity_segment_of(const segment_popularity_t *self,
                                          const char *const *video_ids, const float *strengths,
                                          size_t n);

//  The popularity list of a segment (borrowed), or NULL if unknown.
const popular_list_t *segment_popularity_list(const segment_popularity_t *self,
                                              const char *segment);

#endif
