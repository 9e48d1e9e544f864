/*  test_gateway_problem.c: problem+json bodies (gateway_problem.c). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_problem.h"
#include "leak_check.h"

TestSuite(gateway_problem, .fini = leak_check_fini);

static json_t *s_parse(const char *text)
{
    json_error_t error;
    json_t *doc = json_loads(text, 0, &error);
    cr_assert_not_null(doc, "not JSON (%s): %s", error.text, text);
    return doc;
}

Test(gateway_problem, not_found_has_every_member)
{
    size_t len = 0;
    char *text = gateway_problem_body(404, "no such resource", "/no/such", NULL, &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    json_t *doc = s_parse(text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "type")), "about:blank");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "title")), "Not Found");
    cr_assert_eq(json_integer_value(json_object_get(doc, "status")), 404);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "detail")), "no such resource");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "instance")), "/no/such");
    cr_assert_null(json_object_get(doc, "invalid-params"));
    json_decref(doc);
    free(text);
}

Test(gateway_problem, bad_request_names_the_parameter)
{
    char *text = gateway_problem_body(400, "limit must be an integer between 1 and 100",
                                      "/api/v1/recs/1", "limit", NULL);
    json_t *doc = s_parse(text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "title")), "Bad Request");
    json_t *params = json_object_get(doc, "invalid-params");
    cr_assert_eq(json_array_size(params), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(params, 0), "name")),
                     "limit");
    json_decref(doc);
    free(text);
}

Test(gateway_problem, hostile_instance_stays_valid_json)
{
    //  Raw bytes a decoded URL may hold: invalid UTF-8, quotes, controls.
    char *text = gateway_problem_body(404, NULL, "/\xff\xfe\"\\\x01<script>", NULL, NULL);
    json_t *doc = s_parse(text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "instance")), "/%FF%FE\"\\%01<script>");
    cr_assert_null(json_object_get(doc, "detail"));
    json_decref(doc);
    free(text);
    text = gateway_problem_body(400, NULL, NULL, "userId", NULL);
    doc = s_parse(text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "instance")), "");
    json_decref(doc);
    free(text);
}

Test(gateway_problem, titles)
{
    cr_assert_str_eq(gateway_problem_title(405), "Method Not Allowed");
    cr_assert_str_eq(gateway_problem_title(503), "Service Unavailable");
    cr_assert_str_eq(gateway_problem_title(418), "Error");
}
