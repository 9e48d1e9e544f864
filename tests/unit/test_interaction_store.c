/*  test_interaction_store.c: batched idempotent writes (interaction_store.c)
    on a real PostgreSQL: exact rows, replays, dead letters, COPY escaping,
    failures that must leave nothing behind.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "interaction_store.h"
#include "leak_check.h"
#include "pg_conn.h"
#include "pg_test_db.h"

#define TS_US (INT64_C(1714564800) * 1000000) //  2024-05-01T12:00:00Z
#define DLQ "recommendation-service.dead-letter"

static pg_test_db_t *s_db;

static void s_setup(void)
{
    char err[512];
    s_db = pg_test_db_new_migrated(err, sizeof err);
    cr_assert(s_db, "%s", err);
}

static void s_teardown(void)
{
    pg_test_db_destroy(&s_db);
    leak_check_fini();
}

TestSuite(interaction_store, .init = s_setup, .fini = s_teardown, .timeout = 120);

static event_t s_watch(const char *user, const char *video, int64_t us, int64_t watched,
                       int64_t total, const char *device)
{
    event_t ev = {.kind = EVENT_WATCH,
                  .occurred_us = us,
                  .watched_duration = watched,
                  .total_duration = total};
    snprintf(ev.user_id, sizeof ev.user_id, "%s", user);
    snprintf(ev.video_id, sizeof ev.video_id, "%s", video);
    snprintf(ev.device, sizeof ev.device, "%s", device);
    return ev;
}

static event_t s_rating(const char *user, const char *video, int64_t us, double rating)
{
    event_t ev = {.kind = EVENT_RATING, .occurred_us = us, .rating = rating};
    snprintf(ev.user_id, sizeof ev.user_id, "%s", user);
    snprintf(ev.video_id, sizeof ev.video_id, "%s", video);
    return ev;
}

static event_t s_watchlist(const char *user, const char *video, int64_t us, bool add)
{
    event_t ev = {.kind = add ? EVENT_WATCHLIST_ADD : EVENT_WATCHLIST_REMOVE, .occurred_us = us};
    snprintf(ev.user_id, sizeof ev.user_id, "%s", user);
    snprintf(ev.video_id, sizeof ev.video_id, "%s", video);
    return ev;
}

//  Writes and asserts success; returns the result.
static store_result_t s_write(PGconn *conn, const event_t *events, size_t count,
                              const dead_letter_t *dead, size_t dead_count)
{
    store_result_t result;
    char err[512] = "";
    event_rules_t rules = event_rules_default();
    int rc = interaction_store_write(conn, events, count, dead, dead_count, &rules, DLQ, &result,
                                     err, sizeof err);
    cr_assert_eq(rc, 0, "write failed: %s", err);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    return result;
}

//  Writes and asserts failure; returns the reason.
static void s_write_fails(PGconn *conn, const event_t *events, size_t count,
                          const dead_letter_t *dead, size_t dead_count, char *err, size_t errlen)
{
    store_result_t result;
    memset(&result, 99, sizeof result);
    event_rules_t rules = event_rules_default();
    err[0] = '\0';
    int rc = interaction_store_write(conn, events, count, dead, dead_count, &rules, DLQ, &result,
                                     err, errlen);
    cr_assert_eq(rc, -1, "write succeeded");
    cr_assert(err[0], "no reason");
    cr_assert_null(strchr(err, '\n'), "reason not one line: %s", err);
    cr_assert_eq(result.inserted + result.duplicates + result.dead_lettered +
                     result.videos_applied + result.videos_stale,
                 0);
    for (int k = 0; k < STORE_KINDS; k++)
        cr_assert_eq(result.inserted_by_kind[k] + result.duplicates_by_kind[k], 0);
}

static long s_count(PGconn *conn, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return pg_test_scalar(conn, sql);
}

static void s_hex(const void *data, size_t len, char *out)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * len] = '\0';
}

//  The SHA-256 of `canonical` as the server computes it, hex.
static void s_expected_id(PGconn *conn, const char *canonical, char *id, size_t len)
{
    char hex[1024], sql[1200];
    s_hex(canonical, strlen(canonical), hex);
    snprintf(sql, sizeof sql, "SELECT encode(sha256(decode('%s', 'hex')), 'hex')", hex);
    pg_test_text(conn, sql, id, len);
}

//  One interaction as text, every column but the serial id and ingested_at.
static const char *s_row(PGconn *conn, const char *video_id, char *buf, size_t len)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT concat_ws(',', user_id, kind, weight, coalesce(rating::text, 'N'),"
             " coalesce(watched_duration_s::text, 'N'), coalesce(total_duration_s::text, 'N'),"
             " coalesce(device, 'N'), (extract(epoch FROM occurred_at) * 1000000)::bigint)"
             " FROM features.interactions WHERE video_id = '%s'",
             video_id);
    return pg_test_text(conn, sql, buf, len);
}

Test(interaction_store, batch_lands_with_exact_values)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t events[] = {
        s_watch("u1", "v1", TS_US + 123456, 30, 120, "tv"),
        s_rating("u1", "v2", TS_US - 1000000, 4.5),
        s_watchlist("u2", "v3", TS_US, true),
        s_watchlist("u2", "v4", TS_US, false),
        s_watch("u3", "v5", TS_US, 500, 100, ""),
    };
    store_result_t r = s_write(conn, events, 5, NULL, 0);
    cr_assert_eq(r.inserted, 5);
    cr_assert_eq(r.duplicates, 0);
    cr_assert_eq(r.dead_lettered, 0);

    char buf[512];
    cr_assert_str_eq(s_row(conn, "v1", buf, sizeof buf),
                     "u1,watch,0.25,N,30,120,tv,1714564800123456");
    cr_assert_str_eq(s_row(conn, "v2", buf, sizeof buf),
                     "u1,rating,0.9,4.5,N,N,N,1714564799000000");
    cr_assert_str_eq(s_row(conn, "v3", buf, sizeof buf),
                     "u2,watchlist_add,1,N,N,N,N,1714564800000000");
    cr_assert_str_eq(s_row(conn, "v4", buf, sizeof buf),
                     "u2,watchlist_remove,0,N,N,N,N,1714564800000000");
    //  Replays clip to 1; no device is NULL.
    cr_assert_str_eq(s_row(conn, "v5", buf, sizeof buf), "u3,watch,1,N,500,100,N,1714564800000000");

    //  event_id is the documented canonical text's SHA-256.
    char want[128], got[128];
    s_expected_id(conn, "watch|2:u1|2:v1|1714564800123456|30|120|2:tv", want, sizeof want);
    pg_test_text(conn, "SELECT event_id FROM features.interactions WHERE video_id = 'v1'", got,
                 sizeof got);
    cr_assert_str_eq(got, want);
    s_expected_id(conn, "rating|2:u1|2:v2|1714564799000000|4.5", want, sizeof want);
    pg_test_text(conn, "SELECT event_id FROM features.interactions WHERE video_id = 'v2'", got,
                 sizeof got);
    cr_assert_str_eq(got, want);
    s_expected_id(conn, "watchlist_add|2:u2|2:v3|1714564800000000", want, sizeof want);
    pg_test_text(conn, "SELECT event_id FROM features.interactions WHERE video_id = 'v3'", got,
                 sizeof got);
    cr_assert_str_eq(got, want);
    s_expected_id(conn, "watch|2:u3|2:v5|1714564800000000|500|100|0:", want, sizeof want);
    pg_test_text(conn, "SELECT event_id FROM features.interactions WHERE video_id = 'v5'", got,
                 sizeof got);
    cr_assert_str_eq(got, want);

    //  Users, created at their earliest event.
    cr_assert_eq(s_count(conn, "features.users"), 3);
    cr_assert_eq(pg_test_scalar(conn, "SELECT (extract(epoch FROM created_at))::bigint"
                                      " FROM features.users WHERE user_id = 'u1'"),
                 1714564799);
    cr_assert_eq(s_count(conn, "public.outbox"), 0);
    PQfinish(conn);
}

Test(interaction_store, same_batch_twice_counts_duplicates)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t events[] = {s_watch("u1", "v1", TS_US, 30, 120, "tv"), s_rating("u1", "v2", TS_US, 3),
                        s_watchlist("u2", "v3", TS_US, true)};
    store_result_t r = s_write(conn, events, 3, NULL, 0);
    cr_assert_eq(r.inserted, 3);
    r = s_write(conn, events, 3, NULL, 0);
    cr_assert_eq(r.inserted, 0);
    cr_assert_eq(r.duplicates, 3);
    cr_assert_eq(s_count(conn, "features.interactions"), 3);
    cr_assert_eq(s_count(conn, "features.users"), 2);
    //  From another connection too (the id does not depend on the session).
    PGconn *other = pg_test_db_connect(s_db);
    r = s_write(other, events, 3, NULL, 0);
    cr_assert_eq(r.duplicates, 3);
    //  The temp table is per session and emptied at commit.
    cr_assert_eq(s_count(conn, "recsd_ingest_batch"), 0);
    PQfinish(other);
    PQfinish(conn);
}

Test(interaction_store, intra_batch_duplicate_is_one_row)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t a = s_watch("u1", "v1", TS_US, 30, 120, "tv");
    event_t events[] = {a, s_rating("u1", "v2", TS_US, 3), a, a};
    store_result_t r = s_write(conn, events, 4, NULL, 0);
    cr_assert_eq(r.inserted, 2);
    cr_assert_eq(r.duplicates, 2);
    cr_assert_eq(s_count(conn, "features.interactions"), 2);
    PQfinish(conn);
}

Test(interaction_store, different_events_are_different_rows)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t events[] = {
        s_watch("u1", "v1", TS_US, 30, 120, "tv"),
        s_watch("u1", "v1", TS_US, 31, 120, "tv"),     //  another duration
        s_watch("u1", "v1", TS_US, 30, 120, "web"),    //  another device
        s_watch("u1", "v1", TS_US + 1, 30, 120, "tv"), //  a microsecond later
        s_rating("u1", "v1", TS_US, 3),
        s_rating("u1", "v1", TS_US, 3.5),
        s_watchlist("u1", "v1", TS_US, true),
        s_watchlist("u1", "v1", TS_US, false),
        //  Ids that a plain '|' join would confuse: "a|b" + "c" vs "a" + "b|c".
        s_watchlist("a|b", "c", TS_US, true),
        s_watchlist("a", "b|c", TS_US, true),
    };
    store_result_t r = s_write(conn, events, 10, NULL, 0);
    cr_assert_eq(r.inserted, 10);
    cr_assert_eq(r.duplicates, 0);
    PQfinish(conn);
}

Test(interaction_store, copy_special_characters_survive)
{
    PGconn *conn = pg_test_db_connect(s_db);
    const char *user = "u\t1\\N\n\r\\";
    const char *video = "\\.\nv|1";
    const char *device = "a\tb\\c\nd\re";
    event_t events[] = {s_watch(user, video, TS_US, 1, 2, device),
                        s_watch("\\N", "\\", TS_US, 1, 2, "\\N")};
    cr_assert_eq(s_write(conn, events, 2, NULL, 0).inserted, 2);
    char want[512], got[512];
    s_hex(user, strlen(user), want);
    pg_test_text(conn,
                 "SELECT encode(convert_to(user_id, 'UTF8'), 'hex') FROM features.interactions"
                 " WHERE device LIKE 'a%'",
                 got, sizeof got);
    cr_assert_str_eq(got, want);
    s_hex(video, strlen(video), want);
    pg_test_text(conn,
                 "SELECT encode(convert_to(video_id, 'UTF8'), 'hex') FROM features.interactions"
                 " WHERE device LIKE 'a%'",
                 got, sizeof got);
    cr_assert_str_eq(got, want);
    s_hex(device, strlen(device), want);
    pg_test_text(conn,
                 "SELECT encode(convert_to(device, 'UTF8'), 'hex') FROM features.interactions"
                 " WHERE device LIKE 'a%'",
                 got, sizeof got);
    cr_assert_str_eq(got, want);
    //  "\N" as data is a string, not NULL.
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.interactions"
                                      " WHERE user_id = '\\N' AND video_id = '\\'"
                                      " AND device = '\\N'"),
                 1);
    //  The id hashes the raw bytes.
    char canonical[256], id[128];
    snprintf(canonical, sizeof canonical, "watch|%zu:%s|%zu:%s|1714564800000000|1|2|%zu:%s",
             strlen(user), user, strlen(video), video, strlen(device), device);
    s_expected_id(conn, canonical, want, sizeof want);
    pg_test_text(conn, "SELECT event_id FROM features.interactions WHERE device LIKE 'a%'", id,
                 sizeof id);
    cr_assert_str_eq(id, want);
    cr_assert_eq(pg_test_scalar(conn, "SELECT count(*) FROM features.users"), 2);
    //  Replayed: still deduplicated.
    cr_assert_eq(s_write(conn, events, 2, NULL, 0).duplicates, 2);
    PQfinish(conn);
}

Test(interaction_store, dead_letters_land_in_outbox)
{
    PGconn *conn = pg_test_db_connect(s_db);
    static const char binary[] = "\xff\xfe\x00"
                                 "abc\x80";
    static const char with_nul[] = "{\"a\":\0\"b\"}";
    dead_letter_t dead[] = {
        {"analytics-service.video-watched", 3, 42, "{\"user_id\":1}", 13,
         "user_id: must be a string, not an integer"},
        {"", -1, 7, binary, sizeof binary - 1, "payload: invalid JSON at byte 0: x"},
        {"profile-service.video-rated", 0, 0, with_nul, sizeof with_nul - 1, "payload: nul"},
        {"profile-service.video-rated", 1, 9, "", 0, "payload: empty"},
        {"t", 2, 5, "caf\xc3\xa9 \"q\" \\ \n", 13, "reason with bad bytes \xff\xfe"},
    };
    event_t events[] = {s_rating("u1", "v1", TS_US, 4)};
    store_result_t r = s_write(conn, events, 1, dead, 5);
    cr_assert_eq(r.inserted, 1);
    cr_assert_eq(r.dead_lettered, 5);
    cr_assert_eq(s_count(conn, "public.outbox"), 5);
    char buf[1024];

    //  In batch order, on the dead-letter topic, keyed by source topic.
    pg_test_text(conn,
                 "SELECT string_agg(topic || '/' || coalesce(key, 'NULL'), ' ' ORDER BY id)"
                 " FROM public.outbox",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, DLQ "/analytics-service.video-watched " DLQ "/NULL " DLQ
                              "/profile-service.video-rated " DLQ
                              "/profile-service.video-rated " DLQ "/t");
    //  A valid UTF-8 original as text and base64.
    pg_test_text(
        conn,
        "SELECT concat_ws('|', payload->>'reason', payload->'source', payload->>'original',"
        " convert_from(decode(payload->>'original_base64', 'base64'), 'UTF8'),"
        " headers->>'reason', published_at IS NULL)"
        " FROM public.outbox ORDER BY id LIMIT 1",
        buf, sizeof buf);
    cr_assert_str_eq(buf, "user_id: must be a string, not an integer|"
                          "{\"topic\": \"analytics-service.video-watched\", \"offset\": 42,"
                          " \"partition\": 3}|{\"user_id\":1}|{\"user_id\":1}|"
                          "user_id: must be a string, not an integer|t");
    //  Not UTF-8: no text, the exact bytes in base64; partition -1 is null.
    pg_test_text(conn,
                 "SELECT concat_ws('|', payload->'original', payload->>'original_base64',"
                 " encode(decode(payload->>'original_base64', 'base64'), 'hex'), payload->'source')"
                 " FROM public.outbox ORDER BY id OFFSET 1 LIMIT 1",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "null|//4AYWJjgA==|fffe0061626380|"
                          "{\"topic\": \"\", \"offset\": 7, \"partition\": null}");
    //  UTF-8 with a NUL: jsonb cannot hold it as text, base64 keeps it.
    pg_test_text(conn,
                 "SELECT concat_ws('|', payload->'original',"
                 " encode(decode(payload->>'original_base64', 'base64'), 'hex'))"
                 " FROM public.outbox ORDER BY id OFFSET 2 LIMIT 1",
                 buf, sizeof buf);
    char hex[64];
    s_hex(with_nul, sizeof with_nul - 1, hex);
    char want[128];
    snprintf(want, sizeof want, "null|%s", hex);
    cr_assert_str_eq(buf, want);
    //  Empty payload.
    pg_test_text(conn,
                 "SELECT concat_ws('|', payload->>'original', payload->>'original_base64')"
                 " FROM public.outbox ORDER BY id OFFSET 3 LIMIT 1",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "|");
    //  Quotes, backslashes, newlines and non-ASCII text round-trip; a
    //  reason that is not UTF-8 is repaired rather than failing the batch.
    pg_test_text(conn,
                 "SELECT concat_ws('|', payload->>'original' = convert_from(decode("
                 "'636166c3a920227122205c200a', 'hex'), 'UTF8'), payload->>'reason',"
                 " headers->>'reason') FROM public.outbox ORDER BY id OFFSET 4 LIMIT 1",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "t|reason with bad bytes ??|reason with bad bytes ??");

    //  Dead letters alone, without events.
    r = s_write(conn, NULL, 0, dead, 1);
    cr_assert_eq(r.dead_lettered, 1);
    cr_assert_eq(r.inserted, 0);
    cr_assert_eq(s_count(conn, "public.outbox"), 6);
    PQfinish(conn);
}

Test(interaction_store, large_dead_letters_are_grouped)
{
    PGconn *conn = pg_test_db_connect(s_db);
    size_t len = (size_t)3 * 1024 * 1024;
    char *big = malloc(len);
    memset(big, 'x', len);
    dead_letter_t dead[3];
    for (int i = 0; i < 3; i++)
        dead[i] = (dead_letter_t){"t", 0, i, big, len - (size_t)i, "payload: too big"};
    cr_assert_eq(s_write(conn, NULL, 0, dead, 3).dead_lettered, 3);
    char buf[128];
    pg_test_text(conn,
                 "SELECT string_agg(length(payload->>'original')::text || ':' ||"
                 " (payload->'source'->>'offset'), ',' ORDER BY id) FROM public.outbox",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "3145728:0,3145727:1,3145726:2");
    free(big);
    PQfinish(conn);
}

//  A value the server refuses (a CHECK on the table, or a COPY conversion)
//  fails the whole batch: nothing of it is written, and the same
//  connection works for the next one.
Test(interaction_store, server_rejection_writes_nothing)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t good[] = {s_watch("u1", "v1", TS_US, 30, 120, "tv"), s_rating("u2", "v2", TS_US, 4)};
    event_t bad_check[] = {good[0], s_watch("u3", "v3", TS_US, -5, 120, "tv"), good[1]};
    event_t bad_copy[] = {good[0], s_watch("u3", "v3", TS_US, 3000000000LL, 120, "tv"), good[1]};
    dead_letter_t dead[] = {{"t", 0, 1, "x", 1, "payload: invalid JSON"}};
    char err[512];

    s_write_fails(conn, bad_check, 3, dead, 1, err, sizeof err);
    cr_assert(strstr(err, "check constraint") && strstr(err, "23514"), "%s", err);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    cr_assert_eq(s_count(conn, "features.interactions"), 0);
    cr_assert_eq(s_count(conn, "features.users"), 0);
    cr_assert_eq(s_count(conn, "public.outbox"), 0);

    s_write_fails(conn, bad_copy, 3, dead, 1, err, sizeof err);
    cr_assert(strstr(err, "COPY") && strstr(err, "out of range"), "%s", err);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    cr_assert_eq(s_count(conn, "features.interactions"), 0);
    cr_assert_eq(s_count(conn, "public.outbox"), 0);

    store_result_t r = s_write(conn, good, 2, dead, 1);
    cr_assert_eq(r.inserted, 2);
    cr_assert_eq(r.dead_lettered, 1);
    cr_assert_eq(s_count(conn, "features.users"), 2);
    PQfinish(conn);
}

Test(interaction_store, killed_backend_writes_nothing_and_retry_succeeds)
{
    PGconn *conn = pg_test_db_connect(s_db);
    PGconn *admin = pg_test_db_connect(s_db);
    event_t events[] = {s_watch("u1", "v1", TS_US, 30, 120, "tv"), s_rating("u2", "v2", TS_US, 4)};
    dead_letter_t dead[] = {{"t", 0, 1, "x", 1, "payload: invalid JSON"}};
    //  The connection works, then its server process goes away.
    cr_assert_eq(s_write(conn, events, 1, NULL, 0).inserted, 1);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(conn));
    pg_test_exec(admin, sql);
    //  Wait until it is gone, so the call below is what notices.
    for (int i = 0; i < 200; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d",
                 PQbackendPID(conn));
        if (pg_test_scalar(admin, sql) == 0)
            break;
        usleep(10000);
    }
    char err[512];
    s_write_fails(conn, events, 2, dead, 1, err, sizeof err);
    cr_assert_eq(PQstatus(conn), CONNECTION_BAD, "%s", err);
    //  Nothing of the failed batch, the first write intact.
    cr_assert_eq(s_count(admin, "features.interactions"), 1);
    cr_assert_eq(s_count(admin, "public.outbox"), 0);
    //  On a bad connection the call fails at once.
    s_write_fails(conn, events, 2, dead, 1, err, sizeof err);
    cr_assert(strstr(err, "not connected"), "%s", err);
    PQfinish(conn);

    PGconn *fresh = pg_test_db_connect(s_db);
    store_result_t r = s_write(fresh, events, 2, dead, 1);
    cr_assert_eq(r.inserted, 1);
    cr_assert_eq(r.duplicates, 1);
    cr_assert_eq(r.dead_lettered, 1);
    cr_assert_eq(s_count(admin, "features.interactions"), 2);
    PQfinish(fresh);
    PQfinish(admin);
}

Test(interaction_store, caller_errors)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t events[] = {s_rating("u1", "v1", TS_US, 4)};
    dead_letter_t dead[] = {{"t", 0, 1, "x", 1, "r"}};
    store_result_t r;
    char err[256];

    //  Inside the caller's transaction: refused, transaction untouched.
    pg_test_exec(conn, "BEGIN");
    cr_assert_eq(interaction_store_write(conn, events, 1, NULL, 0, NULL, DLQ, &r, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "inside a transaction"), "%s", err);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_INTRANS);
    pg_test_exec(conn, "ROLLBACK");

    event_t bad = events[0];
    bad.kind = (event_kind_t)42;
    cr_assert_eq(interaction_store_write(conn, &bad, 1, NULL, 0, NULL, DLQ, &r, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "unknown kind"), "%s", err);
    cr_assert_eq(interaction_store_write(conn, events, 1, dead, 1, NULL, "", &r, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "dead-letter topic"), "%s", err);
    cr_assert_eq(interaction_store_write(conn, NULL, 1, NULL, 0, NULL, DLQ, &r, err, sizeof err),
                 -1);
    cr_assert_eq(interaction_store_write(NULL, events, 1, NULL, 0, NULL, DLQ, &r, err, sizeof err),
                 -1);
    //  Nothing to do is success.
    cr_assert_eq(interaction_store_write(conn, NULL, 0, NULL, 0, NULL, NULL, &r, err, sizeof err),
                 0);
    cr_assert_eq(r.inserted + r.duplicates + r.dead_lettered, 0);
    cr_assert_eq(s_count(conn, "features.interactions"), 0);
    //  result may be NULL.
    cr_assert_eq(
        interaction_store_write(conn, events, 1, NULL, 0, NULL, DLQ, NULL, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(s_count(conn, "features.interactions"), 1);
    PQfinish(conn);
}

Test(interaction_store, full_batches)
{
    PGconn *conn = pg_test_db_connect(s_db);
    size_t n = 5000;
    event_t *events = calloc(n, sizeof *events);
    for (size_t i = 0; i < n; i++) {
        char user[32], video[32];
        snprintf(user, sizeof user, "user-%zu", i % 700);
        snprintf(video, sizeof video, "video-%zu", i % 311);
        events[i] = s_watch(user, video, TS_US + (int64_t)i, (int64_t)(i % 100), 100, "web");
    }
    cr_assert_eq(s_write(conn, events, n, NULL, 0).inserted, n);
    cr_assert_eq(s_write(conn, events, n, NULL, 0).duplicates, n);
    cr_assert_eq(s_count(conn, "features.interactions"), (long)n);
    cr_assert_eq(s_count(conn, "features.users"), 700);
    free(events);
    PQfinish(conn);
}

//  Two writers storing the same events in opposite orders at the same
//  time (a replay after a rebalance) both succeed: no deadlock.
typedef struct {
    pg_test_db_t *db;
    const event_t *events;
    size_t count;
    bool reverse;
    int failures;
    char err[512];
} s_writer_t;

static void *s_writer(void *arg)
{
    s_writer_t *w = arg;
    char err[512];
    PGconn *conn = pg_conn_open(pg_test_db_config(w->db)->pg_dsn, "test", 10, err, sizeof err);
    if (!conn) {
        w->failures++;
        snprintf(w->err, sizeof w->err, "%s", err);
        return NULL;
    }
    size_t batch = 250;
    event_t *buf = calloc(batch, sizeof *buf);
    for (size_t start = 0; start < w->count; start += batch) {
        for (size_t i = 0; i < batch; i++) {
            size_t k = start + i;
            buf[i] = w->events[w->reverse ? w->count - 1 - k : k];
        }
        store_result_t r;
        if (interaction_store_write(conn, buf, batch, NULL, 0, NULL, DLQ, &r, w->err,
                                    sizeof w->err) != 0)
            w->failures++;
    }
    free(buf);
    PQfinish(conn);
    return NULL;
}

Test(interaction_store, concurrent_overlapping_writers_do_not_deadlock)
{
    size_t n = 4000;
    event_t *events = calloc(n, sizeof *events);
    for (size_t i = 0; i < n; i++) {
        char user[32];
        snprintf(user, sizeof user, "user-%zu", i % 50);
        events[i] = s_watchlist(user, "v", TS_US + (int64_t)i, true);
    }
    s_writer_t a = {s_db, events, n, false, 0, ""}, b = {s_db, events, n, true, 0, ""};
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, s_writer, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, s_writer, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.failures, 0, "%s", a.err);
    cr_assert_eq(b.failures, 0, "%s", b.err);
    PGconn *conn = pg_test_db_connect(s_db);
    cr_assert_eq(s_count(conn, "features.interactions"), (long)n);
    PQfinish(conn);
    free(events);
}

//  ---------------------------------------------------------------------
//  Per-kind counts

Test(interaction_store, counts_new_rows_and_duplicates_per_kind)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t first[] = {s_watch("u1", "v1", TS_US, 30, 120, "tv"),
                       s_watch("u1", "v2", TS_US, 30, 120, "tv"), s_rating("u1", "v3", TS_US, 4),
                       s_watchlist("u1", "v4", TS_US, true)};
    //  The fast path (all new): counts from the batch itself.
    store_result_t r = s_write(conn, first, 4, NULL, 0);
    cr_assert_eq(r.inserted_by_kind[EVENT_WATCH], 2);
    cr_assert_eq(r.inserted_by_kind[EVENT_RATING], 1);
    cr_assert_eq(r.inserted_by_kind[EVENT_WATCHLIST_ADD], 1);
    cr_assert_eq(r.inserted_by_kind[EVENT_WATCHLIST_REMOVE], 0);
    cr_assert_eq(r.duplicates_by_kind[EVENT_WATCH] + r.duplicates_by_kind[EVENT_RATING] +
                     r.duplicates_by_kind[EVENT_WATCHLIST_ADD],
                 0);
    //  The careful path (a replay mixed with new events): the server says.
    event_t second[] = {first[0],
                        first[1],
                        first[2],
                        s_rating("u2", "v3", TS_US, 2),
                        s_watchlist("u1", "v4", TS_US, false),
                        first[3]};
    r = s_write(conn, second, 6, NULL, 0);
    cr_assert_eq(r.inserted, 2);
    cr_assert_eq(r.duplicates, 4);
    cr_assert_eq(r.inserted_by_kind[EVENT_WATCH], 0);
    cr_assert_eq(r.duplicates_by_kind[EVENT_WATCH], 2);
    cr_assert_eq(r.inserted_by_kind[EVENT_RATING], 1);
    cr_assert_eq(r.duplicates_by_kind[EVENT_RATING], 1);
    cr_assert_eq(r.inserted_by_kind[EVENT_WATCHLIST_REMOVE], 1);
    cr_assert_eq(r.duplicates_by_kind[EVENT_WATCHLIST_REMOVE], 0);
    cr_assert_eq(r.inserted_by_kind[EVENT_WATCHLIST_ADD], 0);
    cr_assert_eq(r.duplicates_by_kind[EVENT_WATCHLIST_ADD], 1);
    cr_assert_eq(s_count(conn, "features.interactions"), 6);
    PQfinish(conn);
}

//  ---------------------------------------------------------------------
//  Catalogue changes

static event_video_t s_video(const char *id, const char *title, int64_t updated_us, bool retired)
{
    event_video_t v;
    memset(&v, 0, sizeof v);
    snprintf(v.video_id, sizeof v.video_id, "%s", id);
    snprintf(v.title, sizeof v.title, "%s", title);
    v.genre_count = 2;
    snprintf(v.genres[0], sizeof v.genres[0], "Drama");
    snprintf(v.genres[1], sizeof v.genres[1], "Sci-Fi");
    v.tag_count = 1;
    snprintf(v.tags[0], sizeof v.tags[0], "space");
    v.duration_s = 5400;
    v.has_published = true;
    v.published_us = TS_US - 86400 * INT64_C(1000000);
    v.retired = retired;
    v.updated_us = updated_us;
    return v;
}

static store_result_t s_write_videos(PGconn *conn, const event_video_t *videos, size_t count)
{
    store_batch_t batch = {.videos = videos, .video_count = count};
    store_result_t result;
    char err[512] = "";
    int rc = interaction_store_write_batch(conn, &batch, NULL, DLQ, &result, err, sizeof err);
    cr_assert_eq(rc, 0, "write failed: %s", err);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    cr_assert_eq(result.videos_applied + result.videos_stale, count);
    return result;
}

//  One video as text: every column the catalogue sets.
static const char *s_video_row(PGconn *conn, const char *id, char *buf, size_t len)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT concat_ws('|', title, genres::text, tags::text, duration_s,"
             " coalesce((extract(epoch FROM published_at))::bigint::text, 'N'), retired,"
             " (extract(epoch FROM catalog_updated_at) * 1000000)::bigint)"
             " FROM features.videos WHERE video_id = '%s'",
             id);
    return pg_test_text(conn, sql, buf, len);
}

Test(interaction_store, video_upsert_lands_with_exact_values)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_video_t v = s_video("v1", "Am\xc3\xa9lie \"2\" {x,y} \\ \t", TS_US + 250000, false);
    snprintf(v.tags[1], sizeof v.tags[1], "with space, comma");
    v.tag_count = 2;
    store_result_t r = s_write_videos(conn, &v, 1);
    cr_assert_eq(r.videos_applied, 1);
    cr_assert_eq(r.videos_stale, 0);
    cr_assert_eq(r.inserted + r.duplicates + r.dead_lettered, 0);
    char buf[1024];
    cr_assert_str_eq(s_video_row(conn, "v1", buf, sizeof buf),
                     "Am\xc3\xa9lie \"2\" {x,y} \\ \t|{Drama,Sci-Fi}|{space,\"with space, comma\"}"
                     "|5400|1714478400|f|1714564800250000");
    //  Arrays keep their order; no genres/tags is an empty array, not NULL.
    event_video_t bare = s_video("v2", "Bare", TS_US, false);
    bare.genre_count = bare.tag_count = 0;
    bare.has_published = false;
    s_write_videos(conn, &bare, 1);
    cr_assert_str_eq(s_video_row(conn, "v2", buf, sizeof buf),
                     "Bare|{}|{}|5400|N|f|1714564800000000");
    cr_assert_eq(s_count(conn, "features.interactions"), 0);
    cr_assert_eq(s_count(conn, "public.outbox"), 0);
    PQfinish(conn);
}

Test(interaction_store, video_newer_wins_older_and_replay_ignored)
{
    PGconn *conn = pg_test_db_connect(s_db);
    char buf[1024];
    event_video_t v1 = s_video("v1", "First", TS_US, false);
    cr_assert_eq(s_write_videos(conn, &v1, 1).videos_applied, 1);
    //  A replay: stale, nothing changes (not even the row's updated_at).
    char before[64], after[64];
    pg_test_text(conn, "SELECT updated_at::text FROM features.videos", before, sizeof before);
    store_result_t r = s_write_videos(conn, &v1, 1);
    cr_assert_eq(r.videos_applied, 0);
    cr_assert_eq(r.videos_stale, 1);
    pg_test_text(conn, "SELECT updated_at::text FROM features.videos", after, sizeof after);
    cr_assert_str_eq(before, after);
    //  Same version, different content: still not newer, ignored.
    event_video_t same = s_video("v1", "Same time, other title", TS_US, false);
    cr_assert_eq(s_write_videos(conn, &same, 1).videos_stale, 1);
    cr_assert(strncmp(s_video_row(conn, "v1", buf, sizeof buf), "First|", 6) == 0, "%s", buf);
    //  Newer: replaces every column, published_at NULL included.
    event_video_t v2 = s_video("v1", "Second", TS_US + 1, false);
    v2.has_published = false;
    v2.genre_count = 1;
    v2.duration_s = 60;
    cr_assert_eq(s_write_videos(conn, &v2, 1).videos_applied, 1);
    cr_assert_str_eq(s_video_row(conn, "v1", buf, sizeof buf),
                     "Second|{Drama}|{space}|60|N|f|1714564800000001");
    //  Older, arriving late: ignored.
    event_video_t old = s_video("v1", "Old", TS_US - 1000000, false);
    cr_assert_eq(s_write_videos(conn, &old, 1).videos_stale, 1);
    cr_assert(strncmp(s_video_row(conn, "v1", buf, sizeof buf), "Second|", 7) == 0, "%s", buf);
    cr_assert_eq(s_count(conn, "features.videos"), 1);
    PQfinish(conn);
}

Test(interaction_store, video_retire_and_reactivate)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_video_t v = s_video("v1", "T", TS_US, false);
    s_write_videos(conn, &v, 1);
    v = s_video("v1", "T", TS_US + 1000000, true);
    cr_assert_eq(s_write_videos(conn, &v, 1).videos_applied, 1);
    cr_assert_eq(pg_test_scalar(conn, "SELECT retired::int FROM features.videos"), 1);
    //  A late "active" from before the retirement does not bring it back...
    v = s_video("v1", "T", TS_US + 500000, false);
    cr_assert_eq(s_write_videos(conn, &v, 1).videos_stale, 1);
    cr_assert_eq(pg_test_scalar(conn, "SELECT retired::int FROM features.videos"), 1);
    //  ...a newer one does.
    v = s_video("v1", "T", TS_US + 2000000, false);
    cr_assert_eq(s_write_videos(conn, &v, 1).videos_applied, 1);
    cr_assert_eq(pg_test_scalar(conn, "SELECT retired::int FROM features.videos"), 0);
    PQfinish(conn);
}

Test(interaction_store, video_changes_in_one_batch_newest_wins)
{
    PGconn *conn = pg_test_db_connect(s_db);
    //  Out of order within the batch, one repeated, one equal version.
    event_video_t videos[] = {
        s_video("b", "b@2", TS_US + 2, false), s_video("a", "a@1", TS_US + 1, false),
        s_video("b", "b@3", TS_US + 3, true),  s_video("a", "a@1 again", TS_US + 1, false),
        s_video("b", "b@1", TS_US + 1, false), s_video("c", "c@1", TS_US + 1, false),
    };
    store_result_t r = s_write_videos(conn, videos, 6);
    cr_assert_eq(r.videos_applied, 3);
    cr_assert_eq(r.videos_stale, 3);
    char buf[256];
    pg_test_text(conn,
                 "SELECT string_agg(video_id || '=' || title || '/' || retired, ' '"
                 " ORDER BY video_id) FROM features.videos",
                 buf, sizeof buf);
    //  Equal versions: the first in the batch wins, as a stored one would.
    cr_assert_str_eq(buf, "a=a@1/false b=b@3/true c=c@1/false");
    PQfinish(conn);
}

Test(interaction_store, video_from_an_import_is_replaced_by_any_catalogue_change)
{
    PGconn *conn = pg_test_db_connect(s_db);
    //  As `recsd import movielens` leaves it: no catalogue version.
    pg_test_exec(conn, "INSERT INTO features.videos (video_id, title, genres)"
                       " VALUES ('1', 'Toy Story (1995)', '{Animation}')");
    event_video_t v = s_video("1", "Toy Story", 0, false); //  even a 1970 version
    cr_assert_eq(s_write_videos(conn, &v, 1).videos_applied, 1);
    char buf[512];
    cr_assert(strncmp(s_video_row(conn, "1", buf, sizeof buf), "Toy Story|{Drama,Sci-Fi}|", 25) ==
                  0,
              "%s", buf);
    PQfinish(conn);
}

Test(interaction_store, videos_events_and_dead_letters_in_one_transaction)
{
    PGconn *conn = pg_test_db_connect(s_db);
    event_t events[] = {s_rating("u1", "v1", TS_US, 4)};
    event_video_t videos[] = {s_video("v1", "One", TS_US, false)};
    dead_letter_t dead[] = {
        {"catalog-service.video-upserted", 2, 17, "{}", 2, "video_id: missing"}};
    store_batch_t batch = {events, 1, videos, 1, dead, 1, 0};
    store_result_t r;
    char err[512] = "";
    cr_assert_eq(interaction_store_write_batch(conn, &batch, NULL, DLQ, &r, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(r.inserted, 1);
    cr_assert_eq(r.videos_applied, 1);
    cr_assert_eq(r.dead_lettered, 1);
    char buf[512];
    pg_test_text(conn,
                 "SELECT payload->'source'->>'topic' || '/' || (payload->>'reason')"
                 " FROM public.outbox",
                 buf, sizeof buf);
    cr_assert_str_eq(buf, "catalog-service.video-upserted/video_id: missing");

    //  A batch whose video fails on the server (the duration CHECK) writes
    //  nothing at all: not its events, not its dead letters.
    event_t more[] = {s_rating("u2", "v2", TS_US, 3)};
    event_video_t bad[] = {s_video("v2", "Bad", TS_US, false)};
    bad[0].duration_s = -1;
    store_batch_t failing = {more, 1, bad, 1, dead, 1, 0};
    cr_assert_eq(interaction_store_write_batch(conn, &failing, NULL, DLQ, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "upsert videos"), "%s", err);
    cr_assert_eq(r.inserted + r.videos_applied + r.videos_stale + r.dead_lettered, 0);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    cr_assert_eq(s_count(conn, "features.interactions"), 1);
    cr_assert_eq(s_count(conn, "features.videos"), 1);
    cr_assert_eq(s_count(conn, "public.outbox"), 1);
    //  The connection is usable again.
    store_batch_t null_videos = {.video_count = 1};
    cr_assert_eq(interaction_store_write_batch(conn, &null_videos, NULL, DLQ, &r, err, sizeof err),
                 -1);
    cr_assert_eq(s_write_videos(conn, videos, 1).videos_stale, 1);
    PQfinish(conn);
}

//  More changes than one statement takes, with repeats across the groups:
//  still one row per video, the newest.
Test(interaction_store, many_video_changes)
{
    PGconn *conn = pg_test_db_connect(s_db);
    size_t n = 2500;
    event_video_t *videos = calloc(n, sizeof *videos);
    cr_assert_not_null(videos);
    for (size_t i = 0; i < n; i++) {
        char id[32], title[32];
        snprintf(id, sizeof id, "v%04zu", i % 1200);
        snprintf(title, sizeof title, "t%zu", i);
        videos[i] = s_video(id, title, TS_US + (int64_t)i, i % 7 == 0);
    }
    store_result_t r = s_write_videos(conn, videos, n);
    cr_assert_eq(r.videos_applied, 1200);
    cr_assert_eq(r.videos_stale, n - 1200);
    cr_assert_eq(s_count(conn, "features.videos"), 1200);
    //  v0000 was written at i = 0, 1200, 2400: the last is the newest.
    char buf[64];
    pg_test_text(conn, "SELECT title FROM features.videos WHERE video_id = 'v0000'", buf,
                 sizeof buf);
    cr_assert_str_eq(buf, "t2400");
    free(videos);
    PQfinish(conn);
}
