/*  gateway_recs.h: the query parameters and the JSON body of
    GET /api/v1/recs/{userId}?limit=&type=&exclude=&explain=.

    Body:
    {"user_id":str,"source":"model"|"cache"|"fallback","request_id":str,
     "items":[{"video_id":str,"score":num[,"reason":str|null]},...],
     "model_id":str|null,"generated_at":"2025-01-02T03:04:05.678Z",
     "type":str|null,"model_version":int|null}
    model_id is null when the answer did not come from a model (fallback,
    or the ranker sent an empty model id); model_version is null when it is
    0 (no model); type is the type that served (null if unknown). "reason"
    is present on every item only when explain was asked for: the id of a
    watched video that explains the item, null if none does.
    gateway_recs_render (the original form) leaves out type, model_version
    and reasons. Pure: no I/O.

    The first three members are the request's own; the rest, from "items"
    on, is the list's "shared part" (gateway_recs_render_shared), the same
    for every request that gets this list. The cache stores shared parts
    and a hit is answered by gateway_recs_stamp, which puts this request's
    head in front: two copies instead of parsing and re-serialising JSON.
*/
#ifndef RECSD_GATEWAY_RECS_H
#define RECSD_GATEWAY_RECS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

//  One item, borrowed from wherever it lives (a ranker reply or the
//  popularity list), so that both sources render through one function.
typedef struct {
    const char *video_id;
    double score;
    const char *reason; //  NULL or "" = none
} gateway_recs_item_t;

//  How an answer was made, all borrowed for the call.
typedef struct {
    const char *source;    //  "model", "cache" or "fallback"
    const char *model_id;  //  NULL or "" renders as null
    const char *type;      //  NULL or "" renders as null
    int64_t model_version; //  <= 0 renders as null
    bool explain;          //  render "reason" on every item
    uint64_t generated_at_ms;
    const char *request_id;
    const char *experiment_id; //  NULL or "": no experiment applied (not rendered)
    const char *variant;       //  the experiment's variant
} gateway_recs_meta_t;

//  Writes ms since the epoch as RFC 3339 UTC with milliseconds into buf
//  (>= 25 bytes). Returns buf.
char *gateway_recs_timestamp(uint64_t ms, char *buf, size_t buflen);

//  Parses `type`: NULL (absent) gives "" (the ranker's default, hybrid);
//  else one of hybrid, collaborative, content, popularity, copied into out
//  (>= PROTO_RECS_TYPE_MAX + 1 bytes). Returns 0, or -1 with the reason
//  in why.
int gateway_recs_type_parse(const char *text, char *out, size_t outlen, char *why, size_t whylen);

//  Parses `exclude`: NULL or "" gives no ids; else comma-separated video
//  ids, each 1..PROTO_ID_MAX bytes of 0x21..0x7e (no empty element), at
//  most PROTO_EXCLUDE_MAX. Fills req->exclude and req->exclude_count.
//  Returns 0, or -1 with the reason in why (req->exclude_count is then 0).
int gateway_recs_exclude_parse(const char *text, proto_recs_req_t *req, char *why, size_t whylen);

//  Parses `explain`: NULL gives false; "true"/"1" true, "false"/"0"
//  false, anything else is an error. Returns 0, or -1 with the reason.
int gateway_recs_explain_parse(const char *text, bool *out, char *why, size_t whylen);

//  True if video_id is in req's exclude list.
bool gateway_recs_excluded(const proto_recs_req_t *req, const char *video_id);

//  Renders the body. Items whose video_id is not valid UTF-8 are skipped
//  (they cannot be JSON strings). Returns a string the caller frees with
//  free() and its length in *len (if not NULL); NULL on allocation
//  failure or invalid user_id/request_id.
char *gateway_recs_render_meta(const char *user_id, const gateway_recs_item_t *items, size_t count,
                               const gateway_recs_meta_t *meta, size_t *len);

//  The shared part of the body gateway_recs_render_meta would make: a JSON
//  object that begins {"items": and holds no user, source or request id.
//  Same rules; the caller frees it.
char *gateway_recs_render_shared(const gateway_recs_item_t *items, size_t count,
                                 const gateway_recs_meta_t *meta, size_t *len);

//  A body from a shared part: {"user_id":..,"source":..,"request_id":..,
//  followed by the shared part's members. Returns a string the caller
//  frees and its length in *len (if not NULL); NULL if shared is not a
//  shared part (e.g. a whole body cached by an older gateway), an id is
//  longer than PROTO_ID_MAX or not UTF-8, or out of memory.
char *gateway_recs_stamp(const char *shared, size_t shared_len, const char *user_id,
                         const char *source, const char *request_id, size_t *len);

//  The original body (no type, model_version or reasons); same rules.
char *gateway_recs_render(const char *user_id, const gateway_recs_item_t *items, size_t count,
                          const char *source, const char *model_id, uint64_t generated_at_ms,
                          const char *request_id, size_t *len);

#endif
