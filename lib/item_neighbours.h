/*  item_neighbours.h: for every video, its k most similar videos, and a
    scorer that recommends by summing the similarities of a user's history.

    The shape shared by the item-kNN baseline (co-consumption cosine) and
    the content model (TF-IDF cosine). Stored as two dense n_items x k
    arrays so that an artifact section can be mmapped straight into it.
    Rows with fewer than k neighbours are padded with index -1, sim 0.
*/
#ifndef RECSD_ITEM_NEIGHBOURS_H
#define RECSD_ITEM_NEIGHBOURS_H

#include <stdbool.h>
#include <stdint.h>

#include "scorer.h"

//  Neighbours per video, at most (keeps set_row's selection on the stack).
#define ITEM_NEIGHBOURS_MAX_K 1024

typedef struct {
    int32_t n_items;
    int32_t k;
    int32_t *idx; //  n_items * k neighbour indexes, most similar first, -1 = none
    float *sim;   //  n_items * k similarities, same layout
    bool owned;   //  false for a view on someone else's memory (an mmapped artifact)
} item_neighbours_t;

//  An empty table (all -1 / 0) the caller owns, or NULL on allocation
//  failure or k outside 1..ITEM_NEIGHBOURS_MAX_K.
item_neighbours_t *item_neighbours_new(int32_t n_items, int32_t k);

//  Frees the table (the arrays only if owned); idempotent, sets *self_p = NULL.
void item_neighbours_destroy(item_neighbours_t **self_p);

//  Sets row i from a dense similarity row sims[0..n_items-1]: keeps the k
//  largest positive similarities other than i itself (topn_select).
//  Returns 0; cannot fail.
int item_neighbours_set_row(item_neighbours_t *self, int32_t i, const float *sims);

//  Scorer: score[j] = sum over history items h with value > 0 of
//  sim(h, j) * min(value, 1); videos that no history item links to score
//  -INFINITY (never recommended by this model alone). Disliked history
//  items (value <= 0) contribute nothing. The model pointer is the table.
scorer_t item_neighbours_scorer(const item_neighbours_t *self);

#endif
