/*  ranker_models.h: the models a ranker serves, per model type: the active
    bundle and the one served before it.

    Owned and used by the ranker's loop only (not thread-safe): a loader
    thread opens bundles (ranker_loader.h) and hands them over, and the
    loop installs them here. Installing is a pointer swap between two
    requests, so a request never sees a half-loaded model, and the bundle
    pushed out of "previous" is destroyed at once: the loop is
    single-threaded, so after the swap nothing references it.
*/
#ifndef RECSD_RANKER_MODELS_H
#define RECSD_RANKER_MODELS_H

#include <stdbool.h>

#include "model_artifact.h"
#include "model_registry.h"

//  The serving chain, best first: a request is scored by the first type
//  that has a bundle (ranker_serve.h).
#define RANKER_MODELS_TYPES 4
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

#endif
