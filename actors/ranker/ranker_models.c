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
    int type; //  pinned slots: index into ranker_models_types
} s_slot_t;

struct ranker_models_t {
    s_slot_t active[RANKER_MODELS_TYPES];
    s_slot_t previous[RANKER_MODELS_TYPES];
    s_slot_t pinned[RANKER_MODELS_PINNED_MAX]; //  bundle NULL = free
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
    for (int p = 0; p < RANKER_MODELS_PINNED_MAX; p++)
        model_bundle_destroy(&self->pinned[p].bundle);
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

int ranker_models_pin(ranker_models_t *self, const char *type, const char *model_id, int version,
                      model_bundle_t **bundle_p)
{
    int t = ranker_models_type_index(type);
    s_slot_t *free_slot = NULL;
    for (int p = 0; p < RANKER_MODELS_PINNED_MAX && t >= 0; p++) {
        s_slot_t *slot = &self->pinned[p];
        if (slot->bundle && strcmp(slot->model_id, model_id) == 0) {
            model_bundle_destroy(bundle_p);
            return 0;
        }
        if (!slot->bundle && !free_slot)
            free_slot = slot;
    }
    if (t < 0 || !free_slot) {
        model_bundle_destroy(bundle_p);
        return -1;
    }
    *free_slot = (s_slot_t){.bundle = *bundle_p, .version = version, .type = t};
    snprintf(free_slot->model_id, sizeof free_slot->model_id, "%s", model_id);
    *bundle_p = NULL;
    return 1;
}

int ranker_models_unpin_others(ranker_models_t *self, const char *const *ids, int n)
{
    int dropped = 0;
    for (int p = 0; p < RANKER_MODELS_PINNED_MAX; p++) {
        s_slot_t *slot = &self->pinned[p];
        if (!slot->bundle)
            continue;
        bool keep = false;
        for (int i = 0; i < n && !keep; i++)
            keep = strcmp(ids[i], slot->model_id) == 0;
        if (!keep) {
            model_bundle_destroy(&slot->bundle);
            *slot = (s_slot_t){0};
            dropped++;
        }
    }
    return dropped;
}

int ranker_models_pinned_count(const ranker_models_t *self)
{
    int n = 0;
    for (int p = 0; p < RANKER_MODELS_PINNED_MAX; p++)
        n += self->pinned[p].bundle != NULL;
    return n;
}

bool ranker_models_find(const ranker_models_t *self, const char *model_id, ranker_model_t *out,
                        int *type_index)
{
    *out = (ranker_model_t){0};
    *type_index = -1;
    const s_slot_t *found = NULL;
    int t = -1;
    for (int p = 0; p < RANKER_MODELS_PINNED_MAX && !found; p++)
        if (self->pinned[p].bundle && strcmp(self->pinned[p].model_id, model_id) == 0) {
            found = &self->pinned[p];
            t = found->type;
        }
    for (int i = 0; i < RANKER_MODELS_TYPES && !found; i++)
        if (self->active[i].bundle && strcmp(self->active[i].model_id, model_id) == 0)
            found = &self->active[t = i];
        else if (self->previous[i].bundle && strcmp(self->previous[i].model_id, model_id) == 0)
            found = &self->previous[t = i];
    if (!found)
        return false;
    *out = (ranker_model_t){
        .bundle = found->bundle, .model_id = found->model_id, .version = found->version};
    *type_index = t;
    return true;
}
