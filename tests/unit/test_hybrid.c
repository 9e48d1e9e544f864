/*  test_hybrid.c: the history-weighted blend (hybrid.c): weights, the
    normalisation on a hand-computed case, and tuning on a validation split
    where one blend is known to be right.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "content_model.h"
#include "evaluation.h"
#include "hybrid.h"
#include "leak_check.h"
#include "topn.h"

TestSuite(hybrid, .fini = leak_check_fini, .timeout = 60);

//  Scorers over a fixed score vector (the model is the vector).
typedef struct {
    int32_t n;
    float s[8];
} s_fixed_t;

static int s_fixed_score(const void *model, const user_history_t *history, float *scores)
{
    (void)history; //  fixed whatever the history
    const s_fixed_t *f = model;
    memcpy(scores, f->s, (size_t)f->n * sizeof *scores);
    return 0;
}

Test(hybrid, weights_shift_to_collaborative_as_history_grows)
{
    s_fixed_t f = {4, {0}};
    scorer_t a = {&f, 4, s_fixed_score};
    hybrid_params_t p = {.content_k = 5, .content_floor = 0.1f, .ease_share = 0.25f};
    hybrid_t h;
    char err[256] = "";
    cr_assert_eq(hybrid_init(&h, &a, &a, &a, &p, err, sizeof err), 0, "%s", err);
    float w[HYBRID_COMPONENTS], prev = 2;
    const int32_t lengths[] = {0, 1, 5, 20, 100, 10000};
    for (int i = 0; i < 6; i++) {
        hybrid_weights(&h, lengths[i], w);
        double wc = 0.1 + 0.9 * 5.0 / (5.0 + lengths[i]);
        cr_assert_float_eq(w[HYBRID_CONTENT], wc, 1e-6, "n = %d", lengths[i]);
        cr_assert_float_eq(w[HYBRID_ALS], (1 - wc) * 0.75, 1e-6);
        cr_assert_float_eq(w[HYBRID_EASE], (1 - wc) * 0.25, 1e-6);
        cr_assert_lt(w[HYBRID_CONTENT], prev, "content weight falls as history grows");
        prev = w[HYBRID_CONTENT];
    }
    cr_assert_float_eq(w[HYBRID_CONTENT], 0.1, 1e-3, "down to the floor");

    //  Absent components hand their weight on.
    cr_assert_eq(hybrid_init(&h, &a, &a, NULL, &p, err, sizeof err), 0, "%s", err);
    hybrid_weights(&h, 5, w);
    cr_assert_float_eq(w[HYBRID_ALS], 1 - 0.55, 1e-6);
    cr_assert_float_eq(w[HYBRID_EASE], 0, 1e-9);
    cr_assert_eq(hybrid_init(&h, NULL, &a, NULL, &p, err, sizeof err), 0, "%s", err);
    hybrid_weights(&h, 5, w);
    cr_assert_float_eq(w[HYBRID_CONTENT], 1, 1e-9);
    cr_assert_eq(hybrid_init(&h, NULL, NULL, &a, &p, err, sizeof err), 0, "%s", err);
    hybrid_weights(&h, 0, w);
    cr_assert_float_eq(w[HYBRID_EASE], 1, 1e-9);

    //  Bad setups.
    cr_assert_eq(hybrid_init(&h, NULL, NULL, NULL, &p, err, sizeof err), -1);
    scorer_t b = {&f, 5, s_fixed_score};
    cr_assert_eq(hybrid_init(&h, &a, &b, NULL, &p, err, sizeof err), -1);
    p.ease_share = 1.5f;
    cr_assert_eq(hybrid_init(&h, &a, NULL, NULL, &p, err, sizeof err), -1);
}

Test(hybrid, clipped_z_scores_blend_by_history_length)
{
    s_fixed_t content = {4, {-INFINITY, 1, 3, -INFINITY}}; //  mean 2, sd 1
    s_fixed_t als = {4, {1, 2, 3, 4}};                     //  mean 2.5, sd sqrt(1.25)
    scorer_t c = {&content, 4, s_fixed_score}, a = {&als, 4, s_fixed_score};
    hybrid_params_t p = {.content_k = 1, .content_floor = 0, .ease_share = 0.5f};
    hybrid_t h;
    char err[256] = "";
    cr_assert_eq(hybrid_init(&h, &a, &c, NULL, &p, err, sizeof err), 0, "%s", err);
    scorer_t s = hybrid_scorer(&h);
    double sd = sqrt(1.25);

    //  One positive (and a dislike, which does not count): w_content = 0.5.
    int32_t items[9] = {0, 1};
    float values[9] = {1, -1, 1, 1, 1, 1, 1, 1, 1};
    user_history_t one = {items, values, 2};
    float out[4];
    cr_assert_eq(s.score(s.model, &one, out), 0);
    cr_assert_float_eq(out[0], 0, 1e-6, "below the ALS mean: clipped to 0");
    cr_assert_float_eq(out[1], 0, 1e-6);
    cr_assert_float_eq(out[2], 0.5 * 1 + 0.5 * (0.5 / sd), 1e-6);
    cr_assert_float_eq(out[3], 0.5 * (1.5 / sd), 1e-6);
    int32_t top[1];
    cr_assert_eq(topn_select(out, 4, NULL, top, 1), 1);
    cr_assert_eq(top[0], 2, "short history: content tips it");

    //  Nine positives: w_content = 0.1, the collaborative favourite wins.
    for (int i = 0; i < 9; i++)
        values[i] = 1;
    user_history_t nine = {items, values, 9};
    cr_assert_eq(s.score(s.model, &nine, out), 0);
    cr_assert_float_eq(out[2], 0.1 * 1 + 0.9 * (0.5 / sd), 1e-6);
    cr_assert_float_eq(out[3], 0.9 * (1.5 / sd), 1e-6);
    cr_assert_eq(topn_select(out, 4, NULL, top, 1), 1);
    cr_assert_eq(top[0], 3);

    //  Content alone: only its finite videos are finite in the blend; two
    //  equal finite scores out of four still say "these".
    content.s[2] = 1;
    cr_assert_eq(hybrid_init(&h, NULL, &c, NULL, &p, err, sizeof err), 0, "%s", err);
    s = hybrid_scorer(&h);
    cr_assert_eq(s.score(s.model, &one, out), 0);
    cr_assert(isinf(out[0]) && out[0] < 0);
    cr_assert_float_eq(out[1], 1, 1e-6);
    cr_assert_float_eq(out[2], 1, 1e-6);
    cr_assert(isinf(out[3]) && out[3] < 0);
}

Test(hybrid, set_params_and_scratch_score_without_allocating_the_model_again)
{
    s_fixed_t content = {4, {-INFINITY, 1, 3, -INFINITY}};
    s_fixed_t als = {4, {1, 2, 3, 4}};
    scorer_t c = {&content, 4, s_fixed_score}, a = {&als, 4, s_fixed_score};
    hybrid_params_t p = {.content_k = 1, .content_floor = 0, .ease_share = 0.5f};
    hybrid_t h;
    char err[256] = "";
    cr_assert_eq(hybrid_init(&h, &a, &c, NULL, &p, err, sizeof err), 0, "%s", err);
    cr_assert_null(h.scratch, "allocates per call unless given a buffer");
    int32_t items[1] = {0};
    float values[1] = {1};
    user_history_t one = {items, values, 1};
    float own[4], copied[4], scratch[4];

    //  A copy with another blend and a scratch buffer: content only.
    hybrid_t copy = h;
    hybrid_params_t content_only = {.content_k = 0, .content_floor = 1, .ease_share = 0};
    cr_assert_eq(hybrid_set_params(&copy, &content_only), 0);
    copy.scratch = scratch;
    scorer_t s = hybrid_scorer(&h), t = hybrid_scorer(&copy);
    cr_assert_eq(s.score(s.model, &one, own), 0);
    cr_assert_eq(t.score(t.model, &one, copied), 0);
    cr_assert(isinf(copied[0]) && copied[0] < 0, "content has no opinion on video 0");
    cr_assert_float_eq(copied[2], 1, 1e-6, "content's z-score alone");
    cr_assert_float_eq(own[2], 0.5 * 1 + 0.5 * (0.5 / sqrt(1.25)), 1e-6, "original untouched");

    //  Out of range: refused, nothing changed.
    hybrid_params_t bad[] = {
        {.content_k = -1}, {.content_floor = 1.5f}, {.ease_share = -0.1f}, {.content_k = NAN}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(hybrid_set_params(&copy, &bad[i]), -1, "bad[%zu]", i);
        cr_assert_float_eq(copy.params.content_floor, 1, 1e-9);
    }
    cr_assert_eq(hybrid_set_params(&copy, NULL), -1);
}

Test(hybrid, cold_video_reaches_the_blend_through_content)
{
    const content_item_t items[] = {
        {"Toy Story (1995)", (const char *const[]){"Animation", "Children"}, 2,
         (const char *const[]){"pixar"}, 1},
        {"Toy Story 2 (1999)", (const char *const[]){"Animation", "Children"}, 2,
         (const char *const[]){"pixar"}, 1},
        {"Heat (1995)", (const char *const[]){"Action", "Crime"}, 2, NULL, 0},
        {"Casino (1995)", (const char *const[]){"Crime", "Drama"}, 2, NULL, 0},
    };
    char err[256] = "";
    item_neighbours_t *nb = content_model_train(items, 4, 2, 1, err, sizeof err);
    cr_assert(nb, "%s", err);
    scorer_t content = item_neighbours_scorer(nb);
    //  A collaborative model that knows nothing of video 1 (never watched).
    s_fixed_t cf = {4, {5, -INFINITY, 3, 2}};
    scorer_t als = {&cf, 4, s_fixed_score};
    hybrid_t h;
    cr_assert_eq(hybrid_init(&h, &als, &content, NULL, NULL, err, sizeof err), 0, "%s", err);
    scorer_t s = hybrid_scorer(&h);
    int32_t hi[] = {0};
    float hv[] = {1};
    user_history_t history = {hi, hv, 1};
    float out[4];
    cr_assert_eq(s.score(s.model, &history, out), 0);
    bool skip[4] = {true, false, false, false};
    int32_t top[1];
    cr_assert_eq(topn_select(out, 4, skip, top, 1), 1);
    cr_assert_eq(top[0], 1, "the unwatched sequel comes first");
    item_neighbours_destroy(&nb);
}

//  "Good": knows each user's next video (largest history index + 1).
static int s_next_score(const void *model, const user_history_t *history, float *scores)
{
    int32_t n = *(const int32_t *)model, last = -1;
    for (int32_t h = 0; h < history->len; h++)
        if (history->items[h] > last)
            last = history->items[h];
    for (int32_t j = 0; j < n; j++)
        scores[j] = j == last + 1 ? 1.0f : 0.0f;
    return 0;
}

//  "Bad": low indexes first, whoever asks.
static int s_low_score(const void *model, const user_history_t *history, float *scores)
{
    (void)history;
    int32_t n = *(const int32_t *)model;
    for (int32_t j = 0; j < n; j++)
        scores[j] = (float)-j;
    return 0;
}

//  Users 0..29 each watch u..u+4 and then u+5 (the validation item).
static evaluation_split_t *s_validation(void)
{
    enum { U = 30, L = 6 };
    int32_t users[U * L], items[U * L];
    float values[U * L];
    int64_t times[U * L];
    for (int u = 0; u < U; u++)
        for (int i = 0; i < L; i++) {
            users[u * L + i] = u;
            items[u * L + i] = u + i;
            values[u * L + i] = 1;
            times[u * L + i] = 1000 * u + i;
        }
    char err[256] = "";
    evaluation_split_t *v =
        evaluation_split_new(users, items, values, times, U * L, U, 40, 0.2, 5, err, sizeof err);
    cr_assert(v, "%s", err);
    cr_assert_eq(v->n_test_users, U);
    return v;
}

static void s_expect_tuned(hybrid_t *h, const evaluation_split_t *v, const hybrid_grid_t *grid,
                           hybrid_params_t want)
{
    evaluation_metrics_t best, again;
    char err[256] = "";
    cr_assert_eq(hybrid_tune(h, v, grid, 2, &best, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(h->params.content_k, want.content_k, 1e-9);
    cr_assert_float_eq(h->params.content_floor, want.content_floor, 1e-9);
    cr_assert_float_eq(h->params.ease_share, want.ease_share, 1e-9);
    cr_assert_float_eq(best.ndcg10, 1.0, 1e-9, "the right blend finds every next video");
    //  The cached tuning path and the serving scorer agree.
    scorer_t s = hybrid_scorer(h);
    cr_assert_eq(evaluation_run(v, &s, 1, &again, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(again.ndcg10, best.ndcg10, 1e-12);
    cr_assert_float_eq(again.recall20, best.recall20, 1e-12);
    cr_assert_float_eq(again.coverage10, best.coverage10, 1e-12);
}

Test(hybrid, tuning_picks_the_better_blend)
{
    evaluation_split_t *v = s_validation();
    int32_t n = 40;
    scorer_t good = {&n, 40, s_next_score}, bad = {&n, 40, s_low_score};
    const float ks[] = {0, 1000}, floors[] = {0}, shares[] = {0, 1};
    hybrid_grid_t grid = {ks, 2, floors, 1, shares, 2};
    hybrid_t h;
    char err[256] = "";

    //  Content is right: a large content_k wins.
    cr_assert_eq(hybrid_init(&h, &bad, &good, NULL, NULL, err, sizeof err), 0, "%s", err);
    s_expect_tuned(&h, v, &grid, (hybrid_params_t){1000, 0, 0});
    //  ALS is right: content_k 0 (and floor 0) wins.
    cr_assert_eq(hybrid_init(&h, &good, &bad, NULL, NULL, err, sizeof err), 0, "%s", err);
    s_expect_tuned(&h, v, &grid, (hybrid_params_t){0, 0, 0});
    //  EASE is right: all the collaborative weight to EASE.
    cr_assert_eq(hybrid_init(&h, &bad, &bad, &good, NULL, err, sizeof err), 0, "%s", err);
    s_expect_tuned(&h, v, &grid, (hybrid_params_t){0, 0, 1});

    //  The bad blend really is worse (the test can fail).
    h.params = (hybrid_params_t){1000, 0, 0};
    scorer_t s = hybrid_scorer(&h);
    evaluation_metrics_t m;
    cr_assert_eq(evaluation_run(v, &s, 2, &m, err, sizeof err), 0, "%s", err);
    cr_assert_lt(m.ndcg10, 0.5);

    hybrid_grid_t empty = {ks, 0, floors, 1, shares, 1};
    cr_assert_eq(hybrid_tune(&h, v, &empty, 2, NULL, err, sizeof err), -1);
    evaluation_split_destroy(&v);
}
