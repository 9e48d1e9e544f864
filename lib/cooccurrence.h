/*  cooccurrence.h: real-time item-to-item co-occurrence ("people who
    watched X next watched Y"), bounded in memory, updated on every
    positive interaction so that the next request reflects it.

    What a count means. When a user has a new positive interaction with
    video V, cooccurrence_record pairs V with the user's previous distinct
    positive videos, most recent first, at most `window` of them. Each such
    pair (V, P) adds 1 to count(V, P) and 1 to count(P, V). So count(A, B)
    is the number of times A and B were consumed by one user within
    `window` positive videos of each other. Which events are positive, and
    that a video is recorded once per user (not again on a re-watch), is
    the caller's rule: every call counts.

    The bound. Each video keeps at most max_neighbours neighbours, in an
    array that grows 4, 8, ... up to max_neighbours. When the array is full
    and a new neighbour arrives, the Space-Saving rule applies: the entry
    with the lowest count (the first such in the array) is replaced by the
    new neighbour with count = that lowest count + 1. Heavy pairs survive
    and per-video memory is fixed. The price is error, per neighbour list:
    a stored count never under-estimates the pair's true count, and
    over-estimates it by at most the minimum it replaced, itself at most
    N / max_neighbours where N is the number of pair updates that video's
    list has seen. A pair whose true count exceeds N / max_neighbours is
    always kept; a missing pair's true count is at most the list's lowest
    count. The two directions are
    separate lists, so count(A, B) and count(B, A) are equal until either
    list has replaced an entry. Counts are uint32 and saturate at
    UINT32_MAX.

    At most max_videos videos are interned (an id string once, a number
    elsewhere); a video first seen beyond that bound is ignored, neither
    paired nor stored, and counted in cooccurrence_dropped. Interned
    videos are never forgotten.

    Worst-case memory per video is about 8 * max_neighbours bytes of
    neighbours, plus ~100 bytes of bookkeeping, plus its id; with the
    defaults (32 neighbours, 200k videos) that is about 75 MB.
    cooccurrence_memory gives the current estimate.

    Video ids are strings of 1..PROTO_ID_MAX bytes; NULL, empty or longer
    ids are ignored wherever they appear (they cannot come from a
    validated notice).

    Not thread-safe: one instance is owned and used by one thread (the
    ranker's loop), scoring included (it uses scratch buffers in the
    instance).
*/
#ifndef RECSD_COOCCURRENCE_H
#define RECSD_COOCCURRENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COOCCURRENCE_WINDOW 10             //  default window
#define COOCCURRENCE_MAX_NEIGHBOURS 32     //  default neighbours per video
#define COOCCURRENCE_MAX_VIDEOS 200000     //  default bound on interned videos
#define COOCCURRENCE_WINDOW_LIMIT 256      //  largest window accepted
#define COOCCURRENCE_NEIGHBOURS_LIMIT 4096 //  largest max_neighbours accepted

typedef struct cooccurrence_t cooccurrence_t;

//  An empty table the caller owns. window in 1..COOCCURRENCE_WINDOW_LIMIT,
//  max_neighbours in 1..COOCCURRENCE_NEIGHBOURS_LIMIT, max_videos in
//  1..INT32_MAX - 1. Returns NULL on a value out of range or allocation
//  failure.
cooccurrence_t *cooccurrence_new(int window, int max_neighbours, int32_t max_videos);

//  Frees everything, including every id the table has handed out;
//  idempotent, sets *self_p to NULL.
void cooccurrence_destroy(cooccurrence_t **self_p);

//  Records a new positive interaction with video: pairs it, both ways,
//  with the first `window` distinct ids of recent[0..n_recent-1] (the
//  user's previous positive videos, most recent first; borrowed), skipping
//  video itself, repeats and invalid ids; an id dropped by the max_videos
//  bound does not count towards the window. recent may be NULL when
//  n_recent is 0. Returns how many videos video was paired with
//  (0..window; 0 also when video is invalid or dropped), or -1 on
//  allocation failure, in which case some of the pairs may be recorded.
int cooccurrence_record(cooccurrence_t *self, const char *const *recent, size_t n_recent,
                        const char *video);

//  The ranker's filter: true means "never recommend video_id" (seen,
//  retired, excluded by the request). arg is the caller's.
typedef bool (*cooccurrence_skip_fn)(void *arg, const char *video_id);

//  Scores every neighbour of the user's recent videos: score(c) = sum over
//  i of weights[i] * count(recent[i], c) (weights NULL means all 1;
//  entries with an unknown or invalid id or a non-finite weight count
//  for nothing; a repeated id counts each time). Writes the (at most) k
//  best candidates with a score > 0 into ids[] and scores[] (the
//  caller's arrays of k entries), best first; equal scores are ordered by
//  id, ascending (strcmp), so the order does not depend on arrival order.
//  Never returned: the recent videos themselves, and any candidate for
//  which skip (if not NULL) returns true; skip is called only while the
//  top k is being filled, best first, never after a -1. The ids are
//  borrowed from the table: valid until the next cooccurrence_record or
//  cooccurrence_destroy. Returns how many were written (0..k), or -1 on
//  allocation failure (scratch space that grows with the table).
int cooccurrence_score(cooccurrence_t *self, const char *const *recent, const float *weights,
                       size_t n_recent, cooccurrence_skip_fn skip, void *arg, const char **ids,
                       float *scores, int k);

//  The stored count(a, b): the entry for b in a's neighbour list, 0 if
//  there is none (for explanations and tests). Cannot fail.
uint32_t cooccurrence_count(const cooccurrence_t *self, const char *a, const char *b);

//  For /metrics: videos interned, neighbour entries stored (over all
//  lists, both directions counted), videos ignored by the max_videos
//  bound (one per id occurrence ignored, so a video seen twice beyond the
//  bound counts twice), and an estimate of the heap memory held, in bytes.
size_t cooccurrence_videos(const cooccurrence_t *self);
size_t cooccurrence_pairs(const cooccurrence_t *self);
uint64_t cooccurrence_dropped(const cooccurrence_t *self);
size_t cooccurrence_memory(const cooccurrence_t *self);

#endif
