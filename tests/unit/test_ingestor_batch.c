/*  test_ingestor_batch.c: the event-ingestor's batch and flush policy
    (actors/ingestor/ingestor_batch.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/ingestor/ingestor_batch.h"
#include "leak_check.h"

TestSuite(ingestor_batch, .fini = leak_check_fini);

static event_t s_event(const char *user)
{
    event_t ev = {.kind = EVENT_WATCH, .watched_duration = 1, .total_duration = 2};
    snprintf(ev.user_id, sizeof ev.user_id, "%s", user);
    snprintf(ev.video_id, sizeof ev.video_id, "v1");
    return ev;
}

//  Offset to commit for (topic, partition) in list, or -1 if absent.
static int64_t s_offset(const rd_kafka_topic_partition_list_t *list, const char *topic,
                        int32_t partition)
{
    for (int i = 0; i < list->cnt; i++)
        if (list->elems[i].partition == partition && strcmp(list->elems[i].topic, topic) == 0)
            return list->elems[i].offset;
    return -1;
}

Test(ingestor_batch, due_by_size_or_age)
{
    ingestor_batch_t *batch = ingestor_batch_new(3, 50);
    cr_assert_not_null(batch);
    cr_assert_eq(ingestor_batch_due_in(batch, 1000), -1, "an empty batch is never due");
    event_t ev = s_event("u1");
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 10, NULL, 1000), 0);
    cr_assert_eq(ingestor_batch_due_in(batch, 1000), 50);
    cr_assert_eq(ingestor_batch_due_in(batch, 1030), 20, "age counts from the first entry");
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 11, NULL, 1040), 0);
    cr_assert_eq(ingestor_batch_due_in(batch, 1040), 10, "a later entry does not extend it");
    cr_assert_eq(ingestor_batch_due_in(batch, 1200), 0);
    cr_assert_eq(ingestor_batch_add_dead(batch, "w", 1, 3, "x", 1, "payload: bad", 1041), 0);
    cr_assert_eq(ingestor_batch_size(batch), 3);
    cr_assert_eq(ingestor_batch_due_in(batch, 1041), 0, "full: due at once");
    ingestor_batch_clear(batch);
    cr_assert_eq(ingestor_batch_size(batch), 0);
    cr_assert_eq(ingestor_batch_due_in(batch, 5000), -1);
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 12, NULL, 5000), 0);
    cr_assert_eq(ingestor_batch_due_in(batch, 5000), 50, "a new batch has a new deadline");
    ingestor_batch_destroy(&batch);
    cr_assert_null(batch);
    ingestor_batch_destroy(&batch); //  idempotent
}

//  Trace contexts stay parallel to the events, across growth and clear.
Test(ingestor_batch, trace_contexts_follow_their_events)
{
    ingestor_batch_t *batch = ingestor_batch_new(4096, 50);
    cr_assert_not_null(batch);
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (int i = 0; i < 3000; i++) {
        event_t ev = s_event(i % 2 ? "odd" : "even");
        cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, i, i % 2 ? tp : NULL, 0), 0);
    }
    size_t count = 0;
    const event_t *events = ingestor_batch_events(batch, &count);
    const ingestor_traceparent_t *traces = ingestor_batch_traceparents(batch);
    cr_assert_eq(count, 3000);
    for (size_t i = 0; i < count; i++)
        cr_assert_str_eq(traces[i], strcmp(events[i].user_id, "odd") == 0 ? tp : "", "entry %zu",
                         i);
    ingestor_batch_clear(batch);
    event_t ev = s_event("u");
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 1, "", 0), 0);
    cr_assert_str_eq(ingestor_batch_traceparents(batch)[0], "");
    ingestor_batch_destroy(&batch);
}

Test(ingestor_batch, offsets_are_the_highest_plus_one_per_partition)
{
    ingestor_batch_t *batch = ingestor_batch_new(100, 50);
    cr_assert_null(ingestor_batch_offsets(batch), "nothing to commit when empty");
    event_t ev = s_event("u1");
    //  Interleaved partitions and topics, out of order within one.
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 7, NULL, 0), 0);
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 1, 100, NULL, 0), 0);
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 9, NULL, 0), 0);
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "r", 0, 3, NULL, 0), 0);
    cr_assert_eq(ingestor_batch_add_dead(batch, "w", 0, 12, "{}", 2, "user_id: missing", 0), 0);
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 8, NULL, 0), 0);
    rd_kafka_topic_partition_list_t *list = ingestor_batch_offsets(batch);
    cr_assert_not_null(list);
    cr_assert_eq(list->cnt, 3);
    cr_assert_eq(s_offset(list, "w", 0), 13, "dead letters are committed too");
    cr_assert_eq(s_offset(list, "w", 1), 101);
    cr_assert_eq(s_offset(list, "r", 0), 4);
    rd_kafka_topic_partition_list_destroy(list);
    ingestor_batch_clear(batch);
    cr_assert_null(ingestor_batch_offsets(batch), "a cleared batch commits nothing");
    ingestor_batch_destroy(&batch);
}

Test(ingestor_batch, dead_letters_are_copies)
{
    ingestor_batch_t *batch = ingestor_batch_new(10, 50);
    char payload[] = "{\"rating\": 9}";
    char reason[] = "rating: must be within 0.5..5";
    cr_assert_eq(ingestor_batch_add_dead(batch, "r", 2, 41, payload, strlen(payload), reason, 0),
                 0);
    cr_assert_eq(ingestor_batch_add_dead(batch, "r", 2, 42, NULL, 0, "payload: empty", 0), 0);
    memset(payload, 'x', sizeof payload - 1); //  the Kafka message is gone
    memset(reason, 'x', sizeof reason - 1);
    size_t count = 0;
    const dead_letter_t *dead = ingestor_batch_dead(batch, &count);
    cr_assert_eq(count, 2);
    cr_assert_str_eq(dead[0].topic, "r");
    cr_assert_eq(dead[0].partition, 2);
    cr_assert_eq(dead[0].offset, 41);
    cr_assert_eq(dead[0].len, strlen("{\"rating\": 9}"));
    cr_assert_eq(memcmp(dead[0].payload, "{\"rating\": 9}", dead[0].len), 0);
    cr_assert_str_eq(dead[0].reason, "rating: must be within 0.5..5");
    cr_assert_eq(dead[1].len, 0);
    cr_assert_not_null(dead[1].payload, "an empty payload is still a valid pointer");
    size_t events = 99;
    ingestor_batch_events(batch, &events);
    cr_assert_eq(events, 0);
    ingestor_batch_destroy(&batch); //  frees the copies (the leak check says so)
}

Test(ingestor_batch, grows_past_its_limit)
{
    //  Messages fetched before a pause still arrive: nothing is refused.
    ingestor_batch_t *batch = ingestor_batch_new(4, 50);
    for (int i = 0; i < 5000; i++) {
        char user[16];
        snprintf(user, sizeof user, "u%d", i);
        event_t ev = s_event(user);
        cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", i % 7, i, NULL, 0), 0);
    }
    size_t count = 0;
    const event_t *events = ingestor_batch_events(batch, &count);
    cr_assert_eq(count, 5000);
    cr_assert_str_eq(events[4999].user_id, "u4999");
    cr_assert_str_eq(events[0].user_id, "u0");
    rd_kafka_topic_partition_list_t *list = ingestor_batch_offsets(batch);
    cr_assert_eq(list->cnt, 7);
    cr_assert_eq(s_offset(list, "w", 4999 % 7), 5000);
    rd_kafka_topic_partition_list_destroy(list);
    ingestor_batch_destroy(&batch);
}

Test(ingestor_batch, catalogue_changes_count_and_commit_like_events)
{
    ingestor_batch_t *batch = ingestor_batch_new(3, 50);
    event_video_t video;
    memset(&video, 0, sizeof video);
    snprintf(video.video_id, sizeof video.video_id, "v9");
    snprintf(video.title, sizeof video.title, "Title");
    video.tag_count = 1;
    snprintf(video.tags[0], sizeof video.tags[0], "tag");
    cr_assert_eq(ingestor_batch_add_video(batch, &video, "c", 1, 40, 1000), 0);
    cr_assert_eq(ingestor_batch_due_in(batch, 1000), 50, "a change starts the deadline");
    video.video_id[1] = '8';
    cr_assert_eq(ingestor_batch_add_video(batch, &video, "c", 1, 41, 1001), 0);
    event_t ev = s_event("u1");
    cr_assert_eq(ingestor_batch_add_event(batch, &ev, "w", 0, 5, NULL, 1002), 0);
    cr_assert_eq(ingestor_batch_size(batch), 3);
    cr_assert_eq(ingestor_batch_due_in(batch, 1002), 0, "changes count towards batch_max");
    size_t count = 0;
    const event_video_t *videos = ingestor_batch_videos(batch, &count);
    cr_assert_eq(count, 2);
    cr_assert_str_eq(videos[0].video_id, "v9");
    cr_assert_str_eq(videos[1].video_id, "v8");
    cr_assert_str_eq(videos[1].tags[0], "tag");
    rd_kafka_topic_partition_list_t *list = ingestor_batch_offsets(batch);
    cr_assert_eq(s_offset(list, "c", 1), 42);
    cr_assert_eq(s_offset(list, "w", 0), 6);
    rd_kafka_topic_partition_list_destroy(list);
    ingestor_batch_clear(batch);
    ingestor_batch_videos(batch, &count);
    cr_assert_eq(count, 0);
    cr_assert_eq(ingestor_batch_size(batch), 0);
    ingestor_batch_destroy(&batch);
}
