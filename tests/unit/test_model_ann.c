/*  test_model_ann.c: the ANN index a collaborative bundle gets for large
    catalogues (model_bundle_build_ann): built over the mmapped factors,
    it finds the same top items as a full scan.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "als.h"
#include "leak_check.h"
#include "model_artifact.h"
#include "tmp_dir.h"
#include "topn.h"

TestSuite(model_ann, .fini = leak_check_fini);

#define N 3000
#define F 16

Test(model_ann, finds_the_full_scans_top)
{
    //  Clustered unit vectors (like ALS factors): 30 centres, noise.
    float *items = malloc((size_t)N * F * sizeof *items);
    float *gram = calloc(F * F, sizeof *gram);
    char **ids = malloc(N * sizeof *ids);
    cr_assert(items && gram && ids);
    unsigned seed = 7;
    float centres[30][F];
    for (int c = 0; c < 30; c++)
        for (int k = 0; k < F; k++)
            centres[c][k] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    for (int i = 0; i < N; i++) {
        double norm = 0;
        for (int k = 0; k < F; k++) {
            float x = centres[i % 30][k] + 0.1f * ((float)rand_r(&seed) / RAND_MAX - 0.5f);
            items[i * F + k] = x;
            norm += (double)x * x;
        }
        for (int k = 0; k < F; k++)
            items[i * F + k] /= (float)sqrt(norm);
        ids[i] = malloc(16);
        snprintf(ids[i], 16, "v%d", i);
    }
    als_compute_gram(items, N, F, gram);
    als_model_t als = {.n_items = N,
                       .factors = F,
                       .item_factors = items,
                       .gram = gram,
                       .regularization = 1,
                       .alpha = 10,
                       .owned = false};
    char dir[256], path[512], checksum[65], err[512];
    cr_assert_eq(tmp_dir_make(dir, sizeof dir, "recsd-ann"), 0);
    snprintf(path, sizeof path, "%s/als.rca", dir);
    model_artifact_parts_t parts = {.model_type = "collaborative",
                                    .video_ids = (const char *const *)ids,
                                    .n_videos = N,
                                    .als = &als};
    cr_assert_eq(model_artifact_write(&parts, path, checksum, err, sizeof err), 0, "%s", err);
    model_bundle_t *b = model_bundle_open(path, checksum, err, sizeof err);
    cr_assert(b, "%s", err);
    cr_assert_null(model_bundle_ann(b));
    cr_assert_eq(model_bundle_build_ann(b, err, sizeof err), 0, "%s", err);
    cr_assert(model_bundle_ann(b));
    cr_assert_geq(model_bundle_ann_nprobe(b), 16);

    //  Queries: item vectors themselves; the full scan's top 10 against the
    //  index's, recall over 20 queries.
    int hits = 0;
    for (int q = 0; q < 20; q++) {
        const float *query = items + (q * 97 % N) * F;
        float scores[N];
        for (int i = 0; i < N; i++) {
            float dot = 0;
            for (int k = 0; k < F; k++)
                dot += query[k] * items[i * F + k];
            scores[i] = dot;
        }
        int32_t exact[10];
        cr_assert_eq(topn_select(scores, N, NULL, exact, 10), 10);
        float got_scores[10];
        int64_t got[10];
        faiss_search_params_t params = {.nprobe = model_bundle_ann_nprobe(b)};
        cr_assert_eq(faiss_index_search(model_bundle_ann(b), query, 10, &params, got_scores, got,
                                        err, sizeof err),
                     10, "%s", err);
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++)
                hits += got[i] == exact[j];
    }
    cr_assert_geq(hits, 190, "recall@10 %d/200", hits);

    model_bundle_destroy(&b);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free(ids);
    free(items);
    free(gram);
    tmp_dir_remove(dir);
}
