/*  event_import.c: `recsd import events FILE` (see event_import.h).

    Lines are read into a fixed buffer (a longer line is cut, so memory
    does not depend on the file), classified by their "type", parsed by
    event_parse exactly as the ingestor parses a Kafka value, and written
    by interaction_store_write in batches. The "type" is read with a first
    jansson parse and the event with a second: paying twice for a small
    object keeps one parser, event_parse, as the only judge of validity.
*/
#include "event_import.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "interaction_store.h"
#include "log.h"
#include "pg_conn.h"

#define S_PROGRESS_LINES 100000
//  Original bytes of dead letters held per batch before it is written
//  early: bounds memory when a file is full of long invalid lines.
#define S_DEAD_BYTES_MAX ((size_t)16 * 1024 * 1024)
#define S_REASON_MAX 256

//  One batch being filled: valid events, and invalid lines with their
//  bytes (offsets into `bytes`, turned into pointers just before writing,
//  as `bytes` may move when it grows).
typedef struct {
    size_t capacity; //  events + dead letters per batch
    event_t *events;
    size_t event_count;
    dead_letter_t *dead;
    size_t *dead_at; //  offset of each dead letter's bytes in `bytes`
    char (*reasons)[S_REASON_MAX];
    size_t dead_count;
    char *bytes;
    size_t bytes_len;
    size_t bytes_cap;
} s_batch_t;

static void s_batch_free(s_batch_t *batch)
{
    free(batch->events);
    free(batch->dead);
    free(batch->dead_at);
    free(batch->reasons);
    free(batch->bytes);
    memset(batch, 0, sizeof *batch);
}

static int s_batch_init(s_batch_t *batch, size_t capacity)
{
    memset(batch, 0, sizeof *batch);
    batch->capacity = capacity;
    batch->events = calloc(capacity, sizeof *batch->events);
    batch->dead = calloc(capacity, sizeof *batch->dead);
    batch->dead_at = calloc(capacity, sizeof *batch->dead_at);
    batch->reasons = calloc(capacity, sizeof *batch->reasons);
    if (!batch->events || !batch->dead || !batch->dead_at || !batch->reasons) {
        s_batch_free(batch);
        return -1;
    }
    return 0;
}

static bool s_batch_full(const s_batch_t *batch)
{
    return batch->event_count + batch->dead_count >= batch->capacity ||
           batch->bytes_len >= S_DEAD_BYTES_MAX;
}

//  Adds a dead letter for line `lineno`; its bytes are copied. The reason
//  is already in batch->reasons[batch->dead_count]. Returns 0, or -1 if
//  out of memory.
static int s_batch_dead(s_batch_t *batch, const char *line, size_t len, size_t lineno)
{
    if (batch->bytes_len + len > batch->bytes_cap) {
        size_t cap = batch->bytes_cap ? batch->bytes_cap : (size_t)64 * 1024;
        while (cap < batch->bytes_len + len)
            cap *= 2;
        char *bytes = realloc(batch->bytes, cap);
        if (!bytes)
            return -1;
        batch->bytes = bytes;
        batch->bytes_cap = cap;
    }
    if (len > 0)
        memcpy(batch->bytes + batch->bytes_len, line, len);
    size_t i = batch->dead_count++;
    batch->dead_at[i] = batch->bytes_len;
    batch->bytes_len += len;
    batch->dead[i] = (dead_letter_t){.topic = "",
                                     .partition = -1,
                                     .offset = (int64_t)lineno,
                                     .payload = NULL,
                                     .len = len,
                                     .reason = batch->reasons[i]};
    return 0;
}

static double s_seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int64_t s_now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

//  Writes the batch in one transaction and empties it. Returns 0, or -1
//  with the reason logged.
static int s_flush(PGconn *conn, s_batch_t *batch, const event_rules_t *rules,
                   const char *dead_topic, const char *name, event_import_stats_t *stats)
{
    if (batch->event_count == 0 && batch->dead_count == 0)
        return 0;
    for (size_t i = 0; i < batch->dead_count; i++)
        batch->dead[i].payload = batch->bytes ? batch->bytes + batch->dead_at[i] : "";
    store_result_t result;
    char err[1024];
    if (interaction_store_write(conn, batch->events, batch->event_count, batch->dead,
                                batch->dead_count, rules, dead_topic, &result, err,
                                sizeof err) != 0) {
        log_error("import: %s: writing a batch of %zu events and %zu dead letters failed: %s", name,
                  batch->event_count, batch->dead_count, err);
        return -1;
    }
    stats->stored += result.inserted;
    stats->duplicates += result.duplicates;
    stats->dead_lettered += result.dead_lettered;
    batch->event_count = 0;
    batch->dead_count = 0;
    batch->bytes_len = 0;
    return 0;
}

//  Reads one line (without its LF, or CRLF) into line, cutting it at cap
//  bytes; *full is its real length. Returns 1, 0 at the end of the input,
//  or -1 on a read error.
static int s_read_line(FILE *in, char *line, size_t cap, size_t *len, size_t *full)
{
    size_t n = 0, total = 0;
    int c = EOF;
    while ((c = getc_unlocked(in)) != EOF && c != '\n') {
        if (n < cap)
            line[n++] = (char)c;
        total++;
    }
    if (c == EOF) {
        if (ferror(in))
            return -1;
        if (total == 0)
            return 0;
    }
    if (total == n && n > 0 && line[n - 1] == '\r') {
        n--;
        total--;
    }
    *len = n;
    *full = total;
    return 1;
}

//  The schema a line's "type" names. Returns 0, or -1 with the reason;
//  a line that is not a JSON object gets event_parse's reason, so an
//  invalid line is described the same way whichever path finds it.
static int s_line_source(const char *line, size_t len, const event_rules_t *rules, int64_t now_us,
                         event_source_t *source, char *reason, size_t reasonlen)
{
    json_error_t error;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        event_t unused;
        if (event_parse(EVENT_SOURCE_WATCHED, line, len, rules, now_us, &unused, reason,
                        reasonlen) != 0)
            return -1;
        snprintf(reason, reasonlen, "payload: not a JSON object"); //  cannot happen
        return -1;
    }
    static const struct {
        const char *name;
        event_source_t source;
    } types[] = {{"video_watched", EVENT_SOURCE_WATCHED},
                 {"video_rated", EVENT_SOURCE_RATED},
                 {"watchlist_updated", EVENT_SOURCE_WATCHLIST}};
    json_t *type = json_object_get(root, "type");
    int rc = -1;
    if (!type) {
        snprintf(reason, reasonlen, "type: missing");
    } else if (!json_is_string(type)) {
        snprintf(reason, reasonlen, "type: must be a string");
    } else {
        for (size_t i = 0; rc != 0 && i < sizeof types / sizeof *types; i++) {
            if (strcmp(json_string_value(type), types[i].name) == 0) {
                *source = types[i].source;
                rc = 0;
            }
        }
        if (rc != 0)
            snprintf(reason, reasonlen,
                     "type: must be \"video_watched\", \"video_rated\" or \"watchlist_updated\"");
    }
    json_decref(root);
    return rc;
}

int event_import_stream(const config_t *cfg, FILE *in, const char *name,
                        event_import_stats_t *stats_out)
{
    event_import_stats_t stats;
    memset(&stats, 0, sizeof stats);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    event_rules_t rules = event_rules_default();
    rules.rating_min = cfg->rating_min;
    rules.rating_max = cfg->rating_max;
    rules.max_future_s = cfg->event_max_future_s;

    int rc = -1;
    PGconn *conn = NULL;
    s_batch_t batch;
    char *line = malloc(EVENT_MAX_PAYLOAD);
    if (!line ||
        s_batch_init(&batch, cfg->ingest_batch_max > 0 ? (size_t)cfg->ingest_batch_max : 1) != 0) {
        free(line);
        log_error("import: %s: out of memory", name);
        goto done;
    }
    char err[512];
    conn = pg_conn_open(cfg->pg_dsn, "import", 10, err, sizeof err);
    if (!conn) {
        log_error("import: %s", err);
        goto err;
    }

    size_t len, full;
    int got;
    while ((got = s_read_line(in, line, EVENT_MAX_PAYLOAD, &len, &full)) == 1) {
        size_t lineno = ++stats.lines;
        if (full == 0) {
            stats.blank++;
        } else {
            char *reason = batch.reasons[batch.dead_count];
            int64_t now_us = s_now_us();
            event_source_t source;
            bool valid = false;
            if (full > EVENT_MAX_PAYLOAD)
                snprintf(reason, S_REASON_MAX, "payload: %zu bytes, more than %d allowed", full,
                         EVENT_MAX_PAYLOAD);
            else if (s_line_source(line, len, &rules, now_us, &source, reason, S_REASON_MAX) == 0)
                valid = event_parse(source, line, len, &rules, now_us,
                                    &batch.events[batch.event_count], reason, S_REASON_MAX) == 0;
            if (valid) {
                batch.event_count++;
            } else if (s_batch_dead(&batch, line, len, lineno) != 0) {
                log_error("import: %s: out of memory", name);
                goto err;
            }
            if (s_batch_full(&batch) &&
                s_flush(conn, &batch, &rules, cfg->topic_dead_letter, name, &stats) != 0)
                goto err;
        }
        if (lineno % S_PROGRESS_LINES == 0) {
            double seconds = s_seconds_since(&start);
            log_info("import: %s: %zu lines, %zu stored, %zu duplicates, %zu dead-lettered so "
                     "far, %.0f lines/s",
                     name, stats.lines, stats.stored, stats.duplicates, stats.dead_lettered,
                     seconds > 0 ? (double)stats.lines / seconds : 0);
        }
    }
    if (got < 0) {
        log_error("import: %s: read error after line %zu: %s", name, stats.lines, strerror(errno));
        goto err;
    }
    if (s_flush(conn, &batch, &rules, cfg->topic_dead_letter, name, &stats) != 0)
        goto err;
    rc = 0;
err:
    free(line);
    s_batch_free(&batch);
    PQfinish(conn);
done:
    stats.seconds = s_seconds_since(&start);
    if (stats_out)
        *stats_out = stats;
    return rc;
}

int event_import_main(const config_t *cfg, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "events") != 0) {
        fprintf(stderr, "usage: recsd import events FILE\n"
                        "  FILE holds JSON lines, one event each with a \"type\" of\n"
                        "  video_watched, video_rated or watchlist_updated (\"-\": stdin)\n");
        return 2;
    }
    const char *path = argv[1];
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(path, "r");
    if (!in) {
        log_error("import: cannot open %s: %s", path, strerror(errno));
        return 1;
    }
    event_import_stats_t stats;
    int rc = event_import_stream(cfg, in, path, &stats);
    if (!is_stdin)
        fclose(in);
    if (rc != 0)
        return 1;
    size_t events = stats.lines - stats.blank;
    printf("imported %s in %.2f s: %zu lines, %zu stored, %zu duplicates, %zu dead-lettered, "
           "%zu blank, %.0f events/s\n",
           path, stats.seconds, stats.lines, stats.stored, stats.duplicates, stats.dead_lettered,
           stats.blank, stats.seconds > 0 ? (double)events / stats.seconds : 0);
    return 0;
}
