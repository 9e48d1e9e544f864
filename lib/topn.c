/*  topn.c: partial selection of the best N scores with a min-heap kept in
    the output array itself: the root is the worst of the N kept so far,
    so each further candidate costs one comparison unless it is better.
*/
#include "topn.h"

#include <math.h>

//  a ranks strictly worse than b: lower score, or equal score and higher
//  index (ties go to the lower index).
static bool s_worse(const float *scores, int32_t a, int32_t b)
{
    float score_a = scores[a], score_b = scores[b];
    return score_a < score_b || (score_a == score_b && a > b);
}

static void s_sift_down(const float *scores, int32_t *heap, int32_t len, int32_t at)
{
    for (;;) {
        int32_t left = 2 * at + 1, right = left + 1, worst = at;
        if (left < len && s_worse(scores, heap[left], heap[worst]))
            worst = left;
        if (right < len && s_worse(scores, heap[right], heap[worst]))
            worst = right;
        if (worst == at)
            return;
        int32_t tmp = heap[at];
        heap[at] = heap[worst];
        heap[worst] = tmp;
        at = worst;
    }
}

static void s_sift_up(const float *scores, int32_t *heap, int32_t at)
{
    while (at > 0) {
        int32_t parent = (at - 1) / 2;
        if (!s_worse(scores, heap[at], heap[parent]))
            return;
        int32_t tmp = heap[at];
        heap[at] = heap[parent];
        heap[parent] = tmp;
        at = parent;
    }
}

//  Scores looked at together once the heap is full: a block none of whose
//  scores reaches the floor is passed over with one branch. The count
//  below has no early exit, so the compiler vectorises it; with 10,000
//  videos and N = 26 nearly every block is passed over (the ranker spent
//  ~15 us per request here scalar).
#define S_BLOCK 64

//  How many of block[0..S_BLOCK) are >= floor (NaN never is).
static int s_reaching(const float *block, float floor)
{
    int reaching = 0;
    for (int j = 0; j < S_BLOCK; j++)
        reaching += block[j] >= floor;
    return reaching;
}

int32_t topn_select(const float *scores, int32_t count, const bool *skip, int32_t *out, int32_t n)
{
    if (n <= 0)
        return 0;
    int32_t len = 0;
    //  Once the heap is full, most scores lose to its worst entry: compare
    //  against a copy of that score before touching the heap. A tie goes
    //  on to s_worse, which breaks it by index.
    float floor = -INFINITY;
    for (int32_t i = 0; i < count; i++) {
        if (len == n && i % S_BLOCK == 0 && count - i >= S_BLOCK &&
            s_reaching(scores + i, floor) == 0) {
            i += S_BLOCK - 1; //  nothing here can enter the heap
            continue;
        }
        float score = scores[i];
        if (!isfinite(score) || (skip && skip[i]))
            continue;
        if (len < n) {
            out[len] = i;
            s_sift_up(scores, out, len++);
            if (len == n)
                floor = scores[out[0]];
        } else if (score >= floor && s_worse(scores, out[0], i)) {
            out[0] = i;
            s_sift_down(scores, out, len, 0);
            floor = scores[out[0]];
        }
    }
    //  Heap sort in place: repeatedly move the worst to the end.
    for (int32_t end = len - 1; end > 0; end--) {
        int32_t tmp = out[0];
        out[0] = out[end];
        out[end] = tmp;
        s_sift_down(scores, out, end, 0);
    }
    return len;
}
