/*  prior_scorer.c: scores x (1 + popularity)^beta (see prior_scorer.h). */
#include "prior_scorer.h"

#include <math.h>

void prior_scorer_fill(const float *counts, int32_t n, float beta, float *prior)
{
    for (int32_t j = 0; j < n; j++) {
        float c = counts[j] > 0 ? counts[j] : 0;
        prior[j] = beta > 0 ? powf(1.0f + c, beta) : 1.0f;
    }
}

static int s_score(const void *model, const user_history_t *history, float *scores)
{
    const prior_scorer_t *self = model;
    if (self->inner.score(self->inner.model, history, scores) != 0)
        return -1;
    for (int32_t j = 0; j < self->inner.n_items; j++)
        if (isfinite(scores[j]) && scores[j] > 0)
            scores[j] *= self->prior[j];
    return 0;
}

scorer_t prior_scorer(const prior_scorer_t *self)
{
    return (scorer_t){.model = self, .n_items = self->inner.n_items, .score = s_score};
}
