/*  ranker_models.h: the models a ranker serves, per model type: the active
    bundle and the one served before it.

    Owned and used by the ranker's loop only (not thread-safe): a loader
    thread opens bundles (ranker_loader.h) and hands them over, and the
    loop installs them here. Installing is a pointer swap between two
    requests, so a request never sees a half-loaded model, and the bundle
    pushed out of "previous" is destroyed at once: the loop is
    single-threaded, so after the swap nothing references it.

    Besides, a few pinned models: the versions that running experiments'
    variants name by model id (proto RECS_REQ model_id), served to the
    requests that ask for them instead of their type's active model. At
    most RANKER_MODELS_PINNED_MAX; the loader says which are pinned, the
    loop drops the rest (ranker_models_unpin_others).
*/
#ifndef RECSD_RANKER_MODELS_H
#define RECSD_RANKER_MODELS_H

#include <stdbool.h>

#include "model_artifact.h"
#include "model_registry.h"

//  The serving chain, best first: a request is scored by the first type
//  that has a bundle (ranker_serve.h).
#define RANKER_MODELS_TYPES 4
#define RANKER_MODELS_PINNED_MAX 8
extern const char *const ranker_models_types[RANKER_MODELS_TYPES];

typedef struct ranker_models_t ranker_models_t;

//  One served model. Everything borrowed from the set, valid until the
//  next install of its type.
typedef struct {
    const model_bundle_t *bundle;
    const char *model_id;
    int version;
} ranker_model_t;

//  An empty set. Returns NULL on allocation failure.
ranker_models_t *ranker_models_new(void);

//  Destroys every bundle; idempotent, sets *self_p to NULL.
void ranker_models_destroy(ranker_models_t **self_p);

//  Index of type in ranker_models_types, or -1.
int ranker_models_type_index(const char *type);

//  Installs *bundle_p (taken: *bundle_p is set to NULL) as the active
//  model of type: the active one becomes previous, the previous one is
//  destroyed. If model_id is already the active one the new copy is
//  destroyed instead and nothing changes. Returns 1 if the active model
//  changed, 0 if not, -1 for a type outside the chain (the bundle is
//  destroyed then too).
int ranker_models_install(ranker_models_t *self, const char *type, const char *model_id,
                          int version, model_bundle_t **bundle_p);

//  The active (previous = false) or previous model of type; false if
//  there is none (out is zeroed).
bool ranker_models_get(const ranker_models_t *self, int type_index, bool previous,
                       ranker_model_t *out);

//  Installs *bundle_p (taken) as the pinned model model_id of type. If
//  model_id is pinned already the new copy is destroyed. Returns 1 if
//  added, 0 if it was there, -1 (bundle destroyed) for a type outside the
//  chain or when RANKER_MODELS_PINNED_MAX are pinned.
int ranker_models_pin(ranker_models_t *self, const char *type, const char *model_id, int version,
                      model_bundle_t **bundle_p);

//  Destroys the pinned models whose id is not among ids[0..n). Returns
//  how many were dropped.
int ranker_models_unpin_others(ranker_models_t *self, const char *const *ids, int n);

//  Pinned models held.
int ranker_models_pinned_count(const ranker_models_t *self);

//  The model model_id wherever the set holds it: pinned, else the active
//  or previous model of a type (a variant may pin the version that is
//  active). Fills *out and *type_index (into ranker_models_types);
//  false if not held (out zeroed, *type_index -1).
bool ranker_models_find(const ranker_models_t *self, const char *model_id, ranker_model_t *out,
                        int *type_index);

#endif
