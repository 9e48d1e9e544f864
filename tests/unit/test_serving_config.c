/*  test_serving_config.c: the serving configuration document
    (serving_config.c): defaults from the environment, every validation
    rule with the field it names, exact types, unknown and missing keys,
    the key order written, and round trips through JSON and text.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leak_check.h"
#include "serving_config.h"

TestSuite(serving_config, .fini = leak_check_fini, .timeout = 30);

//  The defaults of an empty environment, in the documented key order.
#define DEFAULT_TEXT                                                                               \
    "{\"default_type\":\"hybrid\","                                                                \
    "\"hybrid\":{\"content_k\":5.0,\"content_floor\":0.1,\"ease_share\":0.5},"                     \
    "\"fallback_chain\":[\"previous\",\"cooccurrence\",\"segment_popularity\",\"popularity\"],"    \
    "\"seen_completion\":0.8,"                                                                     \
    "\"limits\":{\"default\":10,\"max\":100},"                                                     \
    "\"cache\":{\"ttl_s\":3600,\"l1_ttl_ms\":60000},"                                              \
    "\"event_weights\":{\"watch\":1.0,\"rating\":1.0,\"rating_neutral\":2.5,"                      \
    "\"watchlist_add\":0.5,\"watchlist_remove\":0.5}}"

//  The configuration of an environment without RECSD_* tuning variables.
static serving_config_t s_defaults(void)
{
    static const char *const vars[] = {
        "RECSD_SEEN_COMPLETION",      "RECSD_CACHE_TTL_S",
        "RECSD_CACHE_L1_TTL_MS",      "RECSD_WEIGHT_WATCH",
        "RECSD_WEIGHT_RATING",        "RECSD_RATING_NEUTRAL",
        "RECSD_WEIGHT_WATCHLIST_ADD", "RECSD_WEIGHT_WATCHLIST_REMOVE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    config_t env;
    char err[512];
    cr_assert_eq(config_load(&env, err, sizeof err), 0, "%s", err);
    serving_config_t cfg;
    serving_config_from_config(&env, &cfg);
    return cfg;
}

static json_t *s_default_doc(void)
{
    json_error_t jerr;
    json_t *doc = json_loads(DEFAULT_TEXT, 0, &jerr);
    cr_assert(doc, "%s", jerr.text);
    return doc;
}

//  Replaces (value non-NULL, reference taken) or removes (NULL) the member
//  at "key" or "group.key" of doc.
static void s_set_path(json_t *doc, const char *path, json_t *value)
{
    char group[64];
    const char *dot = strchr(path, '.');
    json_t *obj = doc;
    const char *key = path;
    if (dot) {
        snprintf(group, sizeof group, "%.*s", (int)(dot - path), path);
        obj = json_object_get(doc, group);
        cr_assert(json_is_object(obj), "no object %s", group);
        key = dot + 1;
    }
    if (value)
        cr_assert_eq(json_object_set_new(obj, key, value), 0);
    else
        cr_assert_eq(json_object_del(obj, key), 0, "no member %s", path);
}

//  Parses doc (taken), expects a refusal whose message is exactly expected
//  or, if expected ends in '*', starts with what precedes the '*'; and
//  that the output struct is left alone.
static void s_refused(json_t *doc, const char *expected)
{
    serving_config_t out, before;
    memset(&out, 0x5a, sizeof out);
    before = out;
    char err[512] = "";
    int rc = serving_config_parse(doc, &out, err, sizeof err);
    json_decref(doc);
    cr_assert_eq(rc, -1, "accepted; expected \"%s\"", expected);
    size_t n = strlen(expected);
    if (n > 0 && expected[n - 1] == '*')
        cr_assert(strncmp(err, expected, n - 1) == 0, "got \"%s\", expected \"%s\"", err, expected);
    else
        cr_assert_str_eq(err, expected);
    cr_assert(memcmp(&out, &before, sizeof out) == 0, "output changed on failure");
}

//  The default document with path set to value (taken) must be refused
//  with expected.
static void s_refused_with(const char *path, json_t *value, const char *expected)
{
    json_t *doc = s_default_doc();
    s_set_path(doc, path, value);
    s_refused(doc, expected);
}

static void s_accepted_with(const char *path, json_t *value, serving_config_t *out)
{
    json_t *doc = s_default_doc();
    s_set_path(doc, path, value);
    char err[512];
    int rc = serving_config_parse(doc, out, err, sizeof err);
    json_decref(doc);
    cr_assert_eq(rc, 0, "%s refused: %s", path, err);
}

static json_t *s_chain(const char *a, const char *b, const char *c, const char *d)
{
    json_t *chain = json_array();
    const char *steps[] = {a, b, c, d};
    for (int i = 0; i < 4 && steps[i]; i++)
        json_array_append_new(chain, json_string(steps[i]));
    return chain;
}

//  ---- defaults --------------------------------------------------------------

Test(serving_config, defaults_come_from_the_environment_and_hybrid_h)
{
    serving_config_t cfg = s_defaults();
    cr_assert_eq(cfg.default_type, SERVING_TYPE_HYBRID);
    hybrid_params_t blend = hybrid_params_default();
    cr_assert_eq((float)cfg.content_k, blend.content_k);
    //  The decimal meant, not the float's binary expansion.
    cr_assert_eq(cfg.content_floor, 0.1);
    cr_assert_eq(cfg.ease_share, 0.5);
    cr_assert_eq(cfg.fallback_count, 4);
    cr_assert_eq(cfg.fallback_chain[0], SERVING_FALLBACK_PREVIOUS);
    cr_assert_eq(cfg.fallback_chain[1], SERVING_FALLBACK_COOCCURRENCE);
    cr_assert_eq(cfg.fallback_chain[2], SERVING_FALLBACK_SEGMENT_POPULARITY);
    cr_assert_eq(cfg.fallback_chain[3], SERVING_FALLBACK_POPULARITY);
    cr_assert_eq(cfg.seen_completion, 0.8);
    cr_assert_eq(cfg.limit_default, 10);
    cr_assert_eq(cfg.limit_max, 100);
    cr_assert_eq(cfg.cache_ttl_s, 3600);
    cr_assert_eq(cfg.cache_l1_ttl_ms, 60000);
    cr_assert_eq(cfg.weight_watch, 1.0);
    cr_assert_eq(cfg.weight_rating, 1.0);
    cr_assert_eq(cfg.rating_neutral, 2.5);
    cr_assert_eq(cfg.weight_watchlist_add, 0.5);
    cr_assert_eq(cfg.weight_watchlist_remove, 0.5);
    char err[256];
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), 0, "%s", err);

    hybrid_params_t params = serving_config_hybrid_params(&cfg);
    cr_assert_eq(params.content_k, blend.content_k);
    cr_assert_eq(params.content_floor, blend.content_floor);
    cr_assert_eq(params.ease_share, blend.ease_share);
}

Test(serving_config, environment_values_are_taken_and_clamped_into_range)
{
    setenv("RECSD_WEIGHT_WATCH", "2.25", 1);
    setenv("RECSD_RATING_NEUTRAL", "3", 1);
    setenv("RECSD_CACHE_TTL_S", "172800", 1);     //  env allows 30 days, serving a day
    setenv("RECSD_CACHE_L1_TTL_MS", "120000", 1); //  env allows a day, serving a minute
    setenv("RECSD_SEEN_COMPLETION", "0", 1);      //  env allows 0, serving (0, 1]
    config_t env;
    char err[512];
    cr_assert_eq(config_load(&env, err, sizeof err), 0, "%s", err);
    serving_config_t cfg;
    serving_config_from_config(&env, &cfg);
    cr_assert_eq(cfg.weight_watch, 2.25);
    cr_assert_eq(cfg.rating_neutral, 3.0);
    cr_assert_eq(cfg.cache_ttl_s, SERVING_CONFIG_TTL_S_MAX);
    cr_assert_eq(cfg.cache_l1_ttl_ms, SERVING_CONFIG_L1_TTL_MS_MAX);
    cr_assert(cfg.seen_completion > 0 && cfg.seen_completion <= 0.001);
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), 0, "%s", err);
}

Test(serving_config, names_of_types_and_steps)
{
    serving_type_t type;
    serving_fallback_t step;
    for (int i = 0; i < SERVING_TYPE_COUNT; i++) {
        cr_assert_eq(serving_type_parse(serving_type_name((serving_type_t)i), &type), 0);
        cr_assert_eq(type, (serving_type_t)i);
    }
    for (int i = 0; i < SERVING_FALLBACK_COUNT; i++) {
        cr_assert_eq(serving_fallback_parse(serving_fallback_name((serving_fallback_t)i), &step),
                     0);
        cr_assert_eq(step, (serving_fallback_t)i);
    }
    cr_assert_eq(serving_type_parse("all", &type), -1);
    cr_assert_eq(serving_type_parse("Hybrid", &type), -1);
    cr_assert_eq(serving_type_parse(NULL, &type), -1);
    cr_assert_eq(serving_fallback_parse("random", &step), -1);
    cr_assert_null(serving_type_name(SERVING_TYPE_COUNT));
    cr_assert_null(serving_type_name((serving_type_t)-1));
    cr_assert_null(serving_fallback_name(SERVING_FALLBACK_COUNT));
}

//  ---- the document ----------------------------------------------------------

Test(serving_config, writes_the_documented_keys_in_order)
{
    serving_config_t cfg = s_defaults();
    char *text = serving_config_to_text(&cfg);
    cr_assert_not_null(text);
    cr_assert_str_eq(text, DEFAULT_TEXT);
    free(text);
}

Test(serving_config, parses_the_documented_example)
{
    //  The header's example, written by hand, with integers where a
    //  number is expected.
    const char *text =
        "{\"default_type\":\"content\",\"hybrid\":{\"content_k\":5,\"content_floor\":0.1,"
        "\"ease_share\":0.5},\"fallback_chain\":[\"segment_popularity\",\"popularity\"],"
        "\"seen_completion\":0.9,\"limits\":{\"default\":10,\"max\":100},"
        "\"cache\":{\"ttl_s\":3600,\"l1_ttl_ms\":2000},\"event_weights\":{\"watch\":1,"
        "\"rating\":1,\"rating_neutral\":3,\"watchlist_add\":0.5,\"watchlist_remove\":0.5}}";
    serving_config_t cfg;
    char err[512];
    cr_assert_eq(serving_config_parse_text(text, strlen(text), &cfg, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(cfg.default_type, SERVING_TYPE_CONTENT);
    cr_assert_eq(cfg.content_k, 5.0);
    cr_assert_eq(cfg.fallback_count, 2);
    cr_assert_eq(cfg.fallback_chain[0], SERVING_FALLBACK_SEGMENT_POPULARITY);
    cr_assert_eq(cfg.fallback_chain[1], SERVING_FALLBACK_POPULARITY);
    cr_assert_eq(cfg.seen_completion, 0.9);
    cr_assert_eq(cfg.cache_l1_ttl_ms, 2000);
    cr_assert_eq(cfg.rating_neutral, 3.0);

    //  The smallest chain, and bounds that are inside the ranges.
    serving_config_t out;
    s_accepted_with("fallback_chain", s_chain("popularity", NULL, NULL, NULL), &out);
    cr_assert_eq(out.fallback_count, 1);
    s_accepted_with("seen_completion", json_integer(1), &out);
    cr_assert_eq(out.seen_completion, 1.0);
    s_accepted_with("cache.l1_ttl_ms", json_integer(0), &out);
    cr_assert_eq(out.cache_l1_ttl_ms, 0);
    s_accepted_with("hybrid.content_k", json_integer(1000), &out);
    s_accepted_with("event_weights.watch", json_real(0), &out);
    s_accepted_with("event_weights.rating", json_integer(100), &out);
    s_accepted_with("limits.default", json_integer(100), &out);
    cr_assert_eq(out.limit_default, 100);
}

Test(serving_config, round_trips_through_json_and_text)
{
    serving_config_t a = s_defaults();
    serving_config_t variants[4];
    variants[0] = a;
    variants[1] = a;
    variants[1].default_type = SERVING_TYPE_POPULARITY;
    variants[1].content_k = 12.5;
    variants[1].content_floor = 0.03;
    variants[1].ease_share = 1;
    variants[1].fallback_chain[0] = SERVING_FALLBACK_SEGMENT_POPULARITY;
    variants[1].fallback_chain[1] = SERVING_FALLBACK_PREVIOUS;
    variants[1].fallback_chain[2] = SERVING_FALLBACK_COOCCURRENCE;
    variants[1].seen_completion = 0.95;
    variants[1].limit_default = 25;
    variants[1].limit_max = 50;
    variants[1].cache_ttl_s = 86400;
    variants[1].cache_l1_ttl_ms = 0;
    variants[1].weight_watch = 0;
    variants[1].weight_rating = 99.99;
    variants[1].rating_neutral = 999.999;
    variants[1].weight_watchlist_add = 0.123456789012345;
    variants[1].weight_watchlist_remove = 1e-7;
    variants[2] = a;
    variants[2].default_type = SERVING_TYPE_COLLABORATIVE;
    variants[2].fallback_count = 1;
    variants[2].fallback_chain[0] = SERVING_FALLBACK_POPULARITY;
    variants[3] = a;
    variants[3].default_type = SERVING_TYPE_CONTENT;
    variants[3].fallback_count = 2;
    variants[3].fallback_chain[0] = SERVING_FALLBACK_PREVIOUS;
    variants[3].fallback_chain[1] = SERVING_FALLBACK_POPULARITY;
    variants[3].content_floor = 1;
    variants[3].ease_share = 0;
    variants[3].content_k = 0;

    for (int i = 0; i < 4; i++) {
        char err[512];
        cr_assert_eq(serving_config_validate(&variants[i], err, sizeof err), 0, "%d: %s", i, err);
        json_t *doc = serving_config_to_json(&variants[i]);
        cr_assert_not_null(doc);
        serving_config_t back;
        memset(&back, 0x33, sizeof back);
        cr_assert_eq(serving_config_parse(doc, &back, err, sizeof err), 0, "%d: %s", i, err);
        json_decref(doc);
        cr_assert(serving_config_equal(&back, &variants[i]), "variant %d differs after JSON", i);

        char *text = serving_config_to_text(&variants[i]);
        cr_assert_not_null(text);
        memset(&back, 0x33, sizeof back);
        cr_assert_eq(serving_config_parse_text(text, strlen(text), &back, err, sizeof err), 0,
                     "%d: %s", i, err);
        cr_assert(serving_config_equal(&back, &variants[i]), "variant %d differs after %s", i,
                  text);
        //  And the text itself is a fixed point.
        char *again = serving_config_to_text(&back);
        cr_assert_str_eq(again, text);
        free(again);
        free(text);
    }
    cr_assert_not(serving_config_equal(&variants[0], &variants[1]));
    cr_assert_not(serving_config_equal(&variants[2], &variants[3]));
}

Test(serving_config, numbers_keep_fifteen_significant_digits)
{
    json_t *doc = s_default_doc();
    s_set_path(doc, "event_weights.watch", json_real(1.0 / 3.0));
    s_set_path(doc, "hybrid.content_floor", json_real(0.1));
    serving_config_t out;
    char err[256];
    cr_assert_eq(serving_config_parse(doc, &out, err, sizeof err), 0, "%s", err);
    json_decref(doc);
    cr_assert_eq(out.weight_watch, 0.333333333333333);
    char *text = serving_config_to_text(&out);
    cr_assert(strstr(text, "\"content_floor\":0.1,"), "%s", text);
    cr_assert(strstr(text, "\"watch\":0.333333333333333,"), "%s", text);
    free(text);
}

Test(serving_config, equal_compares_every_field)
{
    serving_config_t a = s_defaults();
    serving_config_t b = a;
    cr_assert(serving_config_equal(&a, &b));
    b.fallback_chain[1] = SERVING_FALLBACK_PREVIOUS;
    cr_assert_not(serving_config_equal(&a, &b));
    b = a;
    b.weight_watchlist_remove = 0.25;
    cr_assert_not(serving_config_equal(&a, &b));
    b = a;
    b.cache_l1_ttl_ms = 1;
    cr_assert_not(serving_config_equal(&a, &b));
    //  Steps past the count do not matter.
    b = a;
    a.fallback_count = b.fallback_count = 1;
    a.fallback_chain[0] = b.fallback_chain[0] = SERVING_FALLBACK_POPULARITY;
    b.fallback_chain[2] = SERVING_FALLBACK_PREVIOUS;
    cr_assert(serving_config_equal(&a, &b));
}

//  ---- refusals: values ------------------------------------------------------

Test(serving_config, refuses_an_unknown_default_type)
{
    s_refused_with("default_type", json_string("fancy"),
                   "default_type: unknown type \"fancy\" (known: hybrid, collaborative, content, "
                   "popularity)");
    s_refused_with("default_type", json_string("all"), "default_type: unknown type \"all\"*");
    s_refused_with("default_type", json_string(""), "default_type: unknown type \"\"*");
}

Test(serving_config, refuses_negative_and_too_large_weights)
{
    s_refused_with("event_weights.watch", json_integer(-1),
                   "event_weights.watch: must be within [0, 100]");
    s_refused_with("event_weights.rating", json_real(-0.001),
                   "event_weights.rating: must be within [0, 100]");
    s_refused_with("event_weights.watchlist_add", json_real(100.5),
                   "event_weights.watchlist_add: must be within [0, 100]");
    s_refused_with("event_weights.watchlist_remove", json_real(-2),
                   "event_weights.watchlist_remove: must be within [0, 100]");
    s_refused_with("event_weights.rating_neutral", json_real(-1),
                   "event_weights.rating_neutral: must be within [0, 1000]");
    s_refused_with("event_weights.rating_neutral", json_real(1000.5),
                   "event_weights.rating_neutral: must be within [0, 1000]");
}

Test(serving_config, refuses_a_blend_out_of_range)
{
    s_refused_with("hybrid.content_floor", json_real(1.5),
                   "hybrid.content_floor: must be within [0, 1]");
    s_refused_with("hybrid.content_floor", json_real(-0.1),
                   "hybrid.content_floor: must be within [0, 1]");
    s_refused_with("hybrid.ease_share", json_real(1.01),
                   "hybrid.ease_share: must be within [0, 1]");
    s_refused_with("hybrid.content_k", json_integer(-1),
                   "hybrid.content_k: must be within [0, 1000]");
    s_refused_with("hybrid.content_k", json_real(1000.01),
                   "hybrid.content_k: must be within [0, 1000]");
}

Test(serving_config, refuses_seen_completion_out_of_range)
{
    s_refused_with("seen_completion", json_integer(0), "seen_completion: must be within (0, 1]");
    s_refused_with("seen_completion", json_real(-0.5), "seen_completion: must be within (0, 1]");
    s_refused_with("seen_completion", json_real(1.0001), "seen_completion: must be within (0, 1]");
}

Test(serving_config, refuses_limits_out_of_range_and_default_above_max)
{
    json_t *doc = s_default_doc();
    s_set_path(doc, "limits.default", json_integer(60));
    s_set_path(doc, "limits.max", json_integer(50));
    s_refused(doc, "limits.default: must not exceed limits.max (50)");
    s_refused_with("limits.default", json_integer(0), "limits.default: must be within [1, 100]");
    s_refused_with("limits.max", json_integer(101), "limits.max: must be within [1, 100]");
    s_refused_with("limits.max", json_integer(0), "limits.max: must be within [1, 100]");
    //  Beyond int: refused, not wrapped round into range.
    s_refused_with("limits.default", json_integer(4294967306LL),
                   "limits.default: must be within [1, 100]");
    s_refused_with("limits.max", json_integer(-4294967196LL),
                   "limits.max: must be within [1, 100]");
}

Test(serving_config, refuses_cache_ttls_out_of_range)
{
    s_refused_with("cache.ttl_s", json_integer(0), "cache.ttl_s: must be within [1, 86400]");
    s_refused_with("cache.ttl_s", json_integer(86401), "cache.ttl_s: must be within [1, 86400]");
    s_refused_with("cache.l1_ttl_ms", json_integer(-1),
                   "cache.l1_ttl_ms: must be within [0, 60000]");
    s_refused_with("cache.l1_ttl_ms", json_integer(60001),
                   "cache.l1_ttl_ms: must be within [0, 60000]");
}

Test(serving_config, refuses_bad_fallback_chains)
{
    s_refused_with("fallback_chain", s_chain("previous", "segment_popularity", NULL, NULL),
                   "fallback_chain: must end with \"popularity\", the step that never fails");
    s_refused_with("fallback_chain", json_array(),
                   "fallback_chain: must not be empty (\"popularity\" ends every chain)");
    s_refused_with("fallback_chain", s_chain("previous", "previous", "popularity", NULL),
                   "fallback_chain[1]: \"previous\" is listed twice");
    s_refused_with("fallback_chain", s_chain("popularity", "previous", NULL, NULL),
                   "fallback_chain[0]: \"popularity\" must be the last step (nothing after it is "
                   "ever tried)");
    s_refused_with("fallback_chain",
                   s_chain("previous", "segment_popularity", "popularity", "popularity"),
                   "fallback_chain[3]: \"popularity\" is listed twice");
    s_refused_with("fallback_chain", s_chain("previous", "cache", "popularity", NULL),
                   "fallback_chain[1]: unknown step \"cache\" (known: previous, "
                   "segment_popularity, popularity)");
    s_refused_with("fallback_chain", json_pack("[s,i]", "previous", 3),
                   "fallback_chain[1]: must be a string");
    s_refused_with("fallback_chain", json_string("popularity"), "fallback_chain: must be an array");
}

//  ---- refusals: shape and types ---------------------------------------------

Test(serving_config, refuses_unknown_keys_anywhere)
{
    s_refused_with("experimental", json_true(), "experimental: unknown field");
    s_refused_with("cache.l2_ttl_s", json_integer(5), "cache.l2_ttl_s: unknown field");
    s_refused_with("hybrid.als_weight", json_real(0.5), "hybrid.als_weight: unknown field");
    s_refused_with("event_weights.share", json_real(1), "event_weights.share: unknown field");
    s_refused_with("limits.min", json_integer(1), "limits.min: unknown field");
    //  Keys compare exactly.
    s_refused_with("Default_type", json_string("hybrid"), "Default_type: unknown field");
}

Test(serving_config, refuses_missing_keys)
{
    s_refused_with("default_type", NULL, "default_type: is required");
    s_refused_with("hybrid", NULL, "hybrid: is required");
    s_refused_with("fallback_chain", NULL, "fallback_chain: is required");
    s_refused_with("event_weights.watchlist_remove", NULL,
                   "event_weights.watchlist_remove: is required");
    s_refused_with("limits.max", NULL, "limits.max: is required");
    s_refused_with("hybrid.ease_share", NULL, "hybrid.ease_share: is required");
    s_refused(json_object(), "default_type: is required");
}

Test(serving_config, refuses_wrong_types)
{
    s_refused_with("default_type", json_integer(1), "default_type: must be a string");
    s_refused_with("default_type", json_null(), "default_type: must be a string");
    s_refused_with("hybrid.content_k", json_string("5"), "hybrid.content_k: must be a number");
    s_refused_with("hybrid.content_floor", json_true(), "hybrid.content_floor: must be a number");
    s_refused_with("seen_completion", json_null(), "seen_completion: must be a number");
    s_refused_with("event_weights.watch", json_array(), "event_weights.watch: must be a number");
    s_refused_with("limits.default", json_real(10.5), "limits.default: must be an integer");
    s_refused_with("limits.max", json_real(100.0), "limits.max: must be an integer");
    s_refused_with("cache.ttl_s", json_string("3600"), "cache.ttl_s: must be an integer");
    s_refused_with("hybrid", json_real(0.5), "hybrid: must be an object");
    s_refused_with("limits", json_array(), "limits: must be an object");
    s_refused_with("event_weights", json_null(), "event_weights: must be an object");
    s_refused(json_array(), "document: must be a JSON object");
    s_refused(json_string("hybrid"), "document: must be a JSON object");
}

Test(serving_config, refuses_bad_text)
{
    serving_config_t out = s_defaults(), before = out;
    char err[512];
    const char *broken = "{\"default_type\": \"hybrid\",";
    cr_assert_eq(serving_config_parse_text(broken, strlen(broken), &out, err, sizeof err), -1);
    cr_assert(strncmp(err, "document: invalid JSON: ", 24) == 0, "%s", err);
    cr_assert(strstr(err, "(line 1, column"), "%s", err);
    //  Duplicate keys would let a later value hide an earlier one.
    const char *dup = "{\"default_type\":\"hybrid\",\"default_type\":\"content\"}";
    cr_assert_eq(serving_config_parse_text(dup, strlen(dup), &out, err, sizeof err), -1);
    cr_assert(strncmp(err, "document: invalid JSON: duplicate object key", 44) == 0, "%s", err);
    cr_assert_eq(serving_config_parse_text("", 0, &out, err, sizeof err), -1);
    cr_assert_eq(serving_config_parse_text(NULL, 0, &out, err, sizeof err), -1);
    //  len bounds the text: a valid document cut short is refused.
    char *text = serving_config_to_text(&before);
    cr_assert_eq(serving_config_parse_text(text, strlen(text) - 1, &out, err, sizeof err), -1);
    cr_assert_eq(serving_config_parse_text(text, strlen(text), &out, err, sizeof err), 0, "%s",
                 err);
    free(text);
    cr_assert(serving_config_equal(&out, &before));
}

//  ---- validating a struct ---------------------------------------------------

Test(serving_config, validate_holds_a_struct_to_the_same_rules)
{
    serving_config_t ok = s_defaults(), cfg;
    char err[512];
    cfg = ok;
    cfg.weight_watch = NAN;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "event_weights.watch: must be within [0, 100]");
    cfg = ok;
    cfg.content_floor = INFINITY;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "hybrid.content_floor: must be within [0, 1]");
    cfg = ok;
    cfg.default_type = SERVING_TYPE_COUNT;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "default_type: unknown type");
    cfg = ok;
    cfg.fallback_count = 5;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "fallback_chain: at most 4 steps, each once");
    cfg = ok;
    cfg.fallback_count = 0;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cfg = ok;
    cfg.fallback_chain[2] = SERVING_FALLBACK_COUNT;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "fallback_chain[2]: unknown step");
    cfg = ok;
    cfg.fallback_chain[1] = SERVING_FALLBACK_POPULARITY;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cr_assert(strncmp(err, "fallback_chain[1]: \"popularity\" must be the last step", 52) == 0,
              "%s", err);
    cfg = ok;
    cfg.limit_default = 101;
    cr_assert_eq(serving_config_validate(&cfg, err, sizeof err), -1);
    cr_assert_str_eq(err, "limits.default: must be within [1, 100]");
    //  to_json writes only what the struct can say: a bad enum gives NULL.
    cfg = ok;
    cfg.default_type = (serving_type_t)42;
    cr_assert_null(serving_config_to_json(&cfg));
}

Test(serving_config, rating_neutral_within_the_rating_scale)
{
    serving_config_t cfg = s_defaults();
    char err[256];
    cr_assert_eq(serving_config_check_ratings(&cfg, 0.5, 5, err, sizeof err), 0);
    cfg.rating_neutral = 7;
    cr_assert_eq(serving_config_check_ratings(&cfg, 0.5, 5, err, sizeof err), -1);
    cr_assert_str_eq(err,
                     "event_weights.rating_neutral: must lie within the rating scale [0.5, 5]");
    cfg.rating_neutral = 5;
    cr_assert_eq(serving_config_check_ratings(&cfg, 0.5, 5, err, sizeof err), 0);
}
