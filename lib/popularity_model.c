/*  popularity_model.c: decayed popularity counts, global and per user
    segment (genre), and the scorer that picks the list for a history.
*/
#include "popularity_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedback_matrix.h"

//  Up to this many segments, a history's segment is found with one pass
//  and a stack array; beyond it, with one pass per segment (no heap).
#define S_STACK_SEGMENTS 64

popularity_params_t popularity_params_default(void)
{
    return (popularity_params_t){.half_life_s = 30.0 * 86400.0, .now = 0, .prior = 50.0};
}

void popularity_model_destroy(popularity_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    popularity_model_t *self = *self_p;
    if (self->owned) {
        free(self->global);
        free(self->segment_scores);
        if (self->segment_names)
            for (int32_t s = 0; s < self->n_segments; s++)
                free(self->segment_names[s]);
        free(self->segment_names);
        free(self->item_segment_ptr);
        free(self->item_segments);
        free(self->segment_users);
    }
    free(self);
    *self_p = NULL;
}

static bool s_is_genre(const char *g)
{
    return g && *g && strcmp(g, "(no genres listed)") != 0;
}

static int s_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int s_int32_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

//  Fills segment_names (sorted, distinct) and the item -> segments CSR.
static int s_build_segments(popularity_model_t *self, const char *const *const *item_genres,
                            const int32_t *n_item_genres)
{
    int32_t n = self->n_items;
    size_t total = 0;
    if (item_genres && n_item_genres)
        for (int32_t i = 0; i < n; i++)
            total += n_item_genres[i] > 0 ? (size_t)n_item_genres[i] : 0;
    const char **all = malloc((total > 0 ? total : 1) * sizeof *all);
    self->item_segment_ptr = calloc((size_t)n + 1, sizeof *self->item_segment_ptr);
    self->item_segments = malloc((total > 0 ? total : 1) * sizeof *self->item_segments);
    if (!all || !self->item_segment_ptr || !self->item_segments)
        goto err;
    size_t n_all = 0;
    for (int32_t i = 0; i < n && total > 0; i++)
        for (int32_t g = 0; g < n_item_genres[i]; g++)
            if (s_is_genre(item_genres[i][g]))
                all[n_all++] = item_genres[i][g];
    qsort(all, n_all, sizeof *all, s_str_cmp);
    size_t distinct = 0;
    for (size_t a = 0; a < n_all; a++)
        if (distinct == 0 || strcmp(all[a], all[distinct - 1]) != 0)
            all[distinct++] = all[a];
    if (distinct > INT32_MAX)
        goto err;
    self->segment_names = calloc(distinct > 0 ? distinct : 1, sizeof *self->segment_names);
    if (!self->segment_names)
        goto err;
    self->n_segments = (int32_t)distinct;
    for (size_t s = 0; s < distinct; s++)
        if (!(self->segment_names[s] = strdup(all[s])))
            goto err;

    int32_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t begin = at;
        for (int32_t g = 0; total > 0 && g < n_item_genres[i]; g++) {
            const char *genre = item_genres[i][g];
            if (!s_is_genre(genre))
                continue;
            const char **hit = bsearch(&genre, all, distinct, sizeof *all, s_str_cmp);
            self->item_segments[at++] = (int32_t)(hit - all);
        }
        qsort(self->item_segments + begin, (size_t)(at - begin), sizeof(int32_t), s_int32_cmp);
        int32_t kept = begin;
        for (int32_t a = begin; a < at; a++)
            if (kept == begin || self->item_segments[a] != self->item_segments[kept - 1])
                self->item_segments[kept++] = self->item_segments[a];
        at = kept;
        self->item_segment_ptr[i + 1] = at;
    }
    free(all);
    return 0;
err:
    free(all);
    return -1;
}

popularity_model_t *
popularity_model_train(const int32_t *users, const int32_t *items, const float *values,
                       const int64_t *times, size_t n, int32_t n_users, int32_t n_items,
                       const char *const *const *item_genres, const int32_t *n_item_genres,
                       const popularity_params_t *params, char *err, size_t errlen)
{
    popularity_params_t p = params ? *params : popularity_params_default();
    popularity_model_t *self = NULL;
    feedback_matrix_t *hist = NULL;
    double *global = NULL, *raw = NULL;
    int32_t *user_segment = NULL;

    if (n_users < 0 || n_items < 0 || !(p.half_life_s > 0) || !(p.prior >= 0) ||
        (n > 0 && (!users || !items || !values || !times))) {
        snprintf(err, errlen, "popularity model: bad arguments");
        return NULL;
    }
    for (size_t e = 0; e < n; e++)
        if (users[e] < 0 || users[e] >= n_users || items[e] < 0 || items[e] >= n_items) {
            snprintf(err, errlen, "popularity model: event %zu out of range (user %d, video %d)", e,
                     (int)users[e], (int)items[e]);
            return NULL;
        }

    self = calloc(1, sizeof *self);
    if (!self)
        goto oom;
    self->owned = true;
    self->n_items = n_items;
    if (s_build_segments(self, item_genres, n_item_genres) != 0)
        goto oom;
    int32_t n_seg = self->n_segments;
    size_t cells = (size_t)n_seg * (size_t)n_items;
    self->global = calloc(n_items > 0 ? (size_t)n_items : 1, sizeof *self->global);
    self->segment_scores = calloc(cells > 0 ? cells : 1, sizeof *self->segment_scores);
    self->segment_users = calloc(n_seg > 0 ? (size_t)n_seg : 1, sizeof *self->segment_users);
    global = calloc(n_items > 0 ? (size_t)n_items : 1, sizeof *global);
    raw = calloc(cells > 0 ? cells : 1, sizeof *raw);
    user_segment = malloc((n_users > 0 ? (size_t)n_users : 1) * sizeof *user_segment);
    if (!self->global || !self->segment_scores || !self->segment_users || !global || !raw ||
        !user_segment)
        goto oom;

    //  Each user's segment, from the summed history (as the scorer sees it).
    hist = feedback_matrix_new(n_users, n_items, users, items, values, n);
    if (!hist)
        goto oom;
    for (int32_t u = 0; u < n_users; u++) {
        int64_t begin = hist->row_ptr[u];
        user_history_t h = {hist->col + begin, hist->val + begin,
                            (int32_t)(hist->row_ptr[u + 1] - begin)};
        user_segment[u] = popularity_model_segment(self, &h);
        if (user_segment[u] >= 0)
            self->segment_users[user_segment[u]]++;
    }

    int64_t now = p.now;
    if (now == 0)
        for (size_t e = 0; e < n; e++)
            if (e == 0 || times[e] > now)
                now = times[e];
    double rate = log(2.0) / p.half_life_s;
    for (size_t e = 0; e < n; e++) {
        if (!(values[e] > 0))
            continue;
        double age = now > times[e] ? (double)(now - times[e]) : 0.0;
        double w = values[e] * exp(-rate * age);
        global[items[e]] += w;
        int32_t s = user_segment[users[e]];
        if (s >= 0)
            raw[(size_t)s * (size_t)n_items + (size_t)items[e]] += w;
    }

    double g_total = 0;
    for (int32_t i = 0; i < n_items; i++) {
        g_total += global[i];
        self->global[i] = (float)global[i];
    }
    for (int32_t s = 0; s < n_seg; s++) {
        double *row = raw + (size_t)s * (size_t)n_items;
        float *out = self->segment_scores + (size_t)s * (size_t)n_items;
        double mass = 0;
        for (int32_t i = 0; i < n_items; i++)
            mass += row[i];
        double denom = mass + p.prior;
        for (int32_t i = 0; i < n_items; i++) {
            double share = g_total > 0 ? global[i] / g_total : 0.0;
            out[i] = denom > 0 ? (float)((row[i] + p.prior * share) / denom) : 0.0f;
        }
    }

    feedback_matrix_destroy(&hist);
    free(global);
    free(raw);
    free(user_segment);
    return self;
oom:
    snprintf(err, errlen, "popularity model: out of memory");
    feedback_matrix_destroy(&hist);
    free(global);
    free(raw);
    free(user_segment);
    popularity_model_destroy(&self);
    return NULL;
}

int32_t popularity_model_segment(const popularity_model_t *self, const user_history_t *history)
{
    int32_t n_seg = self->n_segments;
    if (n_seg <= 0)
        return -1;
    int32_t best = -1;
    double best_mass = 0;
    if (n_seg <= S_STACK_SEGMENTS) {
        double mass[S_STACK_SEGMENTS] = {0};
        for (int32_t h = 0; h < history->len; h++) {
            int32_t i = history->items[h];
            float v = history->values[h];
            if (i < 0 || i >= self->n_items || !(v > 0))
                continue;
            for (int32_t a = self->item_segment_ptr[i]; a < self->item_segment_ptr[i + 1]; a++)
                mass[self->item_segments[a]] += v;
        }
        for (int32_t s = 0; s < n_seg; s++)
            if (mass[s] > best_mass) {
                best = s;
                best_mass = mass[s];
            }
        return best;
    }
    for (int32_t s = 0; s < n_seg; s++) {
        double mass = 0;
        for (int32_t h = 0; h < history->len; h++) {
            int32_t i = history->items[h];
            float v = history->values[h];
            if (i < 0 || i >= self->n_items || !(v > 0))
                continue;
            for (int32_t a = self->item_segment_ptr[i]; a < self->item_segment_ptr[i + 1]; a++)
                if (self->item_segments[a] == s)
                    mass += v;
        }
        if (mass > best_mass) {
            best = s;
            best_mass = mass;
        }
    }
    return best;
}

static int s_score(const void *model, const user_history_t *history, float *scores)
{
    const popularity_model_t *self = model;
    int32_t s = popularity_model_segment(self, history);
    const float *src =
        s >= 0 ? self->segment_scores + (size_t)s * (size_t)self->n_items : self->global;
    memcpy(scores, src, (size_t)self->n_items * sizeof *scores);
    return 0;
}

static int s_score_global(const void *model, const user_history_t *history, float *scores)
{
    (void)history; //  the global list is the same for everyone
    const popularity_model_t *self = model;
    memcpy(scores, self->global, (size_t)self->n_items * sizeof *scores);
    return 0;
}

scorer_t popularity_scorer(const popularity_model_t *self)
{
    return (scorer_t){.model = self, .n_items = self->n_items, .score = s_score};
}

scorer_t popularity_global_scorer(const popularity_model_t *self)
{
    return (scorer_t){.model = self, .n_items = self->n_items, .score = s_score_global};
}
