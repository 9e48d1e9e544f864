/*  test_gateway_metrics.c: counters and Prometheus text (gateway_metrics.c). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_metrics.h"
#include "leak_check.h"

TestSuite(gateway_metrics, .fini = leak_check_fini);

static void s_has(const char *text, const char *needle)
{
    cr_assert(strstr(text, needle), "missing line: %s\n--- text ---\n%s", needle, text);
}

Test(gateway_metrics, empty_table_exports_fixed_series_only)
{
    gateway_metrics_t *m = gateway_metrics_new();
    cr_assert_not_null(m);
    size_t len = 0;
    char *text = gateway_metrics_render(m, 0, NULL, &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    s_has(text, "# HELP recsd_http_requests_total ");
    s_has(text, "# TYPE recsd_http_requests_total counter\n");
    s_has(text, "# TYPE recsd_http_request_duration_seconds histogram\n");
    s_has(text, "recsd_ranker_requests_total{outcome=\"timeout\"} 0\n");
    s_has(text, "recsd_recs_responses_total{source=\"fallback\"} 0\n");
    s_has(text, "recsd_http_requests_in_flight 0\n");
    cr_assert_null(strstr(text, "recsd_http_requests_total{"), "unobserved series exported");
    cr_assert_eq(text[len - 1], '\n');
    free(text);
    gateway_metrics_destroy(&m);
    cr_assert_null(m);
    gateway_metrics_destroy(&m);
}

Test(gateway_metrics, histogram_is_cumulative_with_sum_and_count)
{
    gateway_metrics_t *m = gateway_metrics_new();
    gateway_metrics_observe(m, GATEWAY_ROUTE_HEALTH, 200, 100);     //  0.0001 s
    gateway_metrics_observe(m, GATEWAY_ROUTE_HEALTH, 200, 1000);    //  exactly 0.001
    gateway_metrics_observe(m, GATEWAY_ROUTE_HEALTH, 200, 30000);   //  0.03
    gateway_metrics_observe(m, GATEWAY_ROUTE_HEALTH, 200, 9000000); //  9 s: only +Inf
    gateway_metrics_observe(m, GATEWAY_ROUTE_RECS, 400, 10);
    gateway_metrics_observe(m, GATEWAY_ROUTE_OTHER, 418, 10); //  not in the table
    cr_assert_eq(gateway_metrics_requests(m, GATEWAY_ROUTE_HEALTH, 200), 4);
    char *text = gateway_metrics_render(m, 3, "# extra\n", NULL);
    s_has(text, "recsd_http_requests_total{route=\"/health\",status=\"200\"} 4\n");
    s_has(text, "recsd_http_requests_total{route=\"/api/v1/recs/{userId}\",status=\"400\"} 1\n");
    s_has(text, "recsd_http_requests_total{route=\"other\",status=\"other\"} 1\n");
    const char *p = "recsd_http_request_duration_seconds_bucket{route=\"/health\",status=\"200\",";
    char line[256];
    const struct {
        const char *le;
        int n;
    } want[] = {{"0.0005", 1}, {"0.001", 2}, {"0.0025", 2}, {"0.025", 2},
                {"0.05", 3},   {"2.5", 3},   {"+Inf", 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(line, sizeof line, "%sle=\"%s\"} %d\n", p, want[i].le, want[i].n);
        s_has(text, line);
    }
    s_has(text, "recsd_http_request_duration_seconds_sum{route=\"/health\",status=\"200\"} "
                "9.031100\n");
    s_has(text, "recsd_http_request_duration_seconds_count{route=\"/health\",status=\"200\"} 4\n");
    s_has(text, "recsd_http_requests_in_flight 3\n");
    //  The extra section comes last, verbatim.
    size_t len = strlen(text);
    cr_assert_str_eq(text + len - 8, "# extra\n");
    free(text);
    gateway_metrics_destroy(&m);
}

Test(gateway_metrics, sources_and_outcomes)
{
    gateway_metrics_t *m = gateway_metrics_new();
    gateway_metrics_count_source(m, "model");
    gateway_metrics_count_source(m, "fallback");
    gateway_metrics_count_source(m, "fallback");
    gateway_metrics_count_source(m, "weird");
    gateway_metrics_count_source(m, NULL);
    gateway_metrics_count_ranker(m, GATEWAY_RANKER_TIMEOUT);
    gateway_metrics_count_ranker(m, GATEWAY_RANKER_UNAVAILABLE);
    gateway_metrics_count_ranker(m, (gateway_ranker_outcome_t)42);
    cr_assert_eq(gateway_metrics_ranker(m, GATEWAY_RANKER_ERROR), 1);
    char *text = gateway_metrics_render(m, 0, NULL, NULL);
    s_has(text, "recsd_recs_responses_total{source=\"model\"} 1\n");
    s_has(text, "recsd_recs_responses_total{source=\"fallback\"} 2\n");
    s_has(text, "recsd_recs_responses_total{source=\"other\"} 2\n");
    s_has(text, "recsd_ranker_requests_total{outcome=\"ok\"} 0\n");
    s_has(text, "recsd_ranker_requests_total{outcome=\"timeout\"} 1\n");
    s_has(text, "recsd_ranker_requests_total{outcome=\"unavailable\"} 1\n");
    s_has(text, "recsd_ranker_requests_total{outcome=\"error\"} 1\n");
    free(text);
    gateway_metrics_destroy(&m);
}

static void *s_hammer(void *arg)
{
    for (int i = 0; i < 100000; i++)
        gateway_metrics_observe(arg, GATEWAY_ROUTE_RECS, 200, (uint64_t)(i % 3000));
    return NULL;
}

Test(gateway_metrics, concurrent_updates_are_not_lost)
{
    gateway_metrics_t *m = gateway_metrics_new();
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, s_hammer, m);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    cr_assert_eq(gateway_metrics_requests(m, GATEWAY_ROUTE_RECS, 200), 400000);
    char *text = gateway_metrics_render(m, 0, NULL, NULL);
    s_has(text, "recsd_http_request_duration_seconds_bucket{route=\"/api/v1/recs/{userId}\","
                "status=\"200\",le=\"+Inf\"} 400000\n");
    free(text);
    gateway_metrics_destroy(&m);
}

Test(gateway_metrics, actor_section_from_supervisor_status)
{
    proto_actor_status_t rows[2] = {
        {.name = "ranker",
         .pid = 10,
         .state = "running",
         .restarts = 2,
         .heartbeat_age_ms = 1250,
         .rss_bytes = 4096,
         .handled = 77,
         .queue_depth = 3},
        {.name = "trainer", .pid = 0, .state = "backoff", .restarts = 0, .heartbeat_age_ms = -1}};
    proto_status_rep_t status = {.count = 2, .actors = rows};
    char *text = gateway_metrics_render_actors(&status);
    cr_assert_not_null(text);
    s_has(text, "# TYPE recsd_actor_up gauge\n");
    s_has(text, "# TYPE recsd_actor_restarts_total counter\n");
    s_has(text, "# HELP recsd_actor_heartbeat_age_seconds ");
    s_has(text, "recsd_actor_up{actor=\"ranker\"} 1\n");
    s_has(text, "recsd_actor_up{actor=\"trainer\"} 0\n");
    s_has(text, "recsd_actor_restarts_total{actor=\"ranker\"} 2\n");
    s_has(text, "recsd_actor_restarts_total{actor=\"trainer\"} 0\n");
    s_has(text, "recsd_actor_rss_bytes{actor=\"ranker\"} 4096\n");
    s_has(text, "recsd_actor_heartbeat_age_seconds{actor=\"ranker\"} 1.250\n");
    cr_assert_null(strstr(text, "recsd_actor_heartbeat_age_seconds{actor=\"trainer\"}"),
                   "age exported for an actor without a process");
    s_has(text, "recsd_actor_queue_depth{actor=\"ranker\"} 3\n");
    s_has(text, "recsd_actor_messages_handled_total{actor=\"ranker\"} 77\n");
    free(text);

    text = gateway_metrics_render_actors(NULL);
    cr_assert_str_eq(text, "");
    free(text);
}

Test(gateway_metrics, label_values_are_escaped)
{
    proto_actor_status_t rows[1] = {{.name = "a\"b\\c", .state = "running"}};
    proto_status_rep_t status = {.count = 1, .actors = rows};
    char *text = gateway_metrics_render_actors(&status);
    s_has(text, "recsd_actor_up{actor=\"a\\\"b\\\\c\"} 1\n");
    free(text);
}
