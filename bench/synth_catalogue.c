/*  synth_catalogue.c: a generated catalogue and an active collaborative
    model of it, for serving benchmarks at sizes MovieLens does not reach.

    Into the database of RECSD_PG_DSN (migrated, preferably empty): N
    videos v0..v{N-1}, U users u0..u{U-1} with H interactions each
    (Zipf-popular videos), and a collaborative model with 64 random
    unit-length factors per video, written to RECSD_ARTIFACT_URL and made
    active through the registry exactly as a trained model would be
    (queued, claimed, succeeded, activated). The ranker then serves it.

      RECSD_PG_DSN=... RECSD_ARTIFACT_URL=file:///... \
        build/synth_catalogue VIDEOS [USERS=10000] [HISTORY=20] [FACTORS=64]
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "als.h"
#include "artifact_store.h"
#include "config.h"
#include "model_artifact.h"
#include "model_fetch.h"
#include "model_registry.h"
#include "pg_conn.h"

static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double s_uniform(uint64_t *state)
{
    return (double)(s_next(state) >> 11) / 9007199254740992.0;
}

static int s_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_COPY_IN;
    if (!ok)
        fprintf(stderr, "synth_catalogue: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

static int s_copy_end(PGconn *conn)
{
    if (PQputCopyEnd(conn, NULL) != 1)
        return -1;
    PGresult *res = PQgetResult(conn);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "synth_catalogue: COPY: %s", PQerrorMessage(conn));
    PQclear(res);
    while ((res = PQgetResult(conn)))
        PQclear(res);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: synth_catalogue VIDEOS [USERS] [HISTORY] [FACTORS]\n");
        return 2;
    }
    int32_t n = (int32_t)atol(argv[1]);
    int32_t users = argc > 2 ? (int32_t)atol(argv[2]) : 10000;
    int32_t history = argc > 3 ? (int32_t)atol(argv[3]) : 20;
    int32_t f = argc > 4 ? (int32_t)atol(argv[4]) : 64;
    config_t cfg;
    char err[1024];
    if (config_load(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 78;
    }
    PGconn *conn = pg_conn_open(cfg.pg_dsn, "synth", 5, err, sizeof err);
    if (!conn) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t rng = 7;
    char line[256];
    //  Catalogue.
    if (s_exec(conn, "COPY features.videos (video_id, title) FROM STDIN") != 0)
        return 1;
    for (int32_t v = 0; v < n; v++) {
        int len = snprintf(line, sizeof line, "v%d\tSynthetic video %d\n", v, v);
        if (PQputCopyData(conn, line, len) != 1)
            return 1;
    }
    if (s_copy_end(conn) != 0)
        return 1;
    //  Interactions: Zipf(1) over videos by inverse-CDF on a harmonic table.
    double *cdf = malloc((size_t)n * sizeof *cdf);
    double total = 0;
    for (int32_t v = 0; v < n; v++)
        total += 1.0 / (v + 1);
    double run = 0;
    for (int32_t v = 0; v < n; v++) {
        run += 1.0 / (v + 1) / total;
        cdf[v] = run;
    }
    if (s_exec(conn, "COPY features.interactions (event_id, user_id, video_id, kind, weight,"
                     " occurred_at) FROM STDIN") != 0)
        return 1;
    for (int32_t u = 0; u < users; u++)
        for (int32_t h = 0; h < history; h++) {
            double x = s_uniform(&rng);
            int32_t lo = 0, hi = n - 1;
            while (lo < hi) {
                int32_t mid = lo + (hi - lo) / 2;
                if (cdf[mid] < x)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            int len =
                snprintf(line, sizeof line,
                         "synth:%d:%d\tu%d\tv%d\twatch\t0.5\t2024-01-01T00:00:00Z\n", u, h, u, lo);
            if (PQputCopyData(conn, line, len) != 1)
                return 1;
        }
    if (s_copy_end(conn) != 0)
        return 1;
    free(cdf);

    //  The model: random unit vectors (serving cost does not depend on
    //  their values).
    als_model_t m = {.n_items = n, .factors = f, .regularization = 1, .alpha = 10, .owned = false};
    m.item_factors = malloc((size_t)n * (size_t)f * sizeof(float));
    m.gram = malloc((size_t)f * (size_t)f * sizeof(float));
    char **ids = malloc((size_t)n * sizeof *ids);
    for (int32_t v = 0; v < n; v++) {
        double norm = 0;
        for (int32_t k = 0; k < f; k++) {
            float x = (float)(s_uniform(&rng) * 2 - 1);
            m.item_factors[(size_t)v * f + k] = x;
            norm += (double)x * x;
        }
        for (int32_t k = 0; k < f; k++)
            m.item_factors[(size_t)v * f + k] /= (float)sqrt(norm);
        ids[v] = malloc(16);
        snprintf(ids[v], 16, "v%d", v);
    }
    als_compute_gram(m.item_factors, n, f, m.gram);

    model_registry_request_t req = {.model_type = "collaborative",
                                    .trigger = "manual",
                                    .requested_by = "bench:synth_catalogue"};
    model_registry_enqueued_t queued;
    model_registry_claim_t claim;
    if (model_registry_enqueue(conn, &req, &queued, err, sizeof err) != MODEL_REGISTRY_OK ||
        model_registry_claim(conn, "bench", NULL, &claim, err, sizeof err) != 1) {
        fprintf(stderr, "synth_catalogue: registry: %s\n", err);
        return 1;
    }
    char local[512], checksum[65], key[256];
    snprintf(local, sizeof local, "/tmp/synth-%d.rca", (int)getpid());
    model_artifact_parts_t parts = {.model_type = "collaborative",
                                    .video_ids = (const char *const *)ids,
                                    .n_videos = n,
                                    .als = &m,
                                    .meta_json = "{\"synthetic\":true}"};
    artifact_store_t *store = model_fetch_store(&cfg, err, sizeof err);
    snprintf(key, sizeof key, "models/collaborative/v%d-%s.rca", claim.version, claim.model_id);
    if (!store || model_artifact_write(&parts, local, checksum, err, sizeof err) != 0 ||
        artifact_store_put(store, local, key, err, sizeof err) != 0) {
        fprintf(stderr, "synth_catalogue: artifact: %s\n", err);
        return 1;
    }
    unlink(local);
    char *url = artifact_store_url(store, key);
    model_registry_result_t result = {.artifact_path = url,
                                      .artifact_checksum = checksum,
                                      .gate_decided = true,
                                      .gate_passed = true,
                                      .gate_reason = "synthetic",
                                      .activate = true,
                                      .activated_by = "bench:synth_catalogue"};
    if (model_registry_succeed(conn, claim.model_id, &result, err, sizeof err) !=
        MODEL_REGISTRY_OK) {
        fprintf(stderr, "synth_catalogue: succeed: %s\n", err);
        return 1;
    }
    printf("synth_catalogue: %d videos, %d users x %d events, model %s active at %s\n", n, users,
           history, claim.model_id, url);
    free(url);
    model_registry_claim_clear(&claim);
    artifact_store_destroy(&store);
    for (int32_t v = 0; v < n; v++)
        free(ids[v]);
    free(ids);
    free(m.item_factors);
    free(m.gram);
    PQfinish(conn);
    return 0;
}
