/*  cooccurrence.c: bounded real-time item-to-item co-occurrence (see
    cooccurrence.h).

    Each interned video has a number and an s_video_t holding its id (the
    one copy, also the hash's key) and its neighbour list: a small array
    of (neighbour number, count), scanned linearly (at most max_neighbours
    entries, 32 by default, so a scan beats any index).

    Scoring accumulates into a dense array indexed by video number, with a
    generation stamp per video instead of clearing it per call, then picks
    the top k from a max-heap of the touched candidates: the skip filter is
    asked only about candidates that would otherwise be returned.
*/
#include "cooccurrence.h"

#include <czmq.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define S_FIRST_CAP 4 //  a neighbour list's first allocation

//  What one interned video costs the hash, for the estimate: zhashx's
//  item (40 bytes and malloc's header) and its share of the bucket array
//  (kept under 75% full).
#define S_HASH_ITEM_BYTES 60

typedef struct {
    int32_t video;  //  neighbour number
    uint32_t count; //  saturating
} s_entry_t;

typedef struct {
    char *id;           //  owned; also the key in self->numbers
    s_entry_t *entries; //  cap allocated, n used
    uint32_t n, cap;
} s_video_t;

struct cooccurrence_t {
    int window;
    uint32_t max_neighbours;
    int32_t max_videos;
    zhashx_t *numbers; //  id -> number + 1 (keys borrowed from videos[])
    s_video_t *videos; //  number -> video
    int32_t n_videos, videos_cap;
    size_t n_pairs;       //  entries stored over all lists
    size_t entries_bytes; //  allocated over all lists
    size_t id_bytes;      //  id strings, terminators included
    uint64_t dropped;
    //  Scoring scratch, scratch_cap entries each.
    float *acc;       //  score per video, valid where stamp == gen
    uint32_t *stamp;  //  generation a video was last touched in
    int32_t *touched; //  videos touched in this call
    int32_t scratch_cap;
    uint32_t gen;
};

cooccurrence_t *cooccurrence_new(int window, int max_neighbours, int32_t max_videos)
{
    if (window < 1 || window > COOCCURRENCE_WINDOW_LIMIT || max_neighbours < 1 ||
        max_neighbours > COOCCURRENCE_NEIGHBOURS_LIMIT || max_videos < 1 ||
        max_videos > INT32_MAX - 1)
        return NULL;
    cooccurrence_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->window = window;
    self->max_neighbours = (uint32_t)max_neighbours;
    self->max_videos = max_videos;
    self->numbers = zhashx_new();
    if (!self->numbers) {
        free(self);
        return NULL;
    }
    //  The key is the id string videos[] owns: one copy per video.
    zhashx_set_key_duplicator(self->numbers, NULL);
    zhashx_set_key_destructor(self->numbers, NULL);
    return self;
}

void cooccurrence_destroy(cooccurrence_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cooccurrence_t *self = *self_p;
    zhashx_destroy(&self->numbers);
    for (int32_t i = 0; i < self->n_videos; i++) {
        free(self->videos[i].id);
        free(self->videos[i].entries);
    }
    free(self->videos);
    free(self->acc);
    free(self->stamp);
    free(self->touched);
    free(self);
    *self_p = NULL;
}

static bool s_valid_id(const char *id)
{
    return id && id[0] && strnlen(id, PROTO_ID_MAX + 1) <= PROTO_ID_MAX;
}

//  The number of a known video, or -1.
static int32_t s_lookup(const cooccurrence_t *self, const char *id)
{
    return (int32_t)((intptr_t)zhashx_lookup(self->numbers, id) - 1);
}

//  The number of id, interned if new. Returns -1 on allocation failure,
//  -2 if the max_videos bound drops it (counted).
static int32_t s_intern(cooccurrence_t *self, const char *id)
{
    int32_t number = s_lookup(self, id);
    if (number >= 0)
        return number;
    if (self->n_videos >= self->max_videos) {
        self->dropped++;
        return -2;
    }
    if (self->n_videos == self->videos_cap) {
        int32_t cap = self->videos_cap ? self->videos_cap * 2 : 1024;
        if (cap > self->max_videos)
            cap = self->max_videos;
        s_video_t *bigger = realloc(self->videos, (size_t)cap * sizeof *bigger);
        if (!bigger)
            return -1;
        self->videos = bigger;
        self->videos_cap = cap;
    }
    char *copy = strdup(id);
    if (!copy)
        return -1;
    number = self->n_videos;
    //  NOLINTNEXTLINE(performance-no-int-to-ptr): the value is a number, never dereferenced
    if (zhashx_insert(self->numbers, copy, (void *)(intptr_t)(number + 1)) != 0) {
        free(copy);
        return -1;
    }
    self->videos[number] = (s_video_t){.id = copy};
    self->n_videos++;
    self->id_bytes += strlen(copy) + 1;
    return number;
}

//  Adds 1 to count(from, to), by the Space-Saving rule when from's list is
//  full. Returns 0, or -1 on allocation failure (nothing changed).
static int s_bump(cooccurrence_t *self, int32_t from, int32_t to)
{
    s_video_t *v = &self->videos[from];
    uint32_t n = v->n, cap = v->cap;
    for (uint32_t i = 0; i < n; i++)
        if (v->entries[i].video == to) {
            if (v->entries[i].count < UINT32_MAX)
                v->entries[i].count++;
            return 0;
        }
    if (n == cap && cap < self->max_neighbours) {
        uint32_t bigger_cap = cap ? cap * 2 : S_FIRST_CAP;
        if (bigger_cap > self->max_neighbours)
            bigger_cap = self->max_neighbours;
        s_entry_t *bigger = realloc(v->entries, (size_t)bigger_cap * sizeof *bigger);
        if (!bigger)
            return -1;
        self->entries_bytes += (size_t)(bigger_cap - cap) * sizeof *bigger;
        v->entries = bigger;
        v->cap = cap = bigger_cap;
    }
    if (n < cap) {
        v->entries[n] = (s_entry_t){.video = to, .count = 1};
        v->n = n + 1;
        self->n_pairs++;
        return 0;
    }
    //  Full at max_neighbours (at least 1, see cooccurrence_new): replace the
    //  (first) lowest count.
    if (n == 0)
        return -1;
    uint32_t low = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v->entries[i].count < v->entries[low].count)
            low = i;
    uint32_t count = v->entries[low].count;
    v->entries[low] = (s_entry_t){.video = to, .count = count < UINT32_MAX ? count + 1 : count};
    return 0;
}

int cooccurrence_record(cooccurrence_t *self, const char *const *recent, size_t n_recent,
                        const char *video)
{
    if (!s_valid_id(video))
        return 0;
    int32_t number = s_intern(self, video);
    if (number == -2)
        return 0;
    if (number < 0)
        return -1;
    int32_t partners[COOCCURRENCE_WINDOW_LIMIT];
    int n = 0;
    for (size_t i = 0; i < n_recent && n < self->window; i++) {
        if (!s_valid_id(recent[i]))
            continue;
        int32_t partner = s_intern(self, recent[i]);
        if (partner == -2)
            continue;
        if (partner < 0)
            return -1;
        bool repeat = partner == number;
        for (int j = 0; j < n && !repeat; j++)
            repeat = partners[j] == partner;
        if (repeat)
            continue;
        if (s_bump(self, number, partner) != 0 || s_bump(self, partner, number) != 0)
            return -1;
        partners[n++] = partner;
    }
    return n;
}

//  Grows the scoring scratch to cover every interned video. Returns 0 or
//  -1 on allocation failure (the scratch stays usable at its old size).
static int s_scratch_fit(cooccurrence_t *self)
{
    if (self->scratch_cap >= self->n_videos)
        return 0;
    int32_t cap = self->videos_cap;
    float *acc = realloc(self->acc, (size_t)cap * sizeof *acc);
    if (!acc)
        return -1;
    self->acc = acc;
    uint32_t *stamp = realloc(self->stamp, (size_t)cap * sizeof *stamp);
    if (!stamp)
        return -1;
    self->stamp = stamp;
    //  New videos are untouched in every generation so far.
    memset(stamp + self->scratch_cap, 0, (size_t)(cap - self->scratch_cap) * sizeof *stamp);
    int32_t *touched = realloc(self->touched, (size_t)cap * sizeof *touched);
    if (!touched) {
        //  acc and stamp are already bigger; that is harmless.
        return -1;
    }
    self->touched = touched;
    self->scratch_cap = cap;
    return 0;
}

//  True if video a ranks before video b: higher score, then lower id.
static bool s_before(const cooccurrence_t *self, int32_t a, int32_t b)
{
    if (self->acc[a] != self->acc[b])
        return self->acc[a] > self->acc[b];
    return strcmp(self->videos[a].id, self->videos[b].id) < 0;
}

static void s_sift_down(const cooccurrence_t *self, int32_t *heap, int32_t n, int32_t i)
{
    for (;;) {
        int32_t best = i, l = 2 * i + 1, r = l + 1;
        if (l < n && s_before(self, heap[l], heap[best]))
            best = l;
        if (r < n && s_before(self, heap[r], heap[best]))
            best = r;
        if (best == i)
            return;
        int32_t t = heap[i];
        heap[i] = heap[best];
        heap[best] = t;
        i = best;
    }
}

int cooccurrence_score(cooccurrence_t *self, const char *const *recent, const float *weights,
                       size_t n_recent, cooccurrence_skip_fn skip, void *arg, const char **ids,
                       float *scores, int k)
{
    if (k <= 0 || n_recent == 0 || self->n_videos == 0)
        return 0;
    if (s_scratch_fit(self) != 0)
        return -1;
    if (++self->gen == 0) {
        //  Wrapped after 2^32 calls: forget every old stamp.
        memset(self->stamp, 0, (size_t)self->scratch_cap * sizeof *self->stamp);
        self->gen = 1;
    }
    const uint32_t gen = self->gen;
    int32_t n_touched = 0;
    //  The recent videos first, at -INFINITY: adding finite amounts keeps
    //  them there, so they can never be candidates.
    for (size_t i = 0; i < n_recent; i++) {
        int32_t r = s_valid_id(recent[i]) ? s_lookup(self, recent[i]) : -1;
        if (r >= 0 && self->stamp[r] != gen) {
            self->stamp[r] = gen;
            self->acc[r] = -INFINITY;
        }
    }
    for (size_t i = 0; i < n_recent; i++) {
        float w = weights ? weights[i] : 1.0f;
        if (!isfinite(w) || w == 0.0f || !s_valid_id(recent[i]))
            continue;
        int32_t r = s_lookup(self, recent[i]);
        if (r < 0)
            continue;
        const s_video_t *v = &self->videos[r];
        for (uint32_t j = 0; j < v->n; j++) {
            int32_t c = v->entries[j].video;
            if (self->stamp[c] != gen) {
                self->stamp[c] = gen;
                self->acc[c] = 0.0f;
                self->touched[n_touched++] = c;
            }
            self->acc[c] += w * (float)v->entries[j].count;
        }
    }
    //  Candidates: touched, not recent, positive. Heapify, then pop best
    //  first until k pass the filter: O(m + k' log m) for m candidates.
    int32_t m = 0;
    for (int32_t i = 0; i < n_touched; i++) {
        int32_t c = self->touched[i];
        if (self->acc[c] > 0.0f && isfinite(self->acc[c]))
            self->touched[m++] = c;
    }
    int32_t *heap = self->touched;
    for (int32_t i = m / 2 - 1; i >= 0; i--)
        s_sift_down(self, heap, m, i);
    int out = 0;
    while (out < k && m > 0) {
        int32_t c = heap[0];
        heap[0] = heap[--m];
        s_sift_down(self, heap, m, 0);
        if (skip && skip(arg, self->videos[c].id))
            continue;
        ids[out] = self->videos[c].id;
        scores[out] = self->acc[c];
        out++;
    }
    return out;
}

uint32_t cooccurrence_count(const cooccurrence_t *self, const char *a, const char *b)
{
    if (!s_valid_id(a) || !s_valid_id(b))
        return 0;
    int32_t from = s_lookup(self, a), to = s_lookup(self, b);
    if (from < 0 || to < 0)
        return 0;
    const s_video_t *v = &self->videos[from];
    for (uint32_t i = 0; i < v->n; i++)
        if (v->entries[i].video == to)
            return v->entries[i].count;
    return 0;
}

size_t cooccurrence_videos(const cooccurrence_t *self)
{
    return (size_t)self->n_videos;
}

size_t cooccurrence_pairs(const cooccurrence_t *self)
{
    return self->n_pairs;
}

uint64_t cooccurrence_dropped(const cooccurrence_t *self)
{
    return self->dropped;
}

size_t cooccurrence_memory(const cooccurrence_t *self)
{
    size_t scratch = sizeof(float) + sizeof(uint32_t) + sizeof(int32_t);
    return sizeof *self + (size_t)self->videos_cap * sizeof(s_video_t) + self->entries_bytes +
           self->id_bytes + (size_t)self->n_videos * S_HASH_ITEM_BYTES +
           (size_t)self->scratch_cap * scratch;
}
