/*  test_ingestor_pipeline.c: the event-ingestor's writer thread
    (actors/ingestor/ingestor_pipeline.c) on a real PostgreSQL: a batch
    handed over comes back written, one at a time; with PostgreSQL
    unreachable it is retried, reported failing, and comes back unwritten
    when cancelled; destroy does not hang on a failing batch.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/ingestor/ingestor_pipeline.h"
#include "leak_check.h"
#include "pg_test_db.h"

#define TS_US (INT64_C(1714564800) * 1000000) //  2024-05-01T12:00:00Z

static pg_test_db_t *s_db;

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
}

static void s_teardown(void)
{
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(ingestor_pipeline, .init = s_setup, .fini = s_teardown, .timeout = 60);

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A batch of n distinct ratings by user, partition 0 offsets from first.
static ingestor_batch_t *s_batch(const char *user, int n, int64_t first)
{
    ingestor_batch_t *batch = ingestor_batch_new(100000, 1000);
    cr_assert_not_null(batch);
    for (int i = 0; i < n; i++) {
        event_t ev = {.kind = EVENT_RATING, .occurred_us = TS_US + i, .rating = 4.5};
        snprintf(ev.user_id, sizeof ev.user_id, "%s", user);
        snprintf(ev.video_id, sizeof ev.video_id, "v%d", i);
        cr_assert_eq(ingestor_batch_add_event(batch, &ev, "rated", 0, first + i, NULL, 0), 0);
    }
    return batch;
}

//  Waits (bounded) until the batch in flight is back. Returns it.
static ingestor_batch_t *s_take(ingestor_pipeline_t *pipeline, ingestor_outcome_t *outcome,
                                int timeout_ms)
{
    int64_t deadline = s_mono_ms() + timeout_ms;
    ingestor_batch_t *back = NULL;
    while (!(back = ingestor_pipeline_take(pipeline, outcome)) && s_mono_ms() < deadline)
        ingestor_pipeline_wait(pipeline, 50);
    return back;
}

Test(ingestor_pipeline, batches_come_back_written_one_at_a_time)
{
    config_t *cfg = pg_test_db_config(s_db);
    event_rules_t rules = event_rules_default();
    char err[256];
    ingestor_pipeline_t *pipeline = ingestor_pipeline_new(cfg, &rules, err, sizeof err);
    cr_assert_not_null(pipeline, "%s", err);
    ingestor_outcome_t outcome;
    cr_assert_not(ingestor_pipeline_in_flight(pipeline));
    cr_assert_null(ingestor_pipeline_take(pipeline, &outcome), "nothing in flight");
    cr_assert(ingestor_pipeline_wait(pipeline, 10), "nothing to wait for");

    ingestor_batch_t *first = s_batch("u1", 300, 0);
    ingestor_batch_t *second = s_batch("u2", 200, 300);
    cr_assert_eq(ingestor_pipeline_submit(pipeline, first), 0);
    cr_assert(ingestor_pipeline_in_flight(pipeline));
    cr_assert_eq(ingestor_pipeline_in_flight_size(pipeline), 300);
    cr_assert_eq(ingestor_pipeline_submit(pipeline, second), -1, "one batch in flight at most");

    ingestor_batch_t *back = s_take(pipeline, &outcome, 20000);
    cr_assert_eq(back, first, "the same batch comes back");
    cr_assert(outcome.written);
    cr_assert_eq(outcome.result.inserted, 300);
    cr_assert_eq(outcome.attempts, 1);
    cr_assert_not(ingestor_pipeline_in_flight(pipeline));
    cr_assert_eq(ingestor_pipeline_in_flight_size(pipeline), 0);
    cr_assert_not(ingestor_pipeline_failing(pipeline));

    //  The next one, then the first again: a replay, no new rows.
    cr_assert_eq(ingestor_pipeline_submit(pipeline, second), 0);
    cr_assert_eq(s_take(pipeline, &outcome, 20000), second);
    cr_assert(outcome.written && outcome.result.inserted == 200);
    cr_assert_eq(ingestor_pipeline_submit(pipeline, first), 0);
    cr_assert_eq(s_take(pipeline, &outcome, 20000), first);
    cr_assert(outcome.written);
    cr_assert_eq(outcome.result.inserted, 0);
    cr_assert_eq(outcome.result.duplicates, 300);

    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.interactions"), 500);
    PQfinish(conn);
    ingestor_pipeline_destroy(&pipeline);
    cr_assert_null(pipeline);
    ingestor_pipeline_destroy(&pipeline); //  idempotent
    ingestor_batch_destroy(&first);
    ingestor_batch_destroy(&second);
}

Test(ingestor_pipeline, unreachable_postgres_fails_until_cancelled)
{
    config_t *cfg = pg_test_db_config(s_db);
    //  Nothing listens there: connections are refused at once.
    snprintf(cfg->pg_dsn, sizeof cfg->pg_dsn, "host=127.0.0.1 port=1 dbname=x user=x");
    event_rules_t rules = event_rules_default();
    char err[256];
    ingestor_pipeline_t *pipeline = ingestor_pipeline_new(cfg, &rules, err, sizeof err);
    cr_assert_not_null(pipeline, "%s", err);
    ingestor_batch_t *batch = s_batch("u1", 10, 0);
    cr_assert_eq(ingestor_pipeline_submit(pipeline, batch), 0);

    int64_t deadline = s_mono_ms() + 10000;
    while (!ingestor_pipeline_failing(pipeline) && s_mono_ms() < deadline)
        ingestor_pipeline_wait(pipeline, 50);
    cr_assert(ingestor_pipeline_failing(pipeline), "a refused connection is a failure");
    ingestor_outcome_t outcome;
    cr_assert_null(ingestor_pipeline_take(pipeline, &outcome), "kept and retried, not returned");
    cr_assert(ingestor_pipeline_in_flight(pipeline));

    //  Retried with back-off (100 ms, then 200 ms): a second attempt comes.
    usleep(400 * 1000);
    int64_t cancelled = s_mono_ms();
    ingestor_pipeline_cancel(pipeline);
    ingestor_batch_t *back = s_take(pipeline, &outcome, 5000);
    cr_assert_eq(back, batch, "cancelled: the batch comes back");
    cr_assert_lt(s_mono_ms() - cancelled, 1000, "at once, not after the back-off");
    cr_assert_not(outcome.written);
    cr_assert_geq(outcome.attempts, 2, "retried: %llu attempts",
                  (unsigned long long)outcome.attempts);
    cr_assert_eq(ingestor_batch_size(back), 10, "untouched");

    //  Destroy with a failing batch in flight: no hang.
    cr_assert_eq(ingestor_pipeline_submit(pipeline, batch), 0);
    int64_t start = s_mono_ms();
    ingestor_pipeline_destroy(&pipeline);
    cr_assert_lt(s_mono_ms() - start, 3000, "destroy gives up on the batch");
    ingestor_batch_destroy(&batch);
}
