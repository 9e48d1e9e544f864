/*  config.c: environment -> config_t, validated in one place. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "log_file.h"

//  Start order; the supervisor stops actors in reverse, so the gateway
//  (last up) is first down and stops taking traffic before its backends go.
static const char *s_all_actors[] = {"publisher", "trainer", "ranker", "event-ingestor",
                                     "http-gateway"};
#define ALL_ACTOR_COUNT 5

bool config_actor_known(const char *name)
{
    for (int i = 0; i < ALL_ACTOR_COUNT; i++)
        if (strcmp(name, s_all_actors[i]) == 0)
            return true;
    return false;
}

bool config_runs(const config_t *cfg, const char *name)
{
    for (int i = 0; i < cfg->actor_count; i++)
        if (strcmp(cfg->actors[i], name) == 0)
            return true;
    return false;
}

static int s_fail(char *err, size_t errlen, const char *var, const char *why, const char *value)
{
    snprintf(err, errlen, "invalid configuration: %s=\"%s\": %s", var, value ? value : "", why);
    return -1;
}

//  Reads an integer variable within [lo, hi]; unset or empty keeps *out.
static int s_int(const char *var, int lo, int hi, int *out, char *err, size_t errlen)
{
    const char *text = getenv(var);
    if (!text || !*text)
        return 0;
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end || end == text)
        return s_fail(err, errlen, var, "not an integer", text);
    if (value < lo || value > hi) {
        char why[96];
        snprintf(why, sizeof why, "must be between %d and %d", lo, hi);
        return s_fail(err, errlen, var, why, text);
    }
    *out = (int)value;
    return 0;
}

//  Reads a floating-point variable within [lo, hi]; unset or empty keeps *out.
static int s_double(const char *var, double lo, double hi, double *out, char *err, size_t errlen)
{
    const char *text = getenv(var);
    if (!text || !*text)
        return 0;
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || *end || end == text || value != value)
        return s_fail(err, errlen, var, "not a number", text);
    if (value < lo || value > hi) {
        char why[96];
        snprintf(why, sizeof why, "must be between %g and %g", lo, hi);
        return s_fail(err, errlen, var, why, text);
    }
    *out = value;
    return 0;
}

//  Reads a size in bytes, plain or with a binary suffix K, M or G (also
//  KiB, MiB, GiB), within [lo, hi]; unset or empty keeps *out.
static int s_size(const char *var, uint64_t lo, uint64_t hi, uint64_t *out, char *err,
                  size_t errlen)
{
    const char *text = getenv(var);
    if (!text || !*text)
        return 0;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || text[0] == '-' || text[0] == '+')
        return s_fail(err, errlen, var, "not a size (bytes, or a number with K, M or G)", text);
    uint64_t unit = 1;
    if (*end) {
        const char *units = "KMG";
        const char *at = strchr(units, end[0] >= 'a' ? end[0] - 'a' + 'A' : end[0]);
        if (!end[0] || !at ||
            !(end[1] == '\0' || strcmp(end + 1, "iB") == 0 || strcmp(end + 1, "B") == 0))
            return s_fail(err, errlen, var, "not a size (bytes, or a number with K, M or G)", text);
        unit = 1ull << (10 * (at - units + 1));
    }
    if (value > hi / unit || value * unit < lo || value * unit > hi) {
        char why[96];
        snprintf(why, sizeof why, "must be between %llu and %llu bytes", (unsigned long long)lo,
                 (unsigned long long)hi);
        return s_fail(err, errlen, var, why, text);
    }
    *out = value * unit;
    return 0;
}

static int s_str(const char *var, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *text = getenv(var);
    if (!text)
        return 0;
    //  A secret is never echoed into an error message (they reach logs).
    if (strlen(text) >= outlen)
        return s_fail(err, errlen, var, "too long",
                      strstr(var, "SECRET") || strstr(var, "PASSWORD") ? "(hidden)" : text);
    memcpy(out, text, strlen(text) + 1);
    return 0;
}

//  Parses a comma-separated actor list in the canonical start order. When
//  instances is not NULL an entry may be "name:N" (N processes of it).
static int s_actor_list(const char *var, char list[][32], int *instances, int *count, char *err,
                        size_t errlen)
{
    const char *text = getenv(var);
    if (!text)
        return 0;
    char copy[512];
    if (strlen(text) >= sizeof copy)
        return s_fail(err, errlen, var, "too long", text);
    strcpy(copy, text);
    int wanted[ALL_ACTOR_COUNT] = {0};
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int n = 1;
        char *colon = strchr(tok, ':');
        if (colon) {
            char *end;
            long value = strtol(colon + 1, &end, 10);
            if (!instances || *end || end == colon + 1 || value < 1 ||
                value > CONFIG_MAX_INSTANCES) {
                char why[160];
                snprintf(why, sizeof why, "\"%.40s\": a count must be name:N with N in 1..%d%s",
                         tok, CONFIG_MAX_INSTANCES, instances ? "" : " (and only in RECSD_ACTORS)");
                return s_fail(err, errlen, var, why, text);
            }
            *colon = '\0';
            n = (int)value;
        }
        int found = -1;
        for (int i = 0; i < ALL_ACTOR_COUNT; i++)
            if (strcmp(tok, s_all_actors[i]) == 0)
                found = i;
        if (found < 0) {
            char why[160];
            snprintf(why, sizeof why,
                     "unknown actor \"%.32s\" (known: publisher, trainer, ranker, "
                     "event-ingestor, http-gateway)",
                     tok);
            return s_fail(err, errlen, var, why, text);
        }
        //  The gateway binds the HTTP port and the publisher is the one Kafka
        //  producer: several of either in one pod would fight.
        if (n > 1 && (found == 0 || found == 4)) {
            char why[96];
            snprintf(why, sizeof why, "%s runs once per pod", s_all_actors[found]);
            return s_fail(err, errlen, var, why, text);
        }
        wanted[found] = n;
    }
    *count = 0;
    for (int i = 0; i < ALL_ACTOR_COUNT; i++)
        if (wanted[i]) {
            if (instances)
                instances[*count] = wanted[i];
            snprintf(list[(*count)++], 32, "%s", s_all_actors[i]);
        }
    return 0;
}

static void s_defaults(config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->http_addr, "0.0.0.0");
    cfg->http_port = 8080;
    cfg->http_threads = 16; //  mostly waiting on the ranker: see bench/http_bench.sh
    cfg->http_max_connections = 1024;
    cfg->ranker_deadline_ms = 50;
    cfg->popular_refresh_ms = 30000;
    cfg->readiness_interval_ms = 1000;

    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg && strlen(xdg) < 100)
        snprintf(cfg->runtime_dir, sizeof cfg->runtime_dir, "%s/recsd", xdg);
    else
        snprintf(cfg->runtime_dir, sizeof cfg->runtime_dir, "/tmp/recsd-%u", (unsigned)getuid());
    for (int i = 0; i < ALL_ACTOR_COUNT; i++) {
        snprintf(cfg->actors[i], 32, "%s", s_all_actors[i]);
        snprintf(cfg->required[i], 32, "%s", s_all_actors[i]);
        cfg->actor_instances[i] = 1;
    }
    cfg->actor_count = ALL_ACTOR_COUNT;
    cfg->required_count = -1; //  "same as actors" unless set
    cfg->heartbeat_interval_ms = 500;
    cfg->heartbeat_timeout_ms = 3000;
    cfg->start_timeout_ms = 10000;
    cfg->backoff_min_ms = 100;
    cfg->backoff_max_ms = 30000;
    cfg->backoff_reset_ms = 60000;
    cfg->restart_max = 5;
    cfg->restart_window_ms = 30000;
    cfg->failed_retry_ms = 300000;
    cfg->shutdown_grace_ms = 20000;
    cfg->drain_delay_ms = 0;
    cfg->stop_timeout_ms = 5000;

    strcpy(cfg->pg_dsn, "postgresql://recsd@127.0.0.1:5432/recsd");
    strcpy(cfg->redis_url, "redis://127.0.0.1:6379");
    strcpy(cfg->kafka_brokers, "127.0.0.1:9092");
    strcpy(cfg->artifact_url, "file://var/artifacts");
    snprintf(cfg->migrations_dir, sizeof cfg->migrations_dir, "%s", RECSD_DEFAULT_MIGRATIONS_DIR);
    strcpy(cfg->kafka_group, "recsd-ingestor");
    strcpy(cfg->topic_watched, "analytics-service.video-watched");
    strcpy(cfg->topic_rated, "profile-service.video-rated");
    strcpy(cfg->topic_watchlist, "profile-service.watchlist-updated");
    strcpy(cfg->topic_video_upserted, "catalog-service.video-upserted");
    strcpy(cfg->topic_dead_letter, "recommendation-service.dead-letter");
    cfg->ingest_batch_max = 5000;
    cfg->ingest_batch_ms = 50;
    cfg->rating_min = 0.5;
    cfg->rating_max = 5.0;
    cfg->event_max_future_s = 300;
    cfg->seen_completion = 0.8;
    cfg->weight_watch = 1.0;
    cfg->weight_rating = 1.0;
    cfg->rating_neutral = 2.5;
    cfg->weight_watchlist_add = 0.5;
    cfg->weight_watchlist_remove = 0.5;
    cfg->train_interval_s = 86400;
    cfg->train_poll_ms = 5000;
    cfg->als_factors = 64;
    cfg->als_iterations = 15;
    cfg->als_regularization = 50.0; //  tuned on validation (bench/tune_models)
    cfg->als_alpha = 10.0;
    cfg->train_threads = 0;
    cfg->train_seed = 42;
    cfg->ease_max_items = 4000;
    cfg->ease_lambda = 250.0;
    cfg->neighbours_k = 50;
    cfg->holdout_fraction = 0.2;
    cfg->quality_tolerance = 0.02;
    strcpy(cfg->s3_region, "us-east-1");
    cfg->ann_min_videos = 50000; //  bench/scoring_bench: brute force wins below
    cfg->cache_l1_entries = 10000;
    cfg->cache_l1_ttl_ms = 60000;
    cfg->cache_ttl_s = 3600;
    cfg->cache_segment_ttl_s = 300;
    snprintf(cfg->experiment_layer, sizeof cfg->experiment_layer, "default");
    cfg->experiment_window_s = 86400;
    snprintf(cfg->auth_mode, sizeof cfg->auth_mode, "auto");
    cfg->jwt_leeway_s = 30;
    cfg->rate_limit = 500;
    cfg->rate_limit_period_s = 60;
    snprintf(cfg->jwt_roles_claim, sizeof cfg->jwt_roles_claim, "roles");
    cfg->cache_redis_timeout_ms = 20;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->log_file_max_bytes = 100ull << 20;
    cfg->log_file_keep = 5;
}

int config_load(config_t *cfg, char *err, size_t errlen)
{
    s_defaults(cfg);
    const int day = 86400000;
    if (s_str("RECSD_HTTP_ADDR", cfg->http_addr, sizeof cfg->http_addr, err, errlen) ||
        s_int("RECSD_HTTP_PORT", 1, 65535, &cfg->http_port, err, errlen) ||
        s_int("RECSD_HTTP_THREADS", 1, 256, &cfg->http_threads, err, errlen) ||
        s_int("RECSD_HTTP_MAX_CONNECTIONS", 1, 100000, &cfg->http_max_connections, err, errlen) ||
        s_int("RECSD_RANKER_DEADLINE_MS", 1, 60000, &cfg->ranker_deadline_ms, err, errlen) ||
        s_int("RECSD_POPULAR_REFRESH_MS", 100, day, &cfg->popular_refresh_ms, err, errlen) ||
        s_int("RECSD_READINESS_INTERVAL_MS", 50, 60000, &cfg->readiness_interval_ms, err, errlen) ||
        s_str("RECSD_RUNTIME_DIR", cfg->runtime_dir, sizeof cfg->runtime_dir, err, errlen) ||
        s_str("RECSD_ADMIN_TCP", cfg->admin_tcp, sizeof cfg->admin_tcp, err, errlen) ||
        s_actor_list("RECSD_ACTORS", cfg->actors, cfg->actor_instances, &cfg->actor_count, err,
                     errlen) ||
        s_actor_list("RECSD_REQUIRED_ACTORS", cfg->required, NULL, &cfg->required_count, err,
                     errlen) ||
        s_int("RECSD_HEARTBEAT_INTERVAL_MS", 10, 60000, &cfg->heartbeat_interval_ms, err, errlen) ||
        s_int("RECSD_HEARTBEAT_TIMEOUT_MS", 50, 600000, &cfg->heartbeat_timeout_ms, err, errlen) ||
        s_int("RECSD_START_TIMEOUT_MS", 100, 600000, &cfg->start_timeout_ms, err, errlen) ||
        s_int("RECSD_BACKOFF_MIN_MS", 1, 600000, &cfg->backoff_min_ms, err, errlen) ||
        s_int("RECSD_BACKOFF_MAX_MS", 1, 3600000, &cfg->backoff_max_ms, err, errlen) ||
        s_int("RECSD_BACKOFF_RESET_MS", 1, day, &cfg->backoff_reset_ms, err, errlen) ||
        s_int("RECSD_RESTART_MAX", 1, 1000, &cfg->restart_max, err, errlen) ||
        s_int("RECSD_RESTART_WINDOW_MS", 100, day, &cfg->restart_window_ms, err, errlen) ||
        s_int("RECSD_FAILED_RETRY_MS", 100, day, &cfg->failed_retry_ms, err, errlen) ||
        s_int("RECSD_SHUTDOWN_GRACE_MS", 100, 3600000, &cfg->shutdown_grace_ms, err, errlen) ||
        s_int("RECSD_DRAIN_DELAY_MS", 0, 600000, &cfg->drain_delay_ms, err, errlen) ||
        s_int("RECSD_STOP_TIMEOUT_MS", 10, 600000, &cfg->stop_timeout_ms, err, errlen) ||
        s_str("RECSD_PG_DSN", cfg->pg_dsn, sizeof cfg->pg_dsn, err, errlen) ||
        s_str("RECSD_REDIS_URL", cfg->redis_url, sizeof cfg->redis_url, err, errlen) ||
        s_str("RECSD_KAFKA_BROKERS", cfg->kafka_brokers, sizeof cfg->kafka_brokers, err, errlen) ||
        s_str("RECSD_ARTIFACT_URL", cfg->artifact_url, sizeof cfg->artifact_url, err, errlen) ||
        s_str("RECSD_MIGRATIONS_DIR", cfg->migrations_dir, sizeof cfg->migrations_dir, err,
              errlen) ||
        s_str("RECSD_KAFKA_GROUP", cfg->kafka_group, sizeof cfg->kafka_group, err, errlen) ||
        s_str("RECSD_TOPIC_VIDEO_WATCHED", cfg->topic_watched, sizeof cfg->topic_watched, err,
              errlen) ||
        s_str("RECSD_TOPIC_VIDEO_RATED", cfg->topic_rated, sizeof cfg->topic_rated, err, errlen) ||
        s_str("RECSD_TOPIC_WATCHLIST_UPDATED", cfg->topic_watchlist, sizeof cfg->topic_watchlist,
              err, errlen) ||
        s_str("RECSD_TOPIC_VIDEO_UPSERTED", cfg->topic_video_upserted,
              sizeof cfg->topic_video_upserted, err, errlen) ||
        s_str("RECSD_TOPIC_DEAD_LETTER", cfg->topic_dead_letter, sizeof cfg->topic_dead_letter, err,
              errlen) ||
        s_int("RECSD_INGEST_BATCH_MAX", 1, 100000, &cfg->ingest_batch_max, err, errlen) ||
        s_int("RECSD_INGEST_BATCH_MS", 1, 60000, &cfg->ingest_batch_ms, err, errlen) ||
        s_double("RECSD_RATING_MIN", 0, 1000, &cfg->rating_min, err, errlen) ||
        s_double("RECSD_RATING_MAX", 0, 1000, &cfg->rating_max, err, errlen) ||
        s_int("RECSD_EVENT_MAX_FUTURE_S", 0, 86400 * 365, &cfg->event_max_future_s, err, errlen) ||
        s_double("RECSD_SEEN_COMPLETION", 0, 1, &cfg->seen_completion, err, errlen) ||
        s_double("RECSD_WEIGHT_WATCH", 0, 100, &cfg->weight_watch, err, errlen) ||
        s_double("RECSD_WEIGHT_RATING", 0, 100, &cfg->weight_rating, err, errlen) ||
        s_double("RECSD_RATING_NEUTRAL", 0, 1000, &cfg->rating_neutral, err, errlen) ||
        s_double("RECSD_WEIGHT_WATCHLIST_ADD", 0, 100, &cfg->weight_watchlist_add, err, errlen) ||
        s_double("RECSD_WEIGHT_WATCHLIST_REMOVE", 0, 100, &cfg->weight_watchlist_remove, err,
                 errlen) ||
        s_int("RECSD_TRAIN_INTERVAL_S", 0, 86400 * 365, &cfg->train_interval_s, err, errlen) ||
        s_int("RECSD_TRAIN_POLL_MS", 10, 600000, &cfg->train_poll_ms, err, errlen) ||
        s_int("RECSD_ALS_FACTORS", 1, 1024, &cfg->als_factors, err, errlen) ||
        s_int("RECSD_ALS_ITERATIONS", 1, 1000, &cfg->als_iterations, err, errlen) ||
        s_double("RECSD_ALS_REGULARIZATION", 0, 1e6, &cfg->als_regularization, err, errlen) ||
        s_double("RECSD_ALS_ALPHA", 0, 1e6, &cfg->als_alpha, err, errlen) ||
        s_int("RECSD_TRAIN_THREADS", 0, 256, &cfg->train_threads, err, errlen) ||
        s_int("RECSD_TRAIN_SEED", 0, 2147483647, &cfg->train_seed, err, errlen) ||
        s_int("RECSD_EASE_MAX_ITEMS", 0, 50000, &cfg->ease_max_items, err, errlen) ||
        s_double("RECSD_EASE_LAMBDA", 0, 1e9, &cfg->ease_lambda, err, errlen) ||
        s_int("RECSD_NEIGHBOURS_K", 1, 1024, &cfg->neighbours_k, err, errlen) ||
        s_double("RECSD_HOLDOUT_FRACTION", 0.01, 0.9, &cfg->holdout_fraction, err, errlen) ||
        s_double("RECSD_QUALITY_TOLERANCE", 0, 1, &cfg->quality_tolerance, err, errlen) ||
        s_str("RECSD_ARTIFACT_CACHE_DIR", cfg->artifact_cache_dir, sizeof cfg->artifact_cache_dir,
              err, errlen) ||
        s_str("RECSD_S3_ENDPOINT", cfg->s3_endpoint, sizeof cfg->s3_endpoint, err, errlen) ||
        s_str("AWS_REGION", cfg->s3_region, sizeof cfg->s3_region, err, errlen) ||
        s_str("AWS_ACCESS_KEY_ID", cfg->s3_access_key, sizeof cfg->s3_access_key, err, errlen) ||
        s_str("AWS_SECRET_ACCESS_KEY", cfg->s3_secret_key, sizeof cfg->s3_secret_key, err,
              errlen) ||
        s_int("RECSD_ANN_MIN_VIDEOS", 0, 100000000, &cfg->ann_min_videos, err, errlen) ||
        s_int("RECSD_CACHE_L1_ENTRIES", 16, 10000000, &cfg->cache_l1_entries, err, errlen) ||
        s_int("RECSD_CACHE_L1_TTL_MS", 1, 86400000, &cfg->cache_l1_ttl_ms, err, errlen) ||
        s_int("RECSD_CACHE_TTL_S", 1, 86400 * 30, &cfg->cache_ttl_s, err, errlen) ||
        s_int("RECSD_CACHE_SEGMENT_TTL_S", 1, 86400 * 30, &cfg->cache_segment_ttl_s, err, errlen) ||
        s_int("RECSD_EXPERIMENT_WINDOW_S", 1, 30 * 86400, &cfg->experiment_window_s, err, errlen) ||
        s_str("RECSD_EXPERIMENT_LAYER", cfg->experiment_layer, sizeof cfg->experiment_layer, err,
              errlen) ||
        s_str("RECSD_DOCS_DIR", cfg->docs_dir, sizeof cfg->docs_dir, err, errlen) ||
        s_str("RECSD_AUTH", cfg->auth_mode, sizeof cfg->auth_mode, err, errlen) ||
        s_str("RECSD_JWT_HS256_SECRET", cfg->jwt_hs256_secret, sizeof cfg->jwt_hs256_secret, err,
              errlen) ||
        s_str("RECSD_JWT_PUBLIC_KEY_FILE", cfg->jwt_public_key_file,
              sizeof cfg->jwt_public_key_file, err, errlen) ||
        s_str("RECSD_JWT_JWKS_FILE", cfg->jwt_jwks_file, sizeof cfg->jwt_jwks_file, err, errlen) ||
        s_str("RECSD_JWT_ISSUER", cfg->jwt_issuer, sizeof cfg->jwt_issuer, err, errlen) ||
        s_str("RECSD_JWT_AUDIENCE", cfg->jwt_audience, sizeof cfg->jwt_audience, err, errlen) ||
        s_int("RECSD_JWT_LEEWAY_S", 0, 300, &cfg->jwt_leeway_s, err, errlen) ||
        s_str("RECSD_JWT_ROLES_CLAIM", cfg->jwt_roles_claim, sizeof cfg->jwt_roles_claim, err,
              errlen) ||
        s_int("RECSD_RATE_LIMIT", 0, 1000000, &cfg->rate_limit, err, errlen) ||
        s_str("RECSD_CORS_ORIGINS", cfg->cors_origins, sizeof cfg->cors_origins, err, errlen) ||
        s_str("RECSD_TLS_CERT_FILE", cfg->tls_cert_file, sizeof cfg->tls_cert_file, err, errlen) ||
        s_str("RECSD_TLS_KEY_FILE", cfg->tls_key_file, sizeof cfg->tls_key_file, err, errlen) ||
        s_str("RECSD_KAFKA_SECURITY_PROTOCOL", cfg->kafka_security_protocol,
              sizeof cfg->kafka_security_protocol, err, errlen) ||
        s_str("RECSD_KAFKA_SSL_CA_FILE", cfg->kafka_ssl_ca_file, sizeof cfg->kafka_ssl_ca_file, err,
              errlen) ||
        s_str("RECSD_KAFKA_SSL_CERT_FILE", cfg->kafka_ssl_cert_file,
              sizeof cfg->kafka_ssl_cert_file, err, errlen) ||
        s_str("RECSD_KAFKA_SSL_KEY_FILE", cfg->kafka_ssl_key_file, sizeof cfg->kafka_ssl_key_file,
              err, errlen) ||
        s_str("RECSD_KAFKA_SASL_MECHANISM", cfg->kafka_sasl_mechanism,
              sizeof cfg->kafka_sasl_mechanism, err, errlen) ||
        s_str("RECSD_KAFKA_SASL_USERNAME", cfg->kafka_sasl_username,
              sizeof cfg->kafka_sasl_username, err, errlen) ||
        s_str("RECSD_KAFKA_SASL_PASSWORD", cfg->kafka_sasl_password,
              sizeof cfg->kafka_sasl_password, err, errlen) ||
        s_int("RECSD_RATE_LIMIT_PERIOD_S", 1, 86400, &cfg->rate_limit_period_s, err, errlen) ||
        s_str("RECSD_API_KEYS", cfg->api_keys, sizeof cfg->api_keys, err, errlen) ||
        s_int("RECSD_CACHE_REDIS_TIMEOUT_MS", 1, 10000, &cfg->cache_redis_timeout_ms, err,
              errlen) ||
        s_str("RECSD_LOG_FILE", cfg->log_file, sizeof cfg->log_file, err, errlen) ||
        s_size("RECSD_LOG_FILE_MAX_BYTES", 4096, 1ull << 40, &cfg->log_file_max_bytes, err,
               errlen) ||
        s_int("RECSD_LOG_FILE_KEEP", 1, LOG_FILE_KEEP_MAX, &cfg->log_file_keep, err, errlen))
        return -1;

    if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0])
        return s_fail(err, errlen,
                      cfg->tls_cert_file[0] ? "RECSD_TLS_KEY_FILE" : "RECSD_TLS_CERT_FILE",
                      "HTTPS needs both RECSD_TLS_CERT_FILE and RECSD_TLS_KEY_FILE", "");
    if (strcmp(cfg->auth_mode, "auto") != 0 && strcmp(cfg->auth_mode, "required") != 0 &&
        strcmp(cfg->auth_mode, "off") != 0)
        return s_fail(err, errlen, "RECSD_AUTH", "must be auto, required or off", cfg->auth_mode);

    const char *level = getenv("RECSD_LOG_LEVEL");
    if (level && *level && log_level_parse(level, &cfg->log_level) != 0)
        return s_fail(err, errlen, "RECSD_LOG_LEVEL", "must be debug, info, warn or error", level);

    //  Relative paths would depend on each process's working directory; a
    //  trailing slash names a directory, which cannot be appended to.
    size_t log_len = strlen(cfg->log_file);
    if (log_len && (cfg->log_file[0] != '/' || cfg->log_file[log_len - 1] == '/'))
        return s_fail(err, errlen, "RECSD_LOG_FILE", "must be an absolute path to a file",
                      cfg->log_file);

    //  Cross-field rules.
    if (cfg->actor_count == 0)
        return s_fail(err, errlen, "RECSD_ACTORS", "names no actor", getenv("RECSD_ACTORS"));
    if (cfg->required_count < 0) {
        memcpy(cfg->required, cfg->actors, sizeof cfg->required);
        cfg->required_count = cfg->actor_count;
    }
    for (int i = 0; i < cfg->required_count; i++)
        if (!config_runs(cfg, cfg->required[i]))
            return s_fail(err, errlen, "RECSD_REQUIRED_ACTORS",
                          "names an actor that RECSD_ACTORS does not run",
                          getenv("RECSD_REQUIRED_ACTORS"));
    if (cfg->heartbeat_timeout_ms <= cfg->heartbeat_interval_ms) {
        char value[32];
        snprintf(value, sizeof value, "%d", cfg->heartbeat_timeout_ms);
        return s_fail(err, errlen, "RECSD_HEARTBEAT_TIMEOUT_MS",
                      "must be greater than RECSD_HEARTBEAT_INTERVAL_MS", value);
    }
    if (cfg->backoff_max_ms < cfg->backoff_min_ms) {
        char value[32];
        snprintf(value, sizeof value, "%d", cfg->backoff_max_ms);
        return s_fail(err, errlen, "RECSD_BACKOFF_MAX_MS",
                      "must not be less than RECSD_BACKOFF_MIN_MS", value);
    }
    if (cfg->rating_max <= cfg->rating_min) {
        char value[32];
        snprintf(value, sizeof value, "%g", cfg->rating_max);
        return s_fail(err, errlen, "RECSD_RATING_MAX", "must be greater than RECSD_RATING_MIN",
                      value);
    }
    if (cfg->rating_neutral < cfg->rating_min || cfg->rating_neutral > cfg->rating_max) {
        char value[32];
        snprintf(value, sizeof value, "%g", cfg->rating_neutral);
        return s_fail(err, errlen, "RECSD_RATING_NEUTRAL",
                      "must lie within RECSD_RATING_MIN..RECSD_RATING_MAX", value);
    }
    if (cfg->runtime_dir[0] != '/')
        return s_fail(err, errlen, "RECSD_RUNTIME_DIR", "must be an absolute path",
                      cfg->runtime_dir);
    //  The longest endpoint name is "http-gateway.http"-sized; sun_path is 108.
    if (strlen(cfg->runtime_dir) + 24 >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return s_fail(err, errlen, "RECSD_RUNTIME_DIR",
                      "too long for ipc:// socket paths (keep it under 84 bytes)",
                      cfg->runtime_dir);
    if (cfg->admin_tcp[0] && strncmp(cfg->admin_tcp, "tcp://127.0.0.1:", 16) != 0 &&
        strncmp(cfg->admin_tcp, "tcp://[::1]:", 12) != 0)
        return s_fail(err, errlen, "RECSD_ADMIN_TCP",
                      "must be a loopback endpoint (tcp://127.0.0.1:PORT)", cfg->admin_tcp);
    if (strncmp(cfg->artifact_url, "file://", 7) != 0 &&
        strncmp(cfg->artifact_url, "s3://", 5) != 0)
        return s_fail(err, errlen, "RECSD_ARTIFACT_URL", "must start with file:// or s3://",
                      cfg->artifact_url);
    return 0;
}

int config_endpoint(const config_t *cfg, const char *name, char *buf, size_t buflen)
{
    int n = snprintf(buf, buflen, "ipc://%s/%s", cfg->runtime_dir, name);
    if (n < 0 || (size_t)n >= buflen ||
        (size_t)n - 6 >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -1;
    return 0;
}

int config_instances(const config_t *cfg, const char *name)
{
    for (int i = 0; i < cfg->actor_count; i++)
        if (strcmp(cfg->actors[i], name) == 0)
            return cfg->actor_instances[i];
    return 0;
}

int config_instance_name(const config_t *cfg, const char *name, int index, char *buf, size_t buflen)
{
    int n = config_instances(cfg, name) > 1 ? snprintf(buf, buflen, "%s.%d", name, index)
                                            : snprintf(buf, buflen, "%s", name);
    return n < 0 || (size_t)n >= buflen ? -1 : 0;
}

int config_endpoints(const config_t *cfg, const char *name, char *buf, size_t buflen)
{
    int count = config_instances(cfg, name);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 1; i <= count; i++) {
        char instance[48], endpoint[160];
        if (config_instance_name(cfg, name, i, instance, sizeof instance) != 0 ||
            config_endpoint(cfg, instance, endpoint, sizeof endpoint) != 0)
            return -1;
        int n = snprintf(buf + used, buflen - used, "%s%s", used ? "," : "", endpoint);
        if (n < 0 || (size_t)n >= buflen - used)
            return -1;
        used += (size_t)n;
    }
    return count > 0 ? 0 : -1;
}
