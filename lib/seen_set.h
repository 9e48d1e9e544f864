/*  seen_set.h: which videos each user has already consumed.

    The ranker never recommends a video the user has watched (to at least
    a configurable completion) or rated. It loads every user's set from
    PostgreSQL at start and adds to it as the event-ingestor reports new
    interactions, so the next request already excludes what was just
    watched.

    Built on czmq's zhashx (user -> set of videos). Not thread-safe: owned
    and used by one actor thread.
*/
#ifndef RECSD_SEEN_SET_H
#define RECSD_SEEN_SET_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct seen_set_t seen_set_t;

//  An empty set; min_completion is the watch weight (completion 0..1) from
//  which a watch counts as seen. Returns NULL only on allocation failure.
seen_set_t *seen_set_new(double min_completion);

//  Frees everything; idempotent, sets *self_p to NULL.
void seen_set_destroy(seen_set_t **self_p);

//  Records an interaction (kind as in features.interactions.kind, weight
//  as stored). Watches below min_completion, watchlist changes and anything
//  else are ignored. Returns 1 if it added a video, 0 if not, -1 on
//  allocation failure.
int seen_set_record(seen_set_t *self, const char *user_id, const char *video_id, const char *kind,
                    double weight);

bool seen_set_contains(seen_set_t *self, const char *user_id, const char *video_id);

//  Number of users with at least one seen video.
size_t seen_set_users(seen_set_t *self);

//  Replaces the contents with every user's history from PostgreSQL.
//  Returns the number of (user, video) pairs loaded, or -1 with the reason
//  in err (the set is then left as it was).
long seen_set_load(seen_set_t *self, PGconn *conn, char *err, size_t errlen);

#endif
