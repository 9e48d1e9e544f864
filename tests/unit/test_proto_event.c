/*  test_proto_event.c: the actor -> publisher event message
    (proto/proto_event.c): round trip, the documented rules, hostile bytes. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "leak_check.h"
#include "proto/proto_event.h"

TestSuite(proto_event, .fini = leak_check_fini);

#define PAYLOAD "{\"user_id\":\"u1\",\"recommendation_ids\":[\"v1\",\"v2\"]}"

static proto_event_t *s_sample(void)
{
    char err[256];
    proto_event_t *ev = proto_event_new("recommendation-service.recommendations-refreshed", "u1",
                                        PAYLOAD, strlen(PAYLOAD), err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    cr_assert_eq(proto_event_add_header(ev, "content-type", "application/json", err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(proto_event_add_header(ev, "empty", "", err, sizeof err), 0, "%s", err);
    return ev;
}

Test(proto_event, round_trip)
{
    proto_event_t *ev = s_sample();
    char *data, err[256];
    size_t size;
    cr_assert_eq(proto_event_encode(ev, &data, &size, err, sizeof err), 0, "%s", err);
    proto_event_t *back = proto_event_decode(data, size, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_str_eq(proto_event_topic(back), "recommendation-service.recommendations-refreshed");
    cr_assert_str_eq(proto_event_key(back), "u1");
    cr_assert_eq(proto_event_payload_len(back), strlen(PAYLOAD));
    cr_assert_str_eq(proto_event_payload(back), PAYLOAD);
    cr_assert_eq(proto_event_header_count(back), 2);
    const char *name, *value;
    cr_assert_eq(proto_event_header(back, 0, &name, &value), 0);
    cr_assert_str_eq(name, "content-type");
    cr_assert_str_eq(value, "application/json");
    cr_assert_eq(proto_event_header(back, 1, &name, &value), 0);
    cr_assert_str_eq(name, "empty");
    cr_assert_str_eq(value, "");
    cr_assert_eq(proto_event_header(back, 2, &name, &value), -1);
    //  The wire format is the documented one: a 5-array, version 1 first.
    cr_assert_eq((uint8_t)data[0], 0x95);
    cr_assert_eq((uint8_t)data[1], 0x01);
    free(data);
    proto_event_destroy(&back);
    proto_event_destroy(&ev);
    cr_assert_null(ev);
    proto_event_destroy(&ev); //  idempotent
}

Test(proto_event, no_key_and_no_headers)
{
    char *data, err[256];
    size_t size;
    proto_event_t *ev = proto_event_new("t", NULL, "{}", 2, err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    cr_assert_eq(proto_event_encode(ev, &data, &size, err, sizeof err), 0, "%s", err);
    proto_event_t *back = proto_event_decode(data, size, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_null(proto_event_key(back));
    cr_assert_eq(proto_event_header_count(back), 0);
    free(data);
    proto_event_destroy(&back);
    proto_event_destroy(&ev);
}

//  Packs [version, topic, key, payload, headers] with msgpack-c, with the
//  caller's choice of wire types, the way another implementation might.
typedef struct {
    int elements; //  array size
    uint64_t version;
    const char *topic;
    const char *key; //  NULL: nil
    size_t key_len;
    const char *payload;
    bool payload_bin;
    int headers;         //  count of ("h<i>", "v") entries
    bool header_int;     //  make the last header's value an int
    bool trailing;       //  append one byte
    int64_t neg_version; //  if nonzero, the version as this negative int
} s_spec_t;

static char *s_pack(const s_spec_t *sp, size_t *size)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)sp->elements);
    if (sp->neg_version)
        msgpack_pack_int64(&pk, sp->neg_version);
    else
        msgpack_pack_uint64(&pk, sp->version);
    if (sp->elements > 1) {
        msgpack_pack_str(&pk, strlen(sp->topic));
        msgpack_pack_str_body(&pk, sp->topic, strlen(sp->topic));
    }
    if (sp->elements > 2) {
        if (sp->key) {
            msgpack_pack_str(&pk, sp->key_len);
            msgpack_pack_str_body(&pk, sp->key, sp->key_len);
        } else
            msgpack_pack_nil(&pk);
    }
    if (sp->elements > 3) {
        size_t n = strlen(sp->payload);
        if (sp->payload_bin) {
            msgpack_pack_bin(&pk, n);
            msgpack_pack_bin_body(&pk, sp->payload, n);
        } else {
            msgpack_pack_str(&pk, n);
            msgpack_pack_str_body(&pk, sp->payload, n);
        }
    }
    if (sp->elements > 4) {
        msgpack_pack_map(&pk, (size_t)sp->headers);
        for (int i = 0; i < sp->headers; i++) {
            char name[16];
            snprintf(name, sizeof name, "h%d", i);
            msgpack_pack_str(&pk, strlen(name));
            msgpack_pack_str_body(&pk, name, strlen(name));
            if (sp->header_int && i == sp->headers - 1)
                msgpack_pack_int(&pk, 7);
            else {
                msgpack_pack_str(&pk, 1);
                msgpack_pack_str_body(&pk, "v", 1);
            }
        }
    }
    for (int i = 5; i < sp->elements; i++)
        msgpack_pack_nil(&pk);
    if (sp->trailing)
        msgpack_pack_nil(&pk);
    *size = sbuf.size;
    return msgpack_sbuffer_release(&sbuf);
}

static s_spec_t s_good(void)
{
    return (s_spec_t){.elements = 5,
                      .version = 1,
                      .topic = "a.b_c-D9",
                      .key = "k",
                      .key_len = 1,
                      .payload = "{\"a\":1}",
                      .headers = 2};
}

//  Decodes sp and expects success (want == NULL) or an error containing want.
static void s_expect(const s_spec_t *sp, const char *want)
{
    size_t size;
    char *data = s_pack(sp, &size), err[256] = "";
    proto_event_t *ev = proto_event_decode(data, size, err, sizeof err);
    free(data);
    if (!want) {
        cr_assert_not_null(ev, "expected success, got: %s", err);
        proto_event_destroy(&ev);
        return;
    }
    cr_assert_null(ev, "expected an error containing \"%s\"", want);
    cr_assert(strstr(err, want), "error \"%s\" should contain \"%s\"", err, want);
}

Test(proto_event, other_encodings_accepted)
{
    s_spec_t sp = s_good();
    s_expect(&sp, NULL);
    sp.payload_bin = true; //  bin payload is accepted
    s_expect(&sp, NULL);
    sp = s_good();
    sp.key = NULL; //  nil key
    s_expect(&sp, NULL);
    sp = s_good();
    sp.headers = PROTO_EVENT_HEADERS_MAX;
    s_expect(&sp, NULL);
    //  A long topic and payload force str8/str16 and map16 encodings.
    char topic[PROTO_EVENT_TOPIC_MAX + 1];
    memset(topic, 'x', PROTO_EVENT_TOPIC_MAX);
    topic[PROTO_EVENT_TOPIC_MAX] = '\0';
    sp = s_good();
    sp.topic = topic;
    s_expect(&sp, NULL);
}

Test(proto_event, rules_enforced)
{
    s_spec_t sp = s_good();
    sp.elements = 4;
    s_expect(&sp, "array of 5");
    sp = s_good();
    sp.elements = 6;
    s_expect(&sp, "array of 5");
    sp = s_good();
    sp.version = 2;
    s_expect(&sp, "version");
    sp = s_good();
    sp.neg_version = -1;
    s_expect(&sp, "version");
    sp = s_good();
    sp.topic = "";
    s_expect(&sp, "topic");
    sp.topic = "bad topic";
    s_expect(&sp, "topic");
    sp.topic = "bad/topic";
    s_expect(&sp, "topic");
    char topic[PROTO_EVENT_TOPIC_MAX + 2];
    memset(topic, 'x', PROTO_EVENT_TOPIC_MAX + 1);
    topic[PROTO_EVENT_TOPIC_MAX + 1] = '\0';
    sp.topic = topic;
    s_expect(&sp, "topic");
    sp = s_good();
    sp.key = "a\0b";
    sp.key_len = 3;
    s_expect(&sp, "NUL");
    char key[PROTO_EVENT_KEY_MAX + 2];
    memset(key, 'k', sizeof key);
    sp.key = key;
    sp.key_len = PROTO_EVENT_KEY_MAX + 1;
    s_expect(&sp, "key");
    sp = s_good();
    sp.payload = "not json";
    s_expect(&sp, "payload");
    sp.payload = "[1,2]";
    s_expect(&sp, "not a JSON object");
    sp.payload = "{\"a\":1} trailing";
    s_expect(&sp, "payload");
    sp = s_good();
    sp.headers = PROTO_EVENT_HEADERS_MAX + 1;
    s_expect(&sp, "headers");
    sp = s_good();
    sp.header_int = true;
    s_expect(&sp, "headers");
    sp = s_good();
    sp.trailing = true;
    s_expect(&sp, "trailing");
}

Test(proto_event, constructor_rules)
{
    char err[256];
    cr_assert_null(proto_event_new("t t", NULL, "{}", 2, err, sizeof err));
    cr_assert_null(proto_event_new("t", NULL, "[]", 2, err, sizeof err));
    cr_assert_null(proto_event_new(NULL, NULL, "{}", 2, err, sizeof err));
    proto_event_t *ev = proto_event_new("t", NULL, "{}", 2, err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    cr_assert_eq(proto_event_add_header(ev, "a", "1", err, sizeof err), 0);
    cr_assert_eq(proto_event_add_header(ev, "a", "2", err, sizeof err), -1);
    cr_assert(strstr(err, "twice"), "%s", err);
    cr_assert_eq(proto_event_add_header(ev, "with space", "2", err, sizeof err), -1);
    cr_assert_eq(proto_event_add_header(ev, "", "2", err, sizeof err), -1);
    for (int i = 1; i < PROTO_EVENT_HEADERS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        cr_assert_eq(proto_event_add_header(ev, name, "v", err, sizeof err), 0, "%s", err);
    }
    cr_assert_eq(proto_event_add_header(ev, "one-too-many", "v", err, sizeof err), -1);
    proto_event_destroy(&ev);
}

Test(proto_event, hostile_bytes)
{
    char err[256];
    //  Containers that declare far more than they hold: no allocation by count.
    const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    cr_assert_null(proto_event_decode(huge_array, sizeof huge_array, err, sizeof err));
    const uint8_t huge_map[] = {0x95, 0x01, 0xa1, 't',  0xc0, 0xa2, '{',
                                '}',  0xdf, 0xff, 0xff, 0xff, 0xff};
    cr_assert_null(proto_event_decode(huge_map, sizeof huge_map, err, sizeof err));
    const uint8_t huge_str[] = {0x95, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 't'};
    cr_assert_null(proto_event_decode(huge_str, sizeof huge_str, err, sizeof err));
    cr_assert_null(proto_event_decode(NULL, 0, err, sizeof err));
    cr_assert_null(proto_event_decode("", 0, err, sizeof err));
    char *big = calloc(1, PROTO_EVENT_MAX + 1);
    cr_assert_null(proto_event_decode(big, PROTO_EVENT_MAX + 1, err, sizeof err));
    free(big);

    //  Every truncation of a valid message is an error, never a crash.
    proto_event_t *ev = s_sample();
    char *data;
    size_t size;
    cr_assert_eq(proto_event_encode(ev, &data, &size, err, sizeof err), 0, "%s", err);
    proto_event_destroy(&ev);
    for (size_t n = 0; n < size; n++) {
        //  A copy of exactly n bytes, so ASan sees any read past the end.
        char *cut = malloc(n ? n : 1);
        memcpy(cut, data, n);
        cr_assert_null(proto_event_decode(cut, n, err, sizeof err), "truncated at %zu", n);
        free(cut);
    }

    //  Random mutations: decode fails or yields an event that re-encodes
    //  and decodes to the same thing.
    uint64_t state = 0x9e3779b97f4a7c15u;
    char *copy = malloc(size);
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, data, size);
        int flips = 1 + (int)(state % 4);
        for (int f = 0; f < flips; f++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            copy[(state >> 33) % size] = (char)(state >> 17);
        }
        proto_event_t *m = proto_event_decode(copy, size, err, sizeof err);
        if (!m)
            continue;
        char *again;
        size_t again_size;
        cr_assert_eq(proto_event_encode(m, &again, &again_size, err, sizeof err), 0, "%s", err);
        proto_event_t *m2 = proto_event_decode(again, again_size, err, sizeof err);
        cr_assert_not_null(m2, "a decoded event re-encodes validly: %s", err);
        cr_assert_str_eq(proto_event_topic(m), proto_event_topic(m2));
        cr_assert_eq(proto_event_header_count(m), proto_event_header_count(m2));
        free(again);
        proto_event_destroy(&m2);
        proto_event_destroy(&m);
    }
    free(copy);
    free(data);
}
