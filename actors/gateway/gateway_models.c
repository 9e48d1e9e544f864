/*  gateway_models.c: the training and model API handlers (see gateway_models.h). */
#include "gateway_models.h"

#include "gateway_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "gateway_problem.h"
#include "log.h"
#include "model_registry.h"
#include "pg_pool.h"

#define MODELS_PATH "/api/v1/recs/models/"

struct gateway_models_t {
    pg_pool_t *pool;
};

gateway_models_t *gateway_models_new(const char *dsn, char *err, size_t errlen)
{
    if (!dsn || !*dsn) {
        snprintf(err, errlen, "model API: no PostgreSQL DSN configured (RECSD_PG_DSN)");
        return NULL;
    }
    gateway_models_t *self = calloc(1, sizeof *self);
    pg_pool_config_t cfg = {.dsn = dsn,
                            .app = "gateway",
                            .max = GATEWAY_MODELS_POOL_MAX,
                            .connect_timeout_s = GATEWAY_MODELS_CONNECT_S,
                            .statement_timeout_ms = GATEWAY_MODELS_STATEMENT_MS};
    if (self)
        self->pool = pg_pool_new(&cfg);
    if (!self || !self->pool) {
        snprintf(err, errlen, "model API: out of memory");
        free(self);
        return NULL;
    }
    return self;
}

void gateway_models_destroy(gateway_models_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_models_t *self = *self_p;
    pg_pool_destroy(&self->pool);
    free(self);
    *self_p = NULL;
}

//  ---- helpers -------------------------------------------------------------

//  Copies the {id} segment into out if it has the length of a uuid.
static bool s_model_id(const gateway_models_request_t *req, model_registry_id_t out)
{
    if (!req->id || req->id_len != MODEL_REGISTRY_UUID_LEN)
        return false;
    memcpy(out, req->id, MODEL_REGISTRY_UUID_LEN);
    out[MODEL_REGISTRY_UUID_LEN] = '\0';
    return model_registry_uuid_valid(out);
}

static PGconn *s_acquire(gateway_models_t *self, gateway_models_reply_t *reply,
                         const gateway_models_request_t *req)
{
    char err[512];
    PGconn *conn = pg_pool_acquire(self->pool, GATEWAY_MODELS_ACQUIRE_MS, err, sizeof err);
    if (!conn)
        gateway_api_unavailable(reply, req, "the model registry", "no database connection", err);
    return conn;
}

//  Reads an optional date member: absent or null leaves *has false.
//  Returns 0, or -1 after answering 400.
static int s_date(json_t *body, const char *name, bool *has, int64_t *us,
                  gateway_models_reply_t *reply, const gateway_models_request_t *req)
{
    *has = false;
    json_t *value = json_object_get(body, name);
    if (!value || json_is_null(value))
        return 0;
    char detail[160];
    if (!json_is_string(value) || event_parse_time(json_string_value(value), us) != 0) {
        snprintf(detail, sizeof detail,
                 "%s must be an RFC 3339 date-time with a time zone, e.g. "
                 "\"2024-05-01T00:00:00Z\"",
                 name);
        gateway_api_problem(reply, req, 400, detail, name);
        return -1;
    }
    *has = true;
    return 0;
}

//  ---- handlers ------------------------------------------------------------

//  Parses and validates the train body into *out (strings borrowed from
//  *doc_p, which the caller frees). Returns 0, or -1 after answering 400.
static int s_train_request(const gateway_models_request_t *req, gateway_models_reply_t *reply,
                           json_t **doc_p, model_registry_request_t *out)
{
    char detail[256];
    if (req->body_too_large) {
        snprintf(detail, sizeof detail, "the request body is larger than %d bytes",
                 GATEWAY_API_BODY_MAX);
        gateway_api_problem(reply, req, 413, detail, "body");
        return -1;
    }
    json_error_t jerr;
    json_t *body =
        json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    *doc_p = body;
    if (!body || !json_is_object(body)) {
        if (body)
            snprintf(detail, sizeof detail, "the request body must be a JSON object");
        else
            snprintf(detail, sizeof detail, "the request body is not valid JSON: %s", jerr.text);
        gateway_api_problem(reply, req, 400, detail, "body");
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        if (strcmp(key, "model_type") != 0 && strcmp(key, "start_date") != 0 &&
            strcmp(key, "end_date") != 0) {
            snprintf(detail, sizeof detail,
                     "unknown member \"%.64s\"; allowed: model_type, start_date, end_date", key);
            gateway_api_problem(reply, req, 400, detail, "body");
            return -1;
        }
    }
    const char *type = json_string_value(json_object_get(body, "model_type"));
    if (!model_registry_type_requestable(type)) {
        gateway_api_problem(
            reply, req, 400,
            "model_type must be one of collaborative, content, hybrid, popularity, all",
            "model_type");
        return -1;
    }
    *out = (model_registry_request_t){.model_type = type, .trigger = "manual"};
    if (s_date(body, "start_date", &out->has_start, &out->start_us, reply, req) != 0 ||
        s_date(body, "end_date", &out->has_end, &out->end_us, reply, req) != 0)
        return -1;
    if (out->has_start && out->has_end && out->end_us < out->start_us) {
        gateway_api_problem(reply, req, 400, "end_date must not be before start_date", "end_date");
        return -1;
    }
    return 0;
}

static json_t *s_enqueued_doc(const model_registry_enqueued_t *q)
{
    json_t *ids = json_array();
    json_t *models = json_array();
    for (int i = 0; ids && models && i < q->count; i++) {
        json_array_append_new(ids, json_string(q->model_ids[i]));
        json_array_append_new(models, json_pack("{s:s, s:s, s:i}", "model_id", q->model_ids[i],
                                                "model_type", q->model_types[i], "version",
                                                q->versions[i]));
    }
    return json_pack("{s:s, s:o, s:s, s:s, s:o}", "training_id", q->training_id, "model_ids", ids,
                     "model_id", q->model_ids[0], "status", "queued", "models", models);
}

static void s_train(gateway_models_t *self, const gateway_models_request_t *req,
                    gateway_models_reply_t *reply)
{
    json_t *body = NULL;
    model_registry_request_t request;
    if (s_train_request(req, reply, &body, &request) != 0) {
        json_decref(body);
        return;
    }
    char who[MODEL_REGISTRY_WHO_MAX];
    gateway_api_who(req, who, sizeof who);
    request.requested_by = who;
    request.traceparent = req->traceparent;
    PGconn *conn = s_acquire(self, reply, req);
    if (!conn) {
        json_decref(body);
        return;
    }
    char err[512];
    model_registry_enqueued_t queued;
    int rc = model_registry_enqueue(conn, &request, &queued, err, sizeof err);
    pg_pool_release(self->pool, &conn, false);
    json_decref(body);
    if (rc == MODEL_REGISTRY_INVALID) //  checked above; kept for safety
        gateway_api_problem(reply, req, 400, err, "body");
    else if (rc != MODEL_REGISTRY_OK)
        gateway_api_unavailable(reply, req, "the model registry", "queue training", err);
    else {
        log_write(LOG_LEVEL_INFO, req->request_id,
                  "training %s queued by %s: %d model(s), first %s", queued.training_id, who,
                  queued.count, queued.model_ids[0]);
        snprintf(reply->location, sizeof reply->location, MODELS_PATH "%s", queued.model_ids[0]);
        gateway_api_json(reply, 202, s_enqueued_doc(&queued), JSON_COMPACT);
    }
}

//  limit: absent, or 1..MODEL_REGISTRY_LIST_MAX in digits. Returns the
//  value (0: absent), or -1.
static int s_limit(const char *text)
{
    if (!text)
        return 0;
    size_t len = strlen(text);
    if (len == 0 || len > 4 || strspn(text, "0123456789") != len)
        return -1;
    char *end;
    long value = strtol(text, &end, 10);
    if (*end != '\0' || value < 1 || value > MODEL_REGISTRY_LIST_MAX)
        return -1;
    return (int)value;
}

static void s_list(gateway_models_t *self, const gateway_models_request_t *req,
                   gateway_models_reply_t *reply)
{
    int limit = s_limit(req->limit);
    if (limit < 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "limit must be an integer between 1 and %d",
                 MODEL_REGISTRY_LIST_MAX);
        gateway_api_problem(reply, req, 400, detail, "limit");
        return;
    }
    if (req->model_type && !model_registry_type_known(req->model_type)) {
        gateway_api_problem(
            reply, req, 400,
            "model_type must be one of collaborative, content, hybrid, popularity, ease, "
            "item_knn",
            "model_type");
        return;
    }
    PGconn *conn = s_acquire(self, reply, req);
    if (!conn)
        return;
    char err[512];
    int rc;
    json_t *doc = model_registry_list(conn, req->model_type, limit, &rc, err, sizeof err);
    pg_pool_release(self->pool, &conn, false);
    if (!doc)
        gateway_api_unavailable(reply, req, "the model registry", "list models", err);
    else
        gateway_api_json(reply, 200, doc, JSON_COMPACT);
}

static void s_get(gateway_models_t *self, const gateway_models_request_t *req,
                  gateway_models_reply_t *reply)
{
    model_registry_id_t id;
    if (!s_model_id(req, id)) {
        gateway_api_problem(reply, req, 400, "the model id must be a uuid", "id");
        return;
    }
    PGconn *conn = s_acquire(self, reply, req);
    if (!conn)
        return;
    char err[512];
    json_t *doc = NULL;
    int rc = model_registry_get(conn, id, &doc, err, sizeof err);
    pg_pool_release(self->pool, &conn, false);
    if (rc == MODEL_REGISTRY_OK)
        gateway_api_json(reply, 200, doc, JSON_COMPACT);
    else if (rc == MODEL_REGISTRY_NOT_FOUND)
        gateway_api_problem(reply, req, 404, "no such model", NULL);
    else
        gateway_api_unavailable(reply, req, "the model registry", "get model", err);
}

static void s_activate(gateway_models_t *self, const gateway_models_request_t *req,
                       gateway_models_reply_t *reply)
{
    model_registry_id_t id;
    if (!s_model_id(req, id)) {
        gateway_api_problem(reply, req, 400, "the model id must be a uuid", "id");
        return;
    }
    char who[MODEL_REGISTRY_WHO_MAX];
    gateway_api_who(req, who, sizeof who);
    PGconn *conn = s_acquire(self, reply, req);
    if (!conn)
        return;
    char err[512];
    model_registry_activation_t act;
    int rc = model_registry_activate(conn, id, who, NULL, &act, err, sizeof err);
    pg_pool_release(self->pool, &conn, false);
    switch (rc) {
    case MODEL_REGISTRY_OK:
        if (act.changed)
            log_write(LOG_LEVEL_INFO, req->request_id,
                      "model %s (%s) activated by %s (%s), previous %s", id, act.model_type, who,
                      act.reason, act.previous_model_id[0] ? act.previous_model_id : "none");
        gateway_api_json(
            reply, 200,
            json_pack("{s:s, s:s, s:s, s:b, s:b, s:o, s:s, s:s}", "model_id", id, "model_type",
                      act.model_type, "status", "active", "active", 1, "changed", act.changed,
                      "previous_model_id",
                      act.previous_model_id[0] ? json_string(act.previous_model_id) : json_null(),
                      "reason", act.reason, "activated_by", who),
            JSON_COMPACT);
        break;
    case MODEL_REGISTRY_NOT_FOUND:
        gateway_api_problem(reply, req, 404, "no such model", NULL);
        break;
    case MODEL_REGISTRY_CONFLICT: //  err is ours: state names, no SQL
        gateway_api_problem(reply, req, 409, err, NULL);
        break;
    default:
        gateway_api_unavailable(reply, req, "the model registry", "activate model", err);
        break;
    }
}

void gateway_models_handle(gateway_models_t *self, const gateway_models_request_t *req,
                           gateway_models_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
    if (!self) {
        gateway_api_problem(reply, req, 503, "the model registry is not configured", NULL);
        return;
    }
    switch (req->route) {
    case GATEWAY_ROUTE_TRAIN:
        s_train(self, req, reply);
        break;
    case GATEWAY_ROUTE_MODELS:
        s_list(self, req, reply);
        break;
    case GATEWAY_ROUTE_MODEL:
        s_get(self, req, reply);
        break;
    case GATEWAY_ROUTE_ACTIVATE:
        s_activate(self, req, reply);
        break;
    default:
        gateway_api_problem(reply, req, 404, "no such resource", NULL);
        break;
    }
}
