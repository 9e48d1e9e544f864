/*  gateway_auth.c: the gateway's authentication and authorisation check
    (see gateway_auth.h). */
#include "gateway_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_keys.h"
#include "auth_jwt.h"
#include "log.h"

struct gateway_auth_t {
    auth_t *auth;
};

gateway_auth_t *gateway_auth_new(const config_t *cfg, bool *off, char *err, size_t errlen)
{
    *off = false;
    bool any = cfg->jwt_hs256_secret[0] || cfg->jwt_public_key_file[0] || cfg->jwt_jwks_file[0] ||
               cfg->api_keys[0];
    if (strcmp(cfg->auth_mode, "off") == 0 || (strcmp(cfg->auth_mode, "auto") == 0 && !any)) {
        *off = true;
        return NULL;
    }
    if (!any) {
        snprintf(err, errlen,
                 "RECSD_AUTH=required but no credential is configured (RECSD_JWT_HS256_SECRET, "
                 "RECSD_JWT_PUBLIC_KEY_FILE, RECSD_JWT_JWKS_FILE or RECSD_API_KEYS)");
        return NULL;
    }
    auth_jwt_t *jwt = NULL;
    api_keys_t *keys = NULL;
    char why[256];
    if (cfg->jwt_hs256_secret[0] || cfg->jwt_public_key_file[0] || cfg->jwt_jwks_file[0]) {
        auth_jwt_config_t jc = {.hs256_secret = cfg->jwt_hs256_secret,
                                .public_key_file = cfg->jwt_public_key_file,
                                .jwks_file = cfg->jwt_jwks_file,
                                .issuer = cfg->jwt_issuer,
                                .audience = cfg->jwt_audience,
                                .leeway_s = cfg->jwt_leeway_s,
                                .roles_claim = cfg->jwt_roles_claim};
        jwt = auth_jwt_new(&jc, why, sizeof why);
        if (!jwt) {
            snprintf(err, errlen, "JWT configuration: %s", why);
            return NULL;
        }
    }
    if (cfg->api_keys[0]) {
        keys = api_keys_new(cfg->api_keys, why, sizeof why);
        if (!keys) {
            auth_jwt_destroy(&jwt);
            snprintf(err, errlen, "RECSD_API_KEYS: %s", why);
            return NULL;
        }
    }
    gateway_auth_t *self = calloc(1, sizeof *self);
    if (self)
        self->auth = auth_new(&jwt, &keys, why, sizeof why);
    auth_jwt_destroy(&jwt);
    api_keys_destroy(&keys);
    if (!self || !self->auth) {
        snprintf(err, errlen, "authentication: %s", self ? why : "out of memory");
        free(self);
        return NULL;
    }
    return self;
}

void gateway_auth_destroy(gateway_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    auth_destroy(&(*self_p)->auth);
    free(*self_p);
    *self_p = NULL;
}

void gateway_auth_check(const gateway_auth_t *self, gateway_route_t route, const char *method,
                        const char *user_id, const char *authorization, const char *api_key,
                        gateway_auth_result_t *out)
{
    memset(out, 0, sizeof *out);
    unsigned required = gateway_route_roles(route, method);
    if (!self || required == GATEWAY_ROUTE_PUBLIC)
        return;
    char why[128] = "";
    auth_result_t rc =
        auth_authenticate(self->auth, authorization, api_key, &out->principal, why, sizeof why);
    if (rc == AUTH_MISSING) {
        out->status = 401;
        snprintf(out->challenge, sizeof out->challenge, "Bearer realm=\"recsd\"");
        snprintf(out->detail, sizeof out->detail,
                 "credentials are required: a bearer token or an X-API-Key");
        return;
    }
    if (rc != AUTH_OK) {
        out->status = 401;
        //  why is a constant text without quotes (auth.h): safe in the header.
        snprintf(out->challenge, sizeof out->challenge,
                 "Bearer realm=\"recsd\", error=\"invalid_token\", error_description=\"%s\"", why);
        snprintf(out->detail, sizeof out->detail, "invalid credentials: %s", why);
        return;
    }
    out->authenticated = true;
    if (!auth_allows(&out->principal, required)) {
        char have[64] = "";
        auth_roles_format(out->principal.roles, have, sizeof have);
        out->status = 403;
        snprintf(out->detail, sizeof out->detail, "this needs another role (you have: %s)",
                 have[0] ? have : "none");
        return;
    }
    if (route == GATEWAY_ROUTE_RECS && user_id && !auth_may_read_user(&out->principal, user_id)) {
        out->status = 403;
        snprintf(out->detail, sizeof out->detail, "a user may read only their own recommendations");
    }
}
