/*  publisher_page.h: bookkeeping for one page of outbox rows in flight.

    The publisher claims up to a page of rows, produces each one to Kafka
    and waits for the delivery reports before it marks the page. A page
    tracks, per row, whether its report has arrived and how it went: a
    failed row also gets whether the failure is permanent (Kafka will
    refuse the message however often it is retried, so the row is to be
    parked) and the reason, for the row's last_error.

    Every produced message carries a sequence number as its librdkafka
    opaque: row i of a page has base_seq + i, and sequence numbers never
    repeat within a process. A report whose number is outside the current
    page (a late report of a page that was given up on) is recognised as
    stale instead of being credited to whichever row now sits in that slot.

    Not thread-safe: delivery reports are served by rd_kafka_poll on the
    actor's own thread.
*/
#ifndef RECSD_PUBLISHER_PAGE_H
#define RECSD_PUBLISHER_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct publisher_page_t publisher_page_t;

//  What became of a row of the page.
typedef enum {
    PUBLISHER_ROW_OUTSTANDING = 0, //  no report yet
    PUBLISHER_ROW_DELIVERED,
    PUBLISHER_ROW_FAILED, //  transient: the row is to be claimed again
    PUBLISHER_ROW_PARKED  //  permanent: the row is never to be claimed again
} publisher_row_state_t;

//  Longest reason kept per failed row, terminating NUL included (longer
//  ones are truncated).
#define PUBLISHER_PAGE_REASON_MAX 200

//  A page of at most capacity rows. Returns NULL if out of memory.
publisher_page_t *publisher_page_new(size_t capacity);

//  Idempotent; sets *self_p to NULL.
void publisher_page_destroy(publisher_page_t **self_p);

//  Empties the page and starts numbering its rows at base_seq.
void publisher_page_reset(publisher_page_t *self, uint64_t base_seq);

//  Appends outbox row id, outstanding. Returns its sequence number, or
//  UINT64_MAX if the page is full.
uint64_t publisher_page_add(publisher_page_t *self, int64_t id);

//  Records the outcome of the row with sequence number seq (a failure as
//  transient, without a reason). Returns 0, or -1 if seq is not an
//  outstanding row of this page (stale or repeated).
int publisher_page_report(publisher_page_t *self, uint64_t seq, bool delivered);

//  Records that the row with sequence number seq failed: permanently
//  (PUBLISHER_ROW_PARKED) or not, and why (copied; NULL: none). Returns 0,
//  or -1 if seq is not an outstanding row of this page.
int publisher_page_fail(publisher_page_t *self, uint64_t seq, bool permanent, const char *reason);

//  Marks every row still outstanding as failed, transiently, with reason
//  (copied; the page was given up on). Returns how many there were.
size_t publisher_page_expire(publisher_page_t *self, const char *reason);

size_t publisher_page_size(const publisher_page_t *self);
size_t publisher_page_capacity(const publisher_page_t *self);
size_t publisher_page_outstanding(const publisher_page_t *self);
size_t publisher_page_delivered(const publisher_page_t *self);
//  Failed rows, transient and permanent alike.
size_t publisher_page_failed(const publisher_page_t *self);
//  Of those, the permanent ones.
size_t publisher_page_parked(const publisher_page_t *self);

//  Outbox id of the row with sequence number seq, or -1 if none.
int64_t publisher_page_id(const publisher_page_t *self, uint64_t seq);

//  Row index (0 .. size-1, page order): its state, and its outbox id and
//  failure reason ("" if none; borrowed, valid until the next reset) in
//  *id and *reason when not NULL. An index beyond the page reads as
//  PUBLISHER_ROW_OUTSTANDING with id -1 and reason "".
publisher_row_state_t publisher_page_row(const publisher_page_t *self, size_t index, int64_t *id,
                                         const char **reason);

//  The ids of the delivered rows, in page order, borrowed from the page
//  (valid until the next reset or add); *count gets their number.
const int64_t *publisher_page_delivered_ids(publisher_page_t *self, size_t *count);

#endif
