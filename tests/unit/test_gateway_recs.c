/*  test_gateway_recs.c: the recommendations response body (gateway_recs.c). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_recs.h"
#include "leak_check.h"

TestSuite(gateway_recs, .fini = leak_check_fini);

Test(gateway_recs, timestamp_is_rfc3339_utc_with_ms)
{
    char buf[40];
    cr_assert_str_eq(gateway_recs_timestamp(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    cr_assert_str_eq(gateway_recs_timestamp(1700000000123ULL, buf, sizeof buf),
                     "2023-11-14T22:13:20.123Z");
}

Test(gateway_recs, renders_items_in_order)
{
    gateway_recs_item_t items[] = {{"v1", 30}, {"v2", 0.5}, {"v3", NAN}};
    size_t len = 0;
    char *text =
        gateway_recs_render("42", items, 3, "model", "als-7", 1700000000123ULL, "rid-1", &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    json_error_t error;
    json_t *doc = json_loads(text, 0, &error);
    cr_assert_not_null(doc, "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "user_id")), "42");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "source")), "model");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "model_id")), "als-7");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "request_id")), "rid-1");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "generated_at")),
                     "2023-11-14T22:13:20.123Z");
    json_t *list = json_object_get(doc, "items");
    cr_assert_eq(json_array_size(list), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "video_id")), "v2");
    cr_assert_float_eq(json_number_value(json_object_get(json_array_get(list, 0), "score")), 30.0,
                       1e-9);
    //  NaN is not JSON; it becomes 0 rather than breaking the answer.
    cr_assert_float_eq(json_number_value(json_object_get(json_array_get(list, 2), "score")), 0.0,
                       1e-9);
    json_decref(doc);
    free(text);
}

Test(gateway_recs, fallback_has_null_model_and_may_be_empty)
{
    char *text = gateway_recs_render("u", NULL, 0, "fallback", NULL, 0, "r", NULL);
    cr_assert_str_eq(text, "{\"user_id\":\"u\",\"items\":[],\"source\":\"fallback\","
                           "\"model_id\":null,\"generated_at\":\"1970-01-01T00:00:00.000Z\","
                           "\"request_id\":\"r\"}");
    free(text);
    text = gateway_recs_render("u", NULL, 0, "model", "", 0, "r", NULL);
    cr_assert(strstr(text, "\"model_id\":null"), "%s", text);
    free(text);
}

Test(gateway_recs, invalid_utf8_item_is_skipped)
{
    gateway_recs_item_t items[] = {{"ok", 1}, {"bad\xff", 2}, {"fine", 3}};
    char *text = gateway_recs_render("u", items, 3, "fallback", NULL, 0, "r", NULL);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "\"ok\"") && strstr(text, "\"fine\""), "%s", text);
    cr_assert_null(strstr(text, "bad"), "%s", text);
    free(text);
}
