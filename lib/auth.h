/*  auth.h: turns request credentials into a principal, and the
    authorisation rules the gateway applies to it.

    This is the one place that decides who is calling: the gateway hands
    over the raw Authorization and X-API-Key header values and gets back a
    principal (subject, role bits, how it authenticated) or a reason to
    answer 401. The authorisation rules are data (role masks) checked by
    auth_allows() and auth_may_read_user(), so a route table names the
    roles it needs instead of scattering checks through handlers.

    Roles. There are four; their names, case-sensitive, are the strings
    accepted in a JWT's roles claim and in the API key configuration:

        name      bit                what it is for
        user      AUTH_ROLE_USER     an end user; may read its own lists
        service   AUTH_ROLE_SERVICE  another service; may read any user's lists
        admin     AUTH_ROLE_ADMIN    operators; may read anything, change anything
        trainer   AUTH_ROLE_TRAINER  ML engineers/jobs: training, activation

    Mapping. A JWT principal gets the bits of the known role names in its
    roles claim (auth_jwt.h says where that claim is) plus AUTH_ROLE_USER
    always: every valid token names a subject that may read its own lists.
    Unknown role names in a token are ignored, not errors (identity
    providers put many roles in a token that are not ours). An API key
    principal gets exactly the roles configured for the key (api_keys.h),
    where an unknown role name is a configuration error instead.

    Credentials. Authorization must be "Bearer <token>" (scheme
    case-insensitive, RFC 6750); X-API-Key is the key itself. A request
    that sends both is rejected as ambiguous rather than silently using
    one of them.

    Thread safety: an auth_t is immutable after auth_new(); any number of
    threads may call auth_authenticate() on it at once.
*/
#ifndef RECSD_AUTH_H
#define RECSD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_keys.h"
#include "auth_jwt.h"

//  Role bits. A mask of these is what auth_allows() takes.
#define AUTH_ROLE_USER 0x1u
#define AUTH_ROLE_SERVICE 0x2u
#define AUTH_ROLE_ADMIN 0x4u
#define AUTH_ROLE_TRAINER 0x8u
#define AUTH_ROLE_ALL 0xfu

//  Longest subject, in bytes without the NUL.
#define AUTH_SUBJECT_MAX AUTH_JWT_SUBJECT_MAX

typedef enum { AUTH_OK = 0, AUTH_MISSING, AUTH_INVALID } auth_result_t;

typedef enum { AUTH_VIA_NONE = 0, AUTH_VIA_JWT, AUTH_VIA_API_KEY } auth_via_t;

typedef struct {
    //  JWT: the token's sub. API key: "apikey:<name>" for a named key, else
    //  "apikey:<first 12 hex digits of its hash>". Stable, not secret: fit
    //  for logs and as the rate-limit key.
    char subject[AUTH_SUBJECT_MAX + 1];
    unsigned roles;     //  AUTH_ROLE_* bits
    auth_via_t via;     //  how the principal authenticated
    int64_t expires_at; //  JWT exp (Unix seconds); 0 for an API key
} auth_principal_t;

typedef struct auth_t auth_t;

//  Takes ownership of *jwt_p and *keys_p (either may point to NULL: that
//  method is then off) and sets both to NULL, also on failure. At least one
//  method must be on. Returns the authenticator, or NULL with the reason in
//  err.
auth_t *auth_new(auth_jwt_t **jwt_p, api_keys_t **keys_p, char *err, size_t errlen);

//  Idempotent, sets *self_p to NULL. No other thread may use it any more.
void auth_destroy(auth_t **self_p);

//  Authenticates a request from its raw header values (NULL or "" when the
//  header is absent). The current time is read with time(2).
//    AUTH_OK       *principal is filled in.
//    AUTH_MISSING  no credentials, or an Authorization scheme other than
//                  Bearer: answer 401 with a bare `WWW-Authenticate: Bearer`.
//    AUTH_INVALID  credentials present but not acceptable: answer 401 with
//                  error="invalid_token" and err as error_description.
//  err (may be NULL) gets a short reason fit for that header: a constant
//  text without quotes or backslashes that never contains any part of the
//  credentials. *principal is zeroed on any other result than AUTH_OK.
auth_result_t auth_authenticate(const auth_t *self, const char *authorization, const char *api_key,
                                auth_principal_t *principal, char *err, size_t errlen);

//  The same with an explicit current time (Unix seconds), for tests.
auth_result_t auth_authenticate_at(const auth_t *self, const char *authorization,
                                   const char *api_key, int64_t now, auth_principal_t *principal,
                                   char *err, size_t errlen);

//  True if the principal holds at least one of the roles in `required`;
//  required == 0 means "any authenticated principal". False for NULL.
bool auth_allows(const auth_principal_t *principal, unsigned required);

//  True if the principal may read user_id's data: the service and admin
//  roles may read any user; otherwise only a JWT principal whose subject
//  equals user_id exactly (an API key is never a user). False for NULL or
//  an empty user_id.
bool auth_may_read_user(const auth_principal_t *principal, const char *user_id);

//  The role bit for a role name of len bytes (not necessarily
//  NUL-terminated), or 0 if the name is not one of the four.
unsigned auth_role_from_name(const char *name, size_t len);

//  Writes the role names of `roles` joined by '+' ("service+admin"; "" for
//  none), in the order of the table above. Returns 0, or -1 if it does not
//  fit (buf then holds "").
int auth_roles_format(unsigned roles, char *buf, size_t buflen);

//  "jwt", "api_key" or "none". Static string.
const char *auth_via_name(auth_via_t via);

#endif
