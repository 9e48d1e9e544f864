/*  test_ease.c: EASE (ease.c) against its closed form computed here in
    double precision, on taste groups, and its subset, scoring and
    parameter rules.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ease.h"
#include "leak_check.h"
#include "triples.h"

TestSuite(ease, .fini = leak_check_fini, .timeout = 60);

//  Exact equality, element by element (memcmp on floats is frowned upon:
//  +0 and -0 differ in bits).
static bool s_same(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static ease_model_t *s_train(const feedback_matrix_t *m, float lambda, int32_t max_items)
{
    char err[256] = "";
    ease_model_t *model = ease_train(m, lambda, max_items, err, sizeof err);
    cr_assert(model, "ease_train: %s", err);
    return model;
}

static void s_score(const ease_model_t *model, const int32_t *items, const float *values,
                    int32_t len, float *scores)
{
    scorer_t scorer = ease_scorer(model);
    cr_assert_eq(scorer.n_items, model->n_items);
    user_history_t h = {.items = items, .values = values, .len = len};
    cr_assert_eq(scorer.score(scorer.model, &h, scores), 0);
}

Test(ease, unseen_video_of_own_group_ranks_above_other_group)
{
    feedback_matrix_t *m = triples_two_groups();
    ease_model_t *model = s_train(m, 1.0f, EASE_DEFAULT_MAX_ITEMS);
    cr_assert_eq(model->n_items, 10);
    cr_assert_eq(model->n_sub, 10);
    cr_assert(model->owned);
    int32_t items[] = {0, 1, 2, 3};
    float values[] = {1, 1, 1, 1};
    float scores[10];
    s_score(model, items, values, 4, scores);
    for (int32_t j = 5; j < 10; j++)
        cr_assert_gt(scores[4], scores[j], "video 4 %f <= video %d %f", scores[4], j, scores[j]);
    ease_model_destroy(&model);
    cr_assert_null(model);
    ease_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

//  Inverse of the n x n a (row-major, double) by Gauss-Jordan, no pivoting
//  (a is symmetric positive definite here).
static void s_invert(double *a, double *inv, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            inv[i * n + j] = i == j;
    for (int c = 0; c < n; c++) {
        double d = a[c * n + c];
        for (int j = 0; j < n; j++) {
            a[c * n + j] /= d;
            inv[c * n + j] /= d;
        }
        for (int r = 0; r < n; r++) {
            if (r == c)
                continue;
            double f = a[r * n + c];
            for (int j = 0; j < n; j++) {
                a[r * n + j] -= f * a[c * n + j];
                inv[r * n + j] -= f * inv[c * n + j];
            }
        }
    }
}

Test(ease, matches_the_closed_form_and_has_a_zero_diagonal)
{
    //  An irregular binary matrix with a dislike and a repeated weight, so
    //  that the Gram matrix has distinct entries.
    triples_t t = {.n = 0};
    uint32_t x = 99;
    for (int32_t u = 0; u < 30; u++)
        for (int k = 0; k < 4; k++) {
            x = x * 1664525u + 1013904223u;
            triples_add(&t, u, (int32_t)((x >> 10) % 6), (x >> 5) % 9 == 0 ? -1.0f : 2.0f);
        }
    feedback_matrix_t *m = feedback_matrix_new(30, 6, t.rows, t.cols, t.vals, t.n);
    cr_assert(m);
    const float lambda = 3.0f;
    ease_model_t *model = s_train(m, lambda, 100);
    int n = model->n_sub;
    cr_assert_eq(n, 6, "every video is liked by someone with this seed");

    double g[36] = {0}, p[36];
    for (int32_t u = 0; u < 30; u++)
        for (int64_t a = m->row_ptr[u]; a < m->row_ptr[u + 1]; a++)
            for (int64_t b = m->row_ptr[u]; b < m->row_ptr[u + 1]; b++)
                if (m->val[a] > 0 && m->val[b] > 0)
                    g[m->col[a] * 6 + m->col[b]] += 1.0;
    for (int i = 0; i < 6; i++)
        g[i * 6 + i] += lambda;
    s_invert(g, p, 6);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(model->sub_items[i], i);
        for (int j = 0; j < 6; j++) {
            double want = i == j ? 0.0 : -p[i * 6 + j] / p[j * 6 + j];
            float got = model->b[i * 6 + j];
            if (i == j)
                cr_assert_eq(got, 0.0f, "B[%d][%d] = %f", i, j, got);
            else
                cr_assert_float_eq(got, want, 1e-5, "B[%d][%d] = %f, want %f", i, j, got, want);
        }
    }
    ease_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

Test(ease, subset_keeps_the_most_liked_videos_and_the_rest_score_minus_infinity)
{
    //  Likes per video: 0:1, 1:3, 2:2, 3:3, 4:0 (only a dislike), 5:2.
    //  max_items 3 keeps 1 and 3 (3 likes) and 2 (2 likes, lower index
    //  than 5).
    triples_t t = {.n = 0};
    triples_add(&t, 0, 0, 1);
    triples_add(&t, 0, 1, 1);
    triples_add(&t, 1, 1, 1);
    triples_add(&t, 2, 1, 1);
    triples_add(&t, 1, 2, 1);
    triples_add(&t, 2, 2, 1);
    triples_add(&t, 0, 3, 1);
    triples_add(&t, 1, 3, 1);
    triples_add(&t, 3, 3, 1);
    triples_add(&t, 3, 4, -1);
    triples_add(&t, 2, 5, 1);
    triples_add(&t, 3, 5, 1);
    feedback_matrix_t *m = feedback_matrix_new(4, 6, t.rows, t.cols, t.vals, t.n);
    cr_assert(m);
    ease_model_t *model = s_train(m, 1.0f, 3);
    cr_assert_eq(model->n_items, 6);
    cr_assert_eq(model->n_sub, 3);
    cr_assert_eq(model->sub_items[0], 1);
    cr_assert_eq(model->sub_items[1], 2);
    cr_assert_eq(model->sub_items[2], 3);
    int32_t items[] = {1, 5};
    float values[] = {1, 1};
    float scores[6];
    s_score(model, items, values, 2, scores);
    cr_assert(isinf(scores[0]) && scores[0] < 0);
    cr_assert(isinf(scores[4]) && scores[4] < 0);
    cr_assert(isinf(scores[5]) && scores[5] < 0);
    cr_assert(isfinite(scores[1]) && isfinite(scores[2]) && isfinite(scores[3]));
    cr_assert_float_eq(scores[2], model->b[0 * 3 + 1], 1e-7);
    cr_assert_float_eq(scores[3], model->b[0 * 3 + 2], 1e-7);
    ease_model_destroy(&model);

    //  A big enough max_items still leaves out video 4, which nobody liked.
    model = s_train(m, 1.0f, 100);
    cr_assert_eq(model->n_sub, 5);
    for (int k = 0; k < 5; k++)
        cr_assert_neq(model->sub_items[k], 4);
    ease_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

Test(ease, dislikes_and_unknown_videos_in_the_history_contribute_nothing)
{
    feedback_matrix_t *m = triples_two_groups();
    ease_model_t *model = s_train(m, 1.0f, 100);
    int32_t items[] = {0, 1, 7, 42, -1};
    float values[] = {1, 1, -1, 1, 1};
    float a[10], b[10];
    s_score(model, items, values, 2, a);
    s_score(model, items, values, 5, b);
    cr_assert(s_same(a, b, 10));
    float empty[10];
    s_score(model, items, values, 0, empty);
    for (int j = 0; j < 10; j++)
        cr_assert_eq(empty[j], 0.0f);
    ease_model_destroy(&model);
    feedback_matrix_destroy(&m);
}

Test(ease, bad_parameters_and_matrices_are_rejected)
{
    feedback_matrix_t *m = triples_two_groups();
    char err[256];
    struct {
        const char *what;
        const feedback_matrix_t *m;
        float lambda;
        int32_t max_items;
    } cases[] = {
        {"no matrix", NULL, 1.0f, 10},
        {"lambda 0", m, 0.0f, 10},
        {"lambda < 0", m, -5.0f, 10},
        {"lambda NaN", m, NAN, 10},
        {"lambda inf", m, INFINITY, 10},
        {"max_items 0", m, 1.0f, 0},
        {"max_items too big", m, 1.0f, EASE_MAX_ITEMS + 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        cr_assert_null(ease_train(cases[i].m, cases[i].lambda, cases[i].max_items, err, sizeof err),
                       "%s accepted", cases[i].what);
        cr_assert_neq(err[0], '\0', "%s: no error text", cases[i].what);
    }
    int32_t r[] = {0, 1};
    int32_t c[] = {0, 1};
    float v[] = {-1, -2};
    feedback_matrix_t *dislikes = feedback_matrix_new(2, 2, r, c, v, 2);
    cr_assert(dislikes);
    err[0] = '\0';
    cr_assert_null(ease_train(dislikes, 1.0f, 10, err, sizeof err));
    cr_assert(strstr(err, "positive"), "%s", err);
    feedback_matrix_destroy(&dislikes);
    feedback_matrix_destroy(&m);
}

Test(ease, a_view_scores_like_the_model_and_destroy_leaves_its_arrays)
{
    feedback_matrix_t *m = triples_two_groups();
    ease_model_t *model = s_train(m, 1.0f, 100);
    int32_t sub[10];
    float b[100];
    memcpy(sub, model->sub_items, sizeof sub);
    memcpy(b, model->b, sizeof b);
    ease_model_t *view = calloc(1, sizeof *view);
    cr_assert(view);
    *view = (ease_model_t){.n_items = 10, .n_sub = 10, .sub_items = sub, .b = b, .owned = false};
    int32_t items[] = {6, 7};
    float values[] = {1, 1};
    float x[10], y[10];
    s_score(model, items, values, 2, x);
    s_score(view, items, values, 2, y);
    cr_assert(s_same(x, y, 10));
    ease_model_destroy(&view); //  a bad free of stack arrays would crash here
    cr_assert_null(view);
    ease_model_destroy(&model);
    feedback_matrix_destroy(&m);
}
