/*  item_knn.h: the item-kNN baseline. Two videos are similar when the
    same users liked both: cosine of their binary columns (strength > 0),
    co(i, j) / sqrt(n_i n_j). Each video keeps its k most similar videos in
    an item_neighbours_t and is scored through item_neighbours_scorer().

    Sparse throughout: co-occurrences of one video are counted from the
    users who liked it (the transposed matrix), so the cost is the sum of
    the squared history lengths and never a dense videos x videos matrix.
*/
#ifndef RECSD_ITEM_KNN_H
#define RECSD_ITEM_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "feedback_matrix.h"
#include "item_neighbours.h"

//  Builds the neighbour table of every video of ui (users x videos,
//  read-only) with k in 1..ITEM_NEIGHBOURS_MAX_K neighbours per video and
//  `threads` worker threads (0 = number of online CPUs; the result does not
//  depend on it). Similarity ties go to the lower video index. Videos that
//  nobody liked have no neighbours and are nobody's neighbour. Returns a
//  table the caller owns, or NULL with the reason in err (bad parameters,
//  allocation failure).
item_neighbours_t *item_knn_train(const feedback_matrix_t *ui, int32_t k, int threads, char *err,
                                  size_t errlen);

#endif
