/*  interaction_store.h: batched, idempotent writes of events to PostgreSQL.

    One call writes one batch in one transaction:
      - valid events go to features.interactions through COPY into a temp
        table and INSERT ... ON CONFLICT (event_id) DO NOTHING, so a replay
        or a duplicate delivery leaves one row. event_id is a natural key,
        the hex SHA-256 of a canonical text of the event (kind, then the
        fields that make it that event, strings length-prefixed so no ids
        can collide; the same event from any partition, or by import, is
        the same row):
          watch|<len>:<user_id>|<len>:<video_id>|<occurred_us>|<watched>|<total>|<len>:<device>
          rating|<len>:<user_id>|<len>:<video_id>|<occurred_us>|<rating>
          watchlist_add|<len>:<user_id>|<len>:<video_id>|<occurred_us>
          watchlist_remove|... (as watchlist_add)
        e.g. "rating|2:u1|2:v9|1714564800000000|4.5" (<len> in bytes, the
        rating as the shortest %g text that reads back as the same double).
        Columns: weight = event_weight(), rating only for ratings, the two
        durations and device only for watches (device "" is stored NULL);
      - their users go to features.users (ON CONFLICT DO NOTHING; a new
        user's created_at is their earliest event in the batch);
      - catalogue changes (event_video_t) are upserted into features.videos
        (title, genres, tags, duration_s, published_at, retired, and
        catalog_updated_at = the change's updated_at), but only where they
        are newer than the row's catalog_updated_at (or it is NULL: a video
        the catalogue never described, e.g. from an import). A replay, a
        duplicate or an older update that arrives late changes nothing and
        is counted stale; of several changes of one video in a batch the
        newest counts (equal updated_at: the first), the others are stale.
        The change carries the video's whole state: a newer one replaces
        every column, published_at NULL included;
      - invalid ones go to public.outbox for the dead-letter topic, in the
        same transaction (the publisher produces them), one row each:
          topic    dead_letter_topic
          key      the source topic, NULL if it is "" (an import)
          payload  {"reason": ..., "source": {"topic", "partition", "offset"},
                    "original": the bytes as a string if they are UTF-8
                                (without NUL), else null,
                    "original_base64": the bytes, base64 (always)}
                   partition/offset -1 are written as null
          headers  {"reason": ...}
    Either all of it commits or none: on error the transaction is rolled
    back and the caller may retry the same batch (it is idempotent).
    Concurrent writers of overlapping batches do not deadlock (rows are
    inserted in key order).

    The connection is borrowed; it must not be inside a transaction. The
    call creates a temporary table (recsd_ingest_batch) on it once and
    reuses it; the caller must not use that name.
*/
#ifndef RECSD_INTERACTION_STORE_H
#define RECSD_INTERACTION_STORE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

//  An event that failed validation, on its way to the dead-letter topic.
//  Every pointer is borrowed for the duration of the call. payload may hold
//  any bytes (NUL included); reason and topic should be UTF-8 text (bytes
//  that are not are written as '?' rather than failing the batch).
typedef struct {
    const char *topic; //  where it came from ("" for an import file)
    int32_t partition; //  -1 if none
    int64_t offset;    //  -1 if none (for imports: the line number)
    const void *payload;
    size_t len;
    const char *reason;
} dead_letter_t;

//  Slots of the per-kind counts: indexed by event_kind_t, [0] unused.
#define STORE_KINDS 5

typedef struct {
    size_t inserted;                        //  new interaction rows
    size_t duplicates;                      //  events already stored (replays)
    size_t dead_lettered;                   //  outbox rows written
    size_t inserted_by_kind[STORE_KINDS];   //  inserted, per event_kind_t
    size_t duplicates_by_kind[STORE_KINDS]; //  duplicates, per event_kind_t
    size_t videos_applied;                  //  catalogue changes that inserted or replaced a row
    size_t videos_stale; //  catalogue changes not newer than the stored (or batch's) version
    size_t conversions;  //  experiment outcomes the batch's watches produced
} store_result_t;

//  One batch for interaction_store_write_batch; every pointer is borrowed
//  (NULL allowed where its count is 0).
typedef struct {
    const event_t *events;
    size_t count;
    const event_video_t *videos;
    size_t video_count;
    const dead_letter_t *dead;
    size_t dead_count;
    //  > 0: the batch's VideoWatched events are attributed to the
    //  experiments' recent exposures of their users within this many
    //  seconds (experiment_store_attribute_watches), in the same
    //  transaction: conversions commit with the interactions.
    int attribution_window_s;
} store_batch_t;

//  Writes the batch as described above. events are expected to come from
//  event_parse (the server's constraints still reject e.g. a negative
//  duration: the whole batch then fails). rules (NULL: the defaults) give
//  the weights. dead_letter_topic names the topic for the outbox rows
//  (required if dead_count > 0). Returns 0 with *result filled
//  (duplicates = count - inserted, and the same per kind), or -1 with a one-line reason in err
//  (connection lost, constraint, ...: the server's message and SQLSTATE),
//  nothing written and *result zeroed. After a failed statement the
//  transaction is rolled back and the connection is usable again; after
//  a lost connection PQstatus says CONNECTION_BAD and the caller
//  reconnects. Not thread-safe per connection (libpq's rule).
int interaction_store_write(PGconn *conn, const event_t *events, size_t count,
                            const dead_letter_t *dead, size_t dead_count,
                            const event_rules_t *rules, const char *dead_letter_topic,
                            store_result_t *result, char *err, size_t errlen);

//  The same for a batch that may also hold catalogue changes (videos are
//  written after the interactions and before the dead letters, in the same
//  transaction). Returns 0 with *result filled (videos_applied +
//  videos_stale = video_count), or -1 as above.
int interaction_store_write_batch(PGconn *conn, const store_batch_t *batch,
                                  const event_rules_t *rules, const char *dead_letter_topic,
                                  store_result_t *result, char *err, size_t errlen);

#endif
