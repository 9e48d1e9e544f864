/*  gateway_cors.c: the CORS allow-list (see gateway_cors.h). */
#include "gateway_cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gateway_cors_t {
    char *origins[GATEWAY_CORS_ORIGINS_MAX];
    int count;
};

//  scheme "://" host [":" port], nothing after: what an Origin header holds.
static bool s_origin_ok(const char *o)
{
    const char *rest = NULL;
    if (strncmp(o, "https://", 8) == 0)
        rest = o + 8;
    else if (strncmp(o, "http://", 7) == 0)
        rest = o + 7;
    if (!rest || !*rest || strlen(o) > 200)
        return false;
    for (const char *p = rest; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
        if (!ok)
            return false;
    }
    return true;
}

gateway_cors_t *gateway_cors_new(const char *origins, char *err, size_t errlen)
{
    gateway_cors_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *copy = strdup(origins ? origins : "");
    char *save = NULL;
    for (char *tok = copy ? strtok_r(copy, ", ", &save) : NULL; tok;
         tok = strtok_r(NULL, ", ", &save)) {
        if (!s_origin_ok(tok) || self->count == GATEWAY_CORS_ORIGINS_MAX) {
            snprintf(err, errlen,
                     self->count == GATEWAY_CORS_ORIGINS_MAX
                         ? "RECSD_CORS_ORIGINS: at most 32 origins"
                         : "RECSD_CORS_ORIGINS: \"%.100s\" is not an origin (scheme://host[:port])",
                     tok);
            free(copy);
            gateway_cors_destroy(&self);
            return NULL;
        }
        self->origins[self->count] = strdup(tok);
        if (!self->origins[self->count]) {
            snprintf(err, errlen, "out of memory");
            free(copy);
            gateway_cors_destroy(&self);
            return NULL;
        }
        self->count++;
    }
    free(copy);
    return self;
}

void gateway_cors_destroy(gateway_cors_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (int i = 0; i < (*self_p)->count; i++)
        free((*self_p)->origins[i]);
    free(*self_p);
    *self_p = NULL;
}

bool gateway_cors_allowed(const gateway_cors_t *self, const char *origin)
{
    if (!self || !origin)
        return false;
    for (int i = 0; i < self->count; i++)
        if (strcmp(self->origins[i], origin) == 0) //  origins compare exactly (RFC 6454)
            return true;
    return false;
}
