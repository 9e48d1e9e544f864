/*  interaction_store.c: batched, idempotent writes of events to PostgreSQL
    (see interaction_store.h for the contract).

    One batch, one transaction, a handful of round trips whatever its size:
      BEGIN; CREATE TEMP TABLE IF NOT EXISTS ... ON COMMIT DELETE ROWS
      COPY recsd_ingest_batch FROM STDIN       (text format, streamed)
      SAVEPOINT; INSERT INTO features.interactions SELECT ...
        only if that met a duplicate:
        ROLLBACK TO SAVEPOINT; INSERT ... SELECT ... ON CONFLICT DO NOTHING
      INSERT INTO features.users SELECT ... ON CONFLICT DO NOTHING
      INSERT INTO features.videos SELECT ... FROM jsonb_array_elements($1)
        ON CONFLICT DO UPDATE ... WHERE newer   (only with catalogue changes)
      INSERT INTO public.outbox SELECT ... FROM jsonb_array_elements($2)
      COMMIT
    COPY is several times cheaper than a multi-row INSERT per row, and the
    set-based INSERT ... SELECT lets the server dedupe against the unique
    index in one statement; trying the plain INSERT first spares new events
    (nearly all of them) ON CONFLICT's extra index probe. The temp table
    lives as long as the connection (created once; IF NOT EXISTS costs a
    catalogue lookup) and is emptied at each commit.

    New rows per kind: when the plain INSERT succeeds every event was new,
    so the batch's own counts per kind are the answer and the fast path
    pays nothing for them; only the ON CONFLICT path asks the server which
    kinds it inserted (RETURNING, counted in the same statement).

    Catalogue changes are rare next to interactions and carry arrays: they
    go as a JSON parameter rather than through COPY (no array-literal
    escaping), sorted by video_id and deduplicated here first (one
    statement must not update a row twice), in groups of bounded size.

    The event id is the SHA-256 of a canonical text built here (see
    s_put_canonical), hashed here too (the server's sha256() of the same
    text gives the same id; hashing is a tenth of the server's work per row
    otherwise), so every writer derives the same id for the same event. Rows are inserted in
   event_id (and users in user_id) order: two writers that store overlapping batches concurrently (a
   replay after a rebalance, an import next to the ingestor) then take their index locks in the same
   order and cannot deadlock on each other.
*/
#include "interaction_store.h"

#include "experiment_store.h"

_Static_assert(EVENT_WATCHLIST_REMOVE < STORE_KINDS, "STORE_KINDS too small for event_kind_t");

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_conn.h"

#define S_COPY_FLUSH ((size_t)64 * 1024) //  bytes per PQputCopyData
#define S_ROW_MAX ((size_t)4096)         //  a row never exceeds this (bounded fields)
//  Dead letters are sent in groups of at most this many original bytes,
//  so a batch of large invalid payloads does not build one huge parameter.
#define S_DEAD_GROUP_BYTES ((size_t)4 * 1024 * 1024)

static const char *s_setup_sql = "BEGIN;"
                                 //  Silences "relation already exists, skipping" on every batch.
                                 "SET LOCAL client_min_messages = warning;"
                                 "CREATE TEMP TABLE IF NOT EXISTS recsd_ingest_batch ("
                                 "  event_id text COLLATE \"C\" NOT NULL,"
                                 "  user_id text COLLATE \"C\" NOT NULL,"
                                 "  video_id text COLLATE \"C\" NOT NULL,"
                                 "  kind text NOT NULL,"
                                 "  weight real,"
                                 "  rating real,"
                                 "  watched_duration_s integer,"
                                 "  total_duration_s integer,"
                                 "  device text,"
                                 "  occurred_at timestamptz NOT NULL"
                                 ") ON COMMIT DELETE ROWS";

static const char *s_copy_sql = "COPY recsd_ingest_batch FROM STDIN";

//  The common case, a batch of new events, as a plain INSERT under a
//  savepoint: ON CONFLICT would probe the event_id index once more per row
//  before inserting (measured: a third of the statement). A duplicate
//  (a replay, a redelivery, a concurrent writer) fails it with
//  unique_violation; the savepoint is then rolled back and the batch goes
//  again with ON CONFLICT DO NOTHING. Both insert in event_id order.
#define S_INSERT_INTERACTIONS                                                                      \
    "INSERT INTO features.interactions"                                                            \
    "  (event_id, user_id, video_id, kind, weight, rating, watched_duration_s,"                    \
    "   total_duration_s, device, occurred_at)"                                                    \
    " SELECT event_id, user_id, video_id, kind, weight, rating, watched_duration_s,"               \
    "        total_duration_s, device, occurred_at"                                                \
    "   FROM recsd_ingest_batch"                                                                   \
    "  ORDER BY 1"

static const char *s_insert_new_sql = "SAVEPOINT recsd_new_events; " S_INSERT_INTERACTIONS;

//  The careful path also says which kinds were new (the rows of its last
//  statement: kind, count).
static const char *s_insert_interactions_sql =
    "ROLLBACK TO SAVEPOINT recsd_new_events; "
    "WITH ins AS (" S_INSERT_INTERACTIONS " ON CONFLICT (event_id) DO NOTHING RETURNING kind)"
    " SELECT kind, count(*) FROM ins GROUP BY kind";

//  A user's created_at is their earliest event, as the MovieLens import
//  does; an existing user is left alone. Known users (the common case)
//  are filtered out by the anti-join, about twice as cheap as letting
//  ON CONFLICT find them; ON CONFLICT still covers a concurrent writer.
static const char *s_insert_users_sql =
    "INSERT INTO features.users (user_id, created_at)"
    " SELECT b.user_id, min(b.occurred_at) FROM recsd_ingest_batch b"
    "  WHERE NOT EXISTS (SELECT 1 FROM features.users u WHERE u.user_id = b.user_id)"
    "  GROUP BY b.user_id ORDER BY b.user_id"
    " ON CONFLICT (user_id) DO NOTHING";

//  $1 a JSON array of catalogue changes, sorted by video_id, one per video
//  (see s_video_json). Applied only where newer than what is stored; the
//  command tag counts the rows inserted or updated, not the skipped ones.
static const char *s_upsert_videos_sql =
    "INSERT INTO features.videos AS v"
    "  (video_id, title, genres, tags, duration_s, published_at, retired, catalog_updated_at)"
    " SELECT d->>'id', d->>'title',"
    "        ARRAY(SELECT x FROM jsonb_array_elements_text(d->'genres') WITH ORDINALITY"
    "               AS g(x, i) ORDER BY i),"
    "        ARRAY(SELECT x FROM jsonb_array_elements_text(d->'tags') WITH ORDINALITY"
    "               AS g(x, i) ORDER BY i),"
    "        (d->>'duration')::integer, (d->>'published')::timestamptz,"
    "        (d->>'retired')::boolean, (d->>'updated')::timestamptz"
    "   FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(d, n)"
    "  ORDER BY n"
    " ON CONFLICT (video_id) DO UPDATE"
    "    SET title = excluded.title, genres = excluded.genres, tags = excluded.tags,"
    "        duration_s = excluded.duration_s, published_at = excluded.published_at,"
    "        retired = excluded.retired, catalog_updated_at = excluded.catalog_updated_at"
    "  WHERE v.catalog_updated_at IS NULL OR v.catalog_updated_at < excluded.catalog_updated_at";

//  Catalogue changes per statement, at most (a few KiB of JSON each).
#define S_VIDEO_GROUP ((size_t)1000)

//  $1 the dead-letter topic, $2 a JSON array of {key, payload, headers}
//  in batch order.
static const char *s_insert_dead_sql =
    "INSERT INTO public.outbox (topic, key, payload, headers)"
    " SELECT $1, d->>'key', d->'payload', d->'headers'"
    "   FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(d, n)"
    "  ORDER BY n";

//  ---------------------------------------------------------------------
//  Errors

//  Writes "what: message" into err as one line. Returns -1.
static int s_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return -1;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r' || err[n - 1] == ' '))
        err[--n] = '\0';
    for (char *c = err; *c; c++) {
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    }
    return -1;
}

//  The server's message for a failed result (with its SQLSTATE), or the
//  connection's when there is no result.
static int s_pg_error(PGconn *conn, const PGresult *res, const char *what, char *err, size_t errlen)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (primary)
        return s_error(err, errlen, "%s: %s [%s]%s%s", what, primary, state ? state : "?",
                       detail ? "; " : "", detail ? detail : "");
    pg_conn_error_text(err, errlen, what, conn, res);
    return -1;
}

//  Runs a statement (or several: the last one's result counts) that
//  returns no rows. Returns 0 with the command tag's row count in *tuples
//  (if not NULL), or -1 with the reason and, if sqlstate is not NULL, the
//  SQLSTATE ("" if none) in sqlstate[6].
static int s_exec_state(PGconn *conn, const char *sql, const char *what, size_t *tuples,
                        char *sqlstate, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        if (sqlstate) {
            const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
            snprintf(sqlstate, 6, "%s", state ? state : "");
        }
        s_pg_error(conn, res, what, err, errlen);
        PQclear(res);
        return -1;
    }
    if (tuples)
        *tuples = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

static int s_exec(PGconn *conn, const char *sql, const char *what, size_t *tuples, char *err,
                  size_t errlen)
{
    return s_exec_state(conn, sql, what, tuples, NULL, err, errlen);
}

//  The event_kind_t of a kind name as stored, 0 if none.
static event_kind_t s_kind_of(const char *name)
{
    for (int k = 1; k < STORE_KINDS; k++) {
        const char *known = event_kind_name((event_kind_t)k);
        if (known && strcmp(known, name) == 0)
            return (event_kind_t)k;
    }
    return 0;
}

//  Inserts the COPYed batch into features.interactions: the fast path,
//  then, if it met a duplicate, the careful one. batch_kinds holds the
//  batch's events per kind. Returns 0 with the rows inserted, in total and
//  per kind, in *out, or -1 with the reason.
static int s_insert_interactions(PGconn *conn, const size_t batch_kinds[STORE_KINDS],
                                 store_result_t *out, char *err, size_t errlen)
{
    char state[6] = "";
    if (s_exec_state(conn, s_insert_new_sql, "insert interactions", &out->inserted, state, err,
                     errlen) == 0) {
        memcpy(out->inserted_by_kind, batch_kinds, sizeof out->inserted_by_kind);
        return 0;
    }
    if (strcmp(state, "23505") != 0) //  unique_violation
        return -1;
    PGresult *res = PQexec(conn, s_insert_interactions_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        s_pg_error(conn, res, "insert interactions", err, errlen);
        PQclear(res);
        return -1;
    }
    out->inserted = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        event_kind_t kind = s_kind_of(PQgetvalue(res, row, 0));
        size_t n = (size_t)strtoull(PQgetvalue(res, row, 1), NULL, 10);
        if (kind == 0) { //  cannot happen: the table's CHECK allows only ours
            PQclear(res);
            return s_error(err, errlen, "insert interactions: unexpected kind");
        }
        out->inserted_by_kind[kind] += n;
        out->inserted += n;
    }
    PQclear(res);
    return 0;
}

//  ---------------------------------------------------------------------
//  COPY rows

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} s_buf_t;

static void s_put(s_buf_t *buf, const char *text, size_t len)
{
    memcpy(buf->data + buf->len, text, len);
    buf->len += len;
}

static void s_putc(s_buf_t *buf, char c)
{
    buf->data[buf->len++] = c;
}

//  Appends text in COPY text format: the four characters that would end a
//  field or a row, or start an escape, are escaped.
static void s_put_escaped(s_buf_t *buf, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        switch (c) {
        case '\\':
            s_put(buf, "\\\\", 2);
            break;
        case '\t':
            s_put(buf, "\\t", 2);
            break;
        case '\n':
            s_put(buf, "\\n", 2);
            break;
        case '\r':
            s_put(buf, "\\r", 2);
            break;
        default:
            s_putc(buf, c);
        }
    }
}

static void s_putf(s_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_putf(s_buf_t *buf, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, args);
    va_end(args);
    if (n > 0)
        buf->len += (size_t)n < buf->cap - buf->len ? (size_t)n : buf->cap - buf->len - 1;
}

//  The shortest "%.Ng" that reads back as the same double: a stable,
//  readable text for a rating (4.5, not 4.5000000000000000).
static void s_format_double(char *out, size_t len, double value)
{
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(out, len, "%.*g", precision, value);
        if (strtod(out, NULL) == value)
            return;
    }
}

//  Microseconds since the epoch as a timestamptz literal in UTC (H.
//  Hinnant's civil_from_days), exact to the microsecond, independent of
//  the session's TimeZone and DateStyle for input.
static void s_format_time(char *out, size_t len, int64_t us)
{
    int64_t seconds = us / 1000000, micros = us % 1000000;
    if (micros < 0) {
        micros += 1000000;
        seconds -= 1;
    }
    int64_t days = seconds / 86400, rest = seconds % 86400;
    if (rest < 0) {
        rest += 86400;
        days -= 1;
    }
    int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int64_t d = doy - (153 * mp + 2) / 5 + 1;
    const int64_t m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(out, len, "%04lld-%02lld-%02lld %02lld:%02lld:%02lld.%06lld+00", (long long)y,
             (long long)m, (long long)d, (long long)(rest / 3600), (long long)(rest / 60 % 60),
             (long long)(rest % 60), (long long)micros);
}

//  A bounded string field of event_t (NUL-terminated in a valid event;
//  strnlen keeps a corrupt one from running off the array).
static size_t s_field_len(const char *field, size_t size)
{
    return strnlen(field, size - 1);
}

//  ---------------------------------------------------------------------
//  SHA-256 (FIPS 180-4) of the canonical text, so that the server does not
//  hash every row: the server's sha256() of the same bytes gives the same
//  id (the canonical text is ASCII, so convert_to(.., 'UTF8') is identity).

#define S_ROTR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static const uint32_t s_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static void s_sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (size_t i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (size_t i = 16; i < 64; i++) {
        uint32_t s0 = S_ROTR(w[i - 15], 7) ^ S_ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = S_ROTR(w[i - 2], 17) ^ S_ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (S_ROTR(e, 6) ^ S_ROTR(e, 11) ^ S_ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                      s_sha256_k[i] + w[i];
        uint32_t t2 =
            (S_ROTR(a, 2) ^ S_ROTR(a, 13) ^ S_ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

//  The SHA-256 of len bytes as 64 lowercase hex digits and a NUL.
static void s_sha256_hex(const void *data, size_t len, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        s_sha256_block(h, p);
    //  The tail, 0x80, zeros, the length in bits (big-endian): 1 or 2 blocks.
    unsigned char tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tail_len = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    s_sha256_block(h, tail);
    if (tail_len == 128)
        s_sha256_block(h, tail + 64);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        unsigned char byte = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
        out[2 * i] = digits[byte >> 4];
        out[2 * i + 1] = digits[byte & 15];
    }
    out[64] = '\0';
}

//  The canonical text the event id hashes: the kind, then every field that
//  makes the event what it is, '|'-separated, strings length-prefixed so
//  that no choice of ids can make two events collide:
//    watch|3:u42|4:v100|1714564800000000|120|3600|3:web
//    rating|3:u42|4:v100|1714564800000000|4.5
//    watchlist_add|3:u42|4:v100|1714564800000000
//  Changing it changes every id: stored rows would no longer dedupe
//  replays of themselves. Appended as is (unescaped) to buf, which must
//  have room for S_CANON_MAX bytes.
#define S_CANON_MAX ((size_t)512) //  bounded fields: at most ~320 bytes
static void s_put_canonical(s_buf_t *buf, const event_t *ev, const char *kind)
{
    char text[64];
    size_t user_len = s_field_len(ev->user_id, sizeof ev->user_id);
    size_t video_len = s_field_len(ev->video_id, sizeof ev->video_id);
    s_putf(buf, "%s|%zu:", kind, user_len);
    s_put(buf, ev->user_id, user_len);
    s_putf(buf, "|%zu:", video_len);
    s_put(buf, ev->video_id, video_len);
    s_putf(buf, "|%lld", (long long)ev->occurred_us);
    switch (ev->kind) {
    case EVENT_WATCH: {
        size_t device_len = s_field_len(ev->device, sizeof ev->device);
        s_putf(buf, "|%lld|%lld|%zu:", (long long)ev->watched_duration,
               (long long)ev->total_duration, device_len);
        s_put(buf, ev->device, device_len);
        break;
    }
    case EVENT_RATING:
        s_format_double(text, sizeof text, ev->rating);
        s_putf(buf, "|%s", text);
        break;
    case EVENT_WATCHLIST_ADD:
    case EVENT_WATCHLIST_REMOVE:
        break;
    }
}

//  Appends the event id: the hex SHA-256 of the canonical text.
static void s_put_event_id(s_buf_t *buf, const event_t *ev, const char *kind)
{
    char canon[S_CANON_MAX];
    s_buf_t text = {canon, 0, sizeof canon};
    s_put_canonical(&text, ev, kind);
    char hex[65];
    s_sha256_hex(canon, text.len, hex);
    s_put(buf, hex, 64);
}

//  One row of recsd_ingest_batch, in the table's column order.
static void s_put_row(s_buf_t *buf, const event_t *ev, const event_rules_t *rules)
{
    const char *kind = event_kind_name(ev->kind);
    char text[64];
    s_put_event_id(buf, ev, kind);
    s_putc(buf, '\t');
    s_put_escaped(buf, ev->user_id, s_field_len(ev->user_id, sizeof ev->user_id));
    s_putc(buf, '\t');
    s_put_escaped(buf, ev->video_id, s_field_len(ev->video_id, sizeof ev->video_id));
    s_putf(buf, "\t%s\t%.9g\t", kind, event_weight(ev, rules));
    if (ev->kind == EVENT_RATING) {
        s_format_double(text, sizeof text, ev->rating);
        s_putf(buf, "%s", text);
    } else {
        s_put(buf, "\\N", 2);
    }
    if (ev->kind == EVENT_WATCH) {
        size_t device_len = s_field_len(ev->device, sizeof ev->device);
        s_putf(buf, "\t%lld\t%lld\t", (long long)ev->watched_duration,
               (long long)ev->total_duration);
        if (device_len > 0)
            s_put_escaped(buf, ev->device, device_len);
        else
            s_put(buf, "\\N", 2); //  no device: NULL, not ""
    } else {
        s_put(buf, "\t\\N\t\\N\t\\N", 9);
    }
    s_format_time(text, sizeof text, ev->occurred_us);
    s_putf(buf, "\t%s\n", text);
}

//  COPYs the events into the temp table, counting them per kind into
//  kinds. Returns 0, or -1 with the reason; the connection is out of COPY
//  mode either way.
static int s_copy(PGconn *conn, const event_t *events, size_t count, const event_rules_t *rules,
                  size_t kinds[STORE_KINDS], char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, s_copy_sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        s_pg_error(conn, res, "COPY", err, errlen);
        PQclear(res);
        return -1;
    }
    PQclear(res);

    s_buf_t buf = {malloc(S_COPY_FLUSH + S_ROW_MAX), 0, S_COPY_FLUSH + S_ROW_MAX};
    if (!buf.data) {
        s_error(err, errlen, "COPY: out of memory");
        goto abort;
    }
    for (size_t i = 0; i < count; i++) {
        kinds[events[i].kind]++; //  checked to be a known kind by the caller
        s_put_row(&buf, &events[i], rules);
        if (buf.len >= S_COPY_FLUSH || i + 1 == count) {
            if (PQputCopyData(conn, buf.data, (int)buf.len) != 1) {
                s_pg_error(conn, NULL, "COPY", err, errlen);
                goto abort;
            }
            buf.len = 0;
        }
    }
    free(buf.data);
    buf.data = NULL;
    if (PQputCopyEnd(conn, NULL) != 1) {
        s_pg_error(conn, NULL, "COPY", err, errlen);
        return -1;
    }
    int rc = 0;
    while ((res = PQgetResult(conn)) != NULL) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = s_pg_error(conn, res, "COPY", err, errlen);
        }
        bool stuck = PQresultStatus(res) == PGRES_COPY_IN;
        PQclear(res);
        if (stuck)
            break; //  cannot happen after PQputCopyEnd; never loop on it
    }
    return rc;

abort:
    free(buf.data);
    //  Tells the server to fail the COPY; the error result is drained by
    //  pg_conn_rollback.
    if (PQputCopyEnd(conn, "recsd: COPY aborted by the client") == 1) {
        while ((res = PQgetResult(conn)) != NULL)
            PQclear(res);
    }
    return -1;
}

//  ---------------------------------------------------------------------
//  Dead letters

//  Standard base64 (RFC 4648, padded) of len bytes. Returns a string the
//  caller frees, or NULL if out of memory.
static char *s_base64(const unsigned char *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        if (i + 1 < len)
            *o++ = alphabet[v >> 6 & 63];
        else
            *o++ = '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

//  A JSON string for text that is supposed to be UTF-8 but comes from the
//  caller (reasons, topics): bytes that are not UTF-8 become '?', as
//  jsonb would refuse them and fail the whole batch. NULL if out of memory.
static json_t *s_json_text(const char *text)
{
    if (!text)
        text = "";
    json_t *value = json_string(text);
    if (value)
        return value;
    char *copy = strdup(text);
    if (!copy)
        return NULL;
    for (char *c = copy; *c; c++) {
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    }
    value = json_string(copy);
    free(copy);
    return value;
}

//  {"key": ..., "payload": {...}, "headers": {...}} for one dead letter,
//  or NULL if out of memory.
static json_t *s_dead_json(const dead_letter_t *dl)
{
    const char *topic = dl->topic ? dl->topic : "";
    const unsigned char *bytes = dl->payload ? dl->payload : (const unsigned char *)"";
    size_t len = dl->payload ? dl->len : 0;

    //  The original as text only if jsonb can hold it: valid UTF-8
    //  (json_stringn checks) and no NUL (jsonb refuses \u0000).
    json_t *original = NULL;
    if (!memchr(bytes, '\0', len))
        original = json_stringn((const char *)bytes, len);
    if (!original)
        original = json_null();
    char *base64 = s_base64(bytes, len);
    json_t *out = NULL;
    if (base64) {
        out = json_pack("{s:o, s:{s:o, s:{s:o, s:o, s:o}, s:o, s:s}, s:{s:o}}", "key",
                        *topic ? s_json_text(topic) : json_null(), "payload", "reason",
                        s_json_text(dl->reason), "source", "topic", s_json_text(topic), "partition",
                        dl->partition >= 0 ? json_integer(dl->partition) : json_null(), "offset",
                        dl->offset >= 0 ? json_integer(dl->offset) : json_null(), "original",
                        original, "original_base64", base64, "headers", "reason",
                        s_json_text(dl->reason));
        original = NULL; //  json_pack's "o" took it, even on failure
    }
    json_decref(original);
    free(base64);
    return out;
}

//  Inserts dead letters [0, count) in groups of bounded size. Returns 0,
//  or -1 with the reason.
static int s_insert_dead(PGconn *conn, const dead_letter_t *dead, size_t count, const char *topic,
                         char *err, size_t errlen)
{
    size_t i = 0;
    while (i < count) {
        json_t *array = json_array();
        if (!array)
            return s_error(err, errlen, "dead letters: out of memory");
        size_t bytes = 0;
        for (; i < count && (bytes == 0 || bytes + dead[i].len <= S_DEAD_GROUP_BYTES); i++) {
            json_t *item = s_dead_json(&dead[i]);
            if (!item || json_array_append_new(array, item) != 0) {
                json_decref(array);
                return s_error(err, errlen, "dead letters: out of memory");
            }
            bytes += dead[i].len + 1;
        }
        char *json = json_dumps(array, JSON_COMPACT);
        json_decref(array);
        if (!json)
            return s_error(err, errlen, "dead letters: out of memory");
        const char *params[2] = {topic, json};
        PGresult *res = PQexecParams(conn, s_insert_dead_sql, 2, NULL, params, NULL, NULL, 0);
        free(json);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            s_pg_error(conn, res, "insert dead letters", err, errlen);
            PQclear(res);
            return -1;
        }
        PQclear(res);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Catalogue changes

//  Orders changes by video_id (bytes, like COLLATE "C": every writer locks
//  rows in the same order), the newest first within a video, then by
//  position in the batch (the first of equal versions wins, as the stored
//  one would against a later equal one).
static int s_by_video_newest(const void *a, const void *b, void *arg)
{
    const event_video_t *videos = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int by_id = strncmp(videos[i].video_id, videos[j].video_id, sizeof videos[i].video_id);
    if (by_id)
        return by_id;
    if (videos[i].updated_us != videos[j].updated_us)
        return videos[i].updated_us > videos[j].updated_us ? -1 : 1;
    return (i > j) - (i < j);
}

//  A JSON array of strings from count rows of a fixed-size array. NULL if
//  out of memory.
static json_t *s_text_list(const char *rows, size_t stride, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < count; i++) {
        char text[EVENT_TAG_MAX + EVENT_GENRE_MAX + 2]; //  longer than any row
        snprintf(text, sizeof text, "%.*s", (int)strnlen(rows + i * stride, stride - 1),
                 rows + i * stride);
        //  Not UTF-8 (not from event_parse_video): '?'s, as for dead letters.
        json_t *item = s_json_text(text);
        if (!item || json_array_append_new(array, item) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

//  {"id", "title", "genres", "tags", "duration", "published", "retired",
//  "updated"} for one change, or NULL if out of memory.
static json_t *s_video_json(const event_video_t *v)
{
    char published[64], updated[64];
    s_format_time(updated, sizeof updated, v->updated_us);
    if (v->has_published)
        s_format_time(published, sizeof published, v->published_us);
    size_t genres = v->genre_count < EVENT_GENRES_MAX ? v->genre_count : EVENT_GENRES_MAX;
    size_t tags = v->tag_count < EVENT_TAGS_MAX ? v->tag_count : EVENT_TAGS_MAX;
    char id[EVENT_ID_MAX + 1], title[EVENT_TITLE_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)s_field_len(v->video_id, sizeof v->video_id), v->video_id);
    snprintf(title, sizeof title, "%.*s", (int)s_field_len(v->title, sizeof v->title), v->title);
    //  "o" takes its reference even when json_pack fails.
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o, s:b, s:s}", "id", s_json_text(id), "title",
                     s_json_text(title), "genres",
                     s_text_list(v->genres[0], sizeof v->genres[0], genres), "tags",
                     s_text_list(v->tags[0], sizeof v->tags[0], tags), "duration",
                     (json_int_t)v->duration_s, "published",
                     v->has_published ? json_string(published) : json_null(), "retired",
                     v->retired ? 1 : 0, "updated", updated);
}

//  Upserts the changes (see the header). Returns 0 with the rows inserted
//  or replaced in *applied, or -1 with the reason.
static int s_upsert_videos(PGconn *conn, const event_video_t *videos, size_t count, size_t *applied,
                           char *err, size_t errlen)
{
    *applied = 0;
    size_t *order = malloc(count * sizeof *order);
    if (!order)
        return s_error(err, errlen, "videos: out of memory");
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    qsort_r(order, count, sizeof *order, s_by_video_newest, (void *)videos);
    int rc = 0;
    size_t i = 0;
    while (rc == 0 && i < count) {
        json_t *array = json_array();
        if (!array) {
            rc = s_error(err, errlen, "videos: out of memory");
            break;
        }
        for (size_t n = 0; rc == 0 && i < count && n < S_VIDEO_GROUP; i++) {
            //  An older (or equal) change of the video just taken: stale.
            if (i > 0 && strncmp(videos[order[i]].video_id, videos[order[i - 1]].video_id,
                                 sizeof videos[0].video_id) == 0)
                continue;
            json_t *item = s_video_json(&videos[order[i]]);
            if (!item || json_array_append_new(array, item) != 0)
                rc = s_error(err, errlen, "videos: out of memory");
            n++;
        }
        char *json = rc == 0 ? json_dumps(array, JSON_COMPACT) : NULL;
        json_decref(array);
        if (rc != 0)
            break;
        if (!json) {
            rc = s_error(err, errlen, "videos: out of memory");
            break;
        }
        const char *params[1] = {json};
        PGresult *res = PQexecParams(conn, s_upsert_videos_sql, 1, NULL, params, NULL, NULL, 0);
        free(json);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = s_pg_error(conn, res, "upsert videos", err, errlen);
        else
            *applied += (size_t)strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    free(order);
    return rc;
}

//  ---------------------------------------------------------------------

int interaction_store_write(PGconn *conn, const event_t *events, size_t count,
                            const dead_letter_t *dead, size_t dead_count,
                            const event_rules_t *rules, const char *dead_letter_topic,
                            store_result_t *result, char *err, size_t errlen)
{
    store_batch_t batch = {
        .events = events, .count = count, .dead = dead, .dead_count = dead_count};
    return interaction_store_write_batch(conn, &batch, rules, dead_letter_topic, result, err,
                                         errlen);
}

//  The batch's watches as experiment outcomes (see store_batch_t).
static int s_attribute(PGconn *conn, const event_t *events, size_t count, int window_s,
                       size_t *attributed, char *err, size_t errlen)
{
    experiment_watch_t *watches = calloc(count, sizeof *watches);
    if (!watches)
        return s_error(err, errlen, "attribute watches: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const event_t *e = &events[i];
        if (e->kind != EVENT_WATCH)
            continue;
        watches[n++] = (experiment_watch_t){
            .user_id = e->user_id,
            .video_id = e->video_id,
            .watched_us = e->occurred_us,
            .completion = e->total_duration > 0
                              ? (double)e->watched_duration / (double)e->total_duration
                              : -1.0,
            .watched_s = e->watched_duration <= INT32_MAX ? (int)e->watched_duration : -1};
    }
    long done = 0;
    int rc = n ? experiment_store_attribute_watches(conn, watches, n, window_s, &done, err, errlen)
               : EXPERIMENT_STORE_OK;
    free(watches);
    if (rc != EXPERIMENT_STORE_OK)
        return -1;
    *attributed = (size_t)done;
    return 0;
}

int interaction_store_write_batch(PGconn *conn, const store_batch_t *batch,
                                  const event_rules_t *rules, const char *dead_letter_topic,
                                  store_result_t *result, char *err, size_t errlen)
{
    store_result_t out;
    memset(&out, 0, sizeof out);
    event_rules_t defaults = event_rules_default();
    if (!rules)
        rules = &defaults;
    if (result)
        *result = out;
    if (!batch || (batch->count > 0 && !batch->events) ||
        (batch->video_count > 0 && !batch->videos) || (batch->dead_count > 0 && !batch->dead))
        return s_error(err, errlen, "interaction store: NULL batch");
    const event_t *events = batch->events;
    size_t count = batch->count, video_count = batch->video_count, dead_count = batch->dead_count;
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return s_error(err, errlen, "interaction store: not connected%s%s", conn ? ": " : "",
                       conn ? PQerrorMessage(conn) : "");
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return s_error(err, errlen, "interaction store: the connection is inside a transaction");
    if (dead_count > 0 && (!dead_letter_topic || !*dead_letter_topic))
        return s_error(err, errlen, "interaction store: no dead-letter topic");
    for (size_t i = 0; i < count; i++) {
        if (!event_kind_name(events[i].kind) || (int)events[i].kind >= STORE_KINDS)
            return s_error(err, errlen, "interaction store: event %zu has an unknown kind %d", i,
                           (int)events[i].kind);
    }
    if (count == 0 && video_count == 0 && dead_count == 0)
        return 0;

    if (count > 0) {
        size_t kinds[STORE_KINDS] = {0};
        if (s_exec(conn, s_setup_sql, "BEGIN", NULL, err, errlen) != 0 ||
            s_copy(conn, events, count, rules, kinds, err, errlen) != 0 ||
            s_insert_interactions(conn, kinds, &out, err, errlen) != 0 ||
            s_exec(conn, s_insert_users_sql, "insert users", NULL, err, errlen) != 0)
            goto err;
        out.duplicates = count - out.inserted;
        for (int k = 0; k < STORE_KINDS; k++)
            out.duplicates_by_kind[k] = kinds[k] - out.inserted_by_kind[k];
    } else if (s_exec(conn, "BEGIN", "BEGIN", NULL, err, errlen) != 0) {
        goto err;
    }
    if (count > 0 && batch->attribution_window_s > 0 &&
        s_attribute(conn, events, count, batch->attribution_window_s, &out.conversions, err,
                    errlen) != 0)
        goto err;
    if (video_count > 0) {
        if (s_upsert_videos(conn, batch->videos, video_count, &out.videos_applied, err, errlen) !=
            0)
            goto err;
        out.videos_stale = video_count - out.videos_applied;
    }
    if (dead_count > 0) {
        if (s_insert_dead(conn, batch->dead, dead_count, dead_letter_topic, err, errlen) != 0)
            goto err;
        out.dead_lettered = dead_count;
    }
    PGresult *res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        //  A COMMIT of a failed transaction answers "ROLLBACK", not an error.
        if (PQresultStatus(res) == PGRES_COMMAND_OK)
            s_error(err, errlen, "COMMIT: the server rolled the transaction back");
        else
            s_pg_error(conn, res, "COMMIT", err, errlen);
        PQclear(res);
        goto err;
    }
    PQclear(res);
    if (result)
        *result = out;
    return 0;

err:
    pg_conn_rollback(conn);
    return -1;
}
