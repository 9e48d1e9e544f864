/*  ranker_cooc.c: co-occurrence fed from the ranker's histories (see
    ranker_cooc.h). */
#include "ranker_cooc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ranker_history.h"

//  The history bound is 500 events per user by default; a larger one
//  only means the oldest events are not paired at start.
#define S_EVENTS_MAX 1024

static bool s_in(const char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return true;
    return false;
}

typedef struct {
    cooccurrence_t *cooc;
    const ranker_history_t *history;
    const char **ids;
    float *strengths;
    const char **positive; //  distinct positive videos so far, most recent first
    int failed;
    void (*tick)(void *arg);
    void *tick_arg;
    size_t users;
} s_fill_t;

//  Users between two ticks of a build.
#define S_TICK_USERS 256

//  One user's events, oldest first: each first positive event on a video
//  pairs it with the user's earlier positive videos.
static void s_fill_user(const char *user_id, void *arg)
{
    s_fill_t *f = arg;
    if (f->tick && ++f->users % S_TICK_USERS == 0)
        f->tick(f->tick_arg);
    int32_t n = ranker_history_events_of(f->history, user_id, f->ids, f->strengths, S_EVENTS_MAX);
    size_t positives = 0;
    for (int32_t e = 0; e < n && !f->failed; e++) {
        if (!(f->strengths[e] > 0.0f) || s_in(f->positive, positives, f->ids[e]))
            continue;
        if (cooccurrence_record(f->cooc, f->positive, positives, f->ids[e]) < 0)
            f->failed = 1;
        memmove(f->positive + 1, f->positive, positives * sizeof *f->positive);
        f->positive[0] = f->ids[e];
        positives++;
    }
}

cooccurrence_t *ranker_cooc_build(const ranker_history_t *history, void (*tick)(void *arg),
                                  void *arg)
{
    s_fill_t f = {.tick = tick,
                  .tick_arg = arg,
                  .cooc = cooccurrence_new(COOCCURRENCE_WINDOW, COOCCURRENCE_MAX_NEIGHBOURS,
                                           COOCCURRENCE_MAX_VIDEOS),
                  .history = history,
                  .ids = malloc(S_EVENTS_MAX * sizeof(const char *)),
                  .strengths = malloc(S_EVENTS_MAX * sizeof(float)),
                  .positive = malloc(S_EVENTS_MAX * sizeof(const char *))};
    if (f.cooc && f.ids && f.strengths && f.positive)
        ranker_history_each_user(history, s_fill_user, &f);
    else
        f.failed = 1;
    free(f.ids);
    free(f.strengths);
    free(f.positive);
    if (f.failed)
        cooccurrence_destroy(&f.cooc);
    return f.cooc;
}

int ranker_cooc_notice(cooccurrence_t *cooc, const ranker_history_t *history, const char *user_id,
                       const char *video_id)
{
    const char *ids[S_EVENTS_MAX];
    float strengths[S_EVENTS_MAX];
    int32_t n = ranker_history_events_of(history, user_id, ids, strengths, S_EVENTS_MAX);
    //  The new event is the latest; it must be positive and the user's
    //  first positive event on the video.
    if (n == 0 || strcmp(ids[n - 1], video_id) != 0 || !(strengths[n - 1] > 0.0f))
        return 0;
    const char *positive[COOCCURRENCE_WINDOW];
    size_t count = 0;
    for (int32_t e = n - 2; e >= 0; e--) {
        if (!(strengths[e] > 0.0f))
            continue;
        if (strcmp(ids[e], video_id) == 0)
            return 0; //  a repeat: its pairs were counted the first time
        if (count < COOCCURRENCE_WINDOW && !s_in(positive, count, ids[e]))
            positive[count++] = ids[e];
    }
    return cooccurrence_record(cooc, positive, count, video_id) < 0 ? -1 : 1;
}

size_t ranker_cooc_recent(const ranker_history_t *history, const char *user_id, const char **recent,
                          float *weights, size_t max)
{
    const char *ids[S_EVENTS_MAX];
    float strengths[S_EVENTS_MAX];
    int32_t n = ranker_history_events_of(history, user_id, ids, strengths, S_EVENTS_MAX);
    size_t count = 0;
    for (int32_t e = n - 1; e >= 0 && count < max; e--)
        if (strengths[e] > 0.0f && !s_in(recent, count, ids[e])) {
            recent[count] = ids[e];
            weights[count] = strengths[e];
            count++;
        }
    return count;
}
