/*  prior_scorer.h: a scorer re-weighted by a per-video prior.

    Content similarity alone ranks a user's taste but not the videos worth
    watching within it: the thousandth obscure comedy is as "similar" as
    the one everybody loved. Multiplying each positive score by a prior
    (1 + popularity)^beta, beta tuned on validation data, keeps the ranking
    content-driven while preferring what others liked; a video nobody has
    watched keeps a prior of 1, so it still reaches a list when similar
    enough (cold-start videos).
*/
#ifndef RECSD_PRIOR_SCORER_H
#define RECSD_PRIOR_SCORER_H

#include <stdint.h>

#include "scorer.h"

typedef struct {
    scorer_t inner;     //  borrowed
    const float *prior; //  inner.n_items multipliers, each >= 1; borrowed
} prior_scorer_t;

//  prior[j] = (1 + counts[j])^beta for n videos (counts >= 0, e.g. decayed
//  popularity; beta >= 0). Cannot fail.
void prior_scorer_fill(const float *counts, int32_t n, float beta, float *prior);

//  Scorer: inner's scores, each finite positive one multiplied by its
//  prior; others unchanged. The model pointer is self (borrowed).
scorer_t prior_scorer(const prior_scorer_t *self);

#endif
