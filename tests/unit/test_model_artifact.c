/*  test_model_artifact.c: models <-> artifact files (model_artifact.c).

    Real models, trained by the real trainers on a tiny hand-made data set
    (two taste groups), are written, reopened and must score exactly as
    the in-memory models do; every kind of bad file (wrong registry
    checksum, a flipped byte, a missing section, out-of-range indexes in a
    hand-built but validly checksummed file) is refused.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "artifact.h"
#include "content_model.h"
#include "feedback_matrix.h"
#include "item_knn.h"
#include "leak_check.h"
#include "model_artifact.h"
#include "tmp_dir.h"

//  ---- the data set ------------------------------------------------------------

//  Videos 0..4 comedies, 5..9 horror films; users 0..5 watch comedies,
//  users 6..11 horror (one crossover each, one dislike).
#define N_USERS 12
#define N_VIDEOS 10
#define N_EVENTS 46

static const char *const s_video_ids[N_VIDEOS] = {"c-0", "c-1", "c-2", "c-3", "c-4",
                                                  "h-0", "h-1", "h-2", "h-3", "h-4"};

typedef struct {
    int32_t user, video;
    float value;
} s_event_t;

static s_event_t s_events[N_EVENTS];

static void s_make_events(void)
{
    int e = 0;
    for (int32_t u = 0; u < N_USERS; u++) {
        int32_t base = u < 6 ? 0 : 5;
        //  Three or four videos of the user's group, varying by user.
        int n = 3 + u % 2;
        for (int i = 0; i < n; i++)
            s_events[e++] =
                (s_event_t){u, base + (u + i * 2) % 5, 0.5f + 0.1f * (float)((u + i) % 5)};
    }
    //  Crossovers and a dislike.
    s_events[e++] = (s_event_t){0, 5, 0.3f};
    s_events[e++] = (s_event_t){7, 1, 0.4f};
    s_events[e++] = (s_event_t){3, 9, -1.0f};
    cr_assert_leq(e, N_EVENTS);
    for (; e < N_EVENTS; e++) //  pad with repeats of group favourites
        s_events[e] = (s_event_t){e % N_USERS, (e % N_USERS < 6 ? 0 : 5) + e % 2, 0.2f};
}

static const char *const s_comedy[] = {"Comedy"};
static const char *const s_horror[] = {"Horror"};
static const char *const s_funny[] = {"funny"};
static const char *const s_scary[] = {"scary"};

static const char *const *s_genres_of(int32_t v)
{
    return v < 5 ? s_comedy : s_horror;
}

//  ---- the models --------------------------------------------------------------

static char s_dir[64];
static feedback_matrix_t *s_matrix;
static als_model_t *s_als;
static item_neighbours_t *s_content;
static item_neighbours_t *s_knn;
static ease_model_t *s_ease;
static popularity_model_t *s_pop;
static float s_prior[N_VIDEOS];
static prior_scorer_t s_content_ps;
static hybrid_params_t s_hybrid_params = {
    .content_k = 3, .content_floor = 0.2f, .ease_share = 0.4f};

static void s_setup(void)
{
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-model-artifact"), 0, "tmp dir: %s",
                 strerror(errno));
    s_make_events();
    int32_t users[N_EVENTS], items[N_EVENTS];
    float values[N_EVENTS];
    int64_t times[N_EVENTS];
    for (int e = 0; e < N_EVENTS; e++) {
        users[e] = s_events[e].user;
        items[e] = s_events[e].video;
        values[e] = s_events[e].value;
        times[e] = 1700000000 + e * 3600;
    }
    char err[256] = "";
    s_matrix = feedback_matrix_new(N_USERS, N_VIDEOS, users, items, values, N_EVENTS);
    cr_assert(s_matrix);

    als_params_t p = als_params_default();
    p.factors = 4;
    p.iterations = 5;
    p.regularization = 0.5f;
    p.threads = 1;
    s_als = als_train(s_matrix, &p, NULL, NULL, err, sizeof err);
    cr_assert(s_als, "als: %s", err);

    content_item_t citems[N_VIDEOS];
    static const char *const titles[N_VIDEOS] = {
        "Funny Business", "Funny Business Two", "Laugh Factory", "Slapstick Summer",
        "Laugh Riot",     "Dark House",         "Dark House II", "Night Terror",
        "Scream Night",   "The Haunting"};
    for (int32_t v = 0; v < N_VIDEOS; v++)
        citems[v] = (content_item_t){.title = titles[v],
                                     .genres = s_genres_of(v),
                                     .n_genres = 1,
                                     .tags = v < 5 ? s_funny : s_scary,
                                     .n_tags = 1};
    s_content = content_model_train(citems, N_VIDEOS, 4, 1, err, sizeof err);
    cr_assert(s_content, "content: %s", err);
    s_knn = item_knn_train(s_matrix, 3, 1, err, sizeof err);
    cr_assert(s_knn, "item_knn: %s", err);
    s_ease = ease_train(s_matrix, 2.0f, 6, err, sizeof err); //  a subset: 6 of 10 videos
    cr_assert(s_ease, "ease: %s", err);
    cr_assert_eq(s_ease->n_sub, 6);

    const char *const *genres[N_VIDEOS];
    int32_t n_genres[N_VIDEOS];
    for (int32_t v = 0; v < N_VIDEOS; v++) {
        genres[v] = s_genres_of(v);
        n_genres[v] = 1;
    }
    popularity_params_t pp = popularity_params_default();
    pp.prior = 2;
    s_pop = popularity_model_train(users, items, values, times, N_EVENTS, N_USERS, N_VIDEOS, genres,
                                   n_genres, &pp, err, sizeof err);
    cr_assert(s_pop, "popularity: %s", err);
    cr_assert_eq(s_pop->n_segments, 2);

    prior_scorer_fill(s_pop->global, N_VIDEOS, 1.0f, s_prior);
    s_content_ps = (prior_scorer_t){.inner = item_neighbours_scorer(s_content), .prior = s_prior};
}

static void s_teardown(void)
{
    popularity_model_destroy(&s_pop);
    ease_model_destroy(&s_ease);
    item_neighbours_destroy(&s_knn);
    item_neighbours_destroy(&s_content);
    als_model_destroy(&s_als);
    feedback_matrix_destroy(&s_matrix);
    tmp_dir_remove(s_dir);
    leak_check_fini();
}

TestSuite(model_artifact, .init = s_setup, .fini = s_teardown, .timeout = 60);

static const char *s_path(const char *name)
{
    static char path[4][128];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", s_dir, name);
    return p;
}

//  Every part, for any type (the writer takes what the type needs).
static model_artifact_parts_t s_parts(const char *type)
{
    return (model_artifact_parts_t){.model_type = type,
                                    .video_ids = s_video_ids,
                                    .n_videos = N_VIDEOS,
                                    .als = s_als,
                                    .neighbours = strcmp(type, "item_knn") == 0 ? s_knn : s_content,
                                    .ease = s_ease,
                                    .popularity = s_pop,
                                    .content_prior = s_prior,
                                    .hybrid = &s_hybrid_params,
                                    .meta_json = "{\"model_type\":\"test\",\"factors\":4}"};
}

//  The in-memory scorer of a type; *hyb is storage for the hybrid.
static scorer_t s_memory_scorer(const char *type, hybrid_t *hyb, bool hybrid_with_ease)
{
    if (strcmp(type, "collaborative") == 0)
        return als_scorer(s_als);
    if (strcmp(type, "content") == 0)
        return prior_scorer(&s_content_ps);
    if (strcmp(type, "item_knn") == 0)
        return item_neighbours_scorer(s_knn);
    if (strcmp(type, "ease") == 0)
        return ease_scorer(s_ease);
    if (strcmp(type, "popularity") == 0)
        return popularity_scorer(s_pop);
    cr_assert_str_eq(type, "hybrid");
    scorer_t a = als_scorer(s_als), c = prior_scorer(&s_content_ps), e = ease_scorer(s_ease);
    char err[256] = "";
    cr_assert_eq(
        hybrid_init(hyb, &a, &c, hybrid_with_ease ? &e : NULL, &s_hybrid_params, err, sizeof err),
        0, "%s", err);
    return hybrid_scorer(hyb);
}

//  Histories: empty, one comedy, a comedy fan with a dislike, a horror fan,
//  a mixed one.
typedef struct {
    int32_t items[4];
    float values[4];
    int32_t len;
} s_history_t;

static const s_history_t s_histories[] = {
    {{0}, {0}, 0},
    {{1}, {1.0f}, 1},
    {{0, 2, 9}, {0.9f, 0.6f, -1.0f}, 3},
    {{5, 6, 8}, {1.0f, 0.7f, 0.4f}, 3},
    {{3, 7, 4, 6}, {0.5f, 0.5f, 1.0f, 0.2f}, 4},
};

static bool s_same(float a, float b)
{
    if (!isfinite(a) || !isfinite(b))
        return (isnan(a) && isnan(b)) || a == b;
    return fabsf(a - b) <= 1e-6f * fmaxf(1.0f, fabsf(a));
}

//  The bundle scores every history as the in-memory model does; returns
//  how many scores were finite (so a test can tell it compared something).
static int s_assert_same_scores(scorer_t mem, scorer_t file, const char *type)
{
    cr_assert_eq(file.n_items, N_VIDEOS, "%s: scorer over %d videos", type, file.n_items);
    cr_assert_eq(mem.n_items, N_VIDEOS);
    int finite = 0;
    for (size_t i = 0; i < sizeof s_histories / sizeof *s_histories; i++) {
        const s_history_t *sh = &s_histories[i];
        user_history_t h = {.items = sh->items, .values = sh->values, .len = sh->len};
        float a[N_VIDEOS], b[N_VIDEOS];
        cr_assert_eq(mem.score(mem.model, &h, a), 0);
        cr_assert_eq(file.score(file.model, &h, b), 0);
        for (int32_t v = 0; v < N_VIDEOS; v++) {
            cr_assert(s_same(a[v], b[v]), "%s, history %zu, video %d: memory %.9g, file %.9g", type,
                      i, v, a[v], b[v]);
            finite += isfinite(a[v]) && a[v] != 0;
        }
    }
    return finite;
}

//  Writes the type, opens it with the checksum the writer reported, and
//  checks everything the bundle says about itself.
static void s_round_trip(const char *type, bool hybrid_with_ease)
{
    model_artifact_parts_t parts = s_parts(type);
    if (!hybrid_with_ease)
        parts.ease = NULL;
    char checksum[65] = "", err[512] = "";
    const char *path = s_path(type);
    cr_assert_eq(model_artifact_write(&parts, path, checksum, err, sizeof err), 0, "%s: %s", type,
                 err);
    cr_assert_eq(strlen(checksum), 64);
    model_bundle_t *b = model_bundle_open(path, checksum, err, sizeof err);
    cr_assert(b, "%s: %s", type, err);
    cr_assert_str_eq(model_bundle_type(b), type);
    cr_assert_str_eq(model_bundle_checksum(b), checksum);
    cr_assert_str_eq(model_bundle_meta(b), parts.meta_json);
    cr_assert_eq(model_bundle_videos(b), N_VIDEOS);
    for (int32_t v = 0; v < N_VIDEOS; v++) {
        cr_assert_str_eq(model_bundle_video_id(b, v), s_video_ids[v]);
        cr_assert_eq(model_bundle_video_index(b, s_video_ids[v]), v, "%s", s_video_ids[v]);
    }
    cr_assert_null(model_bundle_video_id(b, -1));
    cr_assert_null(model_bundle_video_id(b, N_VIDEOS));
    cr_assert_eq(model_bundle_video_index(b, "no-such-video"), -1);
    cr_assert_eq(model_bundle_video_index(b, ""), -1);

    hybrid_t hyb;
    scorer_t mem = s_memory_scorer(type, &hyb, hybrid_with_ease);
    int finite = s_assert_same_scores(mem, model_bundle_scorer(b), type);
    cr_assert_gt(finite, 5, "%s: the comparison saw real scores", type);

    //  The blend of a hybrid bundle, copied out and re-weighted, scores like
    //  an in-memory hybrid with the same constants; the bundle's own scorer
    //  keeps its trained blend. Other types have no blend.
    hybrid_t copy;
    if (strcmp(type, "hybrid") == 0) {
        cr_assert_eq(model_bundle_hybrid(b, &copy), 0);
        cr_assert_float_eq(copy.params.content_k, s_hybrid_params.content_k, 1e-6);
        hybrid_params_t other = {.content_k = 0, .content_floor = 1, .ease_share = 0};
        cr_assert_eq(hybrid_set_params(&copy, &other), 0);
        cr_assert_eq(hybrid_set_params(&hyb, &other), 0);
        float scratch[N_VIDEOS];
        copy.scratch = scratch;
        s_assert_same_scores(hybrid_scorer(&hyb), hybrid_scorer(&copy), "re-blended hybrid");
        //  Content only now: the re-blended scores are not the trained ones.
        const s_history_t *sh = &s_histories[4];
        user_history_t h = {.items = sh->items, .values = sh->values, .len = sh->len};
        float trained[N_VIDEOS], reblended[N_VIDEOS];
        scorer_t own = model_bundle_scorer(b), re = hybrid_scorer(&copy);
        cr_assert_eq(own.score(own.model, &h, trained), 0);
        cr_assert_eq(re.score(re.model, &h, reblended), 0);
        bool differs = false;
        for (int32_t v = 0; v < N_VIDEOS; v++)
            differs |= !s_same(trained[v], reblended[v]);
        cr_assert(differs, "another blend scores differently");
        cr_assert_eq(hybrid_set_params(&copy, &(hybrid_params_t){.content_floor = 2}), -1,
                     "out of range refused");
        cr_assert_float_eq(copy.params.content_floor, 1, 1e-6, "and nothing changed");
        cr_assert_eq(hybrid_set_params(&hyb, &s_hybrid_params), 0);
        s_assert_same_scores(mem, model_bundle_scorer(b), "the bundle keeps its blend");
    } else
        cr_assert_eq(model_bundle_hybrid(b, &copy), -1);

    if (strcmp(type, "popularity") == 0) {
        const popularity_model_t *p = model_bundle_popularity(b);
        cr_assert(p);
        cr_assert_eq(p->n_segments, s_pop->n_segments);
        for (int32_t s = 0; s < p->n_segments; s++) {
            cr_assert_str_eq(p->segment_names[s], s_pop->segment_names[s]);
            cr_assert_eq(p->segment_users[s], s_pop->segment_users[s]);
        }
        //  The segment of a history is the same through the file.
        for (size_t i = 0; i < sizeof s_histories / sizeof *s_histories; i++) {
            user_history_t h = {.items = s_histories[i].items,
                                .values = s_histories[i].values,
                                .len = s_histories[i].len};
            cr_assert_eq(popularity_model_segment(p, &h), popularity_model_segment(s_pop, &h));
        }
    } else
        cr_assert_null(model_bundle_popularity(b));

    //  Opening without a registry checksum ("" or NULL) works too.
    model_bundle_t *again = model_bundle_open(path, "", err, sizeof err);
    cr_assert(again, "%s", err);
    model_bundle_destroy(&again);
    again = model_bundle_open(path, NULL, err, sizeof err);
    cr_assert(again, "%s", err);
    model_bundle_destroy(&again);

    model_bundle_destroy(&b);
    cr_assert_null(b);
    model_bundle_destroy(&b); //  idempotent
}

Test(model_artifact, collaborative_round_trips)
{
    s_round_trip("collaborative", true);
}

Test(model_artifact, content_round_trips)
{
    s_round_trip("content", true);
}

Test(model_artifact, item_knn_round_trips)
{
    s_round_trip("item_knn", true);
}

Test(model_artifact, ease_round_trips)
{
    s_round_trip("ease", true);
}

Test(model_artifact, popularity_round_trips)
{
    s_round_trip("popularity", true);
}

Test(model_artifact, hybrid_round_trips_with_and_without_ease)
{
    s_round_trip("hybrid", true);
    s_round_trip("hybrid", false);
}

//  artifact.h: BYTES sections other than strings "use rows = bytes,
//  cols = 1". A reader that follows the format's documentation (or a
//  hand-built artifact that does) must see the same meta as the bundle.
Test(model_artifact, meta_section_uses_the_documented_layout)
{
    model_artifact_parts_t parts = s_parts("item_knn");
    char checksum[65], err[512] = "";
    cr_assert_eq(model_artifact_write(&parts, s_path("meta.art"), checksum, err, sizeof err), 0,
                 "%s", err);
    artifact_t *a = artifact_open(s_path("meta.art"), err, sizeof err);
    cr_assert(a, "%s", err);
    int64_t rows = -1, cols = -1;
    const char *meta = artifact_section(a, "meta", ARTIFACT_BYTES, &rows, &cols);
    cr_assert(meta);
    int64_t want = (int64_t)strlen(parts.meta_json);
    artifact_destroy(&a);
    cr_assert(rows == want && cols == 1,
              "meta stored as %ld x %ld, artifact.h says %ld x 1 (rows = bytes)", (long)rows,
              (long)cols, (long)want);

    //  And a meta written as artifact.h says is read whole.
    const char *doc = "{\"model_type\":\"item_knn\"}";
    artifact_writer_t *w = artifact_writer_new("item_knn");
    cr_assert(w);
    cr_assert_eq(artifact_writer_add(w, "meta", ARTIFACT_BYTES, (int64_t)strlen(doc), 1, doc), 0);
    cr_assert_eq(artifact_writer_add_strings(w, "videos", s_video_ids, N_VIDEOS), 0);
    cr_assert_eq(artifact_writer_add(w, "nbr.idx", ARTIFACT_I32, N_VIDEOS, s_knn->k, s_knn->idx),
                 0);
    cr_assert_eq(artifact_writer_add(w, "nbr.sim", ARTIFACT_F32, N_VIDEOS, s_knn->k, s_knn->sim),
                 0);
    cr_assert_eq(artifact_writer_write(w, s_path("meta-doc.art"), NULL, err, sizeof err), 0, "%s",
                 err);
    artifact_writer_destroy(&w);
    model_bundle_t *b = model_bundle_open(s_path("meta-doc.art"), NULL, err, sizeof err);
    cr_assert(b, "%s", err);
    char got[256];
    snprintf(got, sizeof got, "%s", model_bundle_meta(b));
    model_bundle_destroy(&b);
    cr_assert_str_eq(got, doc, "meta of a documented-layout artifact read as %s", got);
}

Test(model_artifact, meta_defaults_to_empty_object)
{
    model_artifact_parts_t parts = s_parts("item_knn");
    parts.meta_json = NULL;
    char checksum[65], err[512] = "";
    cr_assert_eq(model_artifact_write(&parts, s_path("m.art"), checksum, err, sizeof err), 0, "%s",
                 err);
    model_bundle_t *b = model_bundle_open(s_path("m.art"), checksum, err, sizeof err);
    cr_assert(b, "%s", err);
    cr_assert_str_eq(model_bundle_meta(b), "{}");
    model_bundle_destroy(&b);
}

//  ---- refusals ----------------------------------------------------------------

static void s_write_ok(const char *type, const char *name, char checksum[65])
{
    model_artifact_parts_t parts = s_parts(type);
    char err[512] = "";
    cr_assert_eq(model_artifact_write(&parts, s_path(name), checksum, err, sizeof err), 0, "%s",
                 err);
}

Test(model_artifact, registry_checksum_that_differs_is_refused)
{
    char checksum[65];
    s_write_ok("collaborative", "c.art", checksum);
    char other[65];
    memcpy(other, checksum, sizeof other);
    other[10] = other[10] == '0' ? '1' : '0';
    char err[512] = "";
    model_bundle_t *b = model_bundle_open(s_path("c.art"), other, err, sizeof err);
    cr_assert_null(b);
    cr_assert(strstr(err, "checksum"), "err: %s", err);
    //  A checksum of another model altogether, too.
    char hybrid_sum[65];
    s_write_ok("hybrid", "h.art", hybrid_sum);
    b = model_bundle_open(s_path("c.art"), hybrid_sum, err, sizeof err);
    cr_assert_null(b, "the registry's checksum is for another artifact");
    //  A prefix of the right checksum is not the checksum.
    checksum[63] = '\0';
    b = model_bundle_open(s_path("c.art"), checksum, err, sizeof err);
    cr_assert_null(b, "a 63-char prefix matched");
}

static unsigned char *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_gt(n, 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void s_write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

Test(model_artifact, flipped_byte_is_refused)
{
    const char *types[] = {"collaborative", "content", "hybrid", "popularity"};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        char checksum[65];
        s_write_ok(types[t], "good.art", checksum);
        size_t len = 0;
        unsigned char *orig = s_read_file(s_path("good.art"), &len);
        //  In the header's file size and model type, the section table,
        //  the middle of the data and the very last byte.
        const size_t at[] = {16, 24, 140, len / 2, len - 1};
        for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
            unsigned char *copy = malloc(len);
            cr_assert(copy);
            memcpy(copy, orig, len);
            copy[at[i]] ^= 0x10;
            s_write_file(s_path("bad.art"), copy, len);
            free(copy);
            char err[512] = "";
            model_bundle_t *b = model_bundle_open(s_path("bad.art"), NULL, err, sizeof err);
            cr_assert_null(b, "%s: byte %zu of %zu flipped, still opened", types[t], at[i], len);
            cr_assert_neq(err[0], '\0', "a reason is given");
            b = model_bundle_open(s_path("bad.art"), checksum, err, sizeof err);
            cr_assert_null(b, "%s: byte %zu flipped, opened with the registry checksum", types[t],
                           at[i]);
        }
        //  The unflipped bytes written back open fine (the copy is sound).
        s_write_file(s_path("bad.art"), orig, len);
        char err[512] = "";
        model_bundle_t *b = model_bundle_open(s_path("bad.art"), checksum, err, sizeof err);
        cr_assert(b, "%s: %s", types[t], err);
        model_bundle_destroy(&b);
        free(orig);
    }
}

Test(model_artifact, truncated_or_missing_file_is_refused)
{
    char checksum[65];
    s_write_ok("ease", "e.art", checksum);
    size_t len = 0;
    unsigned char *buf = s_read_file(s_path("e.art"), &len);
    s_write_file(s_path("short.art"), buf, len - 64);
    free(buf);
    char err[512] = "";
    cr_assert_null(model_bundle_open(s_path("short.art"), NULL, err, sizeof err));
    cr_assert_null(model_bundle_open(s_path("absent.art"), NULL, err, sizeof err));
    cr_assert_neq(err[0], '\0');
}

static bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

Test(model_artifact, writer_refuses_missing_or_mismatched_parts)
{
    char checksum[65], err[512];
    struct {
        const char *type, *what;
        model_artifact_parts_t parts;
    } cases[] = {
        {"hybrid", "no prior", s_parts("hybrid")},
        {"hybrid", "no blend params", s_parts("hybrid")},
        {"hybrid", "no als", s_parts("hybrid")},
        {"hybrid", "no neighbours", s_parts("hybrid")},
        {"content", "no prior", s_parts("content")},
        {"content", "no neighbours", s_parts("content")},
        {"collaborative", "no als", s_parts("collaborative")},
        {"item_knn", "no neighbours", s_parts("item_knn")},
        {"ease", "no ease", s_parts("ease")},
        {"popularity", "no popularity", s_parts("popularity")},
        {"popularity", "one video fewer", s_parts("popularity")},
        {"collaborative", "one video fewer", s_parts("collaborative")},
        {"mystery", "unknown type", s_parts("mystery")},
    };
    cases[0].parts.content_prior = NULL;
    cases[1].parts.hybrid = NULL;
    cases[2].parts.als = NULL;
    cases[3].parts.neighbours = NULL;
    cases[4].parts.content_prior = NULL;
    cases[5].parts.neighbours = NULL;
    cases[6].parts.als = NULL;
    cases[7].parts.neighbours = NULL;
    cases[8].parts.ease = NULL;
    cases[9].parts.popularity = NULL;
    cases[10].parts.n_videos = N_VIDEOS - 1;
    cases[11].parts.n_videos = N_VIDEOS - 1;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[64];
        snprintf(name, sizeof name, "refused-%zu.art", i);
        err[0] = '\0';
        int rc = model_artifact_write(&cases[i].parts, s_path(name), checksum, err, sizeof err);
        cr_assert_eq(rc, -1, "%s (%s) was written", cases[i].type, cases[i].what);
        cr_assert_neq(err[0], '\0', "%s (%s): no reason", cases[i].type, cases[i].what);
        cr_assert(!s_exists(s_path(name)), "%s (%s): a file was left", cases[i].type,
                  cases[i].what);
    }
    //  The writer's own reason for a missing part names the type.
    model_artifact_parts_t p = s_parts("hybrid");
    p.content_prior = NULL;
    cr_assert_eq(model_artifact_write(&p, s_path("x.art"), checksum, err, sizeof err), -1);
    cr_assert(strstr(err, "hybrid") && strstr(err, "missing"), "err: %s", err);
}

//  ---- hand-built artifacts (valid checksum, bad content) ------------------------

typedef struct {
    const char *name;
    artifact_dtype_t dtype;
    int64_t rows, cols;
    const void *data;
} s_section_t;

//  Writes an artifact of `type` with meta, the video table and the given
//  sections, through artifact.h: the file is sound, only its model is not.
static void s_write_raw(const char *path, const char *type, const char *const *ids, int64_t n_ids,
                        const s_section_t *sections, size_t n_sections)
{
    artifact_writer_t *w = artifact_writer_new(type);
    cr_assert(w);
    cr_assert_eq(artifact_writer_add(w, "meta", ARTIFACT_BYTES, 1, 2, "{}"), 0);
    cr_assert_eq(artifact_writer_add_strings(w, "videos", ids, n_ids), 0);
    for (size_t i = 0; i < n_sections; i++)
        cr_assert_eq(artifact_writer_add(w, sections[i].name, sections[i].dtype, sections[i].rows,
                                         sections[i].cols, sections[i].data),
                     0, "section %s", sections[i].name);
    char err[512] = "";
    cr_assert_eq(artifact_writer_write(w, path, NULL, err, sizeof err), 0, "%s", err);
    artifact_writer_destroy(&w);
}

//  The sections of the real content model (k = s_content->k).
static size_t s_content_sections(s_section_t *out, const int32_t *idx, bool with_sim,
                                 bool with_prior)
{
    size_t n = 0;
    int64_t k = s_content->k;
    out[n++] = (s_section_t){"nbr.idx", ARTIFACT_I32, N_VIDEOS, k, idx};
    if (with_sim)
        out[n++] = (s_section_t){"nbr.sim", ARTIFACT_F32, N_VIDEOS, k, s_content->sim};
    if (with_prior)
        out[n++] = (s_section_t){"content.prior", ARTIFACT_F32, 1, N_VIDEOS, s_prior};
    return n;
}

static void s_assert_refused(const char *path, const char *type)
{
    char err[512] = "";
    model_bundle_t *b = model_bundle_open(path, NULL, err, sizeof err);
    if (b)
        model_bundle_destroy(&b);
    cr_assert_null(b, "%s: a bad artifact was opened", path);
    cr_assert(strstr(err, type), "the reason names the type %s: %s", type, err);
    cr_assert(strstr(err, "section"), "the reason says a section is wrong: %s", err);
}

static void s_assert_opens(const char *path)
{
    char err[512] = "";
    model_bundle_t *b = model_bundle_open(path, NULL, err, sizeof err);
    cr_assert(b, "%s: %s", path, err);
    model_bundle_destroy(&b);
}

Test(model_artifact, content_without_similarities_is_refused)
{
    s_section_t s[3];
    //  Control: the same hand-built file with every section opens, and
    //  scores as the model does.
    size_t n = s_content_sections(s, s_content->idx, true, true);
    s_write_raw(s_path("content-ok.art"), "content", s_video_ids, N_VIDEOS, s, n);
    char err[512] = "";
    model_bundle_t *b = model_bundle_open(s_path("content-ok.art"), NULL, err, sizeof err);
    cr_assert(b, "%s", err);
    s_assert_same_scores(prior_scorer(&s_content_ps), model_bundle_scorer(b), "hand-built content");
    model_bundle_destroy(&b);

    n = s_content_sections(s, s_content->idx, false, true);
    s_write_raw(s_path("content-nosim.art"), "content", s_video_ids, N_VIDEOS, s, n);
    s_assert_refused(s_path("content-nosim.art"), "content");

    n = s_content_sections(s, s_content->idx, true, false);
    s_write_raw(s_path("content-noprior.art"), "content", s_video_ids, N_VIDEOS, s, n);
    s_assert_refused(s_path("content-noprior.art"), "content");

    //  nbr.sim of the wrong shape (one row short).
    s[0] = (s_section_t){"nbr.idx", ARTIFACT_I32, N_VIDEOS, s_content->k, s_content->idx};
    s[1] = (s_section_t){"nbr.sim", ARTIFACT_F32, N_VIDEOS - 1, s_content->k, s_content->sim};
    s[2] = (s_section_t){"content.prior", ARTIFACT_F32, 1, N_VIDEOS, s_prior};
    s_write_raw(s_path("content-shape.art"), "content", s_video_ids, N_VIDEOS, s, 3);
    s_assert_refused(s_path("content-shape.art"), "content");

    //  nbr.sim stored as int32 (the right name and shape, the wrong dtype).
    s[1] = (s_section_t){"nbr.sim", ARTIFACT_I32, N_VIDEOS, s_content->k, s_content->idx};
    s_write_raw(s_path("content-dtype.art"), "content", s_video_ids, N_VIDEOS, s, 3);
    s_assert_refused(s_path("content-dtype.art"), "content");
}

//  The sections of the real hybrid; skip names one to leave out.
static size_t s_hybrid_sections(s_section_t *out, const char *skip, float *conf, float *hyb)
{
    conf[0] = s_als->regularization;
    conf[1] = s_als->alpha;
    hyb[0] = s_hybrid_params.content_k;
    hyb[1] = s_hybrid_params.content_floor;
    hyb[2] = s_hybrid_params.ease_share;
    s_section_t all[] = {
        {"als.items", ARTIFACT_F32, N_VIDEOS, s_als->factors, s_als->item_factors},
        {"als.gram", ARTIFACT_F32, s_als->factors, s_als->factors, s_als->gram},
        {"als.conf", ARTIFACT_F32, 1, 2, conf},
        {"nbr.idx", ARTIFACT_I32, N_VIDEOS, s_content->k, s_content->idx},
        {"nbr.sim", ARTIFACT_F32, N_VIDEOS, s_content->k, s_content->sim},
        {"content.prior", ARTIFACT_F32, 1, N_VIDEOS, s_prior},
        {"hyb.params", ARTIFACT_F32, 1, 3, hyb},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!skip || strcmp(all[i].name, skip) != 0)
            out[n++] = all[i];
    return n;
}

Test(model_artifact, hybrid_with_a_missing_section_is_refused)
{
    s_section_t s[8];
    float conf[2], hyb[3];
    size_t n = s_hybrid_sections(s, NULL, conf, hyb);
    s_write_raw(s_path("hybrid-ok.art"), "hybrid", s_video_ids, N_VIDEOS, s, n);
    char err[512] = "";
    model_bundle_t *b = model_bundle_open(s_path("hybrid-ok.art"), NULL, err, sizeof err);
    cr_assert(b, "control: %s", err);
    hybrid_t h;
    s_assert_same_scores(s_memory_scorer("hybrid", &h, false), model_bundle_scorer(b),
                         "hand-built hybrid");
    model_bundle_destroy(&b);

    const char *skip[] = {"content.prior", "hyb.params", "als.items", "als.gram",
                          "als.conf",      "nbr.idx",    "nbr.sim"};
    for (size_t i = 0; i < sizeof skip / sizeof *skip; i++) {
        n = s_hybrid_sections(s, skip[i], conf, hyb);
        cr_assert_eq(n, 6);
        char name[64];
        snprintf(name, sizeof name, "hybrid-no-%s.art", skip[i]);
        s_write_raw(s_path(name), "hybrid", s_video_ids, N_VIDEOS, s, n);
        s_assert_refused(s_path(name), "hybrid");
    }

    //  Blend constants out of range (the file is sound, the model is not).
    n = s_hybrid_sections(s, NULL, conf, hyb);
    hyb[2] = 1.5f;
    s_write_raw(s_path("hybrid-share.art"), "hybrid", s_video_ids, N_VIDEOS, s, n);
    s_assert_refused(s_path("hybrid-share.art"), "hybrid");
    hyb[2] = s_hybrid_params.ease_share;
    hyb[1] = NAN;
    s_write_raw(s_path("hybrid-nan.art"), "hybrid", s_video_ids, N_VIDEOS, s, n);
    s_assert_refused(s_path("hybrid-nan.art"), "hybrid");

    //  An EASE part that is half there: ease.b without ease.sub.
    n = s_hybrid_sections(s, NULL, conf, hyb);
    hyb[1] = s_hybrid_params.content_floor;
    s[n++] = (s_section_t){"ease.b", ARTIFACT_F32, s_ease->n_sub, s_ease->n_sub, s_ease->b};
    s_write_raw(s_path("hybrid-halfease.art"), "hybrid", s_video_ids, N_VIDEOS, s, n);
    s_assert_refused(s_path("hybrid-halfease.art"), "hybrid");
}

Test(model_artifact, out_of_range_neighbour_indexes_are_refused)
{
    int64_t k = s_content->k;
    int32_t *idx = malloc((size_t)(N_VIDEOS * k) * sizeof *idx);
    cr_assert(idx);
    const int32_t bad[] = {N_VIDEOS, N_VIDEOS + 1000, -2, INT32_MIN, INT32_MAX};
    const char *types[] = {"content", "item_knn"};
    for (size_t t = 0; t < 2; t++) {
        //  Control: -1 (padding) anywhere is fine.
        memcpy(idx, s_content->idx, (size_t)(N_VIDEOS * k) * sizeof *idx);
        idx[N_VIDEOS * k - 1] = -1;
        s_section_t s[3];
        size_t n = s_content_sections(s, idx, true, strcmp(types[t], "content") == 0);
        s_write_raw(s_path("nbr-ok.art"), types[t], s_video_ids, N_VIDEOS, s, n);
        s_assert_opens(s_path("nbr-ok.art"));
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            //  First cell, a middle cell, the last cell.
            const int64_t cells[] = {0, N_VIDEOS * k / 2, N_VIDEOS * k - 1};
            for (size_t c = 0; c < 3; c++) {
                memcpy(idx, s_content->idx, (size_t)(N_VIDEOS * k) * sizeof *idx);
                idx[cells[c]] = bad[i];
                s_write_raw(s_path("nbr-bad.art"), types[t], s_video_ids, N_VIDEOS, s, n);
                char err[512] = "";
                model_bundle_t *b = model_bundle_open(s_path("nbr-bad.art"), NULL, err, sizeof err);
                if (b)
                    model_bundle_destroy(&b);
                cr_assert_null(b, "%s: neighbour %d at cell %ld accepted", types[t], bad[i],
                               (long)cells[c]);
                cr_assert(strstr(err, types[t]), "%s", err);
            }
        }
    }
    //  The hybrid's neighbours are checked as well.
    memcpy(idx, s_content->idx, (size_t)(N_VIDEOS * k) * sizeof *idx);
    idx[3] = N_VIDEOS;
    s_section_t s[8];
    float conf[2], hyb[3];
    size_t n = s_hybrid_sections(s, NULL, conf, hyb);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, "nbr.idx") == 0)
            s[i].data = idx;
    s_write_raw(s_path("hybrid-nbr.art"), "hybrid", s_video_ids, N_VIDEOS, s, n);
    s_assert_refused(s_path("hybrid-nbr.art"), "hybrid");
    free(idx);
}

Test(model_artifact, out_of_range_ease_and_popularity_indexes_are_refused)
{
    int32_t sub[EASE_MAX_ITEMS > 64 ? 64 : EASE_MAX_ITEMS];
    int32_t n_sub = s_ease->n_sub;
    cr_assert_leq(n_sub, 64);
    memcpy(sub, s_ease->sub_items, (size_t)n_sub * sizeof *sub);
    s_section_t s[2] = {{"ease.sub", ARTIFACT_I32, 1, n_sub, sub},
                        {"ease.b", ARTIFACT_F32, n_sub, n_sub, s_ease->b}};
    s_write_raw(s_path("ease-ok.art"), "ease", s_video_ids, N_VIDEOS, s, 2);
    s_assert_opens(s_path("ease-ok.art"));
    const int32_t bad[] = {N_VIDEOS, -1, INT32_MAX};
    for (size_t i = 0; i < 3; i++) {
        memcpy(sub, s_ease->sub_items, (size_t)n_sub * sizeof *sub);
        sub[n_sub - 1] = bad[i];
        s_write_raw(s_path("ease-bad.art"), "ease", s_video_ids, N_VIDEOS, s, 2);
        s_assert_refused(s_path("ease-bad.art"), "ease");
    }
    //  ease.b not square in the subset size.
    memcpy(sub, s_ease->sub_items, (size_t)n_sub * sizeof *sub);
    s[1].cols = n_sub - 1;
    s_write_raw(s_path("ease-shape.art"), "ease", s_video_ids, N_VIDEOS, s, 2);
    s_assert_refused(s_path("ease-shape.art"), "ease");

    //  Popularity: an item's segment index past the last segment, and
    //  item_segment_ptr that is not monotone.
    const popularity_model_t *p = s_pop;
    int32_t n_iseg = p->item_segment_ptr[N_VIDEOS];
    int32_t *iseg = malloc((size_t)n_iseg * sizeof *iseg);
    int32_t ptr[N_VIDEOS + 1];
    cr_assert(iseg);
    for (int round = 0; round < 3; round++) {
        memcpy(iseg, p->item_segments, (size_t)n_iseg * sizeof *iseg);
        memcpy(ptr, p->item_segment_ptr, sizeof ptr);
        if (round == 1)
            iseg[n_iseg - 1] = p->n_segments;
        if (round == 2) {
            ptr[2] = ptr[3] + 1; //  goes back down at 3
            cr_assert_leq(ptr[2], n_iseg);
        }
        artifact_writer_t *w = artifact_writer_new("popularity");
        cr_assert(w);
        cr_assert_eq(artifact_writer_add(w, "meta", ARTIFACT_BYTES, 1, 2, "{}"), 0);
        cr_assert_eq(artifact_writer_add_strings(w, "videos", s_video_ids, N_VIDEOS), 0);
        cr_assert_eq(artifact_writer_add(w, "pop.global", ARTIFACT_F32, 1, N_VIDEOS, p->global), 0);
        cr_assert_eq(artifact_writer_add(w, "pop.seg", ARTIFACT_F32, p->n_segments, N_VIDEOS,
                                         p->segment_scores),
                     0);
        cr_assert_eq(artifact_writer_add_strings(
                         w, "pop.segnames", (const char *const *)p->segment_names, p->n_segments),
                     0);
        cr_assert_eq(artifact_writer_add(w, "pop.iseg_ptr", ARTIFACT_I32, 1, N_VIDEOS + 1, ptr), 0);
        cr_assert_eq(artifact_writer_add(w, "pop.iseg", ARTIFACT_I32, 1, n_iseg, iseg), 0);
        cr_assert_eq(artifact_writer_add(w, "pop.segusers", ARTIFACT_I32, 1, p->n_segments,
                                         p->segment_users),
                     0);
        char err[512] = "";
        cr_assert_eq(artifact_writer_write(w, s_path("pop.art"), NULL, err, sizeof err), 0, "%s",
                     err);
        artifact_writer_destroy(&w);
        if (round == 0)
            s_assert_opens(s_path("pop.art"));
        else
            s_assert_refused(s_path("pop.art"), "popularity");
    }
    free(iseg);
}

Test(model_artifact, unknown_type_and_bad_video_table_are_refused)
{
    s_section_t s[3];
    size_t n = s_content_sections(s, s_content->idx, true, true);
    s_write_raw(s_path("mystery.art"), "mystery", s_video_ids, N_VIDEOS, s, n);
    char err[512] = "";
    cr_assert_null(model_bundle_open(s_path("mystery.art"), NULL, err, sizeof err));
    cr_assert(strstr(err, "mystery"), "%s", err);

    //  Two videos with one id: indexes would be ambiguous.
    const char *dup[N_VIDEOS];
    memcpy(dup, s_video_ids, sizeof dup);
    dup[7] = dup[2];
    s_write_raw(s_path("dup.art"), "content", dup, N_VIDEOS, s, n);
    cr_assert_null(model_bundle_open(s_path("dup.art"), NULL, err, sizeof err));
    cr_assert(strstr(err, "duplicate"), "%s", err);

    //  A video table shorter than the model's rows.
    s_write_raw(s_path("short-videos.art"), "content", s_video_ids, N_VIDEOS - 1, s, n);
    s_assert_refused(s_path("short-videos.art"), "content");

    //  No video table at all.
    artifact_writer_t *w = artifact_writer_new("content");
    cr_assert(w);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(artifact_writer_add(w, s[i].name, s[i].dtype, s[i].rows, s[i].cols, s[i].data),
                     0);
    cr_assert_eq(artifact_writer_write(w, s_path("novideos.art"), NULL, err, sizeof err), 0, "%s",
                 err);
    artifact_writer_destroy(&w);
    err[0] = '\0';
    cr_assert_null(model_bundle_open(s_path("novideos.art"), NULL, err, sizeof err));
    cr_assert_neq(err[0], '\0', "a reason is given");
}

Test(model_artifact, collaborative_with_bad_factors_is_refused)
{
    float conf[2] = {s_als->regularization, s_als->alpha};
    int32_t f = s_als->factors;
    s_section_t s[3] = {
        {"als.items", ARTIFACT_F32, N_VIDEOS, f, s_als->item_factors},
        {"als.gram", ARTIFACT_F32, f, f, s_als->gram},
        {"als.conf", ARTIFACT_F32, 1, 2, conf},
    };
    s_write_raw(s_path("als-ok.art"), "collaborative", s_video_ids, N_VIDEOS, s, 3);
    s_assert_opens(s_path("als-ok.art"));
    //  Gram of another size than the factors.
    s[1].rows = s[1].cols = f - 1;
    s_write_raw(s_path("als-gram.art"), "collaborative", s_video_ids, N_VIDEOS, s, 3);
    s_assert_refused(s_path("als-gram.art"), "collaborative");
    //  Items of another count than the videos.
    s[1].rows = s[1].cols = f;
    s[0].rows = N_VIDEOS - 2;
    s_write_raw(s_path("als-items.art"), "collaborative", s_video_ids, N_VIDEOS, s, 3);
    s_assert_refused(s_path("als-items.art"), "collaborative");
    //  Zero factors.
    s[0] = (s_section_t){"als.items", ARTIFACT_F32, N_VIDEOS, 0, NULL};
    s[1] = (s_section_t){"als.gram", ARTIFACT_F32, 0, 0, NULL};
    s_write_raw(s_path("als-zero.art"), "collaborative", s_video_ids, N_VIDEOS, s, 3);
    s_assert_refused(s_path("als-zero.art"), "collaborative");
}
