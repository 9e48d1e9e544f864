/*  ranker_explain.c: explanations for recommended videos (see
    ranker_explain.h). */
#include "ranker_explain.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static bool s_is(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

//  The bundle's ALS model, or NULL if it has none.
static const als_model_t *s_als(const model_bundle_t *b)
{
    scorer_t s = model_bundle_scorer(b);
    const char *type = model_bundle_type(b);
    const als_model_t *als = NULL;
    if (s_is(type, "collaborative"))
        als = s.model;
    else if (s_is(type, "hybrid")) {
        const hybrid_t *h = s.model;
        if (h && h->components[HYBRID_ALS].score)
            als = h->components[HYBRID_ALS].model;
    }
    if (!als || !als->item_factors || als->n_items != model_bundle_videos(b) || als->factors < 1)
        return NULL;
    return als;
}

//  The bundle's neighbour table, or NULL if it has none.
static const item_neighbours_t *s_neighbours(const model_bundle_t *b)
{
    scorer_t s = model_bundle_scorer(b);
    const char *type = model_bundle_type(b);
    const item_neighbours_t *nb = NULL;
    const prior_scorer_t *content = NULL;
    if (s_is(type, "item_knn"))
        nb = s.model;
    else if (s_is(type, "content"))
        content = s.model;
    else if (s_is(type, "hybrid")) {
        const hybrid_t *h = s.model;
        if (h && h->components[HYBRID_CONTENT].score)
            content = h->components[HYBRID_CONTENT].model;
    }
    if (content)
        nb = content->inner.model;
    if (!nb || !nb->idx || !nb->sim || nb->k < 1 || nb->n_items != model_bundle_videos(b))
        return NULL;
    return nb;
}

static int32_t s_by_similarity(const item_neighbours_t *nb, const int32_t *history, int32_t n,
                               int32_t item)
{
    int32_t best = -1;
    float best_sim = 0;
    const int32_t *row = nb->idx + (size_t)item * (size_t)nb->k;
    const float *sim = nb->sim + (size_t)item * (size_t)nb->k;
    for (int32_t i = 0; i < n; i++) {
        int32_t h = history[i];
        if (h < 0 || h >= nb->n_items || h == item)
            continue;
        //  item's row: is h among its neighbours?
        for (int32_t j = 0; j < nb->k; j++)
            if (row[j] == h && isfinite(sim[j]) && sim[j] > best_sim) {
                best_sim = sim[j];
                best = i;
            }
        //  h's row: is item among h's neighbours (what the scorer summed)?
        const int32_t *hrow = nb->idx + (size_t)h * (size_t)nb->k;
        const float *hsim = nb->sim + (size_t)h * (size_t)nb->k;
        for (int32_t j = 0; j < nb->k; j++)
            if (hrow[j] == item && isfinite(hsim[j]) && hsim[j] > best_sim) {
                best_sim = hsim[j];
                best = i;
            }
    }
    return best;
}

static int32_t s_by_factors(const als_model_t *als, const int32_t *history, int32_t n, int32_t item)
{
    int32_t best = -1;
    double best_dot = -INFINITY;
    const float *target = als->item_factors + (size_t)item * (size_t)als->factors;
    for (int32_t i = 0; i < n; i++) {
        int32_t h = history[i];
        if (h < 0 || h >= als->n_items || h == item)
            continue;
        const float *v = als->item_factors + (size_t)h * (size_t)als->factors;
        double dot = 0;
        for (int f = 0; f < als->factors; f++)
            dot += (double)v[f] * (double)target[f];
        if (isfinite(dot) && dot > best_dot) {
            best_dot = dot;
            best = i;
        }
    }
    return best;
}

int32_t ranker_explain(const model_bundle_t *bundle, const int32_t *history, int32_t n,
                       int32_t item)
{
    if (!bundle || !history || n <= 0 || item < 0 || item >= model_bundle_videos(bundle))
        return -1;
    const item_neighbours_t *nb = s_neighbours(bundle);
    int32_t best = nb ? s_by_similarity(nb, history, n, item) : -1;
    if (best >= 0)
        return best;
    const als_model_t *als = s_als(bundle);
    return als ? s_by_factors(als, history, n, item) : -1;
}
