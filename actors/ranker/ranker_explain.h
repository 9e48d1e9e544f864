/*  ranker_explain.h: why a video was recommended, as the watched video
    that explains it best.

    For a model with item neighbours (content; hybrid's content side) the
    reason is the history video most similar to the recommended one (the
    neighbour tables are read both ways: the recommended video's row, and
    each history video's row). For a model with ALS item factors
    (collaborative; hybrid when no history video is a neighbour) it is the
    history video whose factor vector has the largest dot product with the
    recommended video's. Popularity has no per-item link: no reason.

    The bundle's models are reached through its scorer (model_artifact.h
    builds them as views: collaborative -> als_model_t, content ->
    prior_scorer_t over item_neighbours_t, hybrid -> hybrid_t over both);
    the type name says which, and sizes are checked before any index is
    used. Cost: O(k + history * (k + factors)) per item, for the returned
    items only. Pure: no allocation, thread-safe.
*/
#ifndef RECSD_RANKER_EXPLAIN_H
#define RECSD_RANKER_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model_artifact.h"

//  Index (into history[]) of the video that best explains `item`, or -1 if
//  none does (no history video the model links to it, or a model type
//  without links). history holds n bundle indexes of videos the user liked
//  (borrowed for the call); indexes outside the bundle are ignored.
int32_t ranker_explain(const model_bundle_t *bundle, const int32_t *history, int32_t n,
                       int32_t item);

#endif
