/*  gateway_recs.h: the JSON body of GET /api/v1/recs/{userId}.

    {"user_id":str,"items":[{"video_id":str,"score":num},...],
     "source":"model"|"cache"|"fallback","model_id":str|null,
     "generated_at":"2025-01-02T03:04:05.678Z","request_id":str}
    model_id is null when the answer did not come from a model (fallback,
    or the ranker sent an empty model id). Pure: no I/O.
*/
#ifndef RECSD_GATEWAY_RECS_H
#define RECSD_GATEWAY_RECS_H

#include <stddef.h>
#include <stdint.h>

//  One item, borrowed from wherever it lives (a ranker reply or the
//  popularity list), so that both sources render through one function.
typedef struct {
    const char *video_id;
    double score;
} gateway_recs_item_t;

//  Writes ms since the epoch as RFC 3339 UTC with milliseconds into buf
//  (>= 25 bytes). Returns buf.
char *gateway_recs_timestamp(uint64_t ms, char *buf, size_t buflen);

//  Renders the body. Items whose video_id is not valid UTF-8 are skipped
//  (they cannot be JSON strings). model_id NULL or "" renders as null.
//  Returns a string the caller frees with free() and its length in *len
//  (if not NULL); NULL on allocation failure or invalid user_id/request_id.
char *gateway_recs_render(const char *user_id, const gateway_recs_item_t *items, size_t count,
                          const char *source, const char *model_id, uint64_t generated_at_ms,
                          const char *request_id, size_t *len);

#endif
