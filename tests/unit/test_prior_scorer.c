/*  test_prior_scorer.c: the popularity prior on top of a scorer
    (prior_scorer.c): the prior's values, which scores it multiplies and
    which it leaves alone, beta 0 as the identity, and that a video nobody
    watched keeps its own score while a popular one overtakes it.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "content_model.h"
#include "item_neighbours.h"
#include "leak_check.h"
#include "prior_scorer.h"

TestSuite(prior_scorer, .fini = leak_check_fini, .timeout = 60);

#define N_FIXED 8

//  A scorer over a fixed score vector (the model is the vector); fail set
//  makes it report an allocation failure.
typedef struct {
    float s[N_FIXED];
    bool fail;
} s_fixed_t;

static int s_fixed_score(const void *model, const user_history_t *history, float *scores)
{
    (void)history; //  fixed whatever the history
    const s_fixed_t *f = model;
    if (f->fail)
        return -1;
    memcpy(scores, f->s, sizeof f->s);
    return 0;
}

Test(prior_scorer, fill_is_one_plus_count_to_the_beta)
{
    const float counts[] = {0, 1, 3, 7.5f, 1e-3f};
    float prior[5];
    prior_scorer_fill(counts, 5, 2.0f, prior);
    const float want2[] = {1, 4, 16, 72.25f, 1.002001f};
    for (int j = 0; j < 5; j++)
        cr_assert_float_eq(prior[j], want2[j], 1e-5 * want2[j], "beta 2, count %g: %g", counts[j],
                           prior[j]);
    prior_scorer_fill(counts, 5, 0.5f, prior);
    for (int j = 0; j < 5; j++)
        cr_assert_float_eq(prior[j], sqrt(1.0 + counts[j]), 1e-6, "beta 0.5, count %g", counts[j]);
    //  beta 0: every prior exactly 1, whatever the count.
    prior_scorer_fill(counts, 5, 0.0f, prior);
    for (int j = 0; j < 5; j++)
        cr_assert_eq(prior[j], 1.0f, "beta 0, count %g: %g", counts[j], prior[j]);
    //  The prior is never below 1 (the header's promise), also for a count
    //  outside the contract: a negative or NaN count is treated as 0.
    const float odd[] = {-4, NAN, 0};
    prior_scorer_fill(odd, 3, 3.0f, prior);
    for (int j = 0; j < 3; j++)
        cr_assert_eq(prior[j], 1.0f, "count %g: prior %g", odd[j], prior[j]);
    //  n = 0 writes nothing.
    prior[0] = 42;
    prior_scorer_fill(counts, 0, 2.0f, prior);
    cr_assert_eq(prior[0], 42);
}

Test(prior_scorer, multiplies_finite_positive_scores_only)
{
    s_fixed_t f = {.s = {2, -INFINITY, -3, 0, 5, NAN, INFINITY, 0.5f}};
    scorer_t inner = {.model = &f, .n_items = N_FIXED, .score = s_fixed_score};
    const float prior[N_FIXED] = {3, 3, 3, 3, 2, 3, 3, 1};
    prior_scorer_t ps = {.inner = inner, .prior = prior};
    scorer_t s = prior_scorer(&ps);
    cr_assert_eq(s.n_items, N_FIXED);
    cr_assert_eq(s.model, &ps, "the model pointer is the prior scorer itself");

    float scores[N_FIXED];
    user_history_t h = {0};
    cr_assert_eq(s.score(s.model, &h, scores), 0);
    cr_assert_eq(scores[0], 6.0f, "positive x prior: %g", scores[0]);
    cr_assert(isinf(scores[1]) && scores[1] < 0, "-INFINITY stays: %g", scores[1]);
    cr_assert_eq(scores[2], -3.0f, "negative untouched (not made more negative): %g", scores[2]);
    cr_assert_eq(scores[3], 0.0f, "zero untouched: %g", scores[3]);
    cr_assert_eq(scores[4], 10.0f, "per-video prior: %g", scores[4]);
    cr_assert(isnan(scores[5]), "NaN is not finite: untouched");
    cr_assert(isinf(scores[6]) && scores[6] > 0, "+INFINITY untouched: %g", scores[6]);
    cr_assert_eq(scores[7], 0.5f, "prior 1 keeps the score: %g", scores[7]);

    //  The inner scorer's failure is passed on.
    f.fail = true;
    cr_assert_eq(s.score(s.model, &h, scores), -1);
}

#define G(...) ((const char *const[]){__VA_ARGS__})

//  A real inner scorer: content neighbours over a tiny catalogue.
static item_neighbours_t *s_neighbours(void)
{
    content_item_t items[] = {
        {.title = "Space Rescue",
         .genres = G("SciFi"),
         .n_genres = 1,
         .tags = G("space"),
         .n_tags = 1},
        {.title = "Space Rescue Again",
         .genres = G("SciFi"),
         .n_genres = 1,
         .tags = G("space"),
         .n_tags = 1},
        {.title = "Space Station",
         .genres = G("SciFi"),
         .n_genres = 1,
         .tags = G("space"),
         .n_tags = 1},
        {.title = "Robot Uprising",
         .genres = G("SciFi"),
         .n_genres = 1,
         .tags = G("robots"),
         .n_tags = 1},
        {.title = "Kitchen Stories",
         .genres = G("Drama"),
         .n_genres = 1,
         .tags = G("food"),
         .n_tags = 1},
        {.title = "Bakery Nights",
         .genres = G("Drama"),
         .n_genres = 1,
         .tags = G("food"),
         .n_tags = 1},
    };
    char err[256] = "";
    item_neighbours_t *nb = content_model_train(items, 6, 5, 1, err, sizeof err);
    cr_assert(nb, "%s", err);
    return nb;
}

Test(prior_scorer, beta_zero_is_the_identity)
{
    item_neighbours_t *nb = s_neighbours();
    scorer_t inner = item_neighbours_scorer(nb);
    const float counts[6] = {10, 0, 3, 100, 0, 7};
    float prior[6];
    prior_scorer_fill(counts, 6, 0.0f, prior);
    prior_scorer_t ps = {.inner = inner, .prior = prior};
    scorer_t s = prior_scorer(&ps);

    const int32_t items[] = {0, 4, 3};
    const float values[] = {1.0f, 0.6f, -1.0f};
    for (int32_t len = 0; len <= 3; len++) {
        user_history_t h = {.items = items, .values = values, .len = len};
        float a[6], b[6];
        cr_assert_eq(inner.score(inner.model, &h, a), 0);
        cr_assert_eq(s.score(s.model, &h, b), 0);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "history of %d: beta 0 changed a score", len);
    }
    item_neighbours_destroy(&nb);
}

Test(prior_scorer, popular_video_overtakes_unwatched_one_only_with_beta)
{
    item_neighbours_t *nb = s_neighbours();
    scorer_t inner = item_neighbours_scorer(nb);
    //  Video 1 (never watched) is as similar to video 0 as video 2 is; with
    //  a prior, popular video 2 ranks first, and video 1 keeps its plain
    //  similarity (prior 1), so it is still scored, not dropped.
    const float counts[6] = {5, 0, 8, 1, 0, 0};
    float prior[6];
    prior_scorer_fill(counts, 6, 1.0f, prior);
    prior_scorer_t ps = {.inner = inner, .prior = prior};
    scorer_t s = prior_scorer(&ps);
    const int32_t items[] = {0};
    const float values[] = {1.0f};
    user_history_t h = {.items = items, .values = values, .len = 1};
    float plain[6], weighted[6];
    cr_assert_eq(inner.score(inner.model, &h, plain), 0);
    cr_assert_eq(s.score(s.model, &h, weighted), 0);
    cr_assert(isfinite(plain[1]) && plain[1] > 0, "video 1 is linked to video 0");
    cr_assert_geq(plain[1], plain[2], "without the prior, lower index first on a tie");
    cr_assert_eq(weighted[1], plain[1], "unwatched video keeps its score");
    cr_assert_float_eq(weighted[2], plain[2] * 9.0f, 1e-6, "x (1 + 8)^1");
    cr_assert_gt(weighted[2], weighted[1], "the popular one now ranks higher");
    for (int j = 4; j < 6; j++)
        cr_assert(isinf(weighted[j]) && weighted[j] < 0, "unlinked video %d stays -INFINITY", j);
    item_neighbours_destroy(&nb);
}
