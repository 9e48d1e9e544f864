/*  serving_config.c: the runtime recommendation configuration: defaults,
    strict JSON parsing, validation and the document (see serving_config.h).
*/
#include "serving_config.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const s_type_names[SERVING_TYPE_COUNT] = {"hybrid", "collaborative", "content",
                                                             "popularity"};
static const char *const s_step_names[SERVING_FALLBACK_COUNT] = {
    "previous", "cooccurrence", "segment_popularity", "popularity"};

//  The numeric fields, one row each: their path in the document, kind,
//  bounds and place in the struct. Parsing and validation both walk it,
//  so a bound is written once.
typedef enum { S_NUMBER, S_INTEGER } s_kind_t;

//  Widest fields first: no padding between them.
typedef struct {
    const char *group; //  enclosing object, NULL at the top level
    const char *key;
    double lo, hi;
    size_t offset;
    s_kind_t kind;
    bool lo_open; //  (lo, hi] rather than [lo, hi]
} s_field_t;

#define S_NUM(g, k, l, h, open, member)                                                            \
    {                                                                                              \
        .group = (g), .key = (k), .lo = (l), .hi = (h),                                            \
        .offset = offsetof(serving_config_t, member), .kind = S_NUMBER, .lo_open = (open)          \
    }
#define S_INT(g, k, l, h, member)                                                                  \
    {                                                                                              \
        .group = (g), .key = (k), .lo = (l), .hi = (h),                                            \
        .offset = offsetof(serving_config_t, member), .kind = S_INTEGER, .lo_open = false          \
    }

static const s_field_t s_fields[] = {
    S_NUM("hybrid", "content_k", 0, SERVING_CONFIG_CONTENT_K_MAX, false, content_k),
    S_NUM("hybrid", "content_floor", 0, 1, false, content_floor),
    S_NUM("hybrid", "ease_share", 0, 1, false, ease_share),
    S_NUM(NULL, "seen_completion", 0, 1, true, seen_completion),
    S_INT("limits", "default", 1, SERVING_CONFIG_LIMIT_MAX, limit_default),
    S_INT("limits", "max", 1, SERVING_CONFIG_LIMIT_MAX, limit_max),
    S_INT("cache", "ttl_s", 1, SERVING_CONFIG_TTL_S_MAX, cache_ttl_s),
    S_INT("cache", "l1_ttl_ms", 0, SERVING_CONFIG_L1_TTL_MS_MAX, cache_l1_ttl_ms),
    S_NUM("event_weights", "watch", 0, SERVING_CONFIG_WEIGHT_MAX, false, weight_watch),
    S_NUM("event_weights", "rating", 0, SERVING_CONFIG_WEIGHT_MAX, false, weight_rating),
    S_NUM("event_weights", "rating_neutral", 0, SERVING_CONFIG_NEUTRAL_MAX, false, rating_neutral),
    S_NUM("event_weights", "watchlist_add", 0, SERVING_CONFIG_WEIGHT_MAX, false,
          weight_watchlist_add),
    S_NUM("event_weights", "watchlist_remove", 0, SERVING_CONFIG_WEIGHT_MAX, false,
          weight_watchlist_remove),
};
#define S_FIELD_COUNT (sizeof s_fields / sizeof *s_fields)

//  Keys of the top level and of each group, in document order.
static const char *const s_root_keys[] = {"default_type",    "hybrid", "fallback_chain",
                                          "seen_completion", "limits", "cache",
                                          "event_weights"};
static const char *const s_groups[] = {"hybrid", "limits", "cache", "event_weights"};
#define S_GROUP_COUNT (sizeof s_groups / sizeof *s_groups)

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err, errlen, fmt, args);
        va_end(args);
    }
    return -1;
}

//  "group.key" or "key".
static void s_path(const s_field_t *f, char *buf, size_t len)
{
    if (f->group)
        snprintf(buf, len, "%s.%s", f->group, f->key);
    else
        snprintf(buf, len, "%s", f->key);
}

static int s_range_fail(const s_field_t *f, char *err, size_t errlen)
{
    char path[64];
    s_path(f, path, sizeof path);
    return s_fail(err, errlen, "%s: must be within %c%g, %g]", path, f->lo_open ? '(' : '[', f->lo,
                  f->hi);
}

//  15 significant digits: what a double holds of any decimal exactly, so
//  the document's text reads back as the same value (see the header).
static double s_round15(double value)
{
    if (!isfinite(value))
        return value;
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", value);
    return strtod(buf, NULL);
}

//  A float's decimal meaning (FLT_DIG digits): 0.1f is 0.1, not
//  0.100000001490116.
static double s_round_float(float value)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.*g", FLT_DIG, (double)value);
    return strtod(buf, NULL);
}

const char *serving_type_name(serving_type_t type)
{
    return (unsigned)type < SERVING_TYPE_COUNT ? s_type_names[type] : NULL;
}

int serving_type_parse(const char *name, serving_type_t *type)
{
    for (int i = 0; name && i < SERVING_TYPE_COUNT; i++)
        if (strcmp(name, s_type_names[i]) == 0) {
            *type = (serving_type_t)i;
            return 0;
        }
    return -1;
}

const char *serving_fallback_name(serving_fallback_t step)
{
    return (unsigned)step < SERVING_FALLBACK_COUNT ? s_step_names[step] : NULL;
}

int serving_fallback_parse(const char *name, serving_fallback_t *step)
{
    for (int i = 0; name && i < SERVING_FALLBACK_COUNT; i++)
        if (strcmp(name, s_step_names[i]) == 0) {
            *step = (serving_fallback_t)i;
            return 0;
        }
    return -1;
}

//  ---- defaults --------------------------------------------------------------

static double s_clamp_double(const char *var, double value, double lo, double hi)
{
    double out = value < lo ? lo : value > hi ? hi : value;
    if (out != value)
        log_warn("serving configuration: %s=%g is outside %g..%g; using %g", var, value, lo, hi,
                 out);
    return s_round15(out);
}

static int s_clamp_int(const char *var, int value, int lo, int hi)
{
    int out = value < lo ? lo : value > hi ? hi : value;
    if (out != value)
        log_warn("serving configuration: %s=%d is outside %d..%d; using %d", var, value, lo, hi,
                 out);
    return out;
}

void serving_config_from_config(const config_t *env, serving_config_t *out)
{
    hybrid_params_t blend = hybrid_params_default();
    *out = (serving_config_t){
        .default_type = SERVING_TYPE_HYBRID,
        .content_k = s_round_float(blend.content_k),
        .content_floor = s_round_float(blend.content_floor),
        .ease_share = s_round_float(blend.ease_share),
        .fallback_chain = {SERVING_FALLBACK_PREVIOUS, SERVING_FALLBACK_COOCCURRENCE,
                           SERVING_FALLBACK_SEGMENT_POPULARITY, SERVING_FALLBACK_POPULARITY},
        .fallback_count = 4,
        .limit_default = 10,
        .limit_max = SERVING_CONFIG_LIMIT_MAX,
    };
    //  RECSD_SEEN_COMPLETION may be 0 ("any watch is seen"); the serving
    //  range starts above 0, and 0.0001 is that in effect.
    out->seen_completion = s_clamp_double("RECSD_SEEN_COMPLETION", env->seen_completion, 0.0001, 1);
    out->cache_ttl_s =
        s_clamp_int("RECSD_CACHE_TTL_S", env->cache_ttl_s, 1, SERVING_CONFIG_TTL_S_MAX);
    out->cache_l1_ttl_ms =
        s_clamp_int("RECSD_CACHE_L1_TTL_MS", env->cache_l1_ttl_ms, 0, SERVING_CONFIG_L1_TTL_MS_MAX);
    out->weight_watch =
        s_clamp_double("RECSD_WEIGHT_WATCH", env->weight_watch, 0, SERVING_CONFIG_WEIGHT_MAX);
    out->weight_rating =
        s_clamp_double("RECSD_WEIGHT_RATING", env->weight_rating, 0, SERVING_CONFIG_WEIGHT_MAX);
    out->rating_neutral =
        s_clamp_double("RECSD_RATING_NEUTRAL", env->rating_neutral, 0, SERVING_CONFIG_NEUTRAL_MAX);
    out->weight_watchlist_add = s_clamp_double(
        "RECSD_WEIGHT_WATCHLIST_ADD", env->weight_watchlist_add, 0, SERVING_CONFIG_WEIGHT_MAX);
    out->weight_watchlist_remove =
        s_clamp_double("RECSD_WEIGHT_WATCHLIST_REMOVE", env->weight_watchlist_remove, 0,
                       SERVING_CONFIG_WEIGHT_MAX);
}

//  ---- validation ------------------------------------------------------------

//  The chain rules; on a struct, so a chain built in C is held to them too.
static int s_validate_chain(const serving_config_t *self, char *err, size_t errlen)
{
    if (self->fallback_count < 1)
        return s_fail(err, errlen,
                      "fallback_chain: must not be empty (\"popularity\" ends every chain)");
    if (self->fallback_count > SERVING_CONFIG_CHAIN_MAX)
        return s_fail(err, errlen, "fallback_chain: at most %d steps, each once",
                      SERVING_CONFIG_CHAIN_MAX);
    bool listed[SERVING_FALLBACK_COUNT] = {false};
    for (int i = 0; i < self->fallback_count; i++) {
        serving_fallback_t step = self->fallback_chain[i];
        const char *name = serving_fallback_name(step);
        if (!name)
            return s_fail(err, errlen, "fallback_chain[%d]: unknown step", i);
        if (listed[step])
            return s_fail(err, errlen, "fallback_chain[%d]: \"%s\" is listed twice", i, name);
        listed[step] = true;
        if (step == SERVING_FALLBACK_POPULARITY && i != self->fallback_count - 1)
            return s_fail(err, errlen,
                          "fallback_chain[%d]: \"popularity\" must be the last step (nothing "
                          "after it is ever tried)",
                          i);
    }
    if (!listed[SERVING_FALLBACK_POPULARITY])
        return s_fail(err, errlen,
                      "fallback_chain: must end with \"popularity\", the step that never fails");
    return 0;
}

int serving_config_validate(const serving_config_t *self, char *err, size_t errlen)
{
    if (!serving_type_name(self->default_type))
        return s_fail(err, errlen, "default_type: unknown type");
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const s_field_t *f = &s_fields[i];
        const char *base = (const char *)self + f->offset;
        double value;
        if (f->kind == S_INTEGER) {
            int v;
            memcpy(&v, base, sizeof v);
            value = v;
        } else
            memcpy(&value, base, sizeof value);
        //  NaN fails every comparison: ask for the range the positive way.
        bool ok =
            isfinite(value) && (f->lo_open ? value > f->lo : value >= f->lo) && value <= f->hi;
        if (!ok)
            return s_range_fail(f, err, errlen);
    }
    if (self->limit_default > self->limit_max)
        return s_fail(err, errlen, "limits.default: must not exceed limits.max (%d)",
                      self->limit_max);
    return s_validate_chain(self, err, errlen);
}

int serving_config_check_ratings(const serving_config_t *self, double rating_min, double rating_max,
                                 char *err, size_t errlen)
{
    if (!(self->rating_neutral >= rating_min && self->rating_neutral <= rating_max))
        return s_fail(err, errlen,
                      "event_weights.rating_neutral: must lie within the rating scale [%g, %g]",
                      rating_min, rating_max);
    return 0;
}

//  ---- parsing ---------------------------------------------------------------

static bool s_in(const char *key, const char *const *set, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(key, set[i]) == 0)
            return true;
    return false;
}

//  obj (at path, "" = top level) holds exactly the keys in keys[]:
//  unknown ones first (in the document's order), then missing ones (in
//  ours).
static int s_check_keys(const json_t *obj, const char *path, const char *const *keys, size_t count,
                        char *err, size_t errlen)
{
    const char *prefix = *path ? path : "";
    const char *dot = *path ? "." : "";
    const char *key;
    json_t *value;
    //  json_object_foreach takes a non-const object; nothing is changed.
    json_object_foreach((json_t *)obj, key, value)
    {
        if (!s_in(key, keys, count))
            return s_fail(err, errlen, "%s%s%.64s: unknown field", prefix, dot, key);
    }
    for (size_t i = 0; i < count; i++)
        if (!json_object_get(obj, keys[i]))
            return s_fail(err, errlen, "%s%s%s: is required", prefix, dot, keys[i]);
    return 0;
}

static int s_parse_field(const json_t *doc, const s_field_t *f, serving_config_t *out, char *err,
                         size_t errlen)
{
    char path[64];
    s_path(f, path, sizeof path);
    const json_t *value = f->group ? json_object_get(json_object_get(doc, f->group), f->key)
                                   : json_object_get(doc, f->key);
    char *base = (char *)out + f->offset;
    if (f->kind == S_INTEGER) {
        if (!json_is_integer(value))
            return s_fail(err, errlen, "%s: must be an integer", path);
        json_int_t v = json_integer_value(value);
        //  Out of int range cannot be stored to be refused later: refuse now.
        if (v < (json_int_t)f->lo || v > (json_int_t)f->hi)
            return s_range_fail(f, err, errlen);
        int stored = (int)v;
        memcpy(base, &stored, sizeof stored);
    } else {
        if (!json_is_number(value))
            return s_fail(err, errlen, "%s: must be a number", path);
        double v = s_round15(json_number_value(value));
        memcpy(base, &v, sizeof v);
    }
    return 0;
}

static int s_parse_chain(const json_t *chain, serving_config_t *out, char *err, size_t errlen)
{
    if (!json_is_array(chain))
        return s_fail(err, errlen, "fallback_chain: must be an array");
    out->fallback_count = 0;
    bool listed[SERVING_FALLBACK_COUNT] = {false};
    size_t i;
    json_t *item;
    json_array_foreach(chain, i, item)
    {
        if (!json_is_string(item))
            return s_fail(err, errlen, "fallback_chain[%zu]: must be a string", i);
        serving_fallback_t step;
        if (serving_fallback_parse(json_string_value(item), &step) != 0)
            return s_fail(err, errlen,
                          "fallback_chain[%zu]: unknown step \"%.40s\" (known: previous, "
                          "segment_popularity, popularity)",
                          i, json_string_value(item));
        if (listed[step])
            return s_fail(err, errlen, "fallback_chain[%zu]: \"%s\" is listed twice", i,
                          s_step_names[step]);
        //  Three known steps, each once: a fourth is caught above.
        listed[step] = true;
        out->fallback_chain[out->fallback_count++] = step;
    }
    return 0;
}

int serving_config_parse(const json_t *doc, serving_config_t *out, char *err, size_t errlen)
{
    if (!json_is_object(doc))
        return s_fail(err, errlen, "document: must be a JSON object");
    if (s_check_keys(doc, "", s_root_keys, sizeof s_root_keys / sizeof *s_root_keys, err, errlen))
        return -1;
    for (size_t g = 0; g < S_GROUP_COUNT; g++) {
        const json_t *group = json_object_get(doc, s_groups[g]);
        if (!json_is_object(group))
            return s_fail(err, errlen, "%s: must be an object", s_groups[g]);
        const char *keys[8];
        size_t n = 0;
        for (size_t i = 0; i < S_FIELD_COUNT; i++)
            if (s_fields[i].group && strcmp(s_fields[i].group, s_groups[g]) == 0)
                keys[n++] = s_fields[i].key;
        if (s_check_keys(group, s_groups[g], keys, n, err, errlen))
            return -1;
    }

    serving_config_t cfg = {0};
    const json_t *type = json_object_get(doc, "default_type");
    if (!json_is_string(type))
        return s_fail(err, errlen, "default_type: must be a string");
    if (serving_type_parse(json_string_value(type), &cfg.default_type) != 0)
        return s_fail(err, errlen,
                      "default_type: unknown type \"%.40s\" (known: hybrid, collaborative, "
                      "content, popularity)",
                      json_string_value(type));
    for (size_t i = 0; i < S_FIELD_COUNT; i++)
        if (s_parse_field(doc, &s_fields[i], &cfg, err, errlen))
            return -1;
    if (s_parse_chain(json_object_get(doc, "fallback_chain"), &cfg, err, errlen) ||
        serving_config_validate(&cfg, err, errlen))
        return -1;
    *out = cfg;
    return 0;
}

int serving_config_parse_text(const char *text, size_t len, serving_config_t *out, char *err,
                              size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return s_fail(err, errlen, "document: invalid JSON: %s (line %d, column %d)", jerr.text,
                      jerr.line, jerr.column);
    int rc = serving_config_parse(doc, out, err, errlen);
    json_decref(doc);
    return rc;
}

//  ---- writing ---------------------------------------------------------------

json_t *serving_config_to_json(const serving_config_t *self)
{
    const char *type = serving_type_name(self->default_type);
    json_t *chain = json_array();
    if (!type || !chain)
        goto err;
    for (int i = 0; i < self->fallback_count && i < SERVING_CONFIG_CHAIN_MAX; i++) {
        const char *name = serving_fallback_name(self->fallback_chain[i]);
        if (!name || json_array_append_new(chain, json_string(name)) != 0)
            goto err;
    }
    //  json_pack keeps the keys in the order written here ("o" takes the
    //  chain's reference, also when it fails).
    return json_pack("{s:s, s:{s:f, s:f, s:f}, s:o, s:f, s:{s:i, s:i}, s:{s:i, s:i},"
                     " s:{s:f, s:f, s:f, s:f, s:f}}",
                     "default_type", type, "hybrid", "content_k", self->content_k, "content_floor",
                     self->content_floor, "ease_share", self->ease_share, "fallback_chain", chain,
                     "seen_completion", self->seen_completion, "limits", "default",
                     self->limit_default, "max", self->limit_max, "cache", "ttl_s",
                     self->cache_ttl_s, "l1_ttl_ms", self->cache_l1_ttl_ms, "event_weights",
                     "watch", self->weight_watch, "rating", self->weight_rating, "rating_neutral",
                     self->rating_neutral, "watchlist_add", self->weight_watchlist_add,
                     "watchlist_remove", self->weight_watchlist_remove);
err:
    json_decref(chain);
    return NULL;
}

char *serving_config_to_text(const serving_config_t *self)
{
    json_t *doc = serving_config_to_json(self);
    if (!doc)
        return NULL;
    char *text = json_dumps(doc, SERVING_CONFIG_DUMP_FLAGS);
    json_decref(doc);
    return text;
}

bool serving_config_equal(const serving_config_t *a, const serving_config_t *b)
{
    if (a->default_type != b->default_type || a->fallback_count != b->fallback_count ||
        a->content_k != b->content_k || a->content_floor != b->content_floor ||
        a->ease_share != b->ease_share || a->seen_completion != b->seen_completion ||
        a->limit_default != b->limit_default || a->limit_max != b->limit_max ||
        a->cache_ttl_s != b->cache_ttl_s || a->cache_l1_ttl_ms != b->cache_l1_ttl_ms ||
        a->weight_watch != b->weight_watch || a->weight_rating != b->weight_rating ||
        a->rating_neutral != b->rating_neutral ||
        a->weight_watchlist_add != b->weight_watchlist_add ||
        a->weight_watchlist_remove != b->weight_watchlist_remove)
        return false;
    for (int i = 0; i < a->fallback_count && i < SERVING_CONFIG_CHAIN_MAX; i++)
        if (a->fallback_chain[i] != b->fallback_chain[i])
            return false;
    return true;
}

hybrid_params_t serving_config_hybrid_params(const serving_config_t *self)
{
    return (hybrid_params_t){.content_k = (float)self->content_k,
                             .content_floor = (float)self->content_floor,
                             .ease_share = (float)self->ease_share};
}
