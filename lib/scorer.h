/*  scorer.h: the one interface every recommendation model scores through.

    A model scores every video of its catalogue for one user, given only
    that user's history (video indexes and signed strengths as in
    feedback_matrix.h). Scoring from the history, rather than from a stored
    per-user row, is what lets one code path serve the offline evaluation,
    a user the model has never seen, and a user whose history changed a
    second ago (online fold-in).

    Used by the evaluation (lib/evaluation.h), the trainer (quality gate)
    and the ranker (serving). A scorer never owns the model it points at.
*/
#ifndef RECSD_SCORER_H
#define RECSD_SCORER_H

#include <stdint.h>

typedef struct {
    const int32_t *items; //  video indexes in the model's index space
    const float *values;  //  signed strengths, same length
    int32_t len;
} user_history_t;

typedef struct {
    const void *model; //  borrowed
    int32_t n_items;   //  length of the scores array
    //  Writes a score for every video into scores[0..n_items-1]; higher is
    //  better, -INFINITY means "never recommend". Videos in the history need
    //  not be excluded (the caller filters). Must be safe to call from
    //  several threads at once on the same model. Returns 0, or -1 on
    //  allocation failure.
    int (*score)(const void *model, const user_history_t *history, float *scores);
} scorer_t;

#endif
