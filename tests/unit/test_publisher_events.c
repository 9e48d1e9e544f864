/*  test_publisher_events.c: the publisher's bounded in-memory event queue
    (actors/publisher/publisher_events.c): events pushed by a real
    event_sender over ipc, queued, produced through the real producer to a
    librdkafka mock cluster, counted; malformed and overflowing ones
    dropped and counted. */
#include <criterion/criterion.h>
#include <czmq.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>

#include "actors/publisher/publisher_events.h"
#include "config.h"
#include "event_sender.h"
#include "leak_check.h"

static struct {
    config_t cfg;
    char dir[64];
} s;

static void s_setup(void)
{
    zsys_handler_set(NULL);
    char err[512];
    cr_assert_eq(config_load(&s.cfg, err, sizeof err), 0, "%s", err);
    snprintf(s.dir, sizeof s.dir, "/tmp/pubev-XXXXXX");
    cr_assert_not_null(mkdtemp(s.dir));
    snprintf(s.cfg.runtime_dir, sizeof s.cfg.runtime_dir, "%s", s.dir);
    s.cfg.actor_count = 1;
    snprintf(s.cfg.actors[0], sizeof s.cfg.actors[0], "publisher");
    s.cfg.actor_instances[0] = 1;
}

static void s_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s.dir);
    cr_assert_eq(system(cmd), 0);
    leak_check_fini();
}

TestSuite(publisher_events, .init = s_setup, .fini = s_teardown);

static proto_rec_item_t s_items[2] = {{.video_id = "v1"}, {.video_id = "v2"}};

//  Receives until `want` messages were read or 3 s passed.
static void s_receive(publisher_events_t *events, uint64_t want)
{
    int64_t deadline = zclock_mono() + 3000;
    while (publisher_events_stats(events).received < want && zclock_mono() < deadline) {
        zsock_t *sock = publisher_events_socket(events);
        zpoller_t *poller = zpoller_new(sock, NULL);
        zpoller_wait(poller, 50);
        zpoller_destroy(&poller);
        publisher_events_receive(events);
    }
    cr_assert_eq(publisher_events_stats(events).received, want);
}

static event_sender_t *s_sender(void)
{
    char err[256];
    event_sender_t *sender = event_sender_new(&s.cfg, err, sizeof err);
    cr_assert_not_null(sender, "%s", err);
    for (int i = 0; i < 200 && event_sender_sent(sender) == 0; i++) {
        if (event_sender_recommendations_refreshed(sender, "u0", s_items, 2, "m", 0, NULL) != 0)
            zclock_sleep(10);
    }
    cr_assert_eq(event_sender_sent(sender), 1, "the sender connected");
    return sender;
}

Test(publisher_events, queue_bounds_and_malformed)
{
    char err[256];
    publisher_events_t *events = publisher_events_new(&s.cfg, "publisher", 5, err, sizeof err);
    cr_assert_not_null(events, "%s", err);
    event_sender_t *sender = s_sender();
    //  Malformed: a frame that is not an event, and a multi-part message.
    zsock_t *raw = zsock_new(ZMQ_PUSH);
    char endpoint[160];
    cr_assert_eq(event_sender_endpoint(&s.cfg, "publisher", endpoint, sizeof endpoint), 0);
    cr_assert_eq(zsock_connect(raw, "%s", endpoint), 0);
    zstr_send(raw, "not msgpack");
    zstr_sendm(raw, "part 1");
    zstr_send(raw, "part 2");
    s_receive(events, 3);
    publisher_events_stats_t st = publisher_events_stats(events);
    cr_assert_eq(st.invalid, 2);
    cr_assert_eq(st.queued, 1);
    //  The FIFO holds 5: 4 more fit, the rest are dropped and counted.
    for (int i = 0; i < 10; i++)
        cr_assert_eq(event_sender_recommendations_refreshed(sender, "u", s_items, 2, "m", 0, NULL),
                     0);
    s_receive(events, 13);
    st = publisher_events_stats(events);
    cr_assert_eq(st.queued, 5);
    cr_assert_eq(st.dropped, 6);
    cr_assert_eq(st.invalid, 2);
    cr_assert_eq(st.produced + st.failed + st.inflight, 0);
    zsock_destroy(&raw);
    event_sender_destroy(&sender);
    publisher_events_destroy(&events); //  frees what is still queued
    cr_assert_null(events);
    publisher_events_destroy(&events);
}

typedef struct {
    publisher_events_t *events;
    int outbox_reports;
} s_ctx_t;

static void s_on_delivery(void *arg, uint64_t seq, rd_kafka_resp_err_t err)
{
    s_ctx_t *ctx = arg;
    if (seq & PUBLISHER_EVENT_SEQ_BIT)
        publisher_events_delivered(ctx->events, seq, err);
    else
        ctx->outbox_reports++;
}

Test(publisher_events, produced_to_kafka)
{
    //  A mock cluster owned by a throw-away client handle.
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof errstr),
                 RD_KAFKA_CONF_OK, "%s", errstr);
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    cr_assert_not_null(mock_rk, "%s", errstr);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(mock_rk);
    cr_assert_not_null(mc);
    cr_assert_eq(rd_kafka_mock_topic_create(mc, EVENT_TOPIC_RECOMMENDATIONS_REFRESHED, 2, 1),
                 RD_KAFKA_RESP_ERR_NO_ERROR);

    char err[256];
    s_ctx_t ctx = {0};
    ctx.events = publisher_events_new(&s.cfg, "publisher", 0, err, sizeof err);
    cr_assert_not_null(ctx.events, "%s", err);
    publisher_producer_t *producer = publisher_producer_new(
        rd_kafka_mock_cluster_bootstraps(mc), NULL, s_on_delivery, &ctx, err, sizeof err);
    cr_assert_not_null(producer, "%s", err);
    event_sender_t *sender = s_sender();
    for (int i = 0; i < 99; i++)
        cr_assert_eq(event_sender_recommendations_refreshed(sender, "u", s_items, 2, "m", 0, NULL),
                     0);
    s_receive(ctx.events, 100);
    cr_assert_eq(publisher_events_produce(ctx.events, producer, NULL), 100);
    int64_t deadline = zclock_mono() + 10000;
    while (publisher_events_stats(ctx.events).produced < 100 && zclock_mono() < deadline) {
        zclock_sleep(10);
        publisher_producer_poll(producer);
    }
    publisher_events_stats_t st = publisher_events_stats(ctx.events);
    cr_assert_eq(st.produced, 100, "produced %llu, failed %llu", (unsigned long long)st.produced,
                 (unsigned long long)st.failed);
    cr_assert_eq(st.inflight + st.queued + st.failed + st.dropped + st.invalid, 0);
    cr_assert_eq(ctx.outbox_reports, 0, "event reports are told from outbox reports");

    //  An event for a topic the cluster does not have fails, is counted,
    //  and is not retried.
    proto_event_t *ev = proto_event_new("no-such-topic", NULL, "{}", 2, err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    rd_kafka_mock_topic_set_error(mc, "no-such-topic",
                                  RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    cr_assert_eq(event_sender_send(sender, ev), 0);
    proto_event_destroy(&ev);
    s_receive(ctx.events, 101);
    publisher_events_produce(ctx.events, producer, NULL);
    deadline = zclock_mono() + 10000;
    while (publisher_events_stats(ctx.events).failed < 1 && zclock_mono() < deadline) {
        zclock_sleep(10);
        publisher_producer_poll(producer);
    }
    st = publisher_events_stats(ctx.events);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.inflight, 0);

    event_sender_destroy(&sender);
    publisher_producer_destroy(&producer);
    publisher_events_destroy(&ctx.events);
    rd_kafka_destroy(mock_rk);
}
