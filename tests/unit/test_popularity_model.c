/*  test_popularity_model.c: decayed, completion-weighted popularity
    (popularity_model.c), global and per user segment.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "leak_check.h"
#include "popularity_model.h"
#include "topn.h"

TestSuite(popularity_model, .fini = leak_check_fini, .timeout = 60);

#define DAY 86400
#define NOW 1700000000LL
#define MAXE 256

//  Events collected by the tests.
typedef struct {
    int32_t users[MAXE], items[MAXE];
    float values[MAXE];
    int64_t times[MAXE];
    size_t n;
} s_events_t;

static void s_add(s_events_t *ev, int32_t user, int32_t item, float value, int64_t time)
{
    cr_assert_lt(ev->n, MAXE);
    ev->users[ev->n] = user;
    ev->items[ev->n] = item;
    ev->values[ev->n] = value;
    ev->times[ev->n] = time;
    ev->n++;
}

Test(popularity_model, an_old_hit_decays_below_a_fresh_video)
{
    s_events_t ev = {0};
    for (int u = 0; u < 10; u++)
        s_add(&ev, u, 0, 1.0f, NOW - 100 * DAY); //  10 full views, 100 days ago
    for (int u = 0; u < 3; u++)
        s_add(&ev, u, 1, 1.0f, NOW);   //  3 full views today
    s_add(&ev, 3, 1, 0.5f, NOW);       //  half a view counts half
    s_add(&ev, 4, 1, -1.0f, NOW);      //  a dislike is ignored
    s_add(&ev, 5, 2, 1.0f, NOW + DAY); //  after `now`: age 0

    popularity_params_t p = {.half_life_s = 7.0 * DAY, .now = NOW, .prior = 0};
    char err[256] = "";
    popularity_model_t *m = popularity_model_train(ev.users, ev.items, ev.values, ev.times, ev.n,
                                                   10, 3, NULL, NULL, &p, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_assert_eq(m->n_segments, 0);
    cr_assert_float_eq(m->global[0], 10.0 * pow(2.0, -100.0 / 7.0), 1e-7);
    cr_assert_float_eq(m->global[1], 3.5, 1e-6);
    cr_assert_float_eq(m->global[2], 1.0, 1e-6);
    scorer_t s = popularity_scorer(m);
    float scores[3];
    user_history_t none = {NULL, NULL, 0};
    cr_assert_eq(s.score(s.model, &none, scores), 0);
    int32_t top[3];
    cr_assert_eq(topn_select(scores, 3, NULL, top, 3), 3);
    cr_assert_eq(top[0], 1);
    cr_assert_eq(top[2], 0, "the old hit is last");
    popularity_model_destroy(&m);

    //  With a long half-life the old hit is back on top; now = 0 means
    //  the latest event (NOW + DAY).
    p = (popularity_params_t){.half_life_s = 1e12, .now = 0, .prior = 0};
    m = popularity_model_train(ev.users, ev.items, ev.values, ev.times, ev.n, 10, 3, NULL, NULL, &p,
                               err, sizeof err);
    cr_assert(m, "%s", err);
    cr_assert_gt(m->global[0], m->global[1]);
    cr_assert_float_eq(m->global[0], 10.0, 1e-4);
    popularity_model_destroy(&m);
    cr_assert_null(m);
    popularity_model_destroy(&m);
}

Test(popularity_model, segment_list_is_what_the_segment_watches)
{
    //  Videos: 0 Comedy, 1 Comedy, 2 Drama, 3 Drama+Comedy, 4 no genre.
    const char *const g0[] = {"Comedy"}, *const g2[] = {"Drama"},
                      *const g3[] = {"Drama", "Comedy", "Drama"},
                      *const g4[] = {"(no genres listed)"};
    const char *const *genres[] = {g0, g0, g2, g3, g4};
    const int32_t n_genres[] = {1, 1, 1, 3, 1};
    s_events_t ev = {0};
    //  Users 0..5 are drama fans: all watch 2 and 3 (2 is the global hit).
    for (int u = 0; u < 6; u++) {
        s_add(&ev, u, 2, 1.0f, NOW);
        s_add(&ev, u, 3, 1.0f, NOW);
    }
    //  Users 6..8 are comedy fans: 0 and 1, and user 6 video 4 too.
    for (int u = 6; u < 9; u++) {
        s_add(&ev, u, 0, 1.0f, NOW);
        s_add(&ev, u, 1, 1.0f, NOW);
    }
    s_add(&ev, 6, 4, 1.0f, NOW);
    //  User 9 has only a dislike on a drama: no segment.
    s_add(&ev, 9, 2, -1.0f, NOW);

    popularity_params_t p = {.half_life_s = 30.0 * DAY, .now = NOW, .prior = 2};
    char err[256] = "";
    popularity_model_t *m = popularity_model_train(ev.users, ev.items, ev.values, ev.times, ev.n,
                                                   10, 5, genres, n_genres, &p, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_assert_eq(m->n_segments, 2);
    cr_assert_str_eq(m->segment_names[0], "Comedy");
    cr_assert_str_eq(m->segment_names[1], "Drama");
    cr_assert_eq(m->segment_users[0], 3);
    cr_assert_eq(m->segment_users[1], 6);
    cr_assert_eq(m->item_segment_ptr[4] - m->item_segment_ptr[3], 2, "duplicates dropped");
    cr_assert_eq(m->item_segment_ptr[5] - m->item_segment_ptr[4], 0);

    //  Segment score: (pop_s + prior * global share) / (mass_s + prior).
    //  Global: 0:3 1:3 2:6 3:6 4:1, total 19. Comedy: 0:3 1:3 4:1, mass 7.
    cr_assert_float_eq(m->segment_scores[0 * 5 + 0], (3 + 2 * 3.0 / 19) / 9, 1e-6);
    cr_assert_float_eq(m->segment_scores[0 * 5 + 2], (0 + 2 * 6.0 / 19) / 9, 1e-6);
    cr_assert_float_eq(m->segment_scores[1 * 5 + 4], (0 + 2 * 1.0 / 19) / 14, 1e-6);

    //  A comedy history gets the comedy list, which differs from global.
    scorer_t s = popularity_scorer(m);
    scorer_t g = popularity_global_scorer(m);
    int32_t h_items[] = {1, 3};
    float h_values[] = {1.0f, 0.5f}; //  Comedy 1.5, Drama 0.5
    user_history_t comedy = {h_items, h_values, 2};
    cr_assert_eq(popularity_model_segment(m, &comedy), 0);
    float seg[5], glob[5];
    cr_assert_eq(s.score(s.model, &comedy, seg), 0);
    cr_assert_eq(g.score(g.model, &comedy, glob), 0);
    int32_t top_seg[2], top_glob[2];
    cr_assert_eq(topn_select(seg, 5, NULL, top_seg, 2), 2);
    cr_assert_eq(topn_select(glob, 5, NULL, top_glob, 2), 2);
    cr_assert_eq(top_seg[0], 0);
    cr_assert_eq(top_seg[1], 1);
    cr_assert_eq(top_glob[0], 2);
    cr_assert_eq(top_glob[1], 3);

    //  Ties go to the segment that sorts first; no positive mass, no segment.
    int32_t tie_items[] = {2, 0};
    float tie_values[] = {1.0f, 1.0f};
    user_history_t tie = {tie_items, tie_values, 2};
    cr_assert_eq(popularity_model_segment(m, &tie), 0);
    float neg_values[] = {-1.0f, -1.0f};
    user_history_t neg = {tie_items, neg_values, 2};
    cr_assert_eq(popularity_model_segment(m, &neg), -1);
    int32_t out_items[] = {99, 4};
    user_history_t outside = {out_items, tie_values, 2};
    cr_assert_eq(popularity_model_segment(m, &outside), -1, "unknown and genre-less videos");
    cr_assert_eq(s.score(s.model, &neg, seg), 0);
    cr_assert_eq(memcmp(seg, m->global, sizeof seg), 0, "no segment: the global list");
    popularity_model_destroy(&m);
}

Test(popularity_model, bad_input_is_refused)
{
    int32_t users[] = {0}, items[] = {7};
    float values[] = {1};
    int64_t times[] = {NOW};
    char err[256] = "";
    cr_assert_null(popularity_model_train(users, items, values, times, 1, 1, 5, NULL, NULL, NULL,
                                          err, sizeof err));
    cr_assert(strstr(err, "out of range"), "%s", err);
    popularity_params_t p = popularity_params_default();
    p.half_life_s = 0;
    items[0] = 1;
    cr_assert_null(popularity_model_train(users, items, values, times, 1, 1, 5, NULL, NULL, &p, err,
                                          sizeof err));
    popularity_model_t *m = popularity_model_train(users, items, values, times, 1, 1, 5, NULL, NULL,
                                                   NULL, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_assert_float_eq(m->global[1], 1.0, 1e-6);
    popularity_model_destroy(&m);
}
