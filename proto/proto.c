/*  proto.c: the recsd msgpack envelope: encode, decode and validate every
    message type declared in proto.h.

    Decoding is done in three steps, each of which can reject the input:
      1. s_skim walks the raw bytes once without allocating and checks that
         they hold exactly one well-formed msgpack object, nested no deeper
         than S_MAX_DEPTH, in which no array or map claims more elements than
         there are bytes left. msgpack-c allocates count * sizeof(object)
         from a container header before it has seen the elements, so without
         this a 5-byte input could ask it for ~100 GB; after it, msgpack-c's
         zone is bounded by a small multiple of the input size.
      2. msgpack_unpack_next builds the object tree (strings point into the
         caller's buffer, nothing is copied).
      3. the envelope and body are read field by field into a proto_msg_t,
         with our own arrays allocated only after their counts have been
         checked against PROTO_MAX_ITEMS / PROTO_MAX_ACTORS; then the
         result goes through proto_validate, the same rules encode applies.

    Rules that proto.h leaves implicit, decided here:
      - ids (request/user/video/model ids) and actor names are printable
        ASCII without spaces (0x21..0x7e); free text (RESULT message) may
        also hold spaces (0x20..0x7e). Every string field, decoded or
        validated, must also fit its char array including the NUL.
      - user_id (both RECS types), video ids and actor names are non-empty;
        request_id, model_id, item reasons and RECS types may be empty.
      - heartbeat pid > 0; status row pid >= 0, uptime_ms and
        heartbeat_age_ms >= -1 (-1 = no process); supervisor uptime >= 0.
      - recommendation scores must be finite (NaN/inf cannot be rendered as
        JSON by the gateway).
      - a known body key present twice is an error (two readers could
        otherwise disagree on the value); unknown keys are ignored.
      - status actors and recommendation items arrays are freed with free()
        by proto_msg_destroy, so callers that fill them use malloc/calloc.
*/
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

//  Deepest nesting accepted. Our own messages need 4 (envelope, body,
//  items, item); the rest is room for fields a newer sender may add.
//  msgpack-c's own limit is 32.
#define S_MAX_DEPTH 16

static const char *s_heartbeat_states[] = {"starting", "ready", "stopping", NULL};
static const char *s_actor_states[] = {"starting", "running", "backoff", "failed",
                                       "stopping", "stopped", NULL};
static const char *s_sources[] = {"model", "cache", "fallback", NULL};
static const char *s_interaction_kinds[] = {"watch", "rating", "watchlist_add", "watchlist_remove",
                                            NULL};
static const char *s_recs_types[] = {"hybrid", "collaborative", "content", "popularity", NULL};
static const char *s_log_levels[] = {"debug", "info", "warn", "error", NULL};

bool proto_log_level_valid(const char *level)
{
    if (!level)
        return false;
    for (size_t i = 0; s_log_levels[i]; i++)
        if (strcmp(level, s_log_levels[i]) == 0)
            return true;
    return false;
}

bool proto_recs_type_valid(const char *type)
{
    if (!type)
        return false;
    if (!type[0])
        return true;
    for (size_t i = 0; s_recs_types[i]; i++)
        if (strcmp(type, s_recs_types[i]) == 0)
            return true;
    return false;
}

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}

//  --------------------------------------------------------------------------
//  Small public helpers

const char *proto_type_name(int type)
{
    switch (type) {
    case PROTO_HEARTBEAT:
        return "heartbeat";
    case PROTO_STOP:
        return "stop";
    case PROTO_DRAIN:
        return "drain";
    case PROTO_STATUS_REQ:
        return "status_req";
    case PROTO_STATUS_REP:
        return "status_rep";
    case PROTO_RESTART_REQ:
        return "restart_req";
    case PROTO_RESULT:
        return "result";
    case PROTO_RECS_REQ:
        return "recs_req";
    case PROTO_RECS_REP:
        return "recs_rep";
    case PROTO_INTERACTION:
        return "interaction";
    case PROTO_LOG_LEVEL:
        return "log_level";
    default:
        return "unknown";
    }
}

uint64_t proto_now_ms(void)
{
    struct timespec ts;
    //  CLOCK_REALTIME cannot fail with a valid pointer; 0 means "no deadline".
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

//  Fills buf with len random bytes: getrandom(2), then /dev/urandom (e.g.
//  under a seccomp filter that denies the syscall), then, as a last resort
//  that keeps ids unique rather than secret, clocks and pid mixed together.
static void s_random_bytes(uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    if (got < len) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            while (got < len) {
                ssize_t n = read(fd, buf + got, len - got);
                if (n > 0)
                    got += (size_t)n;
                else if (n == 0 || errno != EINTR)
                    break;
            }
            close(fd);
        }
    }
    if (got < len) {
        struct timespec mono, real;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_REALTIME, &real);
        uint64_t state = (uint64_t)mono.tv_nsec ^ ((uint64_t)mono.tv_sec << 30) ^
                         (uint64_t)real.tv_nsec ^ ((uint64_t)getpid() << 40) ^
                         (uint64_t)(uintptr_t)&state;
        for (; got < len; got++)
            buf[got] ^= (uint8_t)s_splitmix64(&state);
    }
}

void proto_request_id(char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return;
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[16];
    memset(raw, 0, sizeof raw);
    s_random_bytes(raw, sizeof raw);
    size_t i = 0;
    for (; i < 2 * sizeof raw && i + 1 < buflen; i++)
        buf[i] = hex[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 0x0f];
    buf[i] = '\0';
}

//  --------------------------------------------------------------------------
//  Construction and destruction

proto_msg_t *proto_msg_new(proto_type_t type, const char *request_id)
{
    proto_msg_t *msg = calloc(1, sizeof *msg);
    if (!msg)
        return NULL;
    msg->header.version = PROTO_VERSION;
    msg->header.type = type;
    msg->header.deadline_ms = 0;
    if (request_id)
        //  Cut to PROTO_ID_MAX rather than fail: the header promises NULL only
        //  on allocation failure. Non-printable ids are caught by validate.
        snprintf(msg->header.request_id, sizeof msg->header.request_id, "%s", request_id);
    else
        proto_request_id(msg->header.request_id, sizeof msg->header.request_id);
    return msg;
}

void proto_msg_destroy(proto_msg_t **msg_p)
{
    if (!msg_p || !*msg_p)
        return;
    proto_msg_t *msg = *msg_p;
    if (msg->header.type == PROTO_STATUS_REP) {
        for (uint32_t i = 0; msg->body.status.actors && i < msg->body.status.count; i++)
            free(msg->body.status.actors[i].metrics);
        free(msg->body.status.actors);
    } else if (msg->header.type == PROTO_HEARTBEAT)
        free(msg->body.heartbeat.metrics);
    else if (msg->header.type == PROTO_RECS_REP)
        free(msg->body.recs_rep.items);
    free(msg);
    *msg_p = NULL;
}

//  --------------------------------------------------------------------------
//  Validation

//  Checks a NUL-terminated string held in a char[cap]: terminated inside the
//  array, every byte in lo..0x7e, non-empty unless allow_empty.
static int s_check_str(const char *s, size_t cap, char lo, bool allow_empty, const char *name,
                       char *err, size_t errlen)
{
    size_t len = strnlen(s, cap);
    if (len == cap) {
        s_seterr(err, errlen, "%s: longer than %zu bytes", name, cap - 1);
        return -1;
    }
    if (len == 0 && !allow_empty) {
        s_seterr(err, errlen, "%s: empty", name);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < (unsigned char)lo || c > 0x7e) {
            s_seterr(err, errlen, "%s: byte 0x%02x at %zu is not printable ASCII", name, c, i);
            return -1;
        }
    }
    return 0;
}

#define S_CHECK_ID(field, allow_empty, name)                                                       \
    s_check_str((field), sizeof(field), 0x21, (allow_empty), (name), err, errlen)

static int s_check_enum(const char *s, size_t cap, const char *const *allowed, const char *name,
                        char *err, size_t errlen)
{
    if (s_check_str(s, cap, 0x21, false, name, err, errlen) != 0)
        return -1;
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(s, allowed[i]) == 0)
            return 0;
    s_seterr(err, errlen, "%s: unknown value \"%s\"", name, s);
    return -1;
}

static bool s_all_hex(const char *s, size_t n, bool *all_zero)
{
    *all_zero = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        if (c != '0')
            *all_zero = false;
    }
    return true;
}

//  "" or W3C trace context version 00: "00-<32 hex>-<16 hex>-<2 hex>",
//  lowercase, with neither the trace id nor the parent id all zeros.
static int s_check_traceparent(const char *tp, char *err, size_t errlen)
{
    size_t len = strnlen(tp, PROTO_TRACEPARENT_LEN + 1);
    if (len == 0)
        return 0;
    bool zero;
    if (len != PROTO_TRACEPARENT_LEN || tp[0] != '0' || tp[1] != '0' || tp[2] != '-' ||
        tp[35] != '-' || tp[52] != '-') {
        s_seterr(err, errlen, "traceparent: not 00-<32 hex>-<16 hex>-<2 hex>");
        return -1;
    }
    if (!s_all_hex(tp + 3, 32, &zero) || zero) {
        s_seterr(err, errlen, "traceparent: trace id must be 32 lowercase hex, not all zero");
        return -1;
    }
    if (!s_all_hex(tp + 36, 16, &zero) || zero) {
        s_seterr(err, errlen, "traceparent: parent id must be 16 lowercase hex, not all zero");
        return -1;
    }
    if (!s_all_hex(tp + 53, 2, &zero)) {
        s_seterr(err, errlen, "traceparent: flags must be 2 lowercase hex");
        return -1;
    }
    return 0;
}

//  Metrics text: optional, bounded, printable ASCII and newlines only.
static int s_check_metrics(const char *text, const char *name, char *err, size_t errlen)
{
    if (!text)
        return 0;
    size_t len = strnlen(text, PROTO_METRICS_MAX + 1);
    if (len > PROTO_METRICS_MAX) {
        s_seterr(err, errlen, "%s: longer than %d bytes", name, PROTO_METRICS_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c != '\n' && (c < 0x20 || c > 0x7e)) {
            s_seterr(err, errlen, "%s: byte 0x%02x at %zu is not printable", name, c, i);
            return -1;
        }
    }
    return 0;
}

//  An optional log level field: "" (not reported) or one of s_log_levels.
static int s_check_optional_level(const char *level, size_t cap, const char *name, char *err,
                                  size_t errlen)
{
    if (strnlen(level, cap) == 0)
        return 0;
    return s_check_enum(level, cap, s_log_levels, name, err, errlen);
}

static int s_validate_row(const proto_actor_status_t *row, uint32_t i, char *err, size_t errlen)
{
    char name[48];
    snprintf(name, sizeof name, "actors[%u].name", i);
    if (S_CHECK_ID(row->name, false, name) != 0)
        return -1;
    snprintf(name, sizeof name, "actors[%u].state", i);
    if (s_check_enum(row->state, sizeof row->state, s_actor_states, name, err, errlen) != 0)
        return -1;
    if (row->pid < 0) {
        s_seterr(err, errlen, "actors[%u].pid: negative", i);
        return -1;
    }
    if (row->uptime_ms < -1 || row->heartbeat_age_ms < -1) {
        s_seterr(err, errlen, "actors[%u]: uptime_ms and heartbeat_age_ms must be >= -1", i);
        return -1;
    }
    snprintf(name, sizeof name, "actors[%u].log_level", i);
    if (s_check_optional_level(row->log_level, sizeof row->log_level, name, err, errlen) != 0)
        return -1;
    return s_check_metrics(row->metrics, "actors.metrics", err, errlen);
}

static int s_validate_body(const proto_msg_t *msg, char *err, size_t errlen)
{
    switch (msg->header.type) {
    case PROTO_STOP:
    case PROTO_DRAIN:
    case PROTO_STATUS_REQ:
        return 0;
    case PROTO_HEARTBEAT: {
        const proto_heartbeat_t *hb = &msg->body.heartbeat;
        if (S_CHECK_ID(hb->name, false, "name") != 0 ||
            s_check_enum(hb->state, sizeof hb->state, s_heartbeat_states, "state", err, errlen) !=
                0)
            return -1;
        if (hb->pid <= 0) {
            s_seterr(err, errlen, "pid: must be > 0");
            return -1;
        }
        if (s_check_optional_level(hb->log_level, sizeof hb->log_level, "log_level", err, errlen) !=
            0)
            return -1;
        return s_check_metrics(hb->metrics, "metrics", err, errlen);
    }
    case PROTO_STATUS_REP: {
        const proto_status_rep_t *st = &msg->body.status;
        if (st->uptime_ms < 0) {
            s_seterr(err, errlen, "uptime_ms: negative");
            return -1;
        }
        if (st->count > PROTO_MAX_ACTORS) {
            s_seterr(err, errlen, "actors: %u rows, at most %d", st->count, PROTO_MAX_ACTORS);
            return -1;
        }
        if (st->count > 0 && !st->actors) {
            s_seterr(err, errlen, "actors: count %u but no array", st->count);
            return -1;
        }
        if (s_check_optional_level(st->log_level, sizeof st->log_level, "log_level", err, errlen) !=
            0)
            return -1;
        for (uint32_t i = 0; i < st->count; i++)
            if (s_validate_row(&st->actors[i], i, err, errlen) != 0)
                return -1;
        return 0;
    }
    case PROTO_RESTART_REQ:
        return S_CHECK_ID(msg->body.restart.actor, false, "actor");
    case PROTO_LOG_LEVEL: {
        const proto_log_level_t *ll = &msg->body.log_level;
        if (s_check_enum(ll->level, sizeof ll->level, s_log_levels, "level", err, errlen) != 0)
            return -1;
        return S_CHECK_ID(ll->actor, true, "actor");
    }
    case PROTO_RESULT:
        return s_check_str(msg->body.result.message, sizeof msg->body.result.message, 0x20, true,
                           "message", err, errlen);
    case PROTO_INTERACTION: {
        const proto_interaction_t *in = &msg->body.interaction;
        if (S_CHECK_ID(in->user_id, false, "user_id") != 0 ||
            S_CHECK_ID(in->video_id, false, "video_id") != 0 ||
            s_check_enum(in->kind, sizeof in->kind, s_interaction_kinds, "kind", err, errlen) != 0)
            return -1;
        if (!isfinite(in->weight)) {
            s_seterr(err, errlen, "weight: not finite");
            return -1;
        }
        return 0;
    }
    case PROTO_RECS_REQ: {
        const proto_recs_req_t *rq = &msg->body.recs_req;
        if (S_CHECK_ID(rq->user_id, false, "user_id") != 0)
            return -1;
        if (rq->limit < 1 || rq->limit > PROTO_MAX_ITEMS) {
            s_seterr(err, errlen, "limit: %u not in 1..%d", rq->limit, PROTO_MAX_ITEMS);
            return -1;
        }
        if (S_CHECK_ID(rq->type, true, "type") != 0 ||
            S_CHECK_ID(rq->model_id, true, "model_id") != 0)
            return -1;
        if (rq->has_blend &&
            (!isfinite(rq->blend[0]) || rq->blend[0] < 0 || !(rq->blend[1] >= 0) ||
             !(rq->blend[1] <= 1) || !(rq->blend[2] >= 0) || !(rq->blend[2] <= 1))) {
            s_seterr(err, errlen, "blend: out of range");
            return -1;
        }
        if (!proto_recs_type_valid(rq->type)) {
            s_seterr(err, errlen, "type: unknown value \"%s\"", rq->type);
            return -1;
        }
        if (rq->exclude_count > PROTO_EXCLUDE_MAX) {
            s_seterr(err, errlen, "exclude: %u ids, at most %d", rq->exclude_count,
                     PROTO_EXCLUDE_MAX);
            return -1;
        }
        for (uint32_t i = 0; i < rq->exclude_count; i++) {
            char name[32];
            snprintf(name, sizeof name, "exclude[%u]", i);
            if (S_CHECK_ID(rq->exclude[i], false, name) != 0)
                return -1;
        }
        return 0;
    }
    case PROTO_RECS_REP: {
        const proto_recs_rep_t *rp = &msg->body.recs_rep;
        if (S_CHECK_ID(rp->user_id, false, "user_id") != 0 ||
            s_check_enum(rp->source, sizeof rp->source, s_sources, "source", err, errlen) != 0 ||
            S_CHECK_ID(rp->model_id, true, "model_id") != 0 ||
            S_CHECK_ID(rp->type, true, "type") != 0 ||
            S_CHECK_ID(rp->segment, true, "segment") != 0)
            return -1;
        if (!proto_recs_type_valid(rp->type)) {
            s_seterr(err, errlen, "type: unknown value \"%s\"", rp->type);
            return -1;
        }
        if (rp->model_version < 0) {
            s_seterr(err, errlen, "model_version: negative");
            return -1;
        }
        if (rp->count > PROTO_MAX_ITEMS) {
            s_seterr(err, errlen, "items: %u items, at most %d", rp->count, PROTO_MAX_ITEMS);
            return -1;
        }
        if (rp->count > 0 && !rp->items) {
            s_seterr(err, errlen, "items: count %u but no array", rp->count);
            return -1;
        }
        for (uint32_t i = 0; i < rp->count; i++) {
            char name[48];
            snprintf(name, sizeof name, "items[%u].video_id", i);
            if (S_CHECK_ID(rp->items[i].video_id, false, name) != 0)
                return -1;
            snprintf(name, sizeof name, "items[%u].reason", i);
            if (S_CHECK_ID(rp->items[i].reason, true, name) != 0)
                return -1;
            if (!isfinite(rp->items[i].score)) {
                s_seterr(err, errlen, "items[%u].score: not finite", i);
                return -1;
            }
        }
        return 0;
    }
    }
    s_seterr(err, errlen, "type: unknown %d", (int)msg->header.type);
    return -1;
}

int proto_validate(const proto_msg_t *msg, char *err, size_t errlen)
{
    if (!msg) {
        s_seterr(err, errlen, "no message");
        return -1;
    }
    const proto_header_t *h = &msg->header;
    if (h->version != PROTO_VERSION) {
        s_seterr(err, errlen, "version: %u, expected %d", h->version, PROTO_VERSION);
        return -1;
    }
    if ((int)h->type < 1 || (int)h->type > PROTO_TYPE_MAX) {
        s_seterr(err, errlen, "type: unknown %d", (int)h->type);
        return -1;
    }
    if (S_CHECK_ID(h->request_id, true, "request_id") != 0)
        return -1;
    if (strnlen(h->traceparent, sizeof h->traceparent) == sizeof h->traceparent) {
        s_seterr(err, errlen, "traceparent: not terminated");
        return -1;
    }
    if (s_check_traceparent(h->traceparent, err, errlen) != 0)
        return -1;
    return s_validate_body(msg, err, errlen);
}

//  --------------------------------------------------------------------------
//  Encoding

static int s_pack_str(msgpack_packer *pk, const char *s)
{
    return msgpack_pack_str_with_body(pk, s, strlen(s));
}

//  Key/value writers: two calls in sequence (the operands of | in one
//  expression would be evaluated in an unspecified order). Each returns 0,
//  or non-zero if the sbuffer could not grow.
static int s_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    int rc = s_pack_str(pk, key);
    return rc | s_pack_str(pk, value);
}

static int s_kv_int(msgpack_packer *pk, const char *key, int64_t value)
{
    int rc = s_pack_str(pk, key);
    return rc | msgpack_pack_int64(pk, value);
}

static int s_kv_uint(msgpack_packer *pk, const char *key, uint64_t value)
{
    int rc = s_pack_str(pk, key);
    return rc | msgpack_pack_uint64(pk, value);
}

//  Writes the key and an array header of count elements.
static int s_kv_array(msgpack_packer *pk, const char *key, uint32_t count)
{
    int rc = s_pack_str(pk, key);
    return rc | msgpack_pack_array(pk, count);
}

//  Returns 0, or non-zero if the sbuffer could not grow.
static int s_pack_body(msgpack_packer *pk, const proto_msg_t *msg)
{
    int rc = 0;
    switch (msg->header.type) {
    case PROTO_HEARTBEAT: {
        const proto_heartbeat_t *hb = &msg->body.heartbeat;
        bool metrics = hb->metrics && hb->metrics[0];
        bool level = hb->log_level[0] != '\0';
        rc |= msgpack_pack_map(pk, 5 + (uint32_t)metrics + (uint32_t)level);
        rc |= s_kv_str(pk, "name", hb->name);
        rc |= s_kv_int(pk, "pid", hb->pid);
        rc |= s_kv_str(pk, "state", hb->state);
        rc |= s_kv_uint(pk, "handled", hb->handled);
        rc |= s_kv_uint(pk, "queue", hb->queue_depth);
        if (metrics)
            rc |= s_kv_str(pk, "metrics", hb->metrics);
        if (level)
            rc |= s_kv_str(pk, "log_level", hb->log_level);
        break;
    }
    case PROTO_STATUS_REP: {
        const proto_status_rep_t *st = &msg->body.status;
        bool level = st->log_level[0] != '\0';
        rc |= msgpack_pack_map(pk, 3 + (uint32_t)level);
        if (level)
            rc |= s_kv_str(pk, "log_level", st->log_level);
        rc |= s_pack_str(pk, "draining");
        rc |= st->draining ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        rc |= s_kv_int(pk, "uptime_ms", st->uptime_ms);
        rc |= s_kv_array(pk, "actors", st->count);
        for (uint32_t i = 0; i < st->count && rc == 0; i++) {
            const proto_actor_status_t *row = &st->actors[i];
            bool metrics = row->metrics && row->metrics[0];
            bool row_level = row->log_level[0] != '\0';
            rc |= msgpack_pack_map(pk, 9 + (uint32_t)metrics + (uint32_t)row_level);
            rc |= s_kv_str(pk, "name", row->name);
            rc |= s_kv_int(pk, "pid", row->pid);
            rc |= s_kv_str(pk, "state", row->state);
            rc |= s_kv_uint(pk, "restarts", row->restarts);
            rc |= s_kv_int(pk, "uptime_ms", row->uptime_ms);
            rc |= s_kv_int(pk, "heartbeat_age_ms", row->heartbeat_age_ms);
            rc |= s_kv_uint(pk, "rss_bytes", row->rss_bytes);
            rc |= s_kv_uint(pk, "handled", row->handled);
            rc |= s_kv_uint(pk, "queue", row->queue_depth);
            if (metrics)
                rc |= s_kv_str(pk, "metrics", row->metrics);
            if (row_level)
                rc |= s_kv_str(pk, "log_level", row->log_level);
        }
        break;
    }
    case PROTO_RESTART_REQ:
        rc |= msgpack_pack_map(pk, 1);
        rc |= s_kv_str(pk, "actor", msg->body.restart.actor);
        break;
    case PROTO_LOG_LEVEL:
        rc |= msgpack_pack_map(pk, 2);
        rc |= s_kv_str(pk, "level", msg->body.log_level.level);
        rc |= s_kv_str(pk, "actor", msg->body.log_level.actor);
        break;
    case PROTO_RESULT:
        rc |= msgpack_pack_map(pk, 2);
        rc |= s_kv_int(pk, "code", msg->body.result.code);
        rc |= s_kv_str(pk, "message", msg->body.result.message);
        break;
    case PROTO_INTERACTION: {
        const proto_interaction_t *in = &msg->body.interaction;
        rc |= msgpack_pack_map(pk, 5);
        rc |= s_kv_str(pk, "user_id", in->user_id);
        rc |= s_kv_str(pk, "video_id", in->video_id);
        rc |= s_kv_str(pk, "kind", in->kind);
        rc |= s_pack_str(pk, "weight");
        rc |= msgpack_pack_double(pk, in->weight);
        rc |= s_kv_uint(pk, "occurred_ms", in->occurred_ms);
        break;
    }
    case PROTO_RECS_REQ: {
        const proto_recs_req_t *rq = &msg->body.recs_req;
        bool type = rq->type[0] != '\0', exclude = rq->exclude_count > 0;
        bool model = rq->model_id[0] != '\0';
        rc |= msgpack_pack_map(pk, 2 + (uint32_t)type + (uint32_t)exclude + (uint32_t)rq->explain +
                                       (uint32_t)model + (uint32_t)rq->has_blend);
        if (model)
            rc |= s_kv_str(pk, "model_id", rq->model_id);
        if (rq->has_blend) {
            rc |= s_kv_array(pk, "blend", 3);
            for (int i = 0; i < 3; i++)
                rc |= msgpack_pack_double(pk, rq->blend[i]);
        }
        rc |= s_kv_str(pk, "user_id", rq->user_id);
        rc |= s_kv_uint(pk, "limit", rq->limit);
        if (type)
            rc |= s_kv_str(pk, "type", rq->type);
        if (exclude) {
            rc |= s_kv_array(pk, "exclude", rq->exclude_count);
            for (uint32_t i = 0; i < rq->exclude_count && rc == 0; i++)
                rc |= s_pack_str(pk, rq->exclude[i]);
        }
        if (rq->explain) {
            rc |= s_pack_str(pk, "explain");
            rc |= msgpack_pack_true(pk);
        }
        break;
    }
    case PROTO_RECS_REP: {
        const proto_recs_rep_t *rp = &msg->body.recs_rep;
        rc |= msgpack_pack_map(pk, rp->segment[0] ? 7 : 6);
        rc |= s_kv_str(pk, "user_id", rp->user_id);
        rc |= s_kv_str(pk, "source", rp->source);
        rc |= s_kv_str(pk, "model_id", rp->model_id);
        rc |= s_kv_str(pk, "type", rp->type);
        rc |= s_kv_int(pk, "model_version", rp->model_version);
        if (rp->segment[0])
            rc |= s_kv_str(pk, "segment", rp->segment);
        rc |= s_kv_array(pk, "items", rp->count);
        for (uint32_t i = 0; i < rp->count && rc == 0; i++) {
            bool reason = rp->items[i].reason[0] != '\0';
            rc |= msgpack_pack_array(pk, reason ? 3 : 2);
            rc |= s_pack_str(pk, rp->items[i].video_id);
            rc |= msgpack_pack_double(pk, rp->items[i].score);
            if (reason)
                rc |= s_pack_str(pk, rp->items[i].reason);
        }
        break;
    }
    case PROTO_STOP:
    case PROTO_DRAIN:
    case PROTO_STATUS_REQ:
    default:
        rc |= msgpack_pack_map(pk, 0);
        break;
    }
    return rc;
}

int proto_encode(const proto_msg_t *msg, char **data, size_t *size, char *err, size_t errlen)
{
    if (!data || !size) {
        s_seterr(err, errlen, "no output buffer");
        return -1;
    }
    *data = NULL;
    *size = 0;
    if (proto_validate(msg, err, errlen) != 0)
        return -1;

    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);

    const proto_header_t *h = &msg->header;
    int rc = msgpack_pack_array(&pk, 6);
    rc |= msgpack_pack_uint32(&pk, h->version);
    rc |= msgpack_pack_uint32(&pk, (uint32_t)h->type);
    rc |= s_pack_str(&pk, h->request_id);
    rc |= s_pack_str(&pk, h->traceparent);
    rc |= msgpack_pack_uint64(&pk, h->deadline_ms);
    rc |= s_pack_body(&pk, msg);
    if (rc != 0) {
        s_seterr(err, errlen, "out of memory while encoding");
        goto err;
    }
    if (sbuf.size > (size_t)PROTO_MAX_MESSAGE) {
        s_seterr(err, errlen, "encoded message is %zu bytes, at most %d", sbuf.size,
                 PROTO_MAX_MESSAGE);
        goto err;
    }
    *size = sbuf.size;
    *data = msgpack_sbuffer_release(&sbuf); //  malloc'd by the sbuffer: free() works
    msgpack_sbuffer_destroy(&sbuf);
    return 0;
err:
    msgpack_sbuffer_destroy(&sbuf);
    return -1;
}

//  --------------------------------------------------------------------------
//  Decoding, step 1: bounds-checking skim of the raw bytes

//  Reads a big-endian length of width bytes at p[*pos]. Returns 0, or -1 if
//  the input ends first.
static int s_read_len(const uint8_t *p, size_t size, size_t *pos, int width, uint64_t *out)
{
    if ((size_t)width > size - *pos)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = (v << 8) | p[*pos + (size_t)i];
    *pos += (size_t)width;
    *out = v;
    return 0;
}

//  Walks the one msgpack object at the start of p[0..size) without
//  allocating. Fails on truncation, the reserved byte 0xc1, nesting deeper
//  than S_MAX_DEPTH, or an array/map that claims more elements than bytes
//  remain (every element takes at least one byte). On success *used is the
//  length of the object.
static int s_skim(const uint8_t *p, size_t size, size_t *used, char *err, size_t errlen)
{
    uint64_t pending[S_MAX_DEPTH + 1]; //  objects still to read per level
    int depth = 0;
    size_t pos = 0;
    pending[0] = 1;
    while (true) {
        if (pending[depth] == 0) {
            if (depth == 0)
                break;
            depth--;
            continue;
        }
        pending[depth]--;
        if (pos >= size)
            goto truncated;
        uint8_t b = p[pos++];
        uint64_t skip = 0;     //  payload bytes after the header
        uint64_t children = 0; //  nested objects (map: keys + values)
        int lenw = 0;          //  width of a length field that follows
        enum { SCALAR, STRING, EXT, ARRAY, MAP } kind = SCALAR;
        if (b <= 0x7f || b >= 0xe0)
            ; //  positive or negative fixint
        else if (b <= 0x8f) {
            kind = MAP;
            children = 2 * (uint64_t)(b & 0x0f);
        } else if (b <= 0x9f) {
            kind = ARRAY;
            children = b & 0x0f;
        } else if (b <= 0xbf)
            skip = b & 0x1f; //  fixstr
        else {
            switch (b) {
            case 0xc0: //  nil
            case 0xc2: //  false
            case 0xc3: //  true
                break;
            case 0xc1:
                s_seterr(err, errlen, "malformed msgpack: reserved byte 0xc1 at %zu", pos - 1);
                return -1;
            case 0xc4: //  bin 8/16/32
            case 0xd9: //  str 8
                kind = STRING;
                lenw = 1;
                break;
            case 0xc5:
            case 0xda:
                kind = STRING;
                lenw = 2;
                break;
            case 0xc6:
            case 0xdb:
                kind = STRING;
                lenw = 4;
                break;
            case 0xc7: //  ext 8/16/32: length, then a type byte, then data
                kind = EXT;
                lenw = 1;
                break;
            case 0xc8:
                kind = EXT;
                lenw = 2;
                break;
            case 0xc9:
                kind = EXT;
                lenw = 4;
                break;
            case 0xca: //  float 32
                skip = 4;
                break;
            case 0xcb: //  float 64
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4: //  fixext 1/2/4/8/16, plus the type byte
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                kind = ARRAY;
                lenw = 2;
                break;
            case 0xdd:
                kind = ARRAY;
                lenw = 4;
                break;
            case 0xde:
                kind = MAP;
                lenw = 2;
                break;
            case 0xdf:
                kind = MAP;
                lenw = 4;
                break;
            }
        }
        if (lenw > 0) {
            uint64_t len;
            if (s_read_len(p, size, &pos, lenw, &len) != 0)
                goto truncated;
            if (kind == STRING)
                skip = len;
            else if (kind == EXT)
                skip = len + 1;
            else if (kind == ARRAY)
                children = len;
            else
                children = 2 * len;
        }
        if (skip > size - pos)
            goto truncated;
        pos += (size_t)skip;
        if (children > 0) {
            if (children > size - pos) {
                s_seterr(err, errlen,
                         "malformed msgpack: container at %zu claims more elements "
                         "than the input holds",
                         pos);
                return -1;
            }
            if (depth == S_MAX_DEPTH) {
                s_seterr(err, errlen, "malformed msgpack: nested deeper than %d", S_MAX_DEPTH);
                return -1;
            }
            pending[++depth] = children;
        }
    }
    *used = pos;
    return 0;
truncated:
    s_seterr(err, errlen, "malformed msgpack: truncated at %zu of %zu bytes", pos, size);
    return -1;
}

//  --------------------------------------------------------------------------
//  Decoding, step 3: typed readers over msgpack objects

static int s_get_uint(const msgpack_object *o, uint64_t max, uint64_t *out, const char *name,
                      char *err, size_t errlen)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        s_seterr(err, errlen, "%s: negative", name);
        return -1;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        s_seterr(err, errlen, "%s: not an integer", name);
        return -1;
    }
    if (o->via.u64 > max) {
        s_seterr(err, errlen, "%s: %llu out of range", name, (unsigned long long)o->via.u64);
        return -1;
    }
    *out = o->via.u64;
    return 0;
}

static int s_get_int(const msgpack_object *o, int64_t min, int64_t max, int64_t *out,
                     const char *name, char *err, size_t errlen)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            goto range;
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = o->via.i64;
    else {
        s_seterr(err, errlen, "%s: not an integer", name);
        return -1;
    }
    if (v < min || v > max)
        goto range;
    *out = v;
    return 0;
range:
    s_seterr(err, errlen, "%s: out of range", name);
    return -1;
}

static int s_get_u32(const msgpack_object *o, uint32_t *out, const char *name, char *err,
                     size_t errlen)
{
    uint64_t v;
    if (s_get_uint(o, UINT32_MAX, &v, name, err, errlen) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int s_get_i32(const msgpack_object *o, int32_t *out, const char *name, char *err,
                     size_t errlen)
{
    int64_t v;
    if (s_get_int(o, INT32_MIN, INT32_MAX, &v, name, err, errlen) != 0)
        return -1;
    *out = (int32_t)v;
    return 0;
}

static int s_get_double(const msgpack_object *o, double *out, const char *name, char *err,
                        size_t errlen)
{
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        *out = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = (double)o->via.i64;
    else {
        s_seterr(err, errlen, "%s: not a number", name);
        return -1;
    }
    return 0;
}

static int s_get_bool(const msgpack_object *o, bool *out, const char *name, char *err,
                      size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        s_seterr(err, errlen, "%s: not a boolean", name);
        return -1;
    }
    *out = o->via.boolean;
    return 0;
}

//  Copies a msgpack str into dst[cap]. Rejects other types, strings that do
//  not fit with their NUL, and any byte outside 0x20..0x7e (an embedded NUL
//  would otherwise hide the rest from validation). Field-specific rules
//  (no spaces in ids, non-empty) are left to proto_validate.
static int s_get_str(const msgpack_object *o, char *dst, size_t cap, const char *name, char *err,
                     size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        s_seterr(err, errlen, "%s: not a string", name);
        return -1;
    }
    uint32_t len = o->via.str.size;
    if (len >= cap) {
        s_seterr(err, errlen, "%s: %u bytes, at most %zu", name, len, cap - 1);
        return -1;
    }
    for (uint32_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)o->via.str.ptr[i];
        if (c < 0x20 || c > 0x7e) {
            s_seterr(err, errlen, "%s: byte 0x%02x at %u is not printable ASCII", name, c, i);
            return -1;
        }
    }
    if (len > 0)
        memcpy(dst, o->via.str.ptr, len);
    dst[len] = '\0';
    return 0;
}

#define S_GET_STR(o, field, name) s_get_str((o), (field), sizeof(field), (name), err, errlen)

typedef struct {
    const char *key;
    const msgpack_object *value; //  set by s_fields, borrowed from the tree
} s_field_t;

//  Finds the known keys of map: every key must be a string, a known key may
//  appear only once, every known key must be present; others are ignored.
static int s_fields(const msgpack_object *map, s_field_t *fields, size_t nfields, const char *what,
                    char *err, size_t errlen)
{
    if (map->type != MSGPACK_OBJECT_MAP) {
        s_seterr(err, errlen, "%s: not a map", what);
        return -1;
    }
    for (size_t f = 0; f < nfields; f++)
        fields[f].value = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            s_seterr(err, errlen, "%s: key %u is not a string", what, i);
            return -1;
        }
        for (size_t f = 0; f < nfields; f++) {
            size_t klen = strlen(fields[f].key);
            if (kv->key.via.str.size != klen ||
                memcmp(kv->key.via.str.ptr, fields[f].key, klen) != 0)
                continue;
            if (fields[f].value) {
                s_seterr(err, errlen, "%s: key \"%s\" appears twice", what, fields[f].key);
                return -1;
            }
            fields[f].value = &kv->val;
            break;
        }
    }
    for (size_t f = 0; f < nfields; f++)
        if (!fields[f].value) {
            s_seterr(err, errlen, "%s: missing key \"%s\"", what, fields[f].key);
            return -1;
        }
    return 0;
}

#define S_NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

//  An optional text field (metrics): absent leaves *out NULL; present must
//  be a str of at most PROTO_METRICS_MAX bytes of printable ASCII and
//  newlines, copied into a new buffer the message owns. Call after
//  s_fields, which has checked that every key is a string.
static int s_get_optional_text(const msgpack_object *map, const char *key, char **out,
                               const char *name, char *err, size_t errlen)
{
    *out = NULL;
    const msgpack_object *value = NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.via.str.size != klen || memcmp(kv->key.via.str.ptr, key, klen) != 0)
            continue;
        if (value) {
            s_seterr(err, errlen, "%s: appears twice", name);
            return -1;
        }
        value = &kv->val;
    }
    if (!value)
        return 0;
    if (value->type != MSGPACK_OBJECT_STR) {
        s_seterr(err, errlen, "%s: not a string", name);
        return -1;
    }
    uint32_t len = value->via.str.size;
    if (len > PROTO_METRICS_MAX) {
        s_seterr(err, errlen, "%s: %u bytes, at most %d", name, len, PROTO_METRICS_MAX);
        return -1;
    }
    for (uint32_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value->via.str.ptr[i];
        if (c != '\n' && (c < 0x20 || c > 0x7e)) {
            s_seterr(err, errlen, "%s: byte 0x%02x at %u is not printable", name, c, i);
            return -1;
        }
    }
    *out = malloc((size_t)len + 1);
    if (!*out) {
        s_seterr(err, errlen, "%s: out of memory", name);
        return -1;
    }
    if (len > 0)
        memcpy(*out, value->via.str.ptr, len);
    (*out)[len] = '\0';
    return 0;
}

//  An optional field: *value is NULL if key is absent. A key present twice
//  is an error. Call after s_fields, which has checked that every key is a
//  string.
static int s_optional(const msgpack_object *map, const char *key, const msgpack_object **value,
                      char *err, size_t errlen)
{
    *value = NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.via.str.size != klen || memcmp(kv->key.via.str.ptr, key, klen) != 0)
            continue;
        if (*value) {
            s_seterr(err, errlen, "body: key \"%s\" appears twice", key);
            return -1;
        }
        *value = &kv->val;
    }
    return 0;
}

static int s_decode_heartbeat(const msgpack_object *body, proto_heartbeat_t *hb, char *err,
                              size_t errlen)
{
    s_field_t f[] = {
        {"name", NULL}, {"pid", NULL}, {"state", NULL}, {"handled", NULL}, {"queue", NULL}};
    if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0 ||
        S_GET_STR(f[0].value, hb->name, "name") != 0 ||
        s_get_i32(f[1].value, &hb->pid, "pid", err, errlen) != 0 ||
        S_GET_STR(f[2].value, hb->state, "state") != 0 ||
        s_get_uint(f[3].value, UINT64_MAX, &hb->handled, "handled", err, errlen) != 0 ||
        s_get_uint(f[4].value, UINT64_MAX, &hb->queue_depth, "queue", err, errlen) != 0)
        return -1;
    const msgpack_object *value;
    if (s_optional(body, "log_level", &value, err, errlen) != 0 ||
        (value && S_GET_STR(value, hb->log_level, "log_level") != 0))
        return -1;
    return s_get_optional_text(body, "metrics", &hb->metrics, "metrics", err, errlen);
}

static int s_decode_row(const msgpack_object *o, uint32_t i, proto_actor_status_t *row, char *err,
                        size_t errlen)
{
    char what[32];
    snprintf(what, sizeof what, "actors[%u]", i);
    s_field_t f[] = {{"name", NULL},      {"pid", NULL},       {"state", NULL},
                     {"restarts", NULL},  {"uptime_ms", NULL}, {"heartbeat_age_ms", NULL},
                     {"rss_bytes", NULL}, {"handled", NULL},   {"queue", NULL}};
    if (s_fields(o, f, S_NFIELDS(f), what, err, errlen) != 0 ||
        S_GET_STR(f[0].value, row->name, "actors.name") != 0 ||
        s_get_i32(f[1].value, &row->pid, "actors.pid", err, errlen) != 0 ||
        S_GET_STR(f[2].value, row->state, "actors.state") != 0 ||
        s_get_u32(f[3].value, &row->restarts, "actors.restarts", err, errlen) != 0 ||
        s_get_int(f[4].value, INT64_MIN, INT64_MAX, &row->uptime_ms, "actors.uptime_ms", err,
                  errlen) != 0 ||
        s_get_int(f[5].value, INT64_MIN, INT64_MAX, &row->heartbeat_age_ms,
                  "actors.heartbeat_age_ms", err, errlen) != 0 ||
        s_get_uint(f[6].value, UINT64_MAX, &row->rss_bytes, "actors.rss_bytes", err, errlen) != 0 ||
        s_get_uint(f[7].value, UINT64_MAX, &row->handled, "actors.handled", err, errlen) != 0 ||
        s_get_uint(f[8].value, UINT64_MAX, &row->queue_depth, "actors.queue", err, errlen) != 0)
        return -1;
    const msgpack_object *value;
    if (s_optional(o, "log_level", &value, err, errlen) != 0 ||
        (value && S_GET_STR(value, row->log_level, "actors.log_level") != 0))
        return -1;
    return s_get_optional_text(o, "metrics", &row->metrics, "actors.metrics", err, errlen);
}

//  Allocates st->actors only once the count is known to be within limits.
static int s_decode_status(const msgpack_object *body, proto_status_rep_t *st, char *err,
                           size_t errlen)
{
    s_field_t f[] = {{"draining", NULL}, {"uptime_ms", NULL}, {"actors", NULL}};
    if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0 ||
        s_get_bool(f[0].value, &st->draining, "draining", err, errlen) != 0 ||
        s_get_int(f[1].value, INT64_MIN, INT64_MAX, &st->uptime_ms, "uptime_ms", err, errlen) != 0)
        return -1;
    const msgpack_object *value;
    if (s_optional(body, "log_level", &value, err, errlen) != 0 ||
        (value && S_GET_STR(value, st->log_level, "log_level") != 0))
        return -1;
    const msgpack_object *arr = f[2].value;
    if (arr->type != MSGPACK_OBJECT_ARRAY) {
        s_seterr(err, errlen, "actors: not an array");
        return -1;
    }
    if (arr->via.array.size > PROTO_MAX_ACTORS) {
        s_seterr(err, errlen, "actors: %u rows, at most %d", arr->via.array.size, PROTO_MAX_ACTORS);
        return -1;
    }
    if (arr->via.array.size == 0)
        return 0;
    st->actors = calloc(arr->via.array.size, sizeof *st->actors);
    if (!st->actors) {
        s_seterr(err, errlen, "out of memory");
        return -1;
    }
    //  count tracks the rows the message owns; the array is freed by
    //  proto_msg_destroy whatever count says.
    st->count = arr->via.array.size;
    for (uint32_t i = 0; i < arr->via.array.size; i++)
        if (s_decode_row(&arr->via.array.ptr[i], i, &st->actors[i], err, errlen) != 0)
            return -1;
    return 0;
}

static int s_decode_item(const msgpack_object *o, uint32_t i, proto_rec_item_t *item, char *err,
                         size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2 || o->via.array.size > 3) {
        s_seterr(err, errlen, "items[%u]: not a [video_id, score(, reason)] array", i);
        return -1;
    }
    if (S_GET_STR(&o->via.array.ptr[0], item->video_id, "items.video_id") != 0 ||
        s_get_double(&o->via.array.ptr[1], &item->score, "items.score", err, errlen) != 0)
        return -1;
    if (o->via.array.size == 3 &&
        S_GET_STR(&o->via.array.ptr[2], item->reason, "items.reason") != 0)
        return -1;
    return 0;
}

static int s_decode_recs_req(const msgpack_object *body, proto_recs_req_t *rq, char *err,
                             size_t errlen)
{
    s_field_t f[] = {{"user_id", NULL}, {"limit", NULL}};
    if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0 ||
        S_GET_STR(f[0].value, rq->user_id, "user_id") != 0)
        return -1;
    uint64_t limit;
    if (s_get_uint(f[1].value, PROTO_MAX_ITEMS, &limit, "limit", err, errlen) != 0)
        return -1;
    rq->limit = (uint32_t)limit;
    const msgpack_object *value;
    if (s_optional(body, "type", &value, err, errlen) != 0 ||
        (value && S_GET_STR(value, rq->type, "type") != 0))
        return -1;
    if (s_optional(body, "explain", &value, err, errlen) != 0 ||
        (value && s_get_bool(value, &rq->explain, "explain", err, errlen) != 0))
        return -1;
    if (s_optional(body, "model_id", &value, err, errlen) != 0 ||
        (value && S_GET_STR(value, rq->model_id, "model_id") != 0))
        return -1;
    if (s_optional(body, "blend", &value, err, errlen) != 0)
        return -1;
    if (value) {
        if (value->type != MSGPACK_OBJECT_ARRAY || value->via.array.size != 3) {
            s_seterr(err, errlen, "blend: not an array of 3 numbers");
            return -1;
        }
        for (uint32_t i = 0; i < 3; i++)
            if (s_get_double(&value->via.array.ptr[i], &rq->blend[i], "blend", err, errlen) != 0)
                return -1;
        rq->has_blend = true;
    }
    if (s_optional(body, "exclude", &value, err, errlen) != 0)
        return -1;
    if (!value)
        return 0;
    if (value->type != MSGPACK_OBJECT_ARRAY) {
        s_seterr(err, errlen, "exclude: not an array");
        return -1;
    }
    if (value->via.array.size > PROTO_EXCLUDE_MAX) {
        s_seterr(err, errlen, "exclude: %u ids, at most %d", value->via.array.size,
                 PROTO_EXCLUDE_MAX);
        return -1;
    }
    for (uint32_t i = 0; i < value->via.array.size; i++)
        if (S_GET_STR(&value->via.array.ptr[i], rq->exclude[i], "exclude") != 0)
            return -1;
    rq->exclude_count = value->via.array.size;
    return 0;
}

static int s_decode_recs_rep(const msgpack_object *body, proto_recs_rep_t *rp, char *err,
                             size_t errlen)
{
    s_field_t f[] = {{"user_id", NULL}, {"source", NULL}, {"model_id", NULL}, {"items", NULL}};
    if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0 ||
        S_GET_STR(f[0].value, rp->user_id, "user_id") != 0 ||
        S_GET_STR(f[1].value, rp->source, "source") != 0 ||
        S_GET_STR(f[2].value, rp->model_id, "model_id") != 0)
        return -1;
    const msgpack_object *value;
    if (s_optional(body, "type", &value, err, errlen) != 0 ||
        (value && S_GET_STR(value, rp->type, "type") != 0))
        return -1;
    if (s_optional(body, "model_version", &value, err, errlen) != 0 ||
        (value &&
         s_get_int(value, 0, INT64_MAX, &rp->model_version, "model_version", err, errlen) != 0))
        return -1;
    if (s_optional(body, "segment", &value, err, errlen) != 0 ||
        (value && S_GET_STR(value, rp->segment, "segment") != 0))
        return -1;
    const msgpack_object *arr = f[3].value;
    if (arr->type != MSGPACK_OBJECT_ARRAY) {
        s_seterr(err, errlen, "items: not an array");
        return -1;
    }
    if (arr->via.array.size > PROTO_MAX_ITEMS) {
        s_seterr(err, errlen, "items: %u items, at most %d", arr->via.array.size, PROTO_MAX_ITEMS);
        return -1;
    }
    if (arr->via.array.size == 0)
        return 0;
    rp->items = calloc(arr->via.array.size, sizeof *rp->items);
    if (!rp->items) {
        s_seterr(err, errlen, "out of memory");
        return -1;
    }
    rp->count = arr->via.array.size;
    for (uint32_t i = 0; i < arr->via.array.size; i++)
        if (s_decode_item(&arr->via.array.ptr[i], i, &rp->items[i], err, errlen) != 0)
            return -1;
    return 0;
}

static int s_decode_body(const msgpack_object *body, proto_msg_t *msg, char *err, size_t errlen)
{
    switch (msg->header.type) {
    case PROTO_STOP:
    case PROTO_DRAIN:
    case PROTO_STATUS_REQ:
        //  No fields yet; any map with string keys is accepted so that
        //  fields can be added.
        return s_fields(body, NULL, 0, "body", err, errlen);
    case PROTO_HEARTBEAT:
        return s_decode_heartbeat(body, &msg->body.heartbeat, err, errlen);
    case PROTO_STATUS_REP:
        return s_decode_status(body, &msg->body.status, err, errlen);
    case PROTO_RESTART_REQ: {
        s_field_t f[] = {{"actor", NULL}};
        if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0)
            return -1;
        return S_GET_STR(f[0].value, msg->body.restart.actor, "actor");
    }
    case PROTO_LOG_LEVEL: {
        s_field_t f[] = {{"level", NULL}, {"actor", NULL}};
        if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0 ||
            S_GET_STR(f[0].value, msg->body.log_level.level, "level") != 0)
            return -1;
        return S_GET_STR(f[1].value, msg->body.log_level.actor, "actor");
    }
    case PROTO_RESULT: {
        s_field_t f[] = {{"code", NULL}, {"message", NULL}};
        if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0 ||
            s_get_i32(f[0].value, &msg->body.result.code, "code", err, errlen) != 0)
            return -1;
        return S_GET_STR(f[1].value, msg->body.result.message, "message");
    }
    case PROTO_RECS_REQ:
        return s_decode_recs_req(body, &msg->body.recs_req, err, errlen);
    case PROTO_RECS_REP:
        return s_decode_recs_rep(body, &msg->body.recs_rep, err, errlen);
    case PROTO_INTERACTION: {
        proto_interaction_t *in = &msg->body.interaction;
        s_field_t f[] = {{"user_id", NULL},
                         {"video_id", NULL},
                         {"kind", NULL},
                         {"weight", NULL},
                         {"occurred_ms", NULL}};
        if (s_fields(body, f, S_NFIELDS(f), "body", err, errlen) != 0 ||
            S_GET_STR(f[0].value, in->user_id, "user_id") != 0 ||
            S_GET_STR(f[1].value, in->video_id, "video_id") != 0 ||
            S_GET_STR(f[2].value, in->kind, "kind") != 0 ||
            s_get_double(f[3].value, &in->weight, "weight", err, errlen) != 0 ||
            s_get_uint(f[4].value, UINT64_MAX, &in->occurred_ms, "occurred_ms", err, errlen) != 0)
            return -1;
        return 0;
    }
    }
    s_seterr(err, errlen, "type: unknown %d", (int)msg->header.type);
    return -1;
}

proto_msg_t *proto_decode(const void *data, size_t size, char *err, size_t errlen)
{
    proto_msg_t *msg = NULL;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);

    if (size == 0 || !data) {
        s_seterr(err, errlen, "empty message");
        goto err;
    }
    if (size > (size_t)PROTO_MAX_MESSAGE) {
        s_seterr(err, errlen, "message is %zu bytes, at most %d", size, PROTO_MAX_MESSAGE);
        goto err;
    }
    size_t used = 0;
    if (s_skim(data, size, &used, err, errlen) != 0)
        goto err;
    if (used != size) {
        s_seterr(err, errlen, "%zu trailing bytes after the envelope", size - used);
        goto err;
    }
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&up, data, size, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != size) {
        s_seterr(err, errlen, "malformed msgpack (unpack returned %d)", (int)ret);
        goto err;
    }

    const msgpack_object *root = &up.data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 6) {
        s_seterr(err, errlen, "envelope: not an array of 6 elements");
        goto err;
    }
    const msgpack_object *e = root->via.array.ptr;
    uint64_t version, type;
    if (s_get_uint(&e[0], UINT32_MAX, &version, "version", err, errlen) != 0)
        goto err;
    if (version != PROTO_VERSION) {
        s_seterr(err, errlen, "version: %llu, expected %d", (unsigned long long)version,
                 PROTO_VERSION);
        goto err;
    }
    if (s_get_uint(&e[1], UINT32_MAX, &type, "type", err, errlen) != 0)
        goto err;
    if (type < 1 || type > PROTO_TYPE_MAX) {
        s_seterr(err, errlen, "type: unknown %llu", (unsigned long long)type);
        goto err;
    }
    msg = proto_msg_new((proto_type_t)type, "");
    if (!msg) {
        s_seterr(err, errlen, "out of memory");
        goto err;
    }
    if (S_GET_STR(&e[2], msg->header.request_id, "request_id") != 0 ||
        S_GET_STR(&e[3], msg->header.traceparent, "traceparent") != 0 ||
        s_get_uint(&e[4], UINT64_MAX, &msg->header.deadline_ms, "deadline_ms", err, errlen) != 0)
        goto err;
    if (e[5].type != MSGPACK_OBJECT_MAP) {
        s_seterr(err, errlen, "body: not a map");
        goto err;
    }
    if (s_decode_body(&e[5], msg, err, errlen) != 0)
        goto err;
    if (proto_validate(msg, err, errlen) != 0)
        goto err;
    msgpack_unpacked_destroy(&up);
    return msg;
err:
    proto_msg_destroy(&msg);
    msgpack_unpacked_destroy(&up);
    return NULL;
}
