/*  ingestor.c: the event-ingestor actor: its context and its loop.

    Kafka (ingestor_consumer) -> validation (event_parse, or
    event_parse_video for the catalogue's topic) -> a batch
    (ingestor_batch) -> one PostgreSQL transaction, on the writer thread
    (ingestor_pipeline, ingestor_writer) -> offsets committed -> Redis
    invalidation and ZeroMQ notices (ingestor_notify). Offsets are committed
    only after the batch's transaction committed, so a crash anywhere before
    replays the batch, and the store ignores what it already has:
    exactly-once in effect.

    Two batches: one in flight on the writer thread, one filling here. This
    thread keeps consuming and parsing while PostgreSQL writes; when the
    filling batch is due and the other is still in flight, it stops reading
    Kafka and waits (backpressure, bounded memory). When a write finishes,
    this thread commits that batch's offsets and announces it, and the
    filling batch goes next. Offsets are committed in batch order: the
    batch in flight always holds earlier offsets than the filling one.

    Each turn waits for Kafka at most 100 ms (5 ms while a write is in
    flight, less when a heartbeat or the batch deadline is due), takes a
    bounded burst of messages, serves the supervisor link, hands a due batch
    over and ticks the heartbeat. Nothing here waits for PostgreSQL, so
    heartbeats are never held up by a write.

    PostgreSQL failing: the writer thread keeps the batch and retries it
    with back-off (ingestor_writer); meanwhile the assigned partitions are
    paused (memory stays bounded: librdkafka's prefetch is capped too), and
    they resume after the first success.

    Rebalance (eager "range" protocol, see ingestor_consumer.h): before
    partitions are given up, the batch in flight and then the filling one
    are written and committed; a write that fails is given up, and so is
    everything after it. Nothing of it was committed, so the next owner
    reads it again.

    STOP or SIGTERM: the same, retrying for at most STOP_FLUSH_MS, then
    leave the group, exit 0. What could not be stored is not committed
    either, and is read again by whoever consumes next.
*/
#include "ingestor.h"

#include <czmq.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "actor_link.h"
#include "event.h"
#include "ingestor_batch.h"
#include "ingestor_consumer.h"
#include "ingestor_metrics.h"
#include "ingestor_notify.h"
#include "ingestor_pipeline.h"
#include "kafka_trace.h"
#include "log.h"
#include "trace.h"

#define MAX_WAIT_MS 100    //  longest the loop waits for Kafka
#define FLIGHT_WAIT_MS 5   //  ...while a write is in flight (to see it end)
#define DRAIN_SLICE_MS 50  //  heartbeat period while draining
#define BURST_MAX 10000    //  messages per turn, at most...
#define BURST_MS 50        //  ...and milliseconds per turn
#define STOP_FLUSH_MS 2000 //  how long a stop keeps retrying the last write
#define SUMMARY_MS 10000   //  period of the summary log line
#define METRICS_MS 1000    //  period of the metrics text update

typedef struct {
    const config_t *cfg;
    const char *instance; //  "event-ingestor" or "event-ingestor.N"
    event_rules_t rules;
    actor_link_t *link;
    tracer_t *tracer;
    ingestor_notify_t *notify;
    ingestor_consumer_t *consumer;
    ingestor_pipeline_t *pipeline;
    ingestor_batch_t *batches[2]; //  owned; batch and spare point into these
    ingestor_batch_t *batch;      //  filling
    ingestor_batch_t *spare;      //  empty; NULL while its twin is in flight
    bool broken;                  //  a message could not be kept: exit, to replay from Kafka

    //  Counters since start, for the summary line and /metrics.
    ingestor_stats_t stats;
    uint64_t consumed; //  all topics
    int64_t next_summary, next_metrics;
} self_t;

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t s_held(self_t *self)
{
    return ingestor_batch_size(self->batch) + ingestor_pipeline_in_flight_size(self->pipeline);
}

static void s_serve_link(self_t *self, int timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve(actor_link_socket(self->link)), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) < 0 && errno != EINTR)
        log_warn("poll failed: %s", zmq_strerror(errno));
    if (item.revents & ZMQ_POLLIN)
        actor_link_handle(self->link);
    actor_link_tick(self->link);
}

//  A batch is back from the writer thread. Written: commits its offsets
//  (sync: waits for the commit, before a rebalance or exit) and announces
//  it. Given up: forgets it (uncommitted, so it is read again). Either
//  way it becomes the spare, or the filling batch if that one went to the
//  writer meanwhile. hand_on: a due filling batch goes to the writer before
//  the announcements, so that PostgreSQL does not wait for Redis. Returns
//  the entries given up (0 if written).
static size_t s_finish(self_t *self, ingestor_batch_t *batch, const ingestor_outcome_t *outcome,
                       bool sync, bool hand_on)
{
    size_t size = ingestor_batch_size(batch);
    size_t dropped = outcome->written ? 0 : size;
    if (outcome->written && size > 0) {
        rd_kafka_topic_partition_list_t *offsets = ingestor_batch_offsets(batch);
        char err[256];
        if (!offsets)
            log_warn("no memory for the offsets of a stored batch: it will be read again");
        else if (ingestor_consumer_commit(self->consumer, offsets, sync, err, sizeof err) != 0)
            //  Stored but not committed: a replay, which the store absorbs.
            log_warn("offset commit failed after a stored batch: %s", err);
        if (offsets)
            rd_kafka_topic_partition_list_destroy(offsets);
    }
    //  Its offsets are later than those just committed: it may go now.
    if (hand_on && outcome->written && ingestor_batch_due_in(self->batch, zclock_mono()) == 0 &&
        ingestor_pipeline_submit(self->pipeline, self->batch) == 0)
        self->batch = NULL;
    if (outcome->written && size > 0) {
        int64_t start = zclock_mono();
        size_t count = 0, video_count = 0;
        const event_t *events = ingestor_batch_events(batch, &count);
        ingestor_batch_videos(batch, &video_count);
        //  Catalogue changes need no notice: the ranker and the gateway
        //  read the catalogue from PostgreSQL on their own refresh.
        ingestor_notify_batch(self->notify, events, ingestor_batch_traceparents(batch), count,
                              &self->rules, start);
        const store_result_t *result = &outcome->result;
        ingestor_metrics_observe_batch(&self->stats, events, count, video_count, result, size,
                                       (double)outcome->write_ms / 1e3);
        log_debug("batch of %zu stored in %lld ms, announced in %lld ms: %zu new, %zu duplicates, "
                  "%zu videos applied, %zu stale, %zu dead letters",
                  size, (long long)outcome->write_ms, (long long)(zclock_mono() - start),
                  result->inserted, result->duplicates, result->videos_applied,
                  result->videos_stale, result->dead_lettered);
    }
    ingestor_batch_clear(batch);
    if (self->batch)
        self->spare = batch;
    else
        self->batch = batch;
    actor_link_set_queue_depth(self->link, s_held(self));
    return dropped;
}

//  Takes the batch in flight back if its write is over. Returns the
//  entries given up (0 if written, or if nothing came back).
static size_t s_collect(self_t *self, bool sync, bool *came_back)
{
    ingestor_outcome_t outcome;
    ingestor_batch_t *batch = ingestor_pipeline_take(self->pipeline, &outcome);
    if (came_back)
        *came_back = batch != NULL;
    //  Draining (sync) hands batches on itself, one at a time.
    return batch ? s_finish(self, batch, &outcome, sync, !sync) : 0;
}

//  Hands the filling batch to the writer thread if it may go: nothing in
//  flight, and something to write.
static void s_submit(self_t *self)
{
    if (ingestor_pipeline_in_flight(self->pipeline) || ingestor_batch_size(self->batch) == 0)
        return;
    if (ingestor_pipeline_submit(self->pipeline, self->batch) != 0)
        return; //  cannot happen: nothing is in flight
    self->batch = self->spare;
    self->spare = NULL;
}

//  Writes everything held, the batch in flight first, committing
//  synchronously; serves the supervisor link meanwhile. A write that fails
//  (impatient) or is still failing at deadline (patient) is given up, and
//  then so is everything after it: committing a later batch would commit
//  past the lost one. Returns the entries given up.
static size_t s_drain(self_t *self, int64_t deadline, bool patient)
{
    size_t dropped = 0;
    for (;;) {
        bool came_back = false;
        dropped += s_collect(self, true, &came_back);
        if (came_back)
            continue;
        if (ingestor_pipeline_in_flight(self->pipeline)) {
            bool failing = ingestor_pipeline_failing(self->pipeline);
            if ((failing && !patient) || zclock_mono() >= deadline)
                ingestor_pipeline_cancel(self->pipeline);
            ingestor_pipeline_wait(self->pipeline, DRAIN_SLICE_MS);
            s_serve_link(self, 0);
            continue;
        }
        size_t size = ingestor_batch_size(self->batch);
        if (size == 0)
            break;
        if (dropped > 0) {
            dropped += size;
            ingestor_batch_clear(self->batch);
            break;
        }
        s_submit(self);
    }
    actor_link_set_queue_depth(self->link, s_held(self));
    return dropped;
}

//  The group takes our partitions: store what we have while we may still
//  commit it, else forget it (uncommitted, so it is read again).
static void s_on_revoke(void *arg)
{
    self_t *self = arg;
    size_t held = s_held(self);
    if (held == 0)
        return;
    size_t dropped = s_drain(self, INT64_MAX, false);
    if (dropped == 0) {
        log_info("stored %zu events before giving up partitions", held);
        return;
    }
    log_warn("dropping %zu unstored events of revoked partitions: they were not committed, "
             "so their next reader gets them again",
             dropped);
    self->stats.dropped_on_revoke += dropped;
}

//  A consumer span for the message, child of its producer's context when
//  it has one; NULL when tracing is off (headers are not even read then)
//  or not sampled. traceparent gets what the event's notice carries on:
//  this span's context, else the producer's, else "".
static trace_span_t *s_consume_span(self_t *self, const ingestor_message_t *m,
                                    char traceparent[TRACE_TRACEPARENT_LEN + 1])
{
    traceparent[0] = '\0';
    if (!tracer_enabled(self->tracer))
        return NULL;
    trace_ctx_t parent;
    rd_kafka_headers_t *hdrs = NULL;
    bool has_parent = rd_kafka_message_headers(m->msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                      kafka_trace_context(hdrs, &parent);
    trace_span_t *span = tracer_start(self->tracer, "kafka.consume", TRACE_KIND_CONSUMER,
                                      has_parent ? &parent : NULL);
    trace_span_set_str(span, "messaging.system", "kafka");
    trace_span_set_str(span, "messaging.operation.type", "process");
    trace_span_set_str(span, "messaging.destination.name", m->topic);
    trace_span_set_int(span, "messaging.destination.partition.id", m->msg->partition);
    trace_span_set_int(span, "messaging.kafka.offset", m->msg->offset);
    trace_traceparent(span, has_parent ? &parent : NULL, traceparent);
    return span;
}

static void s_handle_message(self_t *self, const ingestor_message_t *m, int64_t now_ms)
{
    const rd_kafka_message_t *msg = m->msg;
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    trace_span_t *span = s_consume_span(self, m, traceparent);
    //  A null payload (a tombstone) is an empty, hence invalid, event.
    const void *payload = msg->payload ? msg->payload : "";
    char reason[256];
    int rc;
    bool valid;
    if (m->source == EVENT_SOURCE_VIDEO_UPSERTED) {
        event_video_t video;
        valid = event_parse_video(payload, msg->len, &self->rules, s_now_us(), &video, reason,
                                  sizeof reason) == 0;
        if (valid)
            rc = ingestor_batch_add_video(self->batch, &video, m->topic, msg->partition,
                                          msg->offset, now_ms);
    } else {
        event_t event;
        valid = event_parse(m->source, payload, msg->len, &self->rules, s_now_us(), &event, reason,
                            sizeof reason) == 0;
        if (valid) {
            rc = ingestor_batch_add_event(self->batch, &event, m->topic, msg->partition,
                                          msg->offset, traceparent, now_ms);
            trace_span_set_str(span, "recsd.user_id", event.user_id);
            trace_span_set_str(span, "recsd.video_id", event.video_id);
            trace_span_set_str(span, "recsd.event.kind", event_kind_name(event.kind));
        }
    }
    trace_span_set_bool(span, "recsd.event.valid", valid);
    if (!valid) {
        trace_span_set_str(span, "recsd.dead_letter.reason", reason);
        rc = ingestor_batch_add_dead(self->batch, m->topic, msg->partition, msg->offset, payload,
                                     msg->len, reason, now_ms);
    }
    if (rc != 0)
        trace_span_set_error(span, "out of memory");
    trace_span_end(&span);
    if (rc != 0) {
        //  Skipping it would commit past it later: exit instead, and read
        //  it again after the restart.
        log_error("out of memory holding %s[%d]@%lld; exiting to replay it", m->topic,
                  (int)msg->partition, (long long)msg->offset);
        self->broken = true;
        return;
    }
    self->consumed++;
    self->stats.consumed[m->source]++;
    if (!valid)
        self->stats.rejected[m->source]++;
    actor_link_count_handled(self->link, 1);
}

//  Takes a burst of messages, waiting up to wait_ms for the first.
static void s_consume(self_t *self, int wait_ms)
{
    int64_t start = zclock_mono();
    for (int n = 0; n < BURST_MAX && !self->broken; n++) {
        ingestor_message_t m = {0};
        if (!ingestor_consumer_poll(self->consumer, n == 0 ? wait_ms : 0, &m))
            break;
        int64_t now = zclock_mono();
        s_handle_message(self, &m, now);
        ingestor_consumer_release(&m);
        //  A full batch goes now, or waits for the one in flight; unless
        //  PostgreSQL is failing (paused: what was fetched still comes).
        if (ingestor_batch_due_in(self->batch, now) == 0 &&
            !ingestor_pipeline_failing(self->pipeline))
            break;
        if (now - start >= BURST_MS)
            break;
    }
    actor_link_set_queue_depth(self->link, s_held(self));
}

//  Pauses consumption while PostgreSQL fails, resumes once it takes a
//  batch again.
static void s_backpressure(self_t *self)
{
    bool failing = ingestor_pipeline_failing(self->pipeline);
    bool paused = ingestor_consumer_paused(self->consumer);
    if (failing && !paused && ingestor_consumer_pause(self->consumer) == 0)
        log_warn("consumption paused: %zu events held until PostgreSQL takes them", s_held(self));
    else if (!failing && paused && ingestor_consumer_resume(self->consumer) == 0)
        log_info("consumption resumed");
}

//  How long the next wait for Kafka may be.
static int s_wait_ms(self_t *self)
{
    int64_t now = zclock_mono();
    int64_t wait = MAX_WAIT_MS;
    long beat = actor_link_timeout_ms(self->link);
    if (beat < wait)
        wait = beat;
    if (ingestor_pipeline_in_flight(self->pipeline)) {
        if (!ingestor_pipeline_failing(self->pipeline) && wait > FLIGHT_WAIT_MS)
            wait = FLIGHT_WAIT_MS;
    } else {
        int64_t due = ingestor_batch_due_in(self->batch, now);
        if (due >= 0 && due < wait)
            wait = due;
    }
    return wait > 0 ? (int)wait : 0;
}

//  One turn of the loop's data path.
static void s_turn(self_t *self)
{
    s_collect(self, false, NULL);
    s_backpressure(self);
    int64_t now = zclock_mono();
    if (ingestor_batch_due_in(self->batch, now) == 0)
        s_submit(self);
    //  Due but the writer is busy: wait for it rather than read more.
    if (ingestor_batch_due_in(self->batch, now) == 0 &&
        ingestor_pipeline_in_flight(self->pipeline) && !ingestor_pipeline_failing(self->pipeline)) {
        long beat = actor_link_timeout_ms(self->link);
        ingestor_pipeline_wait(self->pipeline, beat < MAX_WAIT_MS ? (int)beat : MAX_WAIT_MS);
        return;
    }
    s_consume(self, s_wait_ms(self));
}

static void s_summary(self_t *self, const char *what)
{
    ingestor_notify_stats_t n = ingestor_notify_stats(self->notify);
    log_info("%s: consumed %llu, stored %llu, duplicates %llu, videos applied %llu (stale %llu), "
             "dead-lettered %llu, batches %llu, "
             "dropped on revoke %llu, in batch %zu, partitions %d%s; notices %llu (dropped %llu), "
             "users invalidated %llu (failed %llu)",
             what, (unsigned long long)self->consumed,
             (unsigned long long)ingestor_metrics_total(self->stats.stored),
             (unsigned long long)ingestor_metrics_total(self->stats.duplicates),
             (unsigned long long)self->stats.videos_applied,
             (unsigned long long)self->stats.videos_stale,
             (unsigned long long)self->stats.dead_lettered, (unsigned long long)self->stats.batches,
             (unsigned long long)self->stats.dropped_on_revoke, s_held(self),
             ingestor_consumer_assigned(self->consumer),
             ingestor_consumer_paused(self->consumer) ? " (paused)" : "",
             (unsigned long long)n.published, (unsigned long long)n.publish_dropped,
             (unsigned long long)n.invalidated, (unsigned long long)n.invalidate_failed);
}

static void s_metrics(self_t *self)
{
    const char *topics[EVENT_SOURCE_COUNT] = {
        [EVENT_SOURCE_WATCHED] = self->cfg->topic_watched,
        [EVENT_SOURCE_RATED] = self->cfg->topic_rated,
        [EVENT_SOURCE_WATCHLIST] = self->cfg->topic_watchlist,
        [EVENT_SOURCE_VIDEO_UPSERTED] = self->cfg->topic_video_upserted,
    };
    self->stats.in_batch = s_held(self);
    self->stats.paused = ingestor_consumer_paused(self->consumer);
    self->stats.postgres_failing = ingestor_pipeline_failing(self->pipeline);
    ingestor_notify_stats_t notify = ingestor_notify_stats(self->notify);
    ingestor_consumer_lag(self->consumer, &self->stats);
    char text[PROTO_METRICS_MAX + 1];
    if (ingestor_metrics_format(text, sizeof text, self->instance, topics, &self->stats, &notify) !=
        0) {
        log_warn("metrics text too long for a heartbeat");
        return;
    }
    size_t len = strlen(text);
    if (tracer_metrics(self->tracer, self->instance, text, sizeof text, &len) != 0 ||
        actor_link_set_metrics(self->link, text) != 0)
        log_warn("metrics text too long for a heartbeat");
}

//  STOP: the last writes, retried for a bounded time, heartbeating
//  meanwhile.
static void s_final_flush(self_t *self)
{
    size_t left = s_drain(self, zclock_mono() + STOP_FLUSH_MS, true);
    if (left)
        log_warn("stopping with %zu unstored events: not committed, read again by the next "
                 "consumer",
                 left);
}

static int s_setup(self_t *self)
{
    char err[512];
    self->rules = event_rules_default();
    self->rules.rating_min = self->cfg->rating_min;
    self->rules.rating_max = self->cfg->rating_max;
    self->rules.max_future_s = self->cfg->event_max_future_s;
    self->link = actor_link_new(self->cfg, self->instance);
    if (!self->link)
        return -1;
    self->tracer = tracer_new(self->instance, err, sizeof err);
    if (!self->tracer) {
        log_error("tracing: %s", err);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        self->batches[i] =
            ingestor_batch_new((size_t)self->cfg->ingest_batch_max, self->cfg->ingest_batch_ms);
        if (!self->batches[i]) {
            log_error("out of memory");
            return -1;
        }
    }
    self->batch = self->batches[0];
    self->spare = self->batches[1];
    self->pipeline = ingestor_pipeline_new(self->cfg, &self->rules, err, sizeof err);
    if (!self->pipeline) {
        log_error("%s", err);
        return -1;
    }
    self->notify = ingestor_notify_new(self->cfg, self->instance, err, sizeof err);
    if (!self->notify) {
        log_error("%s", err);
        return -1;
    }
    self->consumer =
        ingestor_consumer_new(self->cfg, self->instance, s_on_revoke, self, err, sizeof err);
    if (!self->consumer) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

int ingestor_main(const config_t *cfg, const char *instance)
{
    self_t self = {.cfg = cfg, .instance = instance};
    int rc = 1;
    if (s_setup(&self) != 0)
        goto done;
    actor_link_set_ready(self.link);
    log_info("event-ingestor ready: batches of up to %d events or %d ms, one written while the "
             "next fills",
             cfg->ingest_batch_max, cfg->ingest_batch_ms);
    self.next_summary = zclock_mono() + SUMMARY_MS;
    while (!actor_link_stopping(self.link) && !self.broken) {
        s_turn(&self);
        s_serve_link(&self, 0);
        if (zclock_mono() >= self.next_metrics) {
            self.next_metrics = zclock_mono() + METRICS_MS;
            s_metrics(&self);
        }
        if (zclock_mono() >= self.next_summary) {
            self.next_summary += SUMMARY_MS;
            s_summary(&self, "ingestion");
        }
    }
    if (self.broken)
        goto done;
    log_info("event-ingestor stopping: %zu events to store first", s_held(&self));
    s_final_flush(&self);
    ingestor_consumer_close(self.consumer);
    s_summary(&self, "stopped");
    rc = 0;
done:
    //  Leaving the group runs the revoke hook, which still uses the rest.
    ingestor_consumer_destroy(&self.consumer);
    ingestor_notify_destroy(&self.notify);
    //  Joins the writer thread: no batch is borrowed after this.
    ingestor_pipeline_destroy(&self.pipeline);
    ingestor_batch_destroy(&self.batches[0]);
    ingestor_batch_destroy(&self.batches[1]);
    tracer_destroy(&self.tracer);
    actor_link_destroy(&self.link);
    return rc;
}
