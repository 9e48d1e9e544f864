/*  model_registry.c: the training queue and model registry's SQL (see model_registry.h). */
#include "model_registry.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "pg_conn.h"
#include "trace.h"

//  RFC 3339 UTC with milliseconds, NULL for NULL.
#define TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
//  Microseconds since the epoch (extract gives numeric: exact).
#define EPOCH_US(x) "(extract(epoch FROM (" x ")) * 1000000)::bigint"
//  A bigint parameter of microseconds as a timestamptz, exactly (interval
//  * bigint goes through float8 and would round far from the epoch).
#define FROM_US(p)                                                                                 \
    "('epoch'::timestamptz + (" p "::bigint / 1000000) * interval '1 second'"                      \
    " + (" p "::bigint % 1000000) * interval '1 microsecond')"
//  The advisory lock key of a model (a uuid expression).
#define MODEL_KEY(x) "hashtextextended('recsd.training.model:' || (" x ")::text, 0)"
#define LEADER_KEY "hashtextextended('recsd.training.schedule-leader', 0)"
#define SCHEDULE_KEY "hashtextextended('recsd.training.schedule', 0)"
//  True if this session holds the session-level advisory lock key k (a
//  bigint expression). pg_locks shows a bigint key as classid = high 32
//  bits, objid = low 32 bits, objsubid = 1.
#define OWN_LOCK(k)                                                                                \
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"                 \
    " AND l.pid = pg_backend_pid() AND l.objsubid = 1"                                             \
    " AND l.classid = ((" k " >> 32) & 4294967295)::oid"                                           \
    " AND l.objid = ((" k ") & 4294967295)::oid)"

//  An event's Kafka headers for run row alias r: its type, and the
//  requester's trace context when the run has one (the publisher continues
//  that trace).
#define HEADERS(type, r)                                                                           \
    "jsonb_strip_nulls(jsonb_build_object('event-type', '" type "',"                               \
    " 'traceparent', " r ".traceparent))"
#define HEADERS_STARTED(r) HEADERS("ModelTrainingStarted", r)
#define HEADERS_COMPLETED(r) HEADERS("ModelTrainingCompleted", r)
//  The ModelTrainingCompleted payload of row alias m; status_expr is SQL.
#define COMPLETED_PAYLOAD(m, status_expr)                                                          \
    "jsonb_build_object('model_id', " m ".model_id, 'training_id', " m ".training_id,"             \
    " 'status', " status_expr ", 'metrics', " m ".metrics,"                                        \
    " 'artifact_path', " m ".artifact_path, 'completion_time', " TS(m ".finished_at") ")"

//  ---- the statements ---------------------------------------------------
//  Kept together, unformatted, so that each reads as SQL.
// clang-format off

static const char s_sql_insert_run[] =
    "INSERT INTO training.runs (trigger, requested_by, model_type, start_date, end_date,"
    "                           traceparent)"
    " VALUES ($1, $2, $3, " FROM_US("$4") ", " FROM_US("$5") ", $6)"
    " RETURNING training_id::text";

//  The counter row's lock serialises version numbers per type.
static const char s_sql_queue_model[] =
    "WITH v AS (INSERT INTO training.model_types AS t (model_type, last_version)"
    "             VALUES ($2, 1) ON CONFLICT (model_type)"
    "             DO UPDATE SET last_version = t.last_version + 1"
    "           RETURNING last_version)"
    " INSERT INTO training.models (training_id, model_type, version)"
    " SELECT $1::uuid, $2, v.last_version FROM v"
    " RETURNING model_id::text, version";

static const char s_sql_notify_training[] =
    "SELECT pg_notify('" MODEL_REGISTRY_CHANNEL_TRAINING "', $1)";

static const char s_sql_claim[] =
    "UPDATE training.models m"
    "   SET status = 'running', worker = $1, started_at = now(), heartbeat_at = now(),"
    "       phase = 'claimed', iteration = NULL, percent = 0,"
    "       params = coalesce($2::jsonb -> m.model_type, '{}'::jsonb) || m.params"
    "  FROM training.runs r"
    " WHERE m.model_id = (SELECT model_id FROM training.models"
    "                      WHERE status = 'queued' ORDER BY queue_seq"
    "                      LIMIT 1 FOR UPDATE SKIP LOCKED)"
    "   AND r.training_id = m.training_id"
    " RETURNING m.model_id::text, m.training_id::text, m.model_type, m.version,"
    "           m.params::text, r.trigger, " EPOCH_US("r.start_date") ", " EPOCH_US("r.end_date") ","
    "           r.traceparent";

static const char s_sql_lock_model[] =
    "SELECT pg_try_advisory_lock(" MODEL_KEY("$1::uuid") ")";

//  Without the ownership test an unlock of a lock we do not hold makes
//  the server send a WARNING.
static const char s_sql_unlock_model[] =
    "SELECT CASE WHEN " OWN_LOCK(MODEL_KEY("$1::uuid"))
    " THEN pg_advisory_unlock(" MODEL_KEY("$1::uuid") ") END";

static const char s_sql_started_event[] =
    "INSERT INTO public.outbox (topic, key, payload, headers)"
    " SELECT '" MODEL_REGISTRY_TOPIC_STARTED "', m.model_id::text,"
    "        jsonb_build_object('model_id', m.model_id, 'model_type', m.model_type,"
    "                           'training_id', m.training_id,"
    "                           'start_time', " TS("m.started_at") ","
    "                           'parameters', m.params), " HEADERS_STARTED("r")
    "   FROM training.models m JOIN training.runs r USING (training_id)"
    "  WHERE m.model_id = $1::uuid";

static const char s_sql_completed_event[] =
    "INSERT INTO public.outbox (topic, key, payload, headers)"
    " SELECT '" MODEL_REGISTRY_TOPIC_COMPLETED "', m.model_id::text,"
    "        " COMPLETED_PAYLOAD("m", "$2::text") ", " HEADERS_COMPLETED("r")
    "   FROM training.models m JOIN training.runs r USING (training_id)"
    "  WHERE m.model_id = $1::uuid";

static const char s_sql_progress[] =
    "UPDATE training.models"
    "   SET phase = coalesce($2, phase), iteration = coalesce($3::integer, iteration),"
    "       percent = coalesce($4::real, percent), heartbeat_at = now()"
    " WHERE model_id = $1::uuid AND status = 'running'";

static const char s_sql_succeed[] =
    "UPDATE training.models"
    "   SET status = 'succeeded', finished_at = now(), heartbeat_at = now(), phase = 'done',"
    "       percent = 100, metrics = $2::jsonb, artifact_path = $3, artifact_checksum = $4,"
    "       gate_passed = $5::boolean, gate_reason = $6"
    " WHERE model_id = $1::uuid AND status = 'running'";

static const char s_sql_fail[] =
    "UPDATE training.models"
    "   SET status = 'failed', finished_at = now(), heartbeat_at = now(), error = $2"
    " WHERE model_id = $1::uuid AND status = 'running'";

//  Orphan recovery takes two statements. This one lists the running
//  models whose lock this session does not hold itself (a session is
//  always granted a lock it already holds, so its own claims would look
//  orphaned to the try-lock below). It must run on its own: pg_locks
//  cannot tell session from transaction locks, so the try-locks of the
//  next statement would read as "held by us" here.
static const char s_sql_orphan_candidates[] =
    "SELECT coalesce(array_agg(m.model_id), '{}')::text FROM training.models m"
    " WHERE m.status = 'running' AND NOT " OWN_LOCK(MODEL_KEY("m.model_id"));

//  Of the candidates ($1), the orphans are those whose lock is free: the
//  try-lock (transaction-level, gone when this statement's transaction
//  ends) succeeds only if no session holds the claimer's lock. One
//  statement, so it is atomic without BEGIN. SKIP LOCKED: a row that a
//  finishing trainer is updating right now is no orphan, and the UPDATE
//  re-checks the status of what it locked.
static const char s_sql_recover[] =
    "WITH orphans AS ("
    "   SELECT m.model_id FROM training.models m"
    "    WHERE m.model_id = ANY ($1::uuid[]) AND m.status = 'running'"
    "      AND pg_try_advisory_xact_lock(" MODEL_KEY("m.model_id") ")"
    "      FOR UPDATE SKIP LOCKED),"
    " failed AS ("
    "   UPDATE training.models m"
    "      SET status = 'failed', finished_at = now(), error = '" MODEL_REGISTRY_ORPHAN_ERROR "'"
    "     FROM orphans o WHERE m.model_id = o.model_id AND m.status = 'running'"
    "   RETURNING m.*),"
    " events AS ("
    "   INSERT INTO public.outbox (topic, key, payload, headers)"
    "   SELECT '" MODEL_REGISTRY_TOPIC_COMPLETED "', f.model_id::text,"
    "          " COMPLETED_PAYLOAD("f", "'failed'") ", " HEADERS_COMPLETED("r")
    "     FROM failed f JOIN training.runs r USING (training_id))"
    " SELECT count(*) FROM failed";

static const char s_sql_queue_depth[] =
    "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running')"
    "  FROM training.models WHERE status IN ('queued', 'running')";

//  Lock order, everywhere: the model's row, then its type's counter row
//  (which serialises activations of one type), then the active row.
static const char s_sql_lock_for_activation[] =
    "SELECT model_type, status, artifact_path IS NOT NULL"
    "  FROM training.models WHERE model_id = $1::uuid FOR UPDATE";

static const char s_sql_lock_type[] =
    "SELECT 1 FROM training.model_types WHERE model_type = $1 FOR UPDATE";

//  Retire first: the one-active-per-type index is checked row by row.
static const char s_sql_retire[] =
    "UPDATE training.models SET status = 'retired'"
    " WHERE model_type = $1 AND status = 'active' RETURNING model_id::text";

static const char s_sql_activate[] =
    "WITH a AS (UPDATE training.models SET status = 'active'"
    "            WHERE model_id = $1::uuid RETURNING model_id),"
    " audit AS (INSERT INTO training.activations"
    "             (model_id, model_type, previous_model_id, activated_by, reason)"
    "           SELECT model_id, $2, $3::uuid, $4, $5 FROM a)"
    " SELECT pg_notify('" MODEL_REGISTRY_CHANNEL_ACTIVATED "', $2 || ':' || $1) FROM a";

static const char s_sql_active[] =
    "SELECT model_id::text, version, artifact_path, coalesce(artifact_checksum, '')"
    "  FROM training.models WHERE model_type = $1 AND status = 'active'";

#define GATE_JSON(m)                                                                               \
    "CASE WHEN " m ".gate_passed IS NULL THEN NULL"                                                \
    " ELSE json_build_object('passed', " m ".gate_passed, 'reason', " m ".gate_reason) END"

//  json_build_object (not jsonb): keeps the keys in the documented order.
static const char s_sql_list[] =
    "SELECT json_build_object("
    "  'models', coalesce((SELECT json_agg(x.doc ORDER BY x.created_at DESC, x.queue_seq DESC)"
    "    FROM (SELECT m.created_at, m.queue_seq, json_build_object("
    "            'model_id', m.model_id, 'training_id', m.training_id,"
    "            'model_type', m.model_type, 'version', m.version, 'status', m.status,"
    "            'active', m.status = 'active',"
    "            'created_at', " TS("m.created_at") ","
    "            'started_at', " TS("m.started_at") ","
    "            'finished_at', " TS("m.finished_at") ","
    "            'metrics', m.metrics, 'artifact_path', m.artifact_path,"
    "            'gate', " GATE_JSON("m") ", 'error', m.error) AS doc"
    "            FROM training.models m WHERE $1::text IS NULL OR m.model_type = $1"
    "           ORDER BY m.created_at DESC, m.queue_seq DESC LIMIT $2::integer) x),"
    "    '[]'::json),"
    "  'active', coalesce((SELECT json_object_agg(a.model_type, a.model_id ORDER BY a.model_type)"
    "                        FROM training.models a WHERE a.status = 'active'), '{}'::json))::text";

static const char s_sql_get[] =
    "SELECT json_build_object("
    "  'model_id', m.model_id, 'training_id', m.training_id, 'model_type', m.model_type,"
    "  'version', m.version, 'status', m.status, 'active', m.status = 'active',"
    "  'created_at', " TS("m.created_at") ", 'started_at', " TS("m.started_at") ","
    "  'finished_at', " TS("m.finished_at") ","
    "  'progress', json_build_object('phase', m.phase, 'iteration', m.iteration,"
    "                                'percent', m.percent,"
    "                                'heartbeat_at', " TS("m.heartbeat_at") "),"
    "  'worker', m.worker, 'params', m.params, 'metrics', m.metrics,"
    "  'artifact_path', m.artifact_path, 'artifact_checksum', m.artifact_checksum,"
    "  'error', m.error, 'gate', " GATE_JSON("m") ","
    "  'training', json_build_object('trigger', r.trigger, 'requested_by', r.requested_by,"
    "                                'model_type', r.model_type,"
    "                                'start_date', " TS("r.start_date") ","
    "                                'end_date', " TS("r.end_date") ","
    "                                'created_at', " TS("r.created_at") "),"
    "  'activations', coalesce((SELECT json_agg(json_build_object("
    "       'activated_at', " TS("a.activated_at") ", 'activated_by', a.activated_by,"
    "       'reason', a.reason, 'previous_model_id', a.previous_model_id) ORDER BY a.id DESC)"
    "     FROM training.activations a WHERE a.model_id = m.model_id), '[]'::json))::text"
    "  FROM training.models m JOIN training.runs r ON r.training_id = m.training_id"
    " WHERE m.model_id = $1::uuid";

//  pg_try_advisory_lock stacks: asked again while held it would add a
//  second hold that one release would not undo. Ask only if not held.
static const char s_sql_try_leader[] =
    "SELECT CASE WHEN " OWN_LOCK(LEADER_KEY) " THEN true"
    " ELSE pg_try_advisory_lock(" LEADER_KEY ") END";

static const char s_sql_release_leader[] =
    "SELECT CASE WHEN " OWN_LOCK(LEADER_KEY) " THEN pg_advisory_unlock(" LEADER_KEY ")"
    " ELSE false END";

static const char s_sql_last_scheduled[] =
    "SELECT " EPOCH_US("max(created_at)") " FROM training.runs WHERE trigger = 'schedule'";

//  Held to the end of the transaction: a second caller waits, then sees
//  the run the first one queued (READ COMMITTED: a fresh snapshot per
//  statement) and finds nothing due.
static const char s_sql_lock_schedule[] = "SELECT pg_advisory_xact_lock(" SCHEDULE_KEY ")";

static const char s_sql_schedule_due[] =
    "SELECT coalesce(max(created_at) <= clock_timestamp() - $1::integer * interval '1 second',"
    "                true)"
    "  FROM training.runs WHERE trigger = 'schedule'";

// clang-format on

//  The types "all" expands to, in queue order: hybrid blends the
//  collaborative and content models, so they are queued before it.
static const char *s_all_types[] = {"collaborative", "content", "hybrid", "popularity"};
#define ALL_COUNT (sizeof s_all_types / sizeof *s_all_types)
static const char *s_known_types[] = {"collaborative", "content", "hybrid",
                                      "popularity",    "ease",    "item_knn"};

//  ---- small helpers ---------------------------------------------------

//  A pg_conn helper's 0 / -1 as a model_registry_rc_t.
static int s_rc(int pg_rc)
{
    return pg_rc == 0 ? MODEL_REGISTRY_OK : MODEL_REGISTRY_ERROR;
}

static void s_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

//  The value of an integer column of row, col, into *out. Returns 0, or -1
//  with the reason when the text is not a decimal in [min, max]: PostgreSQL
//  wrote it, so that would mean the schema and this code disagree.
static int s_pg_integer(const PGresult *res, int row, int col, long long min, long long max,
                        long long *out, char *err, size_t errlen)
{
    const char *text = PQgetvalue(res, row, col);
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || value < min || value > max) {
        errbuf_set(err, errlen, "column %d: '%.32s' is not an integer in [%lld, %lld]", col, text,
                   min, max);
        return -1;
    }
    *out = value;
    return 0;
}

static int s_pg_int(const PGresult *res, int row, int col, int *out, char *err, size_t errlen)
{
    long long value = 0;
    if (s_pg_integer(res, row, col, INT_MIN, INT_MAX, &value, err, errlen) != 0)
        return -1;
    *out = (int)value;
    return 0;
}

static int s_pg_long(const PGresult *res, int row, int col, long *out, char *err, size_t errlen)
{
    long long value = 0;
    if (s_pg_integer(res, row, col, LONG_MIN, LONG_MAX, &value, err, errlen) != 0)
        return -1;
    *out = (long)value;
    return 0;
}

static bool s_in(const char *text, const char *const *set, size_t count)
{
    if (!text)
        return false;
    for (size_t i = 0; i < count; i++)
        if (strcmp(text, set[i]) == 0)
            return true;
    return false;
}

static bool s_who_valid(const char *who)
{
    return who && *who && strlen(who) <= MODEL_REGISTRY_WHO_MAX;
}

//  ---- names and ids ---------------------------------------------------

bool model_registry_type_known(const char *type)
{
    return s_in(type, s_known_types, sizeof s_known_types / sizeof *s_known_types);
}

bool model_registry_type_requestable(const char *type)
{
    return (type && strcmp(type, "all") == 0) || s_in(type, s_all_types, ALL_COUNT);
}

bool model_registry_uuid_valid(const char *text)
{
    if (!text || strnlen(text, MODEL_REGISTRY_UUID_LEN + 1) != MODEL_REGISTRY_UUID_LEN)
        return false;
    for (int i = 0; i < MODEL_REGISTRY_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i]))
            return false;
    }
    return true;
}

//  Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one.
static size_t s_utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    //  Overlong forms and surrogates, which PostgreSQL refuses.
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0;
    return len;
}

char *model_registry_sanitize_error(const char *text, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return out;
    size_t limit = outlen - 1 < MODEL_REGISTRY_ERROR_MAX ? outlen - 1 : MODEL_REGISTRY_ERROR_MAX;
    size_t n = 0;
    bool cut = false;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != '\n' && *p != '\r') {
        size_t len = s_utf8_len(p);
        const char *piece = (const char *)p;
        if (len == 0) { //  not UTF-8: PostgreSQL would refuse the whole text
            piece = "?";
            len = 1;
        } else if (len == 1 && (*p < 0x20 || *p == 0x7f))
            piece = " ";
        if (n + len > limit) {
            cut = true;
            break;
        }
        memcpy(out + n, piece, len);
        n += len;
        p += len;
    }
    if (*p && *p != '\n' && *p != '\r')
        cut = true;
    while (n > 0 && out[n - 1] == ' ')
        n--;
    if (cut && limit >= 3) {
        //  Make room for "..." without splitting a UTF-8 sequence.
        while (n + 3 > limit)
            do
                n--;
            while (n > 0 && ((unsigned char)out[n] & 0xc0) == 0x80);
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    if (n == 0)
        s_copy(out, outlen, "unknown error");
    return out;
}

//  ---- queue -----------------------------------------------------------

//  The body of an enqueue, inside the caller's transaction.
static int s_enqueue_in_tx(PGconn *conn, const model_registry_request_t *req,
                           model_registry_enqueued_t *out, char *err, size_t errlen)
{
    char start[24], end[24];
    snprintf(start, sizeof start, "%" PRId64, req->start_us);
    snprintf(end, sizeof end, "%" PRId64, req->end_us);
    const char *traceparent = req->traceparent && *req->traceparent ? req->traceparent : NULL;
    const char *params[] = {req->trigger,
                            req->requested_by,
                            req->model_type,
                            req->has_start ? start : NULL,
                            req->has_end ? end : NULL,
                            traceparent};
    PGresult *res = pg_conn_query(conn, s_sql_insert_run, 6, params, PGRES_TUPLES_OK,
                                  "insert training run", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    s_copy(out->training_id, sizeof out->training_id, PQgetvalue(res, 0, 0));
    PQclear(res);

    const char *one[1];
    const char *const *types = s_all_types;
    size_t count = ALL_COUNT;
    if (strcmp(req->model_type, "all") != 0) {
        one[0] = req->model_type;
        types = one;
        count = 1;
    }
    for (size_t i = 0; i < count; i++) {
        const char *p[] = {out->training_id, types[i]};
        res = pg_conn_query(conn, s_sql_queue_model, 2, p, PGRES_TUPLES_OK, "queue model", err,
                            errlen);
        if (!res)
            return MODEL_REGISTRY_ERROR;
        s_copy(out->model_ids[i], sizeof out->model_ids[i], PQgetvalue(res, 0, 0));
        s_copy(out->model_types[i], sizeof out->model_types[i], types[i]);
        if (s_pg_int(res, 0, 1, &out->versions[i], err, errlen) != 0) {
            PQclear(res);
            return MODEL_REGISTRY_ERROR;
        }
        out->count = (int)i + 1;
        PQclear(res);
    }
    const char *p[] = {out->training_id};
    res = pg_conn_query(conn, s_sql_notify_training, 1, p, PGRES_TUPLES_OK, "notify trainers", err,
                        errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    PQclear(res);
    return MODEL_REGISTRY_OK;
}

static int s_check_request(const model_registry_request_t *req, char *err, size_t errlen)
{
    if (!req || !req->model_type ||
        (strcmp(req->model_type, "all") != 0 && !model_registry_type_known(req->model_type))) {
        errbuf_set(err, errlen, "unknown model type");
        return MODEL_REGISTRY_INVALID;
    }
    if (!req->trigger ||
        (strcmp(req->trigger, "manual") != 0 && strcmp(req->trigger, "schedule") != 0)) {
        errbuf_set(err, errlen, "trigger must be manual or schedule");
        return MODEL_REGISTRY_INVALID;
    }
    if (!s_who_valid(req->requested_by)) {
        errbuf_set(err, errlen, "requested_by must be 1..%d bytes", MODEL_REGISTRY_WHO_MAX);
        return MODEL_REGISTRY_INVALID;
    }
    if (req->has_start && req->has_end && req->end_us < req->start_us) {
        errbuf_set(err, errlen, "end_date is before start_date");
        return MODEL_REGISTRY_INVALID;
    }
    trace_ctx_t ctx;
    if (req->traceparent && *req->traceparent &&
        (strlen(req->traceparent) != TRACE_TRACEPARENT_LEN ||
         trace_ctx_parse(req->traceparent, &ctx) != 0)) {
        errbuf_set(err, errlen, "traceparent is not a W3C trace context");
        return MODEL_REGISTRY_INVALID;
    }
    return MODEL_REGISTRY_OK;
}

int model_registry_enqueue(PGconn *conn, const model_registry_request_t *req,
                           model_registry_enqueued_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = s_check_request(req, err, errlen);
    if (rc != MODEL_REGISTRY_OK)
        return rc;
    if (pg_conn_command(conn, "BEGIN", "begin", err, errlen) != 0)
        return MODEL_REGISTRY_ERROR;
    if (s_enqueue_in_tx(conn, req, out, err, errlen) != 0 ||
        pg_conn_command(conn, "COMMIT", "commit training request", err, errlen) != 0) {
        pg_conn_rollback(conn);
        memset(out, 0, sizeof *out);
        return MODEL_REGISTRY_ERROR;
    }
    return MODEL_REGISTRY_OK;
}

//  Releases the model's advisory lock if this session holds it. Best
//  effort: if it fails, the lock goes with the session.
static void s_unlock_model(PGconn *conn, const char *model_id)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return;
    const char *p[] = {model_id};
    PQclear(PQexecParams(conn, s_sql_unlock_model, 1, NULL, p, NULL, NULL, 0));
}

static bool s_defaults_valid(const json_t *defaults)
{
    if (!defaults)
        return true;
    if (!json_is_object(defaults))
        return false;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)defaults, key, value)
    {
        if (!json_is_object(value))
            return false;
    }
    return true;
}

//  Fills *out from the claim's RETURNING row. Returns 0, or -1 if the
//  stored params do not parse (cannot happen: PostgreSQL wrote them).
static int s_claim_fill(PGresult *res, model_registry_claim_t *out, char *err, size_t errlen)
{
    s_copy(out->model_id, sizeof out->model_id, PQgetvalue(res, 0, 0));
    s_copy(out->training_id, sizeof out->training_id, PQgetvalue(res, 0, 1));
    s_copy(out->model_type, sizeof out->model_type, PQgetvalue(res, 0, 2));
    if (s_pg_int(res, 0, 3, &out->version, err, errlen) != 0)
        return -1;
    s_copy(out->trigger, sizeof out->trigger, PQgetvalue(res, 0, 5));
    long long us = 0;
    if ((out->has_start = !PQgetisnull(res, 0, 6))) {
        if (s_pg_integer(res, 0, 6, INT64_MIN, INT64_MAX, &us, err, errlen) != 0)
            return -1;
        out->start_us = us;
    }
    if ((out->has_end = !PQgetisnull(res, 0, 7))) {
        if (s_pg_integer(res, 0, 7, INT64_MIN, INT64_MAX, &us, err, errlen) != 0)
            return -1;
        out->end_us = us;
    }
    s_copy(out->traceparent, sizeof out->traceparent, PQgetvalue(res, 0, 8));
    out->params = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    if (!json_is_object(out->params)) {
        errbuf_set(err, errlen, "claim: stored params are not a JSON object");
        return -1;
    }
    return 0;
}

int model_registry_claim(PGconn *conn, const char *worker, const json_t *defaults,
                         model_registry_claim_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!worker || !*worker || strlen(worker) > 64) {
        errbuf_set(err, errlen, "worker must be 1..64 bytes");
        return MODEL_REGISTRY_INVALID;
    }
    if (!s_defaults_valid(defaults)) {
        errbuf_set(err, errlen, "defaults must be an object of objects keyed by model type");
        return MODEL_REGISTRY_INVALID;
    }
    char *defaults_text =
        defaults ? json_dumps(defaults, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    if (defaults && !defaults_text) {
        errbuf_set(err, errlen, "out of memory");
        return MODEL_REGISTRY_ERROR;
    }
    int rc = MODEL_REGISTRY_ERROR;
    bool locked = false;
    PGresult *res = NULL;
    if (pg_conn_command(conn, "BEGIN", "begin", err, errlen) != 0)
        goto done;
    const char *p[] = {worker, defaults_text};
    res = pg_conn_query(conn, s_sql_claim, 2, p, PGRES_TUPLES_OK, "claim next queued model", err,
                        errlen);
    if (!res)
        goto done;
    if (PQntuples(res) == 0) {
        rc = pg_conn_command(conn, "COMMIT", "commit", err, errlen) == 0 ? 0 : MODEL_REGISTRY_ERROR;
        goto done;
    }
    //  Filled (params parsed) before the commit: a claim the trainer could
    //  not use must not be left running.
    if (s_claim_fill(res, out, err, errlen) != 0)
        goto done;
    PQclear(res);

    const char *id[] = {out->model_id};
    res = pg_conn_query(conn, s_sql_lock_model, 1, id, PGRES_TUPLES_OK, "lock claimed model", err,
                        errlen);
    if (!res)
        goto done;
    //  A session-level lock taken in a transaction survives its rollback:
    //  from here on, every failure path unlocks.
    locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (!locked) {
        //  Only a session that claimed this very model could hold it:
        //  cannot happen for a queued row unless something is badly wrong.
        errbuf_set(err, errlen, "claim: the advisory lock of model %s is held elsewhere",
                   out->model_id);
        goto done;
    }
    PQclear(res);
    res = pg_conn_query(conn, s_sql_started_event, 1, id, PGRES_COMMAND_OK,
                        "write ModelTrainingStarted", err, errlen);
    if (!res)
        goto done;
    if (pg_conn_command(conn, "COMMIT", "commit claim", err, errlen) != 0)
        goto done;
    rc = 1;
done:
    PQclear(res);
    free(defaults_text);
    if (rc != 1) {
        pg_conn_rollback(conn);
        if (locked)
            s_unlock_model(conn, out->model_id);
        model_registry_claim_clear(out);
    }
    return rc;
}

void model_registry_claim_clear(model_registry_claim_t *claim)
{
    if (!claim)
        return;
    json_decref(claim->params);
    memset(claim, 0, sizeof *claim);
}

int model_registry_progress(PGconn *conn, const char *model_id, const char *phase, int iteration,
                            double percent, char *err, size_t errlen)
{
    if (!model_registry_uuid_valid(model_id)) {
        errbuf_set(err, errlen, "model id is not a uuid");
        return MODEL_REGISTRY_INVALID;
    }
    if (phase && (!*phase || strlen(phase) > 64)) {
        errbuf_set(err, errlen, "phase must be 1..64 bytes");
        return MODEL_REGISTRY_INVALID;
    }
    if (isnan(percent) || percent > 100) {
        errbuf_set(err, errlen, "percent must be 0..100");
        return MODEL_REGISTRY_INVALID;
    }
    char iter[16], pct[32];
    snprintf(iter, sizeof iter, "%d", iteration);
    snprintf(pct, sizeof pct, "%.3f", percent);
    const char *p[] = {model_id, phase, iteration >= 0 ? iter : NULL, percent >= 0 ? pct : NULL};
    PGresult *res =
        pg_conn_query(conn, s_sql_progress, 4, p, PGRES_COMMAND_OK, "record progress", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    bool updated = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    if (!updated) {
        errbuf_set(err, errlen, "model %s is not running", model_id);
        return MODEL_REGISTRY_NOT_FOUND;
    }
    return MODEL_REGISTRY_OK;
}

static int s_activate_in_tx(PGconn *conn, const char *model_id, const char *who, const char *reason,
                            model_registry_activation_t *out, char *err, size_t errlen);

//  Writes ModelTrainingCompleted for model_id (status "success" or
//  "failed"), inside the caller's transaction.
static int s_completed_event(PGconn *conn, const char *model_id, const char *status, char *err,
                             size_t errlen)
{
    const char *p[] = {model_id, status};
    PGresult *res = pg_conn_query(conn, s_sql_completed_event, 2, p, PGRES_COMMAND_OK,
                                  "write ModelTrainingCompleted", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    PQclear(res);
    return MODEL_REGISTRY_OK;
}

//  Runs a finishing UPDATE (s_sql_succeed or s_sql_fail) inside the
//  caller's transaction. Returns OK, NOT_FOUND (0 rows: not running), ERROR.
static int s_finish_update(PGconn *conn, const char *sql, int n, const char *const *params,
                           const char *model_id, char *err, size_t errlen)
{
    PGresult *res =
        pg_conn_query(conn, sql, n, params, PGRES_COMMAND_OK, "record result", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    bool updated = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    if (!updated) {
        errbuf_set(err, errlen, "model %s is not running (recovered as failed meanwhile?)",
                   model_id);
        return MODEL_REGISTRY_NOT_FOUND;
    }
    return MODEL_REGISTRY_OK;
}

static int s_check_result(const model_registry_result_t *result, char *err, size_t errlen)
{
    if (!result->artifact_path || !*result->artifact_path ||
        strlen(result->artifact_path) >= MODEL_REGISTRY_PATH_MAX) {
        errbuf_set(err, errlen, "artifact_path must be 1..%d bytes", MODEL_REGISTRY_PATH_MAX - 1);
        return MODEL_REGISTRY_INVALID;
    }
    if (result->artifact_checksum &&
        strlen(result->artifact_checksum) >= MODEL_REGISTRY_CHECKSUM_MAX) {
        errbuf_set(err, errlen, "artifact_checksum is too long");
        return MODEL_REGISTRY_INVALID;
    }
    if (result->metrics && !json_is_object(result->metrics)) {
        errbuf_set(err, errlen, "metrics must be a JSON object");
        return MODEL_REGISTRY_INVALID;
    }
    if (result->activate && result->activated_by && !s_who_valid(result->activated_by)) {
        errbuf_set(err, errlen, "activated_by must be 1..%d bytes", MODEL_REGISTRY_WHO_MAX);
        return MODEL_REGISTRY_INVALID;
    }
    return MODEL_REGISTRY_OK;
}

int model_registry_succeed(PGconn *conn, const char *model_id,
                           const model_registry_result_t *result, char *err, size_t errlen)
{
    if (!model_registry_uuid_valid(model_id) || !result) {
        errbuf_set(err, errlen, "model id is not a uuid, or no result");
        return MODEL_REGISTRY_INVALID;
    }
    int rc = s_check_result(result, err, errlen);
    if (rc != MODEL_REGISTRY_OK)
        return rc;
    char *metrics = result->metrics
                        ? json_dumps(result->metrics, JSON_COMPACT | JSON_REAL_PRECISION(15))
                        : strdup("{}");
    if (!metrics) {
        errbuf_set(err, errlen, "out of memory");
        return MODEL_REGISTRY_ERROR;
    }
    const char *p[] = {model_id,
                       metrics,
                       result->artifact_path,
                       result->artifact_checksum,
                       result->gate_decided ? (result->gate_passed ? "t" : "f") : NULL,
                       result->gate_decided ? result->gate_reason : NULL};
    bool activate = result->activate && result->gate_decided && result->gate_passed;
    rc = s_rc(pg_conn_command(conn, "BEGIN", "begin", err, errlen));
    if (rc == MODEL_REGISTRY_OK)
        rc = s_finish_update(conn, s_sql_succeed, 6, p, model_id, err, errlen);
    if (rc == MODEL_REGISTRY_OK)
        rc = s_completed_event(conn, model_id, "success", err, errlen);
    if (rc == MODEL_REGISTRY_OK && activate)
        rc = s_activate_in_tx(conn, model_id,
                              result->activated_by ? result->activated_by : "trainer", "gate", NULL,
                              err, errlen);
    if (rc == MODEL_REGISTRY_OK)
        rc = s_rc(pg_conn_command(conn, "COMMIT", "commit success", err, errlen));
    free(metrics);
    if (rc != MODEL_REGISTRY_OK)
        pg_conn_rollback(conn);
    //  Done with the model either way (finished, or no longer ours): the
    //  lock has nothing left to guard. After a database error it stays,
    //  so that the caller can retry; it goes with the session otherwise.
    if (rc == MODEL_REGISTRY_OK || rc == MODEL_REGISTRY_NOT_FOUND)
        s_unlock_model(conn, model_id);
    return rc;
}

int model_registry_fail(PGconn *conn, const char *model_id, const char *error, char *err,
                        size_t errlen)
{
    if (!model_registry_uuid_valid(model_id)) {
        errbuf_set(err, errlen, "model id is not a uuid");
        return MODEL_REGISTRY_INVALID;
    }
    char text[MODEL_REGISTRY_ERROR_MAX + 1];
    model_registry_sanitize_error(error, text, sizeof text);
    const char *p[] = {model_id, text};
    int rc = s_rc(pg_conn_command(conn, "BEGIN", "begin", err, errlen));
    if (rc == MODEL_REGISTRY_OK)
        rc = s_finish_update(conn, s_sql_fail, 2, p, model_id, err, errlen);
    if (rc == MODEL_REGISTRY_OK)
        rc = s_completed_event(conn, model_id, "failed", err, errlen);
    if (rc == MODEL_REGISTRY_OK)
        rc = s_rc(pg_conn_command(conn, "COMMIT", "commit failure", err, errlen));
    if (rc != MODEL_REGISTRY_OK)
        pg_conn_rollback(conn);
    if (rc == MODEL_REGISTRY_OK || rc == MODEL_REGISTRY_NOT_FOUND)
        s_unlock_model(conn, model_id);
    return rc;
}

int model_registry_recover(PGconn *conn, char *err, size_t errlen)
{
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        //  Inside a transaction its earlier try-locks would stay held and
        //  read as our own (see s_sql_orphan_candidates).
        errbuf_set(err, errlen, "recover must not run inside a transaction");
        return MODEL_REGISTRY_INVALID;
    }
    PGresult *res = pg_conn_query(conn, s_sql_orphan_candidates, 0, NULL, PGRES_TUPLES_OK,
                                  "list running models", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    char *candidates =
        strcmp(PQgetvalue(res, 0, 0), "{}") == 0 ? NULL : strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!candidates)
        return 0; //  nothing running but our own claims (or out of memory: try next time)
    const char *p[] = {candidates};
    res = pg_conn_query(conn, s_sql_recover, 1, p, PGRES_TUPLES_OK, "recover orphaned models", err,
                        errlen);
    free(candidates);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    int count = 0;
    int rc = s_pg_int(res, 0, 0, &count, err, errlen);
    PQclear(res);
    return rc == 0 ? count : MODEL_REGISTRY_ERROR;
}

int model_registry_queue_depth(PGconn *conn, long *queued, long *running, char *err, size_t errlen)
{
    PGresult *res = pg_conn_query(conn, s_sql_queue_depth, 0, NULL, PGRES_TUPLES_OK, "queue depth",
                                  err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    long q = 0, r = 0;
    int rc =
        s_pg_long(res, 0, 0, &q, err, errlen) == 0 && s_pg_long(res, 0, 1, &r, err, errlen) == 0
            ? MODEL_REGISTRY_OK
            : MODEL_REGISTRY_ERROR;
    PQclear(res);
    if (rc == MODEL_REGISTRY_OK && queued)
        *queued = q;
    if (rc == MODEL_REGISTRY_OK && running)
        *running = r;
    return rc;
}

//  ---- activation ------------------------------------------------------

static int s_activate_in_tx(PGconn *conn, const char *model_id, const char *who, const char *reason,
                            model_registry_activation_t *out, char *err, size_t errlen)
{
    model_registry_activation_t local;
    if (!out)
        out = &local;
    memset(out, 0, sizeof *out);
    const char *id[] = {model_id};
    PGresult *res = pg_conn_query(conn, s_sql_lock_for_activation, 1, id, PGRES_TUPLES_OK,
                                  "look up model", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    if (PQntuples(res) == 0) {
        PQclear(res);
        errbuf_set(err, errlen, "no model %s", model_id);
        return MODEL_REGISTRY_NOT_FOUND;
    }
    s_copy(out->model_type, sizeof out->model_type, PQgetvalue(res, 0, 0));
    char status[16];
    s_copy(status, sizeof status, PQgetvalue(res, 0, 1));
    bool artifact = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    PQclear(res);
    if (strcmp(status, "active") == 0) {
        s_copy(out->reason, sizeof out->reason, reason ? reason : "manual");
        return MODEL_REGISTRY_OK; //  changed stays false
    }
    if ((strcmp(status, "succeeded") != 0 && strcmp(status, "retired") != 0) || !artifact) {
        errbuf_set(err, errlen,
                   "model %s is %s%s: only a succeeded or retired model with an artifact can be "
                   "activated",
                   model_id, status, artifact ? "" : " and has no artifact");
        return MODEL_REGISTRY_CONFLICT;
    }
    if (!reason)
        reason = strcmp(status, "retired") == 0 ? "rollback" : "manual";
    s_copy(out->reason, sizeof out->reason, reason);

    const char *type[] = {out->model_type};
    res = pg_conn_query(conn, s_sql_lock_type, 1, type, PGRES_TUPLES_OK, "lock model type", err,
                        errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    PQclear(res);
    res = pg_conn_query(conn, s_sql_retire, 1, type, PGRES_TUPLES_OK, "retire active model", err,
                        errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    if (PQntuples(res) > 0)
        s_copy(out->previous_model_id, sizeof out->previous_model_id, PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *p[] = {model_id, out->model_type,
                       out->previous_model_id[0] ? out->previous_model_id : NULL, who, reason};
    res = pg_conn_query(conn, s_sql_activate, 5, p, PGRES_TUPLES_OK, "activate model", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    PQclear(res);
    out->changed = true;
    return MODEL_REGISTRY_OK;
}

int model_registry_activate(PGconn *conn, const char *model_id, const char *who, const char *reason,
                            model_registry_activation_t *out, char *err, size_t errlen)
{
    static const char *reasons[] = {"gate", "manual", "rollback"};
    if (out)
        memset(out, 0, sizeof *out);
    if (!model_registry_uuid_valid(model_id)) {
        errbuf_set(err, errlen, "model id is not a uuid");
        return MODEL_REGISTRY_INVALID;
    }
    if (!s_who_valid(who)) {
        errbuf_set(err, errlen, "who must be 1..%d bytes", MODEL_REGISTRY_WHO_MAX);
        return MODEL_REGISTRY_INVALID;
    }
    if (reason && !s_in(reason, reasons, sizeof reasons / sizeof *reasons)) {
        errbuf_set(err, errlen, "reason must be gate, manual or rollback");
        return MODEL_REGISTRY_INVALID;
    }
    if (pg_conn_command(conn, "BEGIN", "begin", err, errlen) != 0)
        return MODEL_REGISTRY_ERROR;
    int rc = s_activate_in_tx(conn, model_id, who, reason, out, err, errlen);
    if (rc == MODEL_REGISTRY_OK)
        rc = s_rc(pg_conn_command(conn, "COMMIT", "commit activation", err, errlen));
    if (rc != MODEL_REGISTRY_OK) {
        pg_conn_rollback(conn);
        if (out)
            out->changed = false;
    }
    return rc;
}

int model_registry_active(PGconn *conn, const char *model_type, model_registry_active_t *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!model_registry_type_known(model_type)) {
        errbuf_set(err, errlen, "unknown model type");
        return MODEL_REGISTRY_INVALID;
    }
    const char *p[] = {model_type};
    PGresult *res =
        pg_conn_query(conn, s_sql_active, 1, p, PGRES_TUPLES_OK, "active model", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    int rc = MODEL_REGISTRY_NOT_FOUND;
    if (PQntuples(res) > 0) {
        s_copy(out->model_id, sizeof out->model_id, PQgetvalue(res, 0, 0));
        s_copy(out->artifact_path, sizeof out->artifact_path, PQgetvalue(res, 0, 2));
        s_copy(out->artifact_checksum, sizeof out->artifact_checksum, PQgetvalue(res, 0, 3));
        rc = s_pg_int(res, 0, 1, &out->version, err, errlen) == 0 ? MODEL_REGISTRY_OK
                                                                  : MODEL_REGISTRY_ERROR;
    } else
        errbuf_set(err, errlen, "no active %s model", model_type);
    PQclear(res);
    return rc;
}

//  ---- reading for the API ---------------------------------------------

//  Parses the JSON text in row 0, column 0 of res.
static json_t *s_json(PGresult *res, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    if (!doc)
        errbuf_set(err, errlen, "registry JSON does not parse: %s", jerr.text);
    return doc;
}

json_t *model_registry_list(PGconn *conn, const char *model_type, int limit, int *rc_p, char *err,
                            size_t errlen)
{
    int ignored;
    if (!rc_p)
        rc_p = &ignored;
    *rc_p = MODEL_REGISTRY_ERROR;
    if (model_type && !model_registry_type_known(model_type)) {
        *rc_p = MODEL_REGISTRY_INVALID;
        errbuf_set(err, errlen, "unknown model type");
        return NULL;
    }
    if (limit <= 0)
        limit = MODEL_REGISTRY_LIST_DEFAULT;
    if (limit > MODEL_REGISTRY_LIST_MAX)
        limit = MODEL_REGISTRY_LIST_MAX;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {model_type, lim};
    PGresult *res =
        pg_conn_query(conn, s_sql_list, 2, p, PGRES_TUPLES_OK, "list models", err, errlen);
    if (!res)
        return NULL;
    json_t *doc = s_json(res, err, errlen);
    PQclear(res);
    if (doc)
        *rc_p = MODEL_REGISTRY_OK;
    return doc;
}

int model_registry_get(PGconn *conn, const char *model_id, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!model_registry_uuid_valid(model_id)) {
        errbuf_set(err, errlen, "model id is not a uuid");
        return MODEL_REGISTRY_INVALID;
    }
    const char *p[] = {model_id};
    PGresult *res = pg_conn_query(conn, s_sql_get, 1, p, PGRES_TUPLES_OK, "get model", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    int rc = MODEL_REGISTRY_NOT_FOUND;
    if (PQntuples(res) == 0)
        errbuf_set(err, errlen, "no model %s", model_id);
    else {
        *out = s_json(res, err, errlen);
        rc = *out ? MODEL_REGISTRY_OK : MODEL_REGISTRY_ERROR;
    }
    PQclear(res);
    return rc;
}

//  ---- schedule --------------------------------------------------------

//  Runs a one-boolean query; OK with *value set, or ERROR.
static int s_bool_query(PGconn *conn, const char *sql, const char *what, bool *value, char *err,
                        size_t errlen)
{
    PGresult *res = pg_conn_query(conn, sql, 0, NULL, PGRES_TUPLES_OK, what, err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    *value = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return MODEL_REGISTRY_OK;
}

int model_registry_try_leader(PGconn *conn, bool *leader, char *err, size_t errlen)
{
    return s_bool_query(conn, s_sql_try_leader, "try schedule leadership", leader, err, errlen);
}

int model_registry_leader_release(PGconn *conn, char *err, size_t errlen)
{
    bool released;
    return s_bool_query(conn, s_sql_release_leader, "release schedule leadership", &released, err,
                        errlen);
}

int model_registry_last_scheduled(PGconn *conn, bool *any, int64_t *at_us, char *err, size_t errlen)
{
    PGresult *res = pg_conn_query(conn, s_sql_last_scheduled, 0, NULL, PGRES_TUPLES_OK,
                                  "last scheduled run", err, errlen);
    if (!res)
        return MODEL_REGISTRY_ERROR;
    *any = !PQgetisnull(res, 0, 0);
    if (*any && at_us)
        *at_us = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return MODEL_REGISTRY_OK;
}

int model_registry_schedule_if_due(PGconn *conn, int interval_s, const char *requested_by,
                                   model_registry_enqueued_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    model_registry_request_t req = {
        .model_type = "all", .trigger = "schedule", .requested_by = requested_by};
    if (interval_s <= 0) {
        errbuf_set(err, errlen, "interval must be positive");
        return MODEL_REGISTRY_INVALID;
    }
    int rc = s_check_request(&req, err, errlen);
    if (rc != MODEL_REGISTRY_OK)
        return rc;
    char interval[16];
    snprintf(interval, sizeof interval, "%d", interval_s);
    const char *p[] = {interval};
    bool due = false;
    rc = s_rc(pg_conn_command(conn, "BEGIN", "begin", err, errlen));
    if (rc == MODEL_REGISTRY_OK) {
        PGresult *res = pg_conn_query(conn, s_sql_lock_schedule, 0, NULL, PGRES_TUPLES_OK,
                                      "lock schedule", err, errlen);
        rc = res ? MODEL_REGISTRY_OK : MODEL_REGISTRY_ERROR;
        PQclear(res);
    }
    if (rc == MODEL_REGISTRY_OK) {
        PGresult *res = pg_conn_query(conn, s_sql_schedule_due, 1, p, PGRES_TUPLES_OK,
                                      "check schedule", err, errlen);
        rc = res ? MODEL_REGISTRY_OK : MODEL_REGISTRY_ERROR;
        due = res && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
    }
    if (rc == MODEL_REGISTRY_OK && due)
        rc = s_enqueue_in_tx(conn, &req, out, err, errlen);
    if (rc == MODEL_REGISTRY_OK)
        rc = s_rc(pg_conn_command(conn, "COMMIT", "commit schedule", err, errlen));
    if (rc != MODEL_REGISTRY_OK) {
        pg_conn_rollback(conn);
        memset(out, 0, sizeof *out);
        return rc;
    }
    return due ? 1 : 0;
}
