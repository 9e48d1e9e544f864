/*  test_ingestor_notify.c: what the event-ingestor says after a stored batch
    (actors/ingestor/ingestor_notify.c): PROTO_INTERACTION notices on a real
    PUB socket, read by a real SUB; cache keys deleted in the test Redis
    (RECSD_REDIS_URL); a Redis that is not there costs little and stops
    nothing. */
#include <criterion/criterion.h>
#include <czmq.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/ingestor/ingestor_notify.h"
#include "leak_check.h"
#include "proto/proto_zmq.h"
#include "redis_conn.h"
#include "tmp_dir.h"

static char s_dir[256];

static void s_fini(void)
{
    tmp_dir_remove(s_dir);
    zsys_shutdown();
    leak_check_fini();
}

TestSuite(ingestor_notify, .fini = s_fini);

static void s_config(config_t *cfg, const char *redis_url)
{
    memset(cfg, 0, sizeof *cfg);
    if (!s_dir[0])
        cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-notify"), 0);
    snprintf(cfg->runtime_dir, sizeof cfg->runtime_dir, "%s", s_dir);
    snprintf(cfg->redis_url, sizeof cfg->redis_url, "%s", redis_url);
}

static event_t s_event(event_kind_t kind, const char *user, const char *video)
{
    event_t ev = {.kind = kind, .occurred_us = 1714564800123456LL};
    snprintf(ev.user_id, sizeof ev.user_id, "%s", user);
    snprintf(ev.video_id, sizeof ev.video_id, "%s", video);
    if (kind == EVENT_WATCH) {
        ev.watched_duration = 30;
        ev.total_duration = 120;
    } else if (kind == EVENT_RATING)
        ev.rating = 4.0;
    return ev;
}

//  A port nothing listens on.
static int s_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static bool s_wait_readable(zsock_t *sock, int timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
    return zmq_poll(&item, 1, timeout_ms) == 1;
}

Test(ingestor_notify, publishes_one_interaction_per_event)
{
    config_t cfg;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s_closed_port());
    s_config(&cfg, url);
    char err[256];
    ingestor_notify_t *notify = ingestor_notify_new(&cfg, "event-ingestor.3", err, sizeof err);
    cr_assert_not_null(notify, "%s", err);
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/event-ingestor.3", s_dir);
    zsock_t *sub = zsock_new_sub(endpoint, "");
    cr_assert_not_null(sub);

    event_t events[4] = {s_event(EVENT_WATCH, "u1", "v1"), s_event(EVENT_RATING, "u2", "v2"),
                         s_event(EVENT_WATCHLIST_ADD, "u1", "v3"),
                         s_event(EVENT_WATCHLIST_REMOVE, "u3", "v4")};
    //  PUB/SUB joins late: probe until the subscriber hears, then drain.
    event_rules_t rules = event_rules_default();
    event_t probe = s_event(EVENT_WATCH, "probe", "probe");
    for (int attempt = 0; attempt < 50 && !s_wait_readable(sub, 0); attempt++) {
        ingestor_notify_batch(notify, &probe, NULL, 1, &rules, zclock_mono());
        s_wait_readable(sub, 100);
    }
    int probes = 0;
    while (s_wait_readable(sub, 200)) {
        proto_msg_t *drop = proto_recv(sub, NULL, err, sizeof err);
        cr_assert_not_null(drop, "%s", err);
        proto_msg_destroy(&drop);
        probes++;
    }
    cr_assert_gt(probes, 0, "the subscriber never heard a notice");
    //  Each notice carries its own event's trace context, or none.
    ingestor_traceparent_t traces[4] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", ""};
    ingestor_notify_batch(notify, events, traces, 4, &rules, zclock_mono());
    const char *kinds[] = {"watch", "rating", "watchlist_add", "watchlist_remove"};
    const double weights[] = {0.25, 0.8, 1.0, 0.0};
    for (int i = 0; i < 4; i++) {
        cr_assert(s_wait_readable(sub, 1000), "notice %d missing", i);
        proto_msg_t *msg = proto_recv(sub, NULL, err, sizeof err);
        cr_assert_not_null(msg, "%s", err);
        cr_assert_eq(msg->header.type, PROTO_INTERACTION);
        const proto_interaction_t *in = &msg->body.interaction;
        cr_assert_str_eq(in->user_id, events[i].user_id);
        cr_assert_str_eq(in->video_id, events[i].video_id);
        cr_assert_str_eq(in->kind, kinds[i]);
        cr_assert_float_eq(in->weight, weights[i], 1e-9, "%s weight %f", kinds[i], in->weight);
        cr_assert_eq(in->occurred_ms, 1714564800123ULL);
        cr_assert_str_eq(msg->header.traceparent, traces[i]);
        proto_msg_destroy(&msg);
    }
    ingestor_notify_stats_t stats = ingestor_notify_stats(notify);
    cr_assert_eq(stats.publish_dropped, 0);
    cr_assert_geq(stats.published, 4 + (uint64_t)probes);
    //  Redis is not there: counted as failed, and it did not stop the notices.
    cr_assert_gt(stats.invalidate_failed, 0);
    cr_assert_eq(stats.invalidated, 0);
    zsock_destroy(&sub);
    ingestor_notify_destroy(&notify);
    cr_assert_null(notify);
    ingestor_notify_destroy(&notify);
}

Test(ingestor_notify, a_missing_redis_costs_little)
{
    config_t cfg;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", s_closed_port());
    s_config(&cfg, url);
    char err[256];
    ingestor_notify_t *notify = ingestor_notify_new(&cfg, "event-ingestor", err, sizeof err);
    cr_assert_not_null(notify, "%s", err);
    event_t ev = s_event(EVENT_WATCH, "u1", "v1");
    event_rules_t rules = event_rules_default();
    int64_t start = zclock_mono();
    //  After the first failure Redis is left alone for a back-off: 200
    //  batches do not make 200 connection attempts.
    for (int i = 0; i < 200; i++)
        ingestor_notify_batch(notify, &ev, NULL, 1, &rules, zclock_mono());
    cr_assert_lt(zclock_mono() - start, 1000, "batches were held up by a missing Redis");
    ingestor_notify_stats_t stats = ingestor_notify_stats(notify);
    cr_assert_eq(stats.invalidate_failed, 200);
    cr_assert_eq(stats.published, 200, "notices go out without subscribers too");
    ingestor_notify_destroy(&notify);
}

Test(ingestor_notify, deletes_the_cached_lists_of_the_batch_users)
{
    const char *url = getenv("RECSD_REDIS_URL");
    if (!url || !*url)
        cr_skip_test("RECSD_REDIS_URL not set (ops/test.sh starts Redis and sets it)");
    config_t cfg;
    s_config(&cfg, url);
    char err[256];
    redisContext *redis = redis_conn_open(url, 1000, err, sizeof err);
    cr_assert_not_null(redis, "%s", err);
    char users[3][32], other[32];
    for (int i = 0; i < 3; i++)
        snprintf(users[i], sizeof users[i], "notify-%d-u%d", (int)getpid(), i);
    snprintf(other, sizeof other, "notify-%d-other", (int)getpid());
    for (int i = 0; i < 3; i++)
        freeReplyObject(redisCommand(redis, "SET recsd:recs:%s cached EX 60", users[i]));
    freeReplyObject(redisCommand(redis, "SET recsd:recs:%s cached EX 60", other));

    ingestor_notify_t *notify = ingestor_notify_new(&cfg, "event-ingestor", err, sizeof err);
    cr_assert_not_null(notify, "%s", err);
    //  Five events of three users (one twice, out of order).
    event_t events[5] = {
        s_event(EVENT_WATCH, users[2], "v1"), s_event(EVENT_RATING, users[0], "v2"),
        s_event(EVENT_WATCH, users[2], "v3"), s_event(EVENT_WATCHLIST_ADD, users[1], "v4"),
        s_event(EVENT_WATCH, users[0], "v5")};
    event_rules_t rules = event_rules_default();
    ingestor_notify_batch(notify, events, NULL, 5, &rules, zclock_mono());
    ingestor_notify_stats_t stats = ingestor_notify_stats(notify);
    cr_assert_eq(stats.invalidated, 3, "one DEL per distinct user");
    cr_assert_eq(stats.invalidate_failed, 0);
    for (int i = 0; i < 3; i++) {
        redisReply *r = redisCommand(redis, "EXISTS recsd:recs:%s", users[i]);
        cr_assert(r && r->type == REDIS_REPLY_INTEGER);
        cr_assert_eq(r->integer, 0, "%s still cached", users[i]);
        freeReplyObject(r);
    }
    redisReply *r = redisCommand(redis, "EXISTS recsd:recs:%s", other);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1,
              "a user not in the batch keeps its list");
    freeReplyObject(r);
    freeReplyObject(redisCommand(redis, "DEL recsd:recs:%s", other));
    //  The connection is kept and its replies were all read: a second batch
    //  works the same.
    freeReplyObject(redisCommand(redis, "SET recsd:recs:%s cached EX 60", users[1]));
    ingestor_notify_batch(notify, &events[3], NULL, 1, &rules, zclock_mono());
    r = redisCommand(redis, "EXISTS recsd:recs:%s", users[1]);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    freeReplyObject(r);
    cr_assert_eq(ingestor_notify_stats(notify).invalidated, 4);
    ingestor_notify_destroy(&notify);
    redisFree(redis);
}
