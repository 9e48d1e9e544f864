/*  evaluation.c: time-ordered hold-out split and ranking metrics over a
    scorer, multi-threaded over users.
*/
#include "evaluation.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topn.h"

#define S_TOP 20 //  longest list a metric looks at (recall@20)
#define S_USERS_PER_CLAIM 8

//  ---------------------------------------------------------------------
//  Split

void evaluation_split_destroy(evaluation_split_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    evaluation_split_t *self = *self_p;
    feedback_matrix_destroy(&self->train);
    free(self->train_users);
    free(self->train_items);
    free(self->train_values);
    free(self->train_times);
    free(self->test_ptr);
    free(self->test_items);
    free(self);
    *self_p = NULL;
}

typedef struct {
    int64_t time;
    size_t e; //  input position: the tie-break, and the event itself
} s_timed_t;

static int s_timed_cmp(const void *a, const void *b)
{
    const s_timed_t *x = a, *y = b;
    if (x->time != y->time)
        return (x->time > y->time) - (x->time < y->time);
    return (x->e > y->e) - (x->e < y->e);
}

typedef struct {
    int32_t item;
    float value;
} s_test_t;

static int s_test_cmp(const void *a, const void *b)
{
    const s_test_t *x = a, *y = b;
    return (x->item > y->item) - (x->item < y->item);
}

static bool s_row_has(const feedback_matrix_t *m, int32_t row, int32_t col)
{
    int64_t lo = m->row_ptr[row], hi = m->row_ptr[row + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->col[mid] < col)
            lo = mid + 1;
        else if (m->col[mid] > col)
            hi = mid;
        else
            return true;
    }
    return false;
}

evaluation_split_t *evaluation_split_new(const int32_t *users, const int32_t *items,
                                         const float *values, const int64_t *times, size_t n,
                                         int32_t n_users, int32_t n_items, double fraction,
                                         int32_t min_history, char *err, size_t errlen)
{
    evaluation_split_t *self = NULL;
    size_t *user_ptr = NULL;
    s_timed_t *order = NULL;
    bool *is_test = NULL;
    s_test_t *tests = NULL;

    if (n_users < 0 || n_items < 0 || !(fraction > 0 && fraction < 1) || min_history < 2 ||
        (n > 0 && (!users || !items || !values || !times))) {
        snprintf(err, errlen, "split: bad arguments (fraction %g, min_history %d)", fraction,
                 (int)min_history);
        return NULL;
    }
    for (size_t e = 0; e < n; e++)
        if (users[e] < 0 || users[e] >= n_users || items[e] < 0 || items[e] >= n_items) {
            snprintf(err, errlen, "split: event %zu out of range (user %d, video %d)", e,
                     (int)users[e], (int)items[e]);
            return NULL;
        }

    self = calloc(1, sizeof *self);
    user_ptr = calloc((size_t)n_users + 1, sizeof *user_ptr);
    order = malloc((n > 0 ? n : 1) * sizeof *order);
    is_test = calloc(n > 0 ? n : 1, sizeof *is_test);
    if (!self || !user_ptr || !order || !is_test)
        goto oom;
    self->n_users = n_users;
    self->n_items = n_items;

    //  Events grouped by user (counting sort), each group ordered by time.
    for (size_t e = 0; e < n; e++)
        user_ptr[users[e] + 1]++;
    for (int32_t u = 0; u < n_users; u++)
        user_ptr[u + 1] += user_ptr[u];
    {
        size_t *fill = malloc(((size_t)n_users + 1) * sizeof *fill);
        if (!fill)
            goto oom;
        memcpy(fill, user_ptr, ((size_t)n_users + 1) * sizeof *fill);
        for (size_t e = 0; e < n; e++)
            order[fill[users[e]]++] = (s_timed_t){times[e], e};
        free(fill);
    }
    size_t n_test_events = 0;
    for (int32_t u = 0; u < n_users; u++) {
        size_t begin = user_ptr[u], count = user_ptr[u + 1] - begin;
        if (count < (size_t)min_history)
            continue;
        qsort(order + begin, count, sizeof *order, s_timed_cmp);
        size_t n_test = (size_t)lround(fraction * (double)count);
        if (n_test < 1)
            n_test = 1;
        if (n_test > count - 1)
            n_test = count - 1;
        for (size_t a = begin + count - n_test; a < begin + count; a++)
            is_test[order[a].e] = true;
        n_test_events += n_test;
    }

    //  Train events, input order kept, and the train matrix.
    size_t n_train = n - n_test_events, cap = n_train > 0 ? n_train : 1;
    self->train_users = malloc(cap * sizeof *self->train_users);
    self->train_items = malloc(cap * sizeof *self->train_items);
    self->train_values = malloc(cap * sizeof *self->train_values);
    self->train_times = malloc(cap * sizeof *self->train_times);
    if (!self->train_users || !self->train_items || !self->train_values || !self->train_times)
        goto oom;
    size_t t = 0;
    for (size_t e = 0; e < n; e++)
        if (!is_test[e]) {
            self->train_users[t] = users[e];
            self->train_items[t] = items[e];
            self->train_values[t] = values[e];
            self->train_times[t] = times[e];
            t++;
        }
    self->n_train_events = n_train;
    self->train = feedback_matrix_new(n_users, n_items, self->train_users, self->train_items,
                                      self->train_values, n_train);
    if (!self->train)
        goto oom;

    //  Relevant test videos: summed test strength > 0, not in the train row.
    tests = malloc((n_test_events > 0 ? n_test_events : 1) * sizeof *tests);
    self->test_ptr = calloc((size_t)n_users + 1, sizeof *self->test_ptr);
    self->test_items = malloc((n_test_events > 0 ? n_test_events : 1) * sizeof(int32_t));
    if (!tests || !self->test_ptr || !self->test_items)
        goto oom;
    int64_t out = 0;
    for (int32_t u = 0; u < n_users; u++) {
        size_t m = 0;
        for (size_t a = user_ptr[u]; a < user_ptr[u + 1]; a++)
            if (is_test[order[a].e])
                tests[m++] = (s_test_t){items[order[a].e], values[order[a].e]};
        qsort(tests, m, sizeof *tests, s_test_cmp);
        int64_t begin = out;
        for (size_t a = 0; a < m;) {
            int32_t item = tests[a].item;
            double sum = 0;
            for (; a < m && tests[a].item == item; a++)
                sum += tests[a].value;
            if (sum > 0 && !s_row_has(self->train, u, item))
                self->test_items[out++] = item;
        }
        self->test_ptr[u + 1] = out;
        if (out > begin)
            self->n_test_users++;
    }

    free(user_ptr);
    free(order);
    free(is_test);
    free(tests);
    return self;
oom:
    snprintf(err, errlen, "split: out of memory (%zu events)", n);
    free(user_ptr);
    free(order);
    free(is_test);
    free(tests);
    evaluation_split_destroy(&self);
    return NULL;
}

evaluation_split_t *evaluation_split_again(const evaluation_split_t *self, double fraction,
                                           int32_t min_history, char *err, size_t errlen)
{
    return evaluation_split_new(self->train_users, self->train_items, self->train_values,
                                self->train_times, self->n_train_events, self->n_users,
                                self->n_items, fraction, min_history, err, errlen);
}

//  ---------------------------------------------------------------------
//  Metrics

typedef struct {
    double ndcg10, recall10, recall20, map10;
} s_user_result_t;

typedef struct {
    const evaluation_split_t *split;
    evaluation_score_fn fn;
    void *ctx;
    const int32_t *test_users; //  users with relevant items, ascending
    int32_t n_test_users;
    s_user_result_t *results; //  per test user ordinal
    bool *covered;            //  n_threads x n_items
    atomic_int next;
    atomic_bool failed;
} s_run_t;

typedef struct {
    s_run_t *run;
    bool *covered; //  this worker's row of run->covered
} s_worker_t;

static bool s_is_relevant(const int32_t *rel, int64_t n_rel, int32_t item)
{
    int64_t lo = 0, hi = n_rel;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (rel[mid] < item)
            lo = mid + 1;
        else if (rel[mid] > item)
            hi = mid;
        else
            return true;
    }
    return false;
}

static void s_user_metrics(const int32_t *top, int32_t got, const int32_t *rel, int64_t n_rel,
                           s_user_result_t *r)
{
    double dcg = 0, idcg = 0, ap = 0;
    int32_t hits10 = 0, hits20 = 0;
    for (int32_t p = 0; p < got && p < S_TOP; p++) {
        if (!s_is_relevant(rel, n_rel, top[p]))
            continue;
        hits20++;
        if (p < 10) {
            hits10++;
            dcg += 1.0 / log2((double)p + 2.0);
            ap += (double)hits10 / (double)(p + 1);
        }
    }
    int64_t ideal = n_rel < 10 ? n_rel : 10;
    for (int64_t p = 0; p < ideal; p++)
        idcg += 1.0 / log2((double)p + 2.0);
    r->ndcg10 = dcg / idcg;
    r->recall10 = (double)hits10 / (double)n_rel;
    r->recall20 = (double)hits20 / (double)n_rel;
    r->map10 = ap / (double)ideal;
}

static void *s_run_worker(void *arg)
{
    s_worker_t *w = arg;
    s_run_t *run = w->run;
    const evaluation_split_t *split = run->split;
    const feedback_matrix_t *train = split->train;
    int32_t n_items = split->n_items;
    float *scores = malloc((n_items > 0 ? (size_t)n_items : 1) * sizeof *scores);
    bool *skip = calloc(n_items > 0 ? (size_t)n_items : 1, sizeof *skip);
    if (!scores || !skip) {
        atomic_store(&run->failed, true);
        goto done;
    }
    for (;;) {
        int32_t begin = atomic_fetch_add(&run->next, S_USERS_PER_CLAIM);
        if (begin >= run->n_test_users || atomic_load(&run->failed))
            break;
        int32_t end = begin + S_USERS_PER_CLAIM;
        if (end > run->n_test_users)
            end = run->n_test_users;
        for (int32_t t = begin; t < end; t++) {
            int32_t u = run->test_users[t];
            int64_t hb = train->row_ptr[u], he = train->row_ptr[u + 1];
            user_history_t history = {train->col + hb, train->val + hb, (int32_t)(he - hb)};
            if (run->fn(run->ctx, u, &history, scores) != 0) {
                atomic_store(&run->failed, true);
                goto done;
            }
            for (int64_t a = hb; a < he; a++)
                skip[train->col[a]] = true;
            int32_t top[S_TOP];
            int32_t got = topn_select(scores, n_items, skip, top, S_TOP);
            for (int64_t a = hb; a < he; a++)
                skip[train->col[a]] = false;
            for (int32_t p = 0; p < got && p < 10; p++)
                w->covered[top[p]] = true;
            int64_t rb = split->test_ptr[u], re = split->test_ptr[u + 1];
            s_user_metrics(top, got, split->test_items + rb, re - rb, &run->results[t]);
        }
    }
done:
    free(scores);
    free(skip);
    return NULL;
}

int evaluation_run_fn(const evaluation_split_t *split, evaluation_score_fn fn, void *ctx,
                      int threads, evaluation_metrics_t *out, char *err, size_t errlen)
{
    s_run_t run = {.split = split, .fn = fn, .ctx = ctx};
    int32_t *test_users = NULL;
    s_worker_t *workers = NULL;
    pthread_t *tids = NULL;
    int started = 0, rc = -1;
    int32_t n_items = split->n_items;

    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }
    if (threads > split->n_test_users / S_USERS_PER_CLAIM + 1)
        threads = split->n_test_users / S_USERS_PER_CLAIM + 1;
    test_users = malloc(((size_t)split->n_test_users + 1) * sizeof *test_users);
    run.results = calloc((size_t)split->n_test_users + 1, sizeof *run.results);
    run.covered = calloc((size_t)threads * (size_t)(n_items > 0 ? n_items : 1), sizeof(bool));
    workers = calloc((size_t)threads, sizeof *workers);
    tids = calloc((size_t)threads, sizeof *tids);
    if (!test_users || !run.results || !run.covered || !workers || !tids) {
        snprintf(err, errlen, "evaluation: out of memory");
        goto done;
    }
    int32_t n_test = 0;
    for (int32_t u = 0; u < split->n_users; u++)
        if (split->test_ptr[u + 1] > split->test_ptr[u])
            test_users[n_test++] = u;
    run.test_users = test_users;
    run.n_test_users = n_test;
    atomic_init(&run.next, 0);
    atomic_init(&run.failed, false);

    for (; started < threads; started++) {
        workers[started] = (s_worker_t){&run, run.covered + (size_t)started * (size_t)n_items};
        if (pthread_create(&tids[started], NULL, s_run_worker, &workers[started]) != 0)
            break;
    }
    if (started < threads)
        atomic_store(&run.failed, true);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (started < threads) {
        snprintf(err, errlen, "evaluation: cannot start thread %d of %d", started + 1, threads);
        goto done;
    }
    if (atomic_load(&run.failed)) {
        snprintf(err, errlen, "evaluation: scoring failed (out of memory?)");
        goto done;
    }

    //  Sums in user order: the same figures whatever the thread count.
    evaluation_metrics_t m = {0};
    for (int32_t t = 0; t < n_test; t++) {
        m.ndcg10 += run.results[t].ndcg10;
        m.recall10 += run.results[t].recall10;
        m.recall20 += run.results[t].recall20;
        m.map10 += run.results[t].map10;
    }
    if (n_test > 0) {
        m.ndcg10 /= n_test;
        m.recall10 /= n_test;
        m.recall20 /= n_test;
        m.map10 /= n_test;
    }
    int64_t covered = 0;
    for (int32_t i = 0; i < n_items; i++)
        for (int t = 0; t < threads; t++)
            if (run.covered[(size_t)t * (size_t)n_items + (size_t)i]) {
                covered++;
                break;
            }
    m.coverage10 = n_items > 0 ? (double)covered / (double)n_items : 0.0;
    m.users = n_test;
    *out = m;
    rc = 0;
done:
    free(test_users);
    free(run.results);
    free(run.covered);
    free(workers);
    free(tids);
    return rc;
}

static int s_score_with_scorer(void *ctx, int32_t user, const user_history_t *history,
                               float *scores)
{
    (void)user; //  a scorer sees the history only
    const scorer_t *scorer = ctx;
    return scorer->score(scorer->model, history, scores);
}

int evaluation_run(const evaluation_split_t *split, const scorer_t *scorer, int threads,
                   evaluation_metrics_t *out, char *err, size_t errlen)
{
    if (!scorer || !scorer->score || scorer->n_items != split->n_items) {
        snprintf(err, errlen, "evaluation: scorer has %d videos, split has %d",
                 scorer ? (int)scorer->n_items : -1, (int)split->n_items);
        return -1;
    }
    return evaluation_run_fn(split, s_score_with_scorer, (void *)scorer, threads, out, err, errlen);
}

//  ---------------------------------------------------------------------
//  JSON

json_t *evaluation_metrics_to_json(const evaluation_metrics_t *self)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I}", "ndcg_at_10", self->ndcg10, "recall_at_10",
                     self->recall10, "recall_at_20", self->recall20, "map_at_10", self->map10,
                     "coverage_at_10", self->coverage10, "users", (json_int_t)self->users);
}

int evaluation_metrics_from_json(const json_t *json, evaluation_metrics_t *out)
{
    static const char *const keys[] = {"ndcg_at_10", "recall_at_10", "recall_at_20", "map_at_10",
                                       "coverage_at_10"};
    double v[5];
    if (!json_is_object(json))
        return -1;
    for (int k = 0; k < 5; k++) {
        json_t *x = json_object_get(json, keys[k]);
        if (!json_is_number(x))
            return -1;
        v[k] = json_number_value(x);
    }
    json_t *users = json_object_get(json, "users");
    if (!json_is_integer(users) || json_integer_value(users) < 0 ||
        json_integer_value(users) > INT32_MAX)
        return -1;
    *out = (evaluation_metrics_t){v[0], v[1], v[2], v[3], v[4], (int32_t)json_integer_value(users)};
    return 0;
}
