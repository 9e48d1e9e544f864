/*  hybrid.c: the history-length-weighted blend of z-normalised component
    scores, and the grid search of its constants on a validation split.
*/
#include "hybrid.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Largest per-user component cache hybrid_tune keeps (bytes).
#define S_CACHE_MAX ((size_t)1 << 30)

static const float s_default_k[] = {0, 1, 3, 10, 30, 100, 1000};
static const float s_default_floor[] = {0, 0.1f, 0.25f};
static const float s_default_share[] = {0, 0.25f, 0.5f, 0.75f, 1};

hybrid_params_t hybrid_params_default(void)
{
    return (hybrid_params_t){.content_k = 5, .content_floor = 0.1f, .ease_share = 0.5f};
}

static bool s_present(const hybrid_t *self, int c)
{
    return self->components[c].score != NULL;
}

static bool s_params_ok(const hybrid_params_t *p)
{
    return p->content_k >= 0 && isfinite(p->content_k) && p->content_floor >= 0 &&
           p->content_floor <= 1 && p->ease_share >= 0 && p->ease_share <= 1;
}

int hybrid_init(hybrid_t *self, const scorer_t *als, const scorer_t *content, const scorer_t *ease,
                const hybrid_params_t *params, char *err, size_t errlen)
{
    hybrid_t h = {.params = params ? *params : hybrid_params_default(), .n_items = -1};
    const scorer_t *in[HYBRID_COMPONENTS] = {
        [HYBRID_ALS] = als, [HYBRID_CONTENT] = content, [HYBRID_EASE] = ease};
    for (int c = 0; c < HYBRID_COMPONENTS; c++) {
        if (!in[c] || !in[c]->score)
            continue;
        if (h.n_items >= 0 && in[c]->n_items != h.n_items) {
            snprintf(err, errlen, "hybrid: components of %d and %d videos", (int)h.n_items,
                     (int)in[c]->n_items);
            return -1;
        }
        h.components[c] = *in[c];
        h.n_items = in[c]->n_items;
    }
    if (h.n_items < 0) {
        snprintf(err, errlen, "hybrid: no component");
        return -1;
    }
    if (!s_params_ok(&h.params)) {
        snprintf(err, errlen, "hybrid: blend constants out of range");
        return -1;
    }
    *self = h;
    return 0;
}

int hybrid_set_params(hybrid_t *self, const hybrid_params_t *params)
{
    if (!params || !s_params_ok(params))
        return -1;
    self->params = *params;
    return 0;
}

void hybrid_weights(const hybrid_t *self, int32_t n_positive, float w[HYBRID_COMPONENTS])
{
    const hybrid_params_t *p = &self->params;
    double n = n_positive > 0 ? n_positive : 0;
    double free_share = p->content_k + n > 0 ? p->content_k / (p->content_k + n) : 0.0;
    double wc = p->content_floor + (1.0 - p->content_floor) * free_share;
    double share = p->ease_share;
    bool als = s_present(self, HYBRID_ALS), ease = s_present(self, HYBRID_EASE);
    if (!als && !ease)
        wc = 1;
    if (!s_present(self, HYBRID_CONTENT))
        wc = 0;
    if (!ease)
        share = 0;
    if (!als)
        share = 1;
    w[HYBRID_CONTENT] = (float)wc;
    w[HYBRID_ALS] = als ? (float)((1.0 - wc) * (1.0 - share)) : 0.0f;
    w[HYBRID_EASE] = ease ? (float)((1.0 - wc) * share) : 0.0f;
}

static int32_t s_positives(const user_history_t *history)
{
    int32_t n = 0;
    for (int32_t h = 0; h < history->len; h++)
        n += history->values[h] > 0;
    return n;
}

//  In place: finite scores -> max(0, z), others stay non-finite.
static void s_normalise(float *s, int32_t n)
{
    double sum = 0;
    int64_t count = 0;
    for (int32_t j = 0; j < n; j++)
        if (isfinite(s[j])) {
            sum += s[j];
            count++;
        }
    if (count == 0)
        return;
    double mean = sum / (double)count, var = 0;
    for (int32_t j = 0; j < n; j++)
        if (isfinite(s[j]))
            var += (s[j] - mean) * (s[j] - mean);
    double sd = sqrt(var / (double)count);
    float flat = count < n ? 1.0f : 0.0f;
    for (int32_t j = 0; j < n; j++) {
        if (!isfinite(s[j]))
            continue;
        if (!(sd > 0))
            s[j] = flat;
        else {
            double z = (s[j] - mean) / sd;
            s[j] = z > 0 ? (float)z : 0.0f;
        }
    }
}

static void s_accumulate(float *scores, const float *part, float w, int32_t n)
{
    for (int32_t j = 0; j < n; j++)
        if (isfinite(part[j]))
            scores[j] = (isfinite(scores[j]) ? scores[j] : 0.0f) + w * part[j];
}

static int s_score(const void *model, const user_history_t *history, float *scores)
{
    const hybrid_t *self = model;
    float w[HYBRID_COMPONENTS];
    hybrid_weights(self, s_positives(history), w);
    float *buf = self->scratch;
    if (!buf && !(buf = malloc((self->n_items > 0 ? (size_t)self->n_items : 1) * sizeof *buf)))
        return -1;
    for (int32_t j = 0; j < self->n_items; j++)
        scores[j] = -INFINITY;
    for (int c = 0; c < HYBRID_COMPONENTS; c++) {
        const scorer_t *comp = &self->components[c];
        if (!comp->score || !(w[c] > 0))
            continue;
        if (comp->score(comp->model, history, buf) != 0) {
            if (buf != self->scratch)
                free(buf);
            return -1;
        }
        s_normalise(buf, self->n_items);
        s_accumulate(scores, buf, w[c], self->n_items);
    }
    if (buf != self->scratch)
        free(buf);
    return 0;
}

scorer_t hybrid_scorer(const hybrid_t *self)
{
    return (scorer_t){.model = self, .n_items = self->n_items, .score = s_score};
}

//  ---------------------------------------------------------------------
//  Tuning

typedef struct {
    const hybrid_t *hybrid; //  params = the grid point being run
    const int32_t *slot;    //  user -> cache slot, -1 = not a validation user
    float *cache;           //  slot x component x n_items normalised scores
    bool filling;           //  first run: compute and store the components
} s_tune_t;

static int s_tune_score(void *ctx, int32_t user, const user_history_t *history, float *scores)
{
    s_tune_t *t = ctx;
    const hybrid_t *self = t->hybrid;
    size_t n = (size_t)self->n_items;
    float *base = t->cache + (size_t)t->slot[user] * HYBRID_COMPONENTS * n;
    if (t->filling)
        for (int c = 0; c < HYBRID_COMPONENTS; c++) {
            const scorer_t *comp = &self->components[c];
            if (!comp->score)
                continue;
            if (comp->score(comp->model, history, base + (size_t)c * n) != 0)
                return -1;
            s_normalise(base + (size_t)c * n, self->n_items);
        }
    float w[HYBRID_COMPONENTS];
    hybrid_weights(self, s_positives(history), w);
    for (size_t j = 0; j < n; j++)
        scores[j] = -INFINITY;
    for (int c = 0; c < HYBRID_COMPONENTS; c++)
        if (self->components[c].score && w[c] > 0)
            s_accumulate(scores, base + (size_t)c * n, w[c], self->n_items);
    return 0;
}

int hybrid_tune(hybrid_t *self, const evaluation_split_t *validation, const hybrid_grid_t *grid,
                int threads, evaluation_metrics_t *best, char *err, size_t errlen)
{
    hybrid_grid_t g = {s_default_k,     sizeof s_default_k / sizeof *s_default_k,
                       s_default_floor, sizeof s_default_floor / sizeof *s_default_floor,
                       s_default_share, sizeof s_default_share / sizeof *s_default_share};
    if (grid)
        g = *grid;
    if (g.n_content_k < 1 || g.n_content_floor < 1 || g.n_ease_share < 1 || !g.content_k ||
        !g.content_floor || !g.ease_share) {
        snprintf(err, errlen, "hybrid tune: empty grid");
        return -1;
    }
    if (validation->n_items != self->n_items) {
        snprintf(err, errlen, "hybrid tune: split has %d videos, hybrid %d",
                 (int)validation->n_items, (int)self->n_items);
        return -1;
    }
    bool content = s_present(self, HYBRID_CONTENT);
    bool collab = s_present(self, HYBRID_ALS) || s_present(self, HYBRID_EASE);
    bool both = s_present(self, HYBRID_ALS) && s_present(self, HYBRID_EASE);
    int32_t nk = content && collab ? g.n_content_k : 1;
    int32_t nf = content && collab ? g.n_content_floor : 1;
    int32_t ns = both ? g.n_ease_share : 1;

    //  The cache, when it fits.
    int32_t *slot = NULL;
    float *cache = NULL;
    size_t cells = (size_t)validation->n_test_users * HYBRID_COMPONENTS *
                   (size_t)(self->n_items > 0 ? self->n_items : 1);
    if (cells * sizeof(float) <= S_CACHE_MAX) {
        slot = malloc(((size_t)validation->n_users + 1) * sizeof *slot);
        cache = malloc((cells > 0 ? cells : 1) * sizeof *cache);
        if (!slot || !cache) {
            free(slot);
            free(cache);
            slot = NULL;
            cache = NULL; //  too big after all: re-score instead
        } else {
            int32_t next = 0;
            for (int32_t u = 0; u < validation->n_users; u++)
                slot[u] = validation->test_ptr[u + 1] > validation->test_ptr[u] ? next++ : -1;
        }
    }

    hybrid_t trial = *self;
    hybrid_params_t best_params = self->params;
    evaluation_metrics_t best_m = {0};
    bool have = false;
    s_tune_t ctx = {.hybrid = &trial, .slot = slot, .cache = cache, .filling = true};
    int rc = 0;
    for (int32_t a = 0; a < nk && rc == 0; a++)
        for (int32_t b = 0; b < nf && rc == 0; b++)
            for (int32_t c = 0; c < ns && rc == 0; c++) {
                trial.params =
                    (hybrid_params_t){g.content_k[a], g.content_floor[b], g.ease_share[c]};
                if (!s_params_ok(&trial.params)) {
                    snprintf(err, errlen, "hybrid tune: grid point out of range");
                    rc = -1;
                    break;
                }
                evaluation_metrics_t m;
                if (cache) {
                    rc =
                        evaluation_run_fn(validation, s_tune_score, &ctx, threads, &m, err, errlen);
                    ctx.filling = false;
                } else {
                    scorer_t scorer = hybrid_scorer(&trial);
                    rc = evaluation_run(validation, &scorer, threads, &m, err, errlen);
                }
                if (rc == 0 && (!have || m.ndcg10 > best_m.ndcg10)) {
                    have = true;
                    best_m = m;
                    best_params = trial.params;
                }
            }
    free(slot);
    free(cache);
    if (rc != 0)
        return -1;
    self->params = best_params;
    if (best)
        *best = best_m;
    return 0;
}
