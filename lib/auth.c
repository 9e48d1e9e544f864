/*  auth.c: request credentials to principal, and the authorisation rules
    (see auth.h). */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errbuf.h"

struct auth_t {
    auth_jwt_t *jwt;  //  NULL = bearer tokens off
    api_keys_t *keys; //  NULL = API keys off
};

//  The role table of auth.h, in its order.
static const struct {
    const char *name;
    unsigned bit;
} s_roles[] = {
    {"user", AUTH_ROLE_USER},
    {"service", AUTH_ROLE_SERVICE},
    {"admin", AUTH_ROLE_ADMIN},
    {"trainer", AUTH_ROLE_TRAINER},
};

auth_t *auth_new(auth_jwt_t **jwt_p, api_keys_t **keys_p, char *err, size_t errlen)
{
    auth_jwt_t *jwt = jwt_p ? *jwt_p : NULL;
    api_keys_t *keys = keys_p ? *keys_p : NULL;
    if (jwt_p)
        *jwt_p = NULL;
    if (keys_p)
        *keys_p = NULL;
    auth_t *self = NULL;
    if (!jwt && !keys) {
        errbuf_set(err, errlen, "authentication needs JWT verification or API keys");
        goto err;
    }
    self = calloc(1, sizeof *self);
    if (!self) {
        errbuf_set(err, errlen, "out of memory");
        goto err;
    }
    self->jwt = jwt;
    self->keys = keys;
    return self;
err:
    auth_jwt_destroy(&jwt);
    api_keys_destroy(&keys);
    return NULL;
}

void auth_destroy(auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    auth_t *self = *self_p;
    auth_jwt_destroy(&self->jwt);
    api_keys_destroy(&self->keys);
    free(self);
    *self_p = NULL;
}

static bool s_present(const char *header)
{
    return header && *header;
}

//  Finds the token in "Bearer <token>" (RFC 6750 2.1: the scheme is
//  case-insensitive, then one or more spaces). Returns the token (may be
//  empty), or NULL for another scheme.
static const char *s_bearer_token(const char *authorization)
{
    const char *p = authorization;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\0'))
        return NULL;
    p += 6;
    while (*p == ' ')
        p++;
    return p;
}

auth_result_t auth_authenticate_at(const auth_t *self, const char *authorization,
                                   const char *api_key, int64_t now, auth_principal_t *principal,
                                   char *err, size_t errlen)
{
    memset(principal, 0, sizeof *principal);
    if (err && errlen)
        err[0] = '\0';
    bool has_bearer = s_present(authorization), has_key = s_present(api_key);
    if (!has_bearer && !has_key) {
        errbuf_set(err, errlen, "no credentials");
        return AUTH_MISSING;
    }
    if (has_bearer && has_key) {
        errbuf_set(err, errlen, "send either a bearer token or an API key, not both");
        return AUTH_INVALID;
    }

    if (has_key) {
        char subject[API_KEYS_SUBJECT_MAX];
        unsigned roles = 0;
        if (!self->keys || api_keys_lookup(self->keys, api_key, &roles, subject, sizeof subject)) {
            errbuf_set(err, errlen, "invalid API key");
            return AUTH_INVALID;
        }
        snprintf(principal->subject, sizeof principal->subject, "%s", subject);
        principal->roles = roles;
        principal->via = AUTH_VIA_API_KEY;
        return AUTH_OK;
    }

    const char *token = s_bearer_token(authorization);
    if (!token) {
        errbuf_set(err, errlen, "unsupported authorization scheme");
        return AUTH_MISSING;
    }
    if (!*token) {
        errbuf_set(err, errlen, "empty bearer token");
        return AUTH_INVALID;
    }
    if (!self->jwt) {
        errbuf_set(err, errlen, "bearer tokens are not accepted");
        return AUTH_INVALID;
    }
    auth_jwt_claims_t claims;
    if (auth_jwt_verify(self->jwt, token, now, &claims, err, errlen) != 0)
        return AUTH_INVALID;
    memcpy(principal->subject, claims.subject, sizeof principal->subject);
    principal->roles = claims.roles | AUTH_ROLE_USER;
    principal->via = AUTH_VIA_JWT;
    principal->expires_at = claims.expires_at;
    return AUTH_OK;
}

auth_result_t auth_authenticate(const auth_t *self, const char *authorization, const char *api_key,
                                auth_principal_t *principal, char *err, size_t errlen)
{
    return auth_authenticate_at(self, authorization, api_key, (int64_t)time(NULL), principal, err,
                                errlen);
}

bool auth_allows(const auth_principal_t *principal, unsigned required)
{
    if (!principal || principal->via == AUTH_VIA_NONE)
        return false;
    return required == 0 || (principal->roles & required) != 0;
}

bool auth_may_read_user(const auth_principal_t *principal, const char *user_id)
{
    if (!principal || principal->via == AUTH_VIA_NONE || !user_id || !*user_id)
        return false;
    if (principal->roles & (AUTH_ROLE_SERVICE | AUTH_ROLE_ADMIN))
        return true;
    return principal->via == AUTH_VIA_JWT && strcmp(principal->subject, user_id) == 0;
}

unsigned auth_role_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof s_roles / sizeof s_roles[0]; i++)
        if (strlen(s_roles[i].name) == len && memcmp(s_roles[i].name, name, len) == 0)
            return s_roles[i].bit;
    return 0;
}

int auth_roles_format(unsigned roles, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return -1;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof s_roles / sizeof s_roles[0]; i++) {
        if (!(roles & s_roles[i].bit))
            continue;
        int n = snprintf(buf + used, buflen - used, "%s%s", used ? "+" : "", s_roles[i].name);
        if (n < 0 || (size_t)n >= buflen - used) {
            buf[0] = '\0';
            return -1;
        }
        used += (size_t)n;
    }
    return 0;
}

const char *auth_via_name(auth_via_t via)
{
    switch (via) {
    case AUTH_VIA_JWT:
        return "jwt";
    case AUTH_VIA_API_KEY:
        return "api_key";
    default:
        return "none";
    }
}
