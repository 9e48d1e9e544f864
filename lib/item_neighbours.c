/*  item_neighbours.c: the k-nearest-videos table and its scorer.

    Scoring walks only the neighbour rows of the user's history, so its
    cost is history length x k, independent of catalogue size, apart from
    filling the score array.
*/
#include "item_neighbours.h"

#include <math.h>
#include <stdlib.h>

#include "topn.h"

item_neighbours_t *item_neighbours_new(int32_t n_items, int32_t k)
{
    if (n_items < 0 || k <= 0 || k > ITEM_NEIGHBOURS_MAX_K)
        return NULL;
    item_neighbours_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    size_t cells = (size_t)n_items * (size_t)k;
    self->n_items = n_items;
    self->k = k;
    self->owned = true;
    self->idx = malloc((cells > 0 ? cells : 1) * sizeof *self->idx);
    self->sim = calloc(cells > 0 ? cells : 1, sizeof *self->sim);
    if (!self->idx || !self->sim) {
        item_neighbours_destroy(&self);
        return NULL;
    }
    for (size_t c = 0; c < cells; c++)
        self->idx[c] = -1;
    return self;
}

void item_neighbours_destroy(item_neighbours_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    item_neighbours_t *self = *self_p;
    if (self->owned) {
        free(self->idx);
        free(self->sim);
    }
    free(self);
    *self_p = NULL;
}

int item_neighbours_set_row(item_neighbours_t *self, int32_t i, const float *sims)
{
    int32_t *row = self->idx + (size_t)i * (size_t)self->k;
    float *row_sim = self->sim + (size_t)i * (size_t)self->k;
    //  Only positive similarities are neighbours; the item itself never is.
    //  topn_select ignores non-finite scores, and a skip mask would cost an
    //  n_items allocation per row, so exclusion is done by selecting one
    //  more than needed and dropping i and non-positive entries afterwards.
    int32_t want = self->k + 1;
    int32_t picked[want];
    int32_t got = topn_select(sims, self->n_items, NULL, picked, want);
    int32_t kept = 0;
    for (int32_t p = 0; p < got && kept < self->k; p++) {
        int32_t j = picked[p];
        if (j == i || !(sims[j] > 0.0f))
            continue;
        row[kept] = j;
        row_sim[kept] = sims[j];
        kept++;
    }
    for (; kept < self->k; kept++) {
        row[kept] = -1;
        row_sim[kept] = 0.0f;
    }
    return 0;
}

//  A history item's influence: its positive strength, capped at 1 so one
//  heavily re-watched video does not drown the rest of the history.
static float s_influence(float value)
{
    return value >= 1.0f ? 1.0f : value;
}

static int s_score(const void *model, const user_history_t *history, float *scores)
{
    const item_neighbours_t *self = model;
    for (int32_t j = 0; j < self->n_items; j++)
        scores[j] = -INFINITY;
    for (int32_t h = 0; h < history->len; h++) {
        int32_t item = history->items[h];
        float value = history->values[h];
        if (item < 0 || item >= self->n_items || !(value > 0.0f))
            continue;
        float influence = s_influence(value);
        const int32_t *row = self->idx + (size_t)item * (size_t)self->k;
        const float *row_sim = self->sim + (size_t)item * (size_t)self->k;
        for (int32_t n = 0; n < self->k && row[n] >= 0; n++) {
            float add = row_sim[n] * influence;
            float *slot = &scores[row[n]];
            *slot = isfinite(*slot) ? *slot + add : add;
        }
    }
    return 0;
}

scorer_t item_neighbours_scorer(const item_neighbours_t *self)
{
    return (scorer_t){.model = self, .n_items = self->n_items, .score = s_score};
}
