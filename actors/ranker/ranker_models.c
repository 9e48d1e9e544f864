/*  ranker_models.c: active and previous bundle per model type (see
    ranker_models.h). */
#include "ranker_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ranker_models_types[RANKER_MODELS_TYPES] = {"hybrid", "collaborative", "content",
                                                              "popularity"};

typedef struct {
    model_bundle_t *bundle; //  NULL = none
    model_registry_id_t model_id;
    int version;
} s_slot_t;

struct ranker_models_t {
    s_slot_t active[RANKER_MODELS_TYPES];
    s_slot_t previous[RANKER_MODELS_TYPES];
};

ranker_models_t *ranker_models_new(void)
{
    return calloc(1, sizeof(ranker_models_t));
}

void ranker_models_destroy(ranker_models_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ranker_models_t *self = *self_p;
    for (int t = 0; t < RANKER_MODELS_TYPES; t++) {
        model_bundle_destroy(&self->active[t].bundle);
        model_bundle_destroy(&self->previous[t].bundle);
    }
    free(self);
    *self_p = NULL;
}

int ranker_models_type_index(const char *type)
{
    for (int t = 0; t < RANKER_MODELS_TYPES; t++)
        if (strcmp(type, ranker_models_types[t]) == 0)
            return t;
    return -1;
}

int ranker_models_install(ranker_models_t *self, const char *type, const char *model_id,
                          int version, model_bundle_t **bundle_p)
{
    int t = ranker_models_type_index(type);
    if (t < 0) {
        model_bundle_destroy(bundle_p);
        return -1;
    }
    s_slot_t *active = &self->active[t], *previous = &self->previous[t];
    if (active->bundle && strcmp(active->model_id, model_id) == 0) {
        model_bundle_destroy(bundle_p);
        return 0;
    }
    model_bundle_destroy(&previous->bundle);
    *previous = *active;
    *active = (s_slot_t){.bundle = *bundle_p, .version = version};
    snprintf(active->model_id, sizeof active->model_id, "%s", model_id);
    *bundle_p = NULL;
    return 1;
}

bool ranker_models_get(const ranker_models_t *self, int type_index, bool previous,
                       ranker_model_t *out)
{
    *out = (ranker_model_t){0};
    if (type_index < 0 || type_index >= RANKER_MODELS_TYPES)
        return false;
    const s_slot_t *slot = previous ? &self->previous[type_index] : &self->active[type_index];
    if (!slot->bundle)
        return false;
    *out = (ranker_model_t){
        .bundle = slot->bundle, .model_id = slot->model_id, .version = slot->version};
    return true;
}
