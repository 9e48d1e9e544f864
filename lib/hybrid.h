/*  hybrid.h: a blend of up to three scorers, collaborative (ALS), content
    (TF-IDF neighbours) and EASE, whose weights depend on how long the
    user's history is.

    Weights, for a history with n positive entries:
        w_content(n) = floor + (1 - floor) * k / (k + n)   (the fraction is 0 if k = n = 0)
        w_als(n)     = (1 - w_content(n)) * (1 - ease_share)
        w_ease(n)    = (1 - w_content(n)) * ease_share
    so a new user leans on content, and weight moves to the collaborative
    side as the history grows, down to `floor`. An absent component hands
    its weight on: no EASE -> its share goes to ALS and vice versa; no
    collaborative component -> all to content; no content -> all to the
    collaborative side. A component whose weight is 0 is not even scored.

    Normalisation, per user and component, before blending: the z-score
    over the component's finite scores, clipped at 0:
        contribution = w * max(0, (s - mean) / std).
    z-scores put components with different scales (ALS dot products,
    summed cosines, EASE regression weights) on one scale at O(n) cost
    (rank-based needs a sort per request). The clip makes "no opinion"
    neutral: a -INFINITY score contributes nothing, and so does a score at
    or below the component's own average, so the content model's sparse
    output (only linked videos are finite) never pushes a video below one
    it knows nothing about. All finite scores equal: contribution 1 if
    only part of the catalogue is finite (the component singled those out),
    0 if all of it is (it expressed no preference). A video is -INFINITY in
    the blend only if every scored component says -INFINITY.

    The hybrid holds scorers, not models: whoever fills it keeps the models
    alive as long as the hybrid (and any scorer taken from it) is used.
*/
#ifndef RECSD_HYBRID_H
#define RECSD_HYBRID_H

#include <stddef.h>
#include <stdint.h>

#include "evaluation.h"
#include "scorer.h"

enum { HYBRID_ALS = 0, HYBRID_CONTENT = 1, HYBRID_EASE = 2, HYBRID_COMPONENTS = 3 };

typedef struct {
    float content_k;     //  >= 0: history length at which content has half its free weight
    float content_floor; //  [0, 1]: content weight however long the history
    float ease_share;    //  [0, 1]: share of the collaborative weight given to EASE
} hybrid_params_t;

typedef struct {
    scorer_t components[HYBRID_COMPONENTS]; //  indexed by HYBRID_*; .score NULL = absent
    hybrid_params_t params;
    int32_t n_items;
    //  Optional n_items floats (borrowed) the scorer works in. NULL: each
    //  score allocates its own, and the scorer is thread-safe; set: no
    //  allocation, and one caller at a time (the ranker's loop sets it on
    //  a copy of a bundle's hybrid, see model_bundle_hybrid).
    float *scratch;
} hybrid_t;

//  content_k 5, content_floor 0.1, ease_share 0.5. Cannot fail.
hybrid_params_t hybrid_params_default(void);

//  Fills *self from the (borrowed, each optional: NULL = absent) scorers and
//  params (NULL = defaults). Returns 0, or -1 with the reason in err (no
//  component, components of different catalogue sizes, params out of range).
int hybrid_init(hybrid_t *self, const scorer_t *als, const scorer_t *content, const scorer_t *ease,
                const hybrid_params_t *params, char *err, size_t errlen);

//  Replaces the blend constants (e.g. a per-request blend on a copy of a
//  bundle's hybrid: the struct is small and holds scorers, not models).
//  Returns 0, or -1 with self unchanged if params is out of range.
int hybrid_set_params(hybrid_t *self, const hybrid_params_t *params);

//  The effective weights w[HYBRID_*] for a history with n_positive positive
//  entries (absent components 0, see above). Cannot fail.
void hybrid_weights(const hybrid_t *self, int32_t n_positive, float w[HYBRID_COMPONENTS]);

//  Scorer of the blend; the model pointer is self (borrowed). Scoring
//  works in self->scratch, or else allocates one n_items buffer per call
//  (-1 if that fails, or if a component fails).
scorer_t hybrid_scorer(const hybrid_t *self);

//  A grid of blend constants to try (all arrays borrowed, each non-empty).
typedef struct {
    const float *content_k;
    int32_t n_content_k;
    const float *content_floor;
    int32_t n_content_floor;
    const float *ease_share;
    int32_t n_ease_share;
} hybrid_grid_t;

//  Grid-searches the blend constants for the best NDCG@10 on `validation`
//  (a split of the TRAINING data, evaluation_split_again(); the components
//  must have been trained on validation->train, never on anything that
//  saw the test part). grid NULL = a default grid (content_k 0..1000,
//  floor 0..0.25, ease_share 0..1). Values that cannot matter (ease_share
//  without both ALS and EASE, content constants without content) are tried
//  once. Ties keep the earlier grid point. On success sets self->params to
//  the best point, writes its metrics to *best (may be NULL) and returns 0;
//  else -1 with the reason in err and self unchanged.
//  Each validation user's normalised component scores are computed once
//  and cached when they fit in 1 GiB; otherwise every grid point re-scores.
int hybrid_tune(hybrid_t *self, const evaluation_split_t *validation, const hybrid_grid_t *grid,
                int threads, evaluation_metrics_t *best, char *err, size_t errlen);

#endif
