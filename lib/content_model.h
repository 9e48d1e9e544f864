/*  content_model.h: the content-based model: TF-IDF vectors of a video's
    genres, tags and title words, and for every video its k most similar
    videos by cosine similarity.

    It sees the whole catalogue, so it links videos that nobody has watched
    yet to the ones a user did watch: it is the model that serves cold-start
    items. Scoring goes through item_neighbours_scorer() (item_neighbours.h),
    which sums the similarities of the user's positive history.

    Terms are field-prefixed so that the same word means different things in
    different fields: "g:comedy" (a genre), "t:pixar animation" (a whole
    tag, lower-cased, inner white space collapsed), "w:toy" (a title word),
    "y:1990s" (the decade of a MovieLens title's "(1995)"). The exact year
    is not a token: a year is shared by hundreds of unrelated films, so as a
    word it would link them about as strongly as a real title word does; the
    decade keeps the era, which is a real taste signal, at half weight.
    Title words are lower-cased ASCII split on anything that is not a letter
    or digit (bytes >= 0x80 count as letters, so UTF-8 words stay whole);
    words shorter than 2 bytes and a small stop-word list are dropped.
    The genre "(no genres listed)" is not a genre.

    Weight of term t in video d: field_weight * (1 + ln tf) * ln(N / df)
    (N = catalogue size; a term in every video has weight 0), then each
    vector is L2-normalised. Field weights: genre 1, tag 1, title word 0.5
    (titles share common words between unrelated films), decade 0.5.

    Similarities come from an inverted index (term -> videos), one dense
    accumulator per thread: the cost is at most the sum over videos of their
    terms' posting lengths, not n x n x terms, and long postings of common
    terms (a genre half the catalogue has) are skipped whenever they can no
    longer change a video's top k (exact, see content_model.c). Measured on
    2 cores: MovieLens latest-small (9.7k videos, k 100) ~0.5-0.9 s; a
    synthetic 100k-video catalogue ~15 s. Rows are independent, so the
    result does not depend on the number of threads.
*/
#ifndef RECSD_CONTENT_MODEL_H
#define RECSD_CONTENT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "item_neighbours.h"

//  One catalogue video. All strings and arrays are borrowed for the call.
//  title may be NULL; genres/tags may be NULL when their count is 0. A tag
//  given several times (by several users) counts several times (tf).
typedef struct {
    const char *title;
    const char *const *genres;
    int32_t n_genres;
    const char *const *tags;
    int32_t n_tags;
} content_item_t;

//  Trains the model over items[0..n_items-1] (video index = array index):
//  for every video its (at most) k most similar other videos with a
//  positive cosine similarity, most similar first, ties to the lower index.
//  threads <= 0 means the number of online CPUs. Returns a table the caller
//  owns (item_neighbours_destroy), or NULL with the reason in err (bad
//  arguments, out of memory, thread creation failed).
item_neighbours_t *content_model_train(const content_item_t *items, int32_t n_items, int32_t k,
                                       int threads, char *err, size_t errlen);

//  Appends the terms of one video (as above, without weights, duplicates
//  kept, in field order genres, tags, title words, decade) to out, each
//  NUL-terminated, one after the other; returns the number of terms, or -1
//  if out (outlen bytes) is too small. For tests and for explanations
//  ("because you watched ... (g:comedy)"). Cannot fail otherwise.
int content_model_terms(const content_item_t *item, char *out, size_t outlen);

#endif
