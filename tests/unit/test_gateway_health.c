/*  test_gateway_health.c: readiness decisions and document (gateway_health.c). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_health.h"
#include "leak_check.h"

static const char s_required[][32] = {"ranker", "event-ingestor", "http-gateway"};

static proto_actor_status_t s_rows[3];
static proto_status_rep_t s_status;

static void s_setup(void)
{
    memset(s_rows, 0, sizeof s_rows);
    const char *names[] = {"ranker", "event-ingestor", "http-gateway"};
    for (int i = 0; i < 3; i++) {
        snprintf(s_rows[i].name, sizeof s_rows[i].name, "%s", names[i]);
        snprintf(s_rows[i].state, sizeof s_rows[i].state, "running");
    }
    s_status = (proto_status_rep_t){.count = 3, .actors = s_rows};
}

TestSuite(gateway_health, .init = s_setup, .fini = leak_check_fini);

Test(gateway_health, all_running_is_ok)
{
    gateway_check_t check;
    gateway_health_actors(s_required, 3, &s_status, 100, 1000, &check);
    cr_assert(check.ok, "%s", check.detail);
}

Test(gateway_health, restarting_actor_passes_failed_one_fails)
{
    gateway_check_t check;
    snprintf(s_rows[0].state, sizeof s_rows[0].state, "backoff");
    snprintf(s_rows[1].state, sizeof s_rows[1].state, "starting");
    gateway_health_actors(s_required, 3, &s_status, 0, 1000, &check);
    cr_assert(check.ok, "%s", check.detail);
    const char *down[] = {"failed", "stopping", "stopped"};
    for (int i = 0; i < 3; i++) {
        snprintf(s_rows[0].state, sizeof s_rows[0].state, "%s", down[i]);
        gateway_health_actors(s_required, 3, &s_status, 0, 1000, &check);
        cr_assert_not(check.ok, "%s passed", down[i]);
        cr_assert(strstr(check.detail, "ranker") && strstr(check.detail, down[i]), "%s",
                  check.detail);
    }
}

Test(gateway_health, missing_actor_fails_and_every_problem_is_named)
{
    gateway_check_t check;
    s_status.count = 1; //  only "ranker" reported
    snprintf(s_rows[0].state, sizeof s_rows[0].state, "failed");
    gateway_health_actors(s_required, 3, &s_status, 0, 1000, &check);
    cr_assert_not(check.ok);
    cr_assert(strstr(check.detail, "ranker is failed"), "%s", check.detail);
    cr_assert(strstr(check.detail, "event-ingestor is not supervised"), "%s", check.detail);
    cr_assert(strstr(check.detail, "http-gateway is not supervised"), "%s", check.detail);
}

Test(gateway_health, silent_supervisor_fails)
{
    gateway_check_t check;
    gateway_health_actors(s_required, 3, NULL, -1, 1000, &check);
    cr_assert_not(check.ok);
    cr_assert(strstr(check.detail, "supervisor not answering"), "%s", check.detail);
    gateway_health_actors(s_required, 3, &s_status, 3000, 1000, &check);
    cr_assert(check.ok, "3 intervals old is still fresh: %s", check.detail);
    gateway_health_actors(s_required, 3, &s_status, 3001, 1000, &check);
    cr_assert_not(check.ok);
    cr_assert(strstr(check.detail, "supervisor not answering"), "%s", check.detail);
}

static json_t *s_render(const gateway_health_input_t *in, int *status)
{
    char *text = gateway_health_render(in, status);
    cr_assert_not_null(text);
    json_error_t error;
    json_t *doc = json_loads(text, 0, &error);
    cr_assert_not_null(doc, "%s", text);
    free(text);
    return doc;
}

Test(gateway_health, document_ready_and_not)
{
    gateway_health_input_t in = {.status = &s_status};
    gateway_check_set(&in.postgres, true, "accepting connections");
    gateway_check_set(&in.redis, true, "PONG");
    gateway_check_set(&in.actors, true, "all 3 required actors up");
    int status = 0;
    json_t *doc = s_render(&in, &status);
    cr_assert_eq(status, 200);
    cr_assert(json_is_true(json_object_get(doc, "ready")));
    json_t *checks = json_object_get(doc, "checks");
    cr_assert(json_is_true(json_object_get(json_object_get(checks, "postgres"), "ok")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(checks, "redis"), "detail")),
                     "PONG");
    json_t *actors = json_object_get(json_object_get(checks, "actors"), "actors");
    cr_assert_str_eq(json_string_value(json_object_get(actors, "ranker")), "running");
    cr_assert_eq(json_object_size(actors), 3);
    cr_assert(json_is_true(json_object_get(json_object_get(checks, "draining"), "ok")));
    json_decref(doc);

    gateway_check_set(&in.redis, false, "connect failed: Connection refused");
    doc = s_render(&in, &status);
    cr_assert_eq(status, 503);
    cr_assert(json_is_false(json_object_get(doc, "ready")));
    json_decref(doc);
}

Test(gateway_health, draining_or_stopping_is_not_ready)
{
    gateway_health_input_t in = {.status = NULL, .draining = true};
    gateway_check_set(&in.postgres, true, "");
    gateway_check_set(&in.redis, true, "");
    gateway_check_set(&in.actors, true, "");
    int status = 0;
    json_t *doc = s_render(&in, &status);
    cr_assert_eq(status, 503);
    json_t *draining = json_object_get(json_object_get(doc, "checks"), "draining");
    cr_assert(json_is_false(json_object_get(draining, "ok")));
    cr_assert(strstr(json_string_value(json_object_get(draining, "detail")), "draining"));
    //  No status: the actor map is present and empty.
    cr_assert_eq(json_object_size(json_object_get(
                     json_object_get(json_object_get(doc, "checks"), "actors"), "actors")),
                 0);
    json_decref(doc);

    in.draining = false;
    in.stopping = true;
    doc = s_render(&in, &status);
    cr_assert_eq(status, 503);
    json_decref(doc);
}

Test(gateway_health, every_instance_counts)
{
    //  RECSD_ACTORS=ranker:2: rows "ranker.1", "ranker.2" stand for "ranker".
    snprintf(s_rows[0].name, sizeof s_rows[0].name, "ranker.1");
    proto_actor_status_t rows[4];
    memcpy(rows, s_rows, sizeof s_rows);
    rows[3] = s_rows[0];
    snprintf(rows[3].name, sizeof rows[3].name, "ranker.2");
    proto_status_rep_t status = {.count = 4, .actors = rows};
    gateway_check_t check;
    gateway_health_actors(s_required, 3, &status, 0, 1000, &check);
    cr_assert(check.ok, "%s", check.detail);
    snprintf(rows[3].state, sizeof rows[3].state, "failed");
    gateway_health_actors(s_required, 3, &status, 0, 1000, &check);
    cr_assert_not(check.ok, "a failed second instance passed");
    cr_assert(strstr(check.detail, "ranker.2 is failed"), "%s", check.detail);
    //  "rankerX" is not an instance of "ranker".
    snprintf(rows[0].name, sizeof rows[0].name, "rankerX");
    snprintf(rows[3].name, sizeof rows[3].name, "rankers");
    gateway_health_actors(s_required, 3, &status, 0, 1000, &check);
    cr_assert_not(check.ok);
    cr_assert(strstr(check.detail, "ranker is not supervised"), "%s", check.detail);
}
