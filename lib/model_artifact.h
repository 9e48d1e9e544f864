/*  model_artifact.h: a trained model of any type as an artifact file, and
    an artifact file back as a model that scores (a "bundle").

    Sections by model type (names as stored; see artifact.h for the file):
      every type     meta (BYTES, JSON: type, params, ...), videos (strings:
                     the video id of every index the model scores)
      collaborative  als.items F32 n x f, als.gram F32 f x f, als.conf F32 1 x 2
                     (regularization, alpha)
      content        nbr.idx I32 n x k, nbr.sim F32 n x k, content.prior F32 1 x n
                     (prior_scorer.h)
      item_knn       same as content
      ease           ease.sub I32 1 x n_sub, ease.b F32 n_sub x n_sub
      popularity     pop.global F32 1 x n, pop.seg F32 s x n, pop.segnames
                     (strings), pop.iseg_ptr I32, pop.iseg I32, pop.segusers I32
      hybrid         the collaborative, content (with its prior) and (if trained) ease
                     sections, and hyb.params F32 1 x 3 (content_k,
                     content_floor, ease_share)
    A bundle's models are views into the read-only mapping (owned = false),
    so opening a 100 MB artifact costs its checksum pass, not a copy.
*/
#ifndef RECSD_MODEL_ARTIFACT_H
#define RECSD_MODEL_ARTIFACT_H

#include <stddef.h>
#include <stdint.h>

#include "als.h"
#include "ease.h"
#include "faiss_index.h"
#include "hybrid.h"
#include "item_neighbours.h"
#include "popularity_model.h"
#include "prior_scorer.h"
#include "scorer.h"

//  What to write; every pointer borrowed for the call. Which models must
//  be present depends on model_type (table above); the rest are ignored.
typedef struct {
    const char *model_type; //  collaborative|content|hybrid|popularity|ease|item_knn
    const char *const *video_ids;
    int32_t n_videos;
    const als_model_t *als;
    const item_neighbours_t *neighbours; //  content, item_knn, hybrid's content side
    const ease_model_t *ease;            //  ease; optional for hybrid
    const popularity_model_t *popularity;
    const float *content_prior; //  content and hybrid: n_videos multipliers
    const hybrid_params_t *hybrid;
    const char *meta_json; //  NULL = "{}"
} model_artifact_parts_t;

//  Writes the artifact atomically to path (artifact_writer_write) and the
//  SHA-256 into checksum (65 bytes). Returns 0, or -1 with the reason in
//  err (a part missing for the type, sizes that disagree, I/O).
int model_artifact_write(const model_artifact_parts_t *parts, const char *path, char checksum[65],
                         char *err, size_t errlen);

typedef struct model_bundle_t model_bundle_t;

//  Opens and verifies path (artifact_open: magic, bounds, SHA-256), checks
//  the checksum against expect_checksum when that is not NULL or "", and
//  builds the type's model over the mapping. Returns a bundle the caller
//  owns, or NULL with the reason in err (corrupt, wrong checksum, missing
//  or inconsistent sections, unknown type).
model_bundle_t *model_bundle_open(const char *path, const char *expect_checksum, char *err,
                                  size_t errlen);

//  Unmaps and frees; idempotent, sets *self_p to NULL. Every scorer and
//  string obtained from the bundle becomes invalid.
void model_bundle_destroy(model_bundle_t **self_p);

//  Borrowed, valid while the bundle lives.
const char *model_bundle_type(const model_bundle_t *self);
const char *model_bundle_checksum(const model_bundle_t *self);
const char *model_bundle_meta(const model_bundle_t *self); //  JSON text

//  The model's scorer over model_bundle_videos() videos; thread-safe.
scorer_t model_bundle_scorer(const model_bundle_t *self);

//  A copy of a hybrid bundle's blend into *out: its scorers point into the
//  bundle (valid while it lives), its params are the trained ones. The
//  caller may change the copy's params (hybrid_set_params) or scratch to
//  score with another blend for one request without touching the bundle
//  or copying the model. Returns 0, or -1 if the bundle is not hybrid.
int model_bundle_hybrid(const model_bundle_t *self, hybrid_t *out);

int32_t model_bundle_videos(const model_bundle_t *self);
const char *model_bundle_video_id(const model_bundle_t *self, int32_t index);

//  Index of a video id in this model, or -1 if the model does not know it.
//  Thread-safe (read-only hash built at open).
int32_t model_bundle_video_index(const model_bundle_t *self, const char *video_id);

//  The ALS model of a collaborative or hybrid bundle (a view over the
//  mapping), else NULL. Borrowed.
const als_model_t *model_bundle_als(const model_bundle_t *self);

//  Builds an approximate nearest-neighbour index (FAISS IVF, inner
//  product) over the item factors of a collaborative bundle, so that the
//  ranker can take the top of a catalogue too large to score in full
//  (bench/scoring_bench: brute force loses from ~50,000 videos). nlist is
//  the power of two nearest 2 sqrt(n), trained on at most 64 vectors per
//  list; searches probe max(16, nlist / 64) lists (recall@10 about 0.99 on
//  the benchmark's data). Takes seconds for a million videos: call it
//  where that does not block serving (the ranker's loader thread). Returns
//  0, or -1 with the reason in err (not collaborative, FAISS failed).
int model_bundle_build_ann(model_bundle_t *self, char *err, size_t errlen);

//  The index built above, or NULL. Borrowed; searches are thread-safe.
const faiss_index_t *model_bundle_ann(const model_bundle_t *self);

//  Lists the ANN index probes per search (see model_bundle_build_ann).
int model_bundle_ann_nprobe(const model_bundle_t *self);

//  The popularity model of a popularity bundle (for segment lists), else
//  NULL. Borrowed.
const popularity_model_t *model_bundle_popularity(const model_bundle_t *self);

#endif
