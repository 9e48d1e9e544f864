/*  gateway_recs.c: the recommendations query parameters and response body
    (see gateway_recs.h). */
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

int gateway_recs_type_parse(const char *text, char *out, size_t outlen, char *why, size_t whylen)
{
    if (!text) {
        snprintf(out, outlen, "%s", "");
        return 0;
    }
    //  proto's list is the one source of the valid names; "" is the
    //  ranker's default but not something a client may spell.
    if (!text[0] || !proto_recs_type_valid(text) || strlen(text) >= outlen) {
        snprintf(why, whylen, "type must be one of hybrid, collaborative, content, popularity");
        return -1;
    }
    snprintf(out, outlen, "%s", text);
    return 0;
}

int gateway_recs_exclude_parse(const char *text, proto_recs_req_t *req, char *why, size_t whylen)
{
    req->exclude_count = 0;
    if (!text || !text[0])
        return 0;
    const char *p = text;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (req->exclude_count == PROTO_EXCLUDE_MAX) {
            snprintf(why, whylen, "exclude lists at most %d video ids", PROTO_EXCLUDE_MAX);
            goto err;
        }
        if (n == 0 || n > PROTO_ID_MAX) {
            snprintf(why, whylen, "exclude: video id %u is %s", req->exclude_count + 1,
                     n == 0 ? "empty" : "longer than 64 bytes");
            goto err;
        }
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e) {
                snprintf(why, whylen,
                         "exclude: video id %u holds a byte that is not printable "
                         "ASCII",
                         req->exclude_count + 1);
                goto err;
            }
        memcpy(req->exclude[req->exclude_count], p, n);
        req->exclude[req->exclude_count][n] = '\0';
        req->exclude_count++;
        if (p[n] != ',')
            return 0;
        p += n + 1;
    }
err:
    req->exclude_count = 0;
    return -1;
}

int gateway_recs_explain_parse(const char *text, bool *out, char *why, size_t whylen)
{
    *out = false;
    if (!text)
        return 0;
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
        *out = true;
    else if (strcmp(text, "false") != 0 && strcmp(text, "0") != 0) {
        snprintf(why, whylen, "explain must be true, false, 1 or 0");
        return -1;
    }
    return 0;
}

bool gateway_recs_excluded(const proto_recs_req_t *req, const char *video_id)
{
    for (uint32_t i = 0; i < req->exclude_count && i < PROTO_EXCLUDE_MAX; i++)
        if (strcmp(req->exclude[i], video_id) == 0)
            return true;
    return false;
}

//  extended: add type, model_version and (with meta->explain) reasons.
static char *s_render(const char *user_id, const gateway_recs_item_t *items, size_t count,
                      const gateway_recs_meta_t *meta, bool extended, size_t *len)
{
    char *text = NULL;
    char when[40];
    gateway_recs_timestamp(meta->generated_at_ms, when, sizeof when);
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
        if (extended && meta->explain) {
            const char *r = items[i].reason;
            json_t *reason = r && *r ? json_string(r) : json_null();
            if (json_object_set_new(item, "reason", reason ? reason : json_null()) != 0)
                goto done;
        }
    }
    const char *model_id = meta->model_id;
    json_t *model = model_id && *model_id ? json_string(model_id) : json_null();
    doc = json_pack("{s:s, s:O, s:s, s:o?, s:s, s:s}", "user_id", user_id, "items", list, "source",
                    meta->source, "model_id", model, "generated_at", when, "request_id",
                    meta->request_id);
    if (!doc)
        goto done;
    if (extended) {
        json_t *type = meta->type && *meta->type ? json_string(meta->type) : json_null();
        json_t *version = meta->model_version > 0 ? json_integer(meta->model_version) : json_null();
        if (json_object_set_new(doc, "type", type) != 0 ||
            json_object_set_new(doc, "model_version", version) != 0)
            goto done;
        if (meta->experiment_id && *meta->experiment_id &&
            (json_object_set_new(doc, "experiment_id", json_string(meta->experiment_id)) != 0 ||
             json_object_set_new(doc, "variant", json_string(meta->variant ? meta->variant : "")) !=
                 0))
            goto done;
    }
    //  Scores are float32 in the ranker: 9 significant digits round-trip.
    text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (text && len)
        *len = strlen(text);
done:
    json_decref(doc);
    json_decref(list);
    return text;
}

char *gateway_recs_render_meta(const char *user_id, const gateway_recs_item_t *items, size_t count,
                               const gateway_recs_meta_t *meta, size_t *len)
{
    return s_render(user_id, items, count, meta, true, len);
}

char *gateway_recs_render(const char *user_id, const gateway_recs_item_t *items, size_t count,
                          const char *source, const char *model_id, uint64_t generated_at_ms,
                          const char *request_id, size_t *len)
{
    gateway_recs_meta_t meta = {.source = source,
                                .model_id = model_id,
                                .generated_at_ms = generated_at_ms,
                                .request_id = request_id};
    return s_render(user_id, items, count, &meta, false, len);
}
