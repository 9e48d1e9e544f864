/*  model_artifact.c: models <-> artifact sections (see model_artifact.h). */
#include "model_artifact.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"

struct model_bundle_t {
    artifact_t *artifact;
    char type[32];
    char *meta;
    artifact_strings_t videos;
    zhashx_t *video_index; //  id -> index + 1
    als_model_t als;
    item_neighbours_t neighbours;
    ease_model_t ease;
    popularity_model_t popularity;
    prior_scorer_t content;
    hybrid_t hybrid;
    scorer_t scorer;
    faiss_index_t *ann; //  optional, model_bundle_build_ann
    int ann_nprobe;
};

static int s_fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return -1;
}

static bool s_is(const char *type, const char *name)
{
    return strcmp(type, name) == 0;
}

static int s_add_als(artifact_writer_t *w, const als_model_t *als, int32_t n_videos, float conf[2])
{
    if (!als || als->n_items != n_videos)
        return -1;
    conf[0] = als->regularization;
    conf[1] = als->alpha;
    return artifact_writer_add(w, "als.items", ARTIFACT_F32, als->n_items, als->factors,
                               als->item_factors) ||
           artifact_writer_add(w, "als.gram", ARTIFACT_F32, als->factors, als->factors,
                               als->gram) ||
           artifact_writer_add(w, "als.conf", ARTIFACT_F32, 1, 2, conf);
}

static int s_add_neighbours(artifact_writer_t *w, const item_neighbours_t *nb, int32_t n_videos)
{
    if (!nb || nb->n_items != n_videos)
        return -1;
    return artifact_writer_add(w, "nbr.idx", ARTIFACT_I32, nb->n_items, nb->k, nb->idx) ||
           artifact_writer_add(w, "nbr.sim", ARTIFACT_F32, nb->n_items, nb->k, nb->sim);
}

static int s_add_content(artifact_writer_t *w, const model_artifact_parts_t *parts)
{
    return s_add_neighbours(w, parts->neighbours, parts->n_videos) || !parts->content_prior ||
           artifact_writer_add(w, "content.prior", ARTIFACT_F32, 1, parts->n_videos,
                               parts->content_prior);
}

static int s_add_ease(artifact_writer_t *w, const ease_model_t *ease, int32_t n_videos)
{
    if (!ease || ease->n_items != n_videos)
        return -1;
    return artifact_writer_add(w, "ease.sub", ARTIFACT_I32, 1, ease->n_sub, ease->sub_items) ||
           artifact_writer_add(w, "ease.b", ARTIFACT_F32, ease->n_sub, ease->n_sub, ease->b);
}

static int s_add_popularity(artifact_writer_t *w, const popularity_model_t *p, int32_t n_videos)
{
    if (!p || p->n_items != n_videos)
        return -1;
    return artifact_writer_add(w, "pop.global", ARTIFACT_F32, 1, p->n_items, p->global) ||
           artifact_writer_add(w, "pop.seg", ARTIFACT_F32, p->n_segments, p->n_items,
                               p->segment_scores) ||
           artifact_writer_add_strings(w, "pop.segnames", (const char *const *)p->segment_names,
                                       p->n_segments) ||
           artifact_writer_add(w, "pop.iseg_ptr", ARTIFACT_I32, 1, (int64_t)p->n_items + 1,
                               p->item_segment_ptr) ||
           artifact_writer_add(w, "pop.iseg", ARTIFACT_I32, 1, p->item_segment_ptr[p->n_items],
                               p->item_segments) ||
           artifact_writer_add(w, "pop.segusers", ARTIFACT_I32, 1, p->n_segments, p->segment_users);
}

int model_artifact_write(const model_artifact_parts_t *parts, const char *path, char checksum[65],
                         char *err, size_t errlen)
{
    const char *type = parts->model_type;
    const char *meta = parts->meta_json ? parts->meta_json : "{}";
    float als_conf[2], hyb[3];
    artifact_writer_t *w = artifact_writer_new(type);
    if (!w)
        return s_fail(err, errlen, "artifact writer: bad model type or out of memory");
    int rc = artifact_writer_add(w, "meta", ARTIFACT_BYTES, (int64_t)strlen(meta), 1, meta) ||
             artifact_writer_add_strings(w, "videos", parts->video_ids, parts->n_videos);
    if (rc == 0) {
        if (s_is(type, "collaborative"))
            rc = s_add_als(w, parts->als, parts->n_videos, als_conf);
        else if (s_is(type, "content"))
            rc = s_add_content(w, parts);
        else if (s_is(type, "item_knn"))
            rc = s_add_neighbours(w, parts->neighbours, parts->n_videos);
        else if (s_is(type, "ease"))
            rc = s_add_ease(w, parts->ease, parts->n_videos);
        else if (s_is(type, "popularity"))
            rc = s_add_popularity(w, parts->popularity, parts->n_videos);
        else if (s_is(type, "hybrid") && parts->hybrid) {
            hyb[0] = parts->hybrid->content_k;
            hyb[1] = parts->hybrid->content_floor;
            hyb[2] = parts->hybrid->ease_share;
            rc = s_add_als(w, parts->als, parts->n_videos, als_conf) || s_add_content(w, parts) ||
                 (parts->ease && s_add_ease(w, parts->ease, parts->n_videos)) ||
                 artifact_writer_add(w, "hyb.params", ARTIFACT_F32, 1, 3, hyb);
        } else
            rc = -1;
    }
    if (rc != 0) {
        artifact_writer_destroy(&w);
        snprintf(err, errlen,
                 "model %s: a part is missing or its size disagrees with the %d videos", type,
                 parts->n_videos);
        return -1;
    }
    rc = artifact_writer_write(w, path, checksum, err, errlen);
    artifact_writer_destroy(&w);
    return rc;
}

//  ---- reading -------------------------------------------------------------

//  Section name of exactly dtype and, where given (>= 0), shape.
static const void *s_section(model_bundle_t *b, const char *name, artifact_dtype_t dtype,
                             int64_t rows, int64_t cols, int64_t *rows_out, int64_t *cols_out)
{
    int64_t r = 0, c = 0;
    const void *data = artifact_section(b->artifact, name, dtype, &r, &c);
    if (!data || (rows >= 0 && r != rows) || (cols >= 0 && c != cols))
        return NULL;
    if (rows_out)
        *rows_out = r;
    if (cols_out)
        *cols_out = c;
    return data;
}

static int s_open_als(model_bundle_t *b, int32_t n)
{
    int64_t f = 0;
    const float *items = s_section(b, "als.items", ARTIFACT_F32, n, -1, NULL, &f);
    if (!items || f <= 0 || f > ALS_MAX_FACTORS)
        return -1;
    const float *gram = s_section(b, "als.gram", ARTIFACT_F32, f, f, NULL, NULL);
    const float *conf = s_section(b, "als.conf", ARTIFACT_F32, 1, 2, NULL, NULL);
    if (!gram || !conf)
        return -1;
    b->als = (als_model_t){.n_items = n,
                           .factors = (int32_t)f,
                           .item_factors = (float *)items,
                           .gram = (float *)gram,
                           .regularization = conf[0],
                           .alpha = conf[1],
                           .owned = false};
    return 0;
}

static int s_open_neighbours(model_bundle_t *b, int32_t n)
{
    int64_t k = 0;
    const int32_t *idx = s_section(b, "nbr.idx", ARTIFACT_I32, n, -1, NULL, &k);
    if (!idx || k <= 0 || k > ITEM_NEIGHBOURS_MAX_K)
        return -1;
    const float *sim = s_section(b, "nbr.sim", ARTIFACT_F32, n, k, NULL, NULL);
    if (!sim)
        return -1;
    //  Scoring indexes the score array with these: one pass now keeps a
    //  damaged-but-checksummed (hand-made) file from writing out of bounds.
    for (int64_t c = 0; c < (int64_t)n * k; c++)
        if (idx[c] < -1 || idx[c] >= n)
            return -1;
    b->neighbours = (item_neighbours_t){
        .n_items = n, .k = (int32_t)k, .idx = (int32_t *)idx, .sim = (float *)sim, .owned = false};
    return 0;
}

//  Neighbours plus the popularity prior: the content model's scorer.
static int s_open_content(model_bundle_t *b, int32_t n)
{
    const float *prior = s_section(b, "content.prior", ARTIFACT_F32, 1, n, NULL, NULL);
    if (!prior || s_open_neighbours(b, n) != 0)
        return -1;
    b->content = (prior_scorer_t){.inner = item_neighbours_scorer(&b->neighbours), .prior = prior};
    return 0;
}

static int s_open_ease(model_bundle_t *b, int32_t n)
{
    int64_t n_sub = 0;
    const int32_t *sub = s_section(b, "ease.sub", ARTIFACT_I32, 1, -1, NULL, &n_sub);
    if (!sub || n_sub > EASE_MAX_ITEMS)
        return -1;
    const float *mat = s_section(b, "ease.b", ARTIFACT_F32, n_sub, n_sub, NULL, NULL);
    if (!mat)
        return -1;
    for (int64_t i = 0; i < n_sub; i++)
        if (sub[i] < 0 || sub[i] >= n)
            return -1;
    b->ease = (ease_model_t){.n_items = n,
                             .n_sub = (int32_t)n_sub,
                             .sub_items = (int32_t *)sub,
                             .b = (float *)mat,
                             .owned = false};
    return 0;
}

static int s_open_popularity(model_bundle_t *b, int32_t n, char *err, size_t errlen)
{
    int64_t n_seg = 0, n_iseg = 0;
    const float *global = s_section(b, "pop.global", ARTIFACT_F32, 1, n, NULL, NULL);
    const float *seg = s_section(b, "pop.seg", ARTIFACT_F32, -1, -1, &n_seg, NULL);
    const int32_t *ptr = s_section(b, "pop.iseg_ptr", ARTIFACT_I32, 1, (int64_t)n + 1, NULL, NULL);
    const int32_t *iseg = s_section(b, "pop.iseg", ARTIFACT_I32, 1, -1, NULL, &n_iseg);
    if (!global || !seg || !ptr || !iseg)
        return -1;
    const int32_t *users = s_section(b, "pop.segusers", ARTIFACT_I32, 1, n_seg, NULL, NULL);
    artifact_strings_t names;
    if (!users || artifact_strings(b->artifact, "pop.segnames", &names, err, errlen) != 0 ||
        names.count != n_seg)
        return -1;
    if (n_seg > 0 && !s_section(b, "pop.seg", ARTIFACT_F32, n_seg, n, NULL, NULL))
        return -1;
    if (ptr[0] != 0 || ptr[n] != n_iseg)
        return -1;
    for (int32_t i = 0; i < n; i++)
        if (ptr[i + 1] < ptr[i])
            return -1;
    for (int64_t s = 0; s < n_iseg; s++)
        if (iseg[s] < 0 || iseg[s] >= n_seg)
            return -1;
    //  The model wants char ** names: a small array of pointers into the
    //  mapping, the only thing the bundle allocates for it.
    char **segment_names = calloc((size_t)(n_seg > 0 ? n_seg : 1), sizeof *segment_names);
    if (!segment_names)
        return -1;
    for (int64_t s = 0; s < n_seg; s++)
        segment_names[s] = (char *)artifact_strings_at(&names, s);
    b->popularity = (popularity_model_t){.n_items = n,
                                         .n_segments = (int32_t)n_seg,
                                         .global = (float *)global,
                                         .segment_scores = (float *)seg,
                                         .segment_names = segment_names,
                                         .item_segment_ptr = (int32_t *)ptr,
                                         .item_segments = (int32_t *)iseg,
                                         .segment_users = (int32_t *)users,
                                         .owned = false};
    return 0;
}

static int s_open_models(model_bundle_t *b, int32_t n, char *err, size_t errlen)
{
    const char *t = b->type;
    if (s_is(t, "collaborative")) {
        if (s_open_als(b, n) != 0)
            return -1;
        b->scorer = als_scorer(&b->als);
    } else if (s_is(t, "content")) {
        if (s_open_content(b, n) != 0)
            return -1;
        b->scorer = prior_scorer(&b->content);
    } else if (s_is(t, "item_knn")) {
        if (s_open_neighbours(b, n) != 0)
            return -1;
        b->scorer = item_neighbours_scorer(&b->neighbours);
    } else if (s_is(t, "ease")) {
        if (s_open_ease(b, n) != 0)
            return -1;
        b->scorer = ease_scorer(&b->ease);
    } else if (s_is(t, "popularity")) {
        if (s_open_popularity(b, n, err, errlen) != 0)
            return -1;
        b->scorer = popularity_scorer(&b->popularity);
    } else if (s_is(t, "hybrid")) {
        const float *p = s_section(b, "hyb.params", ARTIFACT_F32, 1, 3, NULL, NULL);
        if (!p || s_open_als(b, n) != 0 || s_open_content(b, n) != 0)
            return -1;
        bool has_ease = artifact_section(b->artifact, "ease.b", ARTIFACT_F32, NULL, NULL) != NULL;
        if (has_ease && s_open_ease(b, n) != 0)
            return -1;
        scorer_t als = als_scorer(&b->als), content = prior_scorer(&b->content);
        scorer_t ease = has_ease ? ease_scorer(&b->ease) : (scorer_t){0};
        hybrid_params_t params = {.content_k = p[0], .content_floor = p[1], .ease_share = p[2]};
        if (hybrid_init(&b->hybrid, &als, &content, has_ease ? &ease : NULL, &params, err,
                        errlen) != 0)
            return -1;
        b->scorer = hybrid_scorer(&b->hybrid);
    } else
        return -1;
    return 0;
}

model_bundle_t *model_bundle_open(const char *path, const char *expect_checksum, char *err,
                                  size_t errlen)
{
    model_bundle_t *b = calloc(1, sizeof *b);
    if (!b) {
        s_fail(err, errlen, "out of memory");
        return NULL;
    }
    b->artifact = artifact_open(path, err, errlen);
    if (!b->artifact)
        goto err;
    if (expect_checksum && *expect_checksum &&
        strcmp(expect_checksum, artifact_checksum(b->artifact)) != 0) {
        snprintf(err, errlen, "checksum mismatch: registry says %.64s, file is %s", expect_checksum,
                 artifact_checksum(b->artifact));
        goto err;
    }
    snprintf(b->type, sizeof b->type, "%s", artifact_model_type(b->artifact));
    //  A bytes section is rows = bytes, cols = 1 (artifact.h); any shape's
    //  total is its length.
    int64_t meta_rows = 0, meta_cols = 0;
    const char *meta =
        artifact_section(b->artifact, "meta", ARTIFACT_BYTES, &meta_rows, &meta_cols);
    b->meta = meta ? strndup(meta, (size_t)(meta_rows * meta_cols)) : strdup("{}");
    if (!b->meta || artifact_strings(b->artifact, "videos", &b->videos, err, errlen) != 0)
        goto err;
    if (b->videos.count > INT32_MAX - 1) {
        s_fail(err, errlen, "too many videos");
        goto err;
    }
    int32_t n = (int32_t)b->videos.count;
    b->video_index = zhashx_new();
    if (!b->video_index)
        goto err;
    for (int32_t i = 0; i < n; i++) {
        //  The index rides in the pointer.
        //  NOLINTNEXTLINE(performance-no-int-to-ptr): never dereferenced
        void *value = (void *)(intptr_t)(i + 1);
        if (zhashx_insert(b->video_index, artifact_strings_at(&b->videos, i), value) != 0) {
            s_fail(err, errlen, "duplicate video id in the artifact");
            goto err;
        }
    }
    char why[256] = "";
    if (s_open_models(b, n, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s artifact: missing or inconsistent sections%s%s", b->type,
                 *why ? ": " : "", why);
        goto err;
    }
    return b;
err:
    model_bundle_destroy(&b);
    return NULL;
}

void model_bundle_destroy(model_bundle_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    model_bundle_t *b = *self_p;
    free(b->popularity.segment_names);
    faiss_index_destroy(&b->ann);
    zhashx_destroy(&b->video_index);
    free(b->meta);
    artifact_destroy(&b->artifact);
    free(b);
    *self_p = NULL;
}

const char *model_bundle_type(const model_bundle_t *self)
{
    return self->type;
}

const char *model_bundle_checksum(const model_bundle_t *self)
{
    return artifact_checksum(self->artifact);
}

const char *model_bundle_meta(const model_bundle_t *self)
{
    return self->meta;
}

scorer_t model_bundle_scorer(const model_bundle_t *self)
{
    return self->scorer;
}

int model_bundle_hybrid(const model_bundle_t *self, hybrid_t *out)
{
    if (!s_is(self->type, "hybrid"))
        return -1;
    *out = self->hybrid;
    return 0;
}

int32_t model_bundle_videos(const model_bundle_t *self)
{
    return (int32_t)self->videos.count;
}

const char *model_bundle_video_id(const model_bundle_t *self, int32_t index)
{
    if (index < 0 || index >= (int32_t)self->videos.count)
        return NULL;
    return artifact_strings_at(&self->videos, index);
}

int32_t model_bundle_video_index(const model_bundle_t *self, const char *video_id)
{
    intptr_t found = (intptr_t)zhashx_lookup(self->video_index, video_id);
    return found ? (int32_t)(found - 1) : -1;
}

const popularity_model_t *model_bundle_popularity(const model_bundle_t *self)
{
    return s_is(self->type, "popularity") ? &self->popularity : NULL;
}

const als_model_t *model_bundle_als(const model_bundle_t *self)
{
    return s_is(self->type, "collaborative") || s_is(self->type, "hybrid") ? &self->als : NULL;
}

int model_bundle_build_ann(model_bundle_t *self, char *err, size_t errlen)
{
    if (!s_is(self->type, "collaborative") || self->als.n_items <= 0)
        return s_fail(err, errlen, "an ANN index needs a collaborative model with videos");
    int64_t n = self->als.n_items;
    int64_t nlist = 1;
    while (nlist * nlist < 4 * n) //  nlist ~ 2 sqrt(n), a power of two
        nlist *= 2;
    if (nlist > n)
        nlist = n;
    char factory[64];
    snprintf(factory, sizeof factory, "IVF%lld,Flat", (long long)nlist);
    faiss_index_t *index = faiss_index_new(self->als.factors, factory, 1, err, errlen);
    if (!index)
        return -1;
    //  Training on every vector of a large catalogue is wasted time: a
    //  strided sample of 64 per list is what k-means needs.
    int64_t sample = nlist * 64 < n ? nlist * 64 : n;
    int64_t stride = n / sample;
    float *train = NULL;
    const float *vectors = self->als.item_factors;
    if (stride > 1) {
        train = malloc((size_t)sample * (size_t)self->als.factors * sizeof *train);
        if (!train) {
            faiss_index_destroy(&index);
            return s_fail(err, errlen, "out of memory");
        }
        for (int64_t i = 0; i < sample; i++)
            memcpy(train + i * self->als.factors, vectors + i * stride * self->als.factors,
                   (size_t)self->als.factors * sizeof *train);
    }
    int rc = faiss_index_train(index, train ? train : vectors, sample, err, errlen) ||
             faiss_index_add(index, vectors, n, err, errlen);
    free(train);
    if (rc != 0) {
        faiss_index_destroy(&index);
        return -1;
    }
    faiss_index_destroy(&self->ann);
    self->ann = index;
    self->ann_nprobe = (int)(nlist / 64 > 16 ? nlist / 64 : 16);
    return 0;
}

const faiss_index_t *model_bundle_ann(const model_bundle_t *self)
{
    return self->ann;
}

int model_bundle_ann_nprobe(const model_bundle_t *self)
{
    return self->ann_nprobe;
}
