/*  auth_cmd.c: recsd token and recsd hash-api-key (see auth_cmd.h). */
#include "auth_cmd.h"

#include <jansson.h>
#include <jwt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_keys.h"

static const char *s_arg(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

int auth_cmd_token(const config_t *cfg, int argc, char **argv)
{
    const char *sub = s_arg(argc, argv, "--sub");
    const char *roles = s_arg(argc, argv, "--roles");
    const char *ttl_text = s_arg(argc, argv, "--ttl");
    char *end = NULL;
    long ttl = ttl_text ? strtol(ttl_text, &end, 10) : 3600;
    //  "12abc" or "" is a usage error, not 12 or 0 s.
    bool ttl_ok = !ttl_text || (end != ttl_text && *end == '\0');
    if (!sub || !*sub || !ttl_ok || ttl <= 0 || ttl > 366L * 86400) {
        fprintf(stderr,
                "usage: recsd token --sub ID [--roles r1,r2] [--ttl SECONDS (1..31622400)]\n");
        return 2;
    }
    if (!cfg->jwt_hs256_secret[0]) {
        fprintf(stderr, "recsd token: RECSD_JWT_HS256_SECRET is not set\n");
        return 2;
    }
    //  One clock reading for both claims; the sum is taken in json_int_t.
    json_int_t now = (json_int_t)time(NULL);
    json_t *grants = json_pack("{s:s, s:I, s:I}", "sub", sub, "iat", now, "exp", now + ttl);
    json_t *list = json_array();
    char copy[256];
    snprintf(copy, sizeof copy, "%s", roles ? roles : "");
    char *save = NULL;
    for (char *r = strtok_r(copy, ", +", &save); r; r = strtok_r(NULL, ", +", &save))
        json_array_append_new(list, json_string(r));
    if (!grants || !list || json_object_set_new(grants, cfg->jwt_roles_claim, list) != 0 ||
        (cfg->jwt_issuer[0] &&
         json_object_set_new(grants, "iss", json_string(cfg->jwt_issuer)) != 0) ||
        (cfg->jwt_audience[0] &&
         json_object_set_new(grants, "aud", json_string(cfg->jwt_audience)) != 0)) {
        json_decref(grants);
        fprintf(stderr, "recsd token: out of memory\n");
        return 1;
    }
    char *text = json_dumps(grants, JSON_COMPACT);
    json_decref(grants);
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (text && jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, text) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->jwt_hs256_secret,
                    (int)strlen(cfg->jwt_hs256_secret)) == 0)
        token = jwt_encode_str(jwt);
    free(text);
    jwt_free(jwt);
    if (!token) {
        fprintf(stderr, "recsd token: signing failed\n");
        return 1;
    }
    printf("%s\n", token);
    free(token); //  libjwt 1.10 allocates with the default allocator
    return 0;
}

int auth_cmd_hash_api_key(int argc, char **argv)
{
    const char *roles = s_arg(argc, argv, "--roles");
    const char *name = s_arg(argc, argv, "--name");
    const char *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            i++; //  skip the option's value
            continue;
        }
        key = argv[i];
    }
    char made[API_KEYS_GENERATED_LEN + 1];
    if (!key) {
        if (api_keys_generate(made, sizeof made) != 0) {
            fprintf(stderr, "recsd hash-api-key: no random key\n");
            return 1;
        }
        key = made;
        printf("key: %s\n", key);
    }
    char line[API_KEYS_LINE_MAX], err[256];
    if (api_keys_hash_line(key, roles ? roles : "service", name, line, sizeof line, err,
                           sizeof err) != 0) {
        fprintf(stderr, "recsd hash-api-key: %s\n", err);
        return 2;
    }
    printf("%s%s\n", key == made ? "RECSD_API_KEYS entry: " : "", line);
    return 0;
}
