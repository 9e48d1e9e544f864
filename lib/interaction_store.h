/*  interaction_store.h: batched, idempotent writes of events to PostgreSQL.

    One call writes one batch in one transaction:
      - valid events go to features.interactions through COPY into a temp
        table and INSERT ... ON CONFLICT (event_id) DO NOTHING, so a replay
        or a duplicate delivery leaves one row. event_id is a natural key:
        a SHA-256 over (kind, user_id, video_id, timestamp, values), so the
        same event delivered twice, from any partition or by import, is
        the same row;
      - their users go to features.users (ON CONFLICT DO NOTHING);
      - invalid ones go to public.outbox for the dead-letter topic, with
        the original bytes, the reason and their source (topic, partition,
        offset), in the same transaction: the publisher produces them.
    Either all of it commits or none: on error the transaction is rolled
    back and the caller may retry the same batch (it is idempotent).

    The connection is borrowed; it must not be inside a transaction.
*/
#ifndef RECSD_INTERACTION_STORE_H
#define RECSD_INTERACTION_STORE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

//  An event that failed validation, on its way to the dead-letter topic.
//  payload is borrowed for the duration of the call.
typedef struct {
    const char *topic; //  where it came from ("" for an import file)
    int32_t partition; //  -1 if none
    int64_t offset;    //  -1 if none (for imports: the line number)
    const void *payload;
    size_t len;
    const char *reason;
} dead_letter_t;

typedef struct {
    size_t inserted;      //  new interaction rows
    size_t duplicates;    //  events already stored (replays)
    size_t dead_lettered; //  outbox rows written
} store_result_t;

//  Writes the batch as described above. dead_letter_topic names the topic
//  for the outbox rows. Returns 0 with *result filled, or -1 with the
//  reason in err (connection lost, constraint, ...), nothing written.
int interaction_store_write(PGconn *conn, const event_t *events, size_t count,
                            const dead_letter_t *dead, size_t dead_count,
                            const event_rules_t *rules, const char *dead_letter_topic,
                            store_result_t *result, char *err, size_t errlen);

#endif
