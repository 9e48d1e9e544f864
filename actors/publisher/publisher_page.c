/*  publisher_page.c: delivery bookkeeping for a page of outbox rows (see
    publisher_page.h). */
#include "publisher_page.h"

#include <stdio.h>
#include <stdlib.h>

struct publisher_page_t {
    size_t capacity;
    size_t size;
    uint64_t base_seq;
    int64_t *ids;
    unsigned char *states;                      //  publisher_row_state_t per row
    char (*reasons)[PUBLISHER_PAGE_REASON_MAX]; //  per row; "" unless failed with a reason
    int64_t *delivered;                         //  scratch for publisher_page_delivered_ids
    size_t outstanding;
    size_t delivered_count;
    size_t failed;
    size_t parked;
};

publisher_page_t *publisher_page_new(size_t capacity)
{
    publisher_page_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->capacity = capacity;
    self->ids = calloc(capacity ? capacity : 1, sizeof *self->ids);
    self->states = calloc(capacity ? capacity : 1, sizeof *self->states);
    self->delivered = calloc(capacity ? capacity : 1, sizeof *self->delivered);
    self->reasons = calloc(capacity ? capacity : 1, sizeof *self->reasons);
    if (!self->ids || !self->states || !self->delivered || !self->reasons)
        publisher_page_destroy(&self);
    return self;
}

void publisher_page_destroy(publisher_page_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    publisher_page_t *self = *self_p;
    free(self->ids);
    free(self->states);
    free(self->delivered);
    free(self->reasons);
    free(self);
    *self_p = NULL;
}

void publisher_page_reset(publisher_page_t *self, uint64_t base_seq)
{
    self->size = 0;
    self->base_seq = base_seq;
    self->outstanding = 0;
    self->delivered_count = 0;
    self->failed = 0;
    self->parked = 0;
}

uint64_t publisher_page_add(publisher_page_t *self, int64_t id)
{
    if (self->size >= self->capacity)
        return UINT64_MAX;
    self->ids[self->size] = id;
    self->states[self->size] = PUBLISHER_ROW_OUTSTANDING;
    self->reasons[self->size][0] = '\0';
    self->outstanding++;
    return self->base_seq + self->size++;
}

//  Records the outcome of the row in slot; it must be outstanding.
static int s_record(publisher_page_t *self, uint64_t seq, publisher_row_state_t state,
                    const char *reason)
{
    if (seq < self->base_seq || seq - self->base_seq >= self->size)
        return -1;
    size_t slot = (size_t)(seq - self->base_seq);
    if (self->states[slot] != PUBLISHER_ROW_OUTSTANDING)
        return -1;
    self->states[slot] = (unsigned char)state;
    self->outstanding--;
    if (state == PUBLISHER_ROW_DELIVERED)
        self->delivered_count++;
    else
        self->failed++;
    if (state == PUBLISHER_ROW_PARKED)
        self->parked++;
    snprintf(self->reasons[slot], sizeof self->reasons[slot], "%s", reason ? reason : "");
    return 0;
}

int publisher_page_report(publisher_page_t *self, uint64_t seq, bool delivered)
{
    return s_record(self, seq, delivered ? PUBLISHER_ROW_DELIVERED : PUBLISHER_ROW_FAILED, NULL);
}

int publisher_page_fail(publisher_page_t *self, uint64_t seq, bool permanent, const char *reason)
{
    return s_record(self, seq, permanent ? PUBLISHER_ROW_PARKED : PUBLISHER_ROW_FAILED, reason);
}

size_t publisher_page_expire(publisher_page_t *self, const char *reason)
{
    size_t expired = 0;
    for (size_t i = 0; i < self->size; i++)
        if (s_record(self, self->base_seq + i, PUBLISHER_ROW_FAILED, reason) == 0)
            expired++;
    return expired;
}

size_t publisher_page_size(const publisher_page_t *self)
{
    return self->size;
}

size_t publisher_page_capacity(const publisher_page_t *self)
{
    return self->capacity;
}

size_t publisher_page_outstanding(const publisher_page_t *self)
{
    return self->outstanding;
}

size_t publisher_page_delivered(const publisher_page_t *self)
{
    return self->delivered_count;
}

size_t publisher_page_failed(const publisher_page_t *self)
{
    return self->failed;
}

size_t publisher_page_parked(const publisher_page_t *self)
{
    return self->parked;
}

publisher_row_state_t publisher_page_row(const publisher_page_t *self, size_t index, int64_t *id,
                                         const char **reason)
{
    bool in_page = index < self->size;
    if (id)
        *id = in_page ? self->ids[index] : -1;
    if (reason)
        *reason = in_page ? self->reasons[index] : "";
    return in_page ? (publisher_row_state_t)self->states[index] : PUBLISHER_ROW_OUTSTANDING;
}

int64_t publisher_page_id(const publisher_page_t *self, uint64_t seq)
{
    if (seq < self->base_seq || seq - self->base_seq >= self->size)
        return -1;
    return self->ids[seq - self->base_seq];
}

const int64_t *publisher_page_delivered_ids(publisher_page_t *self, size_t *count)
{
    size_t n = 0;
    for (size_t i = 0; i < self->size; i++)
        if (self->states[i] == PUBLISHER_ROW_DELIVERED)
            self->delivered[n++] = self->ids[i];
    *count = n;
    return self->delivered;
}
