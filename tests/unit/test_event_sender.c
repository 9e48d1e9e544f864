/*  test_event_sender.c: lib/event_sender.c against a real PULL socket on an
    ipc endpoint in a temp dir: the RecommendationsRefreshed message as the
    publisher decodes it, and drops (never blocking) with no publisher or a
    publisher that does not read. */
#include <criterion/criterion.h>
#include <czmq.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
    snprintf(s.dir, sizeof s.dir, "/tmp/evsend-XXXXXX");
    cr_assert_not_null(mkdtemp(s.dir));
    snprintf(s.cfg.runtime_dir, sizeof s.cfg.runtime_dir, "%s", s.dir);
    s.cfg.actor_count = 2;
    snprintf(s.cfg.actors[0], sizeof s.cfg.actors[0], "ranker");
    snprintf(s.cfg.actors[1], sizeof s.cfg.actors[1], "publisher");
    s.cfg.actor_instances[0] = s.cfg.actor_instances[1] = 1;
}

static void s_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s.dir);
    cr_assert_eq(system(cmd), 0);
    leak_check_fini();
}

TestSuite(event_sender, .init = s_setup, .fini = s_teardown);

static zsock_t *s_publisher(int rcvhwm)
{
    char endpoint[160];
    cr_assert_eq(event_sender_endpoint(&s.cfg, "publisher", endpoint, sizeof endpoint), 0);
    char want[160];
    snprintf(want, sizeof want, "ipc://%s/publisher-events", s.dir);
    cr_assert_str_eq(endpoint, want);
    zsock_t *pull = zsock_new(ZMQ_PULL);
    cr_assert_not_null(pull);
    zsock_set_rcvhwm(pull, rcvhwm);
    zsock_set_linger(pull, 0);
    cr_assert_geq(zsock_bind(pull, "%s", endpoint), 0);
    return pull;
}

static proto_rec_item_t s_items[3] = {
    {.video_id = "v10"}, {.video_id = "v2"}, {.video_id = "v\"3"}};

#define S_TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

//  Sends until one goes through (the connect completes asynchronously).
static void s_send_connected(event_sender_t *sender)
{
    for (int i = 0; i < 200; i++) {
        if (event_sender_recommendations_refreshed(sender, "user-7", s_items, 3, "als-42",
                                                   1796093438123u, S_TRACEPARENT) == 0)
            return;
        zclock_sleep(10);
    }
    cr_assert_fail("the sender never reached the publisher");
}

Test(event_sender, recommendations_refreshed_as_documented)
{
    zsock_t *pull = s_publisher(1000);
    char err[256];
    event_sender_t *sender = event_sender_new(&s.cfg, err, sizeof err);
    cr_assert_not_null(sender, "%s", err);
    s_send_connected(sender);
    uint64_t dropped = event_sender_dropped(sender);
    cr_assert_eq(event_sender_sent(sender), 1);

    zsock_set_rcvtimeo(pull, 2000);
    zmsg_t *msg = zmsg_recv(pull);
    cr_assert_not_null(msg);
    cr_assert_eq(zmsg_size(msg), 1, "one frame");
    zframe_t *frame = zmsg_first(msg);
    proto_event_t *ev = proto_event_decode(zframe_data(frame), zframe_size(frame), err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    cr_assert_str_eq(proto_event_topic(ev), "recommendation-service.recommendations-refreshed");
    cr_assert_str_eq(proto_event_key(ev), "user-7");
    cr_assert_eq(proto_event_header_count(ev), 3);
    const char *name, *value;
    cr_assert_eq(proto_event_header(ev, 0, &name, &value), 0);
    cr_assert_str_eq(name, "content-type");
    cr_assert_str_eq(value, "application/json");
    cr_assert_eq(proto_event_header(ev, 1, &name, &value), 0);
    cr_assert_str_eq(name, "event-type");
    cr_assert_str_eq(value, "RecommendationsRefreshed");
    cr_assert_eq(proto_event_header(ev, 2, &name, &value), 0);
    cr_assert_str_eq(name, "traceparent");
    cr_assert_str_eq(value, S_TRACEPARENT);

    json_error_t jerr;
    json_t *doc = json_loads(proto_event_payload(ev), 0, &jerr);
    cr_assert_not_null(doc, "%s", jerr.text);
    cr_assert_eq(json_object_size(doc), 4, "%s", proto_event_payload(ev));
    cr_assert_str_eq(json_string_value(json_object_get(doc, "user_id")), "user-7");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "model_id")), "als-42");
    //  1796093438123 ms = 2026-12-01T02:50:38.123Z
    cr_assert_str_eq(json_string_value(json_object_get(doc, "timestamp")),
                     "2026-12-01T02:50:38.123Z");
    json_t *ids = json_object_get(doc, "recommendation_ids");
    cr_assert(json_is_array(ids));
    cr_assert_eq(json_array_size(ids), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(json_string_value(json_array_get(ids, i)), s_items[i].video_id);
    json_decref(doc);
    proto_event_destroy(&ev);
    zmsg_destroy(&msg);

    //  No model: model_id is null; an empty list is still an event.
    cr_assert_eq(event_sender_recommendations_refreshed(sender, "user-8", NULL, 0, "", 0, NULL), 0);
    msg = zmsg_recv(pull);
    cr_assert_not_null(msg);
    frame = zmsg_first(msg);
    ev = proto_event_decode(zframe_data(frame), zframe_size(frame), err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    doc = json_loads(proto_event_payload(ev), 0, &jerr);
    cr_assert_not_null(doc);
    cr_assert(json_is_null(json_object_get(doc, "model_id")));
    cr_assert_eq(json_array_size(json_object_get(doc, "recommendation_ids")), 0);
    cr_assert_eq(proto_event_header_count(ev), 2, "no trace context, no traceparent header");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "timestamp")),
                     "1970-01-01T00:00:00.000Z");
    json_decref(doc);
    proto_event_destroy(&ev);
    zmsg_destroy(&msg);
    cr_assert_eq(event_sender_dropped(sender), dropped, "nothing dropped once connected");

    //  A user id that is not UTF-8 cannot be JSON: dropped and counted.
    cr_assert_eq(
        event_sender_recommendations_refreshed(sender, "bad\xff", s_items, 3, "m", 0, NULL), -1);
    cr_assert_eq(event_sender_dropped(sender), dropped + 1);

    event_sender_destroy(&sender);
    cr_assert_null(sender);
    event_sender_destroy(&sender); //  idempotent
    zsock_destroy(&pull);
}

Test(event_sender, no_publisher_drops_without_blocking)
{
    char err[256];
    event_sender_t *sender = event_sender_new(&s.cfg, err, sizeof err); //  nobody bound
    cr_assert_not_null(sender, "%s", err);
    int64_t start = zclock_mono();
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(event_sender_recommendations_refreshed(sender, "u", s_items, 3, "m", 0, NULL),
                     -1);
    int64_t took = zclock_mono() - start;
    cr_assert_eq(event_sender_dropped(sender), 10000);
    cr_assert_eq(event_sender_sent(sender), 0);
    cr_assert_lt(took, 5000, "10000 drops took %lld ms", (long long)took);
    event_sender_destroy(&sender);

    //  A configuration without a publisher: nothing to connect to, all dropped.
    s.cfg.actor_count = 1;
    sender = event_sender_new(&s.cfg, err, sizeof err);
    cr_assert_not_null(sender, "%s", err);
    cr_assert_eq(event_sender_recommendations_refreshed(sender, "u", s_items, 3, "m", 0, NULL), -1);
    cr_assert_eq(event_sender_dropped(sender), 1);
    event_sender_destroy(&sender);
}

Test(event_sender, slow_publisher_bounded_queue_drops)
{
    zsock_t *pull = s_publisher(10); //  connected, but never reads
    char err[256];
    event_sender_t *sender = event_sender_new(&s.cfg, err, sizeof err);
    cr_assert_not_null(sender, "%s", err);
    s_send_connected(sender);
    uint64_t before = event_sender_sent(sender) + event_sender_dropped(sender);
    int64_t start = zclock_mono();
    for (int i = 0; i < 20000; i++)
        event_sender_recommendations_refreshed(sender, "u", s_items, 3, "m", 0, NULL);
    int64_t took = zclock_mono() - start;
    uint64_t sent = event_sender_sent(sender), dropped = event_sender_dropped(sender);
    cr_assert_eq(sent + dropped, before + 20000, "every attempt is counted once");
    //  Queued: at most both high-water marks plus ZeroMQ's batching slack.
    cr_assert_leq(sent, 2000, "sent %llu: the queue is bounded", (unsigned long long)sent);
    cr_assert_geq(dropped, 18000);
    cr_assert_lt(took, 5000, "20000 sends took %lld ms", (long long)took);
    event_sender_destroy(&sender);
    zsock_destroy(&pull);
}

Test(event_sender, several_publishers_all_connected)
{
    s.cfg.actor_instances[1] = 2;
    char endpoint[160];
    zsock_t *pulls[2];
    for (int i = 0; i < 2; i++) {
        char instance[32];
        cr_assert_eq(config_instance_name(&s.cfg, "publisher", i + 1, instance, sizeof instance),
                     0);
        cr_assert_eq(event_sender_endpoint(&s.cfg, instance, endpoint, sizeof endpoint), 0);
        pulls[i] = zsock_new(ZMQ_PULL);
        zsock_set_rcvtimeo(pulls[i], 2000);
        cr_assert_geq(zsock_bind(pulls[i], "%s", endpoint), 0);
    }
    cr_assert(strstr(endpoint, "/publisher.2-events"), "%s", endpoint);
    char err[256];
    event_sender_t *sender = event_sender_new(&s.cfg, err, sizeof err);
    cr_assert_not_null(sender, "%s", err);
    zclock_sleep(200); //  both connects complete
    for (int i = 0; i < 10; i++)
        cr_assert_eq(event_sender_recommendations_refreshed(sender, "u", s_items, 3, "m", 0, NULL),
                     0);
    //  PUSH deals round-robin: each publisher gets some.
    for (int i = 0; i < 2; i++) {
        zmsg_t *msg = zmsg_recv(pulls[i]);
        cr_assert_not_null(msg, "publisher %d got nothing", i + 1);
        zmsg_destroy(&msg);
        zsock_destroy(&pulls[i]);
    }
    event_sender_destroy(&sender);
}
