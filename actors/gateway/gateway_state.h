/*  gateway_state.h: what the gateway's main loop shares with its HTTP threads.

    The main loop (and the dependency probe thread) write; HTTP threads only
    read. Nothing here does I/O. Two kinds of sharing:
    - small texts (the rendered readiness document, the actor metrics) and
      the probe results are copied in and out under one mutex;
    - the popularity list, which is larger and read on the fallback path,
      is an immutable object behind a reference count: readers take a
      reference under the mutex and read without it, a writer swaps the
      pointer, and the last reader frees the old list.
    Counters (in flight, handled) and the stopping flag are C11 atomics.

    Ownership: the gateway context owns the state and destroys it after the
    HTTP daemon and the probe thread have stopped.
*/
#ifndef RECSD_GATEWAY_STATE_H
#define RECSD_GATEWAY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway_cache.h"
#include "gateway_health.h"
#include "gateway_metrics.h"
#include "popular_list.h"

typedef struct gateway_state_t gateway_state_t;

//  The training/model API's handlers (gateway_models.h); declared here
//  so that this header does not depend on that one.
typedef struct gateway_models_t gateway_models_t;

//  A counted reference to one popularity list (see gateway_state_popular).
typedef struct gateway_popular_t gateway_popular_t;

//  Returns a state with readiness 503 "starting", no popularity list,
//  dependency checks "not checked yet". NULL on allocation failure.
gateway_state_t *gateway_state_new(void);

//  Idempotent, sets *self_p to NULL. No reader may still be running.
void gateway_state_destroy(gateway_state_t **self_p);

//  Replaces the popularity list; takes ownership of *list_p and sets it to
//  NULL. The previous list is freed when its last reader lets go.
void gateway_state_set_popular(gateway_state_t *self, popular_list_t **list_p);

//  Takes a reference to the current popularity list, or NULL if none was
//  loaded yet. Release it with gateway_popular_release.
gateway_popular_t *gateway_state_popular(gateway_state_t *self);

//  The list behind a reference (borrowed, valid until released).
const popular_list_t *gateway_popular_list(const gateway_popular_t *ref);

//  Drops a reference; idempotent, sets *ref_p to NULL.
void gateway_popular_release(gateway_popular_t **ref_p);

//  Size of the current list (0 if none), for readiness details and logs.
size_t gateway_state_popular_size(gateway_state_t *self);

//  Dependency probe results (copied).
void gateway_state_set_deps(gateway_state_t *self, const gateway_check_t *postgres,
                            const gateway_check_t *redis);
void gateway_state_deps(gateway_state_t *self, gateway_check_t *postgres, gateway_check_t *redis);

//  Readiness document rendered by the main loop; takes ownership of
//  *body_p (malloc'd) and sets it to NULL.
void gateway_state_set_ready(gateway_state_t *self, int http_status, char **body_p);

//  A copy of the readiness document (caller frees with free()) and its
//  HTTP status; NULL on allocation failure.
char *gateway_state_ready(gateway_state_t *self, int *http_status, size_t *len);

//  Actor metrics text; takes ownership of *text_p and sets it to NULL
//  (NULL text clears it).
void gateway_state_set_actor_metrics(gateway_state_t *self, char **text_p);

//  Which model's lists the cache may serve, per recommendation type
//  (hybrid, collaborative, content, popularity). A list is cached, and its
//  model becomes the served one, only when the model that computed it is
//  the registry's active model (refreshed by the probe thread): an answer
//  of a model the ranker still serves after a swap, or instead of a
//  refused artifact, is never cached. When the registry's active model
//  changes the served one is forgotten, so no list of the previous model
//  is found after a swap or a rollback (at most one probe interval late).
//  "" = none: no cache lookup. Thread-safe.
void gateway_state_served_model(gateway_state_t *self, const char *type, char *out, size_t outlen);
//  True (and model_id is now the served one) if model_id is the
//  registry's active model of type: its lists may be cached.
bool gateway_state_confirm_served_model(gateway_state_t *self, const char *type,
                                        const char *model_id);
void gateway_state_set_registry_model(gateway_state_t *self, const char *type,
                                      const char *model_id);

//  Renders the full /metrics text through gateway_metrics_render with the
//  actor section appended; caller frees the result. NULL on failure.
char *gateway_state_render_metrics(gateway_state_t *self, gateway_metrics_t *metrics,
                                   gateway_cache_t *cache, size_t *len);

//  In-flight requests (the queue depth reported to the supervisor).
void gateway_state_enter(gateway_state_t *self);
void gateway_state_leave(gateway_state_t *self);
uint64_t gateway_state_in_flight(gateway_state_t *self);

//  Requests answered since start (reported as "handled" in heartbeats).
void gateway_state_count_handled(gateway_state_t *self);
uint64_t gateway_state_handled(gateway_state_t *self);

//  The model API (borrowed; the gateway context owns it). Set once by the
//  main thread before the HTTP server starts, cleared (NULL) only after it
//  stopped; HTTP threads read it. NULL: the model routes answer 503.
void gateway_state_set_models(gateway_state_t *self, gateway_models_t *models);
gateway_models_t *gateway_state_models(gateway_state_t *self);

//  Set once when the actor starts stopping: answers carry Connection: close.
void gateway_state_set_stopping(gateway_state_t *self);
bool gateway_state_stopping(gateway_state_t *self);

#endif
