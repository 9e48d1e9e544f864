/*  test_content_model.c: TF-IDF content model (content_model.c): the
    terms of a video, exact cosine similarities on a hand-built catalogue,
    recommending a video nobody has watched, and thread independence.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content_model.h"
#include "item_neighbours.h"
#include "leak_check.h"
#include "topn.h"

TestSuite(content_model, .fini = leak_check_fini, .timeout = 60);

#define G(...) ((const char *const[]){__VA_ARGS__})

Test(content_model, terms_of_a_movielens_title)
{
    content_item_t item = {.title = "American President, The (1995)",
                           .genres = G("Comedy", "Drama", "(no genres listed)"),
                           .n_genres = 3,
                           .tags = G("  Funny   Politics ", "Pixar"),
                           .n_tags = 2};
    char buf[512];
    int n = content_model_terms(&item, buf, sizeof buf);
    const char *want[] = {"g:comedy",   "g:drama",     "t:funny politics", "t:pixar",
                          "w:american", "w:president", "y:1990s"};
    cr_assert_eq(n, 7, "got %d terms", n);
    const char *p = buf;
    for (int i = 0; i < n; i++, p += strlen(p) + 1)
        cr_assert_str_eq(p, want[i], "term %d", i);
    //  Punctuation splits, stop words and 1-byte words go, UTF-8 stays whole,
    //  a title without a year has no decade.
    content_item_t other = {.title = "Amélie: a Wall-E & the 2 Towers"};
    n = content_model_terms(&other, buf, sizeof buf);
    const char *want2[] = {"w:amélie", "w:wall", "w:towers"};
    cr_assert_eq(n, 3, "got %d terms", n);
    p = buf;
    for (int i = 0; i < n; i++, p += strlen(p) + 1)
        cr_assert_str_eq(p, want2[i], "term %d", i);
    cr_assert_eq(content_model_terms(&item, buf, 10), -1, "buffer too small");
}

Test(content_model, exact_cosine_on_a_tiny_catalogue)
{
    //  Genres only: g:x in A and B (df 2), g:y, g:z, g:w once each, N = 3.
    content_item_t items[] = {
        {.genres = G("X", "Y"), .n_genres = 2},
        {.genres = G("X", "Z"), .n_genres = 2},
        {.genres = G("W"), .n_genres = 1},
    };
    char err[256] = "";
    item_neighbours_t *nb = content_model_train(items, 3, 2, 1, err, sizeof err);
    cr_assert(nb, "%s", err);
    double a = log(3.0 / 2.0), b = log(3.0);
    double cos_ab = a * a / (a * a + b * b);
    cr_assert_eq(nb->idx[0 * 2 + 0], 1);
    cr_assert_float_eq(nb->sim[0 * 2 + 0], cos_ab, 1e-6);
    cr_assert_eq(nb->idx[0 * 2 + 1], -1, "C shares nothing with A");
    cr_assert_eq(nb->idx[1 * 2 + 0], 0);
    cr_assert_float_eq(nb->sim[1 * 2 + 0], cos_ab, 1e-6);
    cr_assert_eq(nb->idx[2 * 2 + 0], -1);
    cr_assert_eq(nb->idx[2 * 2 + 1], -1);
    item_neighbours_destroy(&nb);
}

//  A small MovieLens-like catalogue; video 1 (Toy Story 2) has no
//  interactions at all.
static const content_item_t s_catalogue[] = {
    {"Toy Story (1995)", G("Adventure", "Animation", "Children", "Comedy"), 4, G("pixar", "fun"),
     2},
    {"Toy Story 2 (1999)", G("Adventure", "Animation", "Children", "Comedy"), 4, G("pixar"), 1},
    {"Heat (1995)", G("Action", "Crime", "Thriller"), 3, NULL, 0},
    {"Casino (1995)", G("Crime", "Drama"), 2, G("mafia"), 1},
    {"Sense and Sensibility (1995)", G("Drama", "Romance"), 2, NULL, 0},
    {"Jumanji (1995)", G("Adventure", "Children", "Fantasy"), 3, G("fun"), 1},
    {"GoodFellas (1990)", G("Crime", "Drama"), 2, G("mafia"), 1},
    {"Grumpier Old Men (1995)", G("Comedy", "Romance"), 2, NULL, 0},
};
#define S_N (int32_t)(sizeof s_catalogue / sizeof *s_catalogue)

Test(content_model, recommends_a_video_nobody_watched)
{
    char err[256] = "";
    item_neighbours_t *nb = content_model_train(s_catalogue, S_N, 3, 2, err, sizeof err);
    cr_assert(nb, "%s", err);
    //  A user who watched Toy Story: the top recommendation is Toy Story 2,
    //  which has no interactions (only content links it).
    int32_t hist_items[] = {0};
    float hist_values[] = {1.0f};
    user_history_t history = {hist_items, hist_values, 1};
    scorer_t scorer = item_neighbours_scorer(nb);
    float scores[S_N];
    cr_assert_eq(scorer.score(scorer.model, &history, scores), 0);
    bool skip[S_N] = {[0] = true};
    int32_t top[3];
    cr_assert_geq(topn_select(scores, S_N, skip, top, 3), 1);
    cr_assert_eq(top[0], 1, "top is %d", top[0]);
    //  A mafia fan: GoodFellas <-> Casino, and nothing with a cartoon.
    hist_items[0] = 3;
    cr_assert_eq(scorer.score(scorer.model, &history, scores), 0);
    skip[0] = false;
    skip[3] = true;
    cr_assert_eq(topn_select(scores, S_N, skip, top, 1), 1);
    cr_assert_eq(top[0], 6);
    cr_assert(isinf(scores[1]) && scores[1] < 0, "no link from Casino to Toy Story 2");
    item_neighbours_destroy(&nb);
}

//  The first videos have no terms at all: nothing has been collected yet when
//  their (empty) term lists are sorted. This was a qsort (NULL, 0, ...), which
//  the UBSan build (-fno-sanitize-recover) aborts on.
Test(content_model, first_videos_without_terms)
{
    content_item_t items[] = {
        {0},
        {.title = "a & b"}, //  one-byte words only
        {.genres = G("(no genres listed)"), .n_genres = 1},
        {.genres = G("Crime", "Drama"), .n_genres = 2},
        {.genres = G("Crime"), .n_genres = 1},
    };
    char err[256] = "";
    item_neighbours_t *nb = content_model_train(items, 5, 2, 1, err, sizeof err);
    cr_assert(nb, "%s", err);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(nb->idx[i * 2], -1, "video %d has no terms, so no neighbours", i);
    cr_assert_eq(nb->idx[3 * 2], 4);
    cr_assert_eq(nb->idx[4 * 2], 3);
    item_neighbours_destroy(&nb);
}

//  A deterministic pseudo-random catalogue.
static uint32_t s_lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

Test(content_model, same_result_for_any_thread_count_and_symmetric)
{
    enum { N = 700, K = 20 };
    static const char *genres[] = {"Action", "Comedy",   "Drama",   "Horror", "Romance",
                                   "Sci-Fi", "Thriller", "Western", "Crime",  "Children"};
    static char tags[50][16];
    static char titles[N][64];
    static const char *tag_ptrs[50];
    const char *words[] = {"night", "love", "city", "dark", "star", "man", "last", "river"};
    const char *item_genres[N][3];
    const char *item_tags[N][4];
    content_item_t items[N];
    for (int t = 0; t < 50; t++) {
        snprintf(tags[t], sizeof tags[t], "tag %d", t);
        tag_ptrs[t] = tags[t];
    }
    uint32_t st = 7;
    for (int i = 0; i < N; i++) {
        int ng = 1 + (int)(s_lcg(&st) % 3), nt = (int)(s_lcg(&st) % 5);
        for (int g = 0; g < ng; g++)
            item_genres[i][g] = genres[s_lcg(&st) % 10];
        for (int t = 0; t < nt; t++)
            item_tags[i][t] = tag_ptrs[s_lcg(&st) % 50];
        snprintf(titles[i], sizeof titles[i], "The %s %s (%d)", words[s_lcg(&st) % 8],
                 words[s_lcg(&st) % 8], 1950 + (int)(s_lcg(&st) % 70));
        items[i] = (content_item_t){titles[i], item_genres[i], ng, item_tags[i], nt};
    }
    items[5] = (content_item_t){0}; //  no terms at all: no neighbours
    char err[256] = "";
    item_neighbours_t *one = content_model_train(items, N, K, 1, err, sizeof err);
    item_neighbours_t *four = content_model_train(items, N, K, 4, err, sizeof err);
    cr_assert(one && four, "%s", err);
    cr_assert_eq(memcmp(one->idx, four->idx, sizeof(int32_t) * N * K), 0);
    cr_assert_eq(memcmp(one->sim, four->sim, sizeof(float) * N * K), 0);
    for (int c = 0; c < K; c++)
        cr_assert_eq(one->idx[5 * K + c], -1);
    int checked = 0;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) {
            int32_t j = one->idx[i * K + c];
            if (j < 0)
                continue;
            cr_assert_neq(j, i, "an item is not its own neighbour");
            cr_assert(one->sim[i * K + c] > 0 && one->sim[i * K + c] <= 1.0001f);
            if (c > 0)
                cr_assert(one->sim[i * K + c] <= one->sim[i * K + c - 1], "best first");
            for (int d = 0; d < K; d++)
                if (one->idx[j * K + d] == i) {
                    cr_assert_float_eq(one->sim[j * K + d], one->sim[i * K + c], 1e-5);
                    checked++;
                }
        }
    cr_assert_gt(checked, N, "symmetry was checked on enough pairs");
    item_neighbours_destroy(&one);
    item_neighbours_destroy(&four);
}

//  Reference: TF-IDF cosine by brute force, from content_model_terms() and
//  the weights documented in content_model.h.
static double s_field_weight(const char *term)
{
    return term[0] == 'w' || term[0] == 'y' ? 0.5 : 1.0;
}

Test(content_model, pruned_search_matches_brute_force)
{
    enum { N = 600, K = 5, T = 12 };
    static char tags[40][16], titles[N][48];
    const char *item_genres[N][2], *item_tags[N][3];
    content_item_t items[N];
    for (int t = 0; t < 40; t++)
        snprintf(tags[t], sizeof tags[t], "rare %d", t);
    uint32_t st = 11;
    for (int i = 0; i < N; i++) {
        //  Nearly everything is a drama (a long, low-weight posting list);
        //  a few rare tags and words make the short ones.
        int ng = 0, nt = (int)(s_lcg(&st) % 3);
        if (s_lcg(&st) % 10)
            item_genres[i][ng++] = "Drama";
        if (s_lcg(&st) % 4 == 0)
            item_genres[i][ng++] = "Comedy";
        for (int t = 0; t < nt; t++)
            item_tags[i][t] = tags[s_lcg(&st) % 40];
        snprintf(titles[i], sizeof titles[i], "w%u (19%02u)", s_lcg(&st) % 300, s_lcg(&st) % 100);
        items[i] = (content_item_t){titles[i], item_genres[i], ng, item_tags[i], nt};
    }
    //  Sparse vectors, by term string.
    static char terms[N][T][40];
    static double w[N][T];
    int nterms[N];
    for (int i = 0; i < N; i++) {
        char buf[512];
        int n = content_model_terms(&items[i], buf, sizeof buf);
        cr_assert(n >= 0 && n <= T);
        nterms[i] = 0;
        for (const char *p = buf; n-- > 0; p += strlen(p) + 1) {
            int at = 0;
            while (at < nterms[i] && strcmp(terms[i][at], p) != 0)
                at++;
            if (at == nterms[i]) {
                cr_assert_lt(strlen(p), sizeof terms[i][at]);
                memcpy(terms[i][at], p, strlen(p) + 1);
                w[i][at] = 0;
                nterms[i]++;
            }
            w[i][at] += 1; //  tf for now
        }
    }
    for (int i = 0; i < N; i++) {
        double norm = 0;
        for (int a = 0; a < nterms[i]; a++) {
            int df = 0;
            for (int j = 0; j < N; j++)
                for (int b = 0; b < nterms[j]; b++)
                    df += strcmp(terms[j][b], terms[i][a]) == 0;
            w[i][a] = s_field_weight(terms[i][a]) * (1 + log(w[i][a])) * log((double)N / df);
            norm += w[i][a] * w[i][a];
        }
        for (int a = 0; a < nterms[i]; a++)
            w[i][a] = norm > 0 ? w[i][a] / sqrt(norm) : 0;
    }
    char err[256] = "";
    item_neighbours_t *nb = content_model_train(items, N, K, 2, err, sizeof err);
    cr_assert(nb, "%s", err);
    static double sim[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            sim[j] = 0;
            for (int a = 0; a < nterms[i] && j != i; a++)
                for (int b = 0; b < nterms[j]; b++)
                    if (strcmp(terms[i][a], terms[j][b]) == 0)
                        sim[j] += w[i][a] * w[j][b];
        }
        //  The row's similarities are the K largest positive ones, in order,
        //  and each neighbour's stored similarity is its true one.
        for (int c = 0; c < K; c++) {
            double best = 0;
            for (int j = 0; j < N; j++)
                if (sim[j] > best)
                    best = sim[j];
            int32_t got = nb->idx[i * K + c];
            if (best <= 1e-9) {
                cr_assert_eq(got, -1, "row %d slot %d", i, c);
                continue;
            }
            cr_assert_geq(got, 0, "row %d slot %d", i, c);
            cr_assert_float_eq(nb->sim[i * K + c], best, 1e-5, "row %d slot %d", i, c);
            cr_assert_float_eq(sim[got], best, 1e-5, "row %d slot %d", i, c);
            sim[got] = -1;
        }
    }
    item_neighbours_destroy(&nb);
}

Test(content_model, bad_arguments)
{
    char err[256] = "";
    cr_assert_null(content_model_train(s_catalogue, S_N, 0, 1, err, sizeof err));
    cr_assert(strstr(err, "bad arguments"), "%s", err);
    cr_assert_null(content_model_train(NULL, 3, 5, 1, err, sizeof err));
    item_neighbours_t *empty = content_model_train(NULL, 0, 5, 1, err, sizeof err);
    cr_assert(empty, "an empty catalogue is not an error: %s", err);
    cr_assert_eq(empty->n_items, 0);
    item_neighbours_destroy(&empty);
}
