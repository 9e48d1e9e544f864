/*  test_gateway_http.c: the gateway's HTTP surface (gateway_http.c) on a real
    libmicrohttpd daemon on a loopback port, driven with libcurl. The ranker
    endpoint has nobody behind it, so recommendations come from the
    gateway's own popularity copy: the "ranker is down" contract. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/gateway/gateway_http.h"
#include "leak_check.h"

static struct {
    config_t cfg;
    char dir[64];
    gateway_state_t *state;
    gateway_metrics_t *metrics;
    gateway_ranker_t *ranker;
    gateway_http_t *http;
    int port;
} s;

typedef struct {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
} response_t;

static size_t s_body_cb(char *data, size_t size, size_t n, void *arg)
{
    response_t *r = arg;
    r->body = realloc(r->body, r->len + size * n + 1);
    memcpy(r->body + r->len, data, size * n);
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t s_header_cb(char *data, size_t size, size_t n, void *arg)
{
    response_t *r = arg;
    size_t len = size * n;
    if (r->hlen + len < sizeof r->headers) {
        memcpy(r->headers + r->hlen, data, len);
        r->hlen += len;
        r->headers[r->hlen] = '\0';
    }
    return len;
}

//  Performs one request; a NULL method means GET. Returns the curl result.
static CURLcode s_request(const char *method, const char *path, const char *header, response_t *r)
{
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    char url[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s.port, path);
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (method)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *list = header ? curl_slist_append(NULL, header) : NULL;
    if (list)
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return rc;
}

static void s_get(const char *path, const char *header, response_t *r)
{
    CURLcode rc = s_request(NULL, path, header, r);
    cr_assert_eq(rc, CURLE_OK, "GET %s: %s", path, curl_easy_strerror(rc));
}

//  Value of header name (case-insensitive) into out, or "" if absent.
static const char *s_header(const response_t *r, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(out, outlen, "%.*s", (int)len, v);
            return out;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return out;
}

static json_t *s_json(const response_t *r)
{
    json_error_t error;
    json_t *doc = json_loads(r->body, 0, &error);
    cr_assert_not_null(doc, "not JSON: %s", r->body);
    return doc;
}

static void s_free(response_t *r)
{
    free(r->body);
    r->body = NULL;
}

static void s_setup(void)
{
    zsys_handler_set(NULL);
    char err[512];
    cr_assert_eq(config_load(&s.cfg, err, sizeof err), 0, "%s", err);
    snprintf(s.cfg.http_addr, sizeof s.cfg.http_addr, "127.0.0.1");
    s.cfg.http_port = 0;
    s.cfg.http_threads = 2;
    s.cfg.http_max_connections = 64;
    s.cfg.ranker_deadline_ms = 50;
    snprintf(s.dir, sizeof s.dir, "/tmp/gwhttp-XXXXXX");
    cr_assert_not_null(mkdtemp(s.dir));
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/ranker", s.dir); //  nobody binds it
    s.state = gateway_state_new();
    s.metrics = gateway_metrics_new();
    s.ranker = gateway_ranker_new(endpoint, 2, err, sizeof err);
    cr_assert_not_null(s.ranker, "%s", err);
    popular_item_t items[3] = {{"pop-a", 30}, {"pop-b", 20}, {"pop-c", 10}};
    popular_list_t *list = popular_list_new(items, 3);
    gateway_state_set_popular(s.state, &list);
    cr_assert_null(list);
    gateway_http_deps_t deps = {&s.cfg, s.state, s.metrics, s.ranker, NULL, NULL, NULL, NULL, NULL};
    s.http = gateway_http_new(&deps, err, sizeof err);
    cr_assert_not_null(s.http, "%s", err);
    s.port = gateway_http_port(s.http);
    cr_assert_gt(s.port, 0);
    curl_global_init(CURL_GLOBAL_ALL);
}

static void s_teardown(void)
{
    gateway_http_destroy(&s.http);
    gateway_ranker_destroy(&s.ranker);
    gateway_metrics_destroy(&s.metrics);
    gateway_state_destroy(&s.state);
    rmdir(s.dir);
    curl_global_cleanup();
    leak_check_fini();
}

TestSuite(gateway_http, .init = s_setup, .fini = s_teardown, .timeout = 60);

Test(gateway_http, health_and_generated_request_id)
{
    response_t r;
    char value[256];
    s_get("/health", NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    cr_assert_str_eq(s_header(&r, "Content-Type", value, sizeof value), "application/json");
    cr_assert_eq(strlen(s_header(&r, "X-Request-Id", value, sizeof value)), 32, "%s", value);
    s_free(&r);

    s_get("/health", "X-Request-Id: client-id-1", &r);
    cr_assert_str_eq(s_header(&r, "X-Request-Id", value, sizeof value), "client-id-1");
    s_free(&r);
    char header[128];
    snprintf(header, sizeof header, "X-Request-Id: %065d", 1); //  65 bytes: too long
    s_get("/health", header, &r);
    cr_assert_eq(strlen(s_header(&r, "X-Request-Id", value, sizeof value)), 32, "%s", value);
    s_free(&r);

    cr_assert_eq(s_request("HEAD", "/health", NULL, &r), CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    s_free(&r);
}

Test(gateway_http, readiness_serves_what_the_main_loop_rendered)
{
    response_t r;
    s_get("/health/ready", NULL, &r);
    cr_assert_eq(r.status, 503, "before any check: %s", r.body);
    json_t *doc = s_json(&r);
    cr_assert(json_is_false(json_object_get(doc, "ready")));
    json_decref(doc);
    s_free(&r);

    char *body = strdup("{\"ready\":true,\"checks\":{}}");
    gateway_state_set_ready(s.state, 200, &body);
    cr_assert_null(body);
    s_get("/health/ready", NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"ready\":true,\"checks\":{}}");
    s_free(&r);
}

Test(gateway_http, recs_fall_back_to_the_popularity_copy)
{
    response_t r;
    char value[256];
    s_get("/api/v1/recs/user-1?limit=2", "X-Request-Id: rid-fallback", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(s_header(&r, "Content-Type", value, sizeof value), "application/json");
    json_t *doc = s_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "source")), "fallback");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "user_id")), "user-1");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "request_id")), "rid-fallback");
    json_t *items = json_object_get(doc, "items");
    cr_assert_eq(json_array_size(items), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "video_id")),
                     "pop-a");
    json_decref(doc);
    s_free(&r);

    s_get("/api/v1/recs/user-1", NULL, &r); //  default limit 10, only 3 known
    doc = s_json(&r);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 3);
    json_decref(doc);
    s_free(&r);
    cr_assert_eq(gateway_metrics_ranker(s.metrics, GATEWAY_RANKER_UNAVAILABLE), 2);

    //  An empty copy still answers, with no items.
    popular_list_t *empty = popular_list_new(NULL, 0);
    gateway_state_set_popular(s.state, &empty);
    s_get("/api/v1/recs/user-1", NULL, &r);
    cr_assert_eq(r.status, 200);
    doc = s_json(&r);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 0);
    json_decref(doc);
    s_free(&r);
}

//  The fallback honours exclude, says type popularity, and with explain
//  gives every item a null reason (the copy knows nothing of the user).
Test(gateway_http, recs_fallback_honours_the_options)
{
    response_t r;
    s_get("/api/v1/recs/user-1?limit=2&type=content&exclude=pop-a,zzz&explain=true", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *doc = s_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "source")), "fallback");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "type")), "popularity");
    cr_assert(json_is_null(json_object_get(doc, "model_version")));
    json_t *items = json_object_get(doc, "items");
    cr_assert_eq(json_array_size(items), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "video_id")),
                     "pop-b");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "video_id")),
                     "pop-c");
    cr_assert(json_is_null(json_object_get(json_array_get(items, 0), "reason")));
    cr_assert_not_null(json_object_get(json_array_get(items, 0), "reason"), "key present");
    json_decref(doc);
    s_free(&r);
    s_get("/api/v1/recs/user-1?explain=0&type=popularity", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    doc = s_json(&r);
    cr_assert_null(json_object_get(json_array_get(json_object_get(doc, "items"), 0), "reason"),
                   "no reason key without explain");
    json_decref(doc);
    s_free(&r);
}

Test(gateway_http, bad_parameters_are_400_problems)
{
    const struct {
        const char *path;
        const char *param;
    } cases[] = {
        {"/api/v1/recs/1?limit=abc", "limit"},
        {"/api/v1/recs/1?limit=0", "limit"},
        {"/api/v1/recs/1?limit=101", "limit"},
        {"/api/v1/recs/1?limit=", "limit"},
        {"/api/v1/recs/1?limit=-5", "limit"},
        {"/api/v1/recs/%00", "userId"},
        {"/api/v1/recs/a%2Fb", "userId"},
        {"/api/v1/recs/a%20b", "userId"},
        {"/api/v1/recs/%C3%A9", "userId"},
        {"/api/v1/recs/", "userId"},
        {"/api/v1/recs/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
         "userId"},
        {"/api/v1/recs/1?type=fancy", "type"},
        {"/api/v1/recs/1?type=", "type"},
        {"/api/v1/recs/1?type=HYBRID", "type"},
        {"/api/v1/recs/1?exclude=a,,b", "exclude"},
        {"/api/v1/recs/1?exclude=a%20b", "exclude"},
        {"/api/v1/recs/1?exclude=a,", "exclude"},
        {"/api/v1/recs/1?explain=yes", "explain"},
        {"/api/v1/recs/1?explain=", "explain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        response_t r;
        char value[256];
        s_get(cases[i].path, NULL, &r);
        cr_assert_eq(r.status, 400, "%s -> %ld %s", cases[i].path, r.status, r.body);
        cr_assert_str_eq(s_header(&r, "Content-Type", value, sizeof value),
                         "application/problem+json");
        json_t *doc = s_json(&r);
        cr_assert_eq(json_integer_value(json_object_get(doc, "status")), 400);
        cr_assert(strstr(json_string_value(json_object_get(doc, "detail")), cases[i].param),
                  "%s: %s", cases[i].path, r.body);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(doc, "invalid-params"), 0), "name")),
                         cases[i].param);
        json_decref(doc);
        s_free(&r);
    }
    cr_assert_eq(gateway_metrics_requests(s.metrics, GATEWAY_ROUTE_RECS, 400), 19);
    //  101 excluded ids.
    char path[1024] = "/api/v1/recs/1?exclude=";
    for (int i = 0; i <= PROTO_EXCLUDE_MAX; i++)
        snprintf(path + strlen(path), sizeof path - strlen(path), "%s%d", i ? "," : "", i);
    response_t r;
    s_get(path, NULL, &r);
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert(strstr(r.body, "at most 100"), "%s", r.body);
    s_free(&r);
    *strrchr(path, ',') = '\0'; //  100: fine
    s_get(path, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    s_free(&r);
}

Test(gateway_http, unknown_route_404_and_wrong_method_405)
{
    response_t r;
    char value[256];
    s_get("/no/such/route?x=1", NULL, &r);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(s_header(&r, "Content-Type", value, sizeof value), "application/problem+json");
    json_t *doc = s_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "title")), "Not Found");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "instance")), "/no/such/route");
    json_decref(doc);
    s_free(&r);

    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        cr_assert_eq(s_request(methods[i], "/api/v1/recs/1", NULL, &r), CURLE_OK);
        cr_assert_eq(r.status, 405, "%s", methods[i]);
        cr_assert_str_eq(s_header(&r, "Allow", value, sizeof value), "GET, HEAD");
        cr_assert_str_eq(s_header(&r, "Content-Type", value, sizeof value),
                         "application/problem+json");
        s_free(&r);
    }
    cr_assert_eq(s_request("POST", "/nope", NULL, &r), CURLE_OK);
    cr_assert_eq(r.status, 404);
    s_free(&r);
}

Test(gateway_http, metrics_count_what_was_served)
{
    response_t r;
    char value[256];
    s_get("/health", NULL, &r);
    s_free(&r);
    s_get("/api/v1/recs/9", NULL, &r);
    s_free(&r);
    s_get("/metrics", NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(s_header(&r, "Content-Type", value, sizeof value),
                     "text/plain; version=0.0.4; charset=utf-8");
    cr_assert(strstr(r.body, "recsd_http_requests_total{route=\"/health\",status=\"200\"} 1\n"),
              "%s", r.body);
    cr_assert(strstr(r.body, "recsd_http_request_duration_seconds_count{route=\"/api/v1/recs/"
                             "{userId}\",status=\"200\"} 1\n"),
              "%s", r.body);
    cr_assert(strstr(r.body, "recsd_recs_responses_total{source=\"fallback\"} 1\n"), "%s", r.body);
    //  The scrape itself is in flight while rendering; the previous
    //  request may be too (libmicrohttpd reports a completion after the
    //  client already has the response), so at least 1, at most 2.
    const char *gauge = strstr(r.body, "\nrecsd_http_requests_in_flight ");
    cr_assert(gauge, "%s", r.body);
    unsigned long in_flight = strtoul(gauge + strlen("\nrecsd_http_requests_in_flight "), NULL, 10);
    cr_assert(in_flight >= 1 && in_flight <= 2, "in flight %lu", in_flight);
    s_free(&r);
    //  Every request was counted out again once completed.
    for (int i = 0; i < 100 && gateway_state_in_flight(s.state); i++)
        usleep(10000);
    cr_assert_eq(gateway_state_in_flight(s.state), 0);
    cr_assert_eq(gateway_state_handled(s.state), 3);
}

Test(gateway_http, stopping_closes_connections_and_quiesce_refuses_new_ones)
{
    response_t r;
    char value[256];
    gateway_state_set_stopping(s.state);
    s_get("/health", NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(s_header(&r, "Connection", value, sizeof value), "close");
    s_free(&r);
    gateway_http_quiesce(s.http);
    gateway_http_quiesce(s.http); //  idempotent
    cr_assert_eq(s_request(NULL, "/health", NULL, &r), CURLE_COULDNT_CONNECT);
    s_free(&r);
}

Test(gateway_http, busy_port_is_an_error_naming_the_address)
{
    config_t cfg = s.cfg;
    cfg.http_port = s.port;
    gateway_http_deps_t deps = {&cfg, s.state, s.metrics, s.ranker, NULL, NULL, NULL, NULL, NULL};
    char err[512] = "";
    gateway_http_t *second = gateway_http_new(&deps, err, sizeof err);
    cr_assert_null(second);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", s.port);
    cr_assert(strstr(err, where) && strstr(err, "in use"), "%s", err);
}

Test(gateway_http, stop_releases_the_port)
{
    int port = s.port;
    gateway_http_destroy(&s.http);
    config_t cfg = s.cfg;
    cfg.http_port = port;
    gateway_http_deps_t deps = {&cfg, s.state, s.metrics, s.ranker, NULL, NULL, NULL, NULL, NULL};
    char err[512] = "";
    s.http = gateway_http_new(&deps, err, sizeof err);
    cr_assert_not_null(s.http, "port not released: %s", err);
}

Test(gateway_http, keep_alive_connections_are_reused)
{
    //  Regression: answering on the first access-handler call made
    //  libmicrohttpd close every connection after one request.
    CURL *curl = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", s.port);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    response_t r = {.body = calloc(1, 1)};
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
    const char *paths[] = {"/health", "/api/v1/recs/1", "/metrics", "/nope", "/health/ready"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s.port, paths[i]);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        cr_assert_eq(curl_easy_perform(curl), CURLE_OK);
        long connects = -1;
        curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
        cr_assert_eq(connects, i == 0 ? 1 : 0, "%s opened a new connection", paths[i]);
    }
    curl_easy_cleanup(curl);
    free(r.body);
}
