/*  event_sender.c: fire-and-forget events to the publisher over PUSH/PULL
    (see event_sender.h). */
#include "event_sender.h"

#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct event_sender_t {
    zsock_t *push;
    uint64_t sent, dropped;
};

int event_sender_endpoint(const config_t *cfg, const char *instance, char *buf, size_t buflen)
{
    char name[64];
    int n = snprintf(name, sizeof name, "%s%s", instance, EVENT_SENDER_SUFFIX);
    if (n < 0 || (size_t)n >= sizeof name)
        return -1;
    return config_endpoint(cfg, name, buf, buflen);
}

event_sender_t *event_sender_new(const config_t *cfg, char *err, size_t errlen)
{
    event_sender_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->push = zsock_new(ZMQ_PUSH);
    if (!self->push) {
        snprintf(err, errlen, "cannot create the events PUSH socket: %s", zmq_strerror(errno));
        goto err;
    }
    //  Queue only towards a connected publisher, only a little, and never
    //  hold up the process's exit.
    zsock_set_immediate(self->push, 1);
    zsock_set_sndhwm(self->push, EVENT_SENDER_SNDHWM);
    zsock_set_linger(self->push, 0);
    int count = config_instances(cfg, "publisher");
    for (int i = 1; i <= count; i++) {
        char instance[48], endpoint[160];
        if (config_instance_name(cfg, "publisher", i, instance, sizeof instance) != 0 ||
            event_sender_endpoint(cfg, instance, endpoint, sizeof endpoint) != 0) {
            snprintf(err, errlen, "publisher events endpoint too long (RECSD_RUNTIME_DIR)");
            goto err;
        }
        if (zsock_connect(self->push, "%s", endpoint) != 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
            goto err;
        }
    }
    return self;
err:
    event_sender_destroy(&self);
    return NULL;
}

void event_sender_destroy(event_sender_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    event_sender_t *self = *self_p;
    zsock_destroy(&self->push);
    free(self);
    *self_p = NULL;
}

int event_sender_send(event_sender_t *self, const proto_event_t *event)
{
    char *data = NULL;
    size_t size;
    char err[128];
    if (proto_event_encode(event, &data, &size, err, sizeof err) != 0) {
        self->dropped++;
        return -1;
    }
    //  EAGAIN: no publisher connected, or its queue and ours are full.
    int rc = zmq_send(zsock_resolve(self->push), data, size, ZMQ_DONTWAIT);
    free(data);
    if (rc < 0) {
        self->dropped++;
        return -1;
    }
    self->sent++;
    return 0;
}

//  RFC 3339 UTC with milliseconds.
static void s_timestamp(uint64_t now_ms, char *buf, size_t buflen)
{
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now_ms % 1000));
}

//  The RecommendationsRefreshed payload, or NULL (out of memory, or a
//  string that is not UTF-8: jansson refuses it). Caller frees.
static char *s_refreshed_payload(const char *user_id, const proto_rec_item_t *items, size_t n,
                                 const char *model_id, uint64_t now_ms)
{
    char stamp[96]; //  room for any int the compiler can imagine in each field
    s_timestamp(now_ms, stamp, sizeof stamp);
    json_t *ids = json_array();
    json_t *doc = json_object();
    char *text = NULL;
    if (!ids || !doc)
        goto done;
    for (size_t i = 0; i < n && i < PROTO_MAX_ITEMS; i++)
        if (json_array_append_new(ids, json_string(items[i].video_id)) != 0)
            goto done;
    if (json_object_set_new(doc, "user_id", json_string(user_id)) != 0 ||
        json_object_set(doc, "recommendation_ids", ids) != 0 ||
        json_object_set_new(doc, "model_id",
                            model_id && *model_id ? json_string(model_id) : json_null()) != 0 ||
        json_object_set_new(doc, "timestamp", json_string(stamp)) != 0)
        goto done;
    text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
done:
    json_decref(ids);
    json_decref(doc);
    return text;
}

int event_sender_recommendations_refreshed(event_sender_t *self, const char *user_id,
                                           const proto_rec_item_t *items, size_t n,
                                           const char *model_id, uint64_t now_ms,
                                           const char *traceparent)
{
    proto_event_t *event = NULL;
    int rc = -1;
    char *payload = user_id ? s_refreshed_payload(user_id, items, n, model_id, now_ms) : NULL;
    if (!payload)
        goto done;
    char err[128];
    event = proto_event_new(EVENT_TOPIC_RECOMMENDATIONS_REFRESHED, user_id, payload,
                            strlen(payload), err, sizeof err);
    if (!event ||
        proto_event_add_header(event, "content-type", "application/json", err, sizeof err) != 0 ||
        proto_event_add_header(event, "event-type", "RecommendationsRefreshed", err, sizeof err) !=
            0 ||
        (traceparent && *traceparent &&
         proto_event_add_header(event, "traceparent", traceparent, err, sizeof err) != 0))
        goto done;
    rc = event_sender_send(self, event); //  counts itself
    proto_event_destroy(&event);
    free(payload);
    return rc;
done:
    self->dropped++;
    proto_event_destroy(&event);
    free(payload);
    return rc;
}

uint64_t event_sender_sent(const event_sender_t *self)
{
    return self->sent;
}

uint64_t event_sender_dropped(const event_sender_t *self)
{
    return self->dropped;
}
