/*  test_proto.c: proto encode/decode/validate round trips and rejections.

    Valid messages are built with the public API; bad inputs are crafted
    with msgpack_packer directly, either from scratch or by unpacking a
    valid encoding into a msgpack_object tree, changing one thing and
    packing the tree again. Every rejection test also checks the reason, so
    a test cannot pass because the input was rejected for another cause.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leak_check.h"
#include "proto/proto.h"

TestSuite(proto, .fini = leak_check_fini);

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

//  --------------------------------------------------------------------------
//  Valid messages of every type

static void s_fill_row(proto_actor_status_t *row, int i)
{
    snprintf(row->name, sizeof row->name, "actor-%d", i);
    row->pid = i == 1 ? 0 : 1000 + i;
    snprintf(row->state, sizeof row->state, "%s", i == 1 ? "backoff" : "running");
    row->restarts = (uint32_t)i * 3;
    row->uptime_ms = i == 1 ? -1 : 123456789012LL;
    row->heartbeat_age_ms = i == 1 ? -1 : 250;
    row->rss_bytes = 1ull << 33;
    row->handled = UINT64_MAX;
    row->queue_depth = (uint64_t)i;
}

static proto_msg_t *s_valid(proto_type_t type)
{
    proto_msg_t *msg = proto_msg_new(type, NULL);
    cr_assert_not_null(msg);
    snprintf(msg->header.traceparent, sizeof msg->header.traceparent, "%s", TRACEPARENT);
    msg->header.deadline_ms = proto_now_ms() + 500;
    switch (type) {
    case PROTO_HEARTBEAT:
        snprintf(msg->body.heartbeat.name, sizeof msg->body.heartbeat.name, "ranker");
        msg->body.heartbeat.pid = 4242;
        snprintf(msg->body.heartbeat.state, sizeof msg->body.heartbeat.state, "ready");
        msg->body.heartbeat.handled = 5000000000ull;
        msg->body.heartbeat.queue_depth = 7;
        break;
    case PROTO_STATUS_REP:
        msg->body.status.draining = true;
        msg->body.status.uptime_ms = 86400000;
        msg->body.status.count = 3;
        msg->body.status.actors = calloc(3, sizeof(proto_actor_status_t));
        cr_assert_not_null(msg->body.status.actors);
        for (int i = 0; i < 3; i++)
            s_fill_row(&msg->body.status.actors[i], i);
        break;
    case PROTO_RESTART_REQ:
        snprintf(msg->body.restart.actor, sizeof msg->body.restart.actor, "trainer");
        break;
    case PROTO_LOG_LEVEL:
        snprintf(msg->body.log_level.level, sizeof msg->body.log_level.level, "debug");
        snprintf(msg->body.log_level.actor, sizeof msg->body.log_level.actor, "ranker.2");
        break;
    case PROTO_RESULT:
        msg->body.result.code = -22;
        snprintf(msg->body.result.message, sizeof msg->body.result.message,
                 "no such actor: \"x\" (try `recsd ctl status`)");
        break;
    case PROTO_RECS_REQ:
        snprintf(msg->body.recs_req.user_id, sizeof msg->body.recs_req.user_id, "user-42");
        msg->body.recs_req.limit = 20;
        snprintf(msg->body.recs_req.type, sizeof msg->body.recs_req.type, "content");
        msg->body.recs_req.explain = true;
        msg->body.recs_req.exclude_count = 2;
        snprintf(msg->body.recs_req.exclude[0], PROTO_ID_MAX + 1, "v7");
        snprintf(msg->body.recs_req.exclude[1], PROTO_ID_MAX + 1, "v8");
        snprintf(msg->body.recs_req.model_id, sizeof msg->body.recs_req.model_id, "pinned-7");
        msg->body.recs_req.has_blend = true;
        msg->body.recs_req.blend[0] = 5;
        msg->body.recs_req.blend[1] = 0.25;
        msg->body.recs_req.blend[2] = 0.5;
        break;
    case PROTO_RECS_REP:
        snprintf(msg->body.recs_rep.user_id, sizeof msg->body.recs_rep.user_id, "user-42");
        snprintf(msg->body.recs_rep.source, sizeof msg->body.recs_rep.source, "model");
        snprintf(msg->body.recs_rep.model_id, sizeof msg->body.recs_rep.model_id, "als-v3");
        snprintf(msg->body.recs_rep.type, sizeof msg->body.recs_rep.type, "collaborative");
        msg->body.recs_rep.model_version = 3;
        snprintf(msg->body.recs_rep.segment, sizeof msg->body.recs_rep.segment, "genre:Drama");
        msg->body.recs_rep.count = 3;
        msg->body.recs_rep.items = calloc(3, sizeof(proto_rec_item_t));
        cr_assert_not_null(msg->body.recs_rep.items);
        for (int i = 0; i < 3; i++) {
            snprintf(msg->body.recs_rep.items[i].video_id, PROTO_ID_MAX + 1, "v%d", i);
            msg->body.recs_rep.items[i].score = 0.9 - 0.45 * i; //  last one negative
            if (i < 2) //  the last one has no reason: a [video_id, score] pair
                snprintf(msg->body.recs_rep.items[i].reason, PROTO_ID_MAX + 1, "w%d", i);
        }
        break;
    default:
        break;
    }
    return msg;
}

static const proto_type_t s_all_types[] = {
    PROTO_HEARTBEAT,   PROTO_STOP,   PROTO_DRAIN,    PROTO_STATUS_REQ, PROTO_STATUS_REP,
    PROTO_RESTART_REQ, PROTO_RESULT, PROTO_RECS_REQ, PROTO_RECS_REP,   PROTO_LOG_LEVEL};
#define N_TYPES (sizeof s_all_types / sizeof s_all_types[0])

static void s_assert_same(const proto_msg_t *a, const proto_msg_t *b)
{
    cr_assert_eq(a->header.version, b->header.version);
    cr_assert_eq(a->header.type, b->header.type);
    cr_assert_str_eq(a->header.request_id, b->header.request_id);
    cr_assert_str_eq(a->header.traceparent, b->header.traceparent);
    cr_assert_eq(a->header.deadline_ms, b->header.deadline_ms);
    switch (a->header.type) {
    case PROTO_HEARTBEAT:
        cr_assert_str_eq(a->body.heartbeat.name, b->body.heartbeat.name);
        cr_assert_eq(a->body.heartbeat.pid, b->body.heartbeat.pid);
        cr_assert_str_eq(a->body.heartbeat.state, b->body.heartbeat.state);
        cr_assert_eq(a->body.heartbeat.handled, b->body.heartbeat.handled);
        cr_assert_eq(a->body.heartbeat.queue_depth, b->body.heartbeat.queue_depth);
        cr_assert_str_eq(a->body.heartbeat.log_level, b->body.heartbeat.log_level);
        break;
    case PROTO_STATUS_REP:
        cr_assert_eq(a->body.status.draining, b->body.status.draining);
        cr_assert_eq(a->body.status.uptime_ms, b->body.status.uptime_ms);
        cr_assert_eq(a->body.status.count, b->body.status.count);
        cr_assert_str_eq(a->body.status.log_level, b->body.status.log_level);
        for (uint32_t i = 0; i < a->body.status.count; i++) {
            const proto_actor_status_t *x = &a->body.status.actors[i];
            const proto_actor_status_t *y = &b->body.status.actors[i];
            cr_assert_str_eq(x->name, y->name);
            cr_assert_eq(x->pid, y->pid);
            cr_assert_str_eq(x->state, y->state);
            cr_assert_eq(x->restarts, y->restarts);
            cr_assert_eq(x->uptime_ms, y->uptime_ms);
            cr_assert_eq(x->heartbeat_age_ms, y->heartbeat_age_ms);
            cr_assert_eq(x->rss_bytes, y->rss_bytes);
            cr_assert_eq(x->handled, y->handled);
            cr_assert_eq(x->queue_depth, y->queue_depth);
            cr_assert_str_eq(x->log_level, y->log_level);
        }
        break;
    case PROTO_RESTART_REQ:
        cr_assert_str_eq(a->body.restart.actor, b->body.restart.actor);
        break;
    case PROTO_LOG_LEVEL:
        cr_assert_str_eq(a->body.log_level.level, b->body.log_level.level);
        cr_assert_str_eq(a->body.log_level.actor, b->body.log_level.actor);
        break;
    case PROTO_RESULT:
        cr_assert_eq(a->body.result.code, b->body.result.code);
        cr_assert_str_eq(a->body.result.message, b->body.result.message);
        break;
    case PROTO_RECS_REQ:
        cr_assert_str_eq(a->body.recs_req.user_id, b->body.recs_req.user_id);
        cr_assert_eq(a->body.recs_req.limit, b->body.recs_req.limit);
        cr_assert_str_eq(a->body.recs_req.type, b->body.recs_req.type);
        cr_assert_eq(a->body.recs_req.explain, b->body.recs_req.explain);
        cr_assert_eq(a->body.recs_req.exclude_count, b->body.recs_req.exclude_count);
        for (uint32_t i = 0; i < a->body.recs_req.exclude_count; i++)
            cr_assert_str_eq(a->body.recs_req.exclude[i], b->body.recs_req.exclude[i]);
        cr_assert_str_eq(a->body.recs_req.model_id, b->body.recs_req.model_id);
        cr_assert_eq(a->body.recs_req.has_blend, b->body.recs_req.has_blend);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(a->body.recs_req.blend[i], b->body.recs_req.blend[i]);
        break;
    case PROTO_INTERACTION:
        cr_assert_str_eq(a->body.interaction.user_id, b->body.interaction.user_id);
        cr_assert_str_eq(a->body.interaction.video_id, b->body.interaction.video_id);
        cr_assert_str_eq(a->body.interaction.kind, b->body.interaction.kind);
        cr_assert_eq(a->body.interaction.weight, b->body.interaction.weight);
        cr_assert_eq(a->body.interaction.occurred_ms, b->body.interaction.occurred_ms);
        break;
    case PROTO_RECS_REP:
        cr_assert_str_eq(a->body.recs_rep.user_id, b->body.recs_rep.user_id);
        cr_assert_str_eq(a->body.recs_rep.source, b->body.recs_rep.source);
        cr_assert_str_eq(a->body.recs_rep.model_id, b->body.recs_rep.model_id);
        cr_assert_str_eq(a->body.recs_rep.type, b->body.recs_rep.type);
        cr_assert_eq(a->body.recs_rep.model_version, b->body.recs_rep.model_version);
        cr_assert_str_eq(a->body.recs_rep.segment, b->body.recs_rep.segment);
        cr_assert_eq(a->body.recs_rep.count, b->body.recs_rep.count);
        for (uint32_t i = 0; i < a->body.recs_rep.count; i++) {
            cr_assert_str_eq(a->body.recs_rep.items[i].video_id,
                             b->body.recs_rep.items[i].video_id);
            cr_assert_eq(a->body.recs_rep.items[i].score, b->body.recs_rep.items[i].score);
            cr_assert_str_eq(a->body.recs_rep.items[i].reason, b->body.recs_rep.items[i].reason);
        }
        break;
    default:
        break;
    }
}

static void s_roundtrip(const proto_msg_t *msg)
{
    char err[256] = "";
    char *data = NULL;
    size_t size = 0;
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), 0, "encode: %s", err);
    cr_assert_not_null(data);
    cr_assert_gt(size, 0);
    proto_msg_t *back = proto_decode(data, size, err, sizeof err);
    cr_assert_not_null(back, "decode %s: %s", proto_type_name(msg->header.type), err);
    s_assert_same(msg, back);
    proto_msg_destroy(&back);
    free(data);
}

//  Encodes a valid message (caller frees *data).
static void s_encode(const proto_msg_t *msg, char **data, size_t *size)
{
    char err[256] = "";
    cr_assert_eq(proto_encode(msg, data, size, err, sizeof err), 0, "encode: %s", err);
}

//  Decodes an exact-size heap copy (so ASan sees any over-read), expecting
//  failure with a reason containing `reason` (NULL: any reason).
static void s_expect_reject(const void *data, size_t size, const char *reason)
{
    char err[256] = "";
    void *copy = malloc(size ? size : 1);
    cr_assert_not_null(copy);
    if (size)
        memcpy(copy, data, size);
    proto_msg_t *msg = proto_decode(copy, size, err, sizeof err);
    free(copy);
    if (msg) {
        proto_msg_destroy(&msg);
        cr_assert_fail("accepted input that should fail (%s)", reason ? reason : "any");
    }
    cr_assert_neq(err[0], '\0', "rejected without a reason");
    if (reason)
        cr_assert_not_null(strstr(err, reason), "reason \"%s\" lacks \"%s\"", err, reason);
}

static proto_msg_t *s_expect_accept(const void *data, size_t size)
{
    char err[256] = "";
    proto_msg_t *msg = proto_decode(data, size, err, sizeof err);
    cr_assert_not_null(msg, "rejected: %s", err);
    return msg;
}

//  --------------------------------------------------------------------------
//  Crafting helpers

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} craft_t;

static void craft_init(craft_t *c)
{
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
}

static void craft_str(craft_t *c, const char *s)
{
    cr_assert_eq(msgpack_pack_str_with_body(&c->pk, s, strlen(s)), 0);
}

//  Packs the 6-element envelope head up to and excluding the body.
static void craft_head(craft_t *c, int type, const char *request_id, const char *traceparent)
{
    craft_init(c);
    msgpack_pack_array(&c->pk, 6);
    msgpack_pack_uint32(&c->pk, PROTO_VERSION);
    msgpack_pack_int(&c->pk, type);
    craft_str(c, request_id);
    craft_str(c, traceparent);
    msgpack_pack_uint64(&c->pk, 0);
}

static void craft_reject(craft_t *c, const char *reason)
{
    s_expect_reject(c->sb.data, c->sb.size, reason);
    msgpack_sbuffer_destroy(&c->sb);
}

static proto_msg_t *craft_accept(craft_t *c)
{
    proto_msg_t *msg = s_expect_accept(c->sb.data, c->sb.size);
    msgpack_sbuffer_destroy(&c->sb);
    return msg;
}

//  A valid message unpacked into a mutable msgpack_object tree.
typedef struct {
    char *data; //  the encoding; the tree's strings point into it
    size_t size;
    msgpack_unpacked up;
} tree_t;

static void tree_of(tree_t *t, proto_type_t type)
{
    proto_msg_t *msg = s_valid(type);
    s_encode(msg, &t->data, &t->size);
    proto_msg_destroy(&msg);
    msgpack_unpacked_init(&t->up);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&t->up, t->data, t->size, &off), MSGPACK_UNPACK_SUCCESS);
}

static void tree_free(tree_t *t)
{
    msgpack_unpacked_destroy(&t->up);
    free(t->data);
}

static msgpack_object *tree_env(tree_t *t, int i)
{
    return &t->up.data.via.array.ptr[i];
}

static msgpack_object_kv *map_kv(msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
            return kv;
    }
    cr_assert_fail("no key %s", key);
    return NULL;
}

static void tree_reject(tree_t *t, const char *reason)
{
    craft_t c;
    craft_init(&c);
    cr_assert_eq(msgpack_pack_object(&c.pk, t->up.data), 0);
    craft_reject(&c, reason);
}

static proto_msg_t *tree_accept(tree_t *t)
{
    craft_t c;
    craft_init(&c);
    cr_assert_eq(msgpack_pack_object(&c.pk, t->up.data), 0);
    return craft_accept(&c);
}

static msgpack_object s_obj_str(const char *s)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)strlen(s);
    return o;
}

static msgpack_object s_obj_uint(uint64_t v)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    o.via.u64 = v;
    return o;
}

static msgpack_object s_obj_int(int64_t v)
{
    if (v >= 0)
        return s_obj_uint((uint64_t)v);
    msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
    o.via.i64 = v;
    return o;
}

static msgpack_object s_obj_nil(void)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_NIL};
    return o;
}

//  Sets one body value (or a value of the first status row / item) and
//  checks the message is rejected for `reason`; restores it afterwards.
static void s_body_value_rejects(proto_type_t type, const char *key, msgpack_object value,
                                 const char *reason)
{
    tree_t t;
    tree_of(&t, type);
    msgpack_object_kv *kv = map_kv(tree_env(&t, 5), key);
    kv->val = value;
    tree_reject(&t, reason);
    tree_free(&t);
}

static void s_body_value_accepts(proto_type_t type, const char *key, msgpack_object value)
{
    tree_t t;
    tree_of(&t, type);
    map_kv(tree_env(&t, 5), key)->val = value;
    proto_msg_t *msg = tree_accept(&t);
    proto_msg_destroy(&msg);
    tree_free(&t);
}

//  --------------------------------------------------------------------------
//  Round trips

Test(proto, roundtrip_every_type)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        proto_msg_t *msg = s_valid(s_all_types[i]);
        s_roundtrip(msg);
        proto_msg_destroy(&msg);
    }
}

Test(proto, roundtrip_edge_values)
{
    //  empty request id and traceparent, no deadline, empty lists, extremes
    proto_msg_t *msg = s_valid(PROTO_STATUS_REP);
    msg->header.request_id[0] = '\0';
    msg->header.traceparent[0] = '\0';
    msg->header.deadline_ms = UINT64_MAX;
    free(msg->body.status.actors);
    msg->body.status.actors = NULL;
    msg->body.status.count = 0;
    msg->body.status.draining = false;
    s_roundtrip(msg);
    proto_msg_destroy(&msg);

    msg = s_valid(PROTO_RECS_REP);
    free(msg->body.recs_rep.items);
    msg->body.recs_rep.items = NULL;
    msg->body.recs_rep.count = 0;
    msg->body.recs_rep.model_id[0] = '\0';
    snprintf(msg->body.recs_rep.source, sizeof msg->body.recs_rep.source, "fallback");
    s_roundtrip(msg);
    proto_msg_destroy(&msg);

    msg = s_valid(PROTO_RESULT);
    msg->body.result.code = INT32_MIN;
    memset(msg->body.result.message, ' ', PROTO_TEXT_MAX);
    msg->body.result.message[PROTO_TEXT_MAX] = '\0';
    s_roundtrip(msg);
    msg->body.result.code = INT32_MAX;
    msg->body.result.message[0] = '\0';
    s_roundtrip(msg);
    proto_msg_destroy(&msg);

    msg = s_valid(PROTO_HEARTBEAT);
    msg->body.heartbeat.pid = INT32_MAX;
    msg->body.heartbeat.handled = UINT64_MAX;
    memset(msg->body.heartbeat.name, 'n', PROTO_NAME_MAX);
    msg->body.heartbeat.name[PROTO_NAME_MAX] = '\0';
    s_roundtrip(msg);
    proto_msg_destroy(&msg);
}

Test(proto, roundtrip_full_lists)
{
    proto_msg_t *msg = s_valid(PROTO_RECS_REP);
    free(msg->body.recs_rep.items);
    msg->body.recs_rep.count = PROTO_MAX_ITEMS;
    msg->body.recs_rep.items = calloc(PROTO_MAX_ITEMS, sizeof(proto_rec_item_t));
    for (int i = 0; i < PROTO_MAX_ITEMS; i++) {
        //  ids of the maximum length, scores that need all 64 bits
        memset(msg->body.recs_rep.items[i].video_id, 'v', PROTO_ID_MAX);
        snprintf(msg->body.recs_rep.items[i].video_id, PROTO_ID_MAX + 1, "%064d", i);
        msg->body.recs_rep.items[i].score = 1.0 / (i + 3);
    }
    memset(msg->header.request_id, '~', PROTO_ID_MAX);
    s_roundtrip(msg);
    proto_msg_destroy(&msg);

    msg = s_valid(PROTO_STATUS_REP);
    free(msg->body.status.actors);
    msg->body.status.count = PROTO_MAX_ACTORS;
    msg->body.status.actors = calloc(PROTO_MAX_ACTORS, sizeof(proto_actor_status_t));
    for (int i = 0; i < PROTO_MAX_ACTORS; i++)
        s_fill_row(&msg->body.status.actors[i], i);
    s_roundtrip(msg);
    proto_msg_destroy(&msg);
}

Test(proto, recs_req_limit_bounds_roundtrip)
{
    proto_msg_t *msg = s_valid(PROTO_RECS_REQ);
    msg->body.recs_req.limit = 1;
    s_roundtrip(msg);
    msg->body.recs_req.limit = PROTO_MAX_ITEMS;
    s_roundtrip(msg);
    proto_msg_destroy(&msg);
}

Test(proto, every_state_and_source_accepted)
{
    const char *hb[] = {"starting", "ready", "stopping"};
    const char *rows[] = {"starting", "running", "backoff", "failed", "stopping", "stopped"};
    const char *src[] = {"model", "cache", "fallback"};
    proto_msg_t *msg = s_valid(PROTO_HEARTBEAT);
    for (size_t i = 0; i < 3; i++) {
        snprintf(msg->body.heartbeat.state, sizeof msg->body.heartbeat.state, "%s", hb[i]);
        s_roundtrip(msg);
    }
    proto_msg_destroy(&msg);
    msg = s_valid(PROTO_STATUS_REP);
    for (size_t i = 0; i < 6; i++) {
        snprintf(msg->body.status.actors[0].state, PROTO_STATE_MAX + 1, "%s", rows[i]);
        s_roundtrip(msg);
    }
    proto_msg_destroy(&msg);
    msg = s_valid(PROTO_RECS_REP);
    for (size_t i = 0; i < 3; i++) {
        snprintf(msg->body.recs_rep.source, sizeof msg->body.recs_rep.source, "%s", src[i]);
        s_roundtrip(msg);
    }
    proto_msg_destroy(&msg);
}

//  --------------------------------------------------------------------------
//  Accepted variations of the wire format

Test(proto, keys_in_any_order_and_unknown_keys_ignored)
{
    craft_t c;
    craft_head(&c, PROTO_RECS_REP, "req-1", "");
    msgpack_pack_map(&c.pk, 6);
    craft_str(&c, "items");
    msgpack_pack_array(&c.pk, 1);
    msgpack_pack_array(&c.pk, 2);
    craft_str(&c, "v9");
    msgpack_pack_float(&c.pk, 0.5f); //  float32 score
    craft_str(&c, "future_field");
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_nil(&c.pk);
    msgpack_pack_map(&c.pk, 0);
    craft_str(&c, "model_id");
    craft_str(&c, "");
    craft_str(&c, "source");
    craft_str(&c, "cache");
    craft_str(&c, "explain");
    msgpack_pack_true(&c.pk);
    craft_str(&c, "user_id");
    craft_str(&c, "u1");
    proto_msg_t *msg = craft_accept(&c);
    cr_assert_eq(msg->header.type, PROTO_RECS_REP);
    cr_assert_str_eq(msg->header.request_id, "req-1");
    cr_assert_str_eq(msg->body.recs_rep.user_id, "u1");
    cr_assert_str_eq(msg->body.recs_rep.source, "cache");
    cr_assert_eq(msg->body.recs_rep.count, 1);
    cr_assert_str_eq(msg->body.recs_rep.items[0].video_id, "v9");
    cr_assert_eq(msg->body.recs_rep.items[0].score, 0.5);
    proto_msg_destroy(&msg);
}

Test(proto, empty_body_types_accept_any_map)
{
    proto_type_t types[] = {PROTO_STOP, PROTO_DRAIN, PROTO_STATUS_REQ};
    for (size_t i = 0; i < 3; i++) {
        craft_t c;
        craft_head(&c, (int)types[i], "", "");
        msgpack_pack_map(&c.pk, 1);
        craft_str(&c, "reason");
        craft_str(&c, "sigterm");
        proto_msg_t *msg = craft_accept(&c);
        cr_assert_eq(msg->header.type, types[i]);
        proto_msg_destroy(&msg);

        craft_head(&c, (int)types[i], "", "");
        msgpack_pack_array(&c.pk, 0);
        craft_reject(&c, "body: not a map");
    }
}

Test(proto, integer_encodings_accepted_where_value_fits)
{
    //  Wider-than-needed formats (uint64 for version, int64 for a small
    //  limit, int8 for a negative code) must be accepted: other msgpack
    //  implementations choose formats differently.
    static const unsigned char recs_req[] = {
        0x96, 0xcf, 0,   0,   0,    0,   0,   0,   0,   1, //  version as uint64
        0xd0, 0x08,                                        //  type as int8
        0xa0, 0xa0,                                        //  "" ""
        0xd3, 0,    0,   0,   0,    0,   0,   0,   0,      //  deadline as int64 0
        0x82, 0xa7, 'u', 's', 'e',  'r', '_', 'i', 'd', 0xa1, 'u', 0xa5, 'l',
        'i',  'm',  'i', 't', 0xd3, 0,   0,   0,   0,   0,    0,   0,    10}; //  limit as int64
    proto_msg_t *msg = s_expect_accept(recs_req, sizeof recs_req);
    cr_assert_eq(msg->body.recs_req.limit, 10);
    proto_msg_destroy(&msg);

    static const unsigned char result[] = {0x96, 0x01, 0x07, 0xa0, 0xa0, 0x00, 0x82, 0xa4, 'c',
                                           'o',  'd',  'e',  0xd0, 0x80, 0xa7, 'm',  'e',  's',
                                           's',  'a',  'g',  'e',  0xa2, 'n',  'o'};
    msg = s_expect_accept(result, sizeof result);
    cr_assert_eq(msg->body.result.code, -128);
    cr_assert_str_eq(msg->body.result.message, "no");
    proto_msg_destroy(&msg);

    //  integer scores, positive and negative
    s_body_value_accepts(PROTO_RECS_REQ, "limit", s_obj_uint(PROTO_MAX_ITEMS));
    tree_t t;
    tree_of(&t, PROTO_RECS_REP);
    msgpack_object *items = &map_kv(tree_env(&t, 5), "items")->val;
    items->via.array.ptr[0].via.array.ptr[1] = s_obj_int(-3);
    items->via.array.ptr[1].via.array.ptr[1] = s_obj_uint(7);
    msg = tree_accept(&t);
    cr_assert_eq(msg->body.recs_rep.items[0].score, -3.0);
    cr_assert_eq(msg->body.recs_rep.items[1].score, 7.0);
    proto_msg_destroy(&msg);
    tree_free(&t);
}

//  --------------------------------------------------------------------------
//  Rejections: framing

Test(proto, reject_empty_and_null)
{
    char err[128] = "";
    cr_assert_null(proto_decode("", 0, err, sizeof err));
    cr_assert_str_eq(err, "empty message");
    cr_assert_null(proto_decode(NULL, 10, err, sizeof err));
    //  a NULL or zero-length err buffer is allowed
    cr_assert_null(proto_decode("\x90", 1, NULL, 0));
    cr_assert_null(proto_decode("\x90", 1, err, 0));
}

Test(proto, reject_truncated_at_every_length)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        proto_msg_t *msg = s_valid(s_all_types[i]);
        char *data;
        size_t size;
        s_encode(msg, &data, &size);
        proto_msg_destroy(&msg);
        for (size_t len = 0; len < size; len++)
            s_expect_reject(data, len, len == 0 ? "empty" : "malformed msgpack");
        free(data);
    }
}

Test(proto, reject_oversize)
{
    //  A well-formed message padded with an unknown key: exactly
    //  PROTO_MAX_MESSAGE bytes is accepted, one more is not.
    const size_t fill = 100000; //  big enough that bin32 is always used
    craft_t c;
    for (int extra = 0; extra <= 1; extra++) {
        craft_head(&c, PROTO_STOP, "", "");
        msgpack_pack_map(&c.pk, 1);
        craft_str(&c, "pad");
        size_t head = c.sb.size + 5; //  bin32 header
        size_t len = (size_t)PROTO_MAX_MESSAGE - head + (size_t)extra;
        cr_assert_gt(len, fill);
        char *pad = calloc(1, len);
        msgpack_pack_bin_with_body(&c.pk, pad, len);
        free(pad);
        cr_assert_eq(c.sb.size, (size_t)PROTO_MAX_MESSAGE + (size_t)extra);
        if (extra) {
            craft_reject(&c, "at most");
        } else {
            proto_msg_t *msg = craft_accept(&c);
            proto_msg_destroy(&msg);
        }
    }
    //  and the size check comes before anything is parsed
    char err[128];
    cr_assert_null(proto_decode("", (size_t)PROTO_MAX_MESSAGE + 1, err, sizeof err));
    cr_assert_not_null(strstr(err, "at most"));
}

Test(proto, reject_trailing_bytes)
{
    proto_msg_t *msg = s_valid(PROTO_RECS_REQ);
    char *data;
    size_t size;
    s_encode(msg, &data, &size);
    proto_msg_destroy(&msg);
    char *two = malloc(2 * size);
    memcpy(two, data, size);
    memcpy(two + size, data, size);
    s_expect_reject(two, size + 1, "trailing"); //  a partial second object
    two[size] = (char)0xc0;
    s_expect_reject(two, size + 1, "trailing"); //  a nil after the envelope
    s_expect_reject(two, 2 * size, "trailing"); //  two whole messages
    free(two);
    free(data);
}

Test(proto, reject_envelope_not_array_of_6)
{
    for (int n = 0; n <= 8; n++) {
        if (n == 6)
            continue;
        craft_t c;
        craft_init(&c);
        msgpack_pack_array(&c.pk, (size_t)n);
        //  a plausible prefix of the real envelope
        for (int i = 0; i < n; i++) {
            if (i == 0 || i == 1)
                msgpack_pack_uint32(&c.pk, i == 0 ? PROTO_VERSION : PROTO_STOP);
            else if (i == 2 || i == 3)
                craft_str(&c, "");
            else if (i == 4)
                msgpack_pack_uint64(&c.pk, 0);
            else
                msgpack_pack_map(&c.pk, 0);
        }
        craft_reject(&c, "array of 6");
    }
    craft_t c;
    craft_init(&c);
    msgpack_pack_map(&c.pk, 0);
    craft_reject(&c, "array of 6");
    craft_init(&c);
    craft_str(&c, "hello");
    craft_reject(&c, "array of 6");
}

Test(proto, reject_hostile_container_headers)
{
    //  array32/map32 claiming 4G elements: must fail before any allocation
    static const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    s_expect_reject(arr32, sizeof arr32, "claims more elements");
    static const unsigned char map32[] = {0x96, 0x01, 0x02, 0xa0, 0xa0, 0x00,
                                          0xdf, 0xff, 0xff, 0xff, 0xff};
    s_expect_reject(map32, sizeof map32, "claims more elements");
    //  strings and ext claiming more bytes than there are
    static const unsigned char str32[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    s_expect_reject(str32, sizeof str32, "truncated");
    static const unsigned char ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01};
    s_expect_reject(ext32, sizeof ext32, "truncated");
    static const unsigned char reserved[] = {0x91, 0xc1};
    s_expect_reject(reserved, sizeof reserved, "reserved");
    //  deep nesting
    unsigned char deep[200];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0xc0;
    s_expect_reject(deep, sizeof deep, "nested deeper");
}

//  --------------------------------------------------------------------------
//  Rejections: envelope fields

Test(proto, reject_wrong_version)
{
    tree_t t;
    tree_of(&t, PROTO_HEARTBEAT);
    *tree_env(&t, 0) = s_obj_uint(0);
    tree_reject(&t, "version: 0");
    *tree_env(&t, 0) = s_obj_uint(2);
    tree_reject(&t, "version: 2");
    *tree_env(&t, 0) = s_obj_int(-1);
    tree_reject(&t, "version: negative");
    *tree_env(&t, 0) = s_obj_str("1");
    tree_reject(&t, "version: not an integer");
    *tree_env(&t, 0) = s_obj_uint(PROTO_VERSION);
    proto_msg_t *msg = tree_accept(&t); //  the control: the rest is valid
    proto_msg_destroy(&msg);
    tree_free(&t);
}

Test(proto, reject_unknown_type)
{
    uint64_t bad[] = {0, PROTO_TYPE_MAX + 1, 255, 1ull << 40};
    for (size_t i = 0; i < 4; i++) {
        craft_t c;
        craft_init(&c);
        msgpack_pack_array(&c.pk, 6);
        msgpack_pack_uint32(&c.pk, PROTO_VERSION);
        msgpack_pack_uint64(&c.pk, bad[i]);
        craft_str(&c, "");
        craft_str(&c, "");
        msgpack_pack_uint64(&c.pk, 0);
        msgpack_pack_map(&c.pk, 0);
        craft_reject(&c, "type");
    }
    cr_assert_str_eq(proto_type_name(0), "unknown");
    cr_assert_str_eq(proto_type_name(PROTO_TYPE_MAX + 1), "unknown");
    cr_assert_str_eq(proto_type_name(PROTO_HEARTBEAT), "heartbeat");
    cr_assert_str_eq(proto_type_name(PROTO_RECS_REP), "recs_rep");
}

Test(proto, reject_bad_traceparent)
{
    const char *bad[] = {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", //  uppercase
                         "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", //  version
                         "00-00000000000000000000000000000000-00f067aa0ba902b7-01", //  zero trace
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", //  zero parent
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", //  flags
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",  //  short
                         "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", //  separators
                         "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01", //  non-hex
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                         "garbage"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tree_t t;
        tree_of(&t, PROTO_DRAIN);
        *tree_env(&t, 3) = s_obj_str(bad[i]);
        tree_reject(&t, "traceparent");
        tree_free(&t);
        //  and validate refuses the same value in a struct
        proto_msg_t *msg = s_valid(PROTO_DRAIN);
        snprintf(msg->header.traceparent, sizeof msg->header.traceparent, "%s", bad[i]);
        if (strlen(bad[i]) <= PROTO_TRACEPARENT_LEN)
            cr_assert_eq(proto_validate(msg, NULL, 0), -1, "%s", bad[i]);
        proto_msg_destroy(&msg);
    }
}

Test(proto, reject_non_printable_ids)
{
    //  bytes that must not appear in an id: control, space, DEL, NUL, UTF-8
    static const char *bad[] = {"ab\x01", "a b", "ab\x7f", "caf\xc3\xa9", "\t"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *reason = strchr(bad[i], ' ') ? "request_id: byte 0x20" : "not printable";
        tree_t t;
        tree_of(&t, PROTO_STOP);
        *tree_env(&t, 2) = s_obj_str(bad[i]);
        tree_reject(&t, reason);
        tree_free(&t);
        s_body_value_rejects(PROTO_RECS_REQ, "user_id", s_obj_str(bad[i]), "user_id");
        s_body_value_rejects(PROTO_RESTART_REQ, "actor", s_obj_str(bad[i]), "actor");
    }
    //  an embedded NUL must not cut the string short and pass
    tree_t t;
    tree_of(&t, PROTO_STOP);
    msgpack_object o = s_obj_str("abc");
    o.via.str.ptr = "ab\0c";
    o.via.str.size = 4;
    *tree_env(&t, 2) = o;
    tree_reject(&t, "byte 0x00");
    tree_free(&t);
    //  message text may contain spaces but no control characters
    s_body_value_accepts(PROTO_RESULT, "message", s_obj_str("it is fine"));
    s_body_value_rejects(PROTO_RESULT, "message", s_obj_str("line\nbreak"), "message");
}

Test(proto, reject_over_long_strings)
{
    char s[PROTO_TEXT_MAX + 2];
    memset(s, 'a', sizeof s);
    s[PROTO_ID_MAX] = '\0';
    tree_t t;
    tree_of(&t, PROTO_STOP);
    *tree_env(&t, 2) = s_obj_str(s); //  64: fits
    proto_msg_t *msg = tree_accept(&t);
    proto_msg_destroy(&msg);
    s[PROTO_ID_MAX] = 'a';
    s[PROTO_ID_MAX + 1] = '\0';
    *tree_env(&t, 2) = s_obj_str(s); //  65: too long
    tree_reject(&t, "request_id: 65 bytes");
    tree_free(&t);
    s_body_value_rejects(PROTO_RECS_REQ, "user_id", s_obj_str(s), "user_id: 65 bytes");
    s_body_value_rejects(PROTO_RECS_REP, "model_id", s_obj_str(s), "model_id: 65 bytes");

    s[PROTO_NAME_MAX] = '\0';
    s_body_value_accepts(PROTO_HEARTBEAT, "name", s_obj_str(s));
    s[PROTO_NAME_MAX] = 'a';
    s[PROTO_NAME_MAX + 1] = '\0';
    s_body_value_rejects(PROTO_HEARTBEAT, "name", s_obj_str(s), "name: 32 bytes");
    s_body_value_rejects(PROTO_RESTART_REQ, "actor", s_obj_str(s), "actor: 32 bytes");

    memset(s, 'a', sizeof s);
    s[PROTO_TEXT_MAX + 1] = '\0';
    s_body_value_rejects(PROTO_RESULT, "message", s_obj_str(s), "message: 256 bytes");

    //  the traceparent field is a char[56] too
    s[PROTO_TRACEPARENT_LEN + 1] = '\0';
    tree_of(&t, PROTO_STOP);
    *tree_env(&t, 3) = s_obj_str(s);
    tree_reject(&t, "traceparent: 56 bytes");
    tree_free(&t);
}

Test(proto, reject_wrong_header_types)
{
    tree_t t;
    tree_of(&t, PROTO_STOP);
    *tree_env(&t, 2) = s_obj_uint(5);
    tree_reject(&t, "request_id: not a string");
    tree_free(&t);
    tree_of(&t, PROTO_STOP);
    *tree_env(&t, 3) = s_obj_nil();
    tree_reject(&t, "traceparent: not a string");
    tree_free(&t);
    tree_of(&t, PROTO_STOP);
    *tree_env(&t, 4) = s_obj_int(-1);
    tree_reject(&t, "deadline_ms: negative");
    *tree_env(&t, 4) = s_obj_str("soon");
    tree_reject(&t, "deadline_ms: not an integer");
    tree_free(&t);
    tree_of(&t, PROTO_STOP);
    *tree_env(&t, 5) = s_obj_nil();
    tree_reject(&t, "body: not a map");
    tree_free(&t);
}

//  --------------------------------------------------------------------------
//  Rejections: bodies

//  Every documented key of every body, and of a status row, is required.
//  The RECS fields added after version 1 shipped: optional on the wire.
static bool s_optional_key(proto_type_t type, const msgpack_object *key)
{
    static const char *const keys[] = {"type",    "exclude",  "explain", "model_version",
                                       "segment", "model_id", "blend",   NULL};
    if (type != PROTO_RECS_REQ && type != PROTO_RECS_REP)
        return false;
    for (size_t i = 0; keys[i]; i++)
        if (key->via.str.size == strlen(keys[i]) &&
            memcmp(key->via.str.ptr, keys[i], key->via.str.size) == 0)
            return true;
    return false;
}

Test(proto, reject_missing_key)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        tree_t t;
        tree_of(&t, s_all_types[i]);
        msgpack_object *body = tree_env(&t, 5);
        for (uint32_t k = 0; k < body->via.map.size; k++) {
            msgpack_object_kv *kv = body->via.map.ptr;
            msgpack_object_kv saved = kv[k];
            if (s_optional_key(s_all_types[i], &saved.key))
                continue; //  see recs_optional_fields_default

            char reason[64];
            snprintf(reason, sizeof reason, "missing key \"%.*s\"", (int)saved.key.via.str.size,
                     saved.key.via.str.ptr);
            kv[k] = kv[body->via.map.size - 1];
            kv[body->via.map.size - 1] = saved;
            body->via.map.size--;
            tree_reject(&t, reason);
            body->via.map.size++;
            kv[body->via.map.size - 1] = kv[k];
            kv[k] = saved;
        }
        tree_free(&t);
    }
    tree_t t;
    tree_of(&t, PROTO_STATUS_REP);
    msgpack_object *row = &map_kv(tree_env(&t, 5), "actors")->val.via.array.ptr[1];
    cr_assert_eq(row->via.map.size, 9);
    for (uint32_t k = 0; k < 9; k++) {
        msgpack_object_kv saved = row->via.map.ptr[k];
        //  overwrite the key with an unknown one: the row then lacks it
        row->via.map.ptr[k].key = s_obj_str("unrelated");
        tree_reject(&t, "actors[1]: missing key");
        row->via.map.ptr[k] = saved;
    }
    proto_msg_t *msg = tree_accept(&t);
    proto_msg_destroy(&msg);
    tree_free(&t);
}

Test(proto, reject_duplicate_key)
{
    tree_t t;
    tree_of(&t, PROTO_RECS_REQ);
    msgpack_object *body = tree_env(&t, 5);
    body->via.map.ptr[1].key = body->via.map.ptr[0].key;
    tree_reject(&t, "appears twice");
    tree_free(&t);
}

Test(proto, reject_non_string_key)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        craft_t c;
        craft_head(&c, (int)s_all_types[i], "", "");
        msgpack_pack_map(&c.pk, 1);
        msgpack_pack_int(&c.pk, 1);
        msgpack_pack_int(&c.pk, 1);
        craft_reject(&c, "is not a string");
    }
    tree_t t;
    tree_of(&t, PROTO_STATUS_REP);
    msgpack_object *row = &map_kv(tree_env(&t, 5), "actors")->val.via.array.ptr[0];
    row->via.map.ptr[4].key = s_obj_uint(4);
    tree_reject(&t, "actors[0]: key 4 is not a string");
    tree_free(&t);
}

//  Every body value replaced by nil, or by a map (the one type no field
//  takes), is rejected.
Test(proto, reject_wrong_value_type_everywhere)
{
    msgpack_object map = {.type = MSGPACK_OBJECT_MAP};
    for (size_t i = 0; i < N_TYPES; i++) {
        tree_t t;
        tree_of(&t, s_all_types[i]);
        msgpack_object *body = tree_env(&t, 5);
        for (uint32_t k = 0; k < body->via.map.size; k++) {
            msgpack_object saved = body->via.map.ptr[k].val;
            body->via.map.ptr[k].val = s_obj_nil();
            tree_reject(&t, "not a");
            body->via.map.ptr[k].val = map;
            tree_reject(&t, "not a");
            body->via.map.ptr[k].val = saved;
        }
        tree_free(&t);
    }
}

Test(proto, reject_wrong_value_types)
{
    s_body_value_rejects(PROTO_HEARTBEAT, "pid", s_obj_str("4242"), "pid: not an integer");
    s_body_value_rejects(PROTO_HEARTBEAT, "pid", s_obj_uint(1ull << 31), "pid: out of range");
    s_body_value_rejects(PROTO_HEARTBEAT, "pid", s_obj_int(-5), "pid: must be > 0");
    s_body_value_rejects(PROTO_HEARTBEAT, "handled", s_obj_int(-1), "handled: negative");
    s_body_value_rejects(PROTO_HEARTBEAT, "queue", s_obj_int(-1), "queue: negative");
    s_body_value_rejects(PROTO_HEARTBEAT, "state", s_obj_str("running"), "state: unknown");
    s_body_value_rejects(PROTO_HEARTBEAT, "name", s_obj_str(""), "name: empty");
    s_body_value_rejects(PROTO_STATUS_REP, "draining", s_obj_uint(1), "draining: not a boolean");
    s_body_value_rejects(PROTO_STATUS_REP, "uptime_ms", s_obj_int(-1), "uptime_ms: negative");
    s_body_value_rejects(PROTO_STATUS_REP, "actors", s_obj_str("[]"), "actors: not an array");
    s_body_value_rejects(PROTO_RESULT, "code", s_obj_uint(1ull << 32), "code: out of range");
    s_body_value_rejects(PROTO_RESULT, "code", s_obj_str("0"), "code: not an integer");
    s_body_value_rejects(PROTO_RECS_REQ, "user_id", s_obj_str(""), "user_id: empty");
    s_body_value_rejects(PROTO_RECS_REQ, "limit", s_obj_str("10"), "limit: not an integer");
    s_body_value_rejects(PROTO_RECS_REP, "source", s_obj_str("magic"), "source: unknown");
    s_body_value_rejects(PROTO_RECS_REP, "items", s_obj_uint(3), "items: not an array");

    //  fields inside status rows and recommendation items
    struct {
        const char *key;
        msgpack_object val;
        const char *reason;
    } rows[] = {{"pid", s_obj_int(-1), "actors[0].pid: negative"},
                {"state", s_obj_str("ready"), "actors[0].state: unknown"},
                {"restarts", s_obj_uint(1ull << 32), "actors.restarts: 4294967296 out of range"},
                {"restarts", s_obj_int(-1), "actors.restarts: negative"},
                {"uptime_ms", s_obj_int(-2), "must be >= -1"},
                {"heartbeat_age_ms", s_obj_int(-2), "must be >= -1"},
                {"rss_bytes", s_obj_int(-1), "actors.rss_bytes: negative"},
                {"name", s_obj_str(""), "actors[0].name: empty"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tree_t t;
        tree_of(&t, PROTO_STATUS_REP);
        msgpack_object *row = &map_kv(tree_env(&t, 5), "actors")->val.via.array.ptr[0];
        map_kv(row, rows[i].key)->val = rows[i].val;
        tree_reject(&t, rows[i].reason);
        tree_free(&t);
    }
    tree_t t;
    tree_of(&t, PROTO_RECS_REP);
    msgpack_object *items = &map_kv(tree_env(&t, 5), "items")->val;
    msgpack_object *pair = &items->via.array.ptr[2];
    pair->via.array.ptr[1] = s_obj_str("0.5");
    tree_reject(&t, "items.score: not a number");
    pair->via.array.ptr[1] = s_obj_uint(1);
    pair->via.array.ptr[0] = s_obj_str("");
    tree_reject(&t, "items[2].video_id: empty");
    pair->via.array.ptr[0] = s_obj_uint(1);
    tree_reject(&t, "items.video_id: not a string");
    pair->via.array.ptr[0] = s_obj_str("v");
    pair->via.array.size = 1;
    tree_reject(&t, "items[2]: not a [video_id, score(, reason)] array");
    pair->via.array.size = 2;
    *pair = s_obj_str("v");
    tree_reject(&t, "items[2]: not a [video_id, score(, reason)] array");
    tree_free(&t);

    //  non-finite scores cannot be shown to API clients
    craft_t c;
    craft_head(&c, PROTO_RECS_REP, "", "");
    msgpack_pack_map(&c.pk, 4);
    craft_str(&c, "user_id");
    craft_str(&c, "u");
    craft_str(&c, "source");
    craft_str(&c, "model");
    craft_str(&c, "model_id");
    craft_str(&c, "m");
    craft_str(&c, "items");
    msgpack_pack_array(&c.pk, 1);
    msgpack_pack_array(&c.pk, 2);
    craft_str(&c, "v");
    msgpack_pack_double(&c.pk, NAN);
    craft_reject(&c, "not finite");
}

Test(proto, reject_too_many_items_and_actors)
{
    //  PROTO_MAX_ITEMS + 1 well-formed items
    craft_t c;
    craft_head(&c, PROTO_RECS_REP, "", "");
    msgpack_pack_map(&c.pk, 4);
    craft_str(&c, "user_id");
    craft_str(&c, "u");
    craft_str(&c, "source");
    craft_str(&c, "model");
    craft_str(&c, "model_id");
    craft_str(&c, "m");
    craft_str(&c, "items");
    msgpack_pack_array(&c.pk, PROTO_MAX_ITEMS + 1);
    for (int i = 0; i < PROTO_MAX_ITEMS + 1; i++) {
        msgpack_pack_array(&c.pk, 2);
        craft_str(&c, "v");
        msgpack_pack_double(&c.pk, 1.0);
    }
    craft_reject(&c, "items: 1001 items, at most 1000");

    //  the count is checked before any item is looked at (or allocated for)
    craft_head(&c, PROTO_RECS_REP, "", "");
    msgpack_pack_map(&c.pk, 4);
    craft_str(&c, "user_id");
    craft_str(&c, "u");
    craft_str(&c, "source");
    craft_str(&c, "model");
    craft_str(&c, "model_id");
    craft_str(&c, "m");
    craft_str(&c, "items");
    msgpack_pack_array(&c.pk, PROTO_MAX_ITEMS + 1);
    for (int i = 0; i < PROTO_MAX_ITEMS + 1; i++)
        msgpack_pack_nil(&c.pk);
    craft_reject(&c, "items: 1001 items, at most 1000");

    //  PROTO_MAX_ACTORS + 1 rows (each an empty map: the count is checked first)
    craft_head(&c, PROTO_STATUS_REP, "", "");
    msgpack_pack_map(&c.pk, 3);
    craft_str(&c, "draining");
    msgpack_pack_false(&c.pk);
    craft_str(&c, "uptime_ms");
    msgpack_pack_int(&c.pk, 0);
    craft_str(&c, "actors");
    msgpack_pack_array(&c.pk, PROTO_MAX_ACTORS + 1);
    for (int i = 0; i < PROTO_MAX_ACTORS + 1; i++)
        msgpack_pack_map(&c.pk, 0);
    craft_reject(&c, "actors: 65 rows, at most 64");
}

Test(proto, reject_recs_req_limit_out_of_range)
{
    s_body_value_rejects(PROTO_RECS_REQ, "limit", s_obj_uint(0), "limit: 0 not in 1..1000");
    s_body_value_rejects(PROTO_RECS_REQ, "limit", s_obj_uint(PROTO_MAX_ITEMS + 1),
                         "limit: 1001 out of range");
    s_body_value_rejects(PROTO_RECS_REQ, "limit", s_obj_uint(UINT64_MAX), "limit");
    s_body_value_rejects(PROTO_RECS_REQ, "limit", s_obj_int(-1), "limit: negative");
    s_body_value_accepts(PROTO_RECS_REQ, "limit", s_obj_uint(1));
}

//  --------------------------------------------------------------------------
//  Random input: never crash, never leak, anything accepted is valid

static uint64_t s_next(uint64_t *state)
{
    //  xorshift64*: fixed seed, same sequence on every run
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dull;
}

static void s_decode_any(const unsigned char *buf, size_t len, int *accepted)
{
    char err[256];
    proto_msg_t *msg = proto_decode(buf, len, err, sizeof err);
    if (!msg)
        return;
    (*accepted)++;
    cr_assert_eq(proto_validate(msg, err, sizeof err), 0, "%s", err);
    char *data;
    size_t size;
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), 0, "%s", err);
    proto_msg_t *again = proto_decode(data, size, err, sizeof err);
    cr_assert_not_null(again, "%s", err);
    s_assert_same(msg, again);
    proto_msg_destroy(&again);
    proto_msg_destroy(&msg);
    free(data);
}

Test(proto, random_garbage_fixed_seed)
{
    uint64_t state = 0x5eed5eed12345678ull;
    int accepted = 0;
    //  pure noise, with a bias towards a plausible first byte
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 1 + s_next(&state) % 300;
        unsigned char *buf = malloc(len);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)s_next(&state);
        if (iter % 2)
            buf[0] = 0x96;
        s_decode_any(buf, len, &accepted);
        free(buf);
    }
    //  valid messages with a few random bytes changed
    int mutated_ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        proto_msg_t *msg = s_valid(s_all_types[iter % N_TYPES]);
        char *data;
        size_t size;
        s_encode(msg, &data, &size);
        proto_msg_destroy(&msg);
        int flips = 1 + (int)(s_next(&state) % 3);
        for (int f = 0; f < flips; f++)
            data[s_next(&state) % size] = (char)s_next(&state);
        s_decode_any((unsigned char *)data, size, &mutated_ok);
        free(data);
    }
    //  the mutations must leave some messages valid, or this tests nothing
    //  beyond the first byte
    cr_assert_gt(mutated_ok, 0);
}

//  --------------------------------------------------------------------------
//  validate / encode refuse invalid structs

static void s_expect_invalid(proto_msg_t *msg, const char *reason)
{
    char err[256] = "";
    cr_assert_eq(proto_validate(msg, err, sizeof err), -1, "validated (%s)", reason);
    cr_assert_not_null(strstr(err, reason), "reason \"%s\" lacks \"%s\"", err, reason);
    char *data = (char *)1;
    size_t size = 1;
    err[0] = '\0';
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), -1);
    cr_assert_null(data);
    cr_assert_eq(size, 0);
    cr_assert_not_null(strstr(err, reason));
    proto_msg_destroy(&msg);
}

Test(proto, validate_refuses_invalid_structs)
{
    proto_msg_t *m;
    cr_assert_eq(proto_validate(NULL, NULL, 0), -1);
    m = s_valid(PROTO_STOP);
    m->header.version = 2;
    s_expect_invalid(m, "version");
    m = s_valid(PROTO_STOP);
    m->header.type = 0;
    s_expect_invalid(m, "type");
    m = s_valid(PROTO_STOP);
    m->header.type = (proto_type_t)(PROTO_TYPE_MAX + 1);
    s_expect_invalid(m, "type");
    m = s_valid(PROTO_STOP);
    m->header.request_id[3] = '\n';
    s_expect_invalid(m, "request_id: byte 0x0a");
    m = s_valid(PROTO_STOP);
    memset(m->header.request_id, 'a', sizeof m->header.request_id); //  no NUL
    s_expect_invalid(m, "request_id: longer than 64");
    m = s_valid(PROTO_STOP);
    memset(m->header.traceparent, 'a', sizeof m->header.traceparent);
    s_expect_invalid(m, "traceparent");
    m = s_valid(PROTO_STOP);
    m->header.traceparent[10] = 'A';
    s_expect_invalid(m, "traceparent");

    m = s_valid(PROTO_HEARTBEAT);
    m->body.heartbeat.pid = 0;
    s_expect_invalid(m, "pid");
    m = s_valid(PROTO_HEARTBEAT);
    snprintf(m->body.heartbeat.state, sizeof m->body.heartbeat.state, "failed");
    s_expect_invalid(m, "state: unknown");
    m = s_valid(PROTO_HEARTBEAT);
    m->body.heartbeat.name[0] = '\0';
    s_expect_invalid(m, "name: empty");

    m = s_valid(PROTO_STATUS_REP);
    uint32_t rows = m->body.status.count;
    m->body.status.count = PROTO_MAX_ACTORS + 1; //  more than allocated: must not be read
    char why[256];
    cr_assert_eq(proto_validate(m, why, sizeof why), -1);
    cr_assert(strstr(why, "at most 64"), "%s", why);
    m->body.status.count = rows; //  destroy frees each row's metrics: keep it truthful
    proto_msg_destroy(&m);
    m = s_valid(PROTO_STATUS_REP);
    free(m->body.status.actors);
    m->body.status.actors = NULL;
    s_expect_invalid(m, "no array");
    m = s_valid(PROTO_STATUS_REP);
    m->body.status.actors[2].heartbeat_age_ms = -7;
    s_expect_invalid(m, "actors[2]");
    m = s_valid(PROTO_STATUS_REP);
    memset(m->body.status.actors[1].name, 'x', PROTO_NAME_MAX + 1);
    s_expect_invalid(m, "actors[1].name: longer than 31");

    m = s_valid(PROTO_RESTART_REQ);
    snprintf(m->body.restart.actor, sizeof m->body.restart.actor, "has space");
    s_expect_invalid(m, "actor: byte 0x20");
    m = s_valid(PROTO_RESULT);
    m->body.result.message[0] = '\x1b';
    s_expect_invalid(m, "message: byte 0x1b");

    m = s_valid(PROTO_RECS_REQ);
    m->body.recs_req.limit = 0;
    s_expect_invalid(m, "limit: 0 not in");
    m = s_valid(PROTO_RECS_REQ);
    m->body.recs_req.limit = PROTO_MAX_ITEMS + 1;
    s_expect_invalid(m, "limit: 1001 not in");
    m = s_valid(PROTO_RECS_REQ);
    m->body.recs_req.user_id[0] = '\0';
    s_expect_invalid(m, "user_id: empty");

    m = s_valid(PROTO_RECS_REP);
    m->body.recs_rep.count = PROTO_MAX_ITEMS + 1;
    s_expect_invalid(m, "at most 1000");
    m = s_valid(PROTO_RECS_REP);
    m->body.recs_rep.items[1].score = INFINITY;
    s_expect_invalid(m, "items[1].score: not finite");
    m = s_valid(PROTO_RECS_REP);
    m->body.recs_rep.items[0].video_id[0] = '\0';
    s_expect_invalid(m, "items[0].video_id: empty");
    m = s_valid(PROTO_RECS_REP);
    snprintf(m->body.recs_rep.source, sizeof m->body.recs_rep.source, "Model");
    s_expect_invalid(m, "source: unknown");

    char *data = NULL;
    size_t size = 0;
    cr_assert_eq(proto_encode(NULL, &data, &size, NULL, 0), -1);
    m = s_valid(PROTO_STOP);
    cr_assert_eq(proto_encode(m, NULL, &size, NULL, 0), -1);
    proto_msg_destroy(&m);
}

//  --------------------------------------------------------------------------
//  Construction and helpers

Test(proto, msg_new_and_destroy)
{
    proto_msg_t *a = proto_msg_new(PROTO_STOP, NULL);
    proto_msg_t *b = proto_msg_new(PROTO_STOP, NULL);
    cr_assert_eq(a->header.version, PROTO_VERSION);
    cr_assert_eq(a->header.deadline_ms, 0);
    cr_assert_str_eq(a->header.traceparent, "");
    cr_assert_eq(strlen(a->header.request_id), 32);
    cr_assert_eq(strspn(a->header.request_id, "0123456789abcdef"), 32);
    cr_assert_str_neq(a->header.request_id, b->header.request_id);
    proto_msg_destroy(&a);
    cr_assert_null(a);
    proto_msg_destroy(&a); //  idempotent
    proto_msg_destroy(NULL);
    proto_msg_destroy(&b);

    a = proto_msg_new(PROTO_RECS_REQ, "given-id");
    cr_assert_str_eq(a->header.request_id, "given-id");
    proto_msg_destroy(&a);

    char long_id[200];
    memset(long_id, 'k', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    a = proto_msg_new(PROTO_RECS_REQ, long_id);
    cr_assert_eq(strlen(a->header.request_id), PROTO_ID_MAX); //  cut, terminated
    proto_msg_destroy(&a);
}

Test(proto, request_id_and_clock)
{
    char id[33], small[9];
    proto_request_id(id, sizeof id);
    cr_assert_eq(strlen(id), 32);
    cr_assert_eq(strspn(id, "0123456789abcdef"), 32);
    proto_request_id(small, sizeof small);
    cr_assert_eq(strlen(small), 8);
    proto_request_id(NULL, 10);
    proto_request_id(id, 0);

    uint64_t now = proto_now_ms();
    uint64_t wall = (uint64_t)time(NULL) * 1000;
    cr_assert_geq(now + 2000, wall);
    cr_assert_leq(now, wall + 2000);
}

//  --------------------------------------------------------------------------
//  PROTO_INTERACTION (ingestor -> ranker notices)

static proto_msg_t *s_interaction(const char *kind, double weight)
{
    proto_msg_t *msg = proto_msg_new(PROTO_INTERACTION, "rid-interaction");
    cr_assert_not_null(msg);
    snprintf(msg->body.interaction.user_id, sizeof msg->body.interaction.user_id, "u42");
    snprintf(msg->body.interaction.video_id, sizeof msg->body.interaction.video_id, "v7");
    snprintf(msg->body.interaction.kind, sizeof msg->body.interaction.kind, "%s", kind);
    msg->body.interaction.weight = weight;
    msg->body.interaction.occurred_ms = 1714564800123ULL;
    return msg;
}

Test(proto, interaction_roundtrip_and_rules)
{
    const char *kinds[] = {"watch", "rating", "watchlist_add", "watchlist_remove"};
    for (size_t i = 0; i < 4; i++) {
        proto_msg_t *msg = s_interaction(kinds[i], 0.75);
        s_roundtrip(msg);
        proto_msg_destroy(&msg);
    }
    char err[256], *data = NULL;
    size_t size = 0;
    proto_msg_t *bad = s_interaction("binge", 1.0);
    cr_assert_eq(proto_encode(bad, &data, &size, err, sizeof err), -1);
    cr_assert(strstr(err, "kind"), "%s", err);
    proto_msg_destroy(&bad);
    bad = s_interaction("watch", NAN);
    cr_assert_eq(proto_encode(bad, &data, &size, err, sizeof err), -1);
    cr_assert(strstr(err, "weight"), "%s", err);
    proto_msg_destroy(&bad);
    bad = s_interaction("watch", 1.0);
    bad->body.interaction.video_id[0] = '\0';
    cr_assert_eq(proto_encode(bad, &data, &size, err, sizeof err), -1);
    cr_assert(strstr(err, "video_id"), "%s", err);
    proto_msg_destroy(&bad);
}

//  --------------------------------------------------------------------------
//  Optional metrics text on heartbeats and status rows

static void s_craft_heartbeat(craft_t *c, const char *metrics)
{
    craft_head(c, PROTO_HEARTBEAT, "", "");
    msgpack_pack_map(&c->pk, metrics ? 6 : 5);
    craft_str(c, "name");
    craft_str(c, "ranker");
    craft_str(c, "pid");
    msgpack_pack_int(&c->pk, 42);
    craft_str(c, "state");
    craft_str(c, "ready");
    craft_str(c, "handled");
    msgpack_pack_uint64(&c->pk, 1);
    craft_str(c, "queue");
    msgpack_pack_uint64(&c->pk, 0);
    if (metrics) {
        craft_str(c, "metrics");
        craft_str(c, metrics);
    }
}

Test(proto, heartbeat_metrics_optional_and_checked)
{
    craft_t c;
    s_craft_heartbeat(&c, NULL);
    proto_msg_t *msg = craft_accept(&c);
    cr_assert_null(msg->body.heartbeat.metrics, "absent metrics stay NULL");
    proto_msg_destroy(&msg);

    const char *text = "# TYPE recsd_x_total counter\nrecsd_x_total{actor=\"ranker\"} 3\n";
    s_craft_heartbeat(&c, text);
    msg = craft_accept(&c);
    cr_assert_str_eq(msg->body.heartbeat.metrics, text);
    //  Re-encoding carries it through unchanged.
    char err[256], *data = NULL;
    size_t size = 0;
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), 0, "%s", err);
    proto_msg_t *back = proto_decode(data, size, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_str_eq(back->body.heartbeat.metrics, text);
    proto_msg_destroy(&back);
    free(data);
    proto_msg_destroy(&msg);

    s_craft_heartbeat(&c, "bad\tbyte");
    craft_reject(&c, "metrics: byte 0x09");
    char *big = malloc(PROTO_METRICS_MAX + 2);
    memset(big, 'x', PROTO_METRICS_MAX + 1);
    big[PROTO_METRICS_MAX + 1] = '\0';
    s_craft_heartbeat(&c, big);
    craft_reject(&c, "metrics:");
    //  And encode refuses what decode would refuse.
    msg = proto_msg_new(PROTO_HEARTBEAT, NULL);
    snprintf(msg->body.heartbeat.name, sizeof msg->body.heartbeat.name, "ranker");
    snprintf(msg->body.heartbeat.state, sizeof msg->body.heartbeat.state, "ready");
    msg->body.heartbeat.pid = 7;
    msg->body.heartbeat.metrics = big; //  the message owns it now
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), -1);
    cr_assert(strstr(err, "metrics"), "%s", err);
    proto_msg_destroy(&msg);
}

Test(proto, status_row_metrics_roundtrip)
{
    proto_msg_t *msg = proto_msg_new(PROTO_STATUS_REP, NULL);
    msg->body.status.count = 2;
    msg->body.status.actors = calloc(2, sizeof *msg->body.status.actors);
    for (int i = 0; i < 2; i++) {
        proto_actor_status_t *row = &msg->body.status.actors[i];
        snprintf(row->name, sizeof row->name, "actor%d", i);
        snprintf(row->state, sizeof row->state, "running");
        row->uptime_ms = row->heartbeat_age_ms = -1;
    }
    msg->body.status.actors[1].metrics = strdup("recsd_y 1\n");
    char err[256], *data = NULL;
    size_t size = 0;
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), 0, "%s", err);
    proto_msg_t *back = proto_decode(data, size, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_null(back->body.status.actors[0].metrics);
    cr_assert_str_eq(back->body.status.actors[1].metrics, "recsd_y 1\n");
    proto_msg_destroy(&back);
    proto_msg_destroy(&msg);
    free(data);
}

//  A sender that predates type/exclude/explain/model_version/reason (only
//  the version 1 keys) still decodes, with the defaults.
Test(proto, recs_optional_fields_default)
{
    proto_msg_t *msg = s_valid(PROTO_RECS_REQ);
    msg->body.recs_req.type[0] = '\0';
    msg->body.recs_req.explain = false;
    msg->body.recs_req.exclude_count = 0;
    msg->body.recs_req.model_id[0] = '\0';
    msg->body.recs_req.has_blend = false;
    char *data;
    size_t size;
    s_encode(msg, &data, &size);
    proto_msg_destroy(&msg);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    cr_assert_eq(msgpack_unpack_next(&up, data, size, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(up.data.via.array.ptr[5].via.map.size, 2, "defaults are not sent");
    msgpack_unpacked_destroy(&up);
    char err[256];
    msg = proto_decode(data, size, err, sizeof err);
    cr_assert_not_null(msg, "%s", err);
    cr_assert_str_empty(msg->body.recs_req.type);
    cr_assert_not(msg->body.recs_req.explain);
    cr_assert_eq(msg->body.recs_req.exclude_count, 0);
    proto_msg_destroy(&msg);
    free(data);

    //  A version-1 reply: {user_id, source, model_id, items:[[id, score]]}.
    craft_t c;
    craft_init(&c);
    msgpack_pack_array(&c.pk, 6);
    msgpack_pack_uint32(&c.pk, PROTO_VERSION);
    msgpack_pack_uint32(&c.pk, PROTO_RECS_REP);
    msgpack_pack_str_with_body(&c.pk, "r", 1);
    msgpack_pack_str_with_body(&c.pk, "", 0);
    msgpack_pack_uint64(&c.pk, 0);
    msgpack_pack_map(&c.pk, 4);
    msgpack_pack_str_with_body(&c.pk, "user_id", 7);
    msgpack_pack_str_with_body(&c.pk, "u", 1);
    msgpack_pack_str_with_body(&c.pk, "source", 6);
    msgpack_pack_str_with_body(&c.pk, "model", 5);
    msgpack_pack_str_with_body(&c.pk, "model_id", 8);
    msgpack_pack_str_with_body(&c.pk, "m", 1);
    msgpack_pack_str_with_body(&c.pk, "items", 5);
    msgpack_pack_array(&c.pk, 1);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_str_with_body(&c.pk, "v", 1);
    msgpack_pack_double(&c.pk, 1.5);
    msg = craft_accept(&c);
    cr_assert_str_empty(msg->body.recs_rep.type);
    cr_assert_eq(msg->body.recs_rep.model_version, 0);
    cr_assert_eq(msg->body.recs_rep.count, 1);
    cr_assert_str_empty(msg->body.recs_rep.items[0].reason);
    proto_msg_destroy(&msg);
}

Test(proto, reject_bad_recs_options)
{
    s_body_value_rejects(PROTO_RECS_REQ, "type", s_obj_str("fancy"), "type: unknown value");
    s_body_value_rejects(PROTO_RECS_REQ, "type", s_obj_uint(1), "type: not a string");
    s_body_value_rejects(PROTO_RECS_REQ, "explain", s_obj_uint(1), "explain");
    s_body_value_rejects(PROTO_RECS_REQ, "exclude", s_obj_str("v7,v8"), "exclude: not an array");
    s_body_value_rejects(PROTO_RECS_REP, "type", s_obj_str("fancy"), "type: unknown value");
    s_body_value_rejects(PROTO_RECS_REP, "model_version", s_obj_int(-1), "model_version");
    s_body_value_rejects(PROTO_RECS_REP, "model_version", s_obj_str("3"), "model_version");
    s_body_value_accepts(PROTO_RECS_REQ, "type", s_obj_str(""));
    s_body_value_accepts(PROTO_RECS_REQ, "type", s_obj_str("popularity"));

    //  exclude elements: each a valid non-empty id.
    tree_t t;
    tree_of(&t, PROTO_RECS_REQ);
    msgpack_object *ex = &map_kv(tree_env(&t, 5), "exclude")->val;
    ex->via.array.ptr[1] = s_obj_str("");
    tree_reject(&t, "exclude[1]: empty");
    ex->via.array.ptr[1] = s_obj_uint(3);
    tree_reject(&t, "exclude: not a string");
    ex->via.array.ptr[1] = s_obj_str("has space");
    tree_reject(&t, "exclude[1]: byte 0x20");
    tree_free(&t);

    //  Reasons: ids too; a fourth element is not an item.
    tree_of(&t, PROTO_RECS_REP);
    msgpack_object *item = &map_kv(tree_env(&t, 5), "items")->val.via.array.ptr[0];
    cr_assert_eq(item->via.array.size, 3);
    item->via.array.ptr[2] = s_obj_uint(1);
    tree_reject(&t, "items.reason: not a string");
    char long_id[PROTO_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    item->via.array.ptr[2] = s_obj_str(long_id);
    tree_reject(&t, "items.reason: 65 bytes");
    tree_free(&t);
}

//  exclude holds at most PROTO_EXCLUDE_MAX ids, on encode and on decode.
Test(proto, recs_exclude_bounds)
{
    proto_msg_t *msg = s_valid(PROTO_RECS_REQ);
    msg->body.recs_req.exclude_count = PROTO_EXCLUDE_MAX;
    for (int i = 0; i < PROTO_EXCLUDE_MAX; i++)
        snprintf(msg->body.recs_req.exclude[i], PROTO_ID_MAX + 1, "video-%d", i);
    s_roundtrip(msg);
    char *data = NULL;
    size_t size = 0;
    char err[256] = "";
    msg->body.recs_req.exclude_count = PROTO_EXCLUDE_MAX + 1;
    cr_assert_neq(proto_encode(msg, &data, &size, err, sizeof err), 0);
    cr_assert(strstr(err, "exclude: 101 ids, at most 100"), "%s", err);
    msg->body.recs_req.exclude_count = 1;
    snprintf(msg->body.recs_req.type, sizeof msg->body.recs_req.type, "nope");
    cr_assert_neq(proto_encode(msg, &data, &size, err, sizeof err), 0);
    cr_assert(strstr(err, "type: unknown"), "%s", err);
    proto_msg_destroy(&msg);

    //  101 ids on the wire.
    static msgpack_object ids[PROTO_EXCLUDE_MAX + 1];
    for (int i = 0; i <= PROTO_EXCLUDE_MAX; i++)
        ids[i] = s_obj_str("v");
    msgpack_object arr = {.type = MSGPACK_OBJECT_ARRAY};
    arr.via.array.ptr = ids;
    arr.via.array.size = PROTO_EXCLUDE_MAX + 1;
    s_body_value_rejects(PROTO_RECS_REQ, "exclude", arr, "exclude: 101 ids, at most 100");
    arr.via.array.size = PROTO_EXCLUDE_MAX;
    s_body_value_accepts(PROTO_RECS_REQ, "exclude", arr);
    cr_assert(proto_recs_type_valid(""));
    cr_assert(proto_recs_type_valid("collaborative"));
    cr_assert_not(proto_recs_type_valid("Collaborative"));
    cr_assert_not(proto_recs_type_valid(NULL));
}

//  PROTO_LOG_LEVEL, and the optional log_level of heartbeats and status
//  (absent in messages from senders that predate it: they decode as "").
Test(proto, log_level_message_and_reported_levels)
{
    const char *levels[] = {"debug", "info", "warn", "error"};
    const char *actors[] = {"", "supervisor", "ranker", "ranker.2"};
    for (int i = 0; i < 4; i++) {
        proto_msg_t *msg = s_valid(PROTO_LOG_LEVEL);
        snprintf(msg->body.log_level.level, sizeof msg->body.log_level.level, "%s", levels[i]);
        snprintf(msg->body.log_level.actor, sizeof msg->body.log_level.actor, "%s", actors[i]);
        s_roundtrip(msg);
        proto_msg_destroy(&msg);
        cr_assert(proto_log_level_valid(levels[i]));
    }
    cr_assert_not(proto_log_level_valid(""));
    cr_assert_not(proto_log_level_valid("Debug"));
    cr_assert_not(proto_log_level_valid(NULL));
    cr_assert_str_eq(proto_type_name(PROTO_LOG_LEVEL), "log_level");

    s_body_value_rejects(PROTO_LOG_LEVEL, "level", s_obj_str(""), "level: empty");
    s_body_value_rejects(PROTO_LOG_LEVEL, "level", s_obj_str("verbose"),
                         "level: unknown value \"verbose\"");
    s_body_value_rejects(PROTO_LOG_LEVEL, "level", s_obj_str("debugging!"), "level: 10 bytes");
    s_body_value_rejects(PROTO_LOG_LEVEL, "level", s_obj_uint(0), "level: not a string");
    s_body_value_rejects(PROTO_LOG_LEVEL, "actor", s_obj_str("rank er"), "actor: byte 0x20");
    s_body_value_accepts(PROTO_LOG_LEVEL, "actor", s_obj_str(""));

    //  Reported levels: round trip, absent = "", checked when present.
    proto_msg_t *msg = s_valid(PROTO_HEARTBEAT);
    snprintf(msg->body.heartbeat.log_level, sizeof msg->body.heartbeat.log_level, "warn");
    s_roundtrip(msg);
    char err[256] = "", *data = NULL;
    size_t size = 0;
    snprintf(msg->body.heartbeat.log_level, sizeof msg->body.heartbeat.log_level, "loud");
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), -1);
    cr_assert(strstr(err, "log_level: unknown value"), "%s", err);
    proto_msg_destroy(&msg);

    msg = s_valid(PROTO_STATUS_REP);
    snprintf(msg->body.status.log_level, sizeof msg->body.status.log_level, "error");
    snprintf(msg->body.status.actors[0].log_level, sizeof msg->body.status.actors[0].log_level,
             "debug");
    snprintf(msg->body.status.actors[2].log_level, sizeof msg->body.status.actors[2].log_level,
             "info");
    s_roundtrip(msg);
    snprintf(msg->body.status.actors[1].log_level, sizeof msg->body.status.actors[1].log_level,
             "x");
    cr_assert_eq(proto_encode(msg, &data, &size, err, sizeof err), -1);
    cr_assert(strstr(err, "actors[1].log_level: unknown value"), "%s", err);
    proto_msg_destroy(&msg);

    //  Decoding checks the same rules.
    tree_t t;
    tree_of(&t, PROTO_HEARTBEAT);
    msgpack_object *body = tree_env(&t, 5);
    msgpack_object_kv extra[8];
    cr_assert_lt(body->via.map.size, 8);
    memcpy(extra, body->via.map.ptr, body->via.map.size * sizeof *extra);
    extra[body->via.map.size].key = s_obj_str("log_level");
    extra[body->via.map.size].val = s_obj_str("chatty");
    msgpack_object_kv *saved = body->via.map.ptr;
    body->via.map.ptr = extra;
    body->via.map.size++;
    tree_reject(&t, "log_level: unknown value");
    extra[body->via.map.size - 1].val = s_obj_uint(1);
    tree_reject(&t, "log_level: not a string");
    extra[body->via.map.size - 1].val = s_obj_str("info");
    proto_msg_t *ok = tree_accept(&t);
    cr_assert_str_eq(ok->body.heartbeat.log_level, "info");
    proto_msg_destroy(&ok);
    body->via.map.size--;
    ok = tree_accept(&t);
    cr_assert_str_eq(ok->body.heartbeat.log_level, "", "absent: not reported");
    proto_msg_destroy(&ok);
    body->via.map.ptr = saved;
    tree_free(&t);
}
