/*  gateway_route.c: route matching and parameter validation (see gateway_route.h). */
#include "gateway_route.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"

#define RECS_PREFIX "/api/v1/recs/"

static const char *s_templates[GATEWAY_ROUTE_COUNT] = {"/health",
                                                       "/health/ready",
                                                       "/metrics",
                                                       "/api/v1/recs/{userId}",
                                                       "/api/v1/recs/train",
                                                       "/api/v1/recs/models",
                                                       "/api/v1/recs/models/{id}",
                                                       "/api/v1/recs/models/{id}/activate",
                                                       "/api/v1/recs/experiments",
                                                       "/api/v1/recs/experiments/{id}",
                                                       "/api/v1/recs/config",
                                                       "/api/v1/recs/config/versions",
                                                       "/api/v1/recs/config/rollback",
                                                       "/openapi.json",
                                                       "/docs",
                                                       "other"};

const char *gateway_route_template(gateway_route_t route)
{
    if ((int)route < 0 || route >= GATEWAY_ROUTE_COUNT)
        return "other";
    return s_templates[route];
}

gateway_route_t gateway_route_match(const char *path, const char **tail_p)
{
    if (tail_p)
        *tail_p = NULL;
    if (!path)
        return GATEWAY_ROUTE_OTHER;
    //  Exact matches only: "/health/" is not "/health", as with most routers
    //  that do not redirect; a probe path is configured once and exactly.
    if (strcmp(path, "/health") == 0)
        return GATEWAY_ROUTE_HEALTH;
    if (strcmp(path, "/health/ready") == 0)
        return GATEWAY_ROUTE_READY;
    if (strcmp(path, "/metrics") == 0)
        return GATEWAY_ROUTE_METRICS;
    if (strcmp(path, "/openapi.json") == 0)
        return GATEWAY_ROUTE_OPENAPI;
    //  The documentation pages and their assets: one label for all.
    if (strcmp(path, "/docs") == 0 || strcmp(path, "/redoc") == 0 ||
        strncmp(path, "/docs/", 6) == 0 || strncmp(path, "/redoc/", 7) == 0)
        return GATEWAY_ROUTE_DOCS;
    if (strncmp(path, RECS_PREFIX, strlen(RECS_PREFIX)) == 0) {
        //  These names are the service's own routes (training, models,
        //  experiments), not user ids: until they are served they are 404,
        //  never a recommendation list for a user called "models".
        static const char *reserved[] = {"train", "models", "experiments", "config"};
        const char *tail = path + strlen(RECS_PREFIX);
        for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
            size_t n = strlen(reserved[i]);
            if (strncmp(tail, reserved[i], n) == 0 && (tail[n] == '\0' || tail[n] == '/'))
                return GATEWAY_ROUTE_OTHER;
        }
        if (tail_p)
            *tail_p = tail;
        return GATEWAY_ROUTE_RECS;
    }
    return GATEWAY_ROUTE_OTHER;
}

gateway_route_t gateway_route_match_models(const char *path, const char **id_p, size_t *id_len_p)
{
    if (id_p)
        *id_p = NULL;
    if (id_len_p)
        *id_len_p = 0;
    if (!path || strncmp(path, RECS_PREFIX, strlen(RECS_PREFIX)) != 0)
        return GATEWAY_ROUTE_OTHER;
    const char *tail = path + strlen(RECS_PREFIX);
    if (strcmp(tail, "train") == 0)
        return GATEWAY_ROUTE_TRAIN;
    if (strcmp(tail, "config") == 0)
        return GATEWAY_ROUTE_CONFIG;
    if (strcmp(tail, "config/versions") == 0)
        return GATEWAY_ROUTE_CONFIG_VERSIONS;
    if (strcmp(tail, "config/rollback") == 0)
        return GATEWAY_ROUTE_CONFIG_ROLLBACK;
    if (strcmp(tail, "experiments") == 0)
        return GATEWAY_ROUTE_EXPERIMENTS;
    if (strncmp(tail, "experiments/", 12) == 0) {
        const char *id = tail + 12;
        size_t len = strlen(id);
        if (len == 0 || strchr(id, '/'))
            return GATEWAY_ROUTE_OTHER;
        if (id_p)
            *id_p = id;
        if (id_len_p)
            *id_len_p = len;
        return GATEWAY_ROUTE_EXPERIMENT;
    }
    if (strcmp(tail, "models") == 0)
        return GATEWAY_ROUTE_MODELS;
    if (strncmp(tail, "models/", 7) != 0)
        return GATEWAY_ROUTE_OTHER;
    const char *id = tail + 7;
    size_t len = strcspn(id, "/");
    gateway_route_t route;
    if (len == 0)
        return GATEWAY_ROUTE_OTHER;
    if (id[len] == '\0')
        route = GATEWAY_ROUTE_MODEL;
    else if (strcmp(id + len, "/activate") == 0)
        route = GATEWAY_ROUTE_ACTIVATE;
    else
        return GATEWAY_ROUTE_OTHER;
    if (id_p)
        *id_p = id;
    if (id_len_p)
        *id_len_p = len;
    return route;
}

static bool s_post_route(gateway_route_t route)
{
    return route == GATEWAY_ROUTE_TRAIN || route == GATEWAY_ROUTE_ACTIVATE ||
           route == GATEWAY_ROUTE_CONFIG_ROLLBACK;
}

//  The write method a read route also takes, or NULL.
static const char *s_write_method(gateway_route_t route)
{
    switch (route) {
    case GATEWAY_ROUTE_EXPERIMENTS:
        return "POST";
    case GATEWAY_ROUTE_EXPERIMENT:
        return "PATCH";
    case GATEWAY_ROUTE_CONFIG:
        return "PUT";
    default:
        return NULL;
    }
}

const char *gateway_route_allow(gateway_route_t route)
{
    if (s_post_route(route))
        return "POST";
    switch (route) {
    case GATEWAY_ROUTE_EXPERIMENTS:
        return "GET, HEAD, POST";
    case GATEWAY_ROUTE_EXPERIMENT:
        return "GET, HEAD, PATCH";
    case GATEWAY_ROUTE_CONFIG:
        return "GET, HEAD, PUT";
    default:
        return GATEWAY_ROUTE_ALLOW;
    }
}

bool gateway_route_method_allowed(gateway_route_t route, const char *method)
{
    if (route == GATEWAY_ROUTE_OTHER || (int)route < 0 || route >= GATEWAY_ROUTE_COUNT || !method)
        return false;
    //  Commands: POST only (not idempotent, never triggered by a prefetch).
    if (s_post_route(route))
        return strcmp(method, "POST") == 0;
    const char *write = s_write_method(route);
    if (write && strcmp(method, write) == 0)
        return true;
    //  HEAD is GET without a body (RFC 9110 9.3.2); libmicrohttpd drops the
    //  body itself, so allowing it costs nothing and keeps probes happy.
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

unsigned gateway_route_roles(gateway_route_t route, const char *method)
{
    const unsigned readers = AUTH_ROLE_SERVICE | AUTH_ROLE_ADMIN | AUTH_ROLE_TRAINER;
    bool read = method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
    switch (route) {
    case GATEWAY_ROUTE_RECS:
        return 0;
    case GATEWAY_ROUTE_MODELS:
    case GATEWAY_ROUTE_MODEL:
    case GATEWAY_ROUTE_CONFIG_VERSIONS:
        return readers;
    case GATEWAY_ROUTE_TRAIN:
    case GATEWAY_ROUTE_ACTIVATE:
        return AUTH_ROLE_ADMIN | AUTH_ROLE_TRAINER;
    case GATEWAY_ROUTE_EXPERIMENTS:
    case GATEWAY_ROUTE_EXPERIMENT:
    case GATEWAY_ROUTE_CONFIG:
        return read ? readers : AUTH_ROLE_ADMIN;
    case GATEWAY_ROUTE_CONFIG_ROLLBACK:
        return AUTH_ROLE_ADMIN;
    default:
        return GATEWAY_ROUTE_PUBLIC;
    }
}

static bool s_graphic(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

int gateway_route_user_id_check(const char *text, char *why, size_t whylen)
{
    if (!text || !*text) {
        snprintf(why, whylen, "userId must not be empty");
        return -1;
    }
    size_t len = strnlen(text, GATEWAY_USER_ID_MAX + 1);
    if (len > GATEWAY_USER_ID_MAX) {
        snprintf(why, whylen, "userId must be at most %d bytes", GATEWAY_USER_ID_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!s_graphic(c) || c == '/') {
            snprintf(why, whylen,
                     "userId must be printable ASCII without spaces or '/' "
                     "(bad byte 0x%02x at offset %zu)",
                     c, i);
            return -1;
        }
    }
    return 0;
}

int gateway_route_limit_parse(const char *text, int *limit, char *why, size_t whylen)
{
    if (!text) {
        *limit = GATEWAY_LIMIT_DEFAULT;
        return 0;
    }
    //  Digits only: no sign, no blanks, no hex; at most 3 of them after any
    //  leading zeros, so the value cannot overflow.
    const char *p = text;
    while (*p == '0' && p[1] >= '0' && p[1] <= '9')
        p++;
    int value = 0;
    size_t digits = 0;
    for (; *p; p++, digits++) {
        if (*p < '0' || *p > '9' || digits >= 3) {
            digits = 0;
            break;
        }
        value = value * 10 + (*p - '0');
    }
    if (digits == 0 || value < 1 || value > GATEWAY_LIMIT_MAX) {
        snprintf(why, whylen, "limit must be an integer between 1 and %d", GATEWAY_LIMIT_MAX);
        return -1;
    }
    *limit = value;
    return 0;
}

bool gateway_route_request_id_valid(const char *text)
{
    if (!text || !*text)
        return false;
    size_t len = strnlen(text, GATEWAY_REQUEST_ID_MAX + 1);
    if (len > GATEWAY_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_graphic((unsigned char)text[i]))
            return false;
    return true;
}

char *gateway_route_sanitize(const char *path, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    if (!path)
        path = "";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        size_t need = (s_graphic(*p) && *p != '%') ? 1 : 3;
        if (n + need + 4 > outlen) { //  room for "..." and the NUL
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (need == 1)
            out[n++] = (char)*p;
        else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return out;
}
