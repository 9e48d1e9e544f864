/*  gateway_api.c: shared answers of the PostgreSQL-backed API handlers
    (see gateway_api.h). */
#include "gateway_api.h"

#include <stdlib.h>
#include <string.h>

#include "gateway_problem.h"
#include "log.h"

#define S_UUID_LEN 36

static const char s_oom_body[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                                 "\"status\":500,\"detail\":\"out of memory\"}";

void gateway_api_json(gateway_api_reply_t *reply, int status, json_t *doc, size_t flags)
{
    char *text = doc ? json_dumps(doc, flags) : NULL;
    json_decref(doc);
    if (!text) {
        reply->status = 500;
        reply->content_type = GATEWAY_PROBLEM_CONTENT_TYPE;
        reply->body = strdup(s_oom_body);
        reply->len = reply->body ? strlen(reply->body) : 0;
        return;
    }
    reply->status = status;
    reply->content_type = status >= 400 ? GATEWAY_PROBLEM_CONTENT_TYPE : "application/json";
    reply->body = text;
    reply->len = strlen(text);
}

void gateway_api_problem(gateway_api_reply_t *reply, const gateway_api_request_t *req, int status,
                         const char *detail, const char *param)
{
    char *text = gateway_problem_body(status, detail, req->url, param, NULL);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (doc && req->request_id)
        json_object_set_new(doc, "request_id", json_string(req->request_id));
    gateway_api_json(reply, status, doc, JSON_COMPACT);
}

void gateway_api_unavailable(gateway_api_reply_t *reply, const gateway_api_request_t *req,
                             const char *what, const char *context, const char *cause)
{
    log_write(LOG_LEVEL_ERROR, req->request_id, "%s: %s: %s", what, context, cause);
    char detail[160];
    snprintf(detail, sizeof detail, "%s is unavailable; try again later", what);
    gateway_api_problem(reply, req, 503, detail, NULL);
}

json_t *gateway_api_body(gateway_api_reply_t *reply, const gateway_api_request_t *req)
{
    if (req->body_too_large) {
        gateway_api_problem(reply, req, 413, "the request body is too large", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = req->body && req->body_len
                      ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr)
                      : NULL;
    if (!json_is_object(doc)) {
        char detail[256];
        if (!req->body || !req->body_len)
            snprintf(detail, sizeof detail, "a JSON object body is required");
        else if (!doc)
            snprintf(detail, sizeof detail, "the body is not valid JSON: %s (line %d)", jerr.text,
                     jerr.line);
        else
            snprintf(detail, sizeof detail, "the body must be a JSON object");
        json_decref(doc);
        gateway_api_problem(reply, req, 400, detail, "body");
        return NULL;
    }
    return doc;
}

void gateway_api_who(const gateway_api_request_t *req, char *who, size_t len)
{
    if (req->principal && *req->principal)
        snprintf(who, len, "%s", req->principal);
    else
        snprintf(who, len, "anonymous@%s", req->client && *req->client ? req->client : "unknown");
}

bool gateway_api_uuid(const gateway_api_request_t *req, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    if (!req->id || req->id_len != S_UUID_LEN || outlen <= S_UUID_LEN)
        return false;
    for (size_t i = 0; i < S_UUID_LEN; i++) {
        char c = req->id[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false;
    }
    memcpy(out, req->id, S_UUID_LEN);
    out[S_UUID_LEN] = '\0';
    return true;
}
