/*  fuzz_request.c: libFuzzer target for the gateway's request validation:
    everything a client controls before a request reaches a handler's
    logic. The first byte picks what the rest is fed to:

      0  path: route matching, user id, sanitising for logs
      1  query parameters: limit, type, exclude, explain, request id
      2  an experiment definition (POST /api/v1/recs/experiments body)
      3  a serving configuration (PUT /api/v1/recs/config body)
      4  a request body as the API helpers read it, and a CORS origin list

    Every input must be accepted or refused with a reason, never crash,
    overread or leak; an accepted definition must validate again and
    survive a round trip through its JSON rendering.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_api.h"
#include "actors/gateway/gateway_cors.h"
#include "actors/gateway/gateway_recs.h"
#include "actors/gateway/gateway_route.h"
#include "experiment.h"
#include "serving_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_fail(const char *what)
{
    fprintf(stderr, "fuzz_request: %s\n", what);
    abort();
}

static void s_path(const char *text)
{
    const char *tail = NULL, *id = NULL;
    size_t len = 0;
    gateway_route_t route = gateway_route_match(text, &tail);
    gateway_route_t api = gateway_route_match_models(text, &id, &len);
    if (id && (len == 0 || len > strlen(text)))
        s_fail("an id outside the path");
    char why[256], out[512];
    if (route == GATEWAY_ROUTE_RECS && tail)
        gateway_route_user_id_check(tail, why, sizeof why);
    gateway_route_sanitize(text, out, sizeof out);
    if (strlen(out) >= sizeof out)
        s_fail("sanitised path overflows");
    (void)gateway_route_roles(api != GATEWAY_ROUTE_OTHER ? api : route, "GET");
}

static void s_params(const char *text)
{
    char why[256];
    int limit = 0;
    if (gateway_route_limit_parse(text, &limit, why, sizeof why) == 0 &&
        (limit < 1 || limit > GATEWAY_LIMIT_MAX))
        s_fail("limit accepted out of range");
    char type[32];
    gateway_recs_type_parse(text, type, sizeof type, why, sizeof why);
    proto_recs_req_t *req = calloc(1, sizeof *req);
    if (!req)
        return;
    if (gateway_recs_exclude_parse(text, req, why, sizeof why) == 0 &&
        req->exclude_count > PROTO_EXCLUDE_MAX)
        s_fail("too many excluded ids accepted");
    free(req);
    bool explain;
    gateway_recs_explain_parse(text, &explain, why, sizeof why);
    (void)gateway_route_request_id_valid(text);
}

static void s_experiment(const char *text, size_t len)
{
    char err[512] = "";
    experiment_t *exp = experiment_parse_text(text, len, err, sizeof err);
    if (!exp) {
        if (!err[0])
            s_fail("experiment refused without a reason");
        return;
    }
    if (experiment_validate(exp, err, sizeof err) != 0)
        s_fail("a parsed experiment does not validate");
    json_t *doc = experiment_to_json(exp);
    if (doc)
        json_decref(doc);
    (void)experiment_assign(exp, "fuzz-user", 0);
    experiment_destroy(&exp);
}

static void s_serving(const char *text, size_t len)
{
    serving_config_t cfg, back;
    char err[512] = "";
    if (serving_config_parse_text(text, len, &cfg, err, sizeof err) != 0) {
        if (!err[0])
            s_fail("configuration refused without a reason");
        return;
    }
    char *again = serving_config_to_text(&cfg);
    if (!again)
        return;
    if (serving_config_parse_text(again, strlen(again), &back, err, sizeof err) != 0 ||
        !serving_config_equal(&cfg, &back))
        s_fail("a configuration does not survive its own rendering");
    free(again);
}

static void s_body(const char *text, size_t len)
{
    gateway_api_request_t req = {
        .body = text, .body_len = len, .url = "/fuzz", .request_id = "fuzz"};
    gateway_api_reply_t reply;
    memset(&reply, 0, sizeof reply);
    json_t *doc = gateway_api_body(&reply, &req);
    if (!doc && reply.status != 400 && reply.status != 413 && reply.status != 500)
        s_fail("a refused body without a 4xx");
    json_decref(doc);
    free(reply.body);
    char err[256];
    gateway_cors_t *cors = gateway_cors_new(text, err, sizeof err);
    if (cors) {
        (void)gateway_cors_allowed(cors, text);
        gateway_cors_destroy(&cors);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    //  A NUL-terminated copy of exact size: ASan sees any overread.
    size_t len = size - 1;
    char *text = malloc(len + 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, len);
    text[len] = '\0';
    switch (data[0] % 5) {
    case 0:
        s_path(text);
        break;
    case 1:
        s_params(text);
        break;
    case 2:
        s_experiment(text, len);
        break;
    case 3:
        s_serving(text, len);
        break;
    default:
        s_body(text, len);
        break;
    }
    free(text);
    return 0;
}
