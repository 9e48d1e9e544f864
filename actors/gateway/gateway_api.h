/*  gateway_api.h: what the gateway's PostgreSQL-backed API handlers share
    (training and models, experiments, serving configuration): the request
    as the HTTP layer saw it, the reply they fill, and the JSON and
    problem+json answers they give.

    Those handlers never touch the ranker; their errors are problem+json
    (gateway_problem.h) with the request id, and a database that fails is
    a 503 whose cause goes to the log under the request id, never to the
    client.
*/
#ifndef RECSD_GATEWAY_API_H
#define RECSD_GATEWAY_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gateway_route.h"

#define GATEWAY_API_BODY_MAX 16384 //  request body bytes, at most

//  One request. Everything is borrowed.
typedef struct {
    gateway_route_t route;  //  method already allowed for it
    const char *method;     //  "GET", "POST", ...
    const char *id;         //  the {id} segment (not NUL-terminated), or NULL
    size_t id_len;          //  its length
    const char *body;       //  request body (may hold any bytes), or NULL
    size_t body_len;        //  its length
    bool body_too_large;    //  the client sent more than the route's limit
    const char *client;     //  client address ("127.0.0.1"), or NULL if unknown
    const char *principal;  //  who asks (recorded as created_by), or NULL: anonymous@client
    const char *limit;      //  ?limit=, or NULL
    const char *model_type; //  ?model_type=, or NULL
    const char *status;     //  ?status=, or NULL
    const char *before;     //  ?before=, or NULL
    const char *url;        //  request path, for the problem's "instance"
    const char *request_id; //  the request's id (logs, problem bodies)
    //  The trace context work queued by this request carries on (the
    //  server span's, else the caller's; NULL or "" for none), so that the
    //  process doing it later continues the request's trace.
    const char *traceparent;
} gateway_api_request_t;

typedef struct {
    int status;
    const char *content_type; //  static string
    char *body;               //  malloc'd; the caller frees it
    size_t len;
    char location[96];   //  Location header value, "" if none
    char extra_name[32]; //  one more header ("" if none), e.g. X-Config-Version
    char extra_value[32];
} gateway_api_reply_t;

//  Answers doc (taken over; NULL = out of memory) as JSON with status. A
//  failed dump becomes a fixed 500 problem. flags: json_dumps flags.
void gateway_api_json(gateway_api_reply_t *reply, int status, json_t *doc, size_t flags);

//  A problem+json answer with the request id; param names the offending
//  input (NULL: none).
void gateway_api_problem(gateway_api_reply_t *reply, const gateway_api_request_t *req, int status,
                         const char *detail, const char *param);

//  503 "<what> is unavailable; try again later"; cause (which may hold
//  SQL) is logged under the request id with context.
void gateway_api_unavailable(gateway_api_reply_t *reply, const gateway_api_request_t *req,
                             const char *what, const char *context, const char *cause);

//  The body as a JSON object, or NULL after answering 400 (or 413 when the
//  body was too large). Strict: duplicate keys refused. Caller decrefs.
json_t *gateway_api_body(gateway_api_reply_t *reply, const gateway_api_request_t *req);

//  Who is asking, for created_by: the principal, else "anonymous@<client>".
void gateway_api_who(const gateway_api_request_t *req, char *who, size_t len);

//  Copies the {id} segment into out (EXPERIMENT_ID_LEN + 1 bytes at least)
//  if it has the length of a uuid; false otherwise (out is then "").
bool gateway_api_uuid(const gateway_api_request_t *req, char *out, size_t outlen);

#endif
