/*  gateway_recs.c: the recommendations response body (see gateway_recs.h). */
#include "gateway_recs.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

char *gateway_recs_timestamp(uint64_t ms, char *buf, size_t buflen)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 && buflen)
        buf[0] = '\0';
    else
        snprintf(buf + n, buflen - n, ".%03uZ", (unsigned)(ms % 1000));
    return buf;
}

char *gateway_recs_render(const char *user_id, const gateway_recs_item_t *items, size_t count,
                          const char *source, const char *model_id, uint64_t generated_at_ms,
                          const char *request_id, size_t *len)
{
    char *text = NULL;
    char when[40];
    gateway_recs_timestamp(generated_at_ms, when, sizeof when);
    json_t *list = json_array();
    json_t *doc = NULL;
    if (!list)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        json_t *id = json_string(items[i].video_id);
        if (!id)
            continue; //  not UTF-8: skip the item rather than fail the answer
        //  JSON has no NaN or infinity; jansson would refuse the whole item.
        double score = isfinite(items[i].score) ? items[i].score : 0.0;
        json_t *item = json_pack("{s:o, s:f}", "video_id", id, "score", score);
        if (!item || json_array_append_new(list, item))
            goto done;
    }
    json_t *model = model_id && *model_id ? json_string(model_id) : json_null();
    doc = json_pack("{s:s, s:O, s:s, s:o?, s:s, s:s}", "user_id", user_id, "items", list, "source",
                    source, "model_id", model, "generated_at", when, "request_id", request_id);
    if (!doc)
        goto done;
    //  Scores are float32 in the ranker: 9 significant digits round-trip.
    text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (text && len)
        *len = strlen(text);
done:
    json_decref(doc);
    json_decref(list);
    return text;
}
