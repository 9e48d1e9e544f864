/*  seen_set.c: per-user consumed videos (see seen_set.h). */
#include "seen_set.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

struct seen_set_t {
    double min_completion;
    zhashx_t *users; //  user_id -> zhashx_t (video_id -> marker)
};

//  zhashx wants a non-NULL item; the set's values carry no information.
static char s_marker = 1;

static void s_destroy_videos(void **item)
{
    zhashx_destroy((zhashx_t **)item);
}

static zhashx_t *s_users_new(void)
{
    zhashx_t *users = zhashx_new();
    if (users)
        zhashx_set_destructor(users, s_destroy_videos);
    return users;
}

seen_set_t *seen_set_new(double min_completion)
{
    seen_set_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->min_completion = min_completion;
    self->users = s_users_new();
    if (!self->users) {
        free(self);
        return NULL;
    }
    return self;
}

void seen_set_destroy(seen_set_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->users);
    free(*self_p);
    *self_p = NULL;
}

static bool s_counts(const seen_set_t *self, const char *kind, double weight)
{
    if (strcmp(kind, "rating") == 0)
        return true;
    return strcmp(kind, "watch") == 0 && weight >= self->min_completion;
}

//  Adds to a given user table (the live one or one being loaded).
static int s_add(zhashx_t *users, const char *user_id, const char *video_id)
{
    zhashx_t *videos = (zhashx_t *)zhashx_lookup(users, user_id);
    if (!videos) {
        videos = zhashx_new();
        if (!videos || zhashx_insert(users, user_id, videos) != 0) {
            zhashx_destroy(&videos);
            return -1;
        }
    }
    if (zhashx_lookup(videos, video_id))
        return 0;
    return zhashx_insert(videos, video_id, &s_marker) == 0 ? 1 : -1;
}

int seen_set_record(seen_set_t *self, const char *user_id, const char *video_id, const char *kind,
                    double weight)
{
    if (!s_counts(self, kind, weight))
        return 0;
    return s_add(self->users, user_id, video_id);
}

bool seen_set_contains(seen_set_t *self, const char *user_id, const char *video_id)
{
    zhashx_t *videos = (zhashx_t *)zhashx_lookup(self->users, user_id);
    return videos && zhashx_lookup(videos, video_id) != NULL;
}

size_t seen_set_users(seen_set_t *self)
{
    return zhashx_size(self->users);
}

long seen_set_load(seen_set_t *self, PGconn *conn, char *err, size_t errlen)
{
    char threshold[32];
    snprintf(threshold, sizeof threshold, "%.6f", self->min_completion);
    const char *params[] = {threshold};
    //  The same rule as s_counts, applied by the server.
    PGresult *res = PQexecParams(conn,
                                 "SELECT DISTINCT user_id, video_id FROM features.interactions "
                                 "WHERE kind = 'rating' OR (kind = 'watch' AND weight >= $1)",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "loading seen videos: %s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        return -1;
    }
    zhashx_t *fresh = s_users_new();
    long pairs = 0;
    for (int row = 0; fresh && row < PQntuples(res); row++) {
        int rc = s_add(fresh, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1));
        if (rc < 0)
            zhashx_destroy(&fresh);
        else
            pairs += rc;
    }
    PQclear(res);
    if (!fresh) {
        snprintf(err, errlen, "loading seen videos: out of memory");
        return -1;
    }
    zhashx_destroy(&self->users);
    self->users = fresh;
    return pairs;
}
