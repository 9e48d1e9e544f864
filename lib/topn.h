/*  topn.h: the N best-scoring videos out of a score array, by partial
    selection (a bounded min-heap): O(n log N), no full sort.

    Used by the evaluation, the trainer's neighbour lists and the ranker.
*/
#ifndef RECSD_TOPN_H
#define RECSD_TOPN_H

#include <stdbool.h>
#include <stdint.h>

//  Writes into out[] the indexes of the (at most) n highest finite scores
//  of scores[0..count-1], best first; ties go to the lower index, so the
//  result is deterministic. Entries that are not finite (-INFINITY, NaN)
//  and those with skip != NULL && skip[i] are never chosen. Returns how
//  many were written (< n when fewer qualify). Cannot fail; uses no heap
//  memory beyond out (the heap lives in out itself).
int32_t topn_select(const float *scores, int32_t count, const bool *skip, int32_t *out, int32_t n);

#endif
