/*  gateway_route.h: the gateway's URL routes and request-parameter rules.

    Pure functions, no I/O: they classify a (decoded) request path into a
    route template, and validate the user id, the limit and a client's
    X-Request-Id. Every function accepts any bytes and never crashes.
*/
#ifndef RECSD_GATEWAY_ROUTE_H
#define RECSD_GATEWAY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

//  Route templates; also the `route` label of the HTTP metrics.
typedef enum {
    GATEWAY_ROUTE_HEALTH = 0,      //  /health
    GATEWAY_ROUTE_READY,           //  /health/ready
    GATEWAY_ROUTE_METRICS,         //  /metrics
    GATEWAY_ROUTE_RECS,            //  /api/v1/recs/{userId}
    GATEWAY_ROUTE_TRAIN,           //  /api/v1/recs/train (POST)
    GATEWAY_ROUTE_MODELS,          //  /api/v1/recs/models
    GATEWAY_ROUTE_MODEL,           //  /api/v1/recs/models/{id}
    GATEWAY_ROUTE_ACTIVATE,        //  /api/v1/recs/models/{id}/activate (POST)
    GATEWAY_ROUTE_EXPERIMENTS,     //  /api/v1/recs/experiments (GET, POST)
    GATEWAY_ROUTE_EXPERIMENT,      //  /api/v1/recs/experiments/{id} (GET, PATCH)
    GATEWAY_ROUTE_CONFIG,          //  /api/v1/recs/config (GET, PUT)
    GATEWAY_ROUTE_CONFIG_VERSIONS, //  /api/v1/recs/config/versions
    GATEWAY_ROUTE_CONFIG_ROLLBACK, //  /api/v1/recs/config/rollback (POST)
    GATEWAY_ROUTE_OPENAPI,         //  /openapi.json
    GATEWAY_ROUTE_DOCS,            //  /docs, /redoc and their assets
    GATEWAY_ROUTE_OTHER,           //  anything else (404)
    GATEWAY_ROUTE_COUNT
} gateway_route_t;

#define GATEWAY_LIMIT_DEFAULT 10
#define GATEWAY_LIMIT_MAX 100
#define GATEWAY_USER_ID_MAX 64
#define GATEWAY_REQUEST_ID_MAX 64

//  The template text of route, e.g. "/api/v1/recs/{userId}". Cannot fail.
const char *gateway_route_template(gateway_route_t route);

//  Classifies path (already URL-decoded, may be NULL). For
//  GATEWAY_ROUTE_RECS, *tail_p (if not NULL) is set to the text after
//  "/api/v1/recs/" (borrowed from path, may be empty or contain '/');
//  otherwise to NULL. The service's own names under /api/v1/recs/
//  (train, models, experiments) are never a user id: this function
//  classifies them as GATEWAY_ROUTE_OTHER; the served ones are recognised
//  by gateway_route_match_models. Cannot fail.
gateway_route_t gateway_route_match(const char *path, const char **tail_p);

//  Classifies the API's own routes (path as above):
//    /api/v1/recs/train                  GATEWAY_ROUTE_TRAIN
//    /api/v1/recs/models                 GATEWAY_ROUTE_MODELS
//    /api/v1/recs/models/{id}            GATEWAY_ROUTE_MODEL
//    /api/v1/recs/models/{id}/activate   GATEWAY_ROUTE_ACTIVATE
//    /api/v1/recs/experiments            GATEWAY_ROUTE_EXPERIMENTS
//    /api/v1/recs/experiments/{id}       GATEWAY_ROUTE_EXPERIMENT
//    /api/v1/recs/config                 GATEWAY_ROUTE_CONFIG
//    /api/v1/recs/config/versions        GATEWAY_ROUTE_CONFIG_VERSIONS
//    /api/v1/recs/config/rollback        GATEWAY_ROUTE_CONFIG_ROLLBACK
//  {id} is one non-empty segment (no '/'); *id_p and *id_len_p (if not
//  NULL) get it, borrowed from path, not NUL-terminated; NULL and 0 for
//  the other routes. Any other path (including a trailing '/') is
//  GATEWAY_ROUTE_OTHER: then use gateway_route_match. Cannot fail.
gateway_route_t gateway_route_match_models(const char *path, const char **id_p, size_t *id_len_p);

//  True if method is allowed on route: GET and HEAD on the read routes,
//  POST on GATEWAY_ROUTE_TRAIN, _ACTIVATE and _CONFIG_ROLLBACK, and also
//  POST on _EXPERIMENTS, PATCH on _EXPERIMENT, PUT on _CONFIG.
//  GATEWAY_ROUTE_OTHER allows nothing: it answers 404 whatever the method.
bool gateway_route_method_allowed(gateway_route_t route, const char *method);

//  The value for the Allow header of a 405 answer on the read routes.
#define GATEWAY_ROUTE_ALLOW "GET, HEAD"

//  The value for the Allow header of a 405 answer on route. Cannot fail.
const char *gateway_route_allow(gateway_route_t route);

//  Who may call route with method: the one table of the API's rules.
//  GATEWAY_ROUTE_PUBLIC: no credentials needed (probes, metrics, the
//  documentation, and unknown paths, which are 404 for everyone);
//  otherwise the AUTH_ROLE_* bits (lib/auth.h) of which the principal
//  needs one, 0 meaning any authenticated principal:
//    recommendations                 any (a user token: only its own list)
//    reading models, experiments and the configuration
//                                    service, admin, trainer
//    training and activation         admin, trainer
//    experiment and configuration changes
//                                    admin
#define GATEWAY_ROUTE_PUBLIC 0xffffffffu
unsigned gateway_route_roles(gateway_route_t route, const char *method);

//  Checks a user id: 1..64 bytes of 0x21..0x7e, no '/'. Returns 0, or -1
//  with the reason written to why.
int gateway_route_user_id_check(const char *text, char *why, size_t whylen);

//  Parses the limit query parameter: NULL means "absent" and gives the
//  default; otherwise a decimal integer 1..100, digits only. Returns 0 with
//  *limit set, or -1 with the reason written to why.
int gateway_route_limit_parse(const char *text, int *limit, char *why, size_t whylen);

//  True if text may be reused as a request id: 1..64 bytes of 0x21..0x7e.
bool gateway_route_request_id_valid(const char *text);

//  Writes a printable rendering of path into out (for logs and the problem
//  "instance"): bytes outside 0x21..0x7e and '%' are percent-encoded, so it
//  is again a valid URI path; cut with "..." if it does not fit. out is
//  always NUL-terminated (outlen >= 4). Returns out.
char *gateway_route_sanitize(const char *path, char *out, size_t outlen);

#endif
