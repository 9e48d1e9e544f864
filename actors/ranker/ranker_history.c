/*  ranker_history.c: per-user bounded event histories (see ranker_history.h).

    Each user holds a ring of at most max_events events; a video id is
    interned once (an int32 per event instead of a string), so an event is
    a few bytes whatever the id length.
*/
#include "ranker_history.h"

#include <czmq.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_SEEN 1 //  event flag: this event makes the video "seen"

typedef struct {
    int32_t video; //  interned video number
    float value;   //  signed strength, never 0
    int64_t occurred_ms;
    uint8_t kind; //  index into s_kinds
    uint8_t flags;
} s_event_t;

typedef struct {
    s_event_t *events; //  ring of cap entries, count used, oldest at start
    int32_t cap, count, start;
} s_user_t;

struct ranker_history_t {
    training_data_options_t opts;
    double seen_completion;
    int max_events;
    zhashx_t *users;  //  user id -> s_user_t
    zhashx_t *videos; //  video id -> number + 1
    char **video_ids; //  number -> id (owned)
    int32_t n_videos, videos_cap;
    size_t n_events;
};

static const char *s_kinds[] = {"watch", "rating", "watchlist_add", "watchlist_remove"};

static void s_user_destroy(void **item)
{
    s_user_t *u = (s_user_t *)*item;
    if (u) {
        free(u->events);
        free(u);
    }
    *item = NULL;
}

//  The tables one load fills; swapped in whole when it succeeds.
typedef struct {
    zhashx_t *users, *videos;
    char **video_ids;
    int32_t n_videos, videos_cap;
    size_t n_events;
} s_tables_t;

static int s_tables_init(s_tables_t *t)
{
    *t = (s_tables_t){.users = zhashx_new(), .videos = zhashx_new()};
    if (!t->users || !t->videos)
        return -1;
    zhashx_set_destructor(t->users, s_user_destroy);
    return 0;
}

static void s_tables_clear(s_tables_t *t)
{
    zhashx_destroy(&t->users);
    zhashx_destroy(&t->videos);
    for (int32_t i = 0; i < t->n_videos; i++)
        free(t->video_ids[i]);
    free(t->video_ids);
    *t = (s_tables_t){0};
}

static s_tables_t s_take(ranker_history_t *self)
{
    return (s_tables_t){.users = self->users,
                        .videos = self->videos,
                        .video_ids = self->video_ids,
                        .n_videos = self->n_videos,
                        .videos_cap = self->videos_cap,
                        .n_events = self->n_events};
}

static void s_put(ranker_history_t *self, const s_tables_t *t)
{
    self->users = t->users;
    self->videos = t->videos;
    self->video_ids = t->video_ids;
    self->n_videos = t->n_videos;
    self->videos_cap = t->videos_cap;
    self->n_events = t->n_events;
}

ranker_history_t *ranker_history_new(const training_data_options_t *opts, double seen_completion,
                                     int max_events)
{
    if (max_events < 1)
        return NULL;
    ranker_history_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    self->seen_completion = seen_completion;
    self->max_events = max_events;
    s_tables_t t;
    if (s_tables_init(&t) != 0) {
        s_tables_clear(&t);
        free(self);
        return NULL;
    }
    s_put(self, &t);
    return self;
}

void ranker_history_destroy(ranker_history_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_tables_t t = s_take(*self_p);
    s_tables_clear(&t);
    free(*self_p);
    *self_p = NULL;
}

//  The interned number of video_id, added if new; -1 on allocation failure.
static int32_t s_intern(s_tables_t *t, const char *video_id)
{
    intptr_t found = (intptr_t)zhashx_lookup(t->videos, video_id);
    if (found)
        return (int32_t)(found - 1);
    if (t->n_videos == INT32_MAX - 1)
        return -1;
    if (t->n_videos == t->videos_cap) {
        int32_t cap = t->videos_cap ? t->videos_cap * 2 : 1024;
        char **bigger = realloc(t->video_ids, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return -1;
        t->video_ids = bigger;
        t->videos_cap = cap;
    }
    char *copy = strdup(video_id);
    if (!copy)
        return -1;
    int32_t number = t->n_videos;
    //  NOLINTNEXTLINE(performance-no-int-to-ptr): the value is a number, never dereferenced
    if (zhashx_insert(t->videos, video_id, (void *)(intptr_t)(number + 1)) != 0) {
        free(copy);
        return -1;
    }
    t->video_ids[number] = copy;
    t->n_videos++;
    return number;
}

static int s_kind_index(const char *kind)
{
    for (int k = 0; k < (int)(sizeof s_kinds / sizeof s_kinds[0]); k++)
        if (strcmp(kind, s_kinds[k]) == 0)
            return k;
    return -1;
}

//  Appends to t (the live tables or a load's): the rules of
//  ranker_history_record.
static int s_record(ranker_history_t *self, s_tables_t *t, const char *user_id,
                    const char *video_id, const char *kind, double weight, double rating,
                    int64_t occurred_ms)
{
    int k = s_kind_index(kind);
    if (k < 0 || !isfinite(weight) || !isfinite(rating))
        return 0;
    float value = training_data_strength(&self->opts, kind, weight, rating);
    if (value == 0.0f || !isfinite(value))
        return 0;
    uint8_t flags = 0;
    //  seen_set's rule: a rating, or a watch to the configured completion.
    if (k == 1 || (k == 0 && weight >= self->seen_completion))
        flags |= S_SEEN;
    s_user_t *u = (s_user_t *)zhashx_lookup(t->users, user_id);
    int32_t video = (int32_t)((intptr_t)zhashx_lookup(t->videos, video_id) - 1);
    if (u && video >= 0)
        for (int32_t i = 0; i < u->count; i++) {
            const s_event_t *e = &u->events[(u->start + i) % u->cap];
            if (e->video == video && e->kind == k && e->occurred_ms == occurred_ms)
                return 0;
        }
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u || zhashx_insert(t->users, user_id, u) != 0) {
            free(u);
            return -1;
        }
    }
    if (video < 0 && (video = s_intern(t, video_id)) < 0)
        return -1;
    if (u->count == u->cap && u->cap < self->max_events) {
        //  Grow (unrolling the ring: start is 0 until the ring is full).
        int32_t cap = u->cap ? u->cap * 2 : 4;
        if (cap > self->max_events)
            cap = self->max_events;
        s_event_t *bigger = realloc(u->events, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return -1;
        u->events = bigger;
        u->cap = cap;
    }
    s_event_t e = {.video = video,
                   .value = value,
                   .occurred_ms = occurred_ms,
                   .kind = (uint8_t)k,
                   .flags = flags};
    if (u->count < u->cap) {
        u->events[(u->start + u->count) % u->cap] = e;
        u->count++;
        t->n_events++;
    } else {
        //  Full at max_events: the newest replaces the oldest.
        u->events[u->start] = e;
        u->start = (u->start + 1) % u->cap;
    }
    return 1;
}

int ranker_history_record(ranker_history_t *self, const char *user_id, const char *video_id,
                          const char *kind, double weight, double rating, int64_t occurred_ms)
{
    s_tables_t t = s_take(self);
    int rc = s_record(self, &t, user_id, video_id, kind, weight, rating, occurred_ms);
    s_put(self, &t);
    return rc;
}

int ranker_history_record_notice(ranker_history_t *self, const proto_interaction_t *in)
{
    double rating = strcmp(in->kind, "rating") == 0 ? in->weight * self->opts.rating_max : 0.0;
    return ranker_history_record(self, in->user_id, in->video_id, in->kind, in->weight, rating,
                                 (int64_t)in->occurred_ms);
}

long ranker_history_load(ranker_history_t *self, PGconn *conn, seen_set_t *seen,
                         void (*tick)(void *arg), void *arg, char *err, size_t errlen)
{
    s_tables_t t;
    if (s_tables_init(&t) != 0) {
        s_tables_clear(&t);
        snprintf(err, errlen, "loading histories: out of memory");
        return -1;
    }
    //  Time order per user, so the ring keeps each user's latest events.
    //  The (user_id, occurred_at) index gives the order without a sort.
    if (!PQsendQuery(conn, "SELECT user_id, video_id, kind, coalesce(weight, 0),"
                           " coalesce(rating, 0),"
                           " floor(extract(epoch FROM occurred_at) * 1000)::bigint"
                           " FROM features.interactions ORDER BY user_id, occurred_at, id") ||
        !PQsetSingleRowMode(conn)) {
        snprintf(err, errlen, "loading histories: %s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        s_tables_clear(&t);
        return -1;
    }
    int rc = 0;
    long rows = 0;
    PGresult *res;
    while ((res = PQgetResult(conn))) {
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_SINGLE_TUPLE && rc == 0) {
            const char *user = PQgetvalue(res, 0, 0), *video = PQgetvalue(res, 0, 1);
            const char *kind = PQgetvalue(res, 0, 2);
            double weight = strtod(PQgetvalue(res, 0, 3), NULL);
            if (seen_set_record(seen, user, video, kind, weight) < 0 ||
                s_record(self, &t, user, video, kind, weight, strtod(PQgetvalue(res, 0, 4), NULL),
                         strtoll(PQgetvalue(res, 0, 5), NULL, 10)) < 0) {
                snprintf(err, errlen, "loading histories: out of memory");
                rc = -1; //  keep draining so the connection stays usable
            }
            if (tick && ++rows % 4096 == 0)
                tick(arg);
        } else if (status != PGRES_SINGLE_TUPLE && status != PGRES_TUPLES_OK && rc == 0) {
            snprintf(err, errlen, "loading histories: %s", PQerrorMessage(conn));
            err[strcspn(err, "\n")] = '\0';
            rc = -1;
        }
        PQclear(res);
    }
    if (rc != 0) {
        s_tables_clear(&t);
        return -1;
    }
    s_tables_t old = s_take(self);
    s_tables_clear(&old);
    s_put(self, &t);
    return (long)self->n_events;
}

size_t ranker_history_users(const ranker_history_t *self)
{
    return zhashx_size(self->users);
}

size_t ranker_history_events(const ranker_history_t *self)
{
    return self->n_events;
}

int ranker_history_max_events(const ranker_history_t *self)
{
    return self->max_events;
}

//  Insertion sort by index: at most max_events (500) entries, mostly
//  short, and it keeps the values paired without a temporary array.
static void s_sort(int32_t *items, float *values, int32_t n)
{
    for (int32_t i = 1; i < n; i++) {
        int32_t item = items[i];
        float value = values[i];
        int32_t j = i - 1;
        for (; j >= 0 && items[j] > item; j--) {
            items[j + 1] = items[j];
            values[j + 1] = values[j];
        }
        items[j + 1] = item;
        values[j + 1] = value;
    }
}

int32_t ranker_history_events_of(const ranker_history_t *self, const char *user_id,
                                 const char **video_ids, float *strengths, int32_t max)
{
    const s_user_t *u = (const s_user_t *)zhashx_lookup(self->users, user_id);
    if (!u || max <= 0)
        return 0;
    int32_t skip = u->count > max ? u->count - max : 0, n = 0;
    for (int32_t i = skip; i < u->count; i++) {
        const s_event_t *e = &u->events[(u->start + i) % u->cap];
        video_ids[n] = self->video_ids[e->video];
        strengths[n] = e->value;
        n++;
    }
    return n;
}

void ranker_history_each_user(const ranker_history_t *self, ranker_history_user_fn fn, void *arg)
{
    //  A copy of the keys: zhashx's own cursor is reset by the lookups fn
    //  makes (ranker_history_events_of), which would restart the walk.
    zlistx_t *users = zhashx_keys(self->users);
    if (!users)
        return;
    for (const char *u = zlistx_first(users); u; u = zlistx_next(users))
        fn(u, arg);
    zlistx_destroy(&users);
}

void ranker_history_user(const ranker_history_t *self, const char *user_id,
                         ranker_history_index_fn index_of, const void *arg, int32_t *items,
                         float *values, int32_t *seen, int32_t *n_seen, user_history_t *h)
{
    *n_seen = 0;
    *h = (user_history_t){.items = items, .values = values, .len = 0};
    const s_user_t *u = (const s_user_t *)zhashx_lookup(self->users, user_id);
    if (!u)
        return;
    int32_t n = 0;
    for (int32_t i = 0; i < u->count; i++) {
        const s_event_t *e = &u->events[(u->start + i) % u->cap];
        int32_t index = index_of(arg, self->video_ids[e->video]);
        if (index < 0)
            continue;
        items[n] = index;
        values[n] = e->value;
        n++;
        if (e->flags & S_SEEN)
            seen[(*n_seen)++] = index;
    }
    s_sort(items, values, n);
    //  Sum runs of one index; drop exact zeros (feedback_matrix_new's rule).
    int32_t out = 0;
    for (int32_t i = 0; i < n;) {
        int32_t item = items[i];
        float sum = 0.0f;
        for (; i < n && items[i] == item; i++)
            sum += values[i];
        if (sum != 0.0f) {
            items[out] = item;
            values[out] = sum;
            out++;
        }
    }
    h->len = out;
}
