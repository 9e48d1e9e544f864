/*  ingestor_notify.c: Redis invalidation and ZeroMQ interaction notices
    after a stored batch (see ingestor_notify.h). */
#include "ingestor_notify.h"

#include <czmq.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto/proto_zmq.h"
#include "redis_conn.h"

#define REDIS_BACKOFF_MIN_MS 1000
#define REDIS_BACKOFF_MAX_MS 10000
#define REDIS_KEY_PREFIX "recsd:recs:"

struct ingestor_notify_t {
    const config_t *cfg;
    zsock_t *pub;
    proto_msg_t *notice; //  reused for every event
    redisContext *redis; //  NULL until connected, and after a failure
    bool redis_failing;
    int64_t redis_backoff_ms;
    int64_t redis_retry_at;
    const char **users; //  scratch: distinct users of a batch
    size_t users_cap;
    bool publish_failing; //  for logging drops once per episode
    bool kind_warned;     //  a kind name too long for the notice, said once
    ingestor_notify_stats_t stats;
};

ingestor_notify_t *ingestor_notify_new(const config_t *cfg, const char *instance, char *err,
                                       size_t errlen)
{
    ingestor_notify_t *self = calloc(1, sizeof *self);
    char endpoint[160];
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->notice = proto_msg_new(PROTO_INTERACTION, NULL);
    if (!self->notice) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (config_endpoint(cfg, instance, endpoint, sizeof endpoint) != 0) {
        snprintf(err, errlen, "endpoint for %s does not fit", instance);
        goto err;
    }
    self->pub = zsock_new(ZMQ_PUB);
    if (!self->pub) {
        snprintf(err, errlen, "cannot create the PUB socket");
        goto err;
    }
    zsock_set_sndhwm(self->pub, INGESTOR_NOTIFY_SNDHWM);
    zsock_set_linger(self->pub, 0);
    //  A full subscriber queue makes send fail (counted) instead of
    //  dropping silently. PUB accepts the XPUB option.
    int nodrop = 1;
    if (zmq_setsockopt(zsock_resolve(self->pub), ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop) != 0)
        log_warn("ZMQ_XPUB_NODROP not accepted (%s): drops will not be counted",
                 zmq_strerror(errno));
    if (zsock_bind(self->pub, "%s", endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        goto err;
    }
    log_info("interaction notices on %s", endpoint);
    return self;
err:
    ingestor_notify_destroy(&self);
    return NULL;
}

void ingestor_notify_destroy(ingestor_notify_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestor_notify_t *self = *self_p;
    zsock_destroy(&self->pub);
    proto_msg_destroy(&self->notice);
    if (self->redis)
        redisFree(self->redis);
    free(self->users);
    free(self);
    *self_p = NULL;
}

static int s_compare_users(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

//  Fills self->users with the distinct users of events. Returns how many,
//  or 0 on allocation failure (logged).
static size_t s_distinct_users(ingestor_notify_t *self, const event_t *events, size_t count)
{
    if (count > self->users_cap) {
        const char **grown = realloc(self->users, count * sizeof *grown);
        if (!grown) {
            log_warn("out of memory listing the users of a batch");
            return 0;
        }
        self->users = grown;
        self->users_cap = count;
    }
    for (size_t i = 0; i < count; i++)
        self->users[i] = events[i].user_id;
    qsort(self->users, count, sizeof *self->users, s_compare_users);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++)
        if (distinct == 0 || strcmp(self->users[distinct - 1], self->users[i]) != 0)
            self->users[distinct++] = self->users[i];
    return distinct;
}

static void s_redis_failed(ingestor_notify_t *self, int64_t now_ms, const char *why)
{
    if (self->redis) {
        redisFree(self->redis);
        self->redis = NULL;
    }
    if (!self->redis_failing) {
        self->redis_failing = true;
        self->redis_backoff_ms = REDIS_BACKOFF_MIN_MS;
        log_warn("Redis cache invalidation failing (%s); ingestion goes on, cached lists "
                 "expire by TTL meanwhile",
                 why);
    } else {
        self->redis_backoff_ms *= 2;
        if (self->redis_backoff_ms > REDIS_BACKOFF_MAX_MS)
            self->redis_backoff_ms = REDIS_BACKOFF_MAX_MS;
    }
    self->redis_retry_at = now_ms + self->redis_backoff_ms;
}

//  DEL of every user's key in one pipeline. Returns 0, or -1 with why.
static int s_redis_delete(ingestor_notify_t *self, size_t users, char *why, size_t whylen)
{
    for (size_t i = 0; i < users; i++)
        if (redisAppendCommand(self->redis, "DEL " REDIS_KEY_PREFIX "%s", self->users[i]) !=
            REDIS_OK) {
            snprintf(why, whylen, "%s", self->redis->errstr);
            return -1;
        }
    //  Every reply must be read, or the next batch would read these.
    for (size_t i = 0; i < users; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(self->redis, (void **)&reply) != REDIS_OK || !reply) {
            snprintf(why, whylen, "%s", self->redis->errstr);
            return -1;
        }
        int bad = reply->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(why, whylen, "DEL: %.200s", reply->str);
        freeReplyObject(reply);
        if (bad)
            return -1;
    }
    return 0;
}

static void s_invalidate(ingestor_notify_t *self, const event_t *events, size_t count,
                         int64_t now_ms)
{
    size_t users = s_distinct_users(self, events, count);
    if (users == 0)
        return;
    char why[256];
    if (!self->redis) {
        if (self->redis_failing && now_ms < self->redis_retry_at) {
            self->stats.invalidate_failed += users;
            return;
        }
        self->redis =
            redis_conn_open(self->cfg->redis_url, INGESTOR_REDIS_TIMEOUT_MS, why, sizeof why);
        if (!self->redis) {
            s_redis_failed(self, now_ms, why);
            self->stats.invalidate_failed += users;
            return;
        }
    }
    if (s_redis_delete(self, users, why, sizeof why) != 0) {
        s_redis_failed(self, now_ms, why);
        self->stats.invalidate_failed += users;
        return;
    }
    if (self->redis_failing) {
        self->redis_failing = false;
        log_info("Redis cache invalidation works again");
    }
    self->stats.invalidated += users;
}

static void s_publish(ingestor_notify_t *self, const event_t *events,
                      const ingestor_traceparent_t *traceparents, size_t count,
                      const event_rules_t *rules)
{
    proto_interaction_t *in = &self->notice->body.interaction;
    uint64_t dropped = 0;
    int first_errno = 0;
    for (size_t i = 0; i < count; i++) {
        const event_t *ev = &events[i];
        const char *kind = event_kind_name(ev->kind);
        //  Fields are checked by event_parse; a name that does not fit the
        //  notice (proto's kind is PROTO_STATE_MAX bytes) is dropped, not
        //  truncated into another kind.
        if (!kind || strlen(kind) >= sizeof in->kind) {
            if (!self->kind_warned)
                log_warn("interaction kind %s does not fit proto_interaction_t.kind (%zu bytes): "
                         "such notices are dropped",
                         kind ? kind : "(unknown)", sizeof in->kind - 1);
            self->kind_warned = true;
            self->stats.publish_dropped++;
            continue;
        }
        proto_request_id(self->notice->header.request_id, sizeof self->notice->header.request_id);
        snprintf(self->notice->header.traceparent, sizeof self->notice->header.traceparent, "%s",
                 traceparents ? traceparents[i] : "");
        snprintf(in->user_id, sizeof in->user_id, "%s", ev->user_id);
        snprintf(in->video_id, sizeof in->video_id, "%s", ev->video_id);
        snprintf(in->kind, sizeof in->kind, "%s", kind);
        in->weight = event_weight(ev, rules);
        in->occurred_ms = ev->occurred_us > 0 ? (uint64_t)(ev->occurred_us / 1000) : 0;
        if (proto_send(self->pub, NULL, self->notice) != 0) {
            dropped++;
            first_errno = first_errno ? first_errno : errno;
        } else
            self->stats.published++;
    }
    self->stats.publish_dropped += dropped;
    if (dropped && !self->publish_failing)
        log_warn("%llu interaction notices dropped (%s); counting further drops quietly",
                 (unsigned long long)dropped, zmq_strerror(first_errno));
    else if (!dropped && self->publish_failing)
        log_info("interaction notices flow again");
    self->publish_failing = dropped != 0;
}

void ingestor_notify_batch(ingestor_notify_t *self, const event_t *events,
                           const ingestor_traceparent_t *traceparents, size_t count,
                           const event_rules_t *rules, int64_t now_ms)
{
    if (count == 0)
        return;
    s_invalidate(self, events, count, now_ms);
    s_publish(self, events, traceparents, count, rules);
}

ingestor_notify_stats_t ingestor_notify_stats(const ingestor_notify_t *self)
{
    return self->stats;
}
