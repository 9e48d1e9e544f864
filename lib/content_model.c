/*  content_model.c: TF-IDF item vectors over genres, tags and title words,
    and cosine item neighbours through an inverted index.

    Three passes: (1) tokenise every video, interning terms in a hash table
    and keeping each video's (term, count) list; (2) weigh (tf-idf, field
    weight) and L2-normalise into a CSR item x term matrix, and transpose it
    into the inverted index; (3) per video, accumulate dot products over the
    postings of its terms into a dense per-thread array and keep the top k,
    skipping work that cannot change the top k (see s_sim_row).
*/
#include "content_model.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_TERM_MAX 256 //  bytes of one term, prefix included; longer ones are cut
#define S_ROWS_PER_CLAIM 32

static const char *const s_stop_words[] = {
    "an",  "the", "and", "of",  "in",  "on", "at",  "to",  "for", "with", "from", "by",
    "is",  "it",  "its", "as",  "or",  "vs", "le",  "la",  "les", "el",   "los",  "las",
    "de",  "del", "der", "die", "das", "du", "des", "un",  "une", "ii",   "iii",  "iv",
    "aka", "my",  "me",  "you", "we",  "be", "no",  "not", "all", "part", NULL};

//  Field weights (see content_model.h).
#define S_W_GENRE 1.0f
#define S_W_TAG 1.0f
#define S_W_WORD 0.5f
#define S_W_DECADE 0.5f

//  ---------------------------------------------------------------------
//  Tokenising: each term is handed to an emit function.

typedef int (*s_emit_fn)(void *ctx, const char *term, size_t len, float weight);

static bool s_is_word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

static bool s_is_stop_word(const char *w, size_t len)
{
    for (int i = 0; s_stop_words[i]; i++)
        if (strlen(s_stop_words[i]) == len && memcmp(s_stop_words[i], w, len) == 0)
            return true;
    return false;
}

//  Emits prefix + text lower-cased, trimmed, inner white space collapsed.
static int s_emit_phrase(const char *prefix, const char *text, float weight, s_emit_fn emit,
                         void *ctx)
{
    char term[S_TERM_MAX];
    size_t len = strlen(prefix);
    if (len >= sizeof term)
        return -1;
    memcpy(term, prefix, len + 1); //  the NUL is overwritten: terms go by length
    size_t start = len;
    bool space = false;
    for (const unsigned char *p = (const unsigned char *)text; *p && len < sizeof term; p++) {
        if (isspace(*p)) {
            space = len > start;
            continue;
        }
        if (space && len + 1 < sizeof term)
            term[len++] = ' ';
        space = false;
        term[len++] = (char)tolower(*p);
    }
    if (len == start)
        return 0;
    return emit(ctx, term, len, weight);
}

//  Finds a trailing "(dddd)" (white space after it allowed) and returns the
//  year, or -1; *cut is the offset where the year part starts.
static int s_title_year(const char *title, size_t *cut)
{
    size_t len = strlen(title);
    while (len > 0 && isspace((unsigned char)title[len - 1]))
        len--;
    if (len < 6 || title[len - 1] != ')' || title[len - 6] != '(')
        return -1;
    int year = 0;
    for (size_t i = len - 5; i < len - 1; i++) {
        if (!isdigit((unsigned char)title[i]))
            return -1;
        year = year * 10 + (title[i] - '0');
    }
    *cut = len - 6;
    return year;
}

static int s_item_terms(const content_item_t *item, s_emit_fn emit, void *ctx)
{
    for (int32_t g = 0; g < item->n_genres; g++) {
        const char *genre = item->genres[g];
        if (!genre || strcmp(genre, "(no genres listed)") == 0)
            continue;
        if (s_emit_phrase("g:", genre, S_W_GENRE, emit, ctx) != 0)
            return -1;
    }
    for (int32_t t = 0; t < item->n_tags; t++)
        if (item->tags[t] && s_emit_phrase("t:", item->tags[t], S_W_TAG, emit, ctx) != 0)
            return -1;
    if (!item->title)
        return 0;

    size_t end = strlen(item->title);
    int year = s_title_year(item->title, &end);
    const unsigned char *p = (const unsigned char *)item->title;
    size_t i = 0;
    while (i < end) {
        while (i < end && !s_is_word_byte(p[i]))
            i++;
        size_t begin = i;
        while (i < end && s_is_word_byte(p[i]))
            i++;
        size_t wlen = i - begin;
        if (wlen < 2)
            continue;
        char term[S_TERM_MAX];
        if (wlen > sizeof term - 2)
            wlen = sizeof term - 2;
        term[0] = 'w';
        term[1] = ':';
        for (size_t c = 0; c < wlen; c++)
            term[2 + c] = (char)tolower(p[begin + c]);
        if (s_is_stop_word(term + 2, wlen))
            continue;
        if (emit(ctx, term, wlen + 2, S_W_WORD) != 0)
            return -1;
    }
    if (year >= 0) {
        char term[32];
        int len = snprintf(term, sizeof term, "y:%ds", year / 10 * 10);
        if (emit(ctx, term, (size_t)len, S_W_DECADE) != 0)
            return -1;
    }
    return 0;
}

typedef struct {
    char *out;
    size_t cap, used;
    int count;
} s_buffer_sink_t;

static int s_emit_to_buffer(void *ctx, const char *term, size_t len, float weight)
{
    (void)weight; //  the listing shows terms only
    s_buffer_sink_t *sink = ctx;
    if (sink->used + len + 1 > sink->cap)
        return -1;
    memcpy(sink->out + sink->used, term, len);
    sink->out[sink->used + len] = '\0';
    sink->used += len + 1;
    sink->count++;
    return 0;
}

int content_model_terms(const content_item_t *item, char *out, size_t outlen)
{
    s_buffer_sink_t sink = {out, outlen, 0, 0};
    if (s_item_terms(item, s_emit_to_buffer, &sink) != 0)
        return -1;
    return sink.count;
}

//  ---------------------------------------------------------------------
//  Term dictionary: open addressing over term ids, strings in one arena.

typedef struct {
    char *arena;
    size_t arena_len, arena_cap;
    size_t *offset; //  per term: start in arena
    uint32_t *len;
    float *weight; //  field weight of the term
    int32_t n_terms, terms_cap;
    int32_t *slots; //  term id + 1, 0 = empty
    size_t n_slots; //  power of two
} s_dict_t;

static uint64_t s_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void s_dict_free(s_dict_t *d)
{
    free(d->arena);
    free(d->offset);
    free(d->len);
    free(d->weight);
    free(d->slots);
}

static int s_dict_grow_slots(s_dict_t *d)
{
    size_t n_slots = d->n_slots ? d->n_slots * 2 : 1024;
    int32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return -1;
    for (int32_t t = 0; t < d->n_terms; t++) {
        size_t at = s_hash(d->arena + d->offset[t], d->len[t]) & (n_slots - 1);
        while (slots[at])
            at = (at + 1) & (n_slots - 1);
        slots[at] = t + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->n_slots = n_slots;
    return 0;
}

//  The id of term, added if new; -1 on allocation failure.
static int32_t s_dict_intern(s_dict_t *d, const char *term, size_t len, float weight)
{
    if ((size_t)d->n_terms * 2 >= d->n_slots && s_dict_grow_slots(d) != 0)
        return -1;
    size_t at = s_hash(term, len) & (d->n_slots - 1);
    //  Slots hold ids of terms already added: an empty dictionary has none to
    //  compare with (and no d->len yet).
    while (d->n_terms > 0 && d->slots[at]) {
        int32_t t = d->slots[at] - 1;
        if (d->len[t] == len && memcmp(d->arena + d->offset[t], term, len) == 0)
            return t;
        at = (at + 1) & (d->n_slots - 1);
    }
    if (d->n_terms == d->terms_cap) {
        int32_t cap = d->terms_cap ? d->terms_cap * 2 : 1024;
        size_t *offset = realloc(d->offset, (size_t)cap * sizeof *offset);
        if (!offset)
            return -1;
        d->offset = offset;
        uint32_t *lens = realloc(d->len, (size_t)cap * sizeof *lens);
        if (!lens)
            return -1;
        d->len = lens;
        float *weights = realloc(d->weight, (size_t)cap * sizeof *weights);
        if (!weights)
            return -1;
        d->weight = weights;
        d->terms_cap = cap;
    }
    if (d->arena_len + len > d->arena_cap) {
        size_t cap = d->arena_cap ? d->arena_cap * 2 : 65536;
        while (cap < d->arena_len + len)
            cap *= 2;
        char *arena = realloc(d->arena, cap);
        if (!arena)
            return -1;
        d->arena = arena;
        d->arena_cap = cap;
    }
    int32_t t = d->n_terms++;
    memcpy(d->arena + d->arena_len, term, len);
    d->offset[t] = d->arena_len;
    d->len[t] = (uint32_t)len;
    d->weight[t] = weight;
    d->arena_len += len;
    d->slots[at] = t + 1;
    return t;
}

//  ---------------------------------------------------------------------
//  Pass 1: every video's term ids (duplicates kept), appended to one array.

typedef struct {
    s_dict_t *dict;
    int32_t *ids;
    size_t n, cap;
} s_collect_t;

static int s_emit_to_dict(void *ctx, const char *term, size_t len, float weight)
{
    s_collect_t *c = ctx;
    int32_t id = s_dict_intern(c->dict, term, len, weight);
    if (id < 0)
        return -1;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        int32_t *ids = realloc(c->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        c->ids = ids;
        c->cap = cap;
    }
    c->ids[c->n++] = id;
    return 0;
}

static int s_int32_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

//  CSR sparse matrix: rows of (index, weight), index ascending.
typedef struct {
    int32_t n_rows;
    int64_t *ptr;
    int32_t *idx;
    float *w;
} s_csr_t;

static void s_csr_free(s_csr_t *m)
{
    free(m->ptr);
    free(m->idx);
    free(m->w);
}

//  ---------------------------------------------------------------------
//  Pass 3: similarities, one worker per thread claiming rows.
//
//  Exact top-k with pruning (the "max-score" idea of text retrieval): a
//  video's terms are visited rarest first, and every similarity is a sum
//  of positive products, so partial sums are lower bounds. Before scanning
//  a long posting list, if the k-th best partial sum already beats the
//  most any untouched video could still collect from the remaining terms
//  (sum of w_i(t) x max weight of t), no new candidate can enter the top
//  k: the remaining terms are then added to the touched videos only, by
//  merging each one's short term row. This is what keeps a catalogue where
//  half the videos are dramas from costing n^2 / 4.

typedef struct {
    const s_csr_t *items;    //  item -> (term, weight)
    const s_csr_t *postings; //  term -> (item, weight)
    const float *max_w;      //  per term: its largest weight in any video
    int32_t max_row;         //  longest item row
    item_neighbours_t *out;
    atomic_int next_row;
    atomic_bool failed;
} s_sim_job_t;

//  Per-thread scratch.
typedef struct {
    float *acc;       //  n_items partial similarities
    bool *mark;       //  n_items: touched?
    int32_t *touched; //  n_items
    float *select;    //  n_items: copy for the k-th largest
    int32_t *heap;    //  k
    int64_t *order;   //  max_row: positions of the row's terms, rarest first
    float *bound;     //  max_row + 1: suffix sums of w_i(t) x max_w(t)
    int64_t *rest;    //  max_row: positions of the remaining terms, by term id
} s_scratch_t;

//  a ranks strictly worse than b (lower similarity, or equal and higher index).
static bool s_worse(const float *acc, int32_t a, int32_t b)
{
    if (acc[a] != acc[b])
        return acc[a] < acc[b];
    return a > b;
}

static void s_heap_down(const float *acc, int32_t *heap, int32_t len, int32_t at)
{
    for (;;) {
        int32_t l = 2 * at + 1, r = l + 1, w = at;
        if (l < len && s_worse(acc, heap[l], heap[w]))
            w = l;
        if (r < len && s_worse(acc, heap[r], heap[w]))
            w = r;
        if (w == at)
            return;
        int32_t tmp = heap[at];
        heap[at] = heap[w];
        heap[w] = tmp;
        at = w;
    }
}

static void s_heap_up(const float *acc, int32_t *heap, int32_t at)
{
    while (at > 0) {
        int32_t parent = (at - 1) / 2;
        if (!s_worse(acc, heap[at], heap[parent]))
            return;
        int32_t tmp = heap[at];
        heap[at] = heap[parent];
        heap[parent] = tmp;
        at = parent;
    }
}

//  The k-th largest of v[0..n-1] (k <= n), by quickselect; reorders v.
static float s_kth_largest(float *v, int32_t n, int32_t k)
{
    int32_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        int32_t a = lo, b = hi;
        while (a <= b) {
            //  The pivot (or what a swap left behind) stops both scans
            //  inside [lo, hi]; the bounds only say so explicitly.
            while (a < hi && v[a] > pivot)
                a++;
            while (b > lo && v[b] < pivot)
                b--;
            if (a <= b) {
                float tmp = v[a];
                v[a] = v[b];
                v[b] = tmp;
                a++;
                b--;
            }
        }
        if (want <= b)
            hi = b;
        else if (want >= a)
            lo = a;
        else
            return v[want];
    }
    return v[want];
}

//  Insertion sort of a row's term positions by posting length, then term:
//  rows are short (tens of terms).
static void s_sort_rarest_first(const s_sim_job_t *job, int64_t *pos, int32_t n)
{
    const s_csr_t *items = job->items, *post = job->postings;
    for (int32_t a = 1; a < n; a++) {
        int64_t x = pos[a];
        int32_t tx = items->idx[x];
        int64_t lx = post->ptr[tx + 1] - post->ptr[tx];
        int32_t b = a - 1;
        for (; b >= 0; b--) {
            int32_t tb = items->idx[pos[b]];
            int64_t lb = post->ptr[tb + 1] - post->ptr[tb];
            if (lb < lx || (lb == lx && tb < tx))
                break;
            pos[b + 1] = pos[b];
        }
        pos[b + 1] = x;
    }
}

static void s_sim_row(s_sim_job_t *job, int32_t i, s_scratch_t *sc)
{
    const s_csr_t *items = job->items, *postings = job->postings;
    float *acc = sc->acc;
    int32_t k = job->out->k, n_touched = 0;
    if (k <= 0)
        return; //  no row to fill (content_model_train rejects k <= 0)
    int64_t row_begin = items->ptr[i];
    int32_t nt = (int32_t)(items->ptr[i + 1] - row_begin);
    for (int32_t p = 0; p < nt; p++)
        sc->order[p] = row_begin + p;
    s_sort_rarest_first(job, sc->order, nt);
    sc->bound[nt] = 0;
    for (int32_t p = nt; p > 0; p--)
        sc->bound[p - 1] =
            sc->bound[p] + items->w[sc->order[p - 1]] * job->max_w[items->idx[sc->order[p - 1]]];

    int32_t p = 0;
    for (; p < nt; p++) {
        int32_t t = items->idx[sc->order[p]];
        float wi = items->w[sc->order[p]];
        int64_t pb = postings->ptr[t], pe = postings->ptr[t + 1];
        //  Worth checking only when the posting is longer than the check.
        if (pe - pb > 2 * (int64_t)n_touched && n_touched > k) {
            int32_t m = 0;
            for (int32_t c = 0; c < n_touched; c++)
                if (sc->touched[c] != i)
                    sc->select[m++] = acc[sc->touched[c]];
            //  A margin for float rounding keeps the pruning exact.
            if (m >= k && s_kth_largest(sc->select, m, k) > sc->bound[p] * 1.0001f + 1e-6f)
                break;
        }
        for (int64_t b = pb; b < pe; b++) {
            int32_t j = postings->idx[b];
            if (!sc->mark[j]) {
                sc->mark[j] = true;
                sc->touched[n_touched++] = j;
            }
            acc[j] += wi * postings->w[b];
        }
    }
    if (p < nt) {
        //  The remaining terms, by term id, merged with each touched row.
        int32_t nr = nt - p;
        for (int32_t r = 0; r < nr; r++)
            sc->rest[r] = sc->order[p + r];
        for (int32_t a = 1; a < nr; a++) {
            int64_t x = sc->rest[a];
            int32_t b = a - 1;
            for (; b >= 0 && items->idx[sc->rest[b]] > items->idx[x]; b--)
                sc->rest[b + 1] = sc->rest[b];
            sc->rest[b + 1] = x;
        }
        for (int32_t c = 0; c < n_touched; c++) {
            int32_t j = sc->touched[c];
            int64_t a = items->ptr[j], ae = items->ptr[j + 1];
            int32_t r = 0;
            while (a < ae && r < nr) {
                int32_t ta = items->idx[a], tr = items->idx[sc->rest[r]];
                if (ta < tr)
                    a++;
                else if (ta > tr)
                    r++;
                else {
                    acc[j] += items->w[sc->rest[r]] * items->w[a];
                    a++;
                    r++;
                }
            }
        }
    }

    int32_t len = 0, *heap = sc->heap;
    for (int32_t c = 0; c < n_touched; c++) {
        int32_t j = sc->touched[c];
        if (j == i || !(acc[j] > 0.0f))
            continue;
        if (len < k) {
            heap[len] = j;
            s_heap_up(acc, heap, len++);
        } else if (s_worse(acc, heap[0], j)) {
            heap[0] = j;
            s_heap_down(acc, heap, len, 0);
        }
    }
    //  Heap sort: the worst goes to the end, so the row ends up best first.
    for (int32_t end = len - 1; end > 0; end--) {
        int32_t tmp = heap[0];
        heap[0] = heap[end];
        heap[end] = tmp;
        s_heap_down(acc, heap, end, 0);
    }
    int32_t *row = job->out->idx + (size_t)i * (size_t)k;
    float *row_sim = job->out->sim + (size_t)i * (size_t)k;
    for (int32_t c = 0; c < k; c++) {
        row[c] = c < len ? heap[c] : -1;
        row_sim[c] = c < len ? acc[heap[c]] : 0.0f;
    }
    for (int32_t c = 0; c < n_touched; c++) {
        acc[sc->touched[c]] = 0.0f;
        sc->mark[sc->touched[c]] = false;
    }
}

static void *s_sim_worker(void *arg)
{
    s_sim_job_t *job = arg;
    if (job->out->n_items <= 0)
        return NULL; //  no rows to claim
    size_t n = (size_t)job->out->n_items;
    size_t row = (size_t)job->max_row + 1;
    s_scratch_t sc = {
        .acc = calloc(n, sizeof(float)),
        .mark = calloc(n, sizeof(bool)),
        .touched = malloc(n * sizeof(int32_t)),
        .select = malloc(n * sizeof(float)),
        .heap = malloc((size_t)job->out->k * sizeof(int32_t)),
        .order = malloc(row * sizeof(int64_t)),
        .bound = malloc(row * sizeof(float)),
        .rest = malloc(row * sizeof(int64_t)),
    };
    if (!sc.acc || !sc.mark || !sc.touched || !sc.select || !sc.heap || !sc.order || !sc.bound ||
        !sc.rest) {
        atomic_store(&job->failed, true);
        goto done;
    }
    for (;;) {
        int32_t begin = atomic_fetch_add(&job->next_row, S_ROWS_PER_CLAIM);
        if (begin >= job->out->n_items || atomic_load(&job->failed))
            break;
        int32_t end = begin + S_ROWS_PER_CLAIM < job->out->n_items ? begin + S_ROWS_PER_CLAIM
                                                                   : job->out->n_items;
        for (int32_t i = begin; i < end; i++)
            s_sim_row(job, i, &sc);
    }
done:
    free(sc.acc);
    free(sc.mark);
    free(sc.touched);
    free(sc.select);
    free(sc.heap);
    free(sc.order);
    free(sc.bound);
    free(sc.rest);
    return NULL;
}

//  ---------------------------------------------------------------------

item_neighbours_t *content_model_train(const content_item_t *items, int32_t n_items, int32_t k,
                                       int threads, char *err, size_t errlen)
{
    s_dict_t dict = {0};
    s_collect_t collect = {.dict = &dict};
    int64_t *item_start = NULL;
    int32_t *df = NULL;
    float *max_w = NULL;
    s_csr_t vec = {0}, post = {0};
    item_neighbours_t *self = NULL;
    pthread_t *tids = NULL;
    int started = 0;

    if (n_items < 0 || (n_items > 0 && !items) || k <= 0 || k > ITEM_NEIGHBOURS_MAX_K) {
        snprintf(err, errlen, "content model: bad arguments (n_items %d, k %d)", (int)n_items,
                 (int)k);
        return NULL;
    }
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }

    //  Pass 1: tokenise.
    item_start = malloc(((size_t)n_items + 1) * sizeof *item_start);
    if (!item_start)
        goto oom;
    for (int32_t i = 0; i < n_items; i++) {
        item_start[i] = (int64_t)collect.n;
        if (s_item_terms(&items[i], s_emit_to_dict, &collect) != 0)
            goto oom;
        //  Not for fewer than two terms: collect.ids is still NULL when no video
        //  so far had any, and qsort (NULL, 0, ...) is undefined.
        size_t n_terms = collect.n - (size_t)item_start[i];
        if (n_terms > 1)
            qsort(collect.ids + item_start[i], n_terms, sizeof *collect.ids, s_int32_cmp);
    }
    item_start[n_items] = (int64_t)collect.n;

    //  Document frequencies over the distinct terms of each video.
    df = calloc((size_t)dict.n_terms + 1, sizeof *df);
    if (!df)
        goto oom;
    for (int32_t i = 0; i < n_items; i++)
        for (int64_t a = item_start[i]; a < item_start[i + 1]; a++)
            if (a == item_start[i] || collect.ids[a] != collect.ids[a - 1])
                df[collect.ids[a]]++;

    //  Pass 2: weights, L2 normalisation, CSR rows (terms ascending).
    size_t cells = collect.n > 0 ? collect.n : 1;
    vec.n_rows = n_items;
    vec.ptr = calloc((size_t)n_items + 1, sizeof *vec.ptr);
    vec.idx = malloc(cells * sizeof *vec.idx);
    vec.w = malloc(cells * sizeof *vec.w);
    if (!vec.ptr || !vec.idx || !vec.w)
        goto oom;
    int64_t nnz = 0;
    for (int32_t i = 0; i < n_items; i++) {
        int64_t row_begin = nnz;
        double norm = 0;
        for (int64_t a = item_start[i]; a < item_start[i + 1];) {
            int32_t t = collect.ids[a];
            int64_t tf = 0;
            for (; a < item_start[i + 1] && collect.ids[a] == t; a++)
                tf++;
            double idf = log((double)n_items / (double)df[t]);
            double w = dict.weight[t] * (1.0 + log((double)tf)) * idf;
            if (!(w > 0))
                continue;
            vec.idx[nnz] = t;
            vec.w[nnz] = (float)w;
            norm += w * w;
            nnz++;
        }
        norm = sqrt(norm);
        for (int64_t a = row_begin; a < nnz; a++)
            vec.w[a] = (float)(vec.w[a] / norm);
        vec.ptr[i + 1] = nnz;
    }

    //  Inverted index: the transpose, videos ascending within each term.
    post.n_rows = dict.n_terms;
    post.ptr = calloc((size_t)dict.n_terms + 1, sizeof *post.ptr);
    post.idx = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *post.idx);
    post.w = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *post.w);
    if (!post.ptr || !post.idx || !post.w)
        goto oom;
    for (int64_t a = 0; a < nnz; a++)
        post.ptr[vec.idx[a] + 1]++;
    for (int32_t t = 0; t < dict.n_terms; t++)
        post.ptr[t + 1] += post.ptr[t];
    //  df doubles as the fill cursor now that the weights are computed.
    for (int32_t t = 0; t < dict.n_terms; t++)
        df[t] = 0;
    for (int32_t i = 0; i < n_items; i++)
        for (int64_t a = vec.ptr[i]; a < vec.ptr[i + 1]; a++) {
            int32_t t = vec.idx[a];
            int64_t at = post.ptr[t] + df[t]++;
            post.idx[at] = i;
            post.w[at] = vec.w[a];
        }

    //  Pass 3: neighbours.
    self = item_neighbours_new(n_items, k);
    if (!self)
        goto oom;
    max_w = calloc((size_t)dict.n_terms + 1, sizeof *max_w);
    if (!max_w)
        goto oom;
    int32_t max_row = 0;
    for (int32_t i = 0; i < n_items; i++) {
        if (vec.ptr[i + 1] - vec.ptr[i] > max_row)
            max_row = (int32_t)(vec.ptr[i + 1] - vec.ptr[i]);
        for (int64_t a = vec.ptr[i]; a < vec.ptr[i + 1]; a++)
            if (vec.w[a] > max_w[vec.idx[a]])
                max_w[vec.idx[a]] = vec.w[a];
    }
    s_sim_job_t job = {
        .items = &vec, .postings = &post, .max_w = max_w, .max_row = max_row, .out = self};
    atomic_init(&job.next_row, 0);
    atomic_init(&job.failed, false);
    if (threads > n_items / S_ROWS_PER_CLAIM + 1)
        threads = n_items / S_ROWS_PER_CLAIM + 1;
    tids = calloc((size_t)threads, sizeof *tids);
    if (!tids)
        goto oom;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, s_sim_worker, &job) != 0)
            break;
    if (started < threads)
        atomic_store(&job.failed, true);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (started < threads) {
        snprintf(err, errlen, "content model: cannot start thread %d of %d", started + 1, threads);
        goto err;
    }
    if (atomic_load(&job.failed))
        goto oom;

    free(tids);
    free(item_start);
    free(df);
    free(max_w);
    free(collect.ids);
    s_dict_free(&dict);
    s_csr_free(&vec);
    s_csr_free(&post);
    return self;
oom:
    snprintf(err, errlen, "content model: out of memory (%d videos)", (int)n_items);
err:
    free(tids);
    free(item_start);
    free(df);
    free(max_w);
    free(collect.ids);
    s_dict_free(&dict);
    s_csr_free(&vec);
    s_csr_free(&post);
    item_neighbours_destroy(&self);
    return NULL;
}
