/*  test_ranker_serve.c: the ranker's model set (ranker_models.c: active,
    previous and pinned bundles) and its serving chain (ranker_serve.c:
    the chain, as configured, and a request's blend and pinned model) on
    real bundles: small hand-made models written with model_artifact_write
    into a scratch directory and opened with model_bundle_open, exactly as
    the ranker opens trained ones.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "leak_check.h"
#include "model_artifact.h"
#include "actors/ranker/ranker_cooc.h"
#include "actors/ranker/ranker_history.h"
#include "actors/ranker/ranker_models.h"
#include "actors/ranker/ranker_serve.h"
#include "tmp_dir.h"

static char s_dir[256];

static void s_setup(void)
{
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-ranker-serve"), 0);
}

static void s_teardown(void)
{
    tmp_dir_remove(s_dir);
    leak_check_fini();
}

TestSuite(ranker_serve, .init = s_setup, .fini = s_teardown, .timeout = 60);

#define N 6
static const char *const s_ids[N] = {"v0", "v1", "v2", "v3", "v4", "v5"};

//  Two taste directions: v0 v1 v2 lean on factor 0, v3 v4 on factor 1,
//  v5 in between.
static float s_factors[N * 2] = {1.0f, 0.0f, 0.9f, 0.1f, 0.8f, 0.2f,
                                 0.0f, 1.0f, 0.1f, 0.9f, 0.5f, 0.5f};

static als_model_t s_als(float *gram)
{
    als_compute_gram(s_factors, N, 2, gram);
    return (als_model_t){.n_items = N,
                         .factors = 2,
                         .item_factors = s_factors,
                         .gram = gram,
                         .regularization = 0.1f,
                         .alpha = 1.0f};
}

//  v0 -> v1 (0.9), v2 (0.5); v3 -> v4 (0.9); nothing links v5.
static item_neighbours_t *s_neighbours(void)
{
    item_neighbours_t *nb = item_neighbours_new(N, 2);
    cr_assert_not_null(nb);
    float rows[N][N] = {{0, 0.9f, 0.5f, 0, 0, 0}, {0.9f, 0, 0.4f, 0, 0, 0},
                        {0.5f, 0.4f, 0, 0, 0, 0}, {0, 0, 0, 0, 0.9f, 0},
                        {0, 0, 0, 0.9f, 0, 0},    {0, 0, 0, 0, 0, 0}};
    for (int32_t i = 0; i < N; i++)
        item_neighbours_set_row(nb, i, rows[i]);
    return nb;
}

//  Writes a bundle of type into the scratch dir and opens it.
static model_bundle_t *s_bundle(const char *type)
{
    float gram[4], prior[N] = {1, 1, 1, 1, 1, 1};
    als_model_t als = s_als(gram);
    item_neighbours_t *nb = s_neighbours();
    //  Popularity: v5 most popular, then v4, v3, ...
    int32_t users[] = {0, 1, 2, 0, 1, 0}, items[] = {5, 5, 5, 4, 4, 3};
    float values[] = {1, 1, 1, 1, 1, 1};
    int64_t times[] = {100, 100, 100, 100, 100, 100};
    char err[512] = "";
    popularity_model_t *pop = popularity_model_train(users, items, values, times, 6, 3, N, NULL,
                                                     NULL, NULL, err, sizeof err);
    cr_assert_not_null(pop, "%s", err);
    hybrid_params_t hp = {.content_k = 5, .content_floor = 0.1f, .ease_share = 0};
    model_artifact_parts_t parts = {.model_type = type,
                                    .video_ids = s_ids,
                                    .n_videos = N,
                                    .als = &als,
                                    .neighbours = nb,
                                    .popularity = pop,
                                    .content_prior = prior,
                                    .hybrid = &hp};
    char path[512], checksum[65];
    snprintf(path, sizeof path, "%s/%s.rca", s_dir, type);
    cr_assert_eq(model_artifact_write(&parts, path, checksum, err, sizeof err), 0, "%s", err);
    item_neighbours_destroy(&nb);
    popularity_model_destroy(&pop);
    model_bundle_t *b = model_bundle_open(path, checksum, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    return b;
}

static void s_install(ranker_models_t *models, const char *type, const char *id)
{
    model_bundle_t *b = s_bundle(type);
    cr_assert_eq(ranker_models_install(models, type, id, 1, &b), 1);
    cr_assert_null(b, "the set took the bundle");
}

static ranker_history_t *s_history(void)
{
    training_data_options_t opts = {.weight_watch = 1,
                                    .weight_rating = 1,
                                    .rating_neutral = 3,
                                    .rating_min = 0.5,
                                    .rating_max = 5,
                                    .weight_watchlist_add = 0.5,
                                    .weight_watchlist_remove = 0.5};
    ranker_history_t *h = ranker_history_new(&opts, 0.9, 50);
    cr_assert_not_null(h);
    return h;
}

static popular_list_t *s_popular(void)
{
    popular_item_t items[] = {{"p1", 30}, {"v0", 20}, {"p2", 10}, {"p3", 5}};
    popular_list_t *list = popular_list_new(items, 4);
    cr_assert_not_null(list);
    return list;
}

typedef struct {
    ranker_models_t *models;
    ranker_history_t *history;
    seen_set_t *seen;
    zhashx_t *retired;
    popular_list_t *popular;
    cooccurrence_t *cooc; //  NULL unless a test fills it
    ranker_serve_t *serve;
    proto_recs_rep_t rep;
} s_env_t;

static s_env_t s_env(void)
{
    s_env_t e = {.models = ranker_models_new(),
                 .history = s_history(),
                 .seen = seen_set_new(0.9),
                 .retired = zhashx_new(),
                 .popular = s_popular(),
                 .serve = ranker_serve_new()};
    cr_assert(e.models && e.seen && e.retired && e.serve);
    return e;
}

static void s_env_destroy(s_env_t *e)
{
    free(e->rep.items);
    ranker_models_destroy(&e->models);
    ranker_history_destroy(&e->history);
    seen_set_destroy(&e->seen);
    zhashx_destroy(&e->retired);
    popular_list_destroy(&e->popular);
    cooccurrence_destroy(&e->cooc);
    ranker_serve_destroy(&e->serve);
}

//  Records an event into both the history and the seen set, as a notice does.
static void s_event(s_env_t *e, const char *user, const char *video, const char *kind,
                    double weight)
{
    proto_interaction_t in = {.weight = weight, .occurred_ms = 1000};
    snprintf(in.user_id, sizeof in.user_id, "%s", user);
    snprintf(in.video_id, sizeof in.video_id, "%s", video);
    snprintf(in.kind, sizeof in.kind, "%s", kind);
    cr_assert_geq(ranker_history_record_notice(e->history, &in), 0);
    cr_assert_geq(seen_set_record(e->seen, user, video, kind, weight), 0);
}

//  A request with options: type ("" = default), explain, and a
//  comma-separated exclude list (NULL = none).
//  With a pinned model_id (NULL = none) and a blend (NULL = none).
static void s_ask_full(s_env_t *e, const char *user, uint32_t limit, const char *type, bool explain,
                       const char *exclude, const char *model_id, const double *blend)
{
    ranker_serve_inputs_t in = {.models = e->models,
                                .history = e->history,
                                .seen = e->seen,
                                .retired = e->retired,
                                .popular = e->popular,
                                .cooc = e->cooc};
    proto_recs_req_t *req = calloc(1, sizeof *req);
    cr_assert_not_null(req);
    snprintf(req->user_id, sizeof req->user_id, "%s", user);
    snprintf(req->model_id, sizeof req->model_id, "%s", model_id ? model_id : "");
    if (blend) {
        req->has_blend = true;
        memcpy(req->blend, blend, sizeof req->blend);
    }
    snprintf(req->type, sizeof req->type, "%s", type);
    req->limit = limit;
    req->explain = explain;
    for (const char *p = exclude; p && *p;) {
        size_t n = strcspn(p, ",");
        snprintf(req->exclude[req->exclude_count++], PROTO_ID_MAX + 1, "%.*s", (int)n, p);
        p += n + (p[n] == ',');
    }
    cr_assert_eq(ranker_serve_recommend(e->serve, &in, req, &e->rep), 0);
    free(req);
    cr_assert_str_eq(e->rep.source, "model");
    if (!explain)
        for (uint32_t i = 0; i < e->rep.count; i++)
            cr_assert_str_empty(e->rep.items[i].reason, "no reasons unless asked");
}

static void s_ask(s_env_t *e, const char *user, uint32_t limit, const char *type, bool explain,
                  const char *exclude)
{
    s_ask_full(e, user, limit, type, explain, exclude, NULL, NULL);
}

static void s_recommend(s_env_t *e, const char *user, uint32_t limit)
{
    s_ask(e, user, limit, "", false, NULL);
}

static bool s_listed(const proto_recs_rep_t *rep, const char *video)
{
    for (uint32_t i = 0; i < rep->count; i++)
        if (strcmp(rep->items[i].video_id, video) == 0)
            return true;
    return false;
}

Test(ranker_serve, model_set_keeps_active_and_previous)
{
    ranker_models_t *models = ranker_models_new();
    ranker_model_t m;
    cr_assert_not(ranker_models_get(models, 0, false, &m));
    s_install(models, "hybrid", "id-1");
    s_install(models, "hybrid", "id-2");
    cr_assert(ranker_models_get(models, 0, false, &m));
    cr_assert_str_eq(m.model_id, "id-2");
    cr_assert_str_eq(model_bundle_type(m.bundle), "hybrid");
    cr_assert(ranker_models_get(models, 0, true, &m));
    cr_assert_str_eq(m.model_id, "id-1");
    //  The same id again: the set keeps what it has, the copy is freed.
    model_bundle_t *again = s_bundle("hybrid");
    cr_assert_eq(ranker_models_install(models, "hybrid", "id-2", 1, &again), 0);
    cr_assert_null(again);
    //  A third pushes the first out (freed: the leak check would tell).
    s_install(models, "hybrid", "id-3");
    cr_assert(ranker_models_get(models, 0, true, &m));
    cr_assert_str_eq(m.model_id, "id-2");
    //  Outside the chain: refused and freed.
    model_bundle_t *other = s_bundle("item_knn");
    cr_assert_eq(ranker_models_install(models, "item_knn", "x", 1, &other), -1);
    cr_assert_null(other);
    cr_assert_eq(ranker_models_type_index("content"), 2);
    cr_assert_eq(ranker_models_type_index("ease"), -1);
    ranker_models_destroy(&models);
    cr_assert_null(models);
    ranker_models_destroy(&models);
}

Test(ranker_serve, no_model_serves_the_popularity_list)
{
    s_env_t e = s_env();
    s_event(&e, "u", "v0", "watch", 1.0);
    s_recommend(&e, "u", 10);
    cr_assert_str_eq(e.rep.model_id, "popularity");
    cr_assert_eq(e.rep.count, 3, "the list minus the seen v0");
    cr_assert_str_eq(e.rep.items[0].video_id, "p1");
    cr_assert_float_eq(e.rep.items[0].score, 30, 1e-9);
    cr_assert_not(s_listed(&e.rep, "v0"));
    cr_assert_eq(ranker_serve_stats(e.serve)->requests[RANKER_SERVE_LIST], 1);
    cr_assert_eq(ranker_serve_stats(e.serve)->fallbacks[0][0][RANKER_SERVE_NOT_LOADED], 1);
    cr_assert_eq(ranker_serve_stats(e.serve)->latency_count, 1);
    s_env_destroy(&e);
}

Test(ranker_serve, collaborative_scores_the_history_and_skips_seen)
{
    s_env_t e = s_env();
    s_install(e.models, "collaborative", "als-1");
    s_install(e.models, "popularity", "pop-1");
    s_event(&e, "u", "v0", "watch", 1.0);
    s_event(&e, "u", "unknown-video", "watch", 1.0); //  not in the model: dropped
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.model_id, "als-1", "the first type loaded in the chain");
    cr_assert_eq(e.rep.count, 3);
    //  Liking v0 (factor 0): v1, v2 next, in that order; v0 itself seen.
    cr_assert_str_eq(e.rep.items[0].video_id, "v1");
    cr_assert_str_eq(e.rep.items[1].video_id, "v2");
    cr_assert_not(s_listed(&e.rep, "v0"));
    cr_assert_gt(e.rep.items[0].score, e.rep.items[2].score);
    const ranker_serve_stats_t *st = ranker_serve_stats(e.serve);
    cr_assert_eq(st->requests[1], 1);
    cr_assert_eq(st->fallbacks[0][0][RANKER_SERVE_NOT_LOADED], 1, "hybrid was not loaded");
    //  A new event changes the next answer: v1 watched to the end.
    s_event(&e, "u", "v1", "watch", 0.95);
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.items[0].video_id, "v2");
    cr_assert_not(s_listed(&e.rep, "v1"));
    //  Retired videos are never recommended.
    zhashx_insert(e.retired, "v2", (void *)1);
    s_recommend(&e, "u", 3);
    cr_assert_not(s_listed(&e.rep, "v2"));
    cr_assert_eq(e.rep.count, 3);
    s_env_destroy(&e);
}

Test(ranker_serve, the_other_taste_gets_the_other_videos)
{
    s_env_t e = s_env();
    s_install(e.models, "collaborative", "als-1");
    s_event(&e, "w", "v3", "rating", 5.0 / 5.0); //  a top rating: weight = rating / max
    s_recommend(&e, "w", 2);
    cr_assert_str_eq(e.rep.items[0].video_id, "v4");
    cr_assert_not(s_listed(&e.rep, "v3"), "a rated video is seen");
    s_env_destroy(&e);
}

Test(ranker_serve, hybrid_comes_first_and_a_cold_user_is_topped_up)
{
    s_env_t e = s_env();
    s_install(e.models, "content", "content-1");
    s_install(e.models, "hybrid", "hyb-1");
    s_install(e.models, "collaborative", "als-1");
    s_event(&e, "u", "v0", "watch", 1.0);
    s_recommend(&e, "u", 2);
    cr_assert_str_eq(e.rep.model_id, "hyb-1");
    cr_assert_eq(e.rep.count, 2);
    cr_assert_not(s_listed(&e.rep, "v0"));
    cr_assert(s_listed(&e.rep, "v1"), "the closest video in both components");
    //  Nobody knows this user: no personal model has anything to go on
    //  (an empty fold-in scores every video alike), so popularity answers:
    //  the list while no popularity bundle is loaded...
    s_recommend(&e, "stranger", 3);
    cr_assert_str_eq(e.rep.model_id, "popularity");
    cr_assert_eq(e.rep.count, 3);
    cr_assert_str_eq(e.rep.items[0].video_id, "p1");
    const ranker_serve_stats_t *st = ranker_serve_stats(e.serve);
    cr_assert_eq(st->fallbacks[0][0][RANKER_SERVE_NO_HISTORY], 1);
    cr_assert_eq(st->fallbacks[2][0][RANKER_SERVE_NO_HISTORY], 1);
    //  ...the trained popularity model once there is one. A history of
    //  dislikes only is no better than none.
    s_install(e.models, "popularity", "pop-1");
    s_event(&e, "grump", "v1", "watchlist_remove", 1.0);
    s_recommend(&e, "grump", 3);
    cr_assert_str_eq(e.rep.model_id, "pop-1");
    cr_assert_str_eq(e.rep.items[0].video_id, "v5", "the most popular video");
    cr_assert_eq(st->requests[3], 1);
    s_env_destroy(&e);
}

Test(ranker_serve, content_tops_up_after_its_own_items)
{
    s_env_t e = s_env();
    s_install(e.models, "content", "content-1");
    s_event(&e, "u", "v3", "watch", 1.0);
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.model_id, "content-1");
    //  v3 links v4 only; the rest comes from the list, v0 included
    //  (not seen by u), and nothing twice.
    cr_assert_str_eq(e.rep.items[0].video_id, "v4");
    cr_assert_gt(e.rep.items[0].score, 0);
    cr_assert_str_eq(e.rep.items[1].video_id, "p1");
    cr_assert_str_eq(e.rep.items[2].video_id, "v0");
    cr_assert_eq(ranker_serve_stats(e.serve)->filled, 2);
    cr_assert_float_eq(e.rep.items[1].score, 0, 1e-9, "topped-up items score 0");
    s_env_destroy(&e);
}

Test(ranker_serve, popularity_bundle_and_limits)
{
    s_env_t e = s_env();
    s_install(e.models, "popularity", "pop-1");
    s_event(&e, "u", "v5", "watch", 1.0);
    s_recommend(&e, "u", 100);
    cr_assert_str_eq(e.rep.model_id, "pop-1");
    cr_assert_str_eq(e.rep.items[0].video_id, "v4", "v5, the most popular, is seen");
    cr_assert_not(s_listed(&e.rep, "v5"));
    //  Five model videos plus the list's p1 p2 p3 (v0 is already there).
    cr_assert_eq(e.rep.count, 8);
    for (uint32_t i = 0; i < e.rep.count; i++)
        for (uint32_t j = i + 1; j < e.rep.count; j++)
            cr_assert_str_neq(e.rep.items[i].video_id, e.rep.items[j].video_id);
    s_env_destroy(&e);
}

Test(ranker_serve, previous_version_stays_loaded_after_a_swap)
{
    s_env_t e = s_env();
    s_install(e.models, "collaborative", "als-1");
    s_event(&e, "u", "v0", "watch", 1.0);
    s_recommend(&e, "u", 2);
    cr_assert_str_eq(e.rep.model_id, "als-1");
    s_install(e.models, "collaborative", "als-2");
    s_recommend(&e, "u", 2);
    cr_assert_str_eq(e.rep.model_id, "als-2", "the next request sees the new version");
    s_env_destroy(&e);
}

//  Every type loaded: each requested type answers as itself, with its
//  registry version; the default is hybrid.
Test(ranker_serve, the_requested_type_serves_first)
{
    s_env_t e = s_env();
    for (int t = 0; t < RANKER_MODELS_TYPES; t++) {
        char id[32];
        snprintf(id, sizeof id, "%s-1", ranker_models_types[t]);
        s_install(e.models, ranker_models_types[t], id);
    }
    s_event(&e, "u", "v0", "watch", 1.0);
    for (int t = 0; t < RANKER_MODELS_TYPES; t++) {
        s_ask(&e, "u", 3, ranker_models_types[t], false, NULL);
        cr_assert_str_eq(e.rep.type, ranker_models_types[t]);
        cr_assert_eq(e.rep.model_version, 1);
        char id[32];
        snprintf(id, sizeof id, "%s-1", ranker_models_types[t]);
        cr_assert_str_eq(e.rep.model_id, id);
        cr_assert_not(s_listed(&e.rep, "v0"), "seen");
    }
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.type, "hybrid", "the default");
    s_env_destroy(&e);
}

//  A type with no bundle falls back down the chain, and the reply says
//  which type served; popularity asked for never gets a personal model.
Test(ranker_serve, a_missing_type_falls_back_and_says_so)
{
    s_env_t e = s_env();
    s_install(e.models, "collaborative", "als-1");
    s_event(&e, "u", "v0", "watch", 1.0);
    s_ask(&e, "u", 3, "content", false, NULL);
    cr_assert_str_eq(e.rep.type, "collaborative");
    cr_assert_str_eq(e.rep.model_id, "als-1");
    s_ask(&e, "u", 3, "popularity", false, NULL);
    cr_assert_str_eq(e.rep.type, "popularity", "the list, not ALS");
    cr_assert_str_eq(e.rep.model_id, "popularity");
    cr_assert_eq(e.rep.model_version, 0);
    cr_assert_str_eq(e.rep.items[0].video_id, "p1");
    s_env_destroy(&e);
}

//  Excluded ids never come back, from the model or from the top-up list.
Test(ranker_serve, excluded_ids_are_never_returned)
{
    s_env_t e = s_env();
    s_install(e.models, "collaborative", "als-1");
    s_event(&e, "u", "v0", "watch", 1.0);
    s_ask(&e, "u", 3, "collaborative", false, "v1,zzz");
    cr_assert_eq(e.rep.count, 3);
    cr_assert_not(s_listed(&e.rep, "v1"));
    cr_assert_str_eq(e.rep.items[0].video_id, "v2", "v1 would have been first");
    //  The list's top-up honours it too: every model video but two excluded.
    s_ask(&e, "u", 10, "collaborative", false, "v1,v2,v3,p1");
    for (const char *x = "v1\0v2\0v3\0p1\0"; *x; x += strlen(x) + 1)
        cr_assert_not(s_listed(&e.rep, x), "%s excluded", x);
    cr_assert(s_listed(&e.rep, "p2"));
    //  And the list itself, for a cold user.
    s_ask(&e, "cold", 2, "", false, "p1");
    cr_assert_str_eq(e.rep.type, "popularity");
    cr_assert_str_eq(e.rep.items[0].video_id, "v0");
    s_env_destroy(&e);
}

static const char *s_reason(const proto_recs_rep_t *rep, const char *video)
{
    for (uint32_t i = 0; i < rep->count; i++)
        if (strcmp(rep->items[i].video_id, video) == 0)
            return rep->items[i].reason;
    cr_assert_fail("%s not listed", video);
    return NULL;
}

//  ALS: the history video with the largest factor dot product.
Test(ranker_serve, explain_collaborative_by_factors)
{
    s_env_t e = s_env();
    s_install(e.models, "collaborative", "als-1");
    s_event(&e, "u", "v0", "watch", 1.0); //  factor 0
    s_event(&e, "u", "v3", "watch", 1.0); //  factor 1
    s_ask(&e, "u", 4, "collaborative", true, NULL);
    cr_assert_str_eq(s_reason(&e.rep, "v1"), "v0");
    cr_assert_str_eq(s_reason(&e.rep, "v4"), "v3");
    //  A history the model does not know explains nothing.
    s_event(&e, "x", "unknown-video", "watch", 1.0);
    s_ask(&e, "x", 2, "collaborative", true, NULL);
    for (uint32_t i = 0; i < e.rep.count; i++)
        cr_assert_str_empty(e.rep.items[i].reason);
    s_env_destroy(&e);
}

//  Content: the most similar history video by the neighbour tables, which
//  may differ from the ALS answer; hybrid prefers the neighbour link and
//  falls back to factors for a video no history video is a neighbour of.
Test(ranker_serve, explain_content_and_hybrid_by_similarity)
{
    s_env_t e = s_env();
    s_install(e.models, "content", "content-1");
    s_install(e.models, "hybrid", "hyb-1");
    s_event(&e, "u", "v1", "watch", 1.0);
    s_event(&e, "u", "v2", "watch", 1.0);
    s_ask(&e, "u", 2, "content", true, NULL);
    cr_assert_str_eq(e.rep.type, "content");
    //  v0: 0.9 to v1, 0.5 to v2. (ALS would say v1 too; v2's dot with v0 is 0.8.)
    cr_assert_str_eq(s_reason(&e.rep, "v0"), "v1");
    s_ask(&e, "u", 4, "hybrid", true, NULL);
    cr_assert_str_eq(e.rep.type, "hybrid");
    cr_assert_str_eq(s_reason(&e.rep, "v0"), "v1");
    //  v5 has no neighbour: explained by factors, by a history video.
    const char *r5 = s_reason(&e.rep, "v5");
    cr_assert(strcmp(r5, "v1") == 0 || strcmp(r5, "v2") == 0, "%s", r5);
    //  The popularity type explains nothing.
    s_install(e.models, "popularity", "pop-1");
    s_ask(&e, "u", 3, "popularity", true, NULL);
    for (uint32_t i = 0; i < e.rep.count; i++)
        cr_assert_str_empty(e.rep.items[i].reason);
    s_env_destroy(&e);
}

//  ---- the serving configuration -------------------------------------------

static ranker_serve_config_t s_chain(int n, const serving_fallback_t *steps)
{
    ranker_serve_config_t c;
    ranker_serve_config_default(&c);
    c.chain_len = n;
    memcpy(c.chain, steps, (size_t)n * sizeof *steps);
    return c;
}

//  A user with liked videos and no model: co-occurrence answers by
//  default; a chain without it gives popularity; the configured order of
//  the model-free steps is the order they are tried in.
Test(ranker_serve, configured_chain_skips_and_orders_the_model_free_steps)
{
    s_env_t e = s_env();
    //  Others watched v0 then v1: v1 co-occurs with v0.
    s_event(&e, "a", "v0", "watch", 1.0);
    s_event(&e, "a", "v1", "watch", 1.0);
    s_event(&e, "b", "v0", "watch", 1.0);
    s_event(&e, "b", "v1", "watch", 1.0);
    s_event(&e, "u", "v0", "watch", 1.0);
    e.cooc = ranker_cooc_build(e.history, NULL, NULL);
    cr_assert_not_null(e.cooc);
    const ranker_serve_stats_t *st = ranker_serve_stats(e.serve);

    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.model_id, "cooccurrence", "the default chain");
    cr_assert_str_eq(e.rep.items[0].video_id, "v1");
    cr_assert_eq(st->segment_fallbacks[RANKER_SERVE_SEGMENTS_NOT_LOADED], 0,
                 "co-occurrence comes before segments by default");

    serving_fallback_t no_model_free[] = {SERVING_FALLBACK_PREVIOUS, SERVING_FALLBACK_POPULARITY};
    ranker_serve_config_t c = s_chain(2, no_model_free);
    cr_assert_eq(ranker_serve_configure(e.serve, &c), 0);
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.model_id, "popularity", "co-occurrence left out: skipped");
    cr_assert_eq(st->requests[RANKER_SERVE_COOC], 1);
    cr_assert_eq(st->segment_fallbacks[RANKER_SERVE_SEGMENTS_NOT_LOADED], 0,
                 "segment popularity left out: not even tried");

    serving_fallback_t reordered[] = {SERVING_FALLBACK_SEGMENT_POPULARITY,
                                      SERVING_FALLBACK_COOCCURRENCE, SERVING_FALLBACK_POPULARITY};
    c = s_chain(3, reordered);
    cr_assert_eq(ranker_serve_configure(e.serve, &c), 0);
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.model_id, "cooccurrence");
    cr_assert_eq(st->segment_fallbacks[RANKER_SERVE_SEGMENTS_NOT_LOADED], 1,
                 "segments tried first now (none loaded), then co-occurrence");

    //  Popularity alone: the bundle, then the list.
    serving_fallback_t popularity_only[] = {SERVING_FALLBACK_POPULARITY};
    c = s_chain(1, popularity_only);
    cr_assert_eq(ranker_serve_configure(e.serve, &c), 0);
    s_install(e.models, "popularity", "pop-1");
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.model_id, "pop-1");
    s_env_destroy(&e);
}

Test(ranker_serve, configure_refuses_a_chain_that_does_not_hold)
{
    s_env_t e = s_env();
    serving_fallback_t not_last[] = {SERVING_FALLBACK_POPULARITY, SERVING_FALLBACK_COOCCURRENCE};
    serving_fallback_t twice[] = {SERVING_FALLBACK_COOCCURRENCE, SERVING_FALLBACK_COOCCURRENCE,
                                  SERVING_FALLBACK_POPULARITY};
    serving_fallback_t ok[] = {SERVING_FALLBACK_POPULARITY};
    ranker_serve_config_t bad[] = {s_chain(2, not_last), s_chain(3, twice), s_chain(0, ok),
                                   s_chain(1, ok),       s_chain(1, ok),    s_chain(1, ok)};
    bad[3].default_type = RANKER_MODELS_TYPES;
    bad[4].has_blend = true;
    bad[4].blend = (hybrid_params_t){.content_k = 1, .content_floor = 1.5f};
    bad[5].chain[0] = SERVING_FALLBACK_COUNT;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(ranker_serve_configure(e.serve, &bad[i]), -1, "bad[%zu]", i);
    //  Nothing changed: the default chain still runs co-occurrence.
    s_event(&e, "a", "v0", "watch", 1.0);
    s_event(&e, "a", "v1", "watch", 1.0);
    s_event(&e, "u", "v0", "watch", 1.0);
    e.cooc = ranker_cooc_build(e.history, NULL, NULL);
    s_recommend(&e, "u", 3);
    cr_assert_str_eq(e.rep.model_id, "cooccurrence");

    //  From a serving configuration: its type, chain and (if asked) blend.
    serving_config_t sc = {
        .default_type = SERVING_TYPE_CONTENT,
        .content_k = 2,
        .content_floor = 0.25,
        .ease_share = 0.75,
        .fallback_chain = {SERVING_FALLBACK_SEGMENT_POPULARITY, SERVING_FALLBACK_POPULARITY},
        .fallback_count = 2};
    ranker_serve_config_t c;
    ranker_serve_config_from(&sc, false, &c);
    cr_assert_eq(c.default_type, ranker_models_type_index("content"));
    cr_assert_eq(c.chain_len, 2);
    cr_assert_eq(c.chain[0], SERVING_FALLBACK_SEGMENT_POPULARITY);
    cr_assert_not(c.has_blend);
    ranker_serve_config_from(&sc, true, &c);
    cr_assert(c.has_blend);
    cr_assert_float_eq(c.blend.content_floor, 0.25, 1e-6);
    cr_assert_eq(ranker_serve_configure(e.serve, &c), 0);
    s_env_destroy(&e);
}

//  The hybrid bundle here was trained with content_k 5, floor 0.1, no
//  EASE. A configured blend changes its scores; a request's own blend
//  beats the configured one for that request only.
Test(ranker_serve, configured_and_requested_blends_score_the_hybrid)
{
    s_env_t e = s_env();
    s_install(e.models, "hybrid", "hyb-1");
    s_event(&e, "u", "v0", "watch", 1.0);
    s_event(&e, "u", "v3", "watch", 1.0);
    s_recommend(&e, "u", 4);
    cr_assert_str_eq(e.rep.model_id, "hyb-1");
    float trained[4];
    char order[4][PROTO_ID_MAX + 1];
    for (int i = 0; i < 4; i++) {
        trained[i] = (float)e.rep.items[i].score;
        snprintf(order[i], sizeof order[i], "%s", e.rep.items[i].video_id);
    }
    //  The trained constants asked for explicitly: the same answer.
    double same[3] = {5, 0.1, 0};
    s_ask_full(&e, "u", 4, "", false, NULL, NULL, same);
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(e.rep.items[i].video_id, order[i]);
        cr_assert_float_eq(e.rep.items[i].score, trained[i], 1e-5);
    }
    //  Configured: all weight on the collaborative side.
    ranker_serve_config_t c;
    ranker_serve_config_default(&c);
    c.has_blend = true;
    c.blend = (hybrid_params_t){.content_k = 0, .content_floor = 0, .ease_share = 0};
    cr_assert_eq(ranker_serve_configure(e.serve, &c), 0);
    s_recommend(&e, "u", 4);
    bool differs = false;
    for (int i = 0; i < 4; i++)
        differs |= fabs(e.rep.items[i].score - trained[i]) > 1e-4;
    cr_assert(differs, "the configured blend scores differently");
    //  The collaborative side alone ranks like the ALS bundle (those above
    //  its average: the blend clips the rest to 0).
    s_install(e.models, "collaborative", "als-1");
    s_ask(&e, "u", 4, "collaborative", false, NULL);
    char als_order[4][PROTO_ID_MAX + 1];
    for (int i = 0; i < 4; i++)
        snprintf(als_order[i], sizeof als_order[i], "%s", e.rep.items[i].video_id);
    s_recommend(&e, "u", 4);
    cr_assert_str_eq(e.rep.model_id, "hyb-1");
    cr_assert_gt(e.rep.items[0].score, 0);
    for (int i = 0; i < 4 && e.rep.items[i].score > 0; i++)
        cr_assert_str_eq(e.rep.items[i].video_id, als_order[i], "item %d", i);
    //  A request's blend wins over the configured one, for that request.
    s_ask_full(&e, "u", 4, "", false, NULL, NULL, same);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(e.rep.items[i].score, trained[i], 1e-5);
    s_recommend(&e, "u", 4);
    cr_assert(fabs(e.rep.items[0].score - trained[0]) > 1e-4 ||
                  strcmp(e.rep.items[0].video_id, order[0]) != 0 ||
                  fabs(e.rep.items[1].score - trained[1]) > 1e-4,
              "the next request is back on the configured blend");
    //  The default type comes from the configuration too.
    c.default_type = ranker_models_type_index("collaborative");
    cr_assert_eq(ranker_serve_configure(e.serve, &c), 0);
    s_recommend(&e, "u", 4);
    cr_assert_str_eq(e.rep.model_id, "als-1");
    s_env_destroy(&e);
}

//  ---- pinned models ---------------------------------------------------------

Test(ranker_serve, pinned_set_is_bounded_and_pruned)
{
    ranker_models_t *models = ranker_models_new();
    cr_assert_not_null(models);
    char ids[RANKER_MODELS_PINNED_MAX + 1][16];
    for (int i = 0; i <= RANKER_MODELS_PINNED_MAX; i++) {
        snprintf(ids[i], sizeof ids[i], "pin-%d", i);
        model_bundle_t *b = s_bundle("collaborative");
        int rc = ranker_models_pin(models, "collaborative", ids[i], i + 1, &b);
        cr_assert_null(b, "taken, kept or freed");
        cr_assert_eq(rc, i < RANKER_MODELS_PINNED_MAX ? 1 : -1, "pin %d", i);
    }
    cr_assert_eq(ranker_models_pinned_count(models), RANKER_MODELS_PINNED_MAX);
    model_bundle_t *again = s_bundle("collaborative");
    cr_assert_eq(ranker_models_pin(models, "collaborative", "pin-0", 1, &again), 0);
    cr_assert_null(again);
    model_bundle_t *outside = s_bundle("item_knn");
    cr_assert_eq(ranker_models_pin(models, "item_knn", "knn", 1, &outside), -1);
    cr_assert_null(outside);
    ranker_model_t m;
    int t;
    cr_assert(ranker_models_find(models, "pin-3", &m, &t));
    cr_assert_eq(t, ranker_models_type_index("collaborative"));
    cr_assert_eq(m.version, 4);
    cr_assert_not(ranker_models_find(models, "pin-8", &m, &t));
    cr_assert_eq(t, -1);
    const char *keep[] = {"pin-3", "pin-5", "not-held"};
    cr_assert_eq(ranker_models_unpin_others(models, keep, 3), RANKER_MODELS_PINNED_MAX - 2);
    cr_assert_eq(ranker_models_pinned_count(models), 2);
    cr_assert(ranker_models_find(models, "pin-5", &m, &t));
    cr_assert_not(ranker_models_find(models, "pin-0", &m, &t));
    //  Active and previous models are found by id too.
    s_install(models, "hybrid", "hyb-1");
    s_install(models, "hybrid", "hyb-2");
    cr_assert(ranker_models_find(models, "hyb-1", &m, &t));
    cr_assert_eq(t, 0);
    cr_assert_str_eq(m.model_id, "hyb-1");
    cr_assert_eq(ranker_models_unpin_others(models, NULL, 0), 2);
    cr_assert_eq(ranker_models_pinned_count(models), 0);
    cr_assert(ranker_models_find(models, "hyb-2", &m, &t), "unpinning leaves the active ones");
    ranker_models_destroy(&models);
}

Test(ranker_serve, a_pinned_model_serves_the_requests_that_name_it)
{
    s_env_t e = s_env();
    s_install(e.models, "hybrid", "hyb-1");
    s_install(e.models, "collaborative", "als-1");
    model_bundle_t *b = s_bundle("content");
    cr_assert_eq(ranker_models_pin(e.models, "content", "content-pin", 7, &b), 1);
    s_event(&e, "u", "v0", "watch", 1.0);
    const ranker_serve_stats_t *st = ranker_serve_stats(e.serve);

    s_ask_full(&e, "u", 3, "hybrid", false, NULL, "content-pin", NULL);
    cr_assert_str_eq(e.rep.model_id, "content-pin", "served instead of the active hybrid");
    cr_assert_str_eq(e.rep.type, "content", "the type of the pinned bundle");
    cr_assert_eq(e.rep.model_version, 7);
    cr_assert_str_empty(e.rep.segment);
    cr_assert_eq(st->pinned_served, 1);

    //  Not held: the requested type's active model, counted.
    s_ask_full(&e, "u", 3, "hybrid", false, NULL, "no-such-model", NULL);
    cr_assert_str_eq(e.rep.model_id, "hyb-1");
    cr_assert_eq(st->pinned_misses[RANKER_SERVE_PIN_NOT_LOADED], 1);
    s_ask_full(&e, "u", 3, "collaborative", false, NULL, "no-such-model", NULL);
    cr_assert_str_eq(e.rep.model_id, "als-1");
    cr_assert_eq(st->pinned_misses[RANKER_SERVE_PIN_NOT_LOADED], 2);

    //  The active model named by id is held too.
    s_ask_full(&e, "u", 3, "hybrid", false, NULL, "als-1", NULL);
    cr_assert_str_eq(e.rep.model_id, "als-1");
    cr_assert_eq(st->pinned_served, 2);

    //  A user the pinned personal model knows nothing of: down the chain
    //  from its type (nothing personal knows them: popularity).
    s_ask_full(&e, "stranger", 3, "hybrid", false, NULL, "content-pin", NULL);
    cr_assert_str_eq(e.rep.model_id, "popularity");
    cr_assert_eq(st->pinned_misses[RANKER_SERVE_PIN_NO_HISTORY], 1);
    cr_assert_str_empty(e.rep.segment, "a variant's stopgap is not the segment's list");

    //  Dropped: the next request is a miss.
    cr_assert_eq(ranker_models_unpin_others(e.models, NULL, 0), 1);
    s_ask_full(&e, "u", 3, "hybrid", false, NULL, "content-pin", NULL);
    cr_assert_str_eq(e.rep.model_id, "hyb-1");
    cr_assert_eq(st->pinned_misses[RANKER_SERVE_PIN_NOT_LOADED], 3);
    s_env_destroy(&e);
}
