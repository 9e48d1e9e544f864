/*  proto_event.h: "produce this event", an actor -> publisher message.

    Actors hand fire-and-forget domain events (RecommendationsRefreshed...)
    to the publisher, the only Kafka producer, over a PUSH/PULL socket
    (lib/event_sender.h). This is not a proto.h envelope: it has no reply,
    no request id and no deadline, and it travels only on the publisher's
    events socket, so it is its own small message with its own version.

    Wire format: one ZeroMQ frame, a msgpack array of exactly 5 elements
        [ version:uint, topic:str, key:str|nil, payload:str, headers:map ]
    version  PROTO_EVENT_VERSION; any other value is rejected.
    topic    1..PROTO_EVENT_TOPIC_MAX bytes of [A-Za-z0-9._-] (Kafka's rule).
    key      nil (no key), or 0..PROTO_EVENT_KEY_MAX bytes without NUL.
    payload  a JSON object (UTF-8 text), 2..PROTO_EVENT_PAYLOAD_MAX bytes;
             msgpack str (bin is accepted too) -- the Kafka message value.
    headers  map of at most PROTO_EVENT_HEADERS_MAX entries, name -> value:
             names 1..PROTO_EVENT_HEADER_NAME_MAX bytes of printable ASCII
             without space (0x21..0x7e), values str of 0..PROTO_EVENT_HEADER_VALUE_MAX
             bytes without NUL; names unique. Sent as Kafka headers in order.
    The frame is at most PROTO_EVENT_MAX bytes; trailing bytes, wrong
    types, any other msgpack type, and truncation are errors.

    Decoding reads the bytes with its own bounded cursor (no msgpack
    unpacker zone sized by counts from the input), so a hostile frame
    costs at most its own size in memory; it never crashes.

    Ownership: a proto_event_t owns copies of all its strings; getters
    return borrowed pointers valid until proto_event_destroy.
*/
#ifndef RECSD_PROTO_EVENT_H
#define RECSD_PROTO_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_EVENT_VERSION 1
#define PROTO_EVENT_MAX (128 * 1024)
#define PROTO_EVENT_TOPIC_MAX 249
#define PROTO_EVENT_KEY_MAX 256
#define PROTO_EVENT_PAYLOAD_MAX (64 * 1024)
#define PROTO_EVENT_HEADERS_MAX 16
#define PROTO_EVENT_HEADER_NAME_MAX 64
#define PROTO_EVENT_HEADER_VALUE_MAX 512

typedef struct proto_event_t proto_event_t;

//  Creates an event for topic with key (NULL: none) and payload (payload_len
//  bytes, a JSON object), all copied, and no headers. Returns NULL with the
//  reason in err if a field breaks the rules above (or out of memory).
proto_event_t *proto_event_new(const char *topic, const char *key, const char *payload,
                               size_t payload_len, char *err, size_t errlen);

//  Frees the event; idempotent, sets *self_p to NULL.
void proto_event_destroy(proto_event_t **self_p);

//  Appends a header (both copied). Returns 0, or -1 with the reason in err
//  (bad name or value, duplicate name, already PROTO_EVENT_HEADERS_MAX).
int proto_event_add_header(proto_event_t *self, const char *name, const char *value, char *err,
                           size_t errlen);

//  Borrowed fields. key is NULL when there is none; payload is
//  NUL-terminated, payload_len excludes the NUL.
const char *proto_event_topic(const proto_event_t *self);
const char *proto_event_key(const proto_event_t *self);
const char *proto_event_payload(const proto_event_t *self);
size_t proto_event_payload_len(const proto_event_t *self);
size_t proto_event_header_count(const proto_event_t *self);

//  Header i (0-based) into *name and *value (borrowed). Returns 0, or -1
//  if i is out of range.
int proto_event_header(const proto_event_t *self, size_t i, const char **name, const char **value);

//  Serialises the event into a new buffer (*data, *size) the caller frees
//  with free(). Returns 0, or -1 with the reason in err.
int proto_event_encode(const proto_event_t *self, char **data, size_t *size, char *err,
                       size_t errlen);

//  Parses and validates size bytes. Returns an event the caller owns, or
//  NULL with the reason in err.
proto_event_t *proto_event_decode(const void *data, size_t size, char *err, size_t errlen);

#endif
