/*  gateway_state.c: the main loop <-> HTTP threads hand-over (see gateway_state.h). */
#include "gateway_state.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gateway_popular_t {
    atomic_uint refs;
    popular_list_t *list;
};

struct gateway_state_t {
    pthread_mutex_t lock;
    //  Under lock:
    gateway_popular_t *popular; //  the state's own reference, or NULL
    gateway_check_t postgres;
    gateway_check_t redis;
    int ready_status;
    char *ready_body;
    char *actor_metrics;
    gateway_models_t *models; //  borrowed, see gateway_state_set_models
    //  Lock-free:
    atomic_uint_fast64_t in_flight;
    atomic_uint_fast64_t handled;
    atomic_bool stopping;
    char served_model[4][40];   //  under lock, by s_type_slot
    char registry_model[4][40]; //  under lock
};

static const char s_starting[] = "{\"ready\":false,\"checks\":{\"startup\":"
                                 "{\"ok\":false,\"detail\":\"not checked yet\"}}}";

gateway_state_t *gateway_state_new(void)
{
    gateway_state_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    gateway_check_set(&self->postgres, false, "not checked yet");
    gateway_check_set(&self->redis, false, "not checked yet");
    self->ready_status = 503;
    self->ready_body = strdup(s_starting);
    atomic_init(&self->in_flight, 0);
    atomic_init(&self->handled, 0);
    atomic_init(&self->stopping, false);
    if (!self->ready_body) {
        gateway_state_destroy(&self);
        return NULL;
    }
    return self;
}

void gateway_state_destroy(gateway_state_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_state_t *self = *self_p;
    gateway_popular_release(&self->popular);
    free(self->ready_body);
    free(self->actor_metrics);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

void gateway_state_set_popular(gateway_state_t *self, popular_list_t **list_p)
{
    gateway_popular_t *ref = calloc(1, sizeof *ref);
    if (!ref) {
        //  Keep serving the previous copy; the next refresh tries again.
        popular_list_destroy(list_p);
        return;
    }
    atomic_init(&ref->refs, 1);
    ref->list = *list_p;
    *list_p = NULL;
    pthread_mutex_lock(&self->lock);
    gateway_popular_t *old = self->popular;
    self->popular = ref;
    pthread_mutex_unlock(&self->lock);
    gateway_popular_release(&old);
}

gateway_popular_t *gateway_state_popular(gateway_state_t *self)
{
    pthread_mutex_lock(&self->lock);
    gateway_popular_t *ref = self->popular;
    if (ref)
        atomic_fetch_add_explicit(&ref->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&self->lock);
    return ref;
}

const popular_list_t *gateway_popular_list(const gateway_popular_t *ref)
{
    return ref ? ref->list : NULL;
}

void gateway_popular_release(gateway_popular_t **ref_p)
{
    if (!ref_p || !*ref_p)
        return;
    gateway_popular_t *ref = *ref_p;
    *ref_p = NULL;
    //  acq_rel: the freeing thread must see every reader's last access.
    if (atomic_fetch_sub_explicit(&ref->refs, 1, memory_order_acq_rel) == 1) {
        popular_list_destroy(&ref->list);
        free(ref);
    }
}

size_t gateway_state_popular_size(gateway_state_t *self)
{
    gateway_popular_t *ref = gateway_state_popular(self);
    size_t size = ref && ref->list ? popular_list_size(ref->list) : 0;
    gateway_popular_release(&ref);
    return size;
}

void gateway_state_set_deps(gateway_state_t *self, const gateway_check_t *postgres,
                            const gateway_check_t *redis)
{
    pthread_mutex_lock(&self->lock);
    self->postgres = *postgres;
    self->redis = *redis;
    pthread_mutex_unlock(&self->lock);
}

void gateway_state_deps(gateway_state_t *self, gateway_check_t *postgres, gateway_check_t *redis)
{
    pthread_mutex_lock(&self->lock);
    *postgres = self->postgres;
    *redis = self->redis;
    pthread_mutex_unlock(&self->lock);
}

void gateway_state_set_ready(gateway_state_t *self, int http_status, char **body_p)
{
    pthread_mutex_lock(&self->lock);
    char *old = self->ready_body;
    self->ready_body = *body_p;
    self->ready_status = http_status;
    pthread_mutex_unlock(&self->lock);
    *body_p = NULL;
    free(old);
}

char *gateway_state_ready(gateway_state_t *self, int *http_status, size_t *len)
{
    pthread_mutex_lock(&self->lock);
    char *copy = strdup(self->ready_body);
    *http_status = self->ready_status;
    pthread_mutex_unlock(&self->lock);
    if (copy && len)
        *len = strlen(copy);
    return copy;
}

void gateway_state_set_actor_metrics(gateway_state_t *self, char **text_p)
{
    pthread_mutex_lock(&self->lock);
    char *old = self->actor_metrics;
    self->actor_metrics = *text_p;
    pthread_mutex_unlock(&self->lock);
    *text_p = NULL;
    free(old);
}

char *gateway_state_render_metrics(gateway_state_t *self, gateway_metrics_t *metrics,
                                   gateway_cache_t *cache, size_t *len)
{
    //  The extra section: the cache's series, then the actors' (copied out
    //  under the lock first: rendering under it would make the main loop
    //  wait on a slow scrape).
    char *extra = NULL;
    size_t extra_len = 0;
    FILE *out = open_memstream(&extra, &extra_len);
    if (!out)
        return NULL;
    int rc = cache ? gateway_cache_metrics_write(cache, out) : 0;
    pthread_mutex_lock(&self->lock);
    if (rc == 0 && self->actor_metrics && fputs(self->actor_metrics, out) == EOF)
        rc = -1;
    pthread_mutex_unlock(&self->lock);
    if (fclose(out) != 0 || rc != 0) {
        free(extra);
        return NULL;
    }
    char *text = gateway_metrics_render(metrics, gateway_state_in_flight(self), extra, len);
    free(extra);
    return text;
}

void gateway_state_enter(gateway_state_t *self)
{
    atomic_fetch_add_explicit(&self->in_flight, 1, memory_order_relaxed);
}

void gateway_state_leave(gateway_state_t *self)
{
    atomic_fetch_sub_explicit(&self->in_flight, 1, memory_order_relaxed);
}

uint64_t gateway_state_in_flight(gateway_state_t *self)
{
    return atomic_load_explicit(&self->in_flight, memory_order_relaxed);
}

void gateway_state_count_handled(gateway_state_t *self)
{
    atomic_fetch_add_explicit(&self->handled, 1, memory_order_relaxed);
}

uint64_t gateway_state_handled(gateway_state_t *self)
{
    return atomic_load_explicit(&self->handled, memory_order_relaxed);
}

void gateway_state_set_models(gateway_state_t *self, gateway_models_t *models)
{
    pthread_mutex_lock(&self->lock);
    self->models = models;
    pthread_mutex_unlock(&self->lock);
}

gateway_models_t *gateway_state_models(gateway_state_t *self)
{
    pthread_mutex_lock(&self->lock);
    gateway_models_t *models = self->models;
    pthread_mutex_unlock(&self->lock);
    return models;
}

void gateway_state_set_stopping(gateway_state_t *self)
{
    atomic_store(&self->stopping, true);
}

bool gateway_state_stopping(gateway_state_t *self)
{
    return atomic_load_explicit(&self->stopping, memory_order_relaxed);
}

static int s_type_slot(const char *type)
{
    static const char *types[4] = {"hybrid", "collaborative", "content", "popularity"};
    for (int i = 0; i < 4; i++)
        if (strcmp(type, types[i]) == 0)
            return i;
    return -1;
}

void gateway_state_served_model(gateway_state_t *self, const char *type, char *out, size_t outlen)
{
    int slot = s_type_slot(type);
    pthread_mutex_lock(&self->lock);
    snprintf(out, outlen, "%s", slot >= 0 ? self->served_model[slot] : "");
    pthread_mutex_unlock(&self->lock);
}

bool gateway_state_confirm_served_model(gateway_state_t *self, const char *type,
                                        const char *model_id)
{
    int slot = s_type_slot(type);
    if (slot < 0 || !model_id || !*model_id)
        return false;
    pthread_mutex_lock(&self->lock);
    bool active = strcmp(self->registry_model[slot], model_id) == 0;
    if (active)
        snprintf(self->served_model[slot], sizeof self->served_model[slot], "%s", model_id);
    pthread_mutex_unlock(&self->lock);
    return active;
}

void gateway_state_set_registry_model(gateway_state_t *self, const char *type, const char *model_id)
{
    int slot = s_type_slot(type);
    if (slot < 0)
        return;
    pthread_mutex_lock(&self->lock);
    if (strcmp(self->registry_model[slot], model_id ? model_id : "") != 0) {
        snprintf(self->registry_model[slot], sizeof self->registry_model[slot], "%s",
                 model_id ? model_id : "");
        self->served_model[slot][0] = '\0';
    }
    pthread_mutex_unlock(&self->lock);
}
