/*  ease.h: EASE, the closed-form item-item model of Steck (2019,
    "Embarrassingly Shallow Autoencoders for Sparse Data").

    B = I - P / diag(P) with P = (X^T X + lambda I)^-1, X the binary
    user x video matrix (1 where the strength is > 0). B has a zero
    diagonal; a user's scores are x_u B. Dense in the catalogue, so it is
    limited to the max_items most-consumed videos: 4000 videos keep B at
    64 MB and training at a couple of seconds (one Cholesky factorisation
    and inverse through LAPACK in OpenBLAS).
*/
#ifndef RECSD_EASE_H
#define RECSD_EASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feedback_matrix.h"
#include "scorer.h"

#define EASE_DEFAULT_MAX_ITEMS 4000
//  Largest subset accepted: 20000^2 floats is already 1.6 GB.
#define EASE_MAX_ITEMS 20000

//  The struct comes from the heap; sub_items and b belong to it when owned
//  is true and are someone else's memory (an mmapped artifact) when not.
typedef struct {
    int32_t n_items;    //  full catalogue: length of the scores array
    int32_t n_sub;      //  videos in the model
    int32_t *sub_items; //  n_sub full-catalogue indexes, ascending
    float *b;           //  n_sub x n_sub row-major, b[i * n_sub + j] = B_ij, zero diagonal
    bool owned;
} ease_model_t;

//  Trains on ui (users x videos, read-only) with L2 weight lambda (> 0,
//  finite), over the max_items (1..EASE_MAX_ITEMS) videos with the most
//  users who liked them (ties to the lower index). Videos nobody liked are
//  never in the subset. Returns a model the caller owns, or NULL with the
//  reason in err: bad parameters, no positive feedback at all, allocation
//  failure, or a failed factorisation.
ease_model_t *ease_train(const feedback_matrix_t *ui, float lambda, int32_t max_items, char *err,
                         size_t errlen);

//  Frees the model (the arrays only if owned, the struct always);
//  idempotent, sets *self_p to NULL.
void ease_model_destroy(ease_model_t **self_p);

//  Scorer: score[j] = sum of B[h, j] over history videos h in the subset
//  with strength > 0 (the model is binary: disliked or unknown videos
//  contribute nothing). Videos outside the subset score -INFINITY.
//  Cannot fail. The model pointer is self, borrowed.
scorer_t ease_scorer(const ease_model_t *self);

#endif
