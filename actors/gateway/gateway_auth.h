/*  gateway_auth.h: who may call what, at the gateway's door.

    Built once from the configuration (RECSD_AUTH and the RECSD_JWT_*,
    RECSD_API_KEYS variables: lib/auth.h does the verification), before
    the HTTP threads start, and immutable afterwards. Every request passes
    gateway_auth_check with its route (gateway_route_roles says what each
    route needs): public routes pass; otherwise missing or bad credentials
    are 401 with a WWW-Authenticate challenge (RFC 6750), a principal
    without the route's role is 403, and a user token asking for another
    user's recommendations is 403.

    RECSD_AUTH=auto (the default) requires credentials when any is
    configured and is off otherwise (logged at warn: every endpoint is
    then open, which suits a laptop, not production); "required" refuses
    to start without one; "off" turns it off.

    Ownership: the gateway context owns it; thread-safe after creation.
*/
#ifndef RECSD_GATEWAY_AUTH_H
#define RECSD_GATEWAY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "gateway_route.h"

typedef struct gateway_auth_t gateway_auth_t;

//  Returns the checker, or NULL with the reason in err (bad key material,
//  "required" without credentials). *off is set when authentication is
//  off (the checker then lets everything through).
gateway_auth_t *gateway_auth_new(const config_t *cfg, bool *off, char *err, size_t errlen);

//  Idempotent, sets *self_p to NULL.
void gateway_auth_destroy(gateway_auth_t **self_p);

typedef struct {
    int status;                 //  0 = allowed, else 401 or 403
    char challenge[256];        //  WWW-Authenticate value for a 401
    char detail[160];           //  for the problem body
    auth_principal_t principal; //  who, when allowed and authenticated
    bool authenticated;
} gateway_auth_result_t;

//  Checks one request. user_id: the {userId} of a recommendations
//  request (else NULL). authorization, api_key: raw header values (NULL
//  if absent). self NULL: everything allowed. Thread-safe.
void gateway_auth_check(const gateway_auth_t *self, gateway_route_t route, const char *method,
                        const char *user_id, const char *authorization, const char *api_key,
                        gateway_auth_result_t *out);

#endif
