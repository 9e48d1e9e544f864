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
    gateway_recs_item_t items[] = {{"v1", 30, NULL}, {"v2", 0.5, NULL}, {"v3", NAN, NULL}};
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
    cr_assert_str_eq(text, "{\"user_id\":\"u\",\"source\":\"fallback\",\"request_id\":\"r\","
                           "\"items\":[],\"model_id\":null,"
                           "\"generated_at\":\"1970-01-01T00:00:00.000Z\"}");
    free(text);
    text = gateway_recs_render("u", NULL, 0, "model", "", 0, "r", NULL);
    cr_assert(strstr(text, "\"model_id\":null"), "%s", text);
    free(text);
}

Test(gateway_recs, invalid_utf8_item_is_skipped)
{
    gateway_recs_item_t items[] = {{"ok", 1, NULL}, {"bad\xff", 2, NULL}, {"fine", 3, NULL}};
    char *text = gateway_recs_render("u", items, 3, "fallback", NULL, 0, "r", NULL);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "\"ok\"") && strstr(text, "\"fine\""), "%s", text);
    cr_assert_null(strstr(text, "bad"), "%s", text);
    free(text);
}

Test(gateway_recs, type_parse)
{
    char type[PROTO_RECS_TYPE_MAX + 1] = "x", why[160] = "";
    cr_assert_eq(gateway_recs_type_parse(NULL, type, sizeof type, why, sizeof why), 0);
    cr_assert_str_empty(type, "absent: the ranker's default");
    const char *good[] = {"hybrid", "collaborative", "content", "popularity"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(gateway_recs_type_parse(good[i], type, sizeof type, why, sizeof why), 0);
        cr_assert_str_eq(type, good[i]);
    }
    const char *bad[] = {"", "Hybrid", "als", "hybrid ", "popularityx", "collaborative,content"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        cr_assert_eq(gateway_recs_type_parse(bad[i], type, sizeof type, why, sizeof why), -1, "%s",
                     bad[i]);
        cr_assert(strstr(why, "type must be one of"), "%s", why);
    }
}

Test(gateway_recs, exclude_parse)
{
    proto_recs_req_t *q = calloc(1, sizeof *q);
    char why[160] = "";
    cr_assert_eq(gateway_recs_exclude_parse(NULL, q, why, sizeof why), 0);
    cr_assert_eq(q->exclude_count, 0);
    cr_assert_eq(gateway_recs_exclude_parse("", q, why, sizeof why), 0);
    cr_assert_eq(q->exclude_count, 0);
    cr_assert_eq(gateway_recs_exclude_parse("a", q, why, sizeof why), 0);
    cr_assert_eq(q->exclude_count, 1);
    cr_assert_str_eq(q->exclude[0], "a");
    cr_assert_eq(gateway_recs_exclude_parse("12,abc-9,x_y", q, why, sizeof why), 0);
    cr_assert_eq(q->exclude_count, 3);
    cr_assert_str_eq(q->exclude[1], "abc-9");
    cr_assert_str_eq(q->exclude[2], "x_y");
    cr_assert(gateway_recs_excluded(q, "abc-9"));
    cr_assert_not(gateway_recs_excluded(q, "abc"));
    const char *bad[] = {",", "a,", ",a", "a,,b", "a b", "a,\x01", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(gateway_recs_exclude_parse(bad[i], q, why, sizeof why), -1, "%s", bad[i]);
        cr_assert_eq(q->exclude_count, 0);
        cr_assert(strstr(why, "exclude"), "%s", why);
    }
    char long_id[PROTO_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    cr_assert_eq(gateway_recs_exclude_parse(long_id, q, why, sizeof why), -1);
    long_id[PROTO_ID_MAX] = '\0'; //  exactly 64 bytes: fine
    cr_assert_eq(gateway_recs_exclude_parse(long_id, q, why, sizeof why), 0);
    //  100 ids pass, 101 do not.
    char list[PROTO_EXCLUDE_MAX * 6 + 8] = "";
    for (int i = 0; i < PROTO_EXCLUDE_MAX; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", i);
    cr_assert_eq(gateway_recs_exclude_parse(list, q, why, sizeof why), 0);
    cr_assert_eq(q->exclude_count, PROTO_EXCLUDE_MAX);
    cr_assert_str_eq(q->exclude[99], "99");
    strcat(list, ",100");
    cr_assert_eq(gateway_recs_exclude_parse(list, q, why, sizeof why), -1);
    cr_assert(strstr(why, "at most 100"), "%s", why);
    free(q);
}

Test(gateway_recs, explain_parse)
{
    bool on = true;
    char why[160];
    cr_assert_eq(gateway_recs_explain_parse(NULL, &on, why, sizeof why), 0);
    cr_assert_not(on);
    cr_assert_eq(gateway_recs_explain_parse("true", &on, why, sizeof why), 0);
    cr_assert(on);
    cr_assert_eq(gateway_recs_explain_parse("1", &on, why, sizeof why), 0);
    cr_assert(on);
    cr_assert_eq(gateway_recs_explain_parse("false", &on, why, sizeof why), 0);
    cr_assert_not(on);
    cr_assert_eq(gateway_recs_explain_parse("0", &on, why, sizeof why), 0);
    cr_assert_not(on);
    const char *bad[] = {"", "yes", "TRUE", "2", "true "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(gateway_recs_explain_parse(bad[i], &on, why, sizeof why), -1, "%s", bad[i]);
}

Test(gateway_recs, render_meta_adds_type_version_and_reasons)
{
    gateway_recs_item_t items[] = {{"v1", 2, "w9"}, {"v2", 1, ""}, {"v3", 0.5, NULL}};
    gateway_recs_meta_t meta = {.source = "model",
                                .model_id = "m-1",
                                .type = "content",
                                .model_version = 7,
                                .explain = true,
                                .generated_at_ms = 0,
                                .request_id = "r"};
    char *text = gateway_recs_render_meta("u", items, 3, &meta, NULL);
    cr_assert_not_null(text);
    json_error_t error;
    json_t *doc = json_loads(text, 0, &error);
    cr_assert_not_null(doc, "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "type")), "content");
    cr_assert_eq(json_integer_value(json_object_get(doc, "model_version")), 7);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "model_id")), "m-1");
    const char *keys[] = {"user_id", "items", "source", "generated_at", "request_id"};
    for (size_t i = 0; i < 5; i++)
        cr_assert_not_null(json_object_get(doc, keys[i]), "%s kept", keys[i]);
    json_t *list = json_object_get(doc, "items");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "reason")), "w9");
    cr_assert(json_is_null(json_object_get(json_array_get(list, 1), "reason")));
    cr_assert(json_is_null(json_object_get(json_array_get(list, 2), "reason")));
    json_decref(doc);
    free(text);
    //  Without explain: no reason key at all; no model: nulls.
    meta = (gateway_recs_meta_t){.source = "fallback", .type = "popularity", .request_id = "r"};
    text = gateway_recs_render_meta("u", items, 1, &meta, NULL);
    cr_assert_str_eq(text, "{\"user_id\":\"u\",\"source\":\"fallback\",\"request_id\":\"r\","
                           "\"items\":[{\"video_id\":\"v1\",\"score\":2.0}],\"model_id\":null,"
                           "\"generated_at\":\"1970-01-01T00:00:00.000Z\","
                           "\"type\":\"popularity\",\"model_version\":null}");
    free(text);
}

//  The cache keeps shared parts; a hit is the shared part stamped with the
//  request's head, which must be the body render_meta gives.
Test(gateway_recs, stamp_of_the_shared_part_is_the_whole_body)
{
    gateway_recs_item_t items[] = {{"v1", 2, "w9"}, {"v2", 1.25, ""}};
    gateway_recs_meta_t meta = {.source = "model",
                                .model_id = "m-1",
                                .type = "hybrid",
                                .model_version = 3,
                                .explain = true,
                                .generated_at_ms = 1700000000123ULL,
                                .request_id = "rid-9",
                                .experiment_id = "e-1",
                                .variant = "b"};
    size_t shared_len = 0, len = 0, whole_len = 0;
    char *shared = gateway_recs_render_shared(items, 2, &meta, &shared_len);
    cr_assert_not_null(shared);
    cr_assert_eq(strncmp(shared, "{\"items\":", 9), 0, "%s", shared);
    cr_assert_null(strstr(shared, "user_id"), "%s", shared);
    cr_assert_null(strstr(shared, "rid-9"), "%s", shared);
    char *whole = gateway_recs_render_meta("u1", items, 2, &meta, &whole_len);
    char *stamped = gateway_recs_stamp(shared, shared_len, "u1", "model", "rid-9", &len);
    cr_assert_str_eq(stamped, whole);
    cr_assert_eq(len, whole_len);
    cr_assert_eq(len, strlen(stamped));
    free(stamped);
    //  Another user, a hit: only the head differs; a quote in an id is
    //  escaped, and the result is one JSON object.
    stamped = gateway_recs_stamp(shared, shared_len, "a\"b\\c", "cache", "r2", NULL);
    cr_assert_not_null(stamped);
    json_error_t error;
    json_t *doc = json_loads(stamped, JSON_REJECT_DUPLICATES, &error);
    cr_assert_not_null(doc, "%s: %s", stamped, error.text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "user_id")), "a\"b\\c");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "source")), "cache");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "request_id")), "r2");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "variant")), "b");
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 2);
    json_decref(doc);
    free(stamped);
    free(whole);
    free(shared);
}

Test(gateway_recs, stamp_refuses_what_is_not_a_shared_part)
{
    //  A whole body (what an older gateway cached) would give a user_id twice.
    const char *whole = "{\"user_id\":\"u\",\"items\":[],\"source\":\"model\"}";
    cr_assert_null(gateway_recs_stamp(whole, strlen(whole), "u", "cache", "r", NULL));
    const char *cut = "{\"items\":[]";
    cr_assert_null(gateway_recs_stamp(cut, strlen(cut), "u", "cache", "r", NULL));
    cr_assert_null(gateway_recs_stamp("", 0, "u", "cache", "r", NULL));
    const char *ok = "{\"items\":[]}";
    char *body = gateway_recs_stamp(ok, strlen(ok), "u", "cache", "r", NULL);
    cr_assert_str_eq(body,
                     "{\"user_id\":\"u\",\"source\":\"cache\",\"request_id\":\"r\",\"items\":[]}");
    free(body);
    //  Ids too long for any request, or not UTF-8.
    char longer[PROTO_ID_MAX + 2];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    cr_assert_null(gateway_recs_stamp(ok, strlen(ok), longer, "cache", "r", NULL));
    cr_assert_null(gateway_recs_stamp(ok, strlen(ok), "u", "cache", longer, NULL));
    cr_assert_null(gateway_recs_stamp(ok, strlen(ok), "bad\xff", "cache", "r", NULL));
    cr_assert_null(gateway_recs_stamp(ok, strlen(ok), NULL, "cache", "r", NULL));
}
