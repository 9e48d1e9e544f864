/*  gateway_recs.c: the recommendations query parameters and response body
    (see gateway_recs.h). */
#include "gateway_recs.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

//  The part of a body every request for the same list shares: all but
//  user_id, source and request_id. extended: add type, model_version and
//  (with meta->explain) reasons.
static char *s_render_shared(const gateway_recs_item_t *items, size_t count,
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
    doc = json_pack("{s:O, s:o?, s:s}", "items", list, "model_id", model, "generated_at", when);
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

//  Appends s as a JSON string (quoted, escaped by jansson) at out + *at,
//  within outlen. Returns 0, or -1 (not UTF-8, out of memory, no room).
static int s_put_string(char *out, size_t outlen, size_t *at, const char *s)
{
    json_t *str = json_string(s);
    if (!str)
        return -1;
    size_t n = json_dumpb(str, out + *at, outlen - *at, JSON_ENCODE_ANY);
    json_decref(str);
    if (n == 0 || n > outlen - *at)
        return -1;
    *at += n;
    return 0;
}

char *gateway_recs_stamp(const char *shared, size_t shared_len, const char *user_id,
                         const char *source, const char *request_id, size_t *len)
{
    static const char lead[] = "{\"items\":";
    if (!shared || shared_len < sizeof lead || memcmp(shared, lead, sizeof lead - 1) != 0 ||
        shared[shared_len - 1] != '}' || !user_id || !source || !request_id)
        return NULL;
    //  Ids are bounded (PROTO_ID_MAX; request ids are shorter) and escaping
    //  at most sextuples a byte (\u00XX).
    char head[6 * (2 * PROTO_ID_MAX + PROTO_STATE_MAX + 3) + 64];
    size_t at = 0;
    if (strlen(user_id) > PROTO_ID_MAX || strlen(request_id) > PROTO_ID_MAX ||
        strlen(source) > PROTO_STATE_MAX)
        return NULL;
    memcpy(head, "{\"user_id\":", 11);
    at = 11;
    if (s_put_string(head, sizeof head, &at, user_id) != 0)
        return NULL;
    memcpy(head + at, ",\"source\":", 10);
    at += 10;
    if (s_put_string(head, sizeof head, &at, source) != 0)
        return NULL;
    memcpy(head + at, ",\"request_id\":", 14);
    at += 14;
    if (s_put_string(head, sizeof head, &at, request_id) != 0 || at + 1 > sizeof head)
        return NULL;
    head[at++] = ',';
    //  shared without its opening brace follows the head.
    size_t total = at + shared_len - 1;
    char *body = malloc(total + 1);
    if (!body)
        return NULL;
    memcpy(body, head, at);
    memcpy(body + at, shared + 1, shared_len - 1);
    body[total] = '\0';
    if (len)
        *len = total;
    return body;
}

//  Shared part plus this request's head: the body in one piece.
static char *s_render(const char *user_id, const gateway_recs_item_t *items, size_t count,
                      const gateway_recs_meta_t *meta, bool extended, size_t *len)
{
    size_t shared_len = 0;
    char *shared = s_render_shared(items, count, meta, extended, &shared_len);
    char *body = shared ? gateway_recs_stamp(shared, shared_len, user_id, meta->source,
                                             meta->request_id, len)
                        : NULL;
    free(shared);
    return body;
}

char *gateway_recs_render_shared(const gateway_recs_item_t *items, size_t count,
                                 const gateway_recs_meta_t *meta, size_t *len)
{
    return s_render_shared(items, count, meta, true, len);
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
