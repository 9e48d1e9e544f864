/*  gateway_health.h: readiness checks and the /health/ready document.

    Pure: the main loop gathers the inputs (dependency probe results, the
    supervisor's actor table, the drain/stop flags), these functions decide
    and render; HTTP threads only serve the rendered text.

    Body: {"ready":bool,"checks":{
             "postgres":{"ok":bool,"detail":str},
             "redis":{"ok":bool,"detail":str},
             "actors":{"ok":bool,"detail":str,"actors":{"<name>":"<state>",...}},
             "draining":{"ok":bool,"detail":str}}}
    Ready (HTTP 200) when every check is ok, else 503.
*/
#ifndef RECSD_GATEWAY_HEALTH_H
#define RECSD_GATEWAY_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

typedef struct {
    bool ok;
    char detail[256];
} gateway_check_t;

//  Sets *check to {ok, detail}. Cannot fail.
void gateway_check_set(gateway_check_t *check, bool ok, const char *detail);

//  The actor check. required: names of the actors readiness needs (count
//  entries of 32 bytes). status: the latest supervisor status reply, or
//  NULL if none ever came; status_age_ms: how old it is; interval_ms: the
//  readiness interval. Fails if the status is missing or older than 3
//  intervals ("supervisor not answering"), or if a required actor is absent
//  or "failed", "stopping" or "stopped". "starting" and "backoff" pass: a
//  briefly restarting backend degrades answers, it does not stop them.
//  Cannot fail.
void gateway_health_actors(const char (*required)[32], int count, const proto_status_rep_t *status,
                           int64_t status_age_ms, int interval_ms, gateway_check_t *check);

//  True if a status of this age is still current (age <= 3 intervals).
bool gateway_health_status_fresh(int64_t status_age_ms, int interval_ms);

typedef struct {
    gateway_check_t postgres;
    gateway_check_t redis;
    gateway_check_t actors;
    const proto_status_rep_t *status; //  borrowed, may be NULL: the actor map
    bool draining;
    bool stopping;
} gateway_health_input_t;

//  Renders the readiness document. Returns a string the caller frees with
//  free() and sets *http_status to 200 or 503; NULL on allocation failure.
char *gateway_health_render(const gateway_health_input_t *in, int *http_status);

#endif
