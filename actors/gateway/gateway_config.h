/*  gateway_config.h: the serving configuration in the gateway: the
    version every request uses (default type, limit bounds; kept current
    by a watcher thread: a change reaches this process within about a
    second, and survives restarts because it lives in PostgreSQL), and its
    admin API:

    GET  /api/v1/recs/config
         200 the current document (serving_config.h), its number in
         X-Config-Version (0: the environment's defaults, nothing stored)
    PUT  /api/v1/recs/config               (admin)
         body: a complete document; 400 names the refused field and
         changes nothing; 200 the stored version
         {"version","created_by","created_at","note","rolled_back_from",
          "document"}; the optional X-Change-Note header becomes its note
    GET  /api/v1/recs/config/versions[?limit=1..1000][&before=N]
         200 {"versions":[stored versions, newest first]}
    POST /api/v1/recs/config/rollback      (admin)
         body {"version": N}: N's document becomes current as a new
         version; 200 that version; 404 no such version

    Ownership: the gateway context owns it (destroy after the HTTP server
    stopped); the pool is borrowed.
*/
#ifndef RECSD_GATEWAY_CONFIG_H
#define RECSD_GATEWAY_CONFIG_H

#include <stdint.h>

#include "config.h"
#include "gateway_api.h"
#include "pg_pool.h"
#include "serving_config.h"

typedef struct gateway_config_t gateway_config_t;

//  Starts the watcher (it connects in the background: PostgreSQL may be
//  down at start; the environment's defaults serve meanwhile). pool is
//  borrowed for the handlers. Returns NULL with the reason in err.
gateway_config_t *gateway_config_new(const config_t *cfg, pg_pool_t *pool, char *err,
                                     size_t errlen);

//  Stops the watcher; idempotent, sets *self_p to NULL.
void gateway_config_destroy(gateway_config_t **self_p);

//  Copies the configuration in force into *out; returns its version.
//  Thread-safe.
int64_t gateway_config_current(gateway_config_t *self, serving_config_t *out);

//  Answers a request of the CONFIG, CONFIG_VERSIONS or CONFIG_ROLLBACK
//  routes into *reply (zeroed first). Thread-safe.
void gateway_config_handle(gateway_config_t *self, const gateway_api_request_t *req,
                           const char *note, gateway_api_reply_t *reply);

#endif
