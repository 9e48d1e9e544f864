/*  trainer_pipeline.c: split, train, evaluate, gate, write (see the header). */
#include "trainer_pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "content_model.h"
#include "ease.h"
#include "evaluation.h"
#include "hybrid.h"
#include "item_knn.h"
#include "item_neighbours.h"
#include "model_artifact.h"
#include "popularity_model.h"
#include "prior_scorer.h"

//  Users with fewer events are all train, none test: too little history
//  to hold any of it out.
#define MIN_HISTORY 5

typedef struct {
    const trainer_pipeline_input_t *in;
    const config_t *cfg;
    int threads;
    evaluation_split_t *split;
    content_item_t *content_items;
    als_model_t *als;
    item_neighbours_t *neighbours; //  content, or item_knn for that type
    float *prior;                  //  content's popularity prior (prior_scorer.h)
    float *prior_val;              //  the same from the tuning split's train part
    prior_scorer_t content;        //  neighbours x prior: the content model's scorer
    ease_model_t *ease;
    popularity_model_t *popularity;
    hybrid_t hybrid;
    hybrid_params_t hybrid_params;
    scorer_t scorer;
    json_t *metrics, *params, *baselines;
    double half_life_s;        //  popularity's, tuned (s_train_popularity)
    double phase_lo, phase_hi; //  percent range of the current phase
    bool cancelled;
} s_run_t;

//  ---- helpers ---------------------------------------------------------------

static int s_progress(s_run_t *r, const char *phase, int iteration, double fraction)
{
    if (!r->in->progress)
        return 0;
    double percent = r->phase_lo + (r->phase_hi - r->phase_lo) * fmin(fmax(fraction, 0), 1);
    if (r->in->progress(phase, iteration, percent, r->in->progress_arg) != 0) {
        r->cancelled = true;
        return -1;
    }
    return 0;
}

static void s_phase(s_run_t *r, double lo, double hi)
{
    r->phase_lo = lo;
    r->phase_hi = hi;
}

//  A hyper-parameter: the request's override when present and numeric,
//  else the configured value; recorded in r->params either way.
static double s_param(s_run_t *r, const char *name, double configured)
{
    const json_t *v = r->in->params ? json_object_get(r->in->params, name) : NULL;
    double value = json_is_number(v) ? json_number_value(v) : configured;
    json_object_set_new(r->params, name, json_real(value));
    return value;
}

static int s_als_progress(int iteration, int iterations, double loss, void *arg)
{
    (void)loss;
    s_run_t *r = arg;
    return s_progress(r, "train", iteration, (double)iteration / iterations);
}

static als_model_t *s_train_als(s_run_t *r, const feedback_matrix_t *m, char *err, size_t errlen)
{
    als_params_t p = als_params_default();
    p.factors = (int)s_param(r, "factors", r->cfg->als_factors);
    p.iterations = (int)s_param(r, "iterations", r->cfg->als_iterations);
    p.regularization = (float)s_param(r, "regularization", r->cfg->als_regularization);
    p.alpha = (float)s_param(r, "alpha", r->cfg->als_alpha);
    p.seed = (uint64_t)s_param(r, "seed", r->cfg->train_seed);
    p.threads = r->threads;
    return als_train(m, &p, s_als_progress, r, err, errlen);
}

//  EASE, unless switched off (max_items 0 in the configuration or the
//  request): then NULL with *off set and no error.
static ease_model_t *s_train_ease(s_run_t *r, const feedback_matrix_t *m, bool *off, char *err,
                                  size_t errlen)
{
    int32_t max_items = (int32_t)s_param(r, "ease_max_items", r->cfg->ease_max_items);
    float lambda = (float)s_param(r, "ease_lambda", r->cfg->ease_lambda);
    *off = max_items <= 0;
    if (*off) {
        snprintf(err, errlen, "EASE is switched off (ease_max_items 0)");
        return NULL;
    }
    if (max_items > EASE_MAX_ITEMS)
        max_items = EASE_MAX_ITEMS;
    return ease_train(m, lambda, max_items, err, errlen);
}

static item_neighbours_t *s_train_content(s_run_t *r, char *err, size_t errlen)
{
    const training_data_t *d = r->in->data;
    r->content_items =
        calloc((size_t)(d->n_videos > 0 ? d->n_videos : 1), sizeof *r->content_items);
    if (!r->content_items) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int32_t v = 0; v < d->n_videos; v++)
        r->content_items[v] = (content_item_t){.title = d->titles[v],
                                               .genres = (const char *const *)d->genres[v],
                                               .n_genres = d->n_genres[v],
                                               .tags = (const char *const *)d->tags[v],
                                               .n_tags = d->n_tags[v]};
    int32_t k = (int32_t)s_param(r, "neighbours", r->cfg->neighbours_k);
    return content_model_train(r->content_items, d->n_videos, k, r->threads, err, errlen);
}

static popularity_model_t *s_popularity_on(s_run_t *r, const evaluation_split_t *s,
                                           double half_life_s, char *err, size_t errlen)
{
    const training_data_t *d = r->in->data;
    popularity_params_t params = popularity_params_default();
    params.half_life_s = half_life_s;
    return popularity_model_train(s->train_users, s->train_items, s->train_values, s->train_times,
                                  s->n_train_events, s->n_users, s->n_items,
                                  (const char *const *const *)d->genres, d->n_genres, &params, err,
                                  errlen);
}

//  The half-life that suits the data is the data's business (a week for a
//  news-like catalogue, years for MovieLens' 22 years of ratings): chosen
//  on a second split of the train part, then the model is trained on the
//  whole train part. Every model type is compared with this, the
//  strongest popularity baseline, not a strawman.
static popularity_model_t *s_train_popularity(s_run_t *r, char *err, size_t errlen)
{
    static const double days[] = {7, 30, 180, 365, 1825, 7300};
    evaluation_split_t *val =
        evaluation_split_again(r->split, r->cfg->holdout_fraction, MIN_HISTORY, err, errlen);
    if (!val)
        return NULL;
    double best_ndcg = -1, best_days = 30;
    for (size_t i = 0; i < sizeof days / sizeof *days; i++) {
        popularity_model_t *p = s_popularity_on(r, val, days[i] * 86400, err, errlen);
        if (!p) {
            evaluation_split_destroy(&val);
            return NULL;
        }
        scorer_t sc = popularity_scorer(p);
        evaluation_metrics_t m;
        int rc = evaluation_run(val, &sc, r->threads, &m, err, errlen);
        popularity_model_destroy(&p);
        if (rc != 0) {
            evaluation_split_destroy(&val);
            return NULL;
        }
        if (m.ndcg10 > best_ndcg) {
            best_ndcg = m.ndcg10;
            best_days = days[i];
        }
    }
    evaluation_split_destroy(&val);
    r->half_life_s = best_days * 86400;
    json_object_set_new(r->params, "half_life_days", json_real(best_days));
    return s_popularity_on(r, r->split, r->half_life_s, err, errlen);
}

//  Scores through a model whose video indexes differ from today's (the
//  active model, trained on an older catalogue): histories are mapped into
//  its index space and its scores back; videos it does not know score
//  -INFINITY.
typedef struct {
    scorer_t inner;
    const int32_t *map; //  today's index -> the model's, -1 = unknown
    int32_t n_items;    //  today's videos
} s_remap_t;

static int s_remap_score(const void *model, const user_history_t *h, float *scores)
{
    const s_remap_t *rm = model;
    int32_t *items = malloc((size_t)(h->len > 0 ? h->len : 1) * sizeof *items);
    float *values = malloc((size_t)(h->len > 0 ? h->len : 1) * sizeof *values);
    float *theirs =
        malloc((size_t)(rm->inner.n_items > 0 ? rm->inner.n_items : 1) * sizeof *theirs);
    int rc = -1;
    if (!items || !values || !theirs)
        goto done;
    int32_t m = 0;
    for (int32_t i = 0; i < h->len; i++) {
        int32_t at = h->items[i] >= 0 && h->items[i] < rm->n_items ? rm->map[h->items[i]] : -1;
        if (at >= 0) {
            items[m] = at;
            values[m++] = h->values[i];
        }
    }
    user_history_t mapped = {.items = items, .values = values, .len = m};
    if (rm->inner.score(rm->inner.model, &mapped, theirs) != 0)
        goto done;
    for (int32_t v = 0; v < rm->n_items; v++)
        scores[v] = rm->map[v] >= 0 ? theirs[rm->map[v]] : -INFINITY;
    rc = 0;
done:
    free(items);
    free(values);
    free(theirs);
    return rc;
}

static int s_evaluate(s_run_t *r, const scorer_t *scorer, const char *name, json_t *into,
                      evaluation_metrics_t *out, char *err, size_t errlen)
{
    evaluation_metrics_t m;
    if (evaluation_run(r->split, scorer, r->threads, &m, err, errlen) != 0)
        return -1;
    json_t *json = evaluation_metrics_to_json(&m);
    if (!json || json_object_set_new(into, name, json) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (out)
        *out = m;
    return 0;
}

//  The active model on today's split; a missing or unreadable active
//  artifact is recorded (it is the ranker's problem too) but does not
//  fail the new model: the gate then has nothing to compare with.
static int s_evaluate_active(s_run_t *r, evaluation_metrics_t *active, bool *have_active, char *err,
                             size_t errlen)
{
    *have_active = false;
    if (!r->in->active_path) {
        json_object_set_new(r->metrics, "active", json_null());
        return 0;
    }
    char why[512];
    model_bundle_t *bundle =
        model_bundle_open(r->in->active_path, r->in->active_checksum, why, sizeof why);
    if (!bundle) {
        json_object_set_new(r->metrics, "active", json_null());
        json_object_set_new(r->metrics, "active_error", json_string(why));
        return 0;
    }
    const training_data_t *d = r->in->data;
    int32_t *map = malloc((size_t)(d->n_videos > 0 ? d->n_videos : 1) * sizeof *map);
    if (!map) {
        model_bundle_destroy(&bundle);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int32_t v = 0; v < d->n_videos; v++)
        map[v] = model_bundle_video_index(bundle, d->video_ids[v]);
    s_remap_t rm = {.inner = model_bundle_scorer(bundle), .map = map, .n_items = d->n_videos};
    scorer_t remapped = {.model = &rm, .n_items = d->n_videos, .score = s_remap_score};
    int rc = s_evaluate(r, &remapped, "active", r->metrics, active, err, errlen);
    *have_active = rc == 0;
    free(map);
    model_bundle_destroy(&bundle);
    return rc;
}

//  ---- content: similarity x popularity prior ---------------------------------

static const float s_betas[] = {0.0f, 0.5f, 1.0f, 2.0f, 3.0f, 4.0f};

//  Chooses beta on `val` (a split of the train part): the prior comes from
//  popularity over val's own train events, so nothing of val's held-out
//  part leaks into it.
static int s_tune_prior(s_run_t *r, const evaluation_split_t *val, float *beta, char *err,
                        size_t errlen)
{
    const training_data_t *d = r->in->data;
    popularity_model_t *pop = s_popularity_on(r, val, r->half_life_s, err, errlen);
    float *prior = malloc((size_t)(d->n_videos > 0 ? d->n_videos : 1) * sizeof *prior);
    int rc = -1;
    if (!pop || !prior) {
        if (pop)
            snprintf(err, errlen, "out of memory");
        goto done;
    }
    double best = -1;
    for (size_t b = 0; b < sizeof s_betas / sizeof *s_betas; b++) {
        prior_scorer_fill(pop->global, d->n_videos, s_betas[b], prior);
        prior_scorer_t ps = {.inner = item_neighbours_scorer(r->neighbours), .prior = prior};
        scorer_t s = prior_scorer(&ps);
        evaluation_metrics_t m;
        if (evaluation_run(val, &s, r->threads, &m, err, errlen) != 0)
            goto done;
        if (m.ndcg10 > best) {
            best = m.ndcg10;
            *beta = s_betas[b];
        }
    }
    //  Kept at the chosen beta: the hybrid tunes its blend on this split
    //  with this prior.
    prior_scorer_fill(pop->global, d->n_videos, *beta, prior);
    r->prior_val = prior;
    prior = NULL;
    rc = 0;
done:
    popularity_model_destroy(&pop);
    free(prior);
    return rc;
}

//  Trains the content model: neighbours over the catalogue, beta tuned on
//  a second split, the prior from popularity over the train part.
static int s_train_content_model(s_run_t *r, const evaluation_split_t *val, char *err,
                                 size_t errlen)
{
    const training_data_t *d = r->in->data;
    float beta = 0;
    if (!(r->neighbours = s_train_content(r, err, errlen)) ||
        s_tune_prior(r, val, &beta, err, errlen) != 0)
        return -1;
    json_object_set_new(r->params, "prior_beta", json_real(beta));
    r->prior = malloc((size_t)(d->n_videos > 0 ? d->n_videos : 1) * sizeof *r->prior);
    if (!r->prior) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    prior_scorer_fill(r->popularity->global, d->n_videos, beta, r->prior);
    r->content =
        (prior_scorer_t){.inner = item_neighbours_scorer(r->neighbours), .prior = r->prior};
    return 0;
}

//  ---- training per type ------------------------------------------------------

//  Hybrid: components trained on a second split of the train part, the
//  blend tuned there, then the components retrained on the whole train
//  part with the tuned blend.
static int s_train_hybrid(s_run_t *r, char *err, size_t errlen)
{
    double fraction = r->cfg->holdout_fraction;
    evaluation_split_t *val = evaluation_split_again(r->split, fraction, MIN_HISTORY, err, errlen);
    if (!val)
        return -1;
    int rc = -1;
    als_model_t *als_v = NULL;
    ease_model_t *ease_v = NULL;
    s_phase(r, 10, 40);
    if (s_train_content_model(r, val, err, errlen) != 0 ||
        !(als_v = s_train_als(r, val->train, err, errlen)))
        goto done;
    bool ease_off = false;
    if (!(ease_v = s_train_ease(r, val->train, &ease_off, err, errlen)) && !ease_off)
        goto done;
    s_phase(r, 40, 50);
    if (s_progress(r, "tune", -1, 0) != 0)
        goto done;
    //  Tuning uses content with the prior from val's train part
    //  (s_tune_prior): the final prior (whole train part) would leak val's
    //  held-out events.
    prior_scorer_t content_v = r->content;
    content_v.prior = r->prior_val;
    scorer_t als_s = als_scorer(als_v), content_s = prior_scorer(&content_v);
    scorer_t ease_s = ease_v ? ease_scorer(ease_v) : (scorer_t){0};
    hybrid_t tuning;
    evaluation_metrics_t best;
    int tuned_rc =
        hybrid_init(&tuning, &als_s, &content_s, ease_v ? &ease_s : NULL, NULL, err, errlen) != 0 ||
        hybrid_tune(&tuning, val, NULL, r->threads, &best, err, errlen) != 0;
    if (tuned_rc)
        goto done;
    r->hybrid_params = tuning.params;
    json_t *tuned =
        json_pack("{s:f, s:f, s:f, s:o}", "content_k", tuning.params.content_k, "content_floor",
                  tuning.params.content_floor, "ease_share", tuning.params.ease_share, "validation",
                  evaluation_metrics_to_json(&best));
    json_object_set_new(r->params, "blend", tuned ? tuned : json_null());
    s_phase(r, 50, 75);
    if (!(r->als = s_train_als(r, r->split->train, err, errlen)))
        goto done;
    r->ease = s_train_ease(r, r->split->train, &ease_off, err, errlen);
    if (!r->ease && !ease_off)
        goto done;
    scorer_t a = als_scorer(r->als), c = prior_scorer(&r->content);
    scorer_t e = r->ease ? ease_scorer(r->ease) : (scorer_t){0};
    if (hybrid_init(&r->hybrid, &a, &c, r->ease ? &e : NULL, &r->hybrid_params, err, errlen) != 0)
        goto done;
    r->scorer = hybrid_scorer(&r->hybrid);
    rc = 0;
done:
    als_model_destroy(&als_v);
    ease_model_destroy(&ease_v);
    evaluation_split_destroy(&val);
    return rc;
}

static int s_train(s_run_t *r, char *err, size_t errlen)
{
    const char *type = r->in->model_type;
    s_phase(r, 10, 75);
    if (s_progress(r, "train", -1, 0) != 0)
        return -1;
    if (strcmp(type, "collaborative") == 0) {
        if (!(r->als = s_train_als(r, r->split->train, err, errlen)))
            return -1;
        r->scorer = als_scorer(r->als);
    } else if (strcmp(type, "content") == 0) {
        evaluation_split_t *val =
            evaluation_split_again(r->split, r->cfg->holdout_fraction, MIN_HISTORY, err, errlen);
        int rc = val ? s_train_content_model(r, val, err, errlen) : -1;
        evaluation_split_destroy(&val);
        if (rc != 0)
            return -1;
        r->scorer = prior_scorer(&r->content);
    } else if (strcmp(type, "item_knn") == 0) {
        int32_t k = (int32_t)s_param(r, "neighbours", r->cfg->neighbours_k);
        if (!(r->neighbours = item_knn_train(r->split->train, k, r->threads, err, errlen)))
            return -1;
        r->scorer = item_neighbours_scorer(r->neighbours);
    } else if (strcmp(type, "ease") == 0) {
        bool off;
        if (!(r->ease = s_train_ease(r, r->split->train, &off, err, errlen)))
            return -1;
        r->scorer = ease_scorer(r->ease);
    } else if (strcmp(type, "popularity") == 0)
        r->scorer = popularity_scorer(r->popularity);
    else if (strcmp(type, "hybrid") == 0)
        return s_train_hybrid(r, err, errlen);
    else {
        snprintf(err, errlen, "unknown model type %s", type);
        return -1;
    }
    return 0;
}

//  Baselines the hybrid is held against (the quality target): its
//  own components alone, EASE and item-kNN on the same split.
static int s_baselines(s_run_t *r, char *err, size_t errlen)
{
    if (strcmp(r->in->model_type, "hybrid") != 0)
        return 0;
    scorer_t als = als_scorer(r->als), content = prior_scorer(&r->content);
    if (s_evaluate(r, &als, "collaborative", r->baselines, NULL, err, errlen) != 0 ||
        s_evaluate(r, &content, "content", r->baselines, NULL, err, errlen) != 0)
        return -1;
    if (r->ease) {
        scorer_t ease = ease_scorer(r->ease);
        if (s_evaluate(r, &ease, "ease", r->baselines, NULL, err, errlen) != 0)
            return -1;
    }
    int32_t k = (int32_t)r->cfg->neighbours_k;
    item_neighbours_t *knn = item_knn_train(r->split->train, k, r->threads, err, errlen);
    if (!knn)
        return -1;
    scorer_t knn_s = item_neighbours_scorer(knn);
    int rc = s_evaluate(r, &knn_s, "item_knn", r->baselines, NULL, err, errlen);
    item_neighbours_destroy(&knn);
    return rc;
}

static void s_gate(s_run_t *r, const evaluation_metrics_t *model,
                   const evaluation_metrics_t *active, bool have_active,
                   trainer_pipeline_output_t *out)
{
    double tolerance = r->cfg->quality_tolerance;
    if (!have_active) {
        out->gate_passed = true;
        snprintf(out->gate_reason, sizeof out->gate_reason,
                 "no active %s model to compare with; NDCG@10 %.4f", r->in->model_type,
                 model->ndcg10);
        return;
    }
    double floor = active->ndcg10 * (1.0 - tolerance);
    out->gate_passed = model->ndcg10 >= floor;
    snprintf(out->gate_reason, sizeof out->gate_reason,
             "NDCG@10 %.4f %s the active model's %.4f less %.0f%% tolerance (%.4f)", model->ndcg10,
             out->gate_passed ? "reaches" : "is below", active->ndcg10, tolerance * 100, floor);
}

static int s_write(s_run_t *r, trainer_pipeline_output_t *out, char *err, size_t errlen)
{
    const training_data_t *d = r->in->data;
    json_t *meta =
        json_pack("{s:s, s:O, s:I, s:I}", "model_type", r->in->model_type, "params", r->params,
                  "videos", (json_int_t)d->n_videos, "events", (json_int_t)d->n_events);
    char *meta_text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (!meta_text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    model_artifact_parts_t parts = {.model_type = r->in->model_type,
                                    .video_ids = (const char *const *)d->video_ids,
                                    .n_videos = d->n_videos,
                                    .als = r->als,
                                    .neighbours = r->neighbours,
                                    .ease = r->ease,
                                    .popularity = r->popularity,
                                    .content_prior = r->prior,
                                    .hybrid = &r->hybrid_params,
                                    .meta_json = meta_text};
    int rc = model_artifact_write(&parts, r->in->out_path, out->checksum, err, errlen);
    free(meta_text);
    return rc;
}

static void s_run_clear(s_run_t *r)
{
    evaluation_split_destroy(&r->split);
    free(r->content_items);
    free(r->prior);
    free(r->prior_val);
    als_model_destroy(&r->als);
    item_neighbours_destroy(&r->neighbours);
    ease_model_destroy(&r->ease);
    popularity_model_destroy(&r->popularity);
    json_decref(r->metrics);
    json_decref(r->params);
    json_decref(r->baselines);
}

int trainer_pipeline_run(const trainer_pipeline_input_t *in, trainer_pipeline_output_t *out,
                         char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const training_data_t *d = in->data;
    s_run_t r = {.in = in,
                 .cfg = in->cfg,
                 .threads = in->cfg->train_threads,
                 .metrics = json_object(),
                 .params = json_object(),
                 .baselines = json_object()};
    evaluation_metrics_t model_m, pop_m, active_m;
    bool have_active = false;
    if (!r.metrics || !r.params || !r.baselines) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (d->n_events == 0) {
        snprintf(err, errlen, "no interactions in the requested time range");
        goto err;
    }
    if (in->event_weights &&
        json_object_set_new(r.params, "event_weights", json_deep_copy(in->event_weights)) != 0) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    s_phase(&r, 0, 10);
    if (s_progress(&r, "split", -1, 0) != 0)
        goto err;
    double fraction = s_param(&r, "holdout_fraction", in->cfg->holdout_fraction);
    r.split = evaluation_split_new(d->ev_user, d->ev_video, d->ev_value, d->ev_time, d->n_events,
                                   d->n_users, d->n_videos, fraction, MIN_HISTORY, err, errlen);
    if (!r.split || !(r.popularity = s_train_popularity(&r, err, errlen)) ||
        s_train(&r, err, errlen) != 0)
        goto err;

    s_phase(&r, 75, 95);
    if (s_progress(&r, "evaluate", -1, 0) != 0)
        goto err;
    scorer_t pop = popularity_scorer(r.popularity);
    if (s_evaluate(&r, &r.scorer, "model", r.metrics, &model_m, err, errlen) != 0 ||
        s_evaluate(&r, &pop, "popularity", r.metrics, &pop_m, err, errlen) != 0 ||
        s_evaluate_active(&r, &active_m, &have_active, err, errlen) != 0 ||
        s_baselines(&r, err, errlen) != 0)
        goto err;
    json_object_set(r.metrics, "baselines", r.baselines);
    json_object_set_new(r.metrics, "split",
                        json_pack("{s:I, s:I, s:I, s:I, s:f}", "events", (json_int_t)d->n_events,
                                  "users", (json_int_t)d->n_users, "videos",
                                  (json_int_t)d->n_videos, "test_users",
                                  (json_int_t)r.split->n_test_users, "holdout_fraction", fraction));
    json_object_set(r.metrics, "params", r.params);
    s_gate(&r, &model_m, &active_m, have_active, out);

    s_phase(&r, 95, 100);
    if (s_progress(&r, "write", -1, 0) != 0 || s_write(&r, out, err, errlen) != 0)
        goto err;
    out->metrics = json_incref(r.metrics);
    out->params = json_incref(r.params);
    s_run_clear(&r);
    return 0;
err:
    if (r.cancelled)
        snprintf(err, errlen, "cancelled");
    s_run_clear(&r);
    return -1;
}

void trainer_pipeline_output_clear(trainer_pipeline_output_t *out)
{
    json_decref(out->metrics);
    json_decref(out->params);
    memset(out, 0, sizeof *out);
}
