/*  test_gateway_models.c: the training and model API handlers
    (gateway_models.c) on a real PostgreSQL, and their routes
    (gateway_route_match_models). The HTTP layer is covered end to end by
    tests/integration/test_models_api.py.
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_models.h"
#include "actors/gateway/gateway_route.h"
#include "leak_check.h"
#include "model_registry.h"
#include "pg_test_db.h"

static pg_test_db_t *s_db;
static gateway_models_t *s_models;

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_models = gateway_models_new(pg_test_db_config(s_db)->pg_dsn, err, sizeof err);
    cr_assert(s_models, "%s", err);
}

static void s_teardown(void)
{
    gateway_models_destroy(&s_models);
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(gateway_models, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  A handled request: status, parsed body, Location.
typedef struct {
    int status;
    json_t *doc;
    char location[96];
    char text[2048];
} answer_t;

static answer_t s_call_on(gateway_models_t *models, gateway_route_t route, const char *id,
                          const char *body, const char *limit, const char *type)
{
    gateway_models_request_t req = {.route = route,
                                    .id = id,
                                    .id_len = id ? strlen(id) : 0,
                                    .body = body,
                                    .body_len = body ? strlen(body) : 0,
                                    .client = "192.0.2.7",
                                    .limit = limit,
                                    .model_type = type,
                                    .url = "/api/v1/recs/test",
                                    .request_id = "req-test-1"};
    gateway_models_reply_t reply;
    gateway_models_handle(models, &req, &reply);
    answer_t a = {.status = reply.status};
    cr_assert(reply.body);
    snprintf(a.text, sizeof a.text, "%.*s", (int)reply.len, reply.body);
    a.doc = json_loadb(reply.body, reply.len, 0, NULL);
    cr_assert(a.doc, "not JSON: %s", a.text);
    memcpy(a.location, reply.location, sizeof a.location);
    bool problem = strcmp(reply.content_type, "application/problem+json") == 0;
    cr_assert_eq(problem, reply.status >= 400, "%d with %s", reply.status, reply.content_type);
    if (problem) {
        cr_assert_eq(json_integer_value(json_object_get(a.doc, "status")), reply.status);
        cr_assert_str_eq(json_string_value(json_object_get(a.doc, "request_id")), "req-test-1");
    }
    free(reply.body);
    return a;
}

static answer_t s_call(gateway_route_t route, const char *id, const char *body)
{
    return s_call_on(s_models, route, id, body, NULL, NULL);
}

//  The "name" of the first invalid-params entry, or "".
static const char *s_param(const answer_t *a)
{
    json_t *params = json_object_get(a->doc, "invalid-params");
    const char *name = json_string_value(json_object_get(json_array_get(params, 0), "name"));
    return name ? name : "";
}

Test(gateway_models, routes)
{
    const char *id = NULL;
    size_t len = 9;
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/train", &id, &len), GATEWAY_ROUTE_TRAIN);
    cr_assert_null(id);
    cr_assert_eq(len, 0);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/models", &id, &len),
                 GATEWAY_ROUTE_MODELS);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/models/abc", &id, &len),
                 GATEWAY_ROUTE_MODEL);
    cr_assert_eq(len, 3);
    cr_assert_eq(strncmp(id, "abc", 3), 0);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/models/abc/activate", &id, &len),
                 GATEWAY_ROUTE_ACTIVATE);
    cr_assert_eq(len, 3);
    const char *other[] = {"/api/v1/recs/models/",
                           "/api/v1/recs/models//activate",
                           "/api/v1/recs/models/a/b",
                           "/api/v1/recs/models/a/activate/",
                           "/api/v1/recs/train/",
                           "/api/v1/recs/trainx",
                           "/api/v1/recs/experiments/",
                           "/api/v1/recs/42",
                           "/api/v1/recs/modelsx",
                           "/health",
                           ""};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        cr_assert_eq(gateway_route_match_models(other[i], &id, &len), GATEWAY_ROUTE_OTHER, "%s",
                     other[i]);
    cr_assert_eq(gateway_route_match_models(NULL, NULL, NULL), GATEWAY_ROUTE_OTHER);
    //  Methods: commands are POST only, reads GET/HEAD only.
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_TRAIN, "POST"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_TRAIN, "GET"));
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_ACTIVATE, "POST"));
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_MODELS, "HEAD"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_MODEL, "POST"));
    cr_assert_str_eq(gateway_route_allow(GATEWAY_ROUTE_TRAIN), "POST");
    cr_assert_str_eq(gateway_route_allow(GATEWAY_ROUTE_MODEL), "GET, HEAD");
    cr_assert_str_eq(gateway_route_template(GATEWAY_ROUTE_ACTIVATE),
                     "/api/v1/recs/models/{id}/activate");
}

Test(gateway_models, train_queues_and_answers_202)
{
    answer_t a = s_call(GATEWAY_ROUTE_TRAIN, NULL,
                        "{\"model_type\":\"all\",\"start_date\":\"2024-01-01T00:00:00Z\","
                        "\"end_date\":\"2024-06-01T12:00:00.5+02:00\"}");
    cr_assert_eq(a.status, 202, "%s", a.text);
    json_t *ids = json_object_get(a.doc, "model_ids");
    cr_assert_eq(json_array_size(ids), 4);
    const char *first = json_string_value(json_array_get(ids, 0));
    cr_assert_str_eq(json_string_value(json_object_get(a.doc, "model_id")), first);
    cr_assert_str_eq(json_string_value(json_object_get(a.doc, "status")), "queued");
    cr_assert(model_registry_uuid_valid(json_string_value(json_object_get(a.doc, "training_id"))));
    char location[96];
    snprintf(location, sizeof location, "/api/v1/recs/models/%s", first);
    cr_assert_str_eq(a.location, location);
    json_t *models = json_object_get(a.doc, "models");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(models, 3), "model_type")),
                     "popularity");

    PGconn *conn = pg_test_db_connect(s_db);
    char buf[256];
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT requested_by || '|' || trigger || '|' ||"
                                  " to_char(start_date AT TIME ZONE 'UTC',"
                                  " 'YYYY-MM-DD HH24:MI:SS.MS') || '|' ||"
                                  " to_char(end_date AT TIME ZONE 'UTC',"
                                  " 'YYYY-MM-DD HH24:MI:SS.MS') FROM training.runs",
                                  buf, sizeof buf),
                     "anonymous@192.0.2.7|manual|2024-01-01 00:00:00.000|"
                     "2024-06-01 10:00:00.500");
    json_decref(a.doc);

    //  One type, no dates (null is absent).
    a = s_call(GATEWAY_ROUTE_TRAIN, NULL, "{\"model_type\":\"content\",\"end_date\":null}");
    cr_assert_eq(a.status, 202, "%s", a.text);
    cr_assert_eq(json_array_size(json_object_get(a.doc, "model_ids")), 1);
    json_decref(a.doc);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM training.models"), 5);
    PQfinish(conn);
}

Test(gateway_models, train_validation_is_400_and_writes_nothing)
{
    char big[GATEWAY_API_BODY_MAX + 64];
    snprintf(big, sizeof big, "{\"model_type\":\"all\",\"pad\":\"%0*d\"}", GATEWAY_API_BODY_MAX, 0);
    struct {
        const char *body;
        const char *param;
    } cases[] = {
        {"{\"model_type\":\"deep\"}", "model_type"},
        {"{\"model_type\":\"ease\"}", "model_type"}, //  a baseline the API does not offer
        {"{\"model_type\":5}", "model_type"},
        {"{}", "model_type"},
        {"{\"model_type\":\"all\",\"start_date\":\"2024-05-01\"}", "start_date"},
        {"{\"model_type\":\"all\",\"start_date\":\"2024-05-01T00:00:00\"}", "start_date"},
        {"{\"model_type\":\"all\",\"end_date\":\"2024-13-01T00:00:00Z\"}", "end_date"},
        {"{\"model_type\":\"all\",\"end_date\":1714521600}", "end_date"},
        {"{\"model_type\":\"all\",\"start_date\":\"2024-05-02T00:00:00Z\","
         "\"end_date\":\"2024-05-01T00:00:00Z\"}",
         "end_date"},
        {"{\"model_type\":\"all\"", "body"},
        {"", "body"},
        {"[\"all\"]", "body"},
        {"{\"model_type\":\"all\",\"model_type\":\"content\"}", "body"},
        {"{\"model_type\":\"all\",\"modeltype\":\"content\"}", "body"},
        {"{\"model_type\":\"all\"} trailing", "body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        answer_t a = s_call(GATEWAY_ROUTE_TRAIN, NULL, cases[i].body);
        cr_assert_eq(a.status, 400, "%s -> %d %s", cases[i].body, a.status, a.text);
        cr_assert_str_eq(s_param(&a), cases[i].param, "%s -> %s", cases[i].body, a.text);
        json_decref(a.doc);
    }
    //  Too large: refused whatever it holds.
    gateway_models_request_t req = {.route = GATEWAY_ROUTE_TRAIN,
                                    .body = big,
                                    .body_len = GATEWAY_API_BODY_MAX,
                                    .body_too_large = true,
                                    .url = "/api/v1/recs/train",
                                    .request_id = "r"};
    gateway_models_reply_t reply;
    gateway_models_handle(s_models, &req, &reply);
    cr_assert_eq(reply.status, 413);
    cr_assert(strstr(reply.body, "larger than 16384 bytes"), "%s", reply.body);
    free(reply.body);

    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM training.runs"), 0);
    PQfinish(conn);
}

Test(gateway_models, list_get_activate)
{
    PGconn *conn = pg_test_db_connect(s_db);
    answer_t a = s_call(GATEWAY_ROUTE_TRAIN, NULL, "{\"model_type\":\"collaborative\"}");
    char id[MODEL_REGISTRY_UUID_LEN + 1];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(a.doc, "model_id")));
    json_decref(a.doc);

    //  Queued: listed, readable, not activatable.
    a = s_call_on(s_models, GATEWAY_ROUTE_MODELS, NULL, NULL, NULL, NULL);
    cr_assert_eq(a.status, 200, "%s", a.text);
    json_t *first = json_array_get(json_object_get(a.doc, "models"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "model_id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(first, "status")), "queued");
    json_decref(a.doc);
    a = s_call(GATEWAY_ROUTE_MODEL, id, NULL);
    cr_assert_eq(a.status, 200, "%s", a.text);
    cr_assert_str_eq(json_string_value(json_object_get(a.doc, "model_type")), "collaborative");
    json_decref(a.doc);
    a = s_call(GATEWAY_ROUTE_ACTIVATE, id, NULL);
    cr_assert_eq(a.status, 409, "%s", a.text);
    cr_assert_str_eq(json_string_value(json_object_get(a.doc, "title")), "Conflict");
    cr_assert(strstr(a.text, "queued"), "%s", a.text);
    json_decref(a.doc);

    //  Trained (as the trainer would), then activated by hand.
    char err[512];
    model_registry_claim_t claim;
    cr_assert_eq(model_registry_claim(conn, "t", NULL, &claim, err, sizeof err), 1, "%s", err);
    model_registry_result_t result = {.artifact_path = "file:///tmp/m.bin"};
    cr_assert_eq(model_registry_succeed(conn, id, &result, err, sizeof err), MODEL_REGISTRY_OK);
    model_registry_claim_clear(&claim);
    a = s_call(GATEWAY_ROUTE_ACTIVATE, id, NULL);
    cr_assert_eq(a.status, 200, "%s", a.text);
    cr_assert(json_is_true(json_object_get(a.doc, "changed")));
    cr_assert(json_is_null(json_object_get(a.doc, "previous_model_id")));
    cr_assert_str_eq(json_string_value(json_object_get(a.doc, "activated_by")),
                     "anonymous@192.0.2.7");
    cr_assert_str_eq(json_string_value(json_object_get(a.doc, "reason")), "manual");
    json_decref(a.doc);
    a = s_call(GATEWAY_ROUTE_ACTIVATE, id, NULL);
    cr_assert_eq(a.status, 200);
    cr_assert(json_is_false(json_object_get(a.doc, "changed")));
    json_decref(a.doc);

    //  Filters and bad parameters of the list.
    a = s_call_on(s_models, GATEWAY_ROUTE_MODELS, NULL, NULL, "1", "content");
    cr_assert_eq(a.status, 200);
    cr_assert_eq(json_array_size(json_object_get(a.doc, "models")), 0);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a.doc, "active"), "collaborative")), id);
    json_decref(a.doc);
    const char *limits[] = {"0", "1001", "ten", "-1", "", "1e3"};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        a = s_call_on(s_models, GATEWAY_ROUTE_MODELS, NULL, NULL, limits[i], NULL);
        cr_assert_eq(a.status, 400, "limit=%s", limits[i]);
        cr_assert_str_eq(s_param(&a), "limit");
        json_decref(a.doc);
    }
    a = s_call_on(s_models, GATEWAY_ROUTE_MODELS, NULL, NULL, NULL, "all");
    cr_assert_eq(a.status, 400);
    cr_assert_str_eq(s_param(&a), "model_type");
    json_decref(a.doc);

    //  Unknown and malformed ids.
    const char *unknown = "00000000-0000-4000-8000-000000000000";
    a = s_call(GATEWAY_ROUTE_MODEL, unknown, NULL);
    cr_assert_eq(a.status, 404);
    json_decref(a.doc);
    a = s_call(GATEWAY_ROUTE_ACTIVATE, unknown, NULL);
    cr_assert_eq(a.status, 404);
    json_decref(a.doc);
    const char *bad[] = {"42", "00000000-0000-4000-8000-00000000000Z",
                         "00000000-0000-4000-8000-0000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        a = s_call(GATEWAY_ROUTE_MODEL, bad[i], NULL);
        cr_assert_eq(a.status, 400, "%s", bad[i]);
        cr_assert_str_eq(s_param(&a), "id");
        json_decref(a.doc);
        a = s_call(GATEWAY_ROUTE_ACTIVATE, bad[i], NULL);
        cr_assert_eq(a.status, 400, "%s", bad[i]);
        json_decref(a.doc);
    }
    PQfinish(conn);
}

//  PostgreSQL unreachable: 503, the request id, and nothing of the cause.
Test(gateway_models, database_down_is_503_without_details)
{
    char err[512];
    gateway_models_t *down = gateway_models_new(
        "postgresql://recsd@127.0.0.1:1/recsd?connect_timeout=1", err, sizeof err);
    cr_assert(down, "%s", err);
    const char *body = "{\"model_type\":\"all\"}";
    gateway_route_t routes[] = {GATEWAY_ROUTE_TRAIN, GATEWAY_ROUTE_MODELS, GATEWAY_ROUTE_MODEL,
                                GATEWAY_ROUTE_ACTIVATE};
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        answer_t a =
            s_call_on(down, routes[i], "00000000-0000-4000-8000-000000000000", body, NULL, NULL);
        cr_assert_eq(a.status, 503, "%s", a.text);
        cr_assert_null(strstr(a.text, "127.0.0.1"), "%s", a.text);
        cr_assert_null(strstr(a.text, "connect"), "%s", a.text);
        cr_assert_null(strstr(a.text, "SELECT"), "%s", a.text);
        json_decref(a.doc);
    }
    gateway_models_destroy(&down);
    //  Not configured at all: also 503.
    answer_t a = s_call_on(NULL, GATEWAY_ROUTE_MODELS, NULL, NULL, NULL, NULL);
    cr_assert_eq(a.status, 503);
    json_decref(a.doc);
    cr_assert_null(gateway_models_new("", err, sizeof err));
}

//  A failing statement (here: the schema is missing) is 503 too, and the
//  SQL error stays in the log.
Test(gateway_models, database_error_is_503_without_sql)
{
    PGconn *conn = pg_test_db_connect(s_db);
    pg_test_exec(conn, "DROP TABLE training.activations, training.models, training.runs CASCADE");
    PQfinish(conn);
    answer_t a = s_call(GATEWAY_ROUTE_TRAIN, NULL, "{\"model_type\":\"all\"}");
    cr_assert_eq(a.status, 503, "%s", a.text);
    cr_assert_null(strstr(a.text, "relation"), "%s", a.text);
    cr_assert_null(strstr(a.text, "training."), "%s", a.text);
    json_decref(a.doc);
    a = s_call(GATEWAY_ROUTE_MODELS, NULL, NULL);
    cr_assert_eq(a.status, 503, "%s", a.text);
    json_decref(a.doc);
}
