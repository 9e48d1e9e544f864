/*  ingestor.c: the event-ingestor actor: its context and its loop.

    Kafka (ingestor_consumer) -> validation (event_parse) -> a batch
    (ingestor_batch) -> one PostgreSQL transaction (ingestor_writer) ->
    offsets committed -> Redis invalidation and ZeroMQ notices
    (ingestor_notify). Offsets are committed only after the batch's
    transaction committed, so a crash anywhere before replays the batch, and
    the store ignores what it already has: exactly-once in effect.

    One loop, one thread. Each turn waits for Kafka at most 100 ms (less when
    a heartbeat, the batch deadline or a retry is due), takes a bounded burst
    of messages, serves the supervisor link, flushes when due and ticks the
    heartbeat. A write blocks the loop for as long as PostgreSQL takes; a
    reconnect attempt for at most libpq's connect timeout (2 s), inside the
    supervisor's heartbeat timeout.

    PostgreSQL failing: the batch is kept, the assigned partitions are
    paused (memory stays bounded: librdkafka's prefetch is capped too), the
    write is retried with back-off (ingestor_writer), and the partitions
    resume after the first success.

    Rebalance (eager "range" protocol, see ingestor_consumer.h): before
    partitions are given up, the batch is flushed and committed; if that
    fails, the batch is dropped. Nothing of it was committed, so the next
    owner reads it again.

    STOP or SIGTERM: flush (retrying for at most STOP_FLUSH_MS), commit,
    leave the group, exit 0. What could not be stored is not committed
    either, and is read again by whoever consumes next.
*/
#include "ingestor.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "actor_link.h"
#include "event.h"
#include "ingestor_batch.h"
#include "ingestor_consumer.h"
#include "ingestor_metrics.h"
#include "ingestor_notify.h"
#include "ingestor_writer.h"
#include "log.h"

#define MAX_WAIT_MS 100    //  longest the loop waits for Kafka
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
    ingestor_notify_t *notify;
    ingestor_consumer_t *consumer;
    ingestor_writer_t *writer;
    ingestor_batch_t *batch;
    bool broken; //  a message could not be kept: exit, to replay from Kafka

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

//  Writes the batch, commits its offsets, announces it. sync: wait for the
//  commit (before a rebalance or exit). Returns 0, or -1 if the write
//  failed (the batch is kept).
static int s_flush(self_t *self, int64_t now_ms, bool sync)
{
    size_t size = ingestor_batch_size(self->batch);
    store_result_t result;
    if (ingestor_writer_write(self->writer, self->batch, now_ms, &result) != 0)
        return -1;
    if (size == 0)
        return 0; //  the writer only checked PostgreSQL
    rd_kafka_topic_partition_list_t *offsets = ingestor_batch_offsets(self->batch);
    char err[256];
    if (!offsets)
        log_warn("no memory for the offsets of a stored batch: it will be read again");
    else if (ingestor_consumer_commit(self->consumer, offsets, sync, err, sizeof err) != 0)
        //  Stored but not committed: a replay, which the store absorbs.
        log_warn("offset commit failed after a stored batch: %s", err);
    if (offsets)
        rd_kafka_topic_partition_list_destroy(offsets);
    int64_t stored_ms = zclock_mono();
    size_t count = 0;
    const event_t *events = ingestor_batch_events(self->batch, &count);
    ingestor_notify_batch(self->notify, events, count, &self->rules, stored_ms);
    self->stats.stored += result.inserted;
    self->stats.duplicates += result.duplicates;
    self->stats.dead_lettered += result.dead_lettered;
    self->stats.batches++;
    log_debug("batch of %zu stored in %lld ms, announced in %lld ms: %zu new, %zu duplicates, "
              "%zu dead letters",
              size, (long long)(stored_ms - now_ms), (long long)(zclock_mono() - stored_ms),
              result.inserted, result.duplicates, result.dead_lettered);
    ingestor_batch_clear(self->batch);
    actor_link_set_queue_depth(self->link, 0);
    return 0;
}

//  The group takes our partitions: store what we have while we may still
//  commit it, else forget it (uncommitted, so it is read again).
static void s_on_revoke(void *arg)
{
    self_t *self = arg;
    size_t size = ingestor_batch_size(self->batch);
    if (size == 0)
        return;
    if (s_flush(self, zclock_mono(), true) == 0) {
        log_info("stored %zu events before giving up partitions", size);
        return;
    }
    log_warn("dropping %zu unstored events of revoked partitions: they were not committed, "
             "so their next reader gets them again",
             size);
    self->stats.dropped_on_revoke += size;
    ingestor_batch_clear(self->batch);
    actor_link_set_queue_depth(self->link, 0);
}

static void s_handle_message(self_t *self, const ingestor_message_t *m, int64_t now_ms)
{
    const rd_kafka_message_t *msg = m->msg;
    //  A null payload (a tombstone) is an empty, hence invalid, event.
    const void *payload = msg->payload ? msg->payload : "";
    event_t event;
    char reason[256];
    int rc;
    bool valid = event_parse(m->source, payload, msg->len, &self->rules, s_now_us(), &event, reason,
                             sizeof reason) == 0;
    if (valid)
        rc = ingestor_batch_add_event(self->batch, &event, m->topic, msg->partition, msg->offset,
                                      now_ms);
    else
        rc = ingestor_batch_add_dead(self->batch, m->topic, msg->partition, msg->offset, payload,
                                     msg->len, reason, now_ms);
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
        //  A full batch is written now, unless the writer is backing off.
        if (ingestor_batch_due_in(self->batch, now) == 0 && !ingestor_writer_failing(self->writer))
            break;
        if (now - start >= BURST_MS)
            break;
    }
    actor_link_set_queue_depth(self->link, ingestor_batch_size(self->batch));
}

static void s_maybe_flush(self_t *self)
{
    int64_t now = zclock_mono();
    size_t size = ingestor_batch_size(self->batch);
    bool paused = ingestor_consumer_paused(self->consumer);
    if (size == 0 && !paused)
        return;
    if (ingestor_writer_failing(self->writer)) {
        if (ingestor_writer_retry_in(self->writer, now) > 0)
            return;
    } else if (size && ingestor_batch_due_in(self->batch, now) > 0)
        return;
    if (s_flush(self, now, false) == 0) {
        if (paused && ingestor_consumer_resume(self->consumer) == 0)
            log_info("consumption resumed");
    } else if (!paused && ingestor_consumer_pause(self->consumer) == 0)
        log_warn("consumption paused: %zu events held until PostgreSQL takes them", size);
}

//  How long the next wait for Kafka may be.
static int s_wait_ms(self_t *self)
{
    int64_t now = zclock_mono();
    int64_t wait = MAX_WAIT_MS;
    long beat = actor_link_timeout_ms(self->link);
    if (beat < wait)
        wait = beat;
    int64_t due = ingestor_writer_failing(self->writer)
                      ? ingestor_writer_retry_in(self->writer, now)
                      : ingestor_batch_due_in(self->batch, now);
    if (due >= 0 && due < wait)
        wait = due;
    return wait > 0 ? (int)wait : 0;
}

static void s_summary(self_t *self, const char *what)
{
    ingestor_notify_stats_t n = ingestor_notify_stats(self->notify);
    log_info("%s: consumed %llu, stored %llu, duplicates %llu, dead-lettered %llu, batches %llu, "
             "dropped on revoke %llu, in batch %zu, partitions %d%s; notices %llu (dropped %llu), "
             "users invalidated %llu (failed %llu)",
             what, (unsigned long long)self->consumed, (unsigned long long)self->stats.stored,
             (unsigned long long)self->stats.duplicates,
             (unsigned long long)self->stats.dead_lettered, (unsigned long long)self->stats.batches,
             (unsigned long long)self->stats.dropped_on_revoke, ingestor_batch_size(self->batch),
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
    };
    self->stats.in_batch = ingestor_batch_size(self->batch);
    self->stats.paused = ingestor_consumer_paused(self->consumer);
    self->stats.postgres_failing = ingestor_writer_failing(self->writer);
    ingestor_notify_stats_t notify = ingestor_notify_stats(self->notify);
    char text[8192];
    if (ingestor_metrics_format(text, sizeof text, self->instance, topics, &self->stats, &notify) !=
            0 ||
        actor_link_set_metrics(self->link, text) != 0)
        log_warn("metrics text too long for a heartbeat");
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

//  STOP: the last write, retried for a bounded time, heartbeating meanwhile.
static void s_final_flush(self_t *self)
{
    int64_t deadline = zclock_mono() + STOP_FLUSH_MS;
    while (ingestor_batch_size(self->batch) > 0) {
        int64_t now = zclock_mono();
        if (s_flush(self, now, true) == 0 || now >= deadline)
            break;
        int64_t wait = ingestor_writer_retry_in(self->writer, now);
        if (wait > deadline - now)
            wait = deadline - now;
        s_serve_link(self, (int)(wait < MAX_WAIT_MS ? wait : MAX_WAIT_MS));
    }
    size_t left = ingestor_batch_size(self->batch);
    if (left) {
        log_warn("stopping with %zu unstored events: not committed, read again by the next "
                 "consumer",
                 left);
        //  Dropped here so that leaving the group does not try again.
        ingestor_batch_clear(self->batch);
    }
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
    self->batch =
        ingestor_batch_new((size_t)self->cfg->ingest_batch_max, self->cfg->ingest_batch_ms);
    self->writer = ingestor_writer_new(self->cfg, &self->rules);
    if (!self->batch || !self->writer) {
        log_error("out of memory");
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
    log_info("event-ingestor ready: batches of up to %d events or %d ms", cfg->ingest_batch_max,
             cfg->ingest_batch_ms);
    self.next_summary = zclock_mono() + SUMMARY_MS;
    while (!actor_link_stopping(self.link) && !self.broken) {
        s_consume(&self, s_wait_ms(&self));
        s_serve_link(&self, 0);
        s_maybe_flush(&self);
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
    log_info("event-ingestor stopping: %zu events to store first", ingestor_batch_size(self.batch));
    s_final_flush(&self);
    ingestor_consumer_close(self.consumer);
    s_summary(&self, "stopped");
    rc = 0;
done:
    //  Leaving the group runs the revoke hook, which still uses the rest.
    ingestor_consumer_destroy(&self.consumer);
    ingestor_notify_destroy(&self.notify);
    ingestor_writer_destroy(&self.writer);
    ingestor_batch_destroy(&self.batch);
    actor_link_destroy(&self.link);
    return rc;
}
