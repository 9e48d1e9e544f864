/*  proto.h: every message recsd processes send each other, defined once.

    Wire format (msgpack): an array of exactly 6 elements, the envelope
        [ version:uint, type:uint, request_id:str, traceparent:str,
          deadline_ms:uint, body:map ]
    version    PROTO_VERSION; other versions are rejected.
    type       proto_type_t.
    request_id printable ASCII, 0..PROTO_ID_MAX bytes (may be empty).
    traceparent W3C trace context ("00-<32 hex>-<16 hex>-<2 hex>") or "".
    deadline_ms absolute, ms since the Unix epoch; 0 means none.
    body       a map with string keys, per type (see the structs below);
               unknown keys are ignored so that a newer sender can add fields,
               missing required keys are an error.

    Decoding never trusts the input: wrong types, truncation, trailing bytes,
    over-long strings, too many items, non-printable ids and messages larger
    than PROTO_MAX_MESSAGE are all errors, returned with a reason.

    Ownership: proto_decode() hands the caller a proto_msg_t that the caller
    frees with proto_msg_destroy(). Arrays inside a message (status actors,
    recommendation items) belong to the message. proto_encode() borrows msg.
*/
#ifndef RECSD_PROTO_H
#define RECSD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAX_MESSAGE (1024 * 1024)
#define PROTO_ID_MAX 64          //  request ids, user ids, video ids, model ids
#define PROTO_NAME_MAX 31        //  actor names
#define PROTO_STATE_MAX 15       //  actor states
#define PROTO_KIND_MAX 23        //  interaction kinds
#define PROTO_TRACEPARENT_LEN 55 //  exact length of a W3C traceparent
#define PROTO_TEXT_MAX 255       //  free-form messages
#define PROTO_MAX_ITEMS 1000     //  recommendation items per reply
#define PROTO_MAX_ACTORS 64      //  actor rows per status reply
#define PROTO_METRICS_MAX 12288  //  an actor's metrics text (see heartbeat)
#define PROTO_EXCLUDE_MAX 100    //  video ids a RECS_REQ may exclude
#define PROTO_RECS_TYPE_MAX 15   //  recommendation types ("collaborative")
#define PROTO_LEVEL_MAX 7        //  log levels ("debug", "info", "warn", "error")

typedef enum {
    PROTO_HEARTBEAT = 1,    //  actor -> supervisor, on the control socket
    PROTO_STOP = 2,         //  supervisor -> actor: stop gracefully (empty body)
    PROTO_DRAIN = 3,        //  supervisor -> gateway / ctl -> supervisor: readiness false
    PROTO_STATUS_REQ = 4,   //  any -> supervisor: the actor table (empty body)
    PROTO_STATUS_REP = 5,   //  supervisor -> asker
    PROTO_RESTART_REQ = 6,  //  ctl -> supervisor: restart one actor gracefully
    PROTO_RESULT = 7,       //  generic reply: code 0 = ok, else an error
    PROTO_RECS_REQ = 8,     //  gateway -> ranker
    PROTO_RECS_REP = 9,     //  ranker -> gateway
    PROTO_INTERACTION = 10, //  event-ingestor -> ranker (PUB/SUB): a stored interaction
    PROTO_LOG_LEVEL = 11,   //  ctl -> supervisor -> actors: set the minimum log level
    PROTO_TYPE_MAX = 11
} proto_type_t;

typedef struct {
    uint32_t version;
    proto_type_t type;
    char request_id[PROTO_ID_MAX + 1];
    char traceparent[PROTO_TRACEPARENT_LEN + 1];
    uint64_t deadline_ms;
} proto_header_t;

//  PROTO_HEARTBEAT body: {"name","pid","state","handled","queue"[,"metrics"]
//  [,"log_level"]}
//  state is "starting", "ready" or "stopping". metrics (optional) is the
//  actor's own counters as Prometheus text format 0.0.4 lines (# HELP,
//  # TYPE and samples), at most PROTO_METRICS_MAX bytes of printable ASCII
//  and newlines; the gateway merges them into /metrics. log_level
//  (optional, absent = "" = not reported) is the actor's current minimum
//  log level: "debug", "info", "warn" or "error".
typedef struct {
    char name[PROTO_NAME_MAX + 1];
    int32_t pid;
    char state[PROTO_STATE_MAX + 1];
    uint64_t handled;     //  messages handled since start
    uint64_t queue_depth; //  work waiting in the actor
    char *metrics;        //  NULL if none; owned by the message (malloc'd)
    char log_level[PROTO_LEVEL_MAX + 1];
} proto_heartbeat_t;

//  One row of PROTO_STATUS_REP: {"name","pid","state","restarts","uptime_ms",
//  "heartbeat_age_ms","rss_bytes","handled","queue"[,"metrics"][,"log_level"]};
//  metrics is the actor's last heartbeat's, same rules. state is one of
//  "starting", "running", "backoff", "failed", "stopping", "stopped".
//  pid 0 and ages -1 mean "no process right now". log_level (optional,
//  absent = "") is the level the process last reported, or, with no
//  process or no report yet, the level the supervisor will start it with.
typedef struct {
    char name[PROTO_NAME_MAX + 1];
    int32_t pid;
    char state[PROTO_STATE_MAX + 1];
    uint32_t restarts;
    int64_t uptime_ms;
    int64_t heartbeat_age_ms;
    uint64_t rss_bytes;
    uint64_t handled;
    uint64_t queue_depth;
    char *metrics; //  NULL if none; owned by the message (malloc'd)
    char log_level[PROTO_LEVEL_MAX + 1];
} proto_actor_status_t;

//  PROTO_STATUS_REP body: {"draining":bool, "uptime_ms":int, "actors":[row...]
//  [,"log_level"]}; log_level (optional, absent = "") is the supervisor's own.
typedef struct {
    bool draining;
    int64_t uptime_ms; //  supervisor uptime
    uint32_t count;
    proto_actor_status_t *actors; //  owned by the message
    char log_level[PROTO_LEVEL_MAX + 1];
} proto_status_rep_t;

//  PROTO_RESTART_REQ body: {"actor"}
typedef struct {
    char actor[PROTO_NAME_MAX + 1];
} proto_restart_req_t;

//  PROTO_LOG_LEVEL body: {"level", "actor"}. level is "debug", "info", "warn"
//  or "error". actor names what to set: "" for the supervisor and every
//  actor, "supervisor" for the supervisor only, an actor name ("ranker")
//  for every instance of it, or an instance name ("ranker.2"). The
//  supervisor answers ctl with a PROTO_RESULT and forwards the message
//  (actor as received) to each matching actor on the control socket.
typedef struct {
    char level[PROTO_LEVEL_MAX + 1];
    char actor[PROTO_NAME_MAX + 1];
} proto_log_level_t;

//  PROTO_RESULT body: {"code":int, "message":str}
typedef struct {
    int32_t code;
    char message[PROTO_TEXT_MAX + 1];
} proto_result_t;

//  PROTO_RECS_REQ body: {"user_id", "limit"[, "type", "exclude", "explain"]};
//  limit 1..PROTO_MAX_ITEMS. Optional (absent = the default):
//    type     "" (default: hybrid), "hybrid", "collaborative", "content" or
//             "popularity": the type the ranker serves first
//    exclude  array of at most PROTO_EXCLUDE_MAX video ids never to return
//    explain  bool: give each item a reason
//    model_id a pinned model (an experiment's variant): served instead of
//             the active model of its type, when the ranker holds it
//    blend    [content_k, content_floor, ease_share]: hybrid blend for this
//             request (an experiment's variant), instead of the configured one
//  Encoded only when not the default, so an older ranker still decodes it.
typedef struct {
    char user_id[PROTO_ID_MAX + 1];
    uint32_t limit;
    char type[PROTO_RECS_TYPE_MAX + 1];
    bool explain;
    char model_id[PROTO_ID_MAX + 1];
    bool has_blend;
    double blend[3]; //  content_k >= 0, content_floor and ease_share in [0, 1]
    uint32_t exclude_count;
    char exclude[PROTO_EXCLUDE_MAX][PROTO_ID_MAX + 1];
} proto_recs_req_t;

//  On the wire [video_id, score] or, with a reason, [video_id, score, reason].
typedef struct {
    char video_id[PROTO_ID_MAX + 1];
    double score;
    char reason[PROTO_ID_MAX + 1]; //  a watched video id explaining it, or ""
} proto_rec_item_t;

//  PROTO_RECS_REP body: {"user_id","source","model_id","items":[item...]
//  [, "type", "model_version", "segment"]}
//  source is "model", "cache" or "fallback"; model_id may be "". type (absent
//  = "") is "" or one of the RECS_REQ types: the one that served. model_version
//  (absent = 0) is the serving model's registry version, 0 for none.
//  segment (absent = "") names the audience segment when the list is the
//  same for every user of it (nothing personal filtered out), so that it
//  may be cached once per segment rather than per user.
typedef struct {
    char user_id[PROTO_ID_MAX + 1];
    char source[PROTO_STATE_MAX + 1];
    char model_id[PROTO_ID_MAX + 1];
    char type[PROTO_RECS_TYPE_MAX + 1];
    int64_t model_version; //  >= 0
    char segment[PROTO_ID_MAX + 1];
    uint32_t count;
    proto_rec_item_t *items; //  owned by the message
} proto_recs_rep_t;

//  True if type is "" or one of the recommendation types above.
bool proto_recs_type_valid(const char *type);

//  PROTO_INTERACTION body: {"user_id","video_id","kind","weight","occurred_ms"}
//  kind is "watch", "rating", "watchlist_add" or "watchlist_remove"; weight
//  is finite. Sent after the interaction is committed in PostgreSQL, so the
//  ranker can fold it into the user's state at once.
typedef struct {
    char user_id[PROTO_ID_MAX + 1];
    char video_id[PROTO_ID_MAX + 1];
    char kind[PROTO_KIND_MAX + 1];
    double weight;
    uint64_t occurred_ms;
} proto_interaction_t;

typedef struct {
    proto_header_t header;
    union {
        proto_heartbeat_t heartbeat;
        proto_status_rep_t status;
        proto_restart_req_t restart;
        proto_result_t result;
        proto_recs_req_t recs_req;
        proto_recs_rep_t recs_rep;
        proto_interaction_t interaction;
        proto_log_level_t log_level;
    } body;
} proto_msg_t;

//  Creates a zeroed message of the given type with version set, a fresh
//  random request id if request_id is NULL, and no deadline. Returns NULL
//  only on allocation failure. Caller owns it.
proto_msg_t *proto_msg_new(proto_type_t type, const char *request_id);

//  Frees msg and the arrays and strings it owns (status rows, items,
//  metrics texts: all malloc'd); idempotent, sets *msg_p to NULL.
void proto_msg_destroy(proto_msg_t **msg_p);

//  Checks every field against the rules above. Returns 0, or -1 with a
//  reason in err.
int proto_validate(const proto_msg_t *msg, char *err, size_t errlen);

//  Validates, then serialises msg into a new buffer (*data, *size) that the
//  caller frees with free(). Returns 0, or -1 with a reason in err.
int proto_encode(const proto_msg_t *msg, char **data, size_t *size, char *err, size_t errlen);

//  Parses and validates size bytes. Returns a message the caller owns, or
//  NULL with a reason in err. Never crashes or leaks on any input.
proto_msg_t *proto_decode(const void *data, size_t size, char *err, size_t errlen);

//  Name of a type for logs ("heartbeat", ...); "unknown" if out of range.
const char *proto_type_name(int type);

//  Writes a fresh random request id (32 hex chars) into buf (>= 33 bytes).
void proto_request_id(char *buf, size_t buflen);

//  True if level is one of the log level names above (not "").
bool proto_log_level_valid(const char *level);

//  Milliseconds since the Unix epoch (CLOCK_REALTIME), for deadlines.
uint64_t proto_now_ms(void);

#endif
