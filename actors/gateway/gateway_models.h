/*  gateway_models.h: the gateway's training and model API.

    POST /api/v1/recs/train
        body {"model_type": str, "start_date": datetime?, "end_date": datetime?}
        (model_type collaborative|content|hybrid|popularity|all; dates are
        RFC 3339 with a zone, bounds on the interactions used; null is the
        same as absent; other members are refused, so a typo is not
        silently ignored; at most GATEWAY_API_BODY_MAX bytes, else 413)
        202 {"training_id","model_ids":[...],"model_id":<first>,
             "status":"queued","models":[{"model_id","model_type","version"}]}
            Location: /api/v1/recs/models/<model_id>
    GET /api/v1/recs/models[?model_type=T][&limit=1..1000]
        200 model_registry_list's document, newest first
    GET /api/v1/recs/models/{id}
        200 model_registry_get's document; 400 if {id} is not a uuid; 404
    POST /api/v1/recs/models/{id}/activate   (body ignored)
        200 {"model_id","model_type","status":"active","active":true,
             "changed":bool,"previous_model_id":str|null,
             "reason":"manual"|"rollback","activated_by"}
        400 not a uuid; 404 unknown; 409 not activatable (queued, running,
        failed, or no artifact)
    Until JWT authentication exists (issue 7) the caller is recorded as
    "anonymous@<client address>".

    Errors are problem+json (gateway_problem.h) plus "request_id"; 400s
    name the offending member in "invalid-params". PostgreSQL unreachable,
    slow or failing is 503 with a generic detail and the request id: the
    cause (which may contain SQL) goes to the log under that request id,
    never to the client.

    Threads: the HTTP threads call gateway_models_handle concurrently; they
    share a pg_pool of at most GATEWAY_MODELS_POOL_MAX connections, opened
    on first use (the gateway starts while PostgreSQL is down), each with a
    statement timeout. This path never touches the ranker, so
    recommendations are served exactly as before whatever happens here.

    Ownership: the gateway context owns the object (gateway_models_new /
    _destroy, after the HTTP server stopped).
*/
#ifndef RECSD_GATEWAY_MODELS_H
#define RECSD_GATEWAY_MODELS_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway_api.h"
#include "gateway_route.h"

#define GATEWAY_MODELS_POOL_MAX 4        //  PostgreSQL connections, at most
#define GATEWAY_MODELS_ACQUIRE_MS 2000   //  wait for a free connection
#define GATEWAY_MODELS_CONNECT_S 2       //  connect timeout
#define GATEWAY_MODELS_STATEMENT_MS 5000 //  statement_timeout

typedef struct gateway_models_t gateway_models_t;

//  Makes the handlers and their (empty) connection pool for dsn. Returns
//  NULL with the reason in err if dsn is empty or memory runs out.
gateway_models_t *gateway_models_new(const char *dsn, char *err, size_t errlen);

//  Closes the pool; idempotent, sets *self_p to NULL. No handler may be
//  running.
void gateway_models_destroy(gateway_models_t **self_p);

//  The request and reply of the API handlers (gateway_api.h); these
//  handlers read route, id, body, client, principal, limit, model_type,
//  url and request_id.
typedef gateway_api_request_t gateway_models_request_t;
typedef gateway_api_reply_t gateway_models_reply_t;

//  Answers req into *reply (zeroed first). self NULL (the API could not be
//  set up) answers 503. Always fills a reply: body is NULL only when
//  memory ran out, and status is then 500. Thread-safe.
void gateway_models_handle(gateway_models_t *self, const gateway_models_request_t *req,
                           gateway_models_reply_t *reply);

#endif
