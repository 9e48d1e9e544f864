/*  serving_config.h: the runtime recommendation configuration (issue 6,
    item 5): what GET/PUT /api/v1/recs/config show and replace, versioned
    in PostgreSQL by serving_config_store.h.

    A plain value type: copy it with `=`, nothing to free. The environment
    (config_t) gives the defaults, serving_config_from_config(); a stored
    version, once there is one, replaces them as a whole.

    The JSON document, every key required, nothing else allowed, keys in
    this order when written (serving_config_to_json):

      {"default_type": "hybrid",
       "hybrid": {"content_k": 5.0, "content_floor": 0.1, "ease_share": 0.5},
       "fallback_chain": ["previous", "cooccurrence", "segment_popularity",
                          "popularity"],
       "seen_completion": 0.8,
       "limits": {"default": 10, "max": 100},
       "cache": {"ttl_s": 3600, "l1_ttl_ms": 60000},
       "event_weights": {"watch": 1.0, "rating": 1.0, "rating_neutral": 2.5,
                         "watchlist_add": 0.5, "watchlist_remove": 0.5}}

    (the defaults of an empty environment).

      default_type      "hybrid" | "collaborative" | "content" | "popularity":
                        what a request without ?type= gets
      hybrid.*          the blend (hybrid.h): content_k number in [0, 1000],
                        content_floor and ease_share numbers in [0, 1]
      fallback_chain    what is tried, in order, when the requested model
                        cannot answer: "previous" (the type's previous model
                        version), "cooccurrence" (real-time co-occurrence
                        with the user's liked videos), "segment_popularity"
                        (the user's genre), "popularity"; each at most once,
                        and "popularity", the step that never fails, present
                        and last. The other personal model types are tried
                        after the requested one's, before the model-free
                        steps; a step left out is skipped.
      seen_completion   number in (0, 1]: a watch at least this complete
                        makes the video "seen" (never recommended)
      limits            integers, 1 <= default <= max <= 100: n when a request
                        gives none, and the largest n it may ask for
      cache.ttl_s       integer in [1, 86400]: Redis list lifetime
      cache.l1_ttl_ms   integer in [0, 60000]: in-process cache lifetime, 0 = off
      event_weights     numbers: watch, rating, watchlist_add,
                        watchlist_remove in [0, 100] (config.h says what
                        each multiplies); rating_neutral in [0, 1000], the
                        rating that says nothing (the range of
                        RECSD_RATING_NEUTRAL; serving_config_check_ratings
                        holds it to the configured rating scale)

    Numbers are JSON numbers (1 and 1.0 both do for a number field; an
    integer field refuses 1.5 and 1.0 alike); strings, booleans and null
    are refused wherever a number is expected. Numbers keep 15 significant
    digits (parse rounds to them), so a document written with
    SERVING_CONFIG_DUMP_FLAGS reads back equal and shows 0.1 as 0.1, not
    as 0.10000000000000001 (jansson's default of 17 digits).

    Errors name the field by its path, then say what is wrong:
      "hybrid.content_floor: must be within [0, 1]"
      "fallback_chain[2]: \"popularity\" is listed twice"
      "limits.default: must not exceed limits.max (50)"
      "cache.l2: unknown field"
      "document: invalid JSON: ... (line 1, column 7)"
    i.e. "<path>: <reason>", the path being everything before the first
    ": ", so the gateway can put it into a 400 problem+json as is (and
    split out the field if it wants). Only the first error is reported.
*/
#ifndef RECSD_SERVING_CONFIG_H
#define RECSD_SERVING_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "hybrid.h"

#define SERVING_CONFIG_CHAIN_MAX 4 //  fallback steps, at most (each once)
#define SERVING_CONFIG_LIMIT_MAX 100
#define SERVING_CONFIG_TTL_S_MAX 86400
#define SERVING_CONFIG_L1_TTL_MS_MAX 60000
#define SERVING_CONFIG_WEIGHT_MAX 100.0
#define SERVING_CONFIG_CONTENT_K_MAX 1000.0
#define SERVING_CONFIG_NEUTRAL_MAX 1000.0

//  json_dumps flags that write a document the way it reads (15 digits).
#define SERVING_CONFIG_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

typedef enum {
    SERVING_TYPE_HYBRID = 0,
    SERVING_TYPE_COLLABORATIVE,
    SERVING_TYPE_CONTENT,
    SERVING_TYPE_POPULARITY,
    SERVING_TYPE_COUNT
} serving_type_t;

typedef enum {
    SERVING_FALLBACK_PREVIOUS = 0,
    SERVING_FALLBACK_COOCCURRENCE,
    SERVING_FALLBACK_SEGMENT_POPULARITY,
    SERVING_FALLBACK_POPULARITY,
    SERVING_FALLBACK_COUNT
} serving_fallback_t;

typedef struct {
    serving_type_t default_type;
    //  The blend; doubles so that 0.1 stays 0.1 in the document
    //  (serving_config_hybrid_params gives hybrid.h's floats).
    double content_k;
    double content_floor;
    double ease_share;
    serving_fallback_t fallback_chain[SERVING_CONFIG_CHAIN_MAX];
    int fallback_count; //  1..SERVING_CONFIG_CHAIN_MAX
    double seen_completion;
    int limit_default;
    int limit_max;
    int cache_ttl_s;
    int cache_l1_ttl_ms;
    double weight_watch;
    double weight_rating;
    double rating_neutral;
    double weight_watchlist_add;
    double weight_watchlist_remove;
} serving_config_t;

//  "hybrid", "collaborative", "content", "popularity"; NULL if out of
//  range. Static strings.
const char *serving_type_name(serving_type_t type);

//  Looks name up among the type names. Returns 0 with *type set, or -1.
int serving_type_parse(const char *name, serving_type_t *type);

//  "previous", "cooccurrence", "segment_popularity", "popularity"; NULL if
//  out of range.
const char *serving_fallback_name(serving_fallback_t step);

//  Looks name up among the step names. Returns 0 with *step set, or -1.
int serving_fallback_parse(const char *name, serving_fallback_t *step);

//  The defaults: default_type hybrid, the blend of hybrid_params_default(),
//  fallback chain previous, cooccurrence, segment_popularity, popularity, limits 10 and
//  100, and from env: seen_completion, cache_ttl_s, cache_l1_ttl_ms and the
//  event weights. env values that the environment allows but the serving
//  configuration does not (RECSD_CACHE_TTL_S over a day,
//  RECSD_CACHE_L1_TTL_MS over a minute, RECSD_SEEN_COMPLETION 0) are
//  clamped into range (0 becomes 0.0001) with a warning logged, so the
//  result always validates. Cannot fail.
void serving_config_from_config(const config_t *env, serving_config_t *out);

//  Checks every rule above on a filled struct (NaN and infinities are
//  refused too). Returns 0, or -1 with "<path>: <reason>" in err.
int serving_config_validate(const serving_config_t *self, char *err, size_t errlen);

//  The cross-check parse cannot do: rating_neutral must lie within the
//  configured rating scale [rating_min, rating_max] (RECSD_RATING_MIN/MAX).
//  Returns 0, or -1 with "event_weights.rating_neutral: ..." in err.
int serving_config_check_ratings(const serving_config_t *self, double rating_min, double rating_max,
                                 char *err, size_t errlen);

//  Parses and validates a whole document (borrowed). Returns 0 with *out
//  filled, or -1 with "<path>: <reason>" in err and *out unchanged.
int serving_config_parse(const json_t *doc, serving_config_t *out, char *err, size_t errlen);

//  The same from JSON text of len bytes (not necessarily NUL-terminated);
//  duplicate keys are refused. Returns 0, or -1 as above.
int serving_config_parse_text(const char *text, size_t len, serving_config_t *out, char *err,
                              size_t errlen);

//  The document, keys in the order above. Returns a new reference the
//  caller owns (json_decref), or NULL if out of memory.
json_t *serving_config_to_json(const serving_config_t *self);

//  The document as compact text (SERVING_CONFIG_DUMP_FLAGS). Returns a
//  string the caller owns (free), or NULL if out of memory.
char *serving_config_to_text(const serving_config_t *self);

//  True if a and b hold the same configuration (fields compared one by
//  one, so padding never matters). Cannot fail.
bool serving_config_equal(const serving_config_t *a, const serving_config_t *b);

//  The blend as hybrid.h takes it. Cannot fail.
hybrid_params_t serving_config_hybrid_params(const serving_config_t *self);

#endif
