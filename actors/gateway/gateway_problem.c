/*  gateway_problem.c: problem+json bodies (see gateway_problem.h). */
#include "gateway_problem.h"

#include <jansson.h>
#include <string.h>

#include "gateway_route.h"

const char *gateway_problem_title(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

//  jansson refuses invalid UTF-8; detail texts are ours, but be safe.
static json_t *s_string(const char *text)
{
    json_t *value = json_string(text);
    return value ? value : json_string("<invalid text>");
}

char *gateway_problem_body(int status, const char *detail, const char *instance, const char *param,
                           size_t *len)
{
    char where[512];
    gateway_route_sanitize(instance, where, sizeof where);
    char *text = NULL;
    json_t *body = json_object();
    if (!body)
        goto done;
    if (json_object_set_new(body, "type", json_string("about:blank")) ||
        json_object_set_new(body, "title", json_string(gateway_problem_title(status))) ||
        json_object_set_new(body, "status", json_integer(status)))
        goto done;
    if (detail && json_object_set_new(body, "detail", s_string(detail)))
        goto done;
    if (json_object_set_new(body, "instance", s_string(where)))
        goto done;
    if (param) {
        json_t *entry = json_pack("[{s:s, s:o}]", "name", param, "reason",
                                  s_string(detail ? detail : "invalid"));
        if (!entry || json_object_set_new(body, "invalid-params", entry))
            goto done;
    }
    text = json_dumps(body, JSON_COMPACT);
done:
    json_decref(body);
    if (text && len)
        *len = strlen(text);
    return text;
}
