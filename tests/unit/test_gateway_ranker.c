/*  test_gateway_ranker.c: the gateway's ranker client (gateway_ranker.c)
    against a real ROUTER on an ipc:// endpoint in a temp dir, speaking the
    real protocol, in the ways a ranker can behave: answer, answer late,
    answer with an error, send garbage, not be there at all, die holding a
    request. */
#include <criterion/criterion.h>
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/gateway/gateway_ranker.h"
#include "leak_check.h"
#include "proto/proto_zmq.h"

typedef enum {
    MODE_OK,
    MODE_WRONG_ID_FIRST,
    MODE_SILENT,
    MODE_DELAYED,
    MODE_RESULT,
    MODE_GARBAGE
} mode_t_;

static struct {
    char dir[64];
    char endpoint[128];
    zsock_t *router;
    pthread_t thread;
    atomic_int mode;
    atomic_bool stop;
    atomic_int requests;
    char last_request_id[PROTO_ID_MAX + 1];
    uint64_t last_deadline_ms;
    uint32_t last_limit;
    char last_type[PROTO_RECS_TYPE_MAX + 1];
    bool last_explain;
    uint32_t last_exclude;
} s_fake;

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_reply(zframe_t *identity, const proto_msg_t *req, const char *request_id)
{
    proto_msg_t *rep = proto_msg_new(PROTO_RECS_REP, request_id);
    proto_recs_rep_t *r = &rep->body.recs_rep;
    snprintf(r->user_id, sizeof r->user_id, "%s", req->body.recs_req.user_id);
    snprintf(r->source, sizeof r->source, "model");
    snprintf(r->model_id, sizeof r->model_id, "m-1");
    r->count = req->body.recs_req.limit;
    r->items = calloc(r->count, sizeof *r->items);
    for (uint32_t i = 0; i < r->count; i++) {
        snprintf(r->items[i].video_id, sizeof r->items[i].video_id, "v%u", i);
        r->items[i].score = 1.0 / (i + 1);
    }
    cr_assert_eq(proto_send(s_fake.router, identity, rep), 0);
    proto_msg_destroy(&rep);
}

static void *s_ranker(void *arg)
{
    (void)arg;
    zframe_t *held_identity = NULL; //  MODE_DELAYED: answer this one later
    proto_msg_t *held = NULL;
    uint64_t held_until = 0;
    while (!atomic_load(&s_fake.stop)) {
        zmq_pollitem_t item = {zsock_resolve(s_fake.router), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 5);
        if (held && s_mono_ms() >= held_until) {
            s_reply(held_identity, held, held->header.request_id);
            zframe_destroy(&held_identity);
            proto_msg_destroy(&held);
        }
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        zframe_t *identity = NULL;
        char err[256];
        proto_msg_t *req = proto_recv(s_fake.router, &identity, err, sizeof err);
        cr_assert_not_null(req, "ranker got a bad request: %s", err);
        cr_assert_eq(req->header.type, PROTO_RECS_REQ);
        snprintf(s_fake.last_request_id, sizeof s_fake.last_request_id, "%s",
                 req->header.request_id);
        s_fake.last_deadline_ms = req->header.deadline_ms;
        s_fake.last_limit = req->body.recs_req.limit;
        snprintf(s_fake.last_type, sizeof s_fake.last_type, "%s", req->body.recs_req.type);
        s_fake.last_explain = req->body.recs_req.explain;
        s_fake.last_exclude = req->body.recs_req.exclude_count;
        atomic_fetch_add(&s_fake.requests, 1);
        switch (atomic_load(&s_fake.mode)) {
        case MODE_OK:
            s_reply(identity, req, req->header.request_id);
            break;
        case MODE_WRONG_ID_FIRST:
            s_reply(identity, req, "someone-else");
            s_reply(identity, req, req->header.request_id);
            break;
        case MODE_SILENT:
            break;
        case MODE_DELAYED:
            if (!held) {
                held = req;
                req = NULL;
                held_identity = zframe_dup(identity);
                held_until = s_mono_ms() + 150;
            }
            break;
        case MODE_RESULT: {
            proto_msg_t *res = proto_msg_new(PROTO_RESULT, req->header.request_id);
            res->body.result.code = 503;
            snprintf(res->body.result.message, sizeof res->body.result.message, "no model");
            proto_send(s_fake.router, identity, res);
            proto_msg_destroy(&res);
            break;
        }
        case MODE_GARBAGE:
            zframe_send(&identity, s_fake.router, ZFRAME_MORE | ZFRAME_REUSE);
            zstr_send(s_fake.router, "this is not msgpack");
            break;
        }
        zframe_destroy(&identity);
        proto_msg_destroy(&req);
    }
    zframe_destroy(&held_identity);
    proto_msg_destroy(&held);
    return NULL;
}

static void s_setup(void)
{
    zsys_handler_set(NULL);
    snprintf(s_fake.dir, sizeof s_fake.dir, "/tmp/gwrank-XXXXXX");
    cr_assert_not_null(mkdtemp(s_fake.dir));
    snprintf(s_fake.endpoint, sizeof s_fake.endpoint, "ipc://%s/ranker", s_fake.dir);
    s_fake.router = zsock_new(ZMQ_ROUTER);
    cr_assert_eq(zsock_bind(s_fake.router, "%s", s_fake.endpoint), 0);
    atomic_store(&s_fake.mode, MODE_OK);
    atomic_store(&s_fake.stop, false);
    atomic_store(&s_fake.requests, 0);
    cr_assert_eq(pthread_create(&s_fake.thread, NULL, s_ranker, NULL), 0);
}

static void s_teardown(void)
{
    atomic_store(&s_fake.stop, true);
    pthread_join(s_fake.thread, NULL);
    zsock_destroy(&s_fake.router);
    char path[160];
    snprintf(path, sizeof path, "%s/ranker", s_fake.dir);
    unlink(path);
    rmdir(s_fake.dir);
    leak_check_fini();
}

TestSuite(gateway_ranker, .init = s_setup, .fini = s_teardown, .timeout = 30);

//  One pooled socket, so every call reuses it (and sees late replies).
static gateway_ranker_t *s_pool(void)
{
    char err[256];
    gateway_ranker_t *pool = gateway_ranker_new(s_fake.endpoint, 1, err, sizeof err);
    cr_assert_not_null(pool, "%s", err);
    //  Let the DEALER finish its handshake: with ZMQ_IMMEDIATE a send before
    //  that is refused, which is the "unavailable" case tested below.
    zclock_sleep(200);
    return pool;
}

Test(gateway_ranker, answer_within_deadline)
{
    gateway_ranker_t *pool = s_pool();
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    uint64_t before = proto_now_ms();
    gateway_ranker_outcome_t outcome =
        gateway_ranker_ask(pool, "req-ok-1", "42", 5, 1000, &reply, detail, sizeof detail);
    cr_assert_eq(outcome, GATEWAY_RANKER_OK, "%s: %s", gateway_ranker_outcome_name(outcome),
                 detail);
    cr_assert_str_eq(reply->header.request_id, "req-ok-1");
    cr_assert_eq(reply->body.recs_rep.count, 5);
    cr_assert_str_eq(reply->body.recs_rep.items[0].video_id, "v0");
    //  The envelope carried our id, limit and an absolute deadline.
    cr_assert_str_eq(s_fake.last_request_id, "req-ok-1");
    cr_assert_eq(s_fake.last_limit, 5);
    cr_assert_geq(s_fake.last_deadline_ms, before + 1000);
    cr_assert_leq(s_fake.last_deadline_ms, proto_now_ms() + 1000);
    proto_msg_destroy(&reply);
    gateway_ranker_destroy(&pool);
    cr_assert_null(pool);
    gateway_ranker_destroy(&pool);
}

Test(gateway_ranker, reply_for_another_request_is_ignored)
{
    gateway_ranker_t *pool = s_pool();
    atomic_store(&s_fake.mode, MODE_WRONG_ID_FIRST);
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    cr_assert_eq(gateway_ranker_ask(pool, "mine", "7", 2, 1000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_OK, "%s", detail);
    cr_assert_str_eq(reply->header.request_id, "mine");
    proto_msg_destroy(&reply);
    gateway_ranker_destroy(&pool);
}

Test(gateway_ranker, silent_ranker_times_out_at_the_deadline)
{
    gateway_ranker_t *pool = s_pool();
    atomic_store(&s_fake.mode, MODE_SILENT);
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    uint64_t start = s_mono_ms();
    cr_assert_eq(gateway_ranker_ask(pool, "slow", "7", 2, 60, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_TIMEOUT, "%s", detail);
    uint64_t took = s_mono_ms() - start;
    cr_assert_geq(took, 59);
    cr_assert_lt(took, 1000, "took %llu ms", (unsigned long long)took);
    cr_assert_null(reply);
    gateway_ranker_destroy(&pool);
}

Test(gateway_ranker, repeated_timeouts_open_the_circuit_for_a_while)
{
    gateway_ranker_t *pool = s_pool();
    atomic_store(&s_fake.mode, MODE_SILENT);
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    for (int i = 0; i < 5; i++)
        cr_assert_eq(gateway_ranker_ask(pool, "slow", "7", 2, 20, &reply, detail, sizeof detail),
                     GATEWAY_RANKER_TIMEOUT, "%s", detail);
    int asked = atomic_load(&s_fake.requests);
    uint64_t start = s_mono_ms();
    cr_assert_eq(gateway_ranker_ask(pool, "skip", "7", 2, 500, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_UNAVAILABLE, "%s", detail);
    cr_assert_lt(s_mono_ms() - start, 50, "an open circuit answers at once");
    cr_assert(strstr(detail, "skipped"), "%s", detail);
    cr_assert_eq(atomic_load(&s_fake.requests), asked, "the ranker was not asked");
    //  After the cool-down a healthy ranker is used again and closes it.
    atomic_store(&s_fake.mode, MODE_OK);
    usleep(1100 * 1000);
    cr_assert_eq(gateway_ranker_ask(pool, "back", "7", 2, 1000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_OK, "%s", detail);
    proto_msg_destroy(&reply);
    gateway_ranker_destroy(&pool);
}

Test(gateway_ranker, late_reply_is_dropped_by_the_next_call)
{
    gateway_ranker_t *pool = s_pool();
    atomic_store(&s_fake.mode, MODE_DELAYED); //  answers "first" after 150 ms
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    cr_assert_eq(gateway_ranker_ask(pool, "first", "7", 2, 50, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_TIMEOUT);
    zclock_sleep(250); //  the late answer is now queued on the pooled socket
    atomic_store(&s_fake.mode, MODE_OK);
    cr_assert_eq(gateway_ranker_ask(pool, "second", "7", 2, 1000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_OK, "%s", detail);
    cr_assert_str_eq(reply->header.request_id, "second");
    proto_msg_destroy(&reply);
    gateway_ranker_destroy(&pool);
}

Test(gateway_ranker, ranker_error_and_garbage_are_errors)
{
    gateway_ranker_t *pool = s_pool();
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    atomic_store(&s_fake.mode, MODE_RESULT);
    cr_assert_eq(gateway_ranker_ask(pool, "e1", "7", 2, 1000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_ERROR);
    cr_assert(strstr(detail, "no model"), "%s", detail);
    atomic_store(&s_fake.mode, MODE_GARBAGE);
    cr_assert_eq(gateway_ranker_ask(pool, "e2", "7", 2, 1000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_ERROR);
    cr_assert(strstr(detail, "malformed"), "%s", detail);
    cr_assert_null(reply);
    //  The socket is still good afterwards.
    atomic_store(&s_fake.mode, MODE_OK);
    cr_assert_eq(gateway_ranker_ask(pool, "e3", "7", 2, 1000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_OK, "%s", detail);
    proto_msg_destroy(&reply);
    gateway_ranker_destroy(&pool);
}

Test(gateway_ranker, no_ranker_fails_fast)
{
    char endpoint[160], err[256];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/nobody", s_fake.dir);
    gateway_ranker_t *pool = gateway_ranker_new(endpoint, 2, err, sizeof err);
    cr_assert_not_null(pool, "%s", err);
    zclock_sleep(50);
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    uint64_t start = s_mono_ms();
    cr_assert_eq(gateway_ranker_ask(pool, "x", "7", 2, 2000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_UNAVAILABLE, "%s", detail);
    cr_assert_lt(s_mono_ms() - start, 500, "not fast");
    gateway_ranker_destroy(&pool);
}

static void *s_caller(void *arg)
{
    gateway_ranker_t *pool = arg;
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf(id, sizeof id, "t%lx-%d", (unsigned long)pthread_self(), i);
        proto_msg_t *reply = NULL;
        char detail[256];
        gateway_ranker_outcome_t outcome =
            gateway_ranker_ask(pool, id, "u", 3, 2000, &reply, detail, sizeof detail);
        cr_assert_eq(outcome, GATEWAY_RANKER_OK, "%s", detail);
        cr_assert_str_eq(reply->header.request_id, id);
        proto_msg_destroy(&reply);
    }
    return NULL;
}

Test(gateway_ranker, many_threads_share_the_pool)
{
    //  Pool of 2 for 4 threads: the extra sockets are made on the spot and
    //  must still get their answers (a fresh socket waits for its handshake).
    char err[256];
    gateway_ranker_t *pool = gateway_ranker_new(s_fake.endpoint, 2, err, sizeof err);
    zclock_sleep(200);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, s_caller, pool);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    cr_assert_eq(atomic_load(&s_fake.requests), 800);
    gateway_ranker_destroy(&pool);
}

Test(gateway_ranker, warnings_are_rate_limited)
{
    gateway_ranker_t *pool = s_pool();
    uint64_t suppressed = 99;
    cr_assert(gateway_ranker_warn_due(pool, 1000, &suppressed));
    cr_assert_eq(suppressed, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_not(gateway_ranker_warn_due(pool, 1000, &suppressed));
    zclock_sleep(120);
    cr_assert(gateway_ranker_warn_due(pool, 100, &suppressed));
    cr_assert_eq(suppressed, 5);
    gateway_ranker_destroy(&pool);
}

//  A ranker that takes one request and dies with it (closes its socket
//  without answering), as a killed ranker process does.
typedef struct {
    zsock_t *router;
    atomic_int got;
} s_doomed_t;

static void *s_doomed_ranker(void *arg)
{
    s_doomed_t *d = arg;
    uint64_t until = s_mono_ms() + 5000;
    while (s_mono_ms() < until) {
        zmq_pollitem_t item = {zsock_resolve(d->router), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 10) <= 0)
            continue;
        zframe_t *identity = NULL;
        char err[256];
        proto_msg_t *req = proto_recv(d->router, &identity, err, sizeof err);
        zframe_destroy(&identity);
        proto_msg_destroy(&req);
        atomic_fetch_add(&d->got, 1);
        break;
    }
    zsock_destroy(&d->router);
    return NULL;
}

//  Two rankers behind one pool; one dies holding a request: the call is
//  re-sent to the live one and answered long before the deadline.
Test(gateway_ranker, a_dead_ranker_is_retried_on_a_live_one)
{
    char doomed_ep[160], both[400], err[256];
    snprintf(doomed_ep, sizeof doomed_ep, "ipc://%s/doomed", s_fake.dir);
    s_doomed_t d = {.router = zsock_new(ZMQ_ROUTER)};
    cr_assert_eq(zsock_bind(d.router, "%s", doomed_ep), 0);
    atomic_init(&d.got, 0);
    snprintf(both, sizeof both, "%s,%s", s_fake.endpoint, doomed_ep);
    gateway_ranker_t *pool = gateway_ranker_new(both, 1, err, sizeof err);
    cr_assert_not_null(pool, "%s", err);
    zclock_sleep(200);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_doomed_ranker, &d), 0);
    //  Round robin: one of the first two calls lands on the doomed ranker.
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "dead-%d", i);
        proto_msg_t *reply = NULL;
        char detail[256] = "";
        uint64_t start = s_mono_ms();
        cr_assert_eq(gateway_ranker_ask(pool, id, "7", 2, 3000, &reply, detail, sizeof detail),
                     GATEWAY_RANKER_OK, "call %d: %s", i, detail);
        cr_assert_lt(s_mono_ms() - start, 1500, "call %d waited for the deadline", i);
        cr_assert_str_eq(reply->header.request_id, id);
        proto_msg_destroy(&reply);
    }
    pthread_join(thread, NULL);
    cr_assert_eq(atomic_load(&d.got), 1);
    cr_assert_eq(gateway_ranker_retries(pool), 1, "exactly the call the dead ranker held");
    gateway_ranker_destroy(&pool);
    char path[200];
    snprintf(path, sizeof path, "%s/doomed", s_fake.dir);
    unlink(path);
}

//  A ranker that is only slow keeps its connection: no retry, a timeout.
Test(gateway_ranker, a_late_ranker_is_not_retried)
{
    gateway_ranker_t *pool = s_pool();
    atomic_store(&s_fake.mode, MODE_SILENT);
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    cr_assert_eq(gateway_ranker_ask(pool, "late", "7", 2, 100, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_TIMEOUT, "%s", detail);
    cr_assert_eq(atomic_load(&s_fake.requests), 1, "sent once");
    cr_assert_eq(gateway_ranker_retries(pool), 0);
    gateway_ranker_destroy(&pool);
}

//  type, exclude and explain reach the ranker.
Test(gateway_ranker, query_carries_the_options)
{
    gateway_ranker_t *pool = s_pool();
    proto_msg_t *q = proto_msg_new(PROTO_RECS_REQ, "");
    proto_recs_req_t *r = &q->body.recs_req;
    snprintf(r->user_id, sizeof r->user_id, "7");
    r->limit = 4;
    snprintf(r->type, sizeof r->type, "content");
    r->explain = true;
    r->exclude_count = 2;
    snprintf(r->exclude[0], PROTO_ID_MAX + 1, "v1");
    snprintf(r->exclude[1], PROTO_ID_MAX + 1, "v9");
    proto_msg_t *reply = NULL;
    char detail[256] = "";
    cr_assert_eq(gateway_ranker_query(pool, "opts", r, 1000, &reply, detail, sizeof detail),
                 GATEWAY_RANKER_OK, "%s", detail);
    cr_assert_eq(s_fake.last_limit, 4);
    cr_assert_str_eq(s_fake.last_type, "content");
    cr_assert(s_fake.last_explain);
    cr_assert_eq(s_fake.last_exclude, 2);
    proto_msg_destroy(&reply);
    proto_msg_destroy(&q);
    gateway_ranker_destroy(&pool);
}
