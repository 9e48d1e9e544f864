/*  publisher_headers.h: Kafka headers of an outbox row.

    The outbox keeps a row's headers as a JSON object, name -> string
    (migrations/003_outbox.sql). Each member becomes one Kafka header, in
    the object's order; a JSON null becomes a header with a null value and
    any other non-string value its compact JSON text (the column type cannot
    forbid them, and dropping data silently is worse). The publisher adds
    "outbox-id" = the row id in decimal, so consumers can dedupe on it; a
    member of that name in the row is replaced by it, never sent twice.
*/
#ifndef RECSD_PUBLISHER_HEADERS_H
#define RECSD_PUBLISHER_HEADERS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define PUBLISHER_HEADER_OUTBOX_ID "outbox-id"

//  Builds the headers from json (the headers column as text; NULL or ""
//  count as {}) plus "outbox-id". Returns a list the caller owns
//  (rd_kafka_headers_destroy, or hand it to rd_kafka_producev which takes
//  it on success), or NULL with the reason in err if json is not a JSON
//  object.
rd_kafka_headers_t *publisher_headers_build(const char *json, int64_t outbox_id, char *err,
                                            size_t errlen);

#endif
