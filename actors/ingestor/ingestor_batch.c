/*  ingestor_batch.c: accumulate events and dead letters, decide when to
    flush, and say which offsets a stored batch lets us commit (see
    ingestor_batch.h). */
#include "ingestor_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *topic; //  borrowed (configuration)
    int32_t partition;
    int64_t max_offset;
} s_position_t;

struct ingestor_batch_t {
    size_t batch_max;
    int64_t batch_ms;
    int64_t first_ms; //  when the first entry of this batch arrived

    event_t *events;
    size_t event_count, event_cap;
    ingestor_traceparent_t *traceparents; //  parallel to events
    size_t traceparent_cap;

    event_video_t *videos;
    size_t video_count, video_cap;

    dead_letter_t *dead; //  payload and reason owned (malloc'ed copies)
    size_t dead_count, dead_cap;

    s_position_t *positions;
    size_t position_count, position_cap;
    size_t last_position; //  index of the last hit: messages come in runs per partition
};

ingestor_batch_t *ingestor_batch_new(size_t batch_max, int64_t batch_ms)
{
    ingestor_batch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->batch_max = batch_max ? batch_max : 1;
    self->batch_ms = batch_ms > 0 ? batch_ms : 1;
    return self;
}

void ingestor_batch_destroy(ingestor_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestor_batch_t *self = *self_p;
    ingestor_batch_clear(self);
    free(self->events);
    free(self->traceparents);
    free(self->videos);
    free(self->dead);
    free(self->positions);
    free(self);
    *self_p = NULL;
}

//  Makes room for one more element in *array. Returns 0 or -1.
static int s_reserve(void **array, size_t count, size_t *cap, size_t elem, size_t first)
{
    if (count < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : first;
    void *grown = realloc(*array, want * elem);
    if (!grown)
        return -1;
    *array = grown;
    *cap = want;
    return 0;
}

//  Records offset for (topic, partition). Returns 0, or -1 on allocation
//  failure.
static int s_track(ingestor_batch_t *self, const char *topic, int32_t partition, int64_t offset)
{
    s_position_t *hit = NULL;
    if (self->last_position < self->position_count) {
        s_position_t *last = &self->positions[self->last_position];
        if (last->partition == partition && strcmp(last->topic, topic) == 0)
            hit = last;
    }
    for (size_t i = 0; !hit && i < self->position_count; i++)
        if (self->positions[i].partition == partition &&
            strcmp(self->positions[i].topic, topic) == 0) {
            hit = &self->positions[i];
            self->last_position = i;
        }
    if (!hit) {
        if (s_reserve((void **)&self->positions, self->position_count, &self->position_cap,
                      sizeof *self->positions, 16) != 0)
            return -1;
        self->last_position = self->position_count++;
        hit = &self->positions[self->last_position];
        *hit = (s_position_t){.topic = topic, .partition = partition, .max_offset = offset};
    }
    if (offset > hit->max_offset)
        hit->max_offset = offset;
    return 0;
}

static void s_started(ingestor_batch_t *self, int64_t now_ms)
{
    if (ingestor_batch_size(self) == 0)
        self->first_ms = now_ms;
}

int ingestor_batch_add_event(ingestor_batch_t *self, const event_t *event, const char *topic,
                             int32_t partition, int64_t offset, const char *traceparent,
                             int64_t now_ms)
{
    size_t first = self->batch_max < 1024 ? self->batch_max : 1024;
    if (s_reserve((void **)&self->events, self->event_count, &self->event_cap, sizeof *self->events,
                  first) != 0 ||
        s_reserve((void **)&self->traceparents, self->event_count, &self->traceparent_cap,
                  sizeof *self->traceparents, first) != 0 ||
        s_track(self, topic, partition, offset) != 0)
        return -1;
    s_started(self, now_ms);
    snprintf(self->traceparents[self->event_count], sizeof self->traceparents[0], "%s",
             traceparent ? traceparent : "");
    self->events[self->event_count++] = *event;
    return 0;
}

int ingestor_batch_add_video(ingestor_batch_t *self, const event_video_t *video, const char *topic,
                             int32_t partition, int64_t offset, int64_t now_ms)
{
    if (s_reserve((void **)&self->videos, self->video_count, &self->video_cap, sizeof *self->videos,
                  16) != 0 ||
        s_track(self, topic, partition, offset) != 0)
        return -1;
    s_started(self, now_ms);
    self->videos[self->video_count++] = *video;
    return 0;
}

int ingestor_batch_add_dead(ingestor_batch_t *self, const char *topic, int32_t partition,
                            int64_t offset, const void *payload, size_t len, const char *reason,
                            int64_t now_ms)
{
    if (s_reserve((void **)&self->dead, self->dead_count, &self->dead_cap, sizeof *self->dead,
                  16) != 0)
        return -1;
    //  malloc(0) may return NULL: always copy at least one byte.
    char *copy = malloc(len ? len : 1);
    char *why = strdup(reason ? reason : "");
    if (!copy || !why || s_track(self, topic, partition, offset) != 0) {
        free(copy);
        free(why);
        return -1;
    }
    if (len)
        memcpy(copy, payload, len);
    s_started(self, now_ms);
    self->dead[self->dead_count++] = (dead_letter_t){.topic = topic,
                                                     .partition = partition,
                                                     .offset = offset,
                                                     .payload = copy,
                                                     .len = len,
                                                     .reason = why};
    return 0;
}

size_t ingestor_batch_size(const ingestor_batch_t *self)
{
    return self->event_count + self->video_count + self->dead_count;
}

const event_t *ingestor_batch_events(const ingestor_batch_t *self, size_t *count)
{
    *count = self->event_count;
    return self->events;
}

const ingestor_traceparent_t *ingestor_batch_traceparents(const ingestor_batch_t *self)
{
    return self->traceparents;
}

const event_video_t *ingestor_batch_videos(const ingestor_batch_t *self, size_t *count)
{
    *count = self->video_count;
    return self->videos;
}

const dead_letter_t *ingestor_batch_dead(const ingestor_batch_t *self, size_t *count)
{
    *count = self->dead_count;
    return self->dead;
}

int64_t ingestor_batch_due_in(const ingestor_batch_t *self, int64_t now_ms)
{
    size_t size = ingestor_batch_size(self);
    if (size == 0)
        return -1;
    if (size >= self->batch_max)
        return 0;
    int64_t left = self->first_ms + self->batch_ms - now_ms;
    return left > 0 ? left : 0;
}

rd_kafka_topic_partition_list_t *ingestor_batch_offsets(const ingestor_batch_t *self)
{
    if (self->position_count == 0)
        return NULL;
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new((int)self->position_count);
    if (!list)
        return NULL;
    for (size_t i = 0; i < self->position_count; i++) {
        const s_position_t *p = &self->positions[i];
        //  Kafka's committed offset is the next one to read.
        rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = p->max_offset + 1;
    }
    return list;
}

void ingestor_batch_clear(ingestor_batch_t *self)
{
    for (size_t i = 0; i < self->dead_count; i++) {
        free((void *)self->dead[i].payload);
        free((void *)self->dead[i].reason);
    }
    self->event_count = 0;
    self->video_count = 0;
    self->dead_count = 0;
    self->position_count = 0;
    self->last_position = 0;
}
