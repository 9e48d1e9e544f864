/*  test_als.c: implicit ALS (als.c) on small matrices whose right answer
    is known: taste groups, dislikes, determinism across thread counts,
    fold-in against the trained rows, cancellation and parameter checks.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "als.h"
#include "leak_check.h"
#include "triples.h"

TestSuite(als, .fini = leak_check_fini, .timeout = 60);

//  A random-ish matrix with more rows than one work chunk, so that several
//  threads really share the rows.
static feedback_matrix_t *s_random(int32_t n_users, int32_t n_items, int per_user)
{
    static triples_t t;
    t.n = 0;
    uint32_t x = 12345;
    for (int32_t u = 0; u < n_users; u++)
        for (int k = 0; k < per_user; k++) {
            x = x * 1664525u + 1013904223u;
            int32_t item = (int32_t)((x >> 8) % (uint32_t)n_items);
            float v = ((x >> 4) & 7) == 0 ? -1.0f : 1.0f + (float)((x >> 12) & 3);
            triples_add(&t, u, item, v);
        }
    return triples_matrix(&t, n_users, n_items);
}

//  Exact equality, element by element (memcmp on floats is frowned upon:
//  +0 and -0 differ in bits).
static bool s_same(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static als_params_t s_params(void)
{
    als_params_t p = als_params_default();
    p.factors = 8;
    p.iterations = 15;
    p.threads = 1;
    return p;
}

//  The groups have two tastes: two factors describe them exactly, more would
//  let 20 users be fitted one by one (over-fitting, not generalising).
#define S_GF 2

static als_params_t s_group_params(void)
{
    als_params_t p = s_params();
    p.factors = S_GF;
    return p;
}

static als_model_t *s_train(const feedback_matrix_t *m, const als_params_t *p)
{
    char err[256] = "";
    als_model_t *model = als_train(m, p, NULL, NULL, err, sizeof err);
    cr_assert(model, "als_train: %s", err);
    return model;
}

static void s_score(const als_model_t *model, const int32_t *items, const float *values,
                    int32_t len, float *scores)
{
    scorer_t scorer = als_scorer(model);
    cr_assert_eq(scorer.n_items, model->n_items);
    user_history_t h = {.items = items, .values = values, .len = len};
    cr_assert_eq(scorer.score(scorer.model, &h, scores), 0);
}

Test(als, defaults_are_the_documented_ones)
{
    als_params_t p = als_params_default();
    cr_assert_eq(p.factors, 64);
    cr_assert_eq(p.iterations, 15);
    cr_assert_eq(p.cg_steps, 3);
    cr_assert_eq(p.seed, 42);
    cr_assert_eq(p.threads, 0);
    cr_assert_gt(p.regularization, 0.0f);
    cr_assert_gt(p.alpha, 0.0f);
}

Test(als, unseen_video_of_own_group_ranks_above_other_group)
{
    feedback_matrix_t *m = triples_two_groups();
    als_params_t p = s_group_params();
    als_model_t *model = s_train(m, &p);
    cr_assert_eq(model->n_users, 20);
    cr_assert_eq(model->n_items, 10);
    cr_assert_eq(model->factors, S_GF);
    cr_assert(model->owned);

    //  A new user who watched videos 0..3 of group A: video 4 must beat all
    //  of group B.
    int32_t items[] = {0, 1, 2, 3};
    float values[] = {1, 1, 1, 1};
    float scores[10];
    s_score(model, items, values, 4, scores);
    for (int32_t j = 5; j < 10; j++)
        cr_assert_gt(scores[4], scores[j], "video 4 %f <= video %d %f", scores[4], j, scores[j]);

    //  And the mirror image for group B, from the trained user rows: user 10
    //  never saw video 5.
    const float *u = model->user_factors + (size_t)10 * S_GF;
    float s5 = 0;
    for (int k = 0; k < S_GF; k++)
        s5 += u[k] * model->item_factors[5 * S_GF + k];
    for (int32_t j = 0; j < 5; j++) {
        float sj = 0;
        for (int k = 0; k < S_GF; k++)
            sj += u[k] * model->item_factors[j * S_GF + k];
        cr_assert_gt(s5, sj);
    }
    als_model_destroy(&model);
    cr_assert_null(model);
    als_model_destroy(&model); //  idempotent
    feedback_matrix_destroy(&m);
}

Test(als, identical_factors_for_one_and_four_threads)
{
    feedback_matrix_t *m = s_random(300, 80, 12);
    als_params_t p = s_params();
    p.factors = 16;
    p.iterations = 5;
    p.threads = 1;
    als_model_t *a = s_train(m, &p);
    p.threads = 4;
    als_model_t *b = s_train(m, &p);
    cr_assert(s_same(a->user_factors, b->user_factors, (size_t)300 * 16));
    cr_assert(s_same(a->item_factors, b->item_factors, (size_t)80 * 16));
    cr_assert(s_same(a->gram, b->gram, (size_t)16 * 16));

    //  Another seed gives another model.
    p.seed = 7;
    als_model_t *c = s_train(m, &p);
    cr_assert(!s_same(a->item_factors, c->item_factors, (size_t)80 * 16));
    als_model_destroy(&a);
    als_model_destroy(&b);
    als_model_destroy(&c);
    feedback_matrix_destroy(&m);
}

Test(als, gram_is_item_factors_transposed_times_item_factors)
{
    feedback_matrix_t *m = s_random(100, 30, 8);
    als_params_t p = s_params();
    p.iterations = 2;
    als_model_t *model = s_train(m, &p);
    for (int a = 0; a < 8; a++)
        for (int b = 0; b < 8; b++) {
            double s = 0;
            for (int i = 0; i < 30; i++)
                s += (double)model->item_factors[i * 8 + a] * model->item_factors[i * 8 + b];
            cr_assert_float_eq(model->gram[a * 8 + b], s, 1e-4 + 1e-4 * fabs(s));
        }
    float again[64];
    als_compute_gram(model->item_factors, 30, 8, again);
    cr_assert(s_same(again, model->gram, 64));
    als_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

Test(als, fold_in_of_a_training_history_matches_its_trained_row)
{
    feedback_matrix_t *m = s_random(200, 60, 10);
    als_params_t p = s_params();
    p.iterations = 40;
    p.cg_steps = 6;
    als_model_t *model = s_train(m, &p);
    for (int32_t u = 0; u < 200; u += 37) {
        int64_t b = m->row_ptr[u], e = m->row_ptr[u + 1];
        user_history_t h = {.items = m->col + b, .values = m->val + b, .len = (int32_t)(e - b)};
        float vec[8];
        cr_assert_eq(als_fold_in(model, &h, vec), 0);
        const float *row = model->user_factors + (size_t)u * 8;
        double diff = 0, norm = 0;
        for (int k = 0; k < 8; k++) {
            diff += (vec[k] - row[k]) * (double)(vec[k] - row[k]);
            norm += (double)row[k] * row[k];
        }
        cr_assert_gt(norm, 1e-6, "user %d has a zero row", u);
        cr_assert_lt(sqrt(diff / norm), 0.02, "user %d: relative error %f", u, sqrt(diff / norm));
    }
    als_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

Test(als, fold_in_ignores_unknown_videos_and_empty_history_is_zero)
{
    feedback_matrix_t *m = triples_two_groups();
    als_params_t p = s_group_params();
    als_model_t *model = s_train(m, &p);
    int32_t items[] = {0, 1, 99, -3, 2};
    float values[] = {1, 1, 1, 1, 0};
    float with[S_GF], without[S_GF], empty[S_GF];
    user_history_t h = {.items = items, .values = values, .len = 5};
    cr_assert_eq(als_fold_in(model, &h, with), 0);
    h.len = 2;
    cr_assert_eq(als_fold_in(model, &h, without), 0);
    cr_assert(s_same(with, without, S_GF));
    h.len = 0;
    cr_assert_eq(als_fold_in(model, &h, empty), 0);
    for (int k = 0; k < S_GF; k++)
        cr_assert_eq(empty[k], 0.0f);
    als_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

Test(als, negative_history_value_pushes_the_video_down)
{
    //  A dislike is a confident 0: it pulls the video's score towards 0, so
    //  it pushes down a video the rest of the history makes likely (video 4
    //  after 0..3), and a watch pushes it up.
    feedback_matrix_t *m = triples_two_groups();
    als_params_t p = s_group_params();
    als_model_t *model = s_train(m, &p);
    int32_t items[] = {0, 1, 2, 3, 4};
    float values[] = {1, 1, 1, 1, -1};
    float liked[10], disliked[10];
    s_score(model, items, values, 4, liked); //  without video 4
    s_score(model, items, values, 5, disliked);
    cr_assert_gt(liked[4], 0.2f);
    cr_assert_lt(disliked[4], liked[4], "disliked %f, unseen %f", disliked[4], liked[4]);
    values[4] = 1;
    float watched[10];
    s_score(model, items, values, 5, watched);
    cr_assert_gt(watched[4], liked[4]);
    als_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

Test(als, negative_training_values_count_against_the_video)
{
    //  Group A users 0..9 all like videos 0..3; users 0..4 also like video
    //  4. In the second matrix users 5..9 disliked video 4, where in the
    //  first they simply never saw it.
    triples_t *t = calloc(1, sizeof *t);
    cr_assert(t);
    for (int32_t u = 0; u < 10; u++)
        for (int32_t k = 0; k < 4; k++)
            triples_add(t, u, k, 1.0f);
    for (int32_t u = 0; u < 5; u++)
        triples_add(t, u, 4, 1.0f);
    for (int32_t u = 10; u < 20; u++)
        for (int32_t k = 5; k < 10; k++)
            triples_add(t, u, k, 1.0f);
    feedback_matrix_t *neutral = triples_matrix(t, 20, 10);
    for (int32_t u = 5; u < 10; u++)
        triples_add(t, u, 4, -1.0f);
    feedback_matrix_t *against = triples_matrix(t, 20, 10);
    free(t);

    als_params_t p = s_group_params();
    als_model_t *a = s_train(neutral, &p);
    als_model_t *b = s_train(against, &p);
    int32_t items[] = {0, 1, 2};
    float values[] = {1, 1, 1};
    float sa[10], sb[10];
    s_score(a, items, values, 3, sa);
    s_score(b, items, values, 3, sb);
    cr_assert_lt(sb[4], sa[4], "disliked %f, unseen %f", sb[4], sa[4]);
    als_model_destroy(&a);
    als_model_destroy(&b);
    feedback_matrix_destroy(&neutral);
    feedback_matrix_destroy(&against);
}

typedef struct {
    int calls;
    int stop_at;
    double first_loss, last_loss;
} s_progress_t;

static int s_progress(int iteration, int iterations, double loss, void *arg)
{
    s_progress_t *p = arg;
    p->calls++;
    cr_assert_eq(iteration, p->calls);
    cr_assert_eq(iterations, 10);
    cr_assert(isfinite(loss));
    if (iteration == 1)
        p->first_loss = loss;
    p->last_loss = loss;
    return iteration == p->stop_at;
}

Test(als, progress_reports_a_falling_loss_and_can_cancel)
{
    feedback_matrix_t *m = s_random(150, 40, 10);
    als_params_t p = s_params();
    p.iterations = 10;
    char err[256] = "";

    s_progress_t run = {.stop_at = -1};
    als_model_t *model = als_train(m, &p, s_progress, &run, err, sizeof err);
    cr_assert(model, "%s", err);
    cr_assert_eq(run.calls, 10);
    cr_assert_lt(run.last_loss, run.first_loss);
    cr_assert_gt(run.last_loss, 0.0);
    als_model_destroy(&model);

    s_progress_t cancel = {.stop_at = 3};
    model = als_train(m, &p, s_progress, &cancel, err, sizeof err);
    cr_assert_null(model);
    cr_assert_eq(cancel.calls, 3);
    cr_assert_str_eq(err, "cancelled");
    feedback_matrix_destroy(&m);
}

Test(als, bad_parameters_and_bad_matrices_are_rejected)
{
    feedback_matrix_t *m = triples_two_groups();
    char err[256];
    struct {
        const char *what;
        als_params_t p;
    } cases[8];
    for (int i = 0; i < 8; i++)
        cases[i].p = s_params();
    cases[0].what = "factors 0", cases[0].p.factors = 0;
    cases[1].what = "factors too many", cases[1].p.factors = ALS_MAX_FACTORS + 1;
    cases[2].what = "iterations 0", cases[2].p.iterations = 0;
    cases[3].what = "regularization 0", cases[3].p.regularization = 0.0f;
    cases[4].what = "regularization NaN", cases[4].p.regularization = NAN;
    cases[5].what = "alpha < 0", cases[5].p.alpha = -1.0f;
    cases[6].what = "cg_steps 0", cases[6].p.cg_steps = 0;
    cases[7].what = "threads < 0", cases[7].p.threads = -1;
    for (int i = 0; i < 8; i++) {
        err[0] = '\0';
        int calls = 0;
        als_model_t *model = als_train(m, &cases[i].p, NULL, &calls, err, sizeof err);
        cr_assert_null(model, "%s accepted", cases[i].what);
        cr_assert_neq(err[0], '\0', "%s: no error text", cases[i].what);
    }
    als_params_t p = s_params();
    err[0] = '\0';
    cr_assert_null(als_train(NULL, &p, NULL, NULL, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    cr_assert_null(als_train(m, NULL, NULL, NULL, err, sizeof err));

    feedback_matrix_t *empty = feedback_matrix_new(3, 3, NULL, NULL, NULL, 0);
    cr_assert(empty);
    err[0] = '\0';
    cr_assert_null(als_train(empty, &p, NULL, NULL, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    feedback_matrix_destroy(&empty);

    m->val[0] = NAN;
    err[0] = '\0';
    cr_assert_null(als_train(m, &p, NULL, NULL, err, sizeof err));
    cr_assert(strstr(err, "finite"), "%s", err);
    feedback_matrix_destroy(&m);
}

Test(als, a_view_scores_like_the_model_and_destroy_leaves_its_arrays)
{
    feedback_matrix_t *m = triples_two_groups();
    als_params_t p = s_group_params();
    als_model_t *model = s_train(m, &p);

    //  A view over copies on the stack, as the ranker builds one over an
    //  mmapped artifact: destroying it must not free them (ASan would
    //  report a bad free).
    float items_copy[10 * S_GF], gram_copy[S_GF * S_GF];
    memcpy(items_copy, model->item_factors, sizeof items_copy);
    als_compute_gram(items_copy, 10, S_GF, gram_copy);
    als_model_t *view = calloc(1, sizeof *view);
    cr_assert(view);
    *view = (als_model_t){.n_users = 0,
                          .n_items = 10,
                          .factors = S_GF,
                          .item_factors = items_copy,
                          .gram = gram_copy,
                          .regularization = model->regularization,
                          .alpha = model->alpha,
                          .owned = false};
    int32_t items[] = {5, 6};
    float values[] = {1, 2};
    float a[10], b[10];
    s_score(model, items, values, 2, a);
    s_score(view, items, values, 2, b);
    for (int j = 0; j < 10; j++)
        cr_assert_float_eq(a[j], b[j], 1e-6);
    als_model_destroy(&view);
    cr_assert_null(view);
    cr_assert_eq(items_copy[0], model->item_factors[0]);
    als_model_destroy(&model);
    feedback_matrix_destroy(&m);
}
