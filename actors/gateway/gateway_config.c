/*  gateway_config.c: the serving configuration's watcher and admin API
    in the gateway (see gateway_config.h). */
#include "gateway_config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "serving_config_store.h"

#define S_ACQUIRE_MS 2000

struct gateway_config_t {
    pg_pool_t *pool; //  borrowed
    serving_config_t defaults;
    serving_config_watch_t *watch;
};

gateway_config_t *gateway_config_new(const config_t *cfg, pg_pool_t *pool, char *err, size_t errlen)
{
    gateway_config_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pool = pool;
    serving_config_from_config(cfg, &self->defaults);
    serving_config_watch_options_t opts = {
        .dsn = cfg->pg_dsn, .app = "gateway-config", .defaults = &self->defaults, .poll_ms = 5000};
    self->watch = serving_config_watch_new(&opts, err, errlen);
    if (!self->watch) {
        free(self);
        return NULL;
    }
    return self;
}

void gateway_config_destroy(gateway_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    serving_config_watch_destroy(&(*self_p)->watch);
    free(*self_p);
    *self_p = NULL;
}

int64_t gateway_config_current(gateway_config_t *self, serving_config_t *out)
{
    return serving_config_watch_get(self->watch, out);
}

static PGconn *s_acquire(gateway_config_t *self, const gateway_api_request_t *req,
                         gateway_api_reply_t *reply)
{
    char err[512];
    PGconn *conn = self->pool ? pg_pool_acquire(self->pool, S_ACQUIRE_MS, err, sizeof err) : NULL;
    if (!conn)
        gateway_api_unavailable(reply, req, "the configuration store", "no database connection",
                                self->pool ? err : "no pool");
    return conn;
}

//  Answers a store result: OK with the stored version's document.
static void s_stored(gateway_config_t *self, PGconn *conn, const gateway_api_request_t *req,
                     int64_t version, gateway_api_reply_t *reply)
{
    json_t *doc = NULL;
    char err[512];
    if (serving_config_store_get(conn, version, &doc, err, sizeof err) != SERVING_CONFIG_STORE_OK) {
        gateway_api_unavailable(reply, req, "the configuration store", "read back", err);
        return;
    }
    //  This process applies it now rather than at the next notification.
    serving_config_watch_reload(self->watch);
    gateway_api_json(reply, 200, doc, SERVING_CONFIG_DUMP_FLAGS);
    snprintf(reply->extra_name, sizeof reply->extra_name, "X-Config-Version");
    snprintf(reply->extra_value, sizeof reply->extra_value, "%lld", (long long)version);
}

static void s_put(gateway_config_t *self, const gateway_api_request_t *req, const char *note,
                  gateway_api_reply_t *reply)
{
    json_t *body = gateway_api_body(reply, req);
    if (!body)
        return;
    serving_config_t cfg;
    char err[512];
    int rc = serving_config_parse(body, &cfg, err, sizeof err);
    json_decref(body);
    if (rc != 0) {
        gateway_api_problem(reply, req, 400, err, "body");
        return;
    }
    PGconn *conn = s_acquire(self, req, reply);
    if (!conn)
        return;
    char who[256];
    gateway_api_who(req, who, sizeof who);
    int64_t version = 0;
    rc = serving_config_store_put(conn, &cfg, who, note && *note ? note : NULL, &version, err,
                                  sizeof err);
    if (rc == SERVING_CONFIG_STORE_OK) {
        log_write(LOG_LEVEL_INFO, req->request_id, "serving configuration version %lld by %s",
                  (long long)version, who);
        s_stored(self, conn, req, version, reply);
    } else if (rc == SERVING_CONFIG_STORE_INVALID)
        gateway_api_problem(reply, req, 400, err, "body");
    else
        gateway_api_unavailable(reply, req, "the configuration store", "put", err);
    pg_pool_release(self->pool, &conn, rc == SERVING_CONFIG_STORE_INTERNAL);
}

static void s_rollback(gateway_config_t *self, const gateway_api_request_t *req,
                       gateway_api_reply_t *reply)
{
    json_t *body = gateway_api_body(reply, req);
    if (!body)
        return;
    json_t *v = json_object_get(body, "version");
    bool ok = json_object_size(body) == 1 && json_is_integer(v) && json_integer_value(v) >= 1;
    json_int_t to = ok ? json_integer_value(v) : 0;
    json_decref(body);
    if (!ok) {
        gateway_api_problem(reply, req, 400,
                            "the body must be {\"version\": N}, N a version number (>= 1)",
                            "version");
        return;
    }
    PGconn *conn = s_acquire(self, req, reply);
    if (!conn)
        return;
    char who[256], err[512];
    gateway_api_who(req, who, sizeof who);
    int64_t version = 0;
    int rc = serving_config_store_rollback(conn, (int64_t)to, who, NULL, &version, err, sizeof err);
    if (rc == SERVING_CONFIG_STORE_OK) {
        log_write(LOG_LEVEL_INFO, req->request_id,
                  "serving configuration rolled back to version %lld as %lld by %s", (long long)to,
                  (long long)version, who);
        s_stored(self, conn, req, version, reply);
    } else if (rc == SERVING_CONFIG_STORE_NOT_FOUND)
        gateway_api_problem(reply, req, 404, "no such configuration version", "version");
    else if (rc == SERVING_CONFIG_STORE_INVALID)
        gateway_api_problem(reply, req, 409, err, "version");
    else
        gateway_api_unavailable(reply, req, "the configuration store", "rollback", err);
    pg_pool_release(self->pool, &conn, rc == SERVING_CONFIG_STORE_INTERNAL);
}

//  A decimal integer in [lo, hi] (NULL: dflt). Returns 0, or -1.
static int s_int_param(const char *text, long long lo, long long hi, long long dflt, long long *out)
{
    if (!text) {
        *out = dflt;
        return 0;
    }
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || v < lo || v > hi || (text[0] < '0' || text[0] > '9'))
        return -1;
    *out = v;
    return 0;
}

static void s_versions(gateway_config_t *self, const gateway_api_request_t *req,
                       gateway_api_reply_t *reply)
{
    long long limit, before;
    if (s_int_param(req->limit, 1, SERVING_CONFIG_LIST_MAX, SERVING_CONFIG_LIST_DEFAULT, &limit) !=
        0) {
        gateway_api_problem(reply, req, 400, "limit must be an integer between 1 and 1000",
                            "limit");
        return;
    }
    if (s_int_param(req->before, 1, INT64_MAX, 0, &before) != 0) {
        gateway_api_problem(reply, req, 400, "before must be a version number (>= 1)", "before");
        return;
    }
    PGconn *conn = s_acquire(self, req, reply);
    if (!conn)
        return;
    json_t *list = NULL;
    char err[512];
    int rc = serving_config_store_list(conn, (int)limit, before, &list, err, sizeof err);
    pg_pool_release(self->pool, &conn, rc == SERVING_CONFIG_STORE_INTERNAL);
    if (rc != SERVING_CONFIG_STORE_OK) {
        gateway_api_unavailable(reply, req, "the configuration store", "list", err);
        return;
    }
    gateway_api_json(reply, 200, json_pack("{s:o}", "versions", list), SERVING_CONFIG_DUMP_FLAGS);
}

void gateway_config_handle(gateway_config_t *self, const gateway_api_request_t *req,
                           const char *note, gateway_api_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
    if (!self) {
        gateway_api_problem(reply, req, 503, "the serving configuration is not available", NULL);
        return;
    }
    bool put = strcmp(req->method, "PUT") == 0;
    if (req->route == GATEWAY_ROUTE_CONFIG && put)
        s_put(self, req, note, reply);
    else if (req->route == GATEWAY_ROUTE_CONFIG) {
        serving_config_t cfg;
        int64_t version = serving_config_watch_get(self->watch, &cfg);
        gateway_api_json(reply, 200, serving_config_to_json(&cfg), SERVING_CONFIG_DUMP_FLAGS);
        snprintf(reply->extra_name, sizeof reply->extra_name, "X-Config-Version");
        snprintf(reply->extra_value, sizeof reply->extra_value, "%lld", (long long)version);
    } else if (req->route == GATEWAY_ROUTE_CONFIG_VERSIONS)
        s_versions(self, req, reply);
    else if (req->route == GATEWAY_ROUTE_CONFIG_ROLLBACK)
        s_rollback(self, req, reply);
    else
        gateway_api_problem(reply, req, 404, "no such resource", NULL);
}
