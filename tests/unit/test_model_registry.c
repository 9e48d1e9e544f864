/*  test_model_registry.c: the training queue and model registry
    (model_registry.c) on a real PostgreSQL, one migrated database per test:
    enqueue, concurrent claims, events in the same transaction, orphan
    recovery, activation, leadership and the schedule, the API documents.
*/
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leak_check.h"
#include "model_registry.h"
#include "pg_test_db.h"

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

TestSuite(model_registry, .init = s_setup, .fini = s_teardown, .timeout = 60);

#define STARTED "recommendation-service.model-training-started"
#define COMPLETED "recommendation-service.model-training-completed"

static model_registry_enqueued_t s_enqueue(PGconn *conn, const char *type)
{
    char err[512];
    model_registry_request_t req = {
        .model_type = type, .trigger = "manual", .requested_by = "test@127.0.0.1"};
    model_registry_enqueued_t out;
    cr_assert_eq(model_registry_enqueue(conn, &req, &out, err, sizeof err), MODEL_REGISTRY_OK, "%s",
                 err);
    return out;
}

static model_registry_claim_t s_claim(PGconn *conn, const char *worker)
{
    char err[512];
    model_registry_claim_t claim;
    cr_assert_eq(model_registry_claim(conn, worker, NULL, &claim, err, sizeof err), 1, "%s", err);
    return claim;
}

//  Trains (claims and succeeds) the next queued model; returns its id.
static void s_train(PGconn *conn, model_registry_id_t id)
{
    char err[512];
    model_registry_claim_t claim = s_claim(conn, "t1");
    snprintf(id, sizeof(model_registry_id_t), "%s", claim.model_id);
    char path[128];
    snprintf(path, sizeof path, "file:///tmp/artifacts/%s.bin", claim.model_id);
    json_t *metrics = json_pack("{s:{s:f}}", "model", "ndcg@10", 0.25);
    model_registry_result_t result = {.metrics = metrics,
                                      .artifact_path = path,
                                      .artifact_checksum = "abc123",
                                      .gate_decided = true,
                                      .gate_passed = false,
                                      .gate_reason = "worse than active"};
    cr_assert_eq(model_registry_succeed(conn, claim.model_id, &result, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    json_decref(metrics);
    model_registry_claim_clear(&claim);
}

static long s_count(PGconn *conn, const char *fmt, const char *arg)
{
    char sql[1024];
    snprintf(sql, sizeof sql, fmt, arg);
    return pg_test_scalar(conn, sql);
}

static const char *s_text(PGconn *conn, char *buf, size_t len, const char *fmt, const char *arg)
{
    char sql[1024];
    snprintf(sql, sizeof sql, fmt, arg);
    return pg_test_text(conn, sql, buf, len);
}

//  Waits up to 2 s for a notification on channel; returns its payload
//  (malloc'd) or NULL.
static char *s_wait_notify(PGconn *conn, const char *channel)
{
    for (int i = 0; i < 40; i++) {
        cr_assert(PQconsumeInput(conn));
        PGnotify *note;
        while ((note = PQnotifies(conn))) {
            char *payload = strcmp(note->relname, channel) == 0 ? strdup(note->extra) : NULL;
            PQfreemem(note);
            if (payload)
                return payload;
        }
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        poll(&pfd, 1, 50);
    }
    return NULL;
}

//  Advisory locks this backend holds (to see that failures leave none).
static long s_my_advisory_locks(PGconn *conn)
{
    return pg_test_scalar(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                " AND pid = pg_backend_pid()");
}

Test(model_registry, names_and_ids)
{
    cr_assert(model_registry_type_known("collaborative"));
    cr_assert(model_registry_type_known("item_knn"));
    cr_assert_not(model_registry_type_known("all"));
    cr_assert_not(model_registry_type_known("Collaborative"));
    cr_assert_not(model_registry_type_known(NULL));
    cr_assert(model_registry_type_requestable("all"));
    cr_assert(model_registry_type_requestable("popularity"));
    cr_assert_not(model_registry_type_requestable("ease"));
    cr_assert(model_registry_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    cr_assert(model_registry_uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    cr_assert_not(model_registry_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950"));
    cr_assert_not(model_registry_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e0"));
    cr_assert_not(model_registry_uuid_valid("0f8fad5bxd9cb-469f-a165-70867728950e"));
    cr_assert_not(model_registry_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950g"));
    cr_assert_not(model_registry_uuid_valid(""));
    cr_assert_not(model_registry_uuid_valid(NULL));
}

Test(model_registry, errors_are_sanitised)
{
    char out[MODEL_REGISTRY_ERROR_MAX + 1];
    cr_assert_str_eq(
        model_registry_sanitize_error("  out of memory\n  at frame 2\n", out, sizeof out),
        "out of memory");
    cr_assert_str_eq(model_registry_sanitize_error("a\tb\x01"
                                                   "c",
                                                   out, sizeof out),
                     "a b c");
    cr_assert_str_eq(model_registry_sanitize_error("bad \xff byte", out, sizeof out), "bad ? byte");
    cr_assert_str_eq(model_registry_sanitize_error(NULL, out, sizeof out), "unknown error");
    cr_assert_str_eq(model_registry_sanitize_error(" \n", out, sizeof out), "unknown error");
    //  Long text: cut to the limit on a UTF-8 boundary, marked.
    char big[2000];
    for (int i = 0; i < 999; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2); //  é
    big[1998] = '\0';
    model_registry_sanitize_error(big, out, sizeof out);
    size_t n = strlen(out);
    cr_assert_leq(n, MODEL_REGISTRY_ERROR_MAX);
    cr_assert_str_eq(out + n - 3, "...");
    cr_assert_eq((n - 3) % 2, 0, "cut inside a UTF-8 sequence");
    char small[8];
    cr_assert_str_eq(model_registry_sanitize_error("0123456789", small, sizeof small), "0123...");
}

Test(model_registry, enqueue_all_queues_each_type_in_one_transaction)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *listener = pg_test_db_connect(s_db);
    pg_test_exec(listener, "LISTEN " MODEL_REGISTRY_CHANNEL_TRAINING);

    model_registry_enqueued_t all = s_enqueue(conn, "all");
    cr_assert_eq(all.count, 4);
    const char *order[] = {"collaborative", "content", "hybrid", "popularity"};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(all.model_types[i], order[i]);
        cr_assert_eq(all.versions[i], 1);
        cr_assert(model_registry_uuid_valid(all.model_ids[i]));
    }
    cr_assert(model_registry_uuid_valid(all.training_id));
    char *payload = s_wait_notify(listener, MODEL_REGISTRY_CHANNEL_TRAINING);
    cr_assert(payload, "no NOTIFY " MODEL_REGISTRY_CHANNEL_TRAINING);
    cr_assert_str_eq(payload, all.training_id);
    free(payload);
    cr_assert_eq(s_count(conn,
                         "SELECT count(*) FROM training.models WHERE training_id = '%s'"
                         " AND status = 'queued'",
                         all.training_id),
                 4);
    char buf[128];
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT trigger || ' ' || requested_by || ' ' || model_type"
                            "  FROM training.runs WHERE training_id = '%s'",
                            all.training_id),
                     "manual test@127.0.0.1 all");

    //  Versions increase per type.
    model_registry_enqueued_t again = s_enqueue(conn, "collaborative");
    cr_assert_eq(again.count, 1);
    cr_assert_eq(again.versions[0], 2);
    model_registry_enqueued_t content = s_enqueue(conn, "content");
    cr_assert_eq(content.versions[0], 2);

    //  Dates are stored exactly and refused in the wrong order.
    char err[256];
    model_registry_request_t req = {.model_type = "popularity",
                                    .trigger = "manual",
                                    .requested_by = "x",
                                    .has_start = true,
                                    .start_us = INT64_C(1714564800123456),
                                    .has_end = true,
                                    .end_us = INT64_C(1714564800123457)};
    model_registry_enqueued_t dated;
    cr_assert_eq(model_registry_enqueue(conn, &req, &dated, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT (extract(epoch FROM start_date) * 1000000)::bigint || ' ' ||"
                            "       (extract(epoch FROM end_date) * 1000000)::bigint"
                            "  FROM training.runs WHERE training_id = '%s'",
                            dated.training_id),
                     "1714564800123456 1714564800123457");
    long runs = pg_test_scalar(conn, "SELECT count(*) FROM training.runs");
    req.end_us = req.start_us - 1;
    cr_assert_eq(model_registry_enqueue(conn, &req, &dated, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    req.end_us = req.start_us;
    req.model_type = "everything";
    cr_assert_eq(model_registry_enqueue(conn, &req, &dated, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    req.model_type = "ease"; //  a baseline: the registry takes it, the API does not
    req.requested_by = "";
    cr_assert_eq(model_registry_enqueue(conn, &req, &dated, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM training.runs"), runs);
    PQfinish(listener);
    PQfinish(conn);
}

Test(model_registry, claims_oldest_first_and_writes_the_started_event)
{
    PGconn *conn = pg_test_db_connect(s_db);
    model_registry_enqueued_t all = s_enqueue(conn, "all");
    char err[512];
    json_t *defaults = json_pack("{s:{s:i, s:f}, s:{s:i}}", "collaborative", "factors", 64,
                                 "regularization", 0.05, "content", "neighbours", 50);
    model_registry_claim_t claim;
    cr_assert_eq(model_registry_claim(conn, "trainer.1", defaults, &claim, err, sizeof err), 1,
                 "%s", err);
    cr_assert_str_eq(claim.model_id, all.model_ids[0]);
    cr_assert_str_eq(claim.model_type, "collaborative");
    cr_assert_str_eq(claim.training_id, all.training_id);
    cr_assert_str_eq(claim.trigger, "manual");
    cr_assert_eq(claim.version, 1);
    cr_assert_not(claim.has_start);
    cr_assert_eq(json_integer_value(json_object_get(claim.params, "factors")), 64);

    char buf[1024];
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT status || ' ' || worker || ' ' || (started_at IS NOT NULL)"
                            "  FROM training.models WHERE model_id = '%s'",
                            claim.model_id),
                     "running trainer.1 true");
    //  The event: exactly the documented fields, keyed by model id.
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM public.outbox"), 1);
    char expect[256];
    snprintf(expect, sizeof expect, STARTED " %s ModelTrainingStarted", claim.model_id);
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT topic || ' ' || key || ' ' || (headers->>'event-type')"
                            "  FROM public.outbox WHERE key = '%s'",
                            claim.model_id),
                     expect);
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT string_agg(k, ',' ORDER BY k) FROM public.outbox,"
                                  " jsonb_object_keys(payload) k",
                                  buf, sizeof buf),
                     "model_id,model_type,parameters,start_time,training_id");
    cr_assert_eq(s_count(conn,
                         "SELECT count(*) FROM public.outbox o JOIN training.models m"
                         "    ON m.model_id::text = o.payload->>'model_id'"
                         " WHERE o.payload->>'model_type' = 'collaborative'"
                         "   AND o.payload->>'training_id' = m.training_id::text"
                         "   AND o.payload->'parameters' = '{\"factors\": 64,"
                         " \"regularization\": 0.05}'::jsonb"
                         "   AND o.payload->>'start_time' ~ '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:"
                         "\\d\\d\\.\\d{3}Z$' AND m.model_id = '%s'",
                         claim.model_id),
                 1);
    //  The claimer holds the model's lock until it reports the result.
    cr_assert_eq(s_my_advisory_locks(conn), 1);

    //  Oldest first: the next claim is the content model, with its defaults.
    model_registry_claim_t next;
    cr_assert_eq(model_registry_claim(conn, "trainer.1", defaults, &next, err, sizeof err), 1);
    cr_assert_str_eq(next.model_type, "content");
    cr_assert_eq(json_integer_value(json_object_get(next.params, "neighbours")), 50);
    model_registry_claim_clear(&next);
    cr_assert_eq(model_registry_claim(conn, "trainer.1", defaults, &next, err, sizeof err), 1);
    cr_assert_str_eq(next.model_type, "hybrid");
    cr_assert_eq(json_object_size(next.params), 0);
    model_registry_claim_clear(&next);
    cr_assert_eq(model_registry_claim(conn, "trainer.1", NULL, &next, err, sizeof err), 1);
    model_registry_claim_clear(&next);
    //  Empty queue.
    cr_assert_eq(model_registry_claim(conn, "trainer.1", NULL, &next, err, sizeof err), 0);
    cr_assert_null(next.params);

    //  Refused arguments touch nothing.
    json_t *bad = json_pack("{s:i}", "collaborative", 3);
    cr_assert_eq(model_registry_claim(conn, "trainer.1", bad, &next, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    cr_assert_eq(model_registry_claim(conn, "", NULL, &next, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    json_decref(bad);
    model_registry_claim_clear(&claim);
    json_decref(defaults);
    PQfinish(conn);
}

//  A second connection claims while the first holds the oldest row in an
//  open transaction: SKIP LOCKED gives it the next row at once.
Test(model_registry, skip_locked_gives_concurrent_claimers_different_rows)
{
    PGconn *a = pg_test_db_connect(s_db);
    PGconn *b = pg_test_db_connect(s_db);
    model_registry_enqueued_t all = s_enqueue(a, "all");
    pg_test_exec(a, "BEGIN");
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT 1 FROM training.models WHERE model_id = '%s' FOR UPDATE",
             all.model_ids[0]);
    pg_test_exec(a, sql);

    model_registry_claim_t claim = s_claim(b, "b");
    cr_assert_str_eq(claim.model_id, all.model_ids[1], "B waited for or took A's row");
    model_registry_claim_clear(&claim);
    pg_test_exec(a, "ROLLBACK");
    claim = s_claim(a, "a");
    cr_assert_str_eq(claim.model_id, all.model_ids[0]);
    model_registry_claim_clear(&claim);
    PQfinish(b);
    PQfinish(a);
}

typedef struct {
    pthread_barrier_t *start;
    const char *conninfo;
    char ids[8][MODEL_REGISTRY_UUID_LEN + 1];
    int count;
    int errors;
} claimer_t;

static void *s_claimer(void *arg)
{
    claimer_t *c = arg;
    PGconn *conn = PQconnectdb(c->conninfo);
    pthread_barrier_wait(c->start);
    char err[512];
    for (;;) {
        model_registry_claim_t claim;
        int rc = model_registry_claim(conn, "racer", NULL, &claim, err, sizeof err);
        if (rc != 1) {
            c->errors += rc < 0;
            break;
        }
        if (c->count < 8)
            snprintf(c->ids[c->count], sizeof c->ids[0], "%s", claim.model_id);
        c->count++;
        model_registry_claim_clear(&claim);
    }
    PQfinish(conn);
    return NULL;
}

//  Two threads drain the queue as fast as they can: every model is claimed
//  exactly once, and neither fails.
Test(model_registry, racing_claimers_claim_each_model_once)
{
    PGconn *conn = pg_test_db_connect(s_db);
    s_enqueue(conn, "all");
    s_enqueue(conn, "all");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    claimer_t c[2] = {{.start = &start, .conninfo = pg_test_db_config(s_db)->pg_dsn},
                      {.start = &start, .conninfo = pg_test_db_config(s_db)->pg_dsn}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, s_claimer, &c[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    cr_assert_eq(c[0].errors + c[1].errors, 0);
    cr_assert_eq(c[0].count + c[1].count, 8);
    for (int i = 0; i < c[0].count; i++)
        for (int j = 0; j < c[1].count; j++)
            cr_assert_str_neq(c[0].ids[i], c[1].ids[j], "claimed twice");
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM training.models"
                                      " WHERE status = 'running'"),
                 8);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM public.outbox"
                                      " WHERE topic = '" STARTED "'"),
                 8);
    PQfinish(conn);
}

//  The event is part of the claim: if writing it fails, the claim never
//  happened (still queued, no event, no lock left behind).
Test(model_registry, failed_claim_leaves_no_event_and_no_lock)
{
    PGconn *conn = pg_test_db_connect(s_db);
    model_registry_enqueued_t one = s_enqueue(conn, "popularity");
    pg_test_exec(conn, "ALTER TABLE public.outbox ADD CONSTRAINT test_no_started"
                       " CHECK (topic <> '" STARTED "')");
    char err[512];
    model_registry_claim_t claim;
    cr_assert_eq(model_registry_claim(conn, "t", NULL, &claim, err, sizeof err),
                 MODEL_REGISTRY_ERROR);
    cr_assert(strstr(err, "test_no_started"), "%s", err);
    cr_assert_null(claim.params);
    cr_assert_eq(s_count(conn,
                         "SELECT count(*) FROM training.models WHERE model_id = '%s'"
                         " AND status = 'queued' AND worker IS NULL",
                         one.model_ids[0]),
                 1);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM public.outbox"), 0);
    cr_assert_eq(s_my_advisory_locks(conn), 0, "the failed claim kept its lock");
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);

    //  Once the cause is gone the same model is claimed normally.
    pg_test_exec(conn, "ALTER TABLE public.outbox DROP CONSTRAINT test_no_started");
    claim = s_claim(conn, "t");
    cr_assert_str_eq(claim.model_id, one.model_ids[0]);
    model_registry_claim_clear(&claim);
    PQfinish(conn);
}

//  The trainer's connection closes mid-run (kill -9): its lock goes with
//  the session, and recovery marks the model failed with an event.
Test(model_registry, orphans_are_recovered_once_the_claimer_is_gone)
{
    PGconn *worker = pg_test_db_connect(s_db);
    PGconn *other = pg_test_db_connect(s_db);
    s_enqueue(other, "collaborative");
    s_enqueue(other, "content");
    model_registry_claim_t claim = s_claim(worker, "doomed");
    model_registry_claim_t mine = s_claim(other, "survivor");
    char err[512];
    //  Alive: nothing to recover, from either side (own claims excluded).
    cr_assert_eq(model_registry_recover(other, err, sizeof err), 0, "%s", err);
    cr_assert_eq(model_registry_recover(worker, err, sizeof err), 0, "%s", err);
    cr_assert_eq(model_registry_progress(worker, claim.model_id, "als", 3, 20.0, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);

    PQfinish(worker);
    //  The backend's exit (and its locks' release) is asynchronous.
    int recovered = 0;
    for (int i = 0; i < 100 && recovered == 0; i++) {
        recovered = model_registry_recover(other, err, sizeof err);
        cr_assert_geq(recovered, 0, "%s", err);
        if (recovered == 0)
            usleep(50 * 1000);
    }
    cr_assert_eq(recovered, 1);
    char buf[256];
    cr_assert_str_eq(s_text(other, buf, sizeof buf,
                            "SELECT status || '|' || error || '|' || phase"
                            "  FROM training.models WHERE model_id = '%s'",
                            claim.model_id),
                     "failed|" MODEL_REGISTRY_ORPHAN_ERROR "|als");
    cr_assert_eq(s_count(other,
                         "SELECT count(*) FROM public.outbox WHERE topic = '" COMPLETED "'"
                         " AND key = '%s' AND payload->>'status' = 'failed'"
                         " AND payload->'metrics' = 'null' AND payload->'artifact_path' = 'null'"
                         " AND payload ? 'completion_time'",
                         claim.model_id),
                 1);
    //  The survivor's own claim is untouched; a second pass finds nothing.
    cr_assert_eq(model_registry_recover(other, err, sizeof err), 0);
    cr_assert_eq(s_count(other,
                         "SELECT count(*) FROM training.models WHERE model_id = '%s'"
                         " AND status = 'running'",
                         mine.model_id),
                 1);
    //  The dead trainer's late report is refused, not applied.
    cr_assert_eq(model_registry_fail(other, claim.model_id, "late", err, sizeof err),
                 MODEL_REGISTRY_NOT_FOUND);
    cr_assert_eq(model_registry_progress(other, claim.model_id, "x", 1, 1, err, sizeof err),
                 MODEL_REGISTRY_NOT_FOUND);
    model_registry_claim_clear(&claim);
    model_registry_claim_clear(&mine);
    PQfinish(other);
}

Test(model_registry, success_and_failure_write_the_completed_event)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *other = pg_test_db_connect(s_db);
    s_enqueue(conn, "all");
    char err[512];
    model_registry_claim_t ok = s_claim(conn, "t");
    model_registry_claim_t bad = s_claim(conn, "t");
    json_t *metrics = json_pack("{s:{s:f, s:f}, s:{s:f}, s:n}", "model", "ndcg@10", 0.31,
                                "recall@20", 0.4, "popularity", "ndcg@10", 0.12, "active");
    model_registry_result_t result = {.metrics = metrics,
                                      .artifact_path = "file:///a/collaborative-1.bin",
                                      .artifact_checksum = "ff00",
                                      .gate_decided = true,
                                      .gate_passed = true,
                                      .gate_reason = "no active model"};
    cr_assert_eq(model_registry_succeed(conn, ok.model_id, &result, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    char buf[512];
    cr_assert_str_eq(
        s_text(conn, buf, sizeof buf,
               "SELECT status || '|' || artifact_path || '|' || artifact_checksum || '|' ||"
               "       gate_passed || '|' || gate_reason || '|' || (metrics->'model'->>'ndcg@10')"
               "  FROM training.models WHERE model_id = '%s'",
               ok.model_id),
        "succeeded|file:///a/collaborative-1.bin|ff00|true|no active model|0.31");
    cr_assert_eq(s_count(conn,
                         "SELECT count(*) FROM public.outbox WHERE topic = '" COMPLETED "'"
                         " AND key = '%s' AND payload->>'status' = 'success'"
                         " AND payload->'metrics'->'model'->>'recall@20' = '0.4'"
                         " AND payload->>'artifact_path' = 'file:///a/collaborative-1.bin'"
                         " AND headers->>'event-type' = 'ModelTrainingCompleted'",
                         ok.model_id),
                 1);
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT string_agg(k, ',' ORDER BY k) FROM public.outbox,"
                            " jsonb_object_keys(payload) k WHERE key = '%s'"
                            " AND topic = '" COMPLETED "'",
                            ok.model_id),
                     "artifact_path,completion_time,metrics,model_id,status,training_id");
    //  Not activated: activate was not asked for.
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM training.models"
                                      " WHERE status = 'active'"),
                 0);

    cr_assert_eq(model_registry_fail(conn, bad.model_id,
                                     "ALS diverged\nSELECT secret FROM x; stack frame 3", err,
                                     sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT status || '|' || error FROM training.models"
                            " WHERE model_id = '%s'",
                            bad.model_id),
                     "failed|ALS diverged");
    cr_assert_eq(s_count(conn,
                         "SELECT count(*) FROM public.outbox WHERE topic = '" COMPLETED "'"
                         " AND key = '%s' AND payload->>'status' = 'failed'",
                         bad.model_id),
                 1);
    //  Both locks were released: another session can take them now.
    cr_assert_eq(s_my_advisory_locks(conn), 0);
    cr_assert_eq(s_count(other,
                         "SELECT pg_try_advisory_lock(hashtextextended("
                         "'recsd.training.model:' || '%s', 0))::int",
                         ok.model_id),
                 1);
    //  Finished models cannot finish again.
    cr_assert_eq(model_registry_succeed(conn, ok.model_id, &result, err, sizeof err),
                 MODEL_REGISTRY_NOT_FOUND);
    cr_assert_eq(model_registry_fail(conn, ok.model_id, "x", err, sizeof err),
                 MODEL_REGISTRY_NOT_FOUND);
    result.artifact_path = NULL;
    cr_assert_eq(model_registry_succeed(conn, ok.model_id, &result, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    json_decref(metrics);
    model_registry_claim_clear(&ok);
    model_registry_claim_clear(&bad);
    PQfinish(other);
    PQfinish(conn);
}

//  A request's trace context travels with its run: the claim hands it to
//  the trainer and both events carry it as a Kafka header; a run without
//  one has no such header, and a malformed one is refused by the column.
Test(model_registry, trace_context_travels_with_the_run)
{
    PGconn *conn = pg_test_db_connect(s_db);
    char err[512];
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    model_registry_request_t req = {.model_type = "popularity",
                                    .trigger = "manual",
                                    .requested_by = "test@127.0.0.1",
                                    .traceparent = tp};
    model_registry_enqueued_t traced;
    cr_assert_eq(model_registry_enqueue(conn, &req, &traced, err, sizeof err), MODEL_REGISTRY_OK,
                 "%s", err);
    s_enqueue(conn, "content"); //  no trace context
    model_registry_claim_t a = s_claim(conn, "t");
    model_registry_claim_t b = s_claim(conn, "t");
    cr_assert_str_eq(a.model_id, traced.model_ids[0]);
    cr_assert_str_eq(a.traceparent, tp);
    cr_assert_str_eq(b.traceparent, "");
    cr_assert_eq(model_registry_fail(conn, a.model_id, "x", err, sizeof err), MODEL_REGISTRY_OK,
                 "%s", err);
    char buf[512];
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT string_agg(topic || ' ' || (headers->>'traceparent'), ','"
                            " ORDER BY topic) FROM public.outbox WHERE key = '%s'",
                            a.model_id),
                     COMPLETED " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01," STARTED
                               " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    cr_assert_eq(s_count(conn,
                         "SELECT count(*) FROM public.outbox WHERE key = '%s'"
                         " AND headers ? 'traceparent'",
                         b.model_id),
                 0);
    req.traceparent = "00-not-a-trace";
    cr_assert_eq(model_registry_enqueue(conn, &req, &traced, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    model_registry_claim_clear(&a);
    model_registry_claim_clear(&b);
    PQfinish(conn);
}

//  If the completed event cannot be written, the model is not marked
//  succeeded either, and the trainer keeps its claim to retry.
Test(model_registry, success_without_its_event_does_not_happen)
{
    PGconn *conn = pg_test_db_connect(s_db);
    s_enqueue(conn, "popularity");
    model_registry_claim_t claim = s_claim(conn, "t");
    pg_test_exec(conn, "ALTER TABLE public.outbox ADD CONSTRAINT test_no_completed"
                       " CHECK (topic <> '" COMPLETED "')");
    char err[512];
    model_registry_result_t result = {.artifact_path = "file:///p.bin", .activate = true};
    cr_assert_eq(model_registry_succeed(conn, claim.model_id, &result, err, sizeof err),
                 MODEL_REGISTRY_ERROR);
    cr_assert_eq(s_count(conn,
                         "SELECT count(*) FROM training.models WHERE model_id = '%s'"
                         " AND status = 'running' AND artifact_path IS NULL",
                         claim.model_id),
                 1);
    cr_assert_eq(s_my_advisory_locks(conn), 1, "the claim is still held for a retry");
    pg_test_exec(conn, "ALTER TABLE public.outbox DROP CONSTRAINT test_no_completed");
    cr_assert_eq(model_registry_succeed(conn, claim.model_id, &result, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    //  gate_decided false: activate is ignored.
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM training.models"
                                      " WHERE status = 'active'"),
                 0);
    model_registry_claim_clear(&claim);
    PQfinish(conn);
}

Test(model_registry, activation_moves_the_pointer_with_an_audit_row)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *listener = pg_test_db_connect(s_db);
    pg_test_exec(listener, "LISTEN " MODEL_REGISTRY_CHANNEL_ACTIVATED);
    s_enqueue(conn, "collaborative");
    s_enqueue(conn, "collaborative");
    s_enqueue(conn, "collaborative");
    model_registry_id_t v1, v2;
    s_train(conn, v1);
    s_train(conn, v2);
    model_registry_claim_t v3 = s_claim(conn, "t"); //  left running
    char err[512];
    model_registry_activation_t act;

    cr_assert_eq(model_registry_activate(conn, v1, "ops@10.0.0.1", NULL, &act, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    cr_assert(act.changed);
    cr_assert_str_eq(act.reason, "manual");
    cr_assert_str_eq(act.previous_model_id, "");
    cr_assert_str_eq(act.model_type, "collaborative");
    char *payload = s_wait_notify(listener, MODEL_REGISTRY_CHANNEL_ACTIVATED);
    char expect[128];
    snprintf(expect, sizeof expect, "collaborative:%s", v1);
    cr_assert(payload);
    cr_assert_str_eq(payload, expect);
    free(payload);

    cr_assert_eq(model_registry_activate(conn, v2, "ops@10.0.0.1", NULL, &act, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    cr_assert_str_eq(act.previous_model_id, v1);
    char buf[256];
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT status FROM training.models WHERE model_id = '%s'", v1),
                     "retired");
    model_registry_active_t active;
    cr_assert_eq(model_registry_active(conn, "collaborative", &active, err, sizeof err),
                 MODEL_REGISTRY_OK);
    cr_assert_str_eq(active.model_id, v2);
    cr_assert_eq(active.version, 2);
    cr_assert_str_eq(active.artifact_checksum, "abc123");
    cr_assert(strstr(active.artifact_path, v2));

    //  Rollback: the retired version comes back, recorded as such.
    cr_assert_eq(model_registry_activate(conn, v1, "ops@10.0.0.2", NULL, &act, err, sizeof err),
                 MODEL_REGISTRY_OK);
    cr_assert_str_eq(act.reason, "rollback");
    //  Activating the active model changes nothing and audits nothing.
    cr_assert_eq(model_registry_activate(conn, v1, "ops", NULL, &act, err, sizeof err),
                 MODEL_REGISTRY_OK);
    cr_assert_not(act.changed);
    cr_assert_str_eq(pg_test_text(conn,
                                  "SELECT string_agg(reason || ':' || activated_by || ':' ||"
                                  " (coalesce(previous_model_id::text, '-') = '-'), ','"
                                  " ORDER BY id) FROM training.activations",
                                  buf, sizeof buf),
                     "manual:ops@10.0.0.1:true,manual:ops@10.0.0.1:false,"
                     "rollback:ops@10.0.0.2:false");
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM training.models"
                                      " WHERE status = 'active'"),
                 1);

    //  What cannot be activated.
    cr_assert_eq(model_registry_activate(conn, v3.model_id, "ops", NULL, &act, err, sizeof err),
                 MODEL_REGISTRY_CONFLICT);
    cr_assert(strstr(err, "running"), "%s", err);
    cr_assert_eq(model_registry_fail(conn, v3.model_id, "boom", err, sizeof err),
                 MODEL_REGISTRY_OK);
    cr_assert_eq(model_registry_activate(conn, v3.model_id, "ops", NULL, &act, err, sizeof err),
                 MODEL_REGISTRY_CONFLICT);
    cr_assert_eq(model_registry_activate(conn, "00000000-0000-0000-0000-000000000000", "ops", NULL,
                                         &act, err, sizeof err),
                 MODEL_REGISTRY_NOT_FOUND);
    cr_assert_eq(model_registry_activate(conn, "nope", "ops", NULL, &act, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    cr_assert_eq(model_registry_activate(conn, v2, "ops", "whim", &act, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    cr_assert_eq(model_registry_active(conn, "content", &active, err, sizeof err),
                 MODEL_REGISTRY_NOT_FOUND);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);

    //  The schema itself refuses a second active model of a type.
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE training.models SET status = 'active' WHERE model_id = '%s'",
             v2);
    PGresult *res = PQexec(conn, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    model_registry_claim_clear(&v3);
    PQfinish(listener);
    PQfinish(conn);
}

//  The quality gate's activation happens in the success transaction.
Test(model_registry, gate_activation_in_the_success_transaction)
{
    PGconn *conn = pg_test_db_connect(s_db);
    s_enqueue(conn, "content");
    model_registry_claim_t claim = s_claim(conn, "trainer.2");
    char err[512];
    model_registry_result_t result = {.artifact_path = "file:///c.bin",
                                      .gate_decided = true,
                                      .gate_passed = true,
                                      .activate = true,
                                      .activated_by = "trainer:trainer.2"};
    cr_assert_eq(model_registry_succeed(conn, claim.model_id, &result, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    char buf[256];
    cr_assert_str_eq(s_text(conn, buf, sizeof buf,
                            "SELECT m.status || ':' || a.reason || ':' || a.activated_by"
                            "  FROM training.models m JOIN training.activations a USING (model_id)"
                            " WHERE model_id = '%s'",
                            claim.model_id),
                     "active:gate:trainer:trainer.2");
    model_registry_claim_clear(&claim);
    PQfinish(conn);
}

Test(model_registry, leader_lock_is_exclusive_across_connections)
{
    PGconn *a = pg_test_db_connect(s_db);
    PGconn *b = pg_test_db_connect(s_db);
    char err[512];
    bool leader = false;
    cr_assert_eq(model_registry_try_leader(a, &leader, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert(leader);
    cr_assert_eq(model_registry_try_leader(a, &leader, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert(leader, "the leader asking again is still leader");
    cr_assert_eq(model_registry_try_leader(b, &leader, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert_not(leader);
    //  One release undoes any number of confirmations (the lock never stacked).
    cr_assert_eq(model_registry_leader_release(a, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert_eq(model_registry_try_leader(b, &leader, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert(leader);
    cr_assert_eq(model_registry_try_leader(a, &leader, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert_not(leader);
    //  The leader's connection dies: someone else takes over.
    PQfinish(b);
    leader = false;
    for (int i = 0; i < 100 && !leader; i++) {
        cr_assert_eq(model_registry_try_leader(a, &leader, err, sizeof err), MODEL_REGISTRY_OK);
        if (!leader)
            usleep(50 * 1000);
    }
    cr_assert(leader);
    PQfinish(a);
}

Test(model_registry, schedule_fires_once_per_interval)
{
    PGconn *a = pg_test_db_connect(s_db);
    PGconn *b = pg_test_db_connect(s_db);
    char err[512];
    bool any = true;
    int64_t at = 0;
    cr_assert_eq(model_registry_last_scheduled(a, &any, &at, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert_not(any);
    model_registry_enqueued_t out;
    cr_assert_eq(model_registry_schedule_if_due(a, 3600, "trainer:a", &out, err, sizeof err), 1,
                 "%s", err);
    cr_assert_eq(out.count, 4);
    cr_assert_eq(model_registry_schedule_if_due(b, 3600, "trainer:b", &out, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(out.count, 0);
    //  A manual run does not count as the schedule's.
    s_enqueue(a, "all");
    cr_assert_eq(model_registry_schedule_if_due(b, 3600, "trainer:b", &out, err, sizeof err), 0);
    cr_assert_eq(model_registry_last_scheduled(b, &any, &at, err, sizeof err), MODEL_REGISTRY_OK);
    cr_assert(any);
    cr_assert_lt(llabs((long long)(at / 1000000 - (int64_t)time(NULL))), 60);
    //  Once the interval has passed it fires again.
    pg_test_exec(a, "UPDATE training.runs SET created_at = created_at - interval '2 hours'"
                    " WHERE trigger = 'schedule'");
    cr_assert_eq(model_registry_schedule_if_due(b, 3600, "trainer:b", &out, err, sizeof err), 1);
    cr_assert_eq(pg_test_scalar(a, "SELECT count(*) FROM training.runs"
                                   " WHERE trigger = 'schedule'"),
                 2);
    cr_assert_eq(model_registry_schedule_if_due(b, 0, "trainer:b", &out, err, sizeof err),
                 MODEL_REGISTRY_INVALID);
    long queued = 0, running = -1;
    cr_assert_eq(model_registry_queue_depth(a, &queued, &running, err, sizeof err),
                 MODEL_REGISTRY_OK);
    cr_assert_eq(queued, 12);
    cr_assert_eq(running, 0);
    PQfinish(b);
    PQfinish(a);
}

Test(model_registry, list_and_get_documents)
{
    PGconn *conn = pg_test_db_connect(s_db);
    char err[512];
    int rc = 0;
    json_t *doc = model_registry_list(conn, NULL, 0, &rc, err, sizeof err);
    cr_assert(doc, "%s", err);
    cr_assert_eq(json_array_size(json_object_get(doc, "models")), 0);
    cr_assert(json_is_object(json_object_get(doc, "active")));
    json_decref(doc);

    model_registry_request_t req = {.model_type = "collaborative",
                                    .trigger = "manual",
                                    .requested_by = "anonymous@127.0.0.1",
                                    .has_start = true,
                                    .start_us = INT64_C(1714564800000000)};
    model_registry_enqueued_t first;
    cr_assert_eq(model_registry_enqueue(conn, &req, &first, err, sizeof err), MODEL_REGISTRY_OK);
    model_registry_id_t trained;
    s_train(conn, trained);
    cr_assert_eq(model_registry_activate(conn, trained, "ops", NULL, NULL, err, sizeof err),
                 MODEL_REGISTRY_OK);
    model_registry_enqueued_t all = s_enqueue(conn, "all");
    model_registry_claim_t running = s_claim(conn, "t");
    cr_assert_eq(model_registry_progress(conn, running.model_id, "als", 7, 46.5, err, sizeof err),
                 MODEL_REGISTRY_OK);

    doc = model_registry_list(conn, NULL, 0, &rc, err, sizeof err);
    cr_assert(doc, "%s", err);
    json_t *models = json_object_get(doc, "models");
    cr_assert_eq(json_array_size(models), 5);
    //  Newest first; within one request, the last queued first.
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(models, 0), "model_id")),
                     all.model_ids[3]);
    json_t *oldest = json_array_get(models, 4);
    cr_assert_str_eq(json_string_value(json_object_get(oldest, "model_id")), trained);
    cr_assert_str_eq(json_string_value(json_object_get(oldest, "status")), "active");
    cr_assert(json_is_true(json_object_get(oldest, "active")));
    cr_assert_eq(json_integer_value(json_object_get(oldest, "version")), 1);
    cr_assert(json_is_string(json_object_get(oldest, "finished_at")));
    cr_assert(json_is_string(json_object_get(oldest, "artifact_path")));
    cr_assert_eq(json_real_value(json_object_get(
                     json_object_get(json_object_get(oldest, "metrics"), "model"), "ndcg@10")),
                 0.25);
    cr_assert(json_is_false(json_object_get(json_object_get(oldest, "gate"), "passed")));
    const char *keys[] = {"model_id",      "training_id", "model_type", "version",     "status",
                          "active",        "created_at",  "started_at", "finished_at", "metrics",
                          "artifact_path", "gate",        "error"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        cr_assert(json_object_get(oldest, keys[i]), "no %s", keys[i]);
    cr_assert_eq(json_object_size(oldest), sizeof keys / sizeof *keys);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(doc, "active"), "collaborative")),
        trained);
    json_decref(doc);

    //  Filter and limit.
    doc = model_registry_list(conn, "collaborative", 1, &rc, err, sizeof err);
    cr_assert_eq(json_array_size(json_object_get(doc, "models")), 1);
    json_decref(doc);
    cr_assert_null(model_registry_list(conn, "everything", 0, &rc, err, sizeof err));
    cr_assert_eq(rc, MODEL_REGISTRY_INVALID);

    json_t *one = NULL;
    cr_assert_eq(model_registry_get(conn, running.model_id, &one, err, sizeof err),
                 MODEL_REGISTRY_OK, "%s", err);
    cr_assert_str_eq(json_string_value(json_object_get(one, "status")), "running");
    json_t *progress = json_object_get(one, "progress");
    cr_assert_str_eq(json_string_value(json_object_get(progress, "phase")), "als");
    cr_assert_eq(json_integer_value(json_object_get(progress, "iteration")), 7);
    cr_assert_eq(json_number_value(json_object_get(progress, "percent")), 46.5);
    cr_assert(json_is_string(json_object_get(progress, "heartbeat_at")));
    cr_assert_str_eq(json_string_value(json_object_get(one, "worker")), "t");
    cr_assert(json_is_object(json_object_get(one, "params")));
    cr_assert(json_is_null(json_object_get(one, "finished_at")));
    cr_assert(json_is_null(json_object_get(one, "gate")));
    json_t *training = json_object_get(one, "training");
    cr_assert_str_eq(json_string_value(json_object_get(training, "model_type")), "all");
    cr_assert_str_eq(json_string_value(json_object_get(training, "trigger")), "manual");
    json_decref(one);

    cr_assert_eq(model_registry_get(conn, trained, &one, err, sizeof err), MODEL_REGISTRY_OK);
    training = json_object_get(one, "training");
    cr_assert_str_eq(json_string_value(json_object_get(training, "start_date")),
                     "2024-05-01T12:00:00.000Z");
    cr_assert(json_is_null(json_object_get(training, "end_date")));
    cr_assert_str_eq(json_string_value(json_object_get(training, "requested_by")),
                     "anonymous@127.0.0.1");
    cr_assert_str_eq(json_string_value(json_object_get(one, "artifact_checksum")), "abc123");
    json_t *acts = json_object_get(one, "activations");
    cr_assert_eq(json_array_size(acts), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(acts, 0), "activated_by")),
                     "ops");
    json_decref(one);

    cr_assert_eq(
        model_registry_get(conn, "00000000-0000-0000-0000-000000000000", &one, err, sizeof err),
        MODEL_REGISTRY_NOT_FOUND);
    cr_assert_null(one);
    cr_assert_eq(model_registry_get(conn, "12", &one, err, sizeof err), MODEL_REGISTRY_INVALID);
    model_registry_claim_clear(&running);
    PQfinish(conn);
}

//  A dead connection is an ERROR, never a crash or a false answer.
Test(model_registry, dead_connection_is_an_error)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *killer = pg_test_db_connect(s_db);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(conn));
    pg_test_exec(killer, sql);
    usleep(100 * 1000);
    char err[512];
    model_registry_enqueued_t out;
    model_registry_request_t req = {.model_type = "all", .trigger = "manual", .requested_by = "x"};
    cr_assert_eq(model_registry_enqueue(conn, &req, &out, err, sizeof err), MODEL_REGISTRY_ERROR);
    cr_assert_eq(out.count, 0);
    json_t *doc = NULL;
    cr_assert_eq(
        model_registry_get(conn, "00000000-0000-0000-0000-000000000000", &doc, err, sizeof err),
        MODEL_REGISTRY_ERROR);
    int rc = 0;
    cr_assert_null(model_registry_list(conn, NULL, 0, &rc, err, sizeof err));
    cr_assert_eq(rc, MODEL_REGISTRY_ERROR);
    cr_assert_eq(pg_test_scalar(killer, "SELECT count(*) FROM training.runs"), 0);
    PQfinish(killer);
    PQfinish(conn);
}
