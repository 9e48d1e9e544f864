/*  test_experiment.c: experiment definitions and assignment (experiment.c),
    no database: parsing and every validation rule, the bucket hash against
    values computed independently with python3's hashlib, the traffic
    split of 100,000 users, re-shuffling by salt, control for stopped,
    draft and out-of-window experiments, JSON rendering, snapshots, times.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "experiment.h"
#include "leak_check.h"

TestSuite(experiment, .fini = leak_check_fini);

#define NOW_US 1714564800000000LL //  2024-05-01T12:00:00Z

static experiment_t *s_parse(const char *text)
{
    char err[256] = "";
    experiment_t *exp = experiment_parse_text(text, strlen(text), err, sizeof err);
    cr_assert(exp, "%s: %s", text, err);
    return exp;
}

//  Parses text expecting a failure whose message contains want.
static void s_refused(const char *text, const char *want)
{
    char err[256] = "";
    experiment_t *exp = experiment_parse_text(text, strlen(text), err, sizeof err);
    cr_assert_null(exp, "accepted: %s", text);
    cr_assert(strstr(err, want), "for %s\n  got  \"%s\"\n  want \"%s\"", text, err, want);
}

//  A running three-way experiment 50/30/20 with the given salt.
static experiment_t *s_three_way(const char *salt)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"name\":\"three\",\"salt\":\"%s\",\"variants\":["
             "{\"name\":\"control\",\"weight\":50},"
             "{\"name\":\"content\",\"weight\":30,\"model_type\":\"content\"},"
             "{\"name\":\"hybrid\",\"weight\":20,\"model_type\":\"hybrid\"}]}",
             salt);
    experiment_t *exp = s_parse(text);
    snprintf(exp->status, sizeof exp->status, "running");
    return exp;
}

Test(experiment, parses_a_full_definition)
{
    experiment_t *exp = s_parse(
        "{\"name\":\"Hybrid blend\",\"description\":\"two lines\\nof text\",\"layer\":\"home-row\","
        "\"salt\":\"s1\",\"start_at\":\"2024-05-01T12:00:00Z\",\"end_at\":\"2024-05-08T12:00:00.5+"
        "02:00\","
        "\"variants\":[{\"name\":\"default\",\"weight\":33.34},"
        "{\"name\":\"blend_a\",\"weight\":33.33,\"model_type\":\"hybrid\",\"is_control\":true,"
        "\"params\":{\"ease_share\":0.5,\"content_k\":5,\"content_floor\":0.1}},"
        "{\"name\":\"pinned\",\"weight\":33.33,\"model_type\":\"collaborative\","
        "\"model_id\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\"}]}");
    cr_assert_str_eq(exp->name, "Hybrid blend");
    cr_assert_str_eq(exp->description, "two lines\nof text");
    cr_assert_str_eq(exp->layer, "home-row");
    cr_assert_str_eq(exp->salt, "s1");
    cr_assert_str_eq(exp->status, "draft");
    cr_assert_str_eq(exp->id, "");
    cr_assert(exp->has_start && exp->has_end);
    cr_assert_eq(exp->start_us, NOW_US);
    cr_assert_eq(exp->end_us, NOW_US + 7 * 86400000000LL - 2 * 3600000000LL + 500000);
    cr_assert_eq(exp->n_variants, 3);
    cr_assert_eq(exp->variants[0].weight_bp, 3334);
    cr_assert_eq(exp->variants[1].weight_bp, 3333);
    cr_assert_not(exp->variants[0].is_control);
    cr_assert(exp->variants[1].is_control);
    cr_assert_str_eq(experiment_control(exp)->name, "blend_a");
    cr_assert_str_eq(exp->variants[0].model_type, "");
    cr_assert_str_eq(exp->variants[0].params_json, "{}");
    cr_assert_str_eq(exp->variants[1].params_json,
                     "{\"content_floor\":0.1,\"content_k\":5.0,\"ease_share\":0.5}");
    cr_assert(exp->variants[1].params.has_content_k && exp->variants[1].params.has_ease_share);
    cr_assert_float_eq(exp->variants[1].params.content_floor, 0.1, 1e-12);
    cr_assert_str_eq(exp->variants[2].model_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
    experiment_destroy(&exp);
    cr_assert_null(exp);
    experiment_destroy(&exp);
}

Test(experiment, defaults)
{
    experiment_t *exp = s_parse("{\"name\":\"n\",\"variants\":[{\"name\":\"a\",\"weight\":50},"
                                "{\"name\":\"b\",\"weight\":50.00}]}");
    cr_assert_str_eq(exp->layer, "default");
    cr_assert_eq(strlen(exp->salt), 32);
    cr_assert(exp->variants[0].is_control, "no control flagged: the first is");
    cr_assert_not(exp->variants[1].is_control);
    cr_assert_not(exp->has_start || exp->has_end);
    experiment_t *other = s_parse("{\"name\":\"n\",\"variants\":[{\"name\":\"a\",\"weight\":50},"
                                  "{\"name\":\"b\",\"weight\":50}]}");
    cr_assert_str_neq(exp->salt, other->salt, "salts are random");
    experiment_destroy(&exp);
    experiment_destroy(&other);
}

#define TWO(v0, v1) "{\"name\":\"x\",\"variants\":[" v0 "," v1 "]}"
#define V(name, weight) "{\"name\":\"" name "\",\"weight\":" weight "}"

Test(experiment, invalid_definitions_name_the_field)
{
    //  Weights.
    s_refused(TWO(V("a", "50"), V("b", "49")), "variants: weights sum to 99.00, not 100");
    s_refused(TWO(V("a", "50"), V("b", "51")), "variants: weights sum to 101.00, not 100");
    s_refused(TWO(V("a", "50"), V("b", "49.99")), "weights sum to 99.99");
    s_refused(TWO(V("a", "50.005"), V("b", "49.995")), "variants[0].weight: at most two decimals");
    s_refused(TWO(V("a", "0"), V("b", "100")), "variants[0].weight: must be > 0");
    s_refused(TWO(V("a", "-10"), V("b", "110")), "variants[0].weight: must be > 0");
    s_refused(TWO(V("a", "\"50\""), V("b", "50")), "variants[0].weight: must be a number");
    s_refused(TWO("{\"name\":\"a\"}", V("b", "100")), "variants[0].weight: required");
    //  Variants.
    s_refused("{\"name\":\"x\"}", "variants: required");
    s_refused("{\"name\":\"x\",\"variants\":[]}", "variants: must have 2..16 variants, not 0");
    s_refused("{\"name\":\"x\",\"variants\":[" V("a", "100") "]}", "not 1");
    s_refused("{\"name\":\"x\",\"variants\":{}}", "variants: required");
    s_refused(TWO(V("a", "50"), V("a", "50")),
              "variants[1].name: \"a\" is also the name of variants[0]");
    s_refused(TWO(V("a b", "50"), V("c", "50")), "variants[0].name");
    s_refused(TWO(V("", "50"), V("c", "50")), "variants[0].name");
    s_refused(TWO("{\"weight\":50}", V("c", "50")), "variants[0].name: required");
    s_refused(TWO(V("a", "50"), "7"), "variants[1]: must be an object");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"colour\":1}"),
              "variants[1].colour: unknown field");
    //  What a variant serves.
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"model_type\":\"magic\"}"),
              "variants[1].model_type: \"magic\" is not one of");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"model_type\":7}"),
              "variants[1].model_type: must be a string");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"model_id\":\"nope\"}"),
              "variants[1].model_id: must be a model id");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"params\":{\"alpha\":1}}"),
              "variants[1].params.alpha: unknown parameter");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"params\":{\"ease_share\":1.5}}"),
              "variants[1].params.ease_share: must be a number in [0, 1]");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"params\":{\"content_k\":-1}}"),
              "variants[1].params.content_k");
    s_refused(
        TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"params\":{\"content_floor\":\"x\"}}"),
        "variants[1].params.content_floor");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"params\":[1]}"),
              "variants[1].params: must be an object");
    s_refused(TWO(V("a", "50"), "{\"name\":\"b\",\"weight\":50,\"model_type\":\"content\","
                                "\"params\":{\"content_k\":3}}"),
              "variants[1].params: blend parameters apply to a hybrid");
    //  Controls.
    s_refused(TWO("{\"name\":\"a\",\"weight\":50,\"is_control\":true}",
                  "{\"name\":\"b\",\"weight\":50,\"is_control\":true}"),
              "variants[1].is_control: only one control");
    s_refused(TWO("{\"name\":\"a\",\"weight\":50,\"is_control\":1}", V("b", "50")),
              "variants[0].is_control: must be true or false");
    //  Top level.
    s_refused(
        "{\"name\":\"x\",\"status\":\"running\",\"variants\":[" V("a", "50") "," V("b", "50") "]}",
        "status: unknown field");
    s_refused("{\"variants\":[" V("a", "50") "," V("b", "50") "]}", "name: required");
    s_refused("{\"name\":\"\",\"variants\":[" V("a", "50") "," V("b", "50") "]}", "name: required");
    s_refused("{\"name\":\"a\\u0001b\",\"variants\":[" V("a", "50") "," V("b", "50") "]}", "name:");
    s_refused("{\"name\":\"x\",\"layer\":\"a/b\",\"variants\":[" V("a", "50") "," V("b", "50") "]}",
              "layer: must be");
    s_refused("{\"name\":\"x\",\"salt\":\"\",\"variants\":[" V("a", "50") "," V("b", "50") "]}",
              "salt: must be");
    s_refused("{\"name\":\"x\",\"start_at\":\"yesterday\",\"variants\":[" V("a", "50") "," V(
                  "b", "50") "]}",
              "start_at: must be an RFC 3339 time");
    s_refused(
        "{\"name\":\"x\",\"start_at\":\"2024-05-02T00:00:00Z\",\"end_at\":\"2024-05-01T00:00:00Z\","
        "\"variants\":[" V("a", "50") "," V("b", "50") "]}",
        "end_at: must be after start_at");
    s_refused("[]", "body: must be a JSON object");
    s_refused("{\"name\":", "body: not valid JSON");
    s_refused("{\"name\":\"x\",\"name\":\"y\",\"variants\":[]}", "body: not valid JSON");

    char big[4096];
    int n = snprintf(big, sizeof big, "{\"name\":\"%0201d\",\"variants\":[%s,%s]}", 0, V("a", "50"),
                     V("b", "50"));
    cr_assert(n > 0 && (size_t)n < sizeof big);
    s_refused(big, "name: must be at most 200 bytes");
    //  17 variants.
    n = snprintf(big, sizeof big, "{\"name\":\"x\",\"variants\":[");
    for (int i = 0; i < 17; i++)
        n += snprintf(big + n, sizeof big - n, "%s{\"name\":\"v%d\",\"weight\":%s}", i ? "," : "",
                      i, i < 16 ? "5.88" : "5.92");
    snprintf(big + n, sizeof big - n, "]}");
    s_refused(big, "variants: must have 2..16 variants, not 17");
}

//  Buckets computed independently with python3:
//    int.from_bytes(hashlib.sha256(f"{salt}:{user}".encode()).digest()[:8], "big") % 10000
Test(experiment, bucket_matches_independent_computation)
{
    cr_assert_eq(experiment_bucket("salt-a", "user-1"), 440);
    cr_assert_eq(experiment_bucket("salt-a", "user-2"), 819);
    cr_assert_eq(experiment_bucket("salt-b", "user-1"), 6219);
    cr_assert_eq(experiment_bucket("exp42", "u12345"), 9116);
    cr_assert_eq(experiment_bucket("", "x"), 9184);
    cr_assert_eq(experiment_bucket("abc", ""), 180);
}

Test(experiment, assignment_follows_bucket_ranges)
{
    experiment_t *exp = s_three_way("salt-a");
    //  Ranges: control [0, 5000), content [5000, 8000), hybrid [8000, 10000).
    cr_assert_str_eq(experiment_assign(exp, "user-1", NOW_US)->name, "control"); //  440
    //  control [0, 440), content [440, 8800), hybrid [8800, 10000): a
    //  bucket on a range's lower edge belongs to that range.
    exp->variants[0].weight_bp = 440;
    exp->variants[1].weight_bp = 8360;
    exp->variants[2].weight_bp = 1200;
    cr_assert_str_eq(experiment_assign(exp, "user-1", NOW_US)->name, "content"); //  440
    exp->variants[0].weight_bp = 441;
    exp->variants[1].weight_bp = 8359;
    cr_assert_str_eq(experiment_assign(exp, "user-1", NOW_US)->name, "control"); //  440 < 441
    cr_assert_str_eq(experiment_assign(exp, "user-2", NOW_US)->name, "content"); //  819
    snprintf(exp->salt, sizeof exp->salt, "exp42");
    cr_assert_str_eq(experiment_assign(exp, "u12345", NOW_US)->name, "hybrid"); //  9116
    experiment_destroy(&exp);
}

Test(experiment, split_of_100k_users_matches_weights)
{
    experiment_t *exp = s_three_way("split-test");
    int counts[3] = {0};
    char user[32];
    for (int u = 0; u < 100000; u++) {
        snprintf(user, sizeof user, "user-%d", u);
        const experiment_variant_t *v = experiment_assign(exp, user, NOW_US);
        cr_assert_not_null(v);
        counts[v - exp->variants]++;
        //  Same answer on a second ask (nothing per user is kept).
        if (u % 997 == 0)
            cr_assert_eq(experiment_assign(exp, user, NOW_US), v);
    }
    double want[3] = {50, 30, 20};
    for (int i = 0; i < 3; i++) {
        double pct = counts[i] / 1000.0;
        cr_assert(fabs(pct - want[i]) <= 1.0, "variant %d: %.2f%% of users, want %.0f%% +- 1", i,
                  pct, want[i]);
    }
    experiment_destroy(&exp);
}

//  Changing A's salt moves users between A's variants as if drawn anew:
//  the chance to land in the same variant again is 0.5^2 + 0.3^2 + 0.2^2 =
//  0.38, so about 62% move. B, with its own salt, does not change at all.
Test(experiment, new_salt_reshuffles_only_that_experiment)
{
    experiment_t *a = s_three_way("a-salt-1");
    experiment_t *a2 = s_three_way("a-salt-2");
    experiment_t *b = s_three_way("b-salt");
    experiment_t *b_before = s_three_way("b-salt");
    const int users = 100000;
    int moved = 0;
    char user[32];
    for (int u = 0; u < users; u++) {
        snprintf(user, sizeof user, "user-%d", u);
        const experiment_variant_t *va = experiment_assign(a, user, NOW_US);
        const experiment_variant_t *va2 = experiment_assign(a2, user, NOW_US);
        moved += strcmp(va->name, va2->name) != 0;
        cr_assert_str_eq(experiment_assign(b, user, NOW_US)->name,
                         experiment_assign(b_before, user, NOW_US)->name);
    }
    double share = (double)moved / users;
    cr_assert(share > 0.60 && share < 0.64, "%.4f of users moved, want about 0.62", share);
    experiment_destroy(&a);
    experiment_destroy(&a2);
    experiment_destroy(&b);
    experiment_destroy(&b_before);
}

Test(experiment, not_live_means_control)
{
    experiment_t *exp = s_three_way("ctl");
    //  The control is "control" (first, none flagged); find a user who is
    //  not in it while live.
    char user[32];
    int u = 0;
    do
        snprintf(user, sizeof user, "user-%d", u++);
    while (experiment_assign(exp, user, NOW_US)->is_control);
    cr_assert(experiment_is_live(exp, NOW_US));

    snprintf(exp->status, sizeof exp->status, "stopped");
    cr_assert_not(experiment_is_live(exp, NOW_US));
    cr_assert_str_eq(experiment_assign(exp, user, NOW_US)->name, "control");
    snprintf(exp->status, sizeof exp->status, "draft");
    cr_assert_str_eq(experiment_assign(exp, user, NOW_US)->name, "control");

    snprintf(exp->status, sizeof exp->status, "running");
    exp->has_start = true;
    exp->start_us = NOW_US + 1;
    cr_assert_str_eq(experiment_assign(exp, user, NOW_US)->name, "control", "not started yet");
    cr_assert_not(experiment_assign(exp, user, NOW_US + 1)->is_control);
    exp->has_end = true;
    exp->end_us = NOW_US + 10;
    cr_assert_not(experiment_assign(exp, user, NOW_US + 9)->is_control);
    cr_assert_str_eq(experiment_assign(exp, user, NOW_US + 10)->name, "control", "ended");
    cr_assert_str_eq(experiment_assign(exp, NULL, NOW_US + 5)->name, "control");
    experiment_destroy(&exp);
}

Test(experiment, renders_json)
{
    experiment_t *exp =
        s_parse("{\"name\":\"r\",\"salt\":\"s\",\"start_at\":\"2024-05-01T12:00:00.123456Z\","
                "\"variants\":[{\"name\":\"a\",\"weight\":12.5},"
                "{\"name\":\"b\",\"weight\":87.5,\"model_type\":\"hybrid\",\"is_control\":true,"
                "\"params\":{\"content_k\":2.5}}]}");
    json_t *doc = experiment_to_json(exp);
    cr_assert_not_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
    cr_assert_str_eq(
        text, "{\"experiment_id\":null,\"name\":\"r\",\"description\":\"\",\"status\":\"draft\","
              "\"layer\":\"default\",\"salt\":\"s\",\"start_at\":\"2024-05-01T12:00:00.123Z\","
              "\"end_at\":null,\"created_by\":null,\"created_at\":null,\"variants\":["
              "{\"name\":\"a\",\"weight\":12.5,\"model_type\":null,\"model_id\":null,"
              "\"params\":{},\"is_control\":false},"
              "{\"name\":\"b\",\"weight\":87.5,\"model_type\":\"hybrid\",\"model_id\":null,"
              "\"params\":{\"content_k\":2.5},\"is_control\":true}]}");
    free(text);
    json_decref(doc);

    exp->variants[0].weight_bp = 5000;
    exp->variants[1].weight_bp = 5000;
    doc = experiment_to_json(exp);
    cr_assert(json_is_integer(
                  json_object_get(json_array_get(json_object_get(doc, "variants"), 0), "weight")),
              "whole percents are integers");
    json_decref(doc);
    experiment_destroy(&exp);
}

Test(experiment, snapshot_set)
{
    experiment_set_t *set = experiment_set_new();
    cr_assert_not_null(set);
    experiment_t *a = s_three_way("a");
    experiment_t *b = s_three_way("b");
    snprintf(a->id, sizeof a->id, "0f8fad5b-d9cb-469f-a165-70867728950e");
    snprintf(b->id, sizeof b->id, "1f8fad5b-d9cb-469f-a165-70867728950e");
    snprintf(b->status, sizeof b->status, "stopped");
    snprintf(b->layer, sizeof b->layer, "other");
    for (int i = 0; i < 20; i++) //  grows past the first allocation
        cr_assert_eq(experiment_set_add(set, i == 0 ? a : b), 0);
    cr_assert_eq(experiment_set_size(set), 20);
    cr_assert_str_eq(experiment_set_at(set, 0)->salt, "a");
    cr_assert_null(experiment_set_at(set, 20));
    const experiment_t *found = experiment_set_find(set, "0F8FAD5B-D9CB-469F-A165-70867728950E");
    cr_assert(found && found != a, "found a copy");
    cr_assert_str_eq(found->salt, "a");
    cr_assert_null(experiment_set_find(set, "2f8fad5b-d9cb-469f-a165-70867728950e"));
    cr_assert_eq(experiment_set_live_in_layer(set, "default", NOW_US), found);
    cr_assert_null(experiment_set_live_in_layer(set, "other", NOW_US), "stopped is not live");
    experiment_destroy(&a);
    experiment_destroy(&b);
    experiment_set_destroy(&set);
    cr_assert_null(set);
    experiment_set_destroy(&set);
}

Test(experiment, rfc3339_times)
{
    int64_t us;
    char buf[40];
    cr_assert_eq(experiment_time_parse("2024-05-01T12:00:00Z", &us), 0);
    cr_assert_eq(us, NOW_US);
    cr_assert_eq(experiment_time_parse("2024-05-01t14:30:00.25+02:30", &us), 0);
    cr_assert_eq(us, NOW_US + 250000);
    cr_assert_eq(experiment_time_parse("2024-05-01 12:00:00.123456789z", &us), 0);
    cr_assert_eq(us, NOW_US + 123456);
    cr_assert_eq(experiment_time_parse("1969-12-31T23:59:59.5Z", &us), 0);
    cr_assert_eq(us, -500000);
    cr_assert_str_eq(experiment_time_format(-500000, buf, sizeof buf), "1969-12-31T23:59:59.500Z");
    cr_assert_str_eq(experiment_time_format(NOW_US + 123456, buf, sizeof buf),
                     "2024-05-01T12:00:00.123Z");
    const char *bad[] = {"2024-05-01T12:00:00",      "2024-02-30T12:00:00Z",
                         "2024-05-01T24:00:00Z",     "2024-05-01T12:00:00.Z",
                         "2024-05-01T12:00:00+2:00", "2024-05-01",
                         "2024-05-01T12:00:00Zjunk", "",
                         "2023-02-29T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(experiment_time_parse(bad[i], &us), -1, "%s", bad[i]);
    cr_assert_eq(experiment_time_parse("2024-02-29T00:00:00Z", &us), 0, "leap day");
}
