/*  test_ranker_loader.c: the ranker's model loader thread
    (ranker_loader.c) against a real registry in PostgreSQL and a file://
    artifact store in a scratch directory: the active model at start, an
    activation seen through NOTIFY, a corrupt artifact refused once and not
    retried, a checksum the file does not match, a lost registry
    connection caught up after the reconnect, and the models running
    experiments pin.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "actors/ranker/ranker_loader.h"
#include "artifact_store.h"
#include "experiment_store.h"
#include "leak_check.h"
#include "model_artifact.h"
#include "model_registry.h"
#include "pg_test_db.h"
#include "tmp_dir.h"

static pg_test_db_t *s_db;
static char s_dir[128];
static config_t *s_cfg;

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-ranker-loader"), 0);
    s_cfg = pg_test_db_config(s_db);
    snprintf(s_cfg->artifact_url, sizeof s_cfg->artifact_url, "file://%s/store", s_dir);
    snprintf(s_cfg->artifact_cache_dir, sizeof s_cfg->artifact_cache_dir, "%s/cache", s_dir);
}

static void s_teardown(void)
{
    tmp_dir_remove(s_dir);
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(ranker_loader, .init = s_setup, .fini = s_teardown, .timeout = 60);

static const char *const s_types[] = {"hybrid", "collaborative"};

static ranker_loader_t *s_loader(void)
{
    ranker_loader_options_t o = {.cfg = s_cfg,
                                 .instance = "ranker",
                                 //  Long: only NOTIFY (or a reconnect) can trigger a check.
                                 .check_interval_ms = 60000,
                                 .reconnect_min_ms = 100,
                                 .reconnect_max_ms = 200,
                                 .types = s_types,
                                 .n_types = 2,
                                 //  Queries all the time: a NOTIFY that one
                                 //  of them reads must still be acted on.
                                 .popular_refresh_ms = 20,
                                 .popular_max = 10};
    char err[512] = "";
    ranker_loader_t *l = ranker_loader_new(&o, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    return l;
}

//  The next model result within timeout_ms (list refreshes skipped), or NULL.
static ranker_load_result_t *s_wait(ranker_loader_t *l, int timeout_ms)
{
    int64_t end = zclock_mono() + timeout_ms;
    while (zclock_mono() < end) {
        ranker_load_result_t *r = ranker_loader_take(l);
        if (r && r->kind == RANKER_LOAD_MODEL)
            return r;
        if (r) {
            ranker_load_result_destroy(&r);
            continue;
        }
        zmq_pollitem_t it = {zsock_resolve(ranker_loader_socket(l)), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 50);
    }
    return NULL;
}

static void s_wait_checked(ranker_loader_t *l)
{
    int64_t end = zclock_mono() + 5000;
    while (!ranker_loader_checked(l) && zclock_mono() < end)
        zclock_sleep(20);
    cr_assert(ranker_loader_checked(l), "the first registry check completed");
}

typedef enum { S_GOOD, S_GARBAGE, S_WRONG_SUM } s_kind_t;

//  Trains (in the registry's sense) a collaborative model whose artifact
//  is good, garbage in the store, or recorded with a checksum it does not
//  have; activates it if asked. Writes its id into id.
static void s_register(PGconn *conn, s_kind_t kind, bool activate, model_registry_id_t id)
{
    char err[512] = "";
    model_registry_request_t req = {
        .model_type = "collaborative", .trigger = "manual", .requested_by = "test"};
    model_registry_enqueued_t queued;
    cr_assert_eq(model_registry_enqueue(conn, &req, &queued, err, sizeof err), 0, "%s", err);
    model_registry_claim_t claim;
    cr_assert_eq(model_registry_claim(conn, "t", NULL, &claim, err, sizeof err), 1, "%s", err);
    snprintf(id, sizeof(model_registry_id_t), "%s", claim.model_id);
    static const char *const ids[] = {"a", "b", "c"};
    float factors[] = {1, 0, 0, 1, 0.5f, 0.5f}, gram[4];
    als_compute_gram(factors, 3, 2, gram);
    als_model_t als = {.n_items = 3,
                       .factors = 2,
                       .item_factors = factors,
                       .gram = gram,
                       .regularization = 0.1f,
                       .alpha = 1};
    //  The id in the meta makes every artifact (so its checksum, so its
    //  cached copy's name) different.
    char meta[128];
    snprintf(meta, sizeof meta, "{\"model_id\":\"%s\"}", id);
    model_artifact_parts_t parts = {.model_type = "collaborative",
                                    .video_ids = ids,
                                    .n_videos = 3,
                                    .als = &als,
                                    .meta_json = meta};
    char local[512], checksum[65], key[128];
    snprintf(local, sizeof local, "%s/work.rca", s_dir);
    cr_assert_eq(model_artifact_write(&parts, local, checksum, err, sizeof err), 0, "%s", err);
    if (kind == S_GARBAGE) {
        FILE *f = fopen(local, "r+b");
        cr_assert_not_null(f);
        fseek(f, 200, SEEK_SET);
        fputs("garbage garbage garbage", f);
        fclose(f);
    }
    if (kind == S_WRONG_SUM)
        memset(checksum, 'e', 64);
    artifact_store_t *store = artifact_store_new(s_cfg->artifact_url, NULL, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    snprintf(key, sizeof key, "models/collaborative/v%d-%s.rca", claim.version, id);
    cr_assert_eq(artifact_store_put(store, local, key, err, sizeof err), 0, "%s", err);
    char *url = artifact_store_url(store, key);
    model_registry_result_t result = {.artifact_path = url,
                                      .artifact_checksum = checksum,
                                      .gate_decided = true,
                                      .gate_passed = true,
                                      .activate = activate,
                                      .activated_by = "test"};
    cr_assert_eq(model_registry_succeed(conn, id, &result, err, sizeof err), 0, "%s", err);
    free(url);
    artifact_store_destroy(&store);
    model_registry_claim_clear(&claim);
}

static void s_activate(PGconn *conn, const char *id)
{
    char err[512] = "";
    cr_assert_eq(model_registry_activate(conn, id, "test", NULL, NULL, err, sizeof err), 0, "%s",
                 err);
}

static void s_expect_loaded(ranker_loader_t *l, const char *id)
{
    ranker_load_result_t *r = s_wait(l, 5000);
    cr_assert_not_null(r, "model %s loaded", id);
    cr_assert_eq(r->kind, RANKER_LOAD_MODEL);
    cr_assert_str_eq(r->model_id, id);
    cr_assert_str_eq(r->model_type, "collaborative");
    cr_assert_not_null(r->bundle, "%s", r->error);
    cr_assert_eq(model_bundle_videos(r->bundle), 3);
    cr_assert_eq(model_bundle_video_index(r->bundle, "c"), 2);
    ranker_load_result_destroy(&r);
    cr_assert_null(r);
}

static void s_expect_refused(ranker_loader_t *l, const char *id, const char *why)
{
    ranker_load_result_t *r = s_wait(l, 5000);
    cr_assert_not_null(r, "model %s refused", id);
    cr_assert_str_eq(r->model_id, id);
    cr_assert_null(r->bundle);
    cr_assert(strstr(r->error, why), "%s", r->error);
    ranker_load_result_destroy(&r);
}

Test(ranker_loader, loads_the_active_model_and_follows_notify)
{
    PGconn *conn = pg_test_db_connect(s_db);
    model_registry_id_t a, b;
    s_register(conn, S_GOOD, true, a);
    ranker_loader_t *l = s_loader();
    s_expect_loaded(l, a);
    s_wait_checked(l);
    int64_t before = zclock_mono();
    s_register(conn, S_GOOD, true, b);
    s_expect_loaded(l, b);
    cr_assert_lt(zclock_mono() - before, 3000, "NOTIFY, not the 60 s poll");
    //  Rollback is an activation like any other.
    s_activate(conn, a);
    s_expect_loaded(l, a);
    cr_assert_null(s_wait(l, 300), "nothing else happened");
    ranker_loader_destroy(&l);
    cr_assert_null(l);
    ranker_loader_destroy(&l);
    PQfinish(conn);
}

Test(ranker_loader, corrupt_artifact_is_refused_once)
{
    PGconn *conn = pg_test_db_connect(s_db);
    model_registry_id_t good, bad, wrong;
    s_register(conn, S_GOOD, true, good);
    ranker_loader_t *l = s_loader();
    s_expect_loaded(l, good);
    s_register(conn, S_GARBAGE, true, bad);
    s_expect_refused(l, bad, "");
    //  Asked again (as the 30 s safety net would): not retried.
    cr_assert_eq(ranker_loader_check(l), 0);
    cr_assert_null(s_wait(l, 700), "a refused model is not loaded again");
    //  A checksum the registry holds but the file does not have.
    s_register(conn, S_WRONG_SUM, true, wrong);
    s_expect_refused(l, wrong, "checksum mismatch");
    s_activate(conn, good);
    s_expect_loaded(l, good);
    ranker_loader_destroy(&l);
    PQfinish(conn);
}

Test(ranker_loader, catches_up_after_a_lost_connection)
{
    PGconn *conn = pg_test_db_connect(s_db);
    model_registry_id_t a, b;
    s_register(conn, S_GOOD, false, a);
    ranker_loader_t *l = s_loader();
    s_wait_checked(l);
    cr_assert_null(s_wait(l, 200), "nothing active yet");
    //  Cut the loader's session, and activate while it is gone: the
    //  NOTIFY is lost, the check after the reconnect finds the model.
    pg_test_exec(conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE application_name = 'recsd-ranker-models'"
                       " AND datname = current_database()");
    s_activate(conn, a);
    s_expect_loaded(l, a);
    s_register(conn, S_GOOD, true, b);
    s_expect_loaded(l, b);
    ranker_loader_destroy(&l);
    PQfinish(conn);
}

Test(ranker_loader, results_not_taken_are_freed)
{
    PGconn *conn = pg_test_db_connect(s_db);
    model_registry_id_t a;
    s_register(conn, S_GOOD, true, a);
    ranker_loader_t *l = s_loader();
    s_wait_checked(l);
    //  The bundle waits in the queue; destroy frees it (the leak check
    //  of the ASan build would fail otherwise).
    ranker_loader_destroy(&l);
    PQfinish(conn);
}

Test(ranker_loader, refreshes_the_popularity_list_and_retired_videos)
{
    PGconn *conn = pg_test_db_connect(s_db);
    pg_test_exec(conn, "INSERT INTO features.videos (video_id, title, retired) VALUES"
                       " ('old', 'Old', true), ('new', 'New', false)");
    pg_test_exec(conn,
                 "INSERT INTO features.interactions (event_id, user_id, video_id, kind, weight,"
                 " occurred_at) VALUES ('e1','u1','new','watch',1,now()),"
                 " ('e2','u2','new','watch',1,now()), ('e3','u1','x','watch',1,now())");
    ranker_loader_options_t o = {.cfg = s_cfg,
                                 .instance = "ranker",
                                 .check_interval_ms = 60000,
                                 .types = s_types,
                                 .n_types = 2,
                                 .popular_refresh_ms = 100,
                                 .popular_max = 10,
                                 .retired_refresh_ms = 100};
    char err[512] = "";
    ranker_loader_t *l = ranker_loader_new(&o, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    bool popular = false, retired = false;
    int64_t end = zclock_mono() + 5000;
    while ((!popular || !retired) && zclock_mono() < end) {
        ranker_load_result_t *r = ranker_loader_take(l);
        if (!r)
            zclock_sleep(20);
        if (r && r->kind == RANKER_LOAD_POPULAR) {
            cr_assert_eq(popular_list_size(r->popular), 2);
            cr_assert_str_eq(popular_list_item(r->popular, 0)->video_id, "new");
            popular = true;
        }
        if (r && r->kind == RANKER_LOAD_RETIRED) {
            cr_assert_eq(zhashx_size(r->retired), 1);
            cr_assert_not_null(zhashx_lookup(r->retired, "old"));
            retired = true;
        }
        ranker_load_result_destroy(&r);
    }
    cr_assert(popular && retired, "both refreshed");
    ranker_loader_destroy(&l);
    PQfinish(conn);
}

Test(ranker_loader, notify_during_a_query_is_not_lost)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *locker = pg_test_db_connect(s_db);
    model_registry_id_t a;
    s_register(conn, S_GOOD, false, a);
    ranker_loader_t *l = s_loader();
    s_wait_checked(l);
    //  Hold the loader's popularity query on a lock, activate meanwhile:
    //  the notification reaches it with the query's result, read by the
    //  query rather than by a poll of the socket.
    pg_test_exec(locker, "BEGIN");
    pg_test_exec(locker, "LOCK TABLE features.videos IN ACCESS EXCLUSIVE MODE");
    zclock_sleep(300);
    s_activate(conn, a);
    zclock_sleep(300);
    pg_test_exec(locker, "COMMIT");
    s_expect_loaded(l, a);
    ranker_loader_destroy(&l);
    PQfinish(locker);
    PQfinish(conn);
}

//  The next result of kind within timeout_ms (others skipped), or NULL.
static ranker_load_result_t *s_wait_kind(ranker_loader_t *l, ranker_load_kind_t kind,
                                         int timeout_ms)
{
    int64_t end = zclock_mono() + timeout_ms;
    while (zclock_mono() < end) {
        ranker_load_result_t *r = ranker_loader_take(l);
        if (r && r->kind == kind)
            return r;
        if (r) {
            ranker_load_result_destroy(&r);
            continue;
        }
        zmq_pollitem_t it = {zsock_resolve(ranker_loader_socket(l)), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 50);
    }
    return NULL;
}

//  An experiment named name, running or not, whose variant "pinned"
//  (50 %) names model_id; its control (50 %) names nothing.
static void s_experiment(PGconn *conn, const char *name, const char *status, const char *model_id)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "WITH e AS (INSERT INTO experiments.experiments (name, status, layer)"
             " VALUES ('%s', '%s', '%s') RETURNING experiment_id)"
             " INSERT INTO experiments.variants (experiment_id, name, weight, model_type,"
             " model_id, is_control, position)"
             " SELECT experiment_id, 'control', 50, NULL, NULL::uuid, true, 0 FROM e"
             " UNION ALL SELECT experiment_id, 'pinned', 50, 'collaborative', '%s'::uuid, false, 1"
             " FROM e",
             name, status, name, model_id);
    pg_test_exec(conn, sql);
    pg_test_exec(conn, "NOTIFY " EXPERIMENT_STORE_CHANNEL);
}

//  Models pinned by running experiments are loaded like active ones
//  (a corrupt one refused), the set is posted when it changes, and a
//  stopped experiment's model leaves it.
Test(ranker_loader, loads_the_models_running_experiments_pin)
{
    PGconn *conn = pg_test_db_connect(s_db);
    model_registry_id_t active, pinned, corrupt, drafted;
    s_register(conn, S_GOOD, true, active);
    s_register(conn, S_GOOD, false, pinned);
    s_register(conn, S_GARBAGE, false, corrupt);
    s_register(conn, S_GOOD, false, drafted);
    ranker_loader_t *l = s_loader();
    s_expect_loaded(l, active);
    s_wait_checked(l);
    cr_assert_null(s_wait_kind(l, RANKER_LOAD_PINS, 300), "nothing pinned: nothing posted");

    int64_t before = zclock_mono();
    s_experiment(conn, "draft-one", "draft", drafted);
    s_experiment(conn, "running-one", "running", pinned);
    ranker_load_result_t *r = s_wait_kind(l, RANKER_LOAD_PINNED, 5000);
    cr_assert_not_null(r, "the pinned model loaded");
    cr_assert_lt(zclock_mono() - before, 3000, "NOTIFY, not the 60 s poll");
    cr_assert_str_eq(r->model_id, pinned);
    cr_assert_str_eq(r->model_type, "collaborative");
    cr_assert_not_null(r->bundle, "%s", r->error);
    cr_assert_eq(model_bundle_videos(r->bundle), 3);
    ranker_load_result_destroy(&r);
    r = s_wait_kind(l, RANKER_LOAD_PINS, 3000);
    cr_assert_not_null(r);
    cr_assert_eq(r->n_pins, 1, "a draft experiment pins nothing");
    cr_assert_str_eq(r->pins[0], pinned);
    ranker_load_result_destroy(&r);

    //  A check without a change posts nothing and loads nothing again.
    cr_assert_eq(ranker_loader_check(l), 0);
    cr_assert_null(s_wait_kind(l, RANKER_LOAD_PINNED, 500));

    //  A corrupt pinned artifact: refused, once.
    pg_test_exec(conn, "UPDATE experiments.experiments SET layer = 'x' WHERE name = 'running-one'");
    s_experiment(conn, "corrupt-one", "running", corrupt);
    r = s_wait_kind(l, RANKER_LOAD_PINNED, 5000);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->model_id, corrupt);
    cr_assert_null(r->bundle, "refused");
    ranker_load_result_destroy(&r);
    r = s_wait_kind(l, RANKER_LOAD_PINS, 3000);
    cr_assert_not_null(r);
    cr_assert_eq(r->n_pins, 2);
    ranker_load_result_destroy(&r);
    cr_assert_eq(ranker_loader_check(l), 0);
    cr_assert_null(s_wait_kind(l, RANKER_LOAD_PINNED, 500), "not retried");

    //  Stopped: out of the set.
    pg_test_exec(conn, "UPDATE experiments.experiments SET status = 'stopped'");
    pg_test_exec(conn, "NOTIFY " EXPERIMENT_STORE_CHANNEL);
    r = s_wait_kind(l, RANKER_LOAD_PINS, 3000);
    cr_assert_not_null(r);
    cr_assert_eq(r->n_pins, 0);
    ranker_load_result_destroy(&r);
    ranker_loader_destroy(&l);
    PQfinish(conn);
}
