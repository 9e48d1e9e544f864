/*  publisher_page.h: bookkeeping for one page of outbox rows in flight.

    The publisher claims up to a page of rows, produces each one to Kafka
    and waits for the delivery reports before it marks the page. A page
    tracks, per row, whether its report has arrived and how it went.

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

//  A page of at most capacity rows. Returns NULL if out of memory.
publisher_page_t *publisher_page_new(size_t capacity);

//  Idempotent; sets *self_p to NULL.
void publisher_page_destroy(publisher_page_t **self_p);

//  Empties the page and starts numbering its rows at base_seq.
void publisher_page_reset(publisher_page_t *self, uint64_t base_seq);

//  Appends outbox row id, outstanding. Returns its sequence number, or
//  UINT64_MAX if the page is full.
uint64_t publisher_page_add(publisher_page_t *self, int64_t id);

//  Records the outcome of the row with sequence number seq. Returns 0, or
//  -1 if seq is not an outstanding row of this page (stale or repeated).
int publisher_page_report(publisher_page_t *self, uint64_t seq, bool delivered);

//  Marks every row still outstanding as failed (the page was given up on).
//  Returns how many there were.
size_t publisher_page_expire(publisher_page_t *self);

size_t publisher_page_size(const publisher_page_t *self);
size_t publisher_page_capacity(const publisher_page_t *self);
size_t publisher_page_outstanding(const publisher_page_t *self);
size_t publisher_page_delivered(const publisher_page_t *self);
size_t publisher_page_failed(const publisher_page_t *self);

//  Outbox id of the row with sequence number seq, or -1 if none.
int64_t publisher_page_id(const publisher_page_t *self, uint64_t seq);

//  The ids of the delivered rows, in page order, borrowed from the page
//  (valid until the next reset or add); *count gets their number.
const int64_t *publisher_page_delivered_ids(publisher_page_t *self, size_t *count);

#endif
