/*  gateway_cors.h: cross-origin requests from browsers (CORS, Fetch
    standard), for the origins the configuration allows
    (RECSD_CORS_ORIGINS: a comma-separated list of exact origins such as
    https://app.example.com, or "" for none).

    A request whose Origin is allowed gets Access-Control-Allow-Origin with
    that origin (never "*": credentials are sent), Vary: Origin, and the
    response headers a browser may read (X-Request-Id, Retry-After,
    RateLimit-*). A preflight (OPTIONS with Access-Control-Request-Method)
    from an allowed origin is answered 204 with the route's methods, the
    request headers the API reads and a max age, before authentication
    (a preflight carries no credentials); from any other origin it is 403.
    Immutable after creation: thread-safe.
*/
#ifndef RECSD_GATEWAY_CORS_H
#define RECSD_GATEWAY_CORS_H

#include <stdbool.h>
#include <stddef.h>

#define GATEWAY_CORS_ORIGINS_MAX 32
#define GATEWAY_CORS_ALLOW_HEADERS                                                                 \
    "Authorization, Content-Type, X-API-Key, X-Request-Id, X-Change-Note, traceparent"
#define GATEWAY_CORS_EXPOSE_HEADERS                                                                \
    "X-Request-Id, X-Config-Version, Retry-After, RateLimit-Limit, RateLimit-Remaining, "          \
    "RateLimit-Reset, Location, traceparent"
#define GATEWAY_CORS_MAX_AGE "600"

typedef struct gateway_cors_t gateway_cors_t;

//  Parses the list. Returns the allow-list (empty for "" or NULL), or NULL
//  with the reason in err (an entry that is not scheme://host[:port], too
//  many entries).
gateway_cors_t *gateway_cors_new(const char *origins, char *err, size_t errlen);

//  Idempotent, sets *self_p to NULL.
void gateway_cors_destroy(gateway_cors_t **self_p);

//  True if origin (the request's Origin header, may be NULL) is allowed.
bool gateway_cors_allowed(const gateway_cors_t *self, const char *origin);

#endif
