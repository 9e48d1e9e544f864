/*  popular_list.h: the popularity list, most-interacted videos first.

    Loaded from PostgreSQL by the ranker (its serving fallback) and by the
    gateway (its own copy, used when the ranker is down or late). Immutable
    once loaded, so one instance may be read from many threads.
*/
#ifndef RECSD_POPULAR_LIST_H
#define RECSD_POPULAR_LIST_H

#include <libpq-fe.h>
#include <stddef.h>

#include "proto/proto.h"

typedef struct {
    char video_id[PROTO_ID_MAX + 1];
    double score; //  interaction count (later: time-decayed, completion-weighted)
} popular_item_t;

typedef struct popular_list_t popular_list_t;

//  Queries the top `limit` videos by number of interactions. An empty
//  table gives an empty list, not an error. Returns a list the caller owns,
//  or NULL with the reason in err (connection lost, query failed).
popular_list_t *popular_list_load(PGconn *conn, size_t limit, char *err, size_t errlen);

//  Builds a list from items (copied), for tests and callers that already
//  hold the data. Returns NULL only on allocation failure.
popular_list_t *popular_list_new(const popular_item_t *items, size_t count);

//  Frees the list; idempotent, sets *self_p to NULL.
void popular_list_destroy(popular_list_t **self_p);

size_t popular_list_size(const popular_list_t *self);

//  Borrowed pointer to item i, valid as long as the list lives; NULL if
//  i >= size.
const popular_item_t *popular_list_item(const popular_list_t *self, size_t i);

#endif
