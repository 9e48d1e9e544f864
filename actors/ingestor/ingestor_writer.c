/*  ingestor_writer.c: batches into PostgreSQL, reconnection and back-off
    (see ingestor_writer.h). */
#include "ingestor_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg_conn.h"

#define PG_CONNECT_TIMEOUT_S 2

struct ingestor_writer_t {
    const config_t *cfg;
    const event_rules_t *rules;
    PGconn *conn; //  NULL until connected, and after it broke
    bool failing;
    int64_t backoff_ms;
    int64_t retry_at; //  monotonic ms of the next attempt while failing
    int64_t failing_since;
    uint64_t failed_attempts;
};

ingestor_writer_t *ingestor_writer_new(const config_t *cfg, const event_rules_t *rules)
{
    ingestor_writer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->rules = rules;
    return self;
}

void ingestor_writer_destroy(ingestor_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestor_writer_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    free(self);
    *self_p = NULL;
}

//  Opens the connection if there is none. Returns 0, or -1 with err.
static int s_connect(ingestor_writer_t *self, char *err, size_t errlen)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return 0;
    if (self->conn)
        PQfinish(self->conn);
    self->conn = pg_conn_open(self->cfg->pg_dsn, "ingestor", PG_CONNECT_TIMEOUT_S, err, errlen);
    return self->conn ? 0 : -1;
}

//  "Does PostgreSQL answer?" for a caller with nothing to write.
static int s_probe(ingestor_writer_t *self, char *err, size_t errlen)
{
    PGresult *res = PQexec(self->conn, "SELECT 1");
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "%s", PQerrorMessage(self->conn));
    PQclear(res);
    return rc;
}

//  Trailing newlines of libpq messages would split our one-line logs.
static void s_chomp(char *text)
{
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
}

static void s_failed(ingestor_writer_t *self, int64_t now_ms, char *err, size_t batch_size)
{
    s_chomp(err);
    //  A broken connection is reopened next time; one that merely saw an
    //  error (rolled back) is kept.
    if (self->conn && PQstatus(self->conn) != CONNECTION_OK) {
        PQfinish(self->conn);
        self->conn = NULL;
    }
    self->failed_attempts++;
    if (!self->failing) {
        self->failing = true;
        self->failing_since = now_ms;
        self->backoff_ms = INGESTOR_BACKOFF_MIN_MS;
        log_warn("PostgreSQL write failed, keeping the batch of %zu and retrying with back-off "
                 "(%d ms doubling to %d ms): %s",
                 batch_size, INGESTOR_BACKOFF_MIN_MS, INGESTOR_BACKOFF_MAX_MS, err);
    } else {
        self->backoff_ms *= 2;
        if (self->backoff_ms > INGESTOR_BACKOFF_MAX_MS)
            self->backoff_ms = INGESTOR_BACKOFF_MAX_MS;
        log_debug("PostgreSQL write failed again (attempt %llu): %s",
                  (unsigned long long)self->failed_attempts, err);
    }
    self->retry_at = now_ms + self->backoff_ms;
}

int ingestor_writer_write(ingestor_writer_t *self, const ingestor_batch_t *batch, int64_t now_ms,
                          store_result_t *result)
{
    char err[512] = "";
    store_batch_t store = {0};
    store.events = ingestor_batch_events(batch, &store.count);
    store.videos = ingestor_batch_videos(batch, &store.video_count);
    store.dead = ingestor_batch_dead(batch, &store.dead_count);
    store.attribution_window_s = self->cfg->experiment_window_s;
    size_t size = ingestor_batch_size(batch);
    memset(result, 0, sizeof *result);
    int rc = s_connect(self, err, sizeof err);
    if (rc == 0)
        rc = size == 0 ? s_probe(self, err, sizeof err)
                       : interaction_store_write_batch(self->conn, &store, self->rules,
                                                       self->cfg->topic_dead_letter, result, err,
                                                       sizeof err);
    if (rc != 0) {
        s_failed(self, now_ms, err, size);
        return -1;
    }
    if (self->failing) {
        log_info("PostgreSQL writes succeed again after %llu failed attempts in %lld ms",
                 (unsigned long long)self->failed_attempts,
                 (long long)(now_ms - self->failing_since));
        self->failing = false;
    }
    self->failed_attempts = 0;
    return 0;
}

bool ingestor_writer_failing(const ingestor_writer_t *self)
{
    return self->failing;
}

int64_t ingestor_writer_retry_in(const ingestor_writer_t *self, int64_t now_ms)
{
    if (!self->failing || now_ms >= self->retry_at)
        return 0;
    return self->retry_at - now_ms;
}
