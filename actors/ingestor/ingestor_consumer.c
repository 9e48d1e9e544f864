/*  ingestor_consumer.c: the librdkafka consumer-group member of the
    event-ingestor (see ingestor_consumer.h). */
#include "ingestor_consumer.h"

#include "kafka_security.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

//  Longest a "synchronous" commit may hold the actor's loop (see
//  ingestor_consumer_commit); well inside the heartbeat timeout.
#define SYNC_COMMIT_TIMEOUT_MS 1000

struct ingestor_consumer_t {
    const config_t *cfg;
    rd_kafka_t *rk;
    ingestor_revoke_fn *on_revoke;
    void *arg;
    bool paused;  //  wanted state, applied to every assignment
    bool closed;  //  left the group
    int assigned; //  partitions assigned now
    //  A copy of the assignment (NULL: none), for the lag gauge: reading
    //  it back from librdkafka (rd_kafka_assignment) waits for its thread.
    rd_kafka_topic_partition_list_t *assignment;
    int last_err; //  last consumer error logged at warn, to log repeats at debug
};

static int s_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                 size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka config %s=%s: %s", key, value, why);
        return -1;
    }
    return 0;
}

//  librdkafka's own log lines (syslog levels), from any of its threads:
//  log_write is one write(2) per line, so that is safe.
static void s_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk; //  one client per process: its name adds nothing
    log_level_t ours = level <= 3   ? LOG_LEVEL_ERROR
                       : level == 4 ? LOG_LEVEL_WARN
                       : level <= 6 ? LOG_LEVEL_INFO
                                    : LOG_LEVEL_DEBUG;
    log_write(ours, NULL, "kafka %s: %s", fac, buf);
}

static void s_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    //  Broker connection trouble is retried by librdkafka itself; only a
    //  fatal error is beyond repair (the supervisor restarts us).
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        log_error("kafka fatal error: %s", reason);
    else
        log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void s_committed(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        for (int i = 0; offsets && i < offsets->cnt; i++)
            if (offsets->elems[i].err)
                log_warn("offset commit %s[%d]@%lld failed: %s", offsets->elems[i].topic,
                         (int)offsets->elems[i].partition, (long long)offsets->elems[i].offset,
                         rd_kafka_err2str(offsets->elems[i].err));
        return;
    }
    //  Not fatal: the events are stored; whoever reads these partitions next
    //  replays them, and the store ignores what it has.
    log_warn("offset commit failed (%d partitions): %s", offsets ? offsets->cnt : 0,
             rd_kafka_err2str(err));
}

//  "topic[0,1,2] topic2[3]" into buf (truncated), for the rebalance log.
static void s_describe(const rd_kafka_topic_partition_list_t *parts, char *buf, size_t buflen)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; parts && i < parts->cnt && used + 1 < buflen; i++) {
        bool same = i > 0 && strcmp(parts->elems[i].topic, parts->elems[i - 1].topic) == 0;
        int n = same ? snprintf(buf + used, buflen - used, ",%d", (int)parts->elems[i].partition)
                     : snprintf(buf + used, buflen - used, "%s%s[%d", i ? "] " : "",
                                parts->elems[i].topic, (int)parts->elems[i].partition);
        if (n < 0)
            return;
        used += (size_t)n;
        if (used >= buflen)
            return;
    }
    if (parts && parts->cnt && used + 1 < buflen)
        snprintf(buf + used, buflen - used, "]");
}

static void s_apply_pause(ingestor_consumer_t *self, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t err = self->paused ? rd_kafka_pause_partitions(self->rk, parts)
                                           : rd_kafka_resume_partitions(self->rk, parts);
    if (err)
        log_warn("cannot %s %d partitions: %s", self->paused ? "pause" : "resume", parts->cnt,
                 rd_kafka_err2str(err));
}

static void s_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ingestor_consumer_t *self = opaque;
    char which[512];
    s_describe(parts, which, sizeof which);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_info("assigned %d partitions: %s", parts->cnt, which);
        rd_kafka_resp_err_t rc = rd_kafka_assign(rk, parts);
        if (rc) {
            log_error("cannot take the assignment: %s", rd_kafka_err2str(rc));
            return;
        }
        self->assigned = parts->cnt;
        if (self->assignment)
            rd_kafka_topic_partition_list_destroy(self->assignment);
        //  NULL on allocation failure: no lag reported, nothing else lost.
        self->assignment = rd_kafka_topic_partition_list_copy(parts);
        s_apply_pause(self, parts);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        log_info("revoking %d partitions%s: %s", parts->cnt,
                 rd_kafka_assignment_lost(rk) ? " (lost)" : "", which);
    else
        log_warn("rebalance error: %s; giving up the assignment", rd_kafka_err2str(err));
    //  Last moment to commit what is stored for these partitions.
    if (self->on_revoke && self->assigned)
        self->on_revoke(self->arg);
    rd_kafka_resp_err_t rc = rd_kafka_assign(rk, NULL);
    if (rc)
        log_warn("cannot give up the assignment: %s", rd_kafka_err2str(rc));
    self->assigned = 0;
    if (self->assignment)
        rd_kafka_topic_partition_list_destroy(self->assignment);
    self->assignment = NULL;
}

ingestor_consumer_t *ingestor_consumer_new(const config_t *cfg, const char *instance,
                                           ingestor_revoke_fn *on_revoke, void *arg, char *err,
                                           size_t errlen)
{
    ingestor_consumer_t *self = calloc(1, sizeof *self);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics = NULL;
    if (!self || !conf) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    self->cfg = cfg;
    self->on_revoke = on_revoke;
    self->arg = arg;
    char client_id[96];
    snprintf(client_id, sizeof client_id, "recsd-%s", instance);
    if (kafka_security_apply(conf, cfg, err, errlen) != 0 ||
        s_set(conf, "bootstrap.servers", cfg->kafka_brokers, err, errlen) ||
        s_set(conf, "group.id", cfg->kafka_group, err, errlen) ||
        s_set(conf, "client.id", client_id, err, errlen) ||
        //  Commits are ours, made after PostgreSQL committed.
        s_set(conf, "enable.auto.commit", "false", err, errlen) ||
        s_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
        s_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        s_set(conf, "partition.assignment.strategy", "range", err, errlen) ||
        //  A crashed ingestor's partitions move to the others within ~10 s
        //  (the default, 45 s, is a long time without ingestion).
        s_set(conf, "session.timeout.ms", "10000", err, errlen) ||
        s_set(conf, "heartbeat.interval.ms", "1000", err, errlen) ||
        //  Bounds what librdkafka prefetches per partition while we write
        //  or are paused (default 64 MB).
        s_set(conf, "queued.max.messages.kbytes", "16384", err, errlen) ||
        //  Freshness: a fetch that finds nothing comes back after 50 ms
        //  instead of 500, so an idle partition's next event is not held
        //  up by a long poll (the mock broker waits the full time).
        s_set(conf, "fetch.wait.max.ms", "50", err, errlen) ||
        s_set(conf, "enable.partition.eof", "false", err, errlen))
        goto err;
    rd_kafka_conf_set_opaque(conf, self);
    rd_kafka_conf_set_log_cb(conf, s_log);
    rd_kafka_conf_set_error_cb(conf, s_error);
    rd_kafka_conf_set_offset_commit_cb(conf, s_committed);
    rd_kafka_conf_set_rebalance_cb(conf, s_rebalance);
    char why[512];
    self->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!self->rk) {
        snprintf(err, errlen, "cannot create the Kafka consumer: %s", why);
        goto err;
    }
    conf = NULL; //  rd_kafka_new took it
    //  One queue for messages and group events: rd_kafka_consumer_poll
    //  serves the rebalance callback in our thread.
    rd_kafka_poll_set_consumer(self->rk);
    topics = rd_kafka_topic_partition_list_new(EVENT_SOURCE_COUNT);
    if (!topics) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    rd_kafka_topic_partition_list_add(topics, cfg->topic_watched, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, cfg->topic_rated, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, cfg->topic_watchlist, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, cfg->topic_video_upserted, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(self->rk, topics);
    if (rc) {
        snprintf(err, errlen, "cannot subscribe: %s", rd_kafka_err2str(rc));
        goto err;
    }
    rd_kafka_topic_partition_list_destroy(topics);
    log_info("kafka consumer in group %s on %s, %s, %s, %s (brokers %s)", cfg->kafka_group,
             cfg->topic_watched, cfg->topic_rated, cfg->topic_watchlist, cfg->topic_video_upserted,
             cfg->kafka_brokers);
    return self;
err:
    if (topics)
        rd_kafka_topic_partition_list_destroy(topics);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (self) {
        self->closed = true; //  never joined: nothing to leave
        ingestor_consumer_destroy(&self);
    }
    return NULL;
}

void ingestor_consumer_destroy(ingestor_consumer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestor_consumer_t *self = *self_p;
    if (self->rk) {
        if (!self->closed)
            ingestor_consumer_close(self);
        rd_kafka_destroy(self->rk);
    }
    if (self->assignment)
        rd_kafka_topic_partition_list_destroy(self->assignment);
    free(self);
    *self_p = NULL;
}

//  Maps a topic name to its source and the configuration's string.
static int s_source(const ingestor_consumer_t *self, const char *topic, event_source_t *source,
                    const char **name)
{
    const char *names[EVENT_SOURCE_COUNT] = {
        [EVENT_SOURCE_WATCHED] = self->cfg->topic_watched,
        [EVENT_SOURCE_RATED] = self->cfg->topic_rated,
        [EVENT_SOURCE_WATCHLIST] = self->cfg->topic_watchlist,
        [EVENT_SOURCE_VIDEO_UPSERTED] = self->cfg->topic_video_upserted,
    };
    for (int i = 0; i < EVENT_SOURCE_COUNT; i++)
        if (strcmp(topic, names[i]) == 0) {
            *source = (event_source_t)i;
            *name = names[i];
            return 0;
        }
    return -1;
}

int ingestor_consumer_poll(ingestor_consumer_t *self, int timeout_ms, ingestor_message_t *out)
{
    if (self->closed)
        return 0;
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(self->rk, timeout_ms);
    if (!msg)
        return 0;
    if (msg->err) {
        //  e.g. a subscribed topic that does not exist (yet): librdkafka
        //  keeps trying. Say it once at warn, repeats at debug.
        log_write(self->last_err == (int)msg->err ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, NULL,
                  "kafka consumer: %s%s%s", rd_kafka_message_errstr(msg), msg->rkt ? " on " : "",
                  msg->rkt ? rd_kafka_topic_name(msg->rkt) : "");
        self->last_err = (int)msg->err;
        rd_kafka_message_destroy(msg);
        return 0;
    }
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (s_source(self, topic, &out->source, &out->topic) != 0) {
        //  Cannot happen with our subscription; never guess a schema.
        log_warn("message from unexpected topic %s ignored", topic);
        rd_kafka_message_destroy(msg);
        return 0;
    }
    out->msg = msg;
    return 1;
}

void ingestor_consumer_release(ingestor_message_t *message)
{
    if (message && message->msg) {
        rd_kafka_message_destroy(message->msg);
        message->msg = NULL;
    }
}

int ingestor_consumer_commit(ingestor_consumer_t *self,
                             const rd_kafka_topic_partition_list_t *offsets, bool sync, char *err,
                             size_t errlen)
{
    if (self->closed) {
        snprintf(err, errlen, "consumer closed");
        return -1;
    }
    if (!sync) {
        rd_kafka_resp_err_t rc = rd_kafka_commit(self->rk, offsets, 1);
        if (rc && rc != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            snprintf(err, errlen, "%s", rd_kafka_err2str(rc));
            return -1;
        }
        return 0;
    }
    //  A synchronous rd_kafka_commit waits as long as the coordinator is
    //  unreachable, and this runs in the actor's loop (a rebalance, a stop):
    //  the supervisor would kill us for missed heartbeats. Wait for the
    //  result on a queue of our own, for a bounded time; an unconfirmed
    //  commit only means a replay, which the store absorbs.
    rd_kafka_queue_t *queue = rd_kafka_queue_new(self->rk);
    if (!queue) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rd_kafka_resp_err_t rc = rd_kafka_commit_queue(self->rk, offsets, queue, NULL, NULL);
    if (!rc) {
        rd_kafka_event_t *event = rd_kafka_queue_poll(queue, SYNC_COMMIT_TIMEOUT_MS);
        if (!event) {
            rd_kafka_queue_destroy(queue);
            snprintf(err, errlen, "commit not confirmed within %d ms", SYNC_COMMIT_TIMEOUT_MS);
            return -1;
        }
        rc = rd_kafka_event_error(event);
        rd_kafka_event_destroy(event);
    }
    rd_kafka_queue_destroy(queue);
    if (rc && rc != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        snprintf(err, errlen, "%s", rd_kafka_err2str(rc));
        return -1;
    }
    return 0;
}

static int s_pause_resume(ingestor_consumer_t *self, bool pause)
{
    self->paused = pause;
    if (self->closed)
        return 0;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_assignment(self->rk, &parts);
    if (rc) {
        log_warn("cannot read the assignment: %s", rd_kafka_err2str(rc));
        return -1;
    }
    rc = pause ? rd_kafka_pause_partitions(self->rk, parts)
               : rd_kafka_resume_partitions(self->rk, parts);
    int count = parts->cnt;
    rd_kafka_topic_partition_list_destroy(parts);
    if (rc) {
        log_warn("cannot %s %d partitions: %s", pause ? "pause" : "resume", count,
                 rd_kafka_err2str(rc));
        return -1;
    }
    return 0;
}

int ingestor_consumer_pause(ingestor_consumer_t *self)
{
    return s_pause_resume(self, true);
}

int ingestor_consumer_resume(ingestor_consumer_t *self)
{
    return s_pause_resume(self, false);
}

bool ingestor_consumer_paused(const ingestor_consumer_t *self)
{
    return self->paused;
}

int ingestor_consumer_assigned(const ingestor_consumer_t *self)
{
    return self->assigned;
}

int ingestor_consumer_close(ingestor_consumer_t *self)
{
    if (self->closed)
        return 0;
    //  The revoke hook runs inside, and may still commit: closed is set after.
    rd_kafka_resp_err_t rc = rd_kafka_consumer_close(self->rk);
    self->closed = true;
    self->assigned = 0;
    if (rc) {
        log_warn("leaving the consumer group: %s", rd_kafka_err2str(rc));
        return -1;
    }
    return 0;
}

//  Keeps the INGESTOR_LAG_MAX highest lags in stats->lag.
static void s_keep_highest(ingestor_stats_t *stats, const char *topic, int32_t partition,
                           int64_t lag)
{
    size_t at = stats->lag_count;
    if (at == INGESTOR_LAG_MAX) {
        at = 0;
        for (size_t i = 1; i < INGESTOR_LAG_MAX; i++)
            if (stats->lag[i].lag < stats->lag[at].lag)
                at = i;
        if (stats->lag[at].lag >= lag)
            return;
    } else
        stats->lag_count++;
    stats->lag[at] = (ingestor_lag_t){.topic = topic, .partition = partition, .lag = lag};
}

static int s_by_topic_partition(const void *a, const void *b)
{
    const ingestor_lag_t *x = a, *y = b;
    int by_topic = strcmp(x->topic, y->topic);
    if (by_topic)
        return by_topic;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

void ingestor_consumer_lag(ingestor_consumer_t *self, ingestor_stats_t *stats)
{
    stats->lag_count = 0;
    stats->partitions_assigned = self->closed ? 0 : self->assigned;
    if (self->closed || !self->assignment || self->assignment->cnt == 0)
        return;
    //  The positions overwrite the copy's offsets, which nothing else reads.
    rd_kafka_topic_partition_list_t *parts = self->assignment;
    rd_kafka_resp_err_t rc = rd_kafka_position(self->rk, parts);
    if (rc) {
        log_debug("cannot read the consumer positions: %s", rd_kafka_err2str(rc));
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t low = 0, high = 0;
        event_source_t source;
        const char *name;
        if (p->err || p->offset < 0 || s_source(self, p->topic, &source, &name) != 0)
            continue; //  nothing consumed since the assignment: position unknown
        if (rd_kafka_get_watermark_offsets(self->rk, p->topic, p->partition, &low, &high) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0)
            continue; //  no fetch response yet
        //  A position past a stale watermark is no lag at all.
        s_keep_highest(stats, name, p->partition, high > p->offset ? high - p->offset : 0);
    }
    qsort(stats->lag, stats->lag_count, sizeof stats->lag[0], s_by_topic_partition);
}
