/*  test_experiment_store.c: the experiments schema's SQL
    (experiment_store.c) on a real PostgreSQL, one migrated database per
    test: create with model checks, list/get, start/stop with the one-
    running-per-layer rule and NOTIFY, the serving snapshot, bulk
    exposures, attribution of watches (window, replays, other videos) and
    the results of a hand-computed example.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment_store.h"
#include "leak_check.h"
#include "model_registry.h"
#include "pg_test_db.h"

static pg_test_db_t *s_db;
static PGconn *s_conn;

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
    s_conn = pg_test_db_connect(s_db);
}

static void s_teardown(void)
{
    PQfinish(s_conn);
    s_conn = NULL;
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(experiment_store, .init = s_setup, .fini = s_teardown, .timeout = 60);

#define T0_US 1714564800000000LL //  2024-05-01T12:00:00Z
#define SEC 1000000LL

static experiment_t *s_parse(const char *text)
{
    char err[256] = "";
    experiment_t *exp = experiment_parse_text(text, strlen(text), err, sizeof err);
    cr_assert(exp, "%s", err);
    return exp;
}

//  Parses and stores text; returns the new id in id.
static void s_create(const char *text, char id[EXPERIMENT_ID_LEN + 1])
{
    char err[256] = "";
    experiment_t *exp = s_parse(text);
    cr_assert_eq(experiment_store_create(s_conn, exp, "admin@test", id, err, sizeof err),
                 EXPERIMENT_STORE_OK, "%s", err);
    cr_assert_eq(strlen(id), EXPERIMENT_ID_LEN);
    experiment_destroy(&exp);
}

static int s_create_rc(const char *text, char *err, size_t errlen)
{
    char id[EXPERIMENT_ID_LEN + 1];
    experiment_t *exp = s_parse(text);
    int rc = experiment_store_create(s_conn, exp, "admin@test", id, err, errlen);
    experiment_destroy(&exp);
    return rc;
}

static void s_status(const char *id, const char *status, int want, bool want_changed,
                     const char *want_err)
{
    char err[256] = "";
    bool changed = !want_changed;
    int rc = experiment_store_set_status(s_conn, id, status, &changed, err, sizeof err);
    cr_assert_eq(rc, want, "%s -> %s: rc %d (%s)", id, status, rc, err);
    cr_assert_eq(changed, want_changed);
    if (want_err)
        cr_assert(strstr(err, want_err), "got \"%s\", want \"%s\"", err, want_err);
    cr_assert_eq(PQtransactionStatus(s_conn), PQTRANS_IDLE, "left no transaction open");
}

//  Queues a model of type; if trained, claims and succeeds it (an
//  artifact exists). Writes its id.
static void s_model(const char *type, bool trained, model_registry_id_t id)
{
    char err[512];
    model_registry_request_t req = {
        .model_type = type, .trigger = "manual", .requested_by = "test"};
    model_registry_enqueued_t q;
    cr_assert_eq(model_registry_enqueue(s_conn, &req, &q, err, sizeof err), MODEL_REGISTRY_OK, "%s",
                 err);
    snprintf(id, sizeof(model_registry_id_t), "%s", q.model_ids[0]);
    if (!trained)
        return;
    model_registry_claim_t claim;
    cr_assert_eq(model_registry_claim(s_conn, "t1", NULL, &claim, err, sizeof err), 1, "%s", err);
    cr_assert_str_eq(claim.model_id, id);
    model_registry_result_t result = {.artifact_path = "file:///tmp/a.bin"};
    cr_assert_eq(model_registry_succeed(s_conn, id, &result, err, sizeof err), MODEL_REGISTRY_OK,
                 "%s", err);
    model_registry_claim_clear(&claim);
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

static long s_count(const char *fmt, const char *arg)
{
    char sql[1024];
    snprintf(sql, sizeof sql, fmt, arg);
    return pg_test_scalar(s_conn, sql);
}

#define SIMPLE(name, layer)                                                                        \
    "{\"name\":\"" name "\",\"layer\":\"" layer "\",\"salt\":\"salt-" name "\",\"variants\":["     \
    "{\"name\":\"control\",\"weight\":50},{\"name\":\"treat\",\"weight\":50,"                      \
    "\"model_type\":\"content\"}]}"

Test(experiment_store, create_get_list)
{
    model_registry_id_t model;
    s_model("collaborative", true, model);
    char text[1024], id[EXPERIMENT_ID_LEN + 1], err[256];
    //  Declared order is not name order: positions keep it.
    snprintf(text, sizeof text,
             "{\"name\":\"blend\",\"description\":\"d\",\"salt\":\"s1\","
             "\"variants\":[{\"name\":\"zeta\",\"weight\":25.5,\"is_control\":false},"
             "{\"name\":\"alpha\",\"weight\":24.5,\"model_type\":\"hybrid\","
             "\"params\":{\"ease_share\":0.25}},"
             "{\"name\":\"mid\",\"weight\":50,\"model_id\":\"%s\"}]}",
             model);
    s_create(text, id);

    json_t *doc = NULL;
    cr_assert_eq(experiment_store_get(s_conn, id, &doc, err, sizeof err), EXPERIMENT_STORE_OK, "%s",
                 err);
    char *dump = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(doc);
    char want[1024];
    snprintf(want, sizeof want,
             "\"variants\":[{\"name\":\"zeta\",\"weight\":25.5,\"model_type\":null,"
             "\"model_id\":null,\"params\":{},\"is_control\":true},"
             "{\"name\":\"alpha\",\"weight\":24.5,\"model_type\":\"hybrid\",\"model_id\":null,"
             "\"params\":{\"ease_share\":0.25},\"is_control\":false},"
             "{\"name\":\"mid\",\"weight\":50,\"model_type\":\"collaborative\","
             "\"model_id\":\"%s\",\"params\":{},\"is_control\":false}]}",
             model);
    cr_assert(strstr(dump, want), "%s\nwant ...%s", dump, want);
    cr_assert(strstr(dump, "\"status\":\"draft\",\"layer\":\"default\",\"salt\":\"s1\""), "%s",
              dump);
    cr_assert(strstr(dump, "\"created_by\":\"admin@test\""), "%s", dump);
    cr_assert(strstr(dump, "\"start_at\":null"), "%s", dump);
    free(dump);

    experiment_t *exp = NULL;
    cr_assert_eq(experiment_store_fetch(s_conn, id, &exp, err, sizeof err), EXPERIMENT_STORE_OK);
    cr_assert_str_eq(exp->id, id);
    cr_assert(exp->has_created);
    cr_assert_str_eq(exp->variants[1].params_json, "{\"ease_share\":0.25}");
    experiment_destroy(&exp);

    char id2[EXPERIMENT_ID_LEN + 1];
    s_create(SIMPLE("second", "default"), id2);
    s_status(id2, "running", EXPERIMENT_STORE_OK, true, NULL);
    cr_assert_eq(experiment_store_list(s_conn, NULL, &doc, err, sizeof err), EXPERIMENT_STORE_OK,
                 "%s", err);
    json_t *list = json_object_get(doc, "experiments");
    cr_assert_eq(json_array_size(list), 2);
    json_decref(doc);
    const char *running[] = {"running", NULL};
    cr_assert_eq(experiment_store_list(s_conn, running, &doc, err, sizeof err),
                 EXPERIMENT_STORE_OK);
    list = json_object_get(doc, "experiments");
    cr_assert_eq(json_array_size(list), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "experiment_id")),
                     id2);
    json_decref(doc);
    const char *bogus[] = {"paused", NULL};
    cr_assert_eq(experiment_store_list(s_conn, bogus, &doc, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);

    cr_assert_eq(
        experiment_store_get(s_conn, "0f8fad5b-d9cb-469f-a165-70867728950e", &doc, err, sizeof err),
        EXPERIMENT_STORE_NOT_FOUND);
    cr_assert_eq(experiment_store_get(s_conn, "nope", &doc, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    cr_assert_null(doc);
}

Test(experiment_store, create_refuses_bad_input)
{
    char err[256] = "", text[1024], id[EXPERIMENT_ID_LEN + 1];
    s_create(SIMPLE("taken", "default"), id);
    cr_assert_eq(s_create_rc(SIMPLE("taken", "other"), err, sizeof err), EXPERIMENT_STORE_CONFLICT);
    cr_assert(strstr(err, "name: an experiment named \"taken\" already exists"), "%s", err);

    //  A model that does not exist, of another type, or not trained.
    snprintf(text, sizeof text,
             "{\"name\":\"m\",\"variants\":[{\"name\":\"a\",\"weight\":50},"
             "{\"name\":\"b\",\"weight\":50,\"model_id\":\"%s\"}]}",
             "0f8fad5b-d9cb-469f-a165-70867728950e");
    cr_assert_eq(s_create_rc(text, err, sizeof err), EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "variants[1].model_id: no model 0f8fad5b"), "%s", err);

    model_registry_id_t content, queued;
    s_model("content", true, content);
    snprintf(
        text, sizeof text,
        "{\"name\":\"m\",\"variants\":[{\"name\":\"a\",\"weight\":50},"
        "{\"name\":\"b\",\"weight\":50,\"model_type\":\"collaborative\",\"model_id\":\"%s\"}]}",
        content);
    cr_assert_eq(s_create_rc(text, err, sizeof err), EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "variants[1].model_id: model") && strstr(err, "is a content model, not "
                                                                        "collaborative"),
              "%s", err);

    s_model("popularity", false, queued);
    snprintf(text, sizeof text,
             "{\"name\":\"m\",\"variants\":[{\"name\":\"a\",\"weight\":50,\"model_id\":\"%s\"},"
             "{\"name\":\"b\",\"weight\":50}]}",
             queued);
    cr_assert_eq(s_create_rc(text, err, sizeof err), EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "variants[0].model_id: model") && strstr(err, "is queued"), "%s", err);

    //  Nothing of the refused ones was written.
    cr_assert_eq(pg_test_scalar(s_conn, "SELECT count(*) FROM experiments.experiments"), 1);
    cr_assert_eq(pg_test_scalar(s_conn, "SELECT count(*) FROM experiments.variants"), 2);

    //  Validation runs again on what the caller hands in.
    experiment_t *exp = s_parse(SIMPLE("w", "default"));
    exp->variants[1].weight_bp = 4900;
    cr_assert_eq(experiment_store_create(s_conn, exp, "x", id, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "weights sum to 99.00"), "%s", err);
    exp->variants[1].weight_bp = 5000;
    cr_assert_eq(experiment_store_create(s_conn, exp, "", id, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "created_by"), "%s", err);
    experiment_destroy(&exp);
}

Test(experiment_store, start_stop_and_layers)
{
    char a[EXPERIMENT_ID_LEN + 1], b[EXPERIMENT_ID_LEN + 1], c[EXPERIMENT_ID_LEN + 1];
    s_create(SIMPLE("a", "default"), a);
    s_create(SIMPLE("b", "default"), b);
    s_create(SIMPLE("c", "other"), c);

    PGconn *listener = pg_test_db_connect(s_db);
    pg_test_exec(listener, "LISTEN " EXPERIMENT_STORE_CHANNEL);

    s_status(a, "running", EXPERIMENT_STORE_OK, true, NULL);
    char *payload = s_wait_notify(listener, EXPERIMENT_STORE_CHANNEL);
    cr_assert(payload && strcmp(payload, a) == 0, "notified %s", payload ? payload : "(nothing)");
    free(payload);
    cr_assert_eq(s_count("SELECT count(*) FROM experiments.experiments WHERE experiment_id = '%s'"
                         " AND status = 'running' AND start_at IS NOT NULL AND end_at IS NULL",
                         a),
                 1);
    s_status(a, "running", EXPERIMENT_STORE_OK, false, NULL); //  idempotent

    //  One running experiment per layer; another layer is independent.
    s_status(b, "running", EXPERIMENT_STORE_CONFLICT, false,
             "experiment \"a\" is already running in layer \"default\"");
    s_status(c, "running", EXPERIMENT_STORE_OK, true, NULL);

    s_status(a, "stopped", EXPERIMENT_STORE_OK, true, NULL);
    cr_assert_eq(s_count("SELECT count(*) FROM experiments.experiments WHERE experiment_id = '%s'"
                         " AND status = 'stopped' AND end_at >= start_at",
                         a),
                 1);
    s_status(a, "running", EXPERIMENT_STORE_CONFLICT, false, "cannot be restarted");
    s_status(b, "running", EXPERIMENT_STORE_OK, true, NULL); //  the layer is free now

    s_status("0f8fad5b-d9cb-469f-a165-70867728950e", "running", EXPERIMENT_STORE_NOT_FOUND, false,
             NULL);
    s_status("x", "running", EXPERIMENT_STORE_INVALID, false, NULL);
    s_status(a, "draft", EXPERIMENT_STORE_INVALID, false, "status");

    //  A scheduled end that has passed cannot be started.
    char d[EXPERIMENT_ID_LEN + 1];
    s_create("{\"name\":\"late\",\"layer\":\"l3\",\"start_at\":\"2020-01-01T00:00:00Z\","
             "\"end_at\":\"2020-02-01T00:00:00Z\",\"variants\":[{\"name\":\"a\",\"weight\":50},"
             "{\"name\":\"b\",\"weight\":50}]}",
             d);
    s_status(d, "running", EXPERIMENT_STORE_CONFLICT, false, "end_at has already passed");
    //  A draft can be cancelled.
    s_status(d, "stopped", EXPERIMENT_STORE_OK, true, NULL);
    PQfinish(listener);
}

Test(experiment_store, load_set_serves_running_and_stopped)
{
    char a[EXPERIMENT_ID_LEN + 1], b[EXPERIMENT_ID_LEN + 1], c[EXPERIMENT_ID_LEN + 1], err[256];
    const char *def = "{\"name\":\"a\",\"salt\":\"split\",\"variants\":["
                      "{\"name\":\"ctl\",\"weight\":50},{\"name\":\"x\",\"weight\":30},"
                      "{\"name\":\"b_small\",\"weight\":20}]}";
    s_create(def, a);
    s_create(SIMPLE("b", "lb"), b);
    s_create(SIMPLE("c", "lc"), c); //  stays a draft
    s_status(a, "running", EXPERIMENT_STORE_OK, true, NULL);
    s_status(b, "running", EXPERIMENT_STORE_OK, true, NULL);
    s_status(b, "stopped", EXPERIMENT_STORE_OK, true, NULL);

    int skipped = -1;
    experiment_set_t *set = experiment_store_load_set(s_conn, &skipped, err, sizeof err);
    cr_assert_not_null(set, "%s", err);
    cr_assert_eq(skipped, 0);
    cr_assert_eq(experiment_set_size(set), 2);
    cr_assert_null(experiment_set_find(set, c), "drafts are not served");
    const experiment_t *la = experiment_set_find(set, a);
    const experiment_t *lb = experiment_set_find(set, b);
    cr_assert(la && lb);
    cr_assert_str_eq(la->variants[2].name, "b_small", "declared order kept");
    cr_assert(la->has_start);
    int64_t now = la->start_us + SEC;
    cr_assert_eq(experiment_set_live_in_layer(set, "default", now), la);
    cr_assert_null(experiment_set_live_in_layer(set, "lb", now));

    //  The loaded experiment assigns exactly as the definition did.
    experiment_t *parsed = s_parse(def);
    snprintf(parsed->status, sizeof parsed->status, "running");
    char user[32];
    for (int u = 0; u < 2000; u++) {
        snprintf(user, sizeof user, "user-%d", u);
        cr_assert_str_eq(experiment_assign(la, user, now)->name,
                         experiment_assign(parsed, user, now)->name);
        cr_assert(experiment_assign(lb, user, now)->is_control, "stopped: control");
    }
    experiment_destroy(&parsed);
    experiment_set_destroy(&set);

    //  A row broken by hand is left out, not fatal.
    pg_test_exec(s_conn, "UPDATE experiments.variants SET is_control = false WHERE name = 'ctl'");
    set = experiment_store_load_set(s_conn, &skipped, err, sizeof err);
    cr_assert_not_null(set, "%s", err);
    cr_assert_eq(skipped, 1);
    cr_assert_eq(experiment_set_size(set), 1);
    experiment_set_destroy(&set);
}

//  n exposures of experiment id, variant, user prefix: exposure i is user
//  "<prefix><i % users>", videos ["<prefix>v<i>", "<prefix>w<i>"], served
//  at T0 + i seconds.
static void s_expose(const char *id, const char *variant, const char *prefix, int n, int users)
{
    experiment_exposure_t *rows = calloc((size_t)n, sizeof *rows);
    char(*text)[3][64] = calloc((size_t)n, sizeof *text);
    const char **vids = calloc((size_t)n * 2, sizeof *vids);
    cr_assert(rows && text && vids);
    for (int i = 0; i < n; i++) {
        snprintf(text[i][0], 64, "%s%d", prefix, i % users);
        snprintf(text[i][1], 64, "%sv%d", prefix, i);
        snprintf(text[i][2], 64, "%sw%d", prefix, i);
        vids[2 * i] = text[i][1];
        vids[2 * i + 1] = text[i][2];
        rows[i] = (experiment_exposure_t){.experiment_id = id,
                                          .variant = variant,
                                          .user_id = text[i][0],
                                          .video_ids = &vids[2 * i],
                                          .n_videos = 2,
                                          .request_id = i % 2 ? "req" : NULL,
                                          .served_us = T0_US + i * SEC};
    }
    char err[256];
    cr_assert_eq(experiment_store_record_exposures(s_conn, rows, (size_t)n, err, sizeof err),
                 EXPERIMENT_STORE_OK, "%s", err);
    free(rows);
    free(text);
    free(vids);
}

static long s_attribute(const experiment_watch_t *w, size_t n, int window_s)
{
    char err[256];
    long attributed = -1;
    pg_test_exec(s_conn, "BEGIN");
    cr_assert_eq(
        experiment_store_attribute_watches(s_conn, w, n, window_s, &attributed, err, sizeof err),
        EXPERIMENT_STORE_OK, "%s", err);
    pg_test_exec(s_conn, "COMMIT");
    return attributed;
}

Test(experiment_store, exposures_in_bulk)
{
    char id[EXPERIMENT_ID_LEN + 1], err[256];
    s_create(SIMPLE("e", "default"), id);
    s_expose(id, "treat", "u", 3, 3);
    cr_assert_eq(s_count("SELECT count(*) FROM experiments.exposures WHERE experiment_id = '%s'"
                         " AND variant = 'treat'",
                         id),
                 3);
    char buf[256];
    pg_test_text(s_conn,
                 "SELECT user_id || ' ' || video_ids::text || ' ' || coalesce(request_id, '-')"
                 " || ' ' || to_char(served_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                 "  FROM experiments.exposures ORDER BY exposure_id OFFSET 1 LIMIT 1",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "u1 {uv1,uw1} req 2024-05-01 12:00:01");

    //  Odd ids survive the round trip; served_us 0 means now.
    const char *odd[] = {"quote\"d", "back\\slash", "{brace,comma}", "ünïcödé"};
    experiment_exposure_t row = {.experiment_id = id,
                                 .variant = "control",
                                 .user_id = "o'brien",
                                 .video_ids = odd,
                                 .n_videos = 4};
    cr_assert_eq(experiment_store_record_exposures(s_conn, &row, 1, err, sizeof err),
                 EXPERIMENT_STORE_OK, "%s", err);
    pg_test_text(s_conn,
                 "SELECT array_to_json(video_ids)::text || (served_at > now() - interval '1 min')"
                 "  FROM experiments.exposures WHERE user_id = 'o''brien'",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "[\"quote\\\"d\",\"back\\\\slash\",\"{brace,comma}\",\"ünïcödé\"]true");

    //  A bad row refuses the batch.
    experiment_exposure_t bad[2] = {row, row};
    bad[1].experiment_id = "not-a-uuid";
    cr_assert_eq(experiment_store_record_exposures(s_conn, bad, 2, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "exposure 1"), "%s", err);
    const char *invalid_utf8[] = {"\xff\xfe"};
    bad[1] = row;
    bad[1].video_ids = invalid_utf8;
    bad[1].n_videos = 1;
    cr_assert_eq(experiment_store_record_exposures(s_conn, bad, 2, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    cr_assert_eq(pg_test_scalar(s_conn, "SELECT count(*) FROM experiments.exposures"), 4);
    cr_assert_eq(experiment_store_record_exposures(s_conn, NULL, 0, err, sizeof err),
                 EXPERIMENT_STORE_OK);
}

Test(experiment_store, attribution_window_replays_and_videos)
{
    char id[EXPERIMENT_ID_LEN + 1], err[256];
    s_create(SIMPLE("attr", "default"), id);
    //  u0 saw [uv0, uw0] at T0 (treat); u1 saw [uv1, uw1] at T0+1s.
    s_expose(id, "treat", "u", 2, 2);

    experiment_watch_t w[] = {
        //  Inside the hour: counts.
        {.user_id = "u0",
         .video_id = "uv0",
         .watched_us = T0_US + 60 * SEC,
         .completion = 0.75,
         .watched_s = 90},
        //  The same video again in the batch: the earliest watch is kept.
        {.user_id = "u0",
         .video_id = "uv0",
         .watched_us = T0_US + 120 * SEC,
         .completion = 0.1,
         .watched_s = 5},
        //  Not one of the videos shown.
        {.user_id = "u0",
         .video_id = "other",
         .watched_us = T0_US + 60 * SEC,
         .completion = 1,
         .watched_s = 10},
        //  Shown, but to another user.
        {.user_id = "u0",
         .video_id = "uv1",
         .watched_us = T0_US + 60 * SEC,
         .completion = 1,
         .watched_s = 10},
        //  After the window closed.
        {.user_id = "u1",
         .video_id = "uv1",
         .watched_us = T0_US + 3602 * SEC,
         .completion = 1,
         .watched_s = 10},
        //  Before the exposure.
        {.user_id = "u1", .video_id = "uw1", .watched_us = T0_US, .completion = 1, .watched_s = 10},
        //  On the window's edge: counts; unknown completion and time.
        {.user_id = "u1",
         .video_id = "uw1",
         .watched_us = T0_US + 3601 * SEC,
         .completion = NAN,
         .watched_s = -1},
    };
    cr_assert_eq(s_attribute(w, sizeof w / sizeof *w, 3600), 2);
    char buf[256];
    pg_test_text(s_conn,
                 "SELECT string_agg(user_id || ':' || video_id || ':' || variant || ':' ||"
                 " coalesce(watch_completion::text, 'null') || ':' || coalesce(watched_s::text, "
                 "'null'), ' ' ORDER BY outcome_id) FROM experiments.outcomes",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "u0:uv0:treat:0.75:90 u1:uw1:treat:null:null");
    cr_assert_eq(
        s_count("SELECT count(*) FROM experiments.outcomes WHERE experiment_id = '%s'", id), 2);

    //  Replayed events (at-least-once delivery) count once.
    cr_assert_eq(s_attribute(w, sizeof w / sizeof *w, 3600), 0);
    cr_assert_eq(pg_test_scalar(s_conn, "SELECT count(*) FROM experiments.outcomes"), 2);

    //  Contract: inside the caller's transaction, with a sane window.
    long n = -1;
    cr_assert_eq(experiment_store_attribute_watches(s_conn, w, 1, 3600, &n, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "transaction"), "%s", err);
    pg_test_exec(s_conn, "BEGIN");
    cr_assert_eq(experiment_store_attribute_watches(s_conn, w, 1, 0, &n, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    experiment_watch_t bad = {.user_id = "", .video_id = "v"};
    cr_assert_eq(experiment_store_attribute_watches(s_conn, &bad, 1, 60, &n, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
    cr_assert(strstr(err, "watch 0"), "%s", err);
    //  The caller's transaction is still usable and still open.
    cr_assert_eq(PQtransactionStatus(s_conn), PQTRANS_INTRANS);
    pg_test_exec(s_conn, "ROLLBACK");
}

#define NEAR(a, b, tol)                                                                            \
    cr_assert(fabs((a) - (b)) < (tol), "%.12f != %.12f", (double)(a), (double)(b))

static double s_get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_number(v), "%s is not a number", key);
    return json_number_value(v);
}

//  The hand-computed example (arithmetic in test_experiment_stats.c):
//    control: 1000 exposures of 500 users, 100 converted (10 of them with
//             two videos watched: 110 outcomes); completions 0.4 x 50,
//             0.6 x 50, 0.5 x 10: mean (20 + 30 + 5) / 110 = 0.5
//             rate 0.1, Wilson 95% [0.0829094435930957, 0.1201519631953484]
//    treat:   1000 exposures of 500 users, 130 converted, completion 0.8
//             rate 0.13, Wilson 95% [0.1105637746248419, 0.1522680266544689]
//             vs control: +0.03 absolute, lift 0.3, z 2.1027406056221143,
//             p 0.0354884504664747 (significant)
//    idle:    no traffic: rates and tests null.
Test(experiment_store, results_match_hand_computed_example)
{
    char id[EXPERIMENT_ID_LEN + 1], err[256];
    s_create("{\"name\":\"res\",\"variants\":[{\"name\":\"control\",\"weight\":45},"
             "{\"name\":\"treat\",\"weight\":45},{\"name\":\"idle\",\"weight\":10}]}",
             id);
    s_expose(id, "control", "c", 1000, 500);
    s_expose(id, "treat", "t", 1000, 500);

    experiment_watch_t w[250];
    char names[250][2][32];
    size_t n = 0;
    for (int i = 0; i < 100; i++, n++) { //  control: v<i> for the first 100
        snprintf(names[n][0], 32, "c%d", i % 500);
        snprintf(names[n][1], 32, "cv%d", i);
        w[n] = (experiment_watch_t){names[n][0], names[n][1], T0_US + (i + 5) * SEC,
                                    i % 2 ? 0.6 : 0.4, 100};
    }
    for (int i = 0; i < 10; i++, n++) { //  ...and w<i> too for 10 of them
        snprintf(names[n][0], 32, "c%d", i % 500);
        snprintf(names[n][1], 32, "cw%d", i);
        w[n] = (experiment_watch_t){names[n][0], names[n][1], T0_US + (i + 6) * SEC, 0.5, 100};
    }
    for (int i = 0; i < 130; i++, n++) {
        snprintf(names[n][0], 32, "t%d", i % 500);
        snprintf(names[n][1], 32, "tv%d", i);
        w[n] = (experiment_watch_t){names[n][0], names[n][1], T0_US + (i + 5) * SEC, 0.8, 200};
    }
    cr_assert_eq(s_attribute(w, n, 3600), 240);

    json_t *doc = NULL;
    cr_assert_eq(experiment_store_results(s_conn, id, &doc, err, sizeof err), EXPERIMENT_STORE_OK,
                 "%s", err);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "name")), "res");
    NEAR(s_get(doc, "confidence_level"), 0.95, 1e-12);
    json_t *variants = json_object_get(doc, "variants");
    cr_assert_eq(json_array_size(variants), 3);
    json_t *c = json_array_get(variants, 0), *t = json_array_get(variants, 1),
           *idle = json_array_get(variants, 2);
    cr_assert_str_eq(json_string_value(json_object_get(c, "name")), "control");
    cr_assert(json_is_true(json_object_get(c, "is_control")));
    cr_assert_eq(s_get(c, "users"), 500);
    cr_assert_eq(s_get(c, "exposures"), 1000);
    cr_assert_eq(s_get(c, "conversions"), 100);
    cr_assert_eq(s_get(c, "outcomes"), 110);
    NEAR(s_get(c, "conversion_rate"), 0.1, 1e-12);
    json_t *ci = json_object_get(c, "conversion_rate_ci");
    NEAR(s_get(ci, "lower"), 0.0829094435930957, 1e-9);
    NEAR(s_get(ci, "upper"), 0.1201519631953484, 1e-9);
    NEAR(s_get(c, "mean_watch_completion"), 0.5, 1e-6); //  stored as real (float4)
    NEAR(s_get(c, "mean_watched_s"), 100, 1e-9);
    cr_assert(json_is_null(json_object_get(c, "vs_control")));

    cr_assert_eq(s_get(t, "users"), 500);
    cr_assert_eq(s_get(t, "exposures"), 1000);
    cr_assert_eq(s_get(t, "conversions"), 130);
    NEAR(s_get(t, "conversion_rate"), 0.13, 1e-12);
    ci = json_object_get(t, "conversion_rate_ci");
    NEAR(s_get(ci, "lower"), 0.1105637746248419, 1e-9);
    NEAR(s_get(ci, "upper"), 0.1522680266544689, 1e-9);
    NEAR(s_get(t, "mean_watch_completion"), 0.8, 1e-6);
    json_t *vs = json_object_get(t, "vs_control");
    NEAR(s_get(vs, "rate_difference"), 0.03, 1e-12);
    NEAR(s_get(vs, "relative_lift"), 0.3, 1e-9);
    NEAR(s_get(vs, "z"), 2.1027406056221143, 1e-9);
    NEAR(s_get(vs, "p_value"), 0.0354884504664747, 1e-9);
    cr_assert(json_is_true(json_object_get(vs, "significant")));
    NEAR(s_get(vs, "completion_difference"), 0.3, 1e-6);
    //  Treatment completions have no spread, control's do: a tiny p.
    cr_assert(s_get(vs, "completion_p_value") < 1e-6);

    cr_assert_eq(s_get(idle, "exposures"), 0);
    cr_assert(json_is_null(json_object_get(idle, "conversion_rate")));
    cr_assert(json_is_null(json_object_get(idle, "conversion_rate_ci")));
    cr_assert(json_is_null(json_object_get(idle, "mean_watch_completion")));
    vs = json_object_get(idle, "vs_control");
    cr_assert(json_is_null(json_object_get(vs, "p_value")));
    cr_assert(json_is_null(json_object_get(vs, "significant")));
    json_decref(doc);

    cr_assert_eq(experiment_store_results(s_conn, "0f8fad5b-d9cb-469f-a165-70867728950e", &doc, err,
                                          sizeof err),
                 EXPERIMENT_STORE_NOT_FOUND);
    cr_assert_eq(experiment_store_results(s_conn, "bad", &doc, err, sizeof err),
                 EXPERIMENT_STORE_INVALID);
}
