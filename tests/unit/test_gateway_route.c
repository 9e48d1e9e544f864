/*  test_gateway_route.c: gateway routes and parameter rules (gateway_route.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/gateway/gateway_route.h"
#include "leak_check.h"

TestSuite(gateway_route, .fini = leak_check_fini);

Test(gateway_route, matches_exact_templates)
{
    const char *tail = "x";
    cr_assert_eq(gateway_route_match("/health", &tail), GATEWAY_ROUTE_HEALTH);
    cr_assert_null(tail);
    cr_assert_eq(gateway_route_match("/health/ready", NULL), GATEWAY_ROUTE_READY);
    cr_assert_eq(gateway_route_match("/metrics", NULL), GATEWAY_ROUTE_METRICS);
    cr_assert_eq(gateway_route_match("/api/v1/recs/42", &tail), GATEWAY_ROUTE_RECS);
    cr_assert_str_eq(tail, "42");
    cr_assert_eq(gateway_route_match("/api/v1/recs/", &tail), GATEWAY_ROUTE_RECS);
    cr_assert_str_eq(tail, "");
    cr_assert_eq(gateway_route_match("/api/v1/recs/a/b", &tail), GATEWAY_ROUTE_RECS);
    cr_assert_str_eq(tail, "a/b");
}

Test(gateway_route, everything_else_is_other)
{
    const char *paths[] = {"",
                           "/",
                           "/health/",
                           "/healthz",
                           "/HEALTH",
                           "/metrics/x",
                           "/api/v1/recs",
                           "/api/v1/rec/1",
                           "health",
                           "/health/ready/",
                           "/api/v1/recs/models",
                           "/api/v1/recs/models/12",
                           "/api/v1/recs/train",
                           "/api/v1/recs/experiments",
                           "/api/v1/recs/config",
                           "/api/v1/recs/config/versions"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *tail = "x";
        cr_assert_eq(gateway_route_match(paths[i], &tail), GATEWAY_ROUTE_OTHER, "%s", paths[i]);
        cr_assert_null(tail);
    }
    cr_assert_eq(gateway_route_match(NULL, NULL), GATEWAY_ROUTE_OTHER);
    //  Only the exact reserved names: "modelsX" is an ordinary user id.
    const char *tail = NULL;
    cr_assert_eq(gateway_route_match("/api/v1/recs/modelsX", &tail), GATEWAY_ROUTE_RECS);
    cr_assert_str_eq(tail, "modelsX");
}

Test(gateway_route, templates_name_the_metric_labels)
{
    cr_assert_str_eq(gateway_route_template(GATEWAY_ROUTE_RECS), "/api/v1/recs/{userId}");
    cr_assert_str_eq(gateway_route_template(GATEWAY_ROUTE_OTHER), "other");
    cr_assert_str_eq(gateway_route_template((gateway_route_t)99), "other");
}

Test(gateway_route, only_get_and_head_on_known_routes)
{
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_HEALTH, "GET"));
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_RECS, "HEAD"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_RECS, "POST"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_METRICS, "get"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_OTHER, "GET"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_HEALTH, NULL));
}

Test(gateway_route, user_id_rules)
{
    char why[160];
    cr_assert_eq(gateway_route_user_id_check("42", why, sizeof why), 0);
    cr_assert_eq(gateway_route_user_id_check("user-!~@:.", why, sizeof why), 0);
    char max[65];
    memset(max, 'x', 64);
    max[64] = '\0';
    cr_assert_eq(gateway_route_user_id_check(max, why, sizeof why), 0);

    char longer[66];
    memset(longer, 'x', 65);
    longer[65] = '\0';
    cr_assert_eq(gateway_route_user_id_check(longer, why, sizeof why), -1);
    cr_assert(strstr(why, "userId"), "%s", why);
    const char *bad[] = {"", "a b", "a/b", "caf\xc3\xa9", "tab\there", "\x7f", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        cr_assert_eq(gateway_route_user_id_check(bad[i], why, sizeof why), -1, "%zu", i);
        cr_assert(strstr(why, "userId"), "%s", why);
    }
}

Test(gateway_route, limit_rules)
{
    char why[160];
    int limit = 0;
    cr_assert_eq(gateway_route_limit_parse(NULL, &limit, why, sizeof why), 0);
    cr_assert_eq(limit, 10);
    cr_assert_eq(gateway_route_limit_parse("1", &limit, why, sizeof why), 0);
    cr_assert_eq(limit, 1);
    cr_assert_eq(gateway_route_limit_parse("100", &limit, why, sizeof why), 0);
    cr_assert_eq(limit, 100);
    cr_assert_eq(gateway_route_limit_parse("007", &limit, why, sizeof why), 0);
    cr_assert_eq(limit, 7);
    const char *bad[] = {
        "",     "0",   "101", "-1", "+5", " 5", "5 ", "abc", "1e2", "0x10", "99999999999999999999",
        "1000", "000", "5.0", "１"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        limit = -7;
        why[0] = '\0';
        cr_assert_eq(gateway_route_limit_parse(bad[i], &limit, why, sizeof why), -1, "%s", bad[i]);
        cr_assert_eq(limit, -7, "limit changed on error for %s", bad[i]);
        cr_assert(strstr(why, "limit"), "%s", why);
    }
}

Test(gateway_route, request_id_rules)
{
    cr_assert(gateway_route_request_id_valid("it-req-0001"));
    cr_assert(gateway_route_request_id_valid("x"));
    char max[65];
    memset(max, 'a', 64);
    max[64] = '\0';
    cr_assert(gateway_route_request_id_valid(max));
    char longer[66];
    memset(longer, 'a', 65);
    longer[65] = '\0';
    cr_assert_not(gateway_route_request_id_valid(longer));
    cr_assert_not(gateway_route_request_id_valid(NULL));
    cr_assert_not(gateway_route_request_id_valid(""));
    cr_assert_not(gateway_route_request_id_valid("with space"));
    cr_assert_not(gateway_route_request_id_valid("caf\xc3\xa9"));
    cr_assert_not(gateway_route_request_id_valid("line\nbreak"));
}

Test(gateway_route, sanitize_percent_encodes_and_truncates)
{
    char out[64];
    cr_assert_str_eq(gateway_route_sanitize("/api/v1/recs/42", out, sizeof out), "/api/v1/recs/42");
    cr_assert_str_eq(gateway_route_sanitize("/a b%\xff\n", out, sizeof out), "/a%20b%25%FF%0A");
    cr_assert_str_eq(gateway_route_sanitize(NULL, out, sizeof out), "");
    char big[300];
    memset(big, '\x01', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gateway_route_sanitize(big, out, sizeof out);
    cr_assert_lt(strlen(out), sizeof out);
    cr_assert(strstr(out, "..."), "%s", out);
    char tiny[8];
    gateway_route_sanitize("/abcdefghijk", tiny, sizeof tiny);
    cr_assert_str_eq(tiny, "/abc..."); //  7 bytes and the NUL
}

Test(gateway_route, experiment_config_and_docs_routes)
{
    const char *id = NULL;
    size_t len = 0;
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/experiments", &id, &len),
                 GATEWAY_ROUTE_EXPERIMENTS);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/experiments/abc", &id, &len),
                 GATEWAY_ROUTE_EXPERIMENT);
    cr_assert_eq(len, 3);
    cr_assert_eq(strncmp(id, "abc", len), 0);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/experiments/", &id, &len),
                 GATEWAY_ROUTE_OTHER);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/experiments/a/b", &id, &len),
                 GATEWAY_ROUTE_OTHER);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/config", NULL, NULL),
                 GATEWAY_ROUTE_CONFIG);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/config/versions", NULL, NULL),
                 GATEWAY_ROUTE_CONFIG_VERSIONS);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/config/rollback", NULL, NULL),
                 GATEWAY_ROUTE_CONFIG_ROLLBACK);
    cr_assert_eq(gateway_route_match_models("/api/v1/recs/config/x", NULL, NULL),
                 GATEWAY_ROUTE_OTHER);
    cr_assert_eq(gateway_route_match("/openapi.json", NULL), GATEWAY_ROUTE_OPENAPI);
    cr_assert_eq(gateway_route_match("/docs", NULL), GATEWAY_ROUTE_DOCS);
    cr_assert_eq(gateway_route_match("/redoc/redoc.standalone.js", NULL), GATEWAY_ROUTE_DOCS);
    cr_assert_eq(gateway_route_match("/docsx", NULL), GATEWAY_ROUTE_OTHER);
    //  Methods: reads everywhere, one write each.
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_EXPERIMENTS, "POST"));
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_EXPERIMENTS, "GET"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_EXPERIMENTS, "PATCH"));
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_EXPERIMENT, "PATCH"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_EXPERIMENT, "DELETE"));
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_CONFIG, "PUT"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_CONFIG, "POST"));
    cr_assert(gateway_route_method_allowed(GATEWAY_ROUTE_CONFIG_ROLLBACK, "POST"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_CONFIG_ROLLBACK, "GET"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_CONFIG_VERSIONS, "PUT"));
    cr_assert_not(gateway_route_method_allowed(GATEWAY_ROUTE_DOCS, "POST"));
    cr_assert_str_eq(gateway_route_allow(GATEWAY_ROUTE_CONFIG), "GET, HEAD, PUT");
    cr_assert_str_eq(gateway_route_allow(GATEWAY_ROUTE_CONFIG_ROLLBACK), "POST");
}
