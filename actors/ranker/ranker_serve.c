/*  ranker_serve.c: the serving chain (see ranker_serve.h). */
#include "ranker_serve.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ranker_cooc.h"
#include "ranker_explain.h"
#include "topn.h"

//  Candidates asked of the selection beyond `limit` at first, so that a
//  few seen or retired videos filtered afterwards rarely need a second pass.
#define S_SLACK 16

const char *const ranker_serve_reason_names[RANKER_SERVE_REASONS] = {"not_loaded", "scorer_error",
                                                                     "no_history"};
const char *const ranker_serve_segment_reason_names[RANKER_SERVE_SEGMENT_REASONS] = {"not_loaded",
                                                                                     "no_segment"};
const char *const ranker_serve_pin_reason_names[RANKER_SERVE_PIN_REASONS] = {
    "not_loaded", "no_history", "scorer_error"};

//  The latest events looked at to place a user in a segment.
#define S_SEGMENT_EVENTS 64
const double ranker_serve_buckets[RANKER_SERVE_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                           0.005,  0.01,    0.025,  0.05,  0.1};

struct ranker_serve_t {
    ranker_serve_stats_t stats;
    ranker_serve_config_t config;
    bool previous_on; //  config.chain holds "previous"
    //  This request's list lost a video because the user had seen it: the
    //  list is the user's own, not their segment's.
    bool seen_filtered;
    //  A step of this request's chain failed (a model not loaded, a scorer
    //  error): the list is a stopgap, not what the user's segment gets.
    bool degraded;
    //  Scratch, grown to the largest model (the loop is single-threaded).
    float *scores;
    bool *skip;
    int32_t *top;
    int32_t cap, top_cap;
    int32_t *h_items, *h_seen, *h_liked;
    float *h_values;
    int32_t h_cap;
    float *blend_scratch; //  hybrid scoring's per-component buffer
    int32_t blend_cap;
    //  This request's filtered candidates, for the filtering span.
    uint32_t dropped_seen, dropped_retired, dropped_excluded;
};

//  A step down the chain, as a span of its own (no duration to speak of).
static void s_trace_fallback(const ranker_serve_inputs_t *in, const char *step, const char *version,
                             const char *reason)
{
    trace_span_t *span = trace_span_child(in->trace, "ranker.fallback", TRACE_KIND_INTERNAL);
    if (!span)
        return;
    trace_span_set_str(span, "recsd.fallback.step", step);
    if (version)
        trace_span_set_str(span, "recsd.fallback.version", version);
    trace_span_set_str(span, "recsd.fallback.reason", reason);
    trace_span_end(&span);
}

//  Starts the filtering span and zeroes the counts it reports.
static trace_span_t *s_filter_start(ranker_serve_t *self, const ranker_serve_inputs_t *in)
{
    self->dropped_seen = self->dropped_retired = self->dropped_excluded = 0;
    return trace_span_child(in->trace, "ranker.filtering", TRACE_KIND_INTERNAL);
}

static void s_filter_end(ranker_serve_t *self, trace_span_t **span_p, const proto_recs_rep_t *rep,
                         uint64_t filled_before)
{
    if (!*span_p)
        return;
    trace_span_set_int(*span_p, "recsd.filter.seen", self->dropped_seen);
    trace_span_set_int(*span_p, "recsd.filter.retired", self->dropped_retired);
    trace_span_set_int(*span_p, "recsd.filter.excluded", self->dropped_excluded);
    trace_span_set_int(*span_p, "recsd.items.filled",
                       (int64_t)(self->stats.filled - filled_before));
    trace_span_set_int(*span_p, "recsd.items.returned", rep->count);
    trace_span_end(span_p);
}

void ranker_serve_config_default(ranker_serve_config_t *out)
{
    *out = (ranker_serve_config_t){
        .default_type = 0,
        .chain = {SERVING_FALLBACK_PREVIOUS, SERVING_FALLBACK_COOCCURRENCE,
                  SERVING_FALLBACK_SEGMENT_POPULARITY, SERVING_FALLBACK_POPULARITY},
        .chain_len = 4,
        .has_blend = false};
}

void ranker_serve_config_from(const serving_config_t *cfg, bool use_blend,
                              ranker_serve_config_t *out)
{
    ranker_serve_config_default(out);
    const char *type = serving_type_name(cfg->default_type);
    int t = type ? ranker_models_type_index(type) : -1;
    out->default_type = t >= 0 ? t : 0;
    int n = cfg->fallback_count;
    if (n >= 1 && n <= SERVING_CONFIG_CHAIN_MAX) {
        memcpy(out->chain, cfg->fallback_chain, (size_t)n * sizeof *out->chain);
        out->chain_len = n;
    }
    out->has_blend = use_blend;
    if (use_blend)
        out->blend = serving_config_hybrid_params(cfg);
}

static bool s_blend_ok(const hybrid_params_t *p)
{
    return isfinite(p->content_k) && p->content_k >= 0 && p->content_floor >= 0 &&
           p->content_floor <= 1 && p->ease_share >= 0 && p->ease_share <= 1;
}

int ranker_serve_configure(ranker_serve_t *self, const ranker_serve_config_t *cfg)
{
    if (cfg->default_type < 0 || cfg->default_type >= RANKER_MODELS_TYPES || cfg->chain_len < 1 ||
        cfg->chain_len > SERVING_CONFIG_CHAIN_MAX ||
        cfg->chain[cfg->chain_len - 1] != SERVING_FALLBACK_POPULARITY ||
        (cfg->has_blend && !s_blend_ok(&cfg->blend)))
        return -1;
    bool previous = false;
    for (int i = 0; i < cfg->chain_len; i++) {
        if ((int)cfg->chain[i] < 0 || cfg->chain[i] >= SERVING_FALLBACK_COUNT)
            return -1;
        for (int j = 0; j < i; j++)
            if (cfg->chain[j] == cfg->chain[i])
                return -1;
        previous |= cfg->chain[i] == SERVING_FALLBACK_PREVIOUS;
    }
    self->config = *cfg;
    self->previous_on = previous;
    return 0;
}

ranker_serve_t *ranker_serve_new(void)
{
    ranker_serve_t *self = calloc(1, sizeof(ranker_serve_t));
    if (!self)
        return NULL;
    ranker_serve_config_default(&self->config);
    self->previous_on = true; //  the default chain starts with "previous"
    return self;
}

void ranker_serve_destroy(ranker_serve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ranker_serve_t *self = *self_p;
    free(self->scores);
    free(self->skip);
    free(self->top);
    free(self->h_items);
    free(self->h_seen);
    free(self->h_values);
    free(self->h_liked);
    free(self->blend_scratch);
    free(self);
    *self_p = NULL;
}

const ranker_serve_stats_t *ranker_serve_stats(const ranker_serve_t *self)
{
    return &self->stats;
}

static int s_grow(void **array, int32_t *cap, int32_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    void *bigger = realloc(*array, (size_t)need * elem);
    if (!bigger)
        return -1;
    *array = bigger;
    *cap = need;
    return 0;
}

static int s_reserve(ranker_serve_t *self, int32_t n_items, int32_t max_events)
{
    int32_t cap = self->cap, h_cap = self->h_cap;
    if (s_grow((void **)&self->scores, &cap, n_items, sizeof *self->scores) != 0)
        return -1;
    cap = self->cap;
    if (s_grow((void **)&self->skip, &cap, n_items, sizeof *self->skip) != 0)
        return -1;
    self->cap = cap;
    if (s_grow((void **)&self->h_items, &h_cap, max_events, sizeof *self->h_items) != 0)
        return -1;
    h_cap = self->h_cap;
    if (s_grow((void **)&self->h_seen, &h_cap, max_events, sizeof *self->h_seen) != 0)
        return -1;
    h_cap = self->h_cap;
    if (s_grow((void **)&self->h_values, &h_cap, max_events, sizeof *self->h_values) != 0)
        return -1;
    h_cap = self->h_cap;
    if (s_grow((void **)&self->h_liked, &h_cap, max_events, sizeof *self->h_liked) != 0)
        return -1;
    self->h_cap = h_cap;
    return 0;
}

static int32_t s_index_of(const void *bundle, const char *video_id)
{
    return model_bundle_video_index((const model_bundle_t *)bundle, video_id);
}

//  Seen by the user, retired, or excluded by the caller: never recommended.
//  The exclude list is short (PROTO_EXCLUDE_MAX) and only candidates that
//  made the selection are checked: a scan is cheaper than a hash.
static bool s_excluded(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                       const proto_recs_req_t *req, const char *video_id)
{
    if (in->seen && seen_set_contains(in->seen, req->user_id, video_id)) {
        self->seen_filtered = true;
        self->dropped_seen++;
        return true;
    }
    if (in->retired && zhashx_lookup(in->retired, video_id)) {
        self->dropped_retired++;
        return true;
    }
    for (uint32_t i = 0; i < req->exclude_count && i < PROTO_EXCLUDE_MAX; i++)
        if (strcmp(req->exclude[i], video_id) == 0) {
            self->dropped_excluded++;
            return true;
        }
    return false;
}

static void s_put(proto_recs_rep_t *rep, const char *video_id, double score)
{
    proto_rec_item_t *item = &rep->items[rep->count++];
    snprintf(item->video_id, sizeof item->video_id, "%s", video_id);
    item->score = score;
}

//  Tops rep up to limit from list (skipping what rep holds); list_scores:
//  the items are the answer (their popularity is their score), else a
//  top-up (score 0, counted).
static void s_fill_from(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                        const proto_recs_req_t *req, proto_recs_rep_t *rep,
                        const popular_list_t *list, bool list_scores)
{
    uint32_t limit = req->limit;
    size_t available = list ? popular_list_size(list) : 0;
    for (size_t i = 0; i < available && rep->count < limit; i++) {
        const popular_item_t *p = popular_list_item(list, i);
        if (s_excluded(self, in, req, p->video_id))
            continue;
        bool dup = false;
        for (uint32_t j = 0; j < rep->count && !dup; j++)
            dup = strcmp(rep->items[j].video_id, p->video_id) == 0;
        if (dup)
            continue;
        s_put(rep, p->video_id, list_scores ? p->score : 0.0);
        if (!list_scores)
            self->stats.filled++;
    }
}

//  Tops rep up from the global popularity list.
static void s_fill(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                   const proto_recs_req_t *req, proto_recs_rep_t *rep, bool list_scores)
{
    s_fill_from(self, in, req, rep, in->popular, list_scores);
}

//  Scores with one bundle (personal: a type that needs a history).
//  Returns 0 with rep filled, 1 if the user has no liked video the
//  personal model knows, -1 if the scorer (or an allocation) failed: rep
//  is then empty.
//  Explains each item of rep with the liked history video (h_items[0..len)
//  with a positive value) that links to it best in bundle b.
static void s_explain(ranker_serve_t *self, const model_bundle_t *b, const user_history_t *h,
                      proto_recs_rep_t *rep)
{
    //  Liked videos only: a video watched and disliked explains nothing.
    int32_t n = 0;
    for (int32_t i = 0; i < h->len; i++)
        if (h->values[i] > 0)
            self->h_liked[n++] = h->items[i];
    for (uint32_t i = 0; i < rep->count; i++) {
        rep->items[i].reason[0] = '\0';
        int32_t item = model_bundle_video_index(b, rep->items[i].video_id);
        int32_t best = item >= 0 ? ranker_explain(b, self->h_liked, n, item) : -1;
        const char *id = best >= 0 ? model_bundle_video_id(b, self->h_liked[best]) : NULL;
        if (id)
            snprintf(rep->items[i].reason, sizeof rep->items[i].reason, "%s", id);
    }
}

//  Starts a scoring span: what scores, how, over how many items.
static trace_span_t *s_scoring_start(const ranker_serve_inputs_t *in, const char *model_id,
                                     const char *type, int64_t version, const char *method,
                                     int64_t items)
{
    trace_span_t *span = trace_span_child(in->trace, "ranker.scoring", TRACE_KIND_INTERNAL);
    if (!span)
        return NULL;
    trace_span_set_str(span, "recsd.model_id", model_id);
    trace_span_set_str(span, "recsd.model.type", type);
    trace_span_set_int(span, "recsd.model_version", version);
    trace_span_set_str(span, "recsd.scoring.method", method);
    trace_span_set_int(span, "recsd.items.scored", items);
    return span;
}

//  The most the ANN path asks FAISS for: beyond it the user's seen and
//  excluded videos would crowd out the list and the full scan is better.
#define S_ANN_MAX_K 4096

//  A large collaborative catalogue (model_bundle_build_ann): the user's
//  vector by fold-in, the nearest items by inner product from the IVF
//  index, then the same filters as the full scan. Returns 0 with rep
//  filled, 1 when the index cannot give enough (the caller scans in full),
//  -1 on error.
static int s_score_ann(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                       const ranker_model_t *m, const char *type, const user_history_t *h,
                       int32_t n_seen, const proto_recs_req_t *req, proto_recs_rep_t *rep)
{
    const model_bundle_t *b = m->bundle;
    const als_model_t *als = model_bundle_als(b);
    int32_t n = model_bundle_videos(b);
    int64_t k = (int64_t)req->limit + req->exclude_count + n_seen + S_SLACK;
    if (!als || k > S_ANN_MAX_K || k > n)
        return 1;
    trace_span_t *span = s_scoring_start(in, m->model_id, type, m->version, "faiss", k);
    float vec[ALS_MAX_FACTORS];
    if (als_fold_in(als, h, vec) != 0) {
        trace_span_set_error(span, "fold-in failed");
        trace_span_end(&span);
        return -1;
    }
    int64_t ids[S_ANN_MAX_K];
    float scores[S_ANN_MAX_K];
    faiss_search_params_t params = {.nprobe = model_bundle_ann_nprobe(b)};
    char err[256];
    int32_t got = faiss_index_search(model_bundle_ann(b), vec, (int32_t)k, &params, scores, ids,
                                     err, sizeof err);
    if (got < 0)
        trace_span_set_error(span, err);
    trace_span_end(&span);
    if (got < 0)
        return -1;
    trace_span_t *filter = s_filter_start(self, in);
    uint64_t filled = self->stats.filled;
    rep->count = 0;
    for (int32_t i = 0; i < got && rep->count < req->limit; i++) {
        const char *video_id =
            ids[i] >= 0 && ids[i] < n ? model_bundle_video_id(b, (int32_t)ids[i]) : NULL;
        if (video_id && !s_excluded(self, in, req, video_id))
            s_put(rep, video_id, scores[i]);
    }
    if (rep->count < req->limit && got == k) {
        s_filter_end(self, &filter, rep, filled);
        rep->count = 0; //  too many filtered out: the full scan finds the rest
        return 1;
    }
    s_fill(self, in, req, rep, false);
    s_filter_end(self, &filter, rep, filled);
    return 0;
}

static int s_score(ranker_serve_t *self, const ranker_serve_inputs_t *in, const ranker_model_t *m,
                   const char *type, bool personal, const proto_recs_req_t *req,
                   proto_recs_rep_t *rep)
{
    const char *user_id = req->user_id;
    uint32_t limit = req->limit;
    const model_bundle_t *b = m->bundle;
    scorer_t scorer = model_bundle_scorer(b);
    int32_t n = model_bundle_videos(b);
    //  A hybrid bundle is scored through a copy of its blend (a few
    //  pointers, not the model) with the request's or the configured
    //  constants, in this object's scratch: no allocation per request.
    hybrid_t blend;
    if (model_bundle_hybrid(b, &blend) == 0) {
        hybrid_params_t asked;
        const hybrid_params_t *params = NULL;
        if (req->has_blend) {
            asked = (hybrid_params_t){.content_k = (float)req->blend[0],
                                      .content_floor = (float)req->blend[1],
                                      .ease_share = (float)req->blend[2]};
            params = &asked;
        } else if (self->config.has_blend)
            params = &self->config.blend;
        //  Out of range (proto validation let it through): the trained blend.
        if (params && hybrid_set_params(&blend, params) != 0 && self->config.has_blend)
            hybrid_set_params(&blend, &self->config.blend);
        if (s_grow((void **)&self->blend_scratch, &self->blend_cap, n > 0 ? n : 1,
                   sizeof *self->blend_scratch) != 0)
            return -1;
        blend.scratch = self->blend_scratch;
        scorer = hybrid_scorer(&blend);
    }
    if (!scorer.score || scorer.n_items != n ||
        s_reserve(self, n > 0 ? n : 1, ranker_history_max_events(in->history)) != 0)
        return -1;
    trace_span_t *span = trace_span_child(in->trace, "ranker.candidates", TRACE_KIND_INTERNAL);
    user_history_t h;
    int32_t n_seen = 0;
    ranker_history_user(in->history, user_id, s_index_of, b, self->h_items, self->h_values,
                        self->h_seen, &n_seen, &h);
    bool liked = false;
    for (int32_t i = 0; i < h.len && !liked; i++)
        liked = h.values[i] > 0;
    if (span) {
        trace_span_set_str(span, "recsd.model_id", m->model_id);
        trace_span_set_str(span, "recsd.model.type", type);
        trace_span_set_int(span, "recsd.catalogue.items", n);
        trace_span_set_int(span, "recsd.history.events", h.len);
        trace_span_set_int(span, "recsd.history.seen", n_seen);
        trace_span_set_bool(span, "recsd.history.liked", liked);
        trace_span_end(&span);
    }
    if (personal && !liked)
        return 1;
    if (n_seen > 0)
        self->seen_filtered = true; //  conservative: they may have shaped the list
    if (model_bundle_ann(b)) {
        int rc = s_score_ann(self, in, m, type, &h, n_seen, req, rep);
        if (rc <= 0) {
            if (rc == 0 && req->explain)
                s_explain(self, b, &h, rep);
            return rc;
        }
    }
    span = s_scoring_start(in, m->model_id, type, m->version, "blas", n);
    if (n > 0 && scorer.score(scorer.model, &h, self->scores) != 0) {
        trace_span_set_error(span, "scorer failed");
        trace_span_end(&span);
        return -1;
    }
    trace_span_end(&span);
    trace_span_t *filter = s_filter_start(self, in);
    self->dropped_seen = (uint32_t)n_seen; //  the history's seen videos, skipped by index
    uint64_t filled = self->stats.filled;
    memset(self->skip, 0, (size_t)(n > 0 ? n : 1) * sizeof *self->skip);
    for (int32_t i = 0; i < n_seen; i++)
        self->skip[self->h_seen[i]] = true;
    //  The seen set covers more than the bounded history, and retired
    //  videos are filtered by id: widen the selection until `limit` pass.
    int32_t want = (int32_t)limit + S_SLACK;
    while (true) {
        int32_t k = want < n ? want : n;
        if (s_grow((void **)&self->top, &self->top_cap, k > 0 ? k : 1, sizeof *self->top) != 0) {
            s_filter_end(self, &filter, rep, filled);
            return -1;
        }
        int32_t got = topn_select(self->scores, n, self->skip, self->top, k);
        rep->count = 0;
        for (int32_t i = 0; i < got && rep->count < limit; i++) {
            const char *video_id = model_bundle_video_id(b, self->top[i]);
            if (video_id && !s_excluded(self, in, req, video_id))
                s_put(rep, video_id, self->scores[self->top[i]]);
        }
        if (rep->count == limit || got < k || k == n)
            break;
        want = want > n / 4 ? n : want * 4;
    }
    s_fill(self, in, req, rep, false);
    s_filter_end(self, &filter, rep, filled);
    if (req->explain)
        s_explain(self, b, &h, rep);
    return 0;
}

static void s_observe(ranker_serve_t *self, int64_t started_us)
{
    double seconds = (double)(zclock_usecs() - started_us) / 1e6;
    int b = 0;
    while (b < RANKER_SERVE_BUCKETS && seconds > ranker_serve_buckets[b])
        b++;
    self->stats.latency_buckets[b]++;
    self->stats.latency_sum += seconds;
    self->stats.latency_count++;
}

//  Tries the active, then the previous bundle of type t. Returns 0 when one
//  answered (rep filled), 1 when none could (rep empty).
static int s_try_type(ranker_serve_t *self, const ranker_serve_inputs_t *in, int t,
                      const proto_recs_req_t *req, proto_recs_rep_t *rep, int64_t started)
{
    ranker_model_t m;
    const char *type = ranker_models_types[t];
    if (!ranker_models_get(in->models, t, false, &m)) {
        self->stats.fallbacks[t][0][RANKER_SERVE_NOT_LOADED]++;
        self->degraded = true;
        s_trace_fallback(in, type, "active", ranker_serve_reason_names[RANKER_SERVE_NOT_LOADED]);
        return 1;
    }
    for (int previous = 0; previous < (self->previous_on ? 2 : 1); previous++) {
        if (previous && !ranker_models_get(in->models, t, true, &m))
            break;
        bool personal = strcmp(type, "popularity") != 0;
        self->seen_filtered = false;
        int rc = s_score(self, in, &m, type, personal, req, rep);
        if (rc == 0) {
            snprintf(rep->model_id, sizeof rep->model_id, "%s", m.model_id);
            snprintf(rep->type, sizeof rep->type, "%s", ranker_models_types[t]);
            rep->model_version = m.version > 0 ? m.version : 0;
            if (!personal && !self->seen_filtered && !self->degraded)
                snprintf(rep->segment, sizeof rep->segment, "all");
            self->stats.requests[t]++;
            s_observe(self, started);
            return 0;
        }
        rep->count = 0;
        if (rc > 0) {
            self->stats.fallbacks[t][0][RANKER_SERVE_NO_HISTORY]++;
            s_trace_fallback(in, type, "active",
                             ranker_serve_reason_names[RANKER_SERVE_NO_HISTORY]);
            break; //  the previous version knows no more of this user
        }
        self->stats.fallbacks[t][previous][RANKER_SERVE_SCORER_ERROR]++;
        self->degraded = true;
        s_trace_fallback(in, type, previous ? "previous" : "active",
                         ranker_serve_reason_names[RANKER_SERVE_SCORER_ERROR]);
    }
    return 1;
}

//  The request's pinned model, wherever the set holds it. Returns 0 when
//  it answered; 1 when not, with *type its type when it is held (the
//  chain then starts there), -1 when it is not.
static int s_try_pinned(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                        const proto_recs_req_t *req, proto_recs_rep_t *rep, int64_t started,
                        int *type)
{
    ranker_model_t m;
    if (!ranker_models_find(in->models, req->model_id, &m, type)) {
        self->stats.pinned_misses[RANKER_SERVE_PIN_NOT_LOADED]++;
        self->degraded = true;
        s_trace_fallback(in, "pinned", NULL,
                         ranker_serve_pin_reason_names[RANKER_SERVE_PIN_NOT_LOADED]);
        return 1;
    }
    bool personal = strcmp(ranker_models_types[*type], "popularity") != 0;
    self->seen_filtered = false;
    int rc = s_score(self, in, &m, ranker_models_types[*type], personal, req, rep);
    if (rc == 0) {
        //  Never a segment list: the variant's, not what its segment gets.
        snprintf(rep->model_id, sizeof rep->model_id, "%s", m.model_id);
        snprintf(rep->type, sizeof rep->type, "%s", ranker_models_types[*type]);
        rep->model_version = m.version > 0 ? m.version : 0;
        self->stats.pinned_served++;
        self->stats.requests[*type]++;
        s_observe(self, started);
        return 0;
    }
    rep->count = 0;
    ranker_serve_pin_reason_t why =
        rc > 0 ? RANKER_SERVE_PIN_NO_HISTORY : RANKER_SERVE_PIN_SCORER_ERROR;
    self->stats.pinned_misses[why]++;
    self->degraded = true;
    s_trace_fallback(in, "pinned", NULL, ranker_serve_pin_reason_names[why]);
    return 1;
}

typedef struct {
    ranker_serve_t *self;
    const ranker_serve_inputs_t *in;
    const proto_recs_req_t *req;
} s_skip_t;

static bool s_cooc_skip(void *arg, const char *video_id)
{
    s_skip_t *s = arg;
    return s_excluded(s->self, s->in, s->req, video_id);
}

//  The co-occurrence step: what users who liked the user's latest liked
//  videos liked next, best first, topped up from global popularity.
//  Returns 0 when it answered, 1 when it has nothing for the user.
static int s_try_cooccurrence(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                              const proto_recs_req_t *req, proto_recs_rep_t *rep, int64_t started)
{
    if (!in->cooc) {
        s_trace_fallback(in, "cooccurrence", NULL, "not_loaded");
        return 1;
    }
    const char *recent[COOCCURRENCE_WINDOW];
    float weights[COOCCURRENCE_WINDOW];
    size_t n = ranker_cooc_recent(in->history, req->user_id, recent, weights, COOCCURRENCE_WINDOW);
    if (n == 0) {
        s_trace_fallback(in, "cooccurrence", NULL, "no_history");
        return 1;
    }
    const char *ids[PROTO_MAX_ITEMS];
    float scores[PROTO_MAX_ITEMS];
    int k = req->limit < PROTO_MAX_ITEMS ? (int)req->limit : PROTO_MAX_ITEMS;
    s_skip_t skip = {self, in, req};
    trace_span_t *span =
        s_scoring_start(in, "cooccurrence", "collaborative", 0, "cooccurrence", (int64_t)n);
    trace_span_t *filter = s_filter_start(self, in);
    uint64_t filled = self->stats.filled;
    int got = cooccurrence_score(in->cooc, recent, weights, n, s_cooc_skip, &skip, ids, scores, k);
    trace_span_end(&span);
    if (got <= 0) {
        s_filter_end(self, &filter, rep, filled);
        self->stats.cooc_misses++;
        s_trace_fallback(in, "cooccurrence", NULL, "no_neighbours");
        return 1;
    }
    rep->count = 0;
    for (int i = 0; i < got; i++)
        s_put(rep, ids[i], scores[i]);
    s_fill(self, in, req, rep, false);
    s_filter_end(self, &filter, rep, filled);
    snprintf(rep->model_id, sizeof rep->model_id, "cooccurrence");
    snprintf(rep->type, sizeof rep->type, "collaborative");
    rep->model_version = 0;
    self->stats.requests[RANKER_SERVE_COOC]++;
    s_observe(self, started);
    return 0;
}

//  The segment step: the popularity list of the genre the user leans to.
//  Returns 0 when it answered (rep filled), 1 when the user has no
//  segment or the lists are not loaded (rep empty).
static int s_try_segment(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                         const proto_recs_req_t *req, proto_recs_rep_t *rep, int64_t started)
{
    if (!in->segments || segment_popularity_segments(in->segments) == 0) {
        self->stats.segment_fallbacks[RANKER_SERVE_SEGMENTS_NOT_LOADED]++;
        s_trace_fallback(in, "segment_popularity", NULL,
                         ranker_serve_segment_reason_names[RANKER_SERVE_SEGMENTS_NOT_LOADED]);
        return 1;
    }
    const char *ids[S_SEGMENT_EVENTS];
    float strengths[S_SEGMENT_EVENTS];
    int32_t n =
        ranker_history_events_of(in->history, req->user_id, ids, strengths, S_SEGMENT_EVENTS);
    const char *segment = segment_popularity_segment_of(in->segments, ids, strengths, (size_t)n);
    const popular_list_t *list = segment ? segment_popularity_list(in->segments, segment) : NULL;
    if (!list) {
        self->stats.segment_fallbacks[RANKER_SERVE_NO_SEGMENT]++;
        s_trace_fallback(in, "segment_popularity", NULL,
                         ranker_serve_segment_reason_names[RANKER_SERVE_NO_SEGMENT]);
        return 1;
    }
    rep->count = 0;
    self->seen_filtered = false;
    trace_span_t *filter = NULL;
    uint64_t filled = self->stats.filled;
    if (in->trace) {
        char id[PROTO_ID_MAX + 1];
        snprintf(id, sizeof id, "segment:%.*s", SEGMENT_POPULARITY_NAME_MAX, segment);
        trace_span_t *span = s_scoring_start(in, id, "popularity", 0, "segment_popularity",
                                             (int64_t)popular_list_size(list));
        trace_span_end(&span);
        filter = s_filter_start(self, in);
    }
    s_fill_from(self, in, req, rep, list, true);
    s_fill(self, in, req, rep, false); //  a small genre: the rest from everything
    s_filter_end(self, &filter, rep, filled);
    snprintf(rep->model_id, sizeof rep->model_id, "segment:%.*s", SEGMENT_POPULARITY_NAME_MAX,
             segment);
    snprintf(rep->type, sizeof rep->type, "popularity");
    rep->model_version = 0;
    if (!self->seen_filtered && !self->degraded)
        snprintf(rep->segment, sizeof rep->segment, "genre:%.*s", SEGMENT_POPULARITY_NAME_MAX,
                 segment);
    self->stats.requests[RANKER_SERVE_SEGMENT]++;
    s_observe(self, started);
    return 0;
}

int ranker_serve_recommend(ranker_serve_t *self, const ranker_serve_inputs_t *in,
                           const proto_recs_req_t *req, proto_recs_rep_t *rep)
{
    int64_t started = zclock_usecs();
    uint32_t limit = req->limit;
    rep->count = 0;
    rep->model_version = 0;
    rep->segment[0] = '\0';
    self->seen_filtered = false;
    self->degraded = false;
    free(rep->items);
    rep->items = calloc(limit ? limit : 1, sizeof *rep->items);
    if (!rep->items)
        return -1;
    snprintf(rep->source, sizeof rep->source, "model");
    //  The pinned model, then the requested type (its own if a pinned
    //  model did not answer; "" = the configured default), then the
    //  personal types, the configured model-free steps in their order,
    //  global popularity (bundle, then list); popularity asked for is
    //  popularity only.
    const ranker_serve_config_t *cfg = &self->config;
    int first = -1;
    if (req->model_id[0] && s_try_pinned(self, in, req, rep, started, &first) == 0)
        return 0;
    if (first < 0)
        first = req->type[0] ? ranker_models_type_index(req->type) : cfg->default_type;
    if (first < 0)
        first = cfg->default_type;
    int popularity = ranker_models_type_index("popularity");
    bool popularity_only = first == popularity;
    if (s_try_type(self, in, first, req, rep, started) == 0)
        return 0;
    if (!popularity_only) {
        for (int t = 0; t < RANKER_MODELS_TYPES; t++)
            if (t != first && t != popularity && s_try_type(self, in, t, req, rep, started) == 0)
                return 0;
        for (int i = 0; i < cfg->chain_len; i++)
            if ((cfg->chain[i] == SERVING_FALLBACK_COOCCURRENCE &&
                 s_try_cooccurrence(self, in, req, rep, started) == 0) ||
                (cfg->chain[i] == SERVING_FALLBACK_SEGMENT_POPULARITY &&
                 s_try_segment(self, in, req, rep, started) == 0))
                return 0;
        if (popularity >= 0 && s_try_type(self, in, popularity, req, rep, started) == 0)
            return 0;
    }
    //  No model could answer: the popularity list, most popular first.
    self->seen_filtered = false;
    snprintf(rep->model_id, sizeof rep->model_id, "popularity");
    snprintf(rep->type, sizeof rep->type, "popularity");
    trace_span_t *filter = NULL;
    uint64_t filled = self->stats.filled;
    if (in->trace) {
        trace_span_t *span =
            s_scoring_start(in, "popularity", "popularity", 0, "popularity_list",
                            in->popular ? (int64_t)popular_list_size(in->popular) : 0);
        trace_span_end(&span);
        filter = s_filter_start(self, in);
    }
    s_fill(self, in, req, rep, true);
    s_filter_end(self, &filter, rep, filled);
    if (!self->seen_filtered && !self->degraded)
        snprintf(rep->segment, sizeof rep->segment, "all");
    self->stats.requests[RANKER_SERVE_LIST]++;
    s_observe(self, started);
    return 0;
}
