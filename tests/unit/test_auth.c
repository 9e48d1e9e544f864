/*  test_auth.c: credentials to principal and the authorisation rules
    (lib/auth.c), with a real HS256 verifier and a real API key set. */
#include <criterion/criterion.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "leak_check.h"

TestSuite(auth, .fini = leak_check_fini);

#define SECRET "0123456789abcdef0123456789abcdef-recsd-test"
#define T 1700000000L
#define FOX "The quick brown fox jumps over the lazy dog"
#define FOX_SHA256 "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
#define TRAINER_KEY "trainer-key-0123456789abcdef-0123456789"

static auth_t *s_auth(bool with_jwt, bool with_keys)
{
    char err[256] = "";
    auth_jwt_t *jwt = NULL;
    api_keys_t *keys = NULL;
    if (with_jwt) {
        jwt = auth_jwt_new(
            &(auth_jwt_config_t){.hs256_secret = SECRET, .audience = "recsd", .leeway_s = -1}, err,
            sizeof err);
        cr_assert_not_null(jwt, "%s", err);
    }
    if (with_keys) {
        char trainer_line[API_KEYS_LINE_MAX], spec[512];
        cr_assert_eq(api_keys_hash_line(TRAINER_KEY, "trainer", NULL, trainer_line,
                                        sizeof trainer_line, err, sizeof err),
                     0, "%s", err);
        snprintf(spec, sizeof spec, "sync@sha256:" FOX_SHA256 "=service;%s", trainer_line);
        keys = api_keys_new(spec, err, sizeof err);
        cr_assert_not_null(keys, "%s", err);
    }
    auth_t *auth = auth_new(&jwt, &keys, err, sizeof err);
    cr_assert_null(jwt);
    cr_assert_null(keys);
    cr_assert_not_null(auth, "%s", err);
    return auth;
}

//  "Bearer <HS256 token>" for sub with the roles claim value roles_json
//  (NULL: none); the caller frees it.
static char *s_bearer(const char *sub, const char *roles_json, long exp)
{
    char claims[512];
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"aud\":\"recsd\",\"exp\":%ld%s%s}", sub, exp,
             roles_json ? ",\"roles\":" : "", roles_json ? roles_json : "");
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_grants_json(jwt, claims), 0);
    cr_assert_eq(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET)), 0);
    char *token = jwt_encode_str(jwt);
    cr_assert_not_null(token);
    jwt_free(jwt);
    char *header = NULL;
    cr_assert_gt(asprintf(&header, "Bearer %s", token), 0);
    free(token);
    return header;
}

static auth_result_t s_run(auth_t *auth, const char *authorization, const char *api_key,
                           auth_principal_t *p, char *err, size_t errlen)
{
    return auth_authenticate_at(auth, authorization, api_key, T, p, err, errlen);
}

Test(auth, jwt_principal)
{
    auth_t *auth = s_auth(true, true);
    char *h = s_bearer("alice", "[\"trainer\",\"unknown\"]", T + 600);
    auth_principal_t p;
    char err[128] = "x";
    cr_assert_eq(s_run(auth, h, NULL, &p, err, sizeof err), AUTH_OK, "%s", err);
    cr_assert_str_eq(err, "");
    cr_assert_str_eq(p.subject, "alice");
    cr_assert_eq(p.roles, AUTH_ROLE_USER | AUTH_ROLE_TRAINER);
    cr_assert_eq(p.via, AUTH_VIA_JWT);
    cr_assert_str_eq(auth_via_name(p.via), "jwt");
    cr_assert_eq(p.expires_at, T + 600);

    //  The scheme is case-insensitive; spaces around the token are allowed.
    h[0] = 'b';
    h[1] = 'E';
    char *spaced = NULL;
    cr_assert_gt(asprintf(&spaced, "  bearer    %s", h + 7), 0);
    cr_assert_eq(s_run(auth, h, NULL, &p, err, sizeof err), AUTH_OK, "%s", err);
    cr_assert_eq(s_run(auth, spaced, NULL, &p, err, sizeof err), AUTH_OK, "%s", err);
    free(spaced);
    free(h);

    //  The real clock.
    h = s_bearer("bob", NULL, (long)time(NULL) + 600);
    cr_assert_eq(auth_authenticate(auth, h, NULL, &p, err, sizeof err), AUTH_OK, "%s", err);
    cr_assert_eq(p.roles, AUTH_ROLE_USER);
    free(h);
    h = s_bearer("bob", NULL, (long)time(NULL) - 3600);
    cr_assert_eq(auth_authenticate(auth, h, NULL, &p, err, sizeof err), AUTH_INVALID);
    cr_assert_str_eq(err, "token expired");
    free(h);
    auth_destroy(&auth);
    cr_assert_null(auth);
    auth_destroy(&auth);
}

Test(auth, missing_and_invalid_credentials)
{
    auth_t *auth = s_auth(true, true);
    auth_principal_t p;
    char err[128];
    struct {
        const char *authorization, *api_key;
        auth_result_t want;
        const char *reason;
    } cases[] = {
        {NULL, NULL, AUTH_MISSING, "no credentials"},
        {"", "", AUTH_MISSING, "no credentials"},
        {"Basic YWxhZGRpbjpvcGVuc2VzYW1l", NULL, AUTH_MISSING, "unsupported authorization scheme"},
        {"Bearerabc.def.ghi", NULL, AUTH_MISSING, "unsupported authorization scheme"},
        {"Bearer", NULL, AUTH_INVALID, "empty bearer token"},
        {"Bearer    ", NULL, AUTH_INVALID, "empty bearer token"},
        {"Bearer abc.def.ghi", NULL, AUTH_INVALID, "malformed token"},
        {"Bearer a b", NULL, AUTH_INVALID, "malformed token"},
        {NULL, "not-a-key", AUTH_INVALID, "invalid API key"},
        {NULL, FOX " ", AUTH_INVALID, "invalid API key"},
        {"Bearer abc.def.ghi", FOX, AUTH_INVALID,
         "send either a bearer token or an API key, not both"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&p, 0x5a, sizeof p);
        err[0] = '\0';
        auth_result_t got =
            s_run(auth, cases[i].authorization, cases[i].api_key, &p, err, sizeof err);
        cr_assert_eq(got, cases[i].want, "case %zu: got %d (%s)", i, got, err);
        cr_assert_str_eq(err, cases[i].reason, "case %zu", i);
        cr_assert_eq(p.via, AUTH_VIA_NONE, "case %zu", i);
        cr_assert_eq(p.roles, 0u);
        cr_assert_str_eq(p.subject, "");
        cr_assert(!auth_allows(&p, 0));
    }
    //  A token signed with another secret.
    char *h = s_bearer("alice", NULL, T + 600);
    h[strlen(h) - 3] = h[strlen(h) - 3] == 'A' ? 'B' : 'A';
    cr_assert_eq(s_run(auth, h, NULL, &p, err, sizeof err), AUTH_INVALID);
    cr_assert_str_eq(err, "signature verification failed");
    //  err may be NULL.
    cr_assert_eq(s_run(auth, h, NULL, &p, NULL, 0), AUTH_INVALID);
    free(h);
    auth_destroy(&auth);
}

Test(auth, api_key_principal)
{
    auth_t *auth = s_auth(true, true);
    auth_principal_t p;
    char err[128];
    cr_assert_eq(s_run(auth, NULL, FOX, &p, err, sizeof err), AUTH_OK, "%s", err);
    cr_assert_str_eq(p.subject, "apikey:sync");
    cr_assert_eq(p.roles, AUTH_ROLE_SERVICE);
    cr_assert_eq(p.via, AUTH_VIA_API_KEY);
    cr_assert_str_eq(auth_via_name(p.via), "api_key");
    cr_assert_eq(p.expires_at, 0);
    cr_assert_eq(s_run(auth, "", TRAINER_KEY, &p, err, sizeof err), AUTH_OK, "%s", err);
    cr_assert_eq(p.roles, AUTH_ROLE_TRAINER);
    cr_assert_eq(strncmp(p.subject, "apikey:", 7), 0);
    cr_assert_eq(strlen(p.subject), 7u + 12u);
    auth_destroy(&auth);
}

Test(auth, methods_can_be_off)
{
    char err[128] = "";
    auth_jwt_t *jwt = NULL;
    api_keys_t *keys = NULL;
    cr_assert_null(auth_new(&jwt, &keys, err, sizeof err));
    cr_assert_not_null(strstr(err, "needs JWT verification or API keys"));
    cr_assert_null(auth_new(NULL, NULL, NULL, 0));

    auth_t *auth = s_auth(false, true);
    auth_principal_t p;
    char *h = s_bearer("alice", NULL, T + 600);
    cr_assert_eq(s_run(auth, h, NULL, &p, err, sizeof err), AUTH_INVALID);
    cr_assert_str_eq(err, "bearer tokens are not accepted");
    cr_assert_eq(s_run(auth, NULL, FOX, &p, err, sizeof err), AUTH_OK);
    auth_destroy(&auth);

    auth = s_auth(true, false);
    cr_assert_eq(s_run(auth, h, NULL, &p, err, sizeof err), AUTH_OK);
    cr_assert_eq(s_run(auth, NULL, FOX, &p, err, sizeof err), AUTH_INVALID);
    cr_assert_str_eq(err, "invalid API key");
    auth_destroy(&auth);
    free(h);
}

static auth_principal_t s_principal(const char *subject, unsigned roles, auth_via_t via)
{
    auth_principal_t p = {.roles = roles, .via = via};
    snprintf(p.subject, sizeof p.subject, "%s", subject);
    return p;
}

Test(auth, allows)
{
    auth_principal_t user = s_principal("alice", AUTH_ROLE_USER, AUTH_VIA_JWT);
    auth_principal_t trainer = s_principal("apikey:ci", AUTH_ROLE_TRAINER, AUTH_VIA_API_KEY);
    auth_principal_t admin = s_principal("root", AUTH_ROLE_USER | AUTH_ROLE_ADMIN, AUTH_VIA_JWT);
    unsigned train = AUTH_ROLE_ADMIN | AUTH_ROLE_TRAINER;

    cr_assert(auth_allows(&user, 0));
    cr_assert(auth_allows(&user, AUTH_ROLE_USER));
    cr_assert(!auth_allows(&user, train));
    cr_assert(!auth_allows(&user, AUTH_ROLE_SERVICE));
    cr_assert(auth_allows(&trainer, train));
    cr_assert(!auth_allows(&trainer, AUTH_ROLE_ADMIN));
    cr_assert(!auth_allows(&trainer, AUTH_ROLE_USER));
    cr_assert(auth_allows(&admin, train));
    cr_assert(auth_allows(&admin, AUTH_ROLE_ADMIN));
    cr_assert(!auth_allows(NULL, 0));
    auth_principal_t none = {0};
    cr_assert(!auth_allows(&none, 0));
}

Test(auth, may_read_user)
{
    auth_principal_t alice = s_principal("alice", AUTH_ROLE_USER, AUTH_VIA_JWT);
    cr_assert(auth_may_read_user(&alice, "alice"));
    cr_assert(!auth_may_read_user(&alice, "bob"));
    cr_assert(!auth_may_read_user(&alice, "alic"));
    cr_assert(!auth_may_read_user(&alice, "alice2"));
    cr_assert(!auth_may_read_user(&alice, "Alice"));
    cr_assert(!auth_may_read_user(&alice, ""));
    cr_assert(!auth_may_read_user(&alice, NULL));
    cr_assert(!auth_may_read_user(NULL, "alice"));

    //  A trainer token is still a user token for its own sub.
    auth_principal_t ml = s_principal("ml-eng", AUTH_ROLE_USER | AUTH_ROLE_TRAINER, AUTH_VIA_JWT);
    cr_assert(auth_may_read_user(&ml, "ml-eng"));
    cr_assert(!auth_may_read_user(&ml, "alice"));

    auth_principal_t svc_token =
        s_principal("gw", AUTH_ROLE_USER | AUTH_ROLE_SERVICE, AUTH_VIA_JWT);
    auth_principal_t admin = s_principal("root", AUTH_ROLE_USER | AUTH_ROLE_ADMIN, AUTH_VIA_JWT);
    auth_principal_t svc_key = s_principal("apikey:sync", AUTH_ROLE_SERVICE, AUTH_VIA_API_KEY);
    cr_assert(auth_may_read_user(&svc_token, "alice"));
    cr_assert(auth_may_read_user(&admin, "bob"));
    cr_assert(auth_may_read_user(&svc_key, "alice"));
    cr_assert(!auth_may_read_user(&svc_key, ""));

    //  An API key is never a user, even one whose subject looks like the id.
    auth_principal_t trainer_key =
        s_principal("apikey:ci", AUTH_ROLE_TRAINER | AUTH_ROLE_USER, AUTH_VIA_API_KEY);
    cr_assert(!auth_may_read_user(&trainer_key, "apikey:ci"));
    cr_assert(!auth_may_read_user(&trainer_key, "alice"));

    //  End to end: a token for alice reads alice only.
    auth_t *auth = s_auth(true, true);
    char *h = s_bearer("alice", "\"user\"", T + 600);
    auth_principal_t p;
    char err[128];
    cr_assert_eq(s_run(auth, h, NULL, &p, err, sizeof err), AUTH_OK, "%s", err);
    cr_assert(auth_may_read_user(&p, "alice"));
    cr_assert(!auth_may_read_user(&p, "bob"));
    free(h);
    auth_destroy(&auth);
}

Test(auth, role_names)
{
    cr_assert_eq(auth_role_from_name("admin", 5), AUTH_ROLE_ADMIN);
    cr_assert_eq(auth_role_from_name("admins", 5), AUTH_ROLE_ADMIN); //  length counts
    cr_assert_eq(auth_role_from_name("admin", 4), 0u);
    cr_assert_eq(auth_role_from_name("Admin", 5), 0u);
    cr_assert_eq(auth_role_from_name("", 0), 0u);
    cr_assert_eq(auth_role_from_name("trainer", 7), AUTH_ROLE_TRAINER);
    cr_assert_eq(auth_role_from_name("service", 7), AUTH_ROLE_SERVICE);
    cr_assert_eq(auth_role_from_name("user", 4), AUTH_ROLE_USER);

    char buf[64];
    cr_assert_eq(auth_roles_format(AUTH_ROLE_ALL, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "user+service+admin+trainer");
    cr_assert_eq(auth_roles_format(AUTH_ROLE_TRAINER | AUTH_ROLE_SERVICE, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "service+trainer");
    cr_assert_eq(auth_roles_format(0, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(auth_roles_format(AUTH_ROLE_ALL, buf, 10), -1);
    cr_assert_str_eq(buf, "");
    cr_assert_str_eq(auth_via_name(AUTH_VIA_NONE), "none");
}
