/*  ranker_cooc.h: keeps the ranker's item co-occurrence (cooccurrence.h)
    in step with its histories, and reads a user's side of it.

    The rule for what counts: a user's first positive event on a video
    (strength > 0, ranker_history.h) pairs that video with the user's
    previous distinct positive videos, most recent first. A re-watch or a
    negative event adds nothing. The same rule applies at start (every
    loaded history, oldest event first) and on each interaction notice, so
    the table built from a restart equals the one kept live (within the
    per-user history bound).

    Not thread-safe: the ranker's loop owns the table and the history.
*/
#ifndef RECSD_RANKER_COOC_H
#define RECSD_RANKER_COOC_H

#include <stddef.h>

#include "cooccurrence.h"
#include "ranker_history.h"

//  A new table (window, neighbours and video bound as cooccurrence.h's
//  defaults) filled from every user's history. tick, if not NULL, is
//  called with arg every few hundred users (heartbeats, and requests
//  answered from the table in force, during a long build); it must not
//  change history. Returns a table the caller owns, or NULL when out of
//  memory.
cooccurrence_t *ranker_cooc_build(const ranker_history_t *history, void (*tick)(void *arg),
                                  void *arg);

//  Called after an event of user on video was recorded in history (so it
//  is the user's latest event): pairs video with the user's earlier
//  positive videos if this is the user's first positive event on it.
//  Returns 1 if pairs were recorded, 0 if not (not positive, a repeat),
//  -1 when out of memory.
int ranker_cooc_notice(cooccurrence_t *cooc, const ranker_history_t *history, const char *user_id,
                       const char *video_id);

//  The user's latest distinct positive videos, most recent first, with
//  their strengths (the latest event's), at most max. Ids are borrowed
//  from history (valid until its next change). Returns the count.
size_t ranker_cooc_recent(const ranker_history_t *history, const char *user_id, const char **recent,
                          float *weights, size_t max);

#endif
