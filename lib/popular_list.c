/*  popular_list.c: the popularity list, loaded from features.interactions. */
#include "popular_list.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct popular_list_t {
    size_t count;
    popular_item_t items[]; //  best first
};

//  Every interaction counts once for now; retired videos are left out, but
//  videos the catalogue does not know yet still count (events may precede
//  the catalogue update, see migrations/001_features.sql). Ties break on
//  video_id so that the list is stable from one load to the next.
static const char *s_query = "SELECT i.video_id, count(*) AS n"
                             "  FROM features.interactions i"
                             " WHERE NOT EXISTS (SELECT 1 FROM features.videos v"
                             "                    WHERE v.video_id = i.video_id AND v.retired)"
                             " GROUP BY i.video_id"
                             " ORDER BY n DESC, i.video_id"
                             " LIMIT $1::bigint";

static popular_list_t *s_alloc(size_t count)
{
    if (count > (SIZE_MAX - sizeof(popular_list_t)) / sizeof(popular_item_t))
        return NULL;
    popular_list_t *self = calloc(1, sizeof *self + count * sizeof(popular_item_t));
    return self;
}

popular_list_t *popular_list_new(const popular_item_t *items, size_t count)
{
    popular_list_t *self = s_alloc(count);
    if (!self)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        self->items[i] = items[i];
        self->items[i].video_id[PROTO_ID_MAX] = '\0'; //  never trust a caller's termination
    }
    self->count = count;
    return self;
}

popular_list_t *popular_list_load(PGconn *conn, size_t limit, char *err, size_t errlen)
{
    PGresult *res = NULL;
    popular_list_t *self = NULL;
    if (!conn) {
        snprintf(err, errlen, "popular list: no PostgreSQL connection");
        goto err;
    }
    char limit_text[32];
    //  LIMIT takes a bigint; anything larger means "no limit" anyway.
    snprintf(limit_text, sizeof limit_text, "%llu",
             (unsigned long long)(limit > INT64_MAX ? INT64_MAX : limit));
    const char *params[1] = {limit_text};
    res = PQexecParams(conn, s_query, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
        snprintf(err, errlen, "popular list query failed: %s", *msg ? msg : "no result");
        size_t n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r'))
            err[--n] = '\0';
        goto err;
    }
    size_t rows = (size_t)PQntuples(res);
    self = s_alloc(rows);
    if (!self) {
        snprintf(err, errlen, "popular list: out of memory for %zu items", rows);
        goto err;
    }
    for (size_t row = 0; row < rows; row++) {
        const char *id = PQgetvalue(res, (int)row, 0);
        size_t len = (size_t)PQgetlength(res, (int)row, 0);
        //  An id we cannot carry in a message is skipped rather than cut:
        //  a truncated id would name some other (or no) video.
        if (len == 0 || len > PROTO_ID_MAX) {
            log_warn("popular list: skipping video id of %zu bytes (limit %d)", len, PROTO_ID_MAX);
            continue;
        }
        popular_item_t *item = &self->items[self->count++];
        memcpy(item->video_id, id, len);
        item->video_id[len] = '\0';
        item->score = strtod(PQgetvalue(res, (int)row, 1), NULL);
    }
    PQclear(res);
    return self;

err:
    PQclear(res);
    popular_list_destroy(&self);
    return NULL;
}

void popular_list_destroy(popular_list_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

size_t popular_list_size(const popular_list_t *self)
{
    return self ? self->count : 0;
}

const popular_item_t *popular_list_item(const popular_list_t *self, size_t i)
{
    if (!self || i >= self->count)
        return NULL;
    return &self->items[i];
}
