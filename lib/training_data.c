/*  training_data.c: loading the trainer's input from PostgreSQL.

    Catalogue first (so catalogue videos get the low indexes), then the
    events in (user, time) order, streamed row by row. One REPEATABLE READ
    transaction makes the two reads one consistent snapshot.
*/
#include "training_data.h"

#include <czmq.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

//  Separates array elements in the catalogue query: a control character
//  validated ids, titles, genres and tags never contain.
#define SEP "\x1f"

typedef struct {
    training_data_t *data;
    zhashx_t *user_index;  //  id -> index + 1 (0 would read as "absent")
    zhashx_t *video_index; //  id -> index + 1
    size_t users_cap, videos_cap, events_cap;
} s_loader_t;

void training_data_options_from_config(training_data_options_t *opts, const config_t *cfg)
{
    *opts = (training_data_options_t){
        .weight_watch = cfg->weight_watch,
        .weight_rating = cfg->weight_rating,
        .rating_neutral = cfg->rating_neutral,
        .rating_min = cfg->rating_min,
        .rating_max = cfg->rating_max,
        .weight_watchlist_add = cfg->weight_watchlist_add,
        .weight_watchlist_remove = cfg->weight_watchlist_remove,
        .start_time = INT64_MIN,
        .end_time = INT64_MAX,
    };
}

float training_data_strength(const training_data_options_t *opts, const char *kind, double weight,
                             double rating)
{
    if (strcmp(kind, "watch") == 0)
        return (float)(opts->weight_watch * fmin(fmax(weight, 0.0), 1.0));
    if (strcmp(kind, "rating") == 0) {
        double delta = rating - opts->rating_neutral;
        double span = delta >= 0 ? opts->rating_max - opts->rating_neutral
                                 : opts->rating_neutral - opts->rating_min;
        if (span <= 0 || delta == 0)
            return 0.0f;
        return (float)(opts->weight_rating * fmin(fmax(delta / span, -1.0), 1.0));
    }
    if (strcmp(kind, "watchlist_add") == 0)
        return (float)opts->weight_watchlist_add;
    if (strcmp(kind, "watchlist_remove") == 0)
        return (float)-opts->weight_watchlist_remove;
    return 0.0f;
}

//  Splits "a<SEP>b<SEP>c" into an owned array; "" gives none.
static int s_split(const char *text, char ***out, int32_t *count)
{
    *out = NULL;
    *count = 0;
    if (!*text)
        return 0;
    int32_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == SEP[0];
    char **parts = calloc((size_t)n, sizeof *parts);
    if (!parts)
        return -1;
    const char *start = text;
    for (int32_t i = 0; i < n; i++) {
        const char *end = strchr(start, SEP[0]);
        size_t len = end ? (size_t)(end - start) : strlen(start);
        parts[i] = strndup(start, len);
        if (!parts[i]) {
            for (int32_t j = 0; j < i; j++)
                free(parts[j]);
            free(parts);
            return -1;
        }
        start = end ? end + 1 : start + len;
    }
    *out = parts;
    *count = n;
    return 0;
}

static int s_grow(void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap * 2 : 1024;
    while (cap2 < need)
        cap2 *= 2;
    void *bigger = realloc(*array, cap2 * elem);
    if (!bigger)
        return -1;
    *array = bigger;
    *cap = cap2;
    return 0;
}

//  Grows every per-video array to hold index n.
static int s_grow_videos(s_loader_t *l, size_t n)
{
    training_data_t *d = l->data;
    size_t cap = l->videos_cap;
    if (n < cap)
        return 0;
    size_t cap2 = cap ? cap * 2 : 1024;
    while (cap2 <= n)
        cap2 *= 2;
#define S_GROW(field)                                                                              \
    do {                                                                                           \
        void *p = realloc(d->field, cap2 * sizeof *d->field);                                      \
        if (!p)                                                                                    \
            return -1;                                                                             \
        d->field = p;                                                                              \
        memset(d->field + cap, 0, (cap2 - cap) * sizeof *d->field);                                \
    } while (0)
    S_GROW(video_ids);
    S_GROW(titles);
    S_GROW(genres);
    S_GROW(n_genres);
    S_GROW(tags);
    S_GROW(n_tags);
    S_GROW(retired);
#undef S_GROW
    l->videos_cap = cap2;
    return 0;
}

//  Index of a video id, adding it (without metadata) when new; -1 on
//  allocation failure.
static int32_t s_video(s_loader_t *l, const char *id)
{
    intptr_t found = (intptr_t)zhashx_lookup(l->video_index, id);
    if (found)
        return (int32_t)(found - 1);
    training_data_t *d = l->data;
    int32_t index = d->n_videos;
    if (s_grow_videos(l, (size_t)index) != 0 || !(d->video_ids[index] = strdup(id)))
        return -1;
    //  zhashx stores pointers; the index itself rides in one.
    //  NOLINTNEXTLINE(performance-no-int-to-ptr): never dereferenced
    if (zhashx_insert(l->video_index, id, (void *)(intptr_t)(index + 1)) != 0)
        return -1;
    d->n_videos++;
    return index;
}

static int32_t s_user(s_loader_t *l, const char *id)
{
    intptr_t found = (intptr_t)zhashx_lookup(l->user_index, id);
    if (found)
        return (int32_t)(found - 1);
    training_data_t *d = l->data;
    int32_t index = d->n_users;
    if (s_grow((void **)&d->user_ids, &l->users_cap, (size_t)index + 1, sizeof *d->user_ids) != 0 ||
        !(d->user_ids[index] = strdup(id)))
        return -1;
    //  NOLINTNEXTLINE(performance-no-int-to-ptr): never dereferenced
    if (zhashx_insert(l->user_index, id, (void *)(intptr_t)(index + 1)) != 0)
        return -1;
    d->n_users++;
    return index;
}

static int s_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return rc;
}

static int s_load_catalogue(s_loader_t *l, PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT video_id, coalesce(title, ''),"
                                 " array_to_string(genres, E'" SEP "'),"
                                 " array_to_string(tags, E'" SEP "'), retired"
                                 " FROM features.videos ORDER BY video_id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "catalogue query: %s", PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    training_data_t *d = l->data;
    for (int r = 0; r < PQntuples(res); r++) {
        int32_t v = s_video(l, PQgetvalue(res, r, 0));
        if (v < 0 || !d->titles || !(d->titles[v] = strdup(PQgetvalue(res, r, 1))) ||
            s_split(PQgetvalue(res, r, 2), &d->genres[v], &d->n_genres[v]) != 0 ||
            s_split(PQgetvalue(res, r, 3), &d->tags[v], &d->n_tags[v]) != 0) {
            snprintf(err, errlen, "out of memory loading the catalogue");
            PQclear(res);
            return -1;
        }
        d->retired[v] = PQgetvalue(res, r, 4)[0] == 't';
    }
    d->n_catalogue = d->n_videos;
    PQclear(res);
    return 0;
}

static int s_add_event(s_loader_t *l, PGresult *row, const training_data_options_t *opts)
{
    training_data_t *d = l->data;
    float value =
        training_data_strength(opts, PQgetvalue(row, 0, 2), strtod(PQgetvalue(row, 0, 3), NULL),
                               strtod(PQgetvalue(row, 0, 4), NULL));
    if (value == 0.0f)
        return 0;
    int32_t u = s_user(l, PQgetvalue(row, 0, 0));
    int32_t v = s_video(l, PQgetvalue(row, 0, 1));
    if (u < 0 || v < 0)
        return -1;
    size_t at = d->n_events, cap = l->events_cap;
    if (s_grow((void **)&d->ev_user, &cap, at + 1, sizeof *d->ev_user) != 0)
        return -1;
    cap = l->events_cap;
    if (s_grow((void **)&d->ev_video, &cap, at + 1, sizeof *d->ev_video) != 0)
        return -1;
    cap = l->events_cap;
    if (s_grow((void **)&d->ev_value, &cap, at + 1, sizeof *d->ev_value) != 0)
        return -1;
    cap = l->events_cap;
    if (s_grow((void **)&d->ev_time, &cap, at + 1, sizeof *d->ev_time) != 0)
        return -1;
    l->events_cap = cap;
    d->ev_user[at] = u;
    d->ev_video[at] = v;
    d->ev_value[at] = value;
    d->ev_time[at] = strtoll(PQgetvalue(row, 0, 5), NULL, 10);
    d->n_events++;
    return 0;
}

static int s_load_events(s_loader_t *l, PGconn *conn, const training_data_options_t *opts,
                         char *err, size_t errlen)
{
    char start[32], end[32];
    snprintf(start, sizeof start, "%" PRId64, opts->start_time);
    snprintf(end, sizeof end, "%" PRId64, opts->end_time);
    const char *params[2] = {opts->start_time == INT64_MIN ? NULL : start,
                             opts->end_time == INT64_MAX ? NULL : end};
    if (!PQsendQueryParams(conn,
                           "SELECT user_id, video_id, kind, coalesce(weight, 0),"
                           " coalesce(rating, 0), floor(extract(epoch FROM occurred_at))::bigint"
                           " FROM features.interactions"
                           " WHERE ($1::bigint IS NULL OR occurred_at >= to_timestamp($1))"
                           "   AND ($2::bigint IS NULL OR occurred_at < to_timestamp($2))"
                           " ORDER BY user_id, occurred_at, id",
                           2, NULL, params, NULL, NULL, 0) ||
        !PQsetSingleRowMode(conn)) {
        snprintf(err, errlen, "events query: %s", PQerrorMessage(conn));
        return -1;
    }
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult(conn))) {
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_SINGLE_TUPLE) {
            if (rc == 0 && s_add_event(l, res, opts) != 0) {
                snprintf(err, errlen, "out of memory loading events");
                rc = -1; //  keep draining so the connection stays usable
            }
        } else if (status != PGRES_TUPLES_OK && rc == 0) {
            snprintf(err, errlen, "events query: %s", PQerrorMessage(conn));
            rc = -1;
        }
        PQclear(res);
    }
    return rc;
}

training_data_t *training_data_load(PGconn *conn, const training_data_options_t *opts, char *err,
                                    size_t errlen)
{
    s_loader_t l = {.data = calloc(1, sizeof(training_data_t)),
                    .user_index = zhashx_new(),
                    .video_index = zhashx_new()};
    if (!l.data || !l.user_index || !l.video_index) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (s_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) != 0)
        goto err;
    if (s_load_catalogue(&l, conn, err, errlen) != 0 ||
        s_load_events(&l, conn, opts, err, errlen) != 0) {
        PQclear(PQexec(conn, "ROLLBACK"));
        goto err;
    }
    if (s_exec(conn, "COMMIT", err, errlen) != 0)
        goto err;
    //  Every per-video array must exist even for an empty catalogue.
    if (s_grow_videos(&l, (size_t)l.data->n_videos) != 0) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    zhashx_destroy(&l.user_index);
    zhashx_destroy(&l.video_index);
    return l.data;
err:
    zhashx_destroy(&l.user_index);
    zhashx_destroy(&l.video_index);
    training_data_destroy(&l.data);
    return NULL;
}

static void s_free_strings(char **strings, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

void training_data_destroy(training_data_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    training_data_t *d = *self_p;
    s_free_strings(d->user_ids, d->n_users);
    for (int32_t v = 0; v < d->n_videos; v++) {
        free(d->video_ids ? d->video_ids[v] : NULL);
        free(d->titles ? d->titles[v] : NULL);
        if (d->genres)
            s_free_strings(d->genres[v], d->n_genres[v]);
        if (d->tags)
            s_free_strings(d->tags[v], d->n_tags[v]);
    }
    free(d->video_ids);
    free(d->titles);
    free(d->genres);
    free(d->n_genres);
    free(d->tags);
    free(d->n_tags);
    free(d->retired);
    free(d->ev_user);
    free(d->ev_video);
    free(d->ev_value);
    free(d->ev_time);
    free(d);
    *self_p = NULL;
}
