/*  publisher_page.c: delivery bookkeeping for a page of outbox rows (see
    publisher_page.h). */
#include "publisher_page.h"

#include <stdlib.h>

typedef enum { S_OUTSTANDING = 0, S_DELIVERED, S_FAILED } s_state_t;

struct publisher_page_t {
    size_t capacity;
    size_t size;
    uint64_t base_seq;
    int64_t *ids;
    unsigned char *states; //  s_state_t per row
    int64_t *delivered;    //  scratch for publisher_page_delivered_ids
    size_t outstanding;
    size_t delivered_count;
    size_t failed;
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
    if (!self->ids || !self->states || !self->delivered)
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
}

uint64_t publisher_page_add(publisher_page_t *self, int64_t id)
{
    if (self->size >= self->capacity)
        return UINT64_MAX;
    self->ids[self->size] = id;
    self->states[self->size] = S_OUTSTANDING;
    self->outstanding++;
    return self->base_seq + self->size++;
}

int publisher_page_report(publisher_page_t *self, uint64_t seq, bool delivered)
{
    if (seq < self->base_seq || seq - self->base_seq >= self->size)
        return -1;
    size_t slot = (size_t)(seq - self->base_seq);
    if (self->states[slot] != S_OUTSTANDING)
        return -1;
    self->states[slot] = delivered ? S_DELIVERED : S_FAILED;
    self->outstanding--;
    if (delivered)
        self->delivered_count++;
    else
        self->failed++;
    return 0;
}

size_t publisher_page_expire(publisher_page_t *self)
{
    size_t expired = 0;
    for (size_t i = 0; i < self->size; i++)
        if (self->states[i] == S_OUTSTANDING) {
            self->states[i] = S_FAILED;
            expired++;
        }
    self->outstanding = 0;
    self->failed += expired;
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
        if (self->states[i] == S_DELIVERED)
            self->delivered[n++] = self->ids[i];
    *count = n;
    return self->delivered;
}
