/*  proto_event.c: the actor -> publisher "produce this event" message (see
    proto_event.h). Encoding uses msgpack-c's packer; decoding is a small
    bounded cursor over the bytes, so nothing is allocated on the word of
    the input. */
#include "proto_event.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    char *value;
} s_header_t;

struct proto_event_t {
    char topic[PROTO_EVENT_TOPIC_MAX + 1];
    char *key; //  NULL: no key
    char *payload;
    size_t payload_len;
    size_t header_count;
    s_header_t headers[PROTO_EVENT_HEADERS_MAX];
};

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

//  ---- validation (shared by new, add_header and decode) ----------------------

static int s_check_topic(const char *s, size_t len, char *err, size_t errlen)
{
    if (len == 0 || len > PROTO_EVENT_TOPIC_MAX) {
        s_seterr(err, errlen, "topic: length %zu, expected 1..%d", len, PROTO_EVENT_TOPIC_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            s_seterr(err, errlen, "topic: byte %zu is not one of [A-Za-z0-9._-]", i);
            return -1;
        }
    }
    return 0;
}

//  A string that becomes a C string: bounded, no NUL inside.
static int s_check_text(const char *s, size_t len, size_t max, const char *what, char *err,
                        size_t errlen)
{
    if (len > max) {
        s_seterr(err, errlen, "%s: %zu bytes, at most %zu", what, len, max);
        return -1;
    }
    if (memchr(s, '\0', len)) {
        s_seterr(err, errlen, "%s: contains a NUL byte", what);
        return -1;
    }
    return 0;
}

static int s_check_header_name(const char *s, size_t len, char *err, size_t errlen)
{
    if (len == 0 || len > PROTO_EVENT_HEADER_NAME_MAX) {
        s_seterr(err, errlen, "header name: length %zu, expected 1..%d", len,
                 PROTO_EVENT_HEADER_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
            s_seterr(err, errlen, "header name: byte %zu is not printable ASCII", i);
            return -1;
        }
    return 0;
}

static int s_check_payload(const char *s, size_t len, char *err, size_t errlen)
{
    if (len < 2 || len > (size_t)PROTO_EVENT_PAYLOAD_MAX) {
        s_seterr(err, errlen, "payload: %zu bytes, expected 2..%d", len, PROTO_EVENT_PAYLOAD_MAX);
        return -1;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(s, len, 0, &jerr);
    if (!doc) {
        s_seterr(err, errlen, "payload: not JSON: %s", jerr.text);
        return -1;
    }
    bool object = json_is_object(doc);
    json_decref(doc);
    if (!object) {
        s_seterr(err, errlen, "payload: not a JSON object");
        return -1;
    }
    return 0;
}

static char *s_dup(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

//  ---- the class --------------------------------------------------------------

//  new and decode: fields given as (pointer, length).
static proto_event_t *s_new(const char *topic, size_t topic_len, const char *key, size_t key_len,
                            const char *payload, size_t payload_len, char *err, size_t errlen)
{
    if (s_check_topic(topic, topic_len, err, errlen) != 0 ||
        (key && s_check_text(key, key_len, PROTO_EVENT_KEY_MAX, "key", err, errlen) != 0) ||
        s_check_payload(payload, payload_len, err, errlen) != 0)
        return NULL;
    proto_event_t *self = calloc(1, sizeof *self);
    if (!self)
        goto oom;
    memcpy(self->topic, topic, topic_len);
    self->payload = s_dup(payload, payload_len);
    self->payload_len = payload_len;
    if (!self->payload || (key && !(self->key = s_dup(key, key_len))))
        goto oom;
    return self;
oom:
    proto_event_destroy(&self);
    s_seterr(err, errlen, "out of memory");
    return NULL;
}

proto_event_t *proto_event_new(const char *topic, const char *key, const char *payload,
                               size_t payload_len, char *err, size_t errlen)
{
    if (!topic || !payload) {
        s_seterr(err, errlen, "topic and payload are required");
        return NULL;
    }
    return s_new(topic, strlen(topic), key, key ? strlen(key) : 0, payload, payload_len, err,
                 errlen);
}

void proto_event_destroy(proto_event_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    proto_event_t *self = *self_p;
    for (size_t i = 0; i < self->header_count; i++) {
        free(self->headers[i].name);
        free(self->headers[i].value);
    }
    free(self->key);
    free(self->payload);
    free(self);
    *self_p = NULL;
}

static int s_add_header(proto_event_t *self, const char *name, size_t name_len, const char *value,
                        size_t value_len, char *err, size_t errlen)
{
    if (self->header_count == PROTO_EVENT_HEADERS_MAX) {
        s_seterr(err, errlen, "headers: more than %d", PROTO_EVENT_HEADERS_MAX);
        return -1;
    }
    if (s_check_header_name(name, name_len, err, errlen) != 0 ||
        s_check_text(value, value_len, PROTO_EVENT_HEADER_VALUE_MAX, "header value", err, errlen) !=
            0)
        return -1;
    for (size_t i = 0; i < self->header_count; i++)
        if (strlen(self->headers[i].name) == name_len &&
            memcmp(self->headers[i].name, name, name_len) == 0) {
            s_seterr(err, errlen, "header %s: given twice", self->headers[i].name);
            return -1;
        }
    s_header_t h = {s_dup(name, name_len), s_dup(value, value_len)};
    if (!h.name || !h.value) {
        free(h.name);
        free(h.value);
        s_seterr(err, errlen, "out of memory");
        return -1;
    }
    self->headers[self->header_count++] = h;
    return 0;
}

int proto_event_add_header(proto_event_t *self, const char *name, const char *value, char *err,
                           size_t errlen)
{
    if (!name || !value) {
        s_seterr(err, errlen, "header name and value are required");
        return -1;
    }
    return s_add_header(self, name, strlen(name), value, strlen(value), err, errlen);
}

const char *proto_event_topic(const proto_event_t *self)
{
    return self->topic;
}

const char *proto_event_key(const proto_event_t *self)
{
    return self->key;
}

const char *proto_event_payload(const proto_event_t *self)
{
    return self->payload;
}

size_t proto_event_payload_len(const proto_event_t *self)
{
    return self->payload_len;
}

size_t proto_event_header_count(const proto_event_t *self)
{
    return self->header_count;
}

int proto_event_header(const proto_event_t *self, size_t i, const char **name, const char **value)
{
    if (i >= self->header_count)
        return -1;
    *name = self->headers[i].name;
    *value = self->headers[i].value;
    return 0;
}

//  ---- encoding ---------------------------------------------------------------

static int s_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len) ? -1 : 0;
}

int proto_event_encode(const proto_event_t *self, char **data, size_t *size, char *err,
                       size_t errlen)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 5) || msgpack_pack_unsigned_int(&pk, PROTO_EVENT_VERSION) ||
             s_pack_str(&pk, self->topic, strlen(self->topic)) ||
             (self->key ? s_pack_str(&pk, self->key, strlen(self->key)) : msgpack_pack_nil(&pk)) ||
             s_pack_str(&pk, self->payload, self->payload_len) ||
             msgpack_pack_map(&pk, self->header_count);
    for (size_t i = 0; !rc && i < self->header_count; i++)
        rc = s_pack_str(&pk, self->headers[i].name, strlen(self->headers[i].name)) ||
             s_pack_str(&pk, self->headers[i].value, strlen(self->headers[i].value));
    if (rc) {
        s_seterr(err, errlen, "out of memory");
        goto err;
    }
    if (sbuf.size > (size_t)PROTO_EVENT_MAX) {
        s_seterr(err, errlen, "event: %zu bytes, at most %d", sbuf.size, PROTO_EVENT_MAX);
        goto err;
    }
    *size = sbuf.size;
    *data = msgpack_sbuffer_release(&sbuf);
    return 0;
err:
    msgpack_sbuffer_destroy(&sbuf);
    return -1;
}

//  ---- decoding ---------------------------------------------------------------

typedef struct {
    const uint8_t *p;
    size_t size, pos;
} s_cursor_t;

//  Reads a big-endian unsigned of width bytes. Returns 0, or -1 if truncated.
static int s_be(s_cursor_t *c, int width, uint64_t *out)
{
    if (c->size - c->pos < (size_t)width)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = v << 8 | c->p[c->pos++];
    *out = v;
    return 0;
}

//  Reads a container header: kind 'a' (array) or 'm' (map). Returns 0 with
//  the count, or -1.
static int s_container(s_cursor_t *c, char kind, uint64_t *count)
{
    if (c->pos >= c->size)
        return -1;
    uint8_t b = c->p[c->pos++];
    uint8_t fix = kind == 'a' ? 0x90 : 0x80;
    uint8_t w16 = kind == 'a' ? 0xdc : 0xde;
    if ((b & 0xf0) == fix) {
        *count = b & 0x0f;
        return 0;
    }
    if (b == w16)
        return s_be(c, 2, count);
    if (b == w16 + 1)
        return s_be(c, 4, count);
    return -1;
}

//  Reads a str (or, with allow_bin, a bin) into (*s, *len) pointing into the
//  input. Returns 0, 1 for nil when allow_nil, or -1.
static int s_string(s_cursor_t *c, bool allow_bin, bool allow_nil, const char **s, size_t *len)
{
    if (c->pos >= c->size)
        return -1;
    uint8_t b = c->p[c->pos++];
    uint64_t n;
    if ((b & 0xe0) == 0xa0)
        n = b & 0x1f;
    else if (b == 0xd9 || (allow_bin && b == 0xc4)) {
        if (s_be(c, 1, &n))
            return -1;
    } else if (b == 0xda || (allow_bin && b == 0xc5)) {
        if (s_be(c, 2, &n))
            return -1;
    } else if (b == 0xdb || (allow_bin && b == 0xc6)) {
        if (s_be(c, 4, &n))
            return -1;
    } else if (b == 0xc0 && allow_nil)
        return 1;
    else
        return -1;
    if (n > c->size - c->pos)
        return -1;
    *s = (const char *)c->p + c->pos;
    *len = (size_t)n;
    c->pos += (size_t)n;
    return 0;
}

static int s_uint(s_cursor_t *c, uint64_t *out)
{
    if (c->pos >= c->size)
        return -1;
    uint8_t b = c->p[c->pos++];
    if (b < 0x80) {
        *out = b;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf)
        return s_be(c, 1 << (b - 0xcc), out);
    return -1;
}

proto_event_t *proto_event_decode(const void *data, size_t size, char *err, size_t errlen)
{
    if (!data || size == 0) {
        s_seterr(err, errlen, "empty message");
        return NULL;
    }
    if (size > (size_t)PROTO_EVENT_MAX) {
        s_seterr(err, errlen, "event: %zu bytes, at most %d", size, PROTO_EVENT_MAX);
        return NULL;
    }
    s_cursor_t c = {data, size, 0};
    uint64_t count, version;
    if (s_container(&c, 'a', &count) != 0 || count != 5) {
        s_seterr(err, errlen, "not an array of 5 elements");
        return NULL;
    }
    if (s_uint(&c, &version) != 0 || version != PROTO_EVENT_VERSION) {
        s_seterr(err, errlen, "version: expected the unsigned integer %d", PROTO_EVENT_VERSION);
        return NULL;
    }
    const char *topic, *key = NULL, *payload;
    size_t topic_len, key_len = 0, payload_len;
    if (s_string(&c, false, false, &topic, &topic_len) != 0) {
        s_seterr(err, errlen, "topic: not a string (or truncated)");
        return NULL;
    }
    int rc = s_string(&c, false, true, &key, &key_len);
    if (rc < 0) {
        s_seterr(err, errlen, "key: neither a string nor nil (or truncated)");
        return NULL;
    }
    if (rc == 1)
        key = NULL;
    if (s_string(&c, true, false, &payload, &payload_len) != 0) {
        s_seterr(err, errlen, "payload: not a string (or truncated)");
        return NULL;
    }
    uint64_t nheaders;
    if (s_container(&c, 'm', &nheaders) != 0) {
        s_seterr(err, errlen, "headers: not a map (or truncated)");
        return NULL;
    }
    if (nheaders > PROTO_EVENT_HEADERS_MAX) {
        s_seterr(err, errlen, "headers: %llu, at most %d", (unsigned long long)nheaders,
                 PROTO_EVENT_HEADERS_MAX);
        return NULL;
    }
    proto_event_t *self = s_new(topic, topic_len, key, key_len, payload, payload_len, err, errlen);
    if (!self)
        return NULL;
    for (uint64_t i = 0; i < nheaders; i++) {
        const char *name, *value;
        size_t name_len, value_len;
        if (s_string(&c, false, false, &name, &name_len) != 0 ||
            s_string(&c, false, false, &value, &value_len) != 0) {
            s_seterr(err, errlen, "headers: entry %llu is not string -> string (or truncated)",
                     (unsigned long long)i);
            goto err;
        }
        if (s_add_header(self, name, name_len, value, value_len, err, errlen) != 0)
            goto err;
    }
    if (c.pos != c.size) {
        s_seterr(err, errlen, "%zu trailing bytes", c.size - c.pos);
        goto err;
    }
    return self;
err:
    proto_event_destroy(&self);
    return NULL;
}
