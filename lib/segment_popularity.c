/*  segment_popularity.c: genre segments and their popularity lists (see
    segment_popularity.h). */
#include "segment_popularity.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_GENRES_PER_VIDEO 8 //  8 genre numbers of 8 bits in one uint64

struct segment_popularity_t {
    size_t count;
    char **names;             //  segment number -> genre name, most popular first
    popular_list_t **lists;   //  segment number -> list
    zhashx_t *by_name;        //  genre name -> segment number + 1
    zhashx_t *video_segments; //  video id -> packed segment numbers + 1 (8 bits each)
};

//  Per genre its top videos, genres ranked by all their interactions.
static const char *s_lists_query =
    "WITH counts AS ("
    "    SELECT i.video_id, count(*) AS n FROM features.interactions i GROUP BY i.video_id),"
    " genre_counts AS ("
    "    SELECT g.genre, c.video_id, c.n"
    "      FROM counts c"
    "      JOIN features.videos v ON v.video_id = c.video_id AND NOT v.retired"
    "     CROSS JOIN LATERAL unnest(v.genres) AS g(genre)"
    "     WHERE length(g.genre) BETWEEN 1 AND 48),"
    " top_genres AS ("
    "    SELECT genre, sum(n) AS total FROM genre_counts GROUP BY genre"
    "     ORDER BY total DESC, genre LIMIT 255),"
    " ranked AS ("
    "    SELECT gc.genre, gc.video_id, gc.n, t.total,"
    "           row_number() OVER (PARTITION BY gc.genre ORDER BY gc.n DESC, gc.video_id) AS r"
    "      FROM genre_counts gc JOIN top_genres t USING (genre))"
    " SELECT genre, video_id, n FROM ranked WHERE r <= $1::bigint"
    " ORDER BY total DESC, genre, r";

//  The genres of every video a history can name. Retired videos included:
//  liking one still says something about the user.
static const char *s_videos_query =
    "SELECT v.video_id, g.genre"
    "  FROM features.videos v"
    " CROSS JOIN LATERAL unnest(v.genres) AS g(genre)"
    " WHERE EXISTS (SELECT 1 FROM features.interactions i WHERE i.video_id = v.video_id)";

void segment_popularity_destroy(segment_popularity_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    segment_popularity_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free(self->names[i]);
        popular_list_destroy(&self->lists[i]);
    }
    free(self->names);
    free(self->lists);
    zhashx_destroy(&self->by_name);
    zhashx_destroy(&self->video_segments);
    free(self);
    *self_p = NULL;
}

//  Adds segment number `seg` (0-based) to a video's packed set, keeping
//  the S_GENRES_PER_VIDEO most popular (lowest numbers).
static uint64_t s_pack(uint64_t packed, size_t seg)
{
    uint64_t code = (uint64_t)seg + 1;
    uint64_t codes[S_GENRES_PER_VIDEO + 1];
    int n = 0;
    for (int i = 0; i < S_GENRES_PER_VIDEO; i++) {
        uint64_t c = (packed >> (8 * i)) & 0xff;
        if (c == code)
            return packed;
        if (c)
            codes[n++] = c;
    }
    codes[n++] = code;
    //  Insertion sort of at most 9 codes, then keep the first 8.
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && codes[j - 1] > codes[j]; j--) {
            uint64_t t = codes[j];
            codes[j] = codes[j - 1];
            codes[j - 1] = t;
        }
    uint64_t out = 0;
    for (int i = 0; i < n && i < S_GENRES_PER_VIDEO; i++)
        out |= codes[i] << (8 * i);
    return out;
}

//  Builds names, lists and by_name from the lists query's rows.
static int s_fill_lists(segment_popularity_t *self, PGresult *res, char *err, size_t errlen)
{
    int rows = PQntuples(res);
    size_t cap = 0;
    for (int r = 0; r < rows; r++)
        if (r == 0 || strcmp(PQgetvalue(res, r, 0), PQgetvalue(res, r - 1, 0)) != 0)
            cap++;
    self->names = calloc(cap ? cap : 1, sizeof *self->names);
    self->lists = calloc(cap ? cap : 1, sizeof(popular_list_t *));
    popular_item_t *items = calloc(rows ? (size_t)rows : 1, sizeof *items);
    if (!self->names || !self->lists || !items)
        goto oom;
    for (int r = 0; r < rows;) {
        const char *genre = PQgetvalue(res, r, 0);
        size_t n = 0;
        for (; r < rows && strcmp(PQgetvalue(res, r, 0), genre) == 0; r++) {
            snprintf(items[n].video_id, sizeof items[n].video_id, "%s", PQgetvalue(res, r, 1));
            items[n].score = strtod(PQgetvalue(res, r, 2), NULL);
            n++;
        }
        size_t seg = self->count;
        self->names[seg] = strdup(genre);
        self->lists[seg] = popular_list_new(items, n);
        if (!self->names[seg] || !self->lists[seg]) {
            free(self->names[seg]);
            popular_list_destroy(&self->lists[seg]);
            goto oom;
        }
        self->count++;
        //  NOLINTNEXTLINE(performance-no-int-to-ptr): the value is a number, never dereferenced
        if (zhashx_insert(self->by_name, self->names[seg], (void *)(uintptr_t)(seg + 1)) != 0) {
            snprintf(err, errlen, "segment lists: genre '%.64s' listed twice", genre);
            free(items);
            return -1;
        }
    }
    free(items);
    return 0;
oom:
    free(items);
    snprintf(err, errlen, "out of memory");
    return -1;
}

segment_popularity_t *segment_popularity_load(PGconn *conn, size_t per_segment, char *err,
                                              size_t errlen)
{
    PGresult *res = NULL;
    segment_popularity_t *self = calloc(1, sizeof *self);
    if (!self || per_segment == 0) {
        snprintf(err, errlen, per_segment ? "out of memory" : "per_segment must be >= 1");
        free(self);
        return NULL;
    }
    self->by_name = zhashx_new();
    self->video_segments = zhashx_new();
    if (!self->by_name || !self->video_segments) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    //  Values are numbers in the pointer (zhashx has no value destructor by
    //  default); keys are duplicated by zhashx.

    char limit[24];
    snprintf(limit, sizeof limit, "%zu", per_segment);
    const char *params[1] = {limit};
    res = PQexecParams(conn, s_lists_query, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "segment lists: %s", PQerrorMessage(conn));
        goto err;
    }
    if (s_fill_lists(self, res, err, errlen) != 0)
        goto err;
    PQclear(res);

    res = PQexec(conn, s_videos_query);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "video genres: %s", PQerrorMessage(conn));
        goto err;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        uintptr_t seg = (uintptr_t)zhashx_lookup(self->by_name, PQgetvalue(res, r, 1));
        if (!seg)
            continue; //  a genre without a list (too rare, or too long a name)
        const char *video = PQgetvalue(res, r, 0);
        uint64_t packed = (uint64_t)(uintptr_t)zhashx_lookup(self->video_segments, video);
        packed = s_pack(packed, seg - 1);
        //  NOLINTNEXTLINE(performance-no-int-to-ptr): the value is a number, never dereferenced
        zhashx_update(self->video_segments, video, (void *)(uintptr_t)packed);
    }
    PQclear(res);
    return self;
err:
    PQclear(res);
    segment_popularity_destroy(&self);
    return NULL;
}

size_t segment_popularity_segments(const segment_popularity_t *self)
{
    return self ? self->count : 0;
}

size_t segment_popularity_videos(const segment_popularity_t *self)
{
    return self ? zhashx_size(self->video_segments) : 0;
}

const char *segment_popularity_segment_of(const segment_popularity_t *self,
                                          const char *const *video_ids, const float *strengths,
                                          size_t n)
{
    if (!self || self->count == 0)
        return NULL;
    float sums[SEGMENT_POPULARITY_MAX_SEGMENTS] = {0};
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!(strengths[i] > 0.0f))
            continue;
        uint64_t packed = (uint64_t)(uintptr_t)zhashx_lookup(self->video_segments, video_ids[i]);
        for (int g = 0; g < S_GENRES_PER_VIDEO && packed; g++, packed >>= 8) {
            uint64_t code = packed & 0xff;
            if (code && code <= self->count) {
                sums[code - 1] += strengths[i];
                any = true;
            }
        }
    }
    if (!any)
        return NULL;
    size_t best = 0;
    for (size_t s = 1; s < self->count; s++)
        if (sums[s] > sums[best]) //  strict: a tie keeps the more popular genre
            best = s;
    return sums[best] > 0.0f ? self->names[best] : NULL;
}

const popular_list_t *segment_popularity_list(const segment_popularity_t *self, const char *segment)
{
    if (!self || !segment)
        return NULL;
    uintptr_t seg = (uintptr_t)zhashx_lookup(self->by_name, segment);
    return seg ? self->lists[seg - 1] : NULL;
}
