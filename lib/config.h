/*  config.h: the service configuration, read from the environment.

    Every variable has a default; config_load() validates all of them before
    anything is forked, and names the offending variable in its error. The
    table in README.md documents each one; keep the two in step.
*/
#ifndef RECSD_CONFIG_H
#define RECSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

//  Exit status for invalid configuration (sysexits.h EX_CONFIG).
#define RECSD_EXIT_CONFIG 78

#define CONFIG_MAX_ACTORS 8
#define CONFIG_MAX_INSTANCES 8 //  processes per actor kind (RECSD_ACTORS name:N)
#define CONFIG_PATH_MAX 256

typedef struct {
    //  HTTP gateway
    char http_addr[64];
    int http_port;
    int http_threads;
    int http_max_connections;
    int ranker_deadline_ms;    //  gateway -> ranker request deadline
    int popular_refresh_ms;    //  how often the popularity copy is reloaded
    int readiness_interval_ms; //  how often dependency checks run

    //  Supervisor
    char runtime_dir[CONFIG_PATH_MAX];
    char admin_tcp[64];                     //  optional, e.g. tcp://127.0.0.1:5590; "" = off
    char actors[CONFIG_MAX_ACTORS][32];     //  which actors this pod runs, in start order
    int actor_instances[CONFIG_MAX_ACTORS]; //  processes of each (1 unless name:N)
    int actor_count;
    char required[CONFIG_MAX_ACTORS][32]; //  actors /health/ready requires
    int required_count;
    int heartbeat_interval_ms;
    int heartbeat_timeout_ms;
    int start_timeout_ms; //  spawned -> first heartbeat
    int backoff_min_ms;
    int backoff_max_ms;
    int backoff_reset_ms;  //  a clean run this long resets the back-off
    int restart_max;       //  intensity: at most restart_max restarts...
    int restart_window_ms; //  ...in this window, else the actor is failed
    int failed_retry_ms;   //  a failed actor is retried after this long
    int shutdown_grace_ms; //  SIGTERM -> exit, SIGKILL to stragglers after
    int drain_delay_ms;    //  readiness false -> stop accepting
    int stop_timeout_ms;   //  per actor: STOP -> SIGKILL

    //  Dependencies
    char pg_dsn[512];
    char redis_url[256];
    char kafka_brokers[256];
    char artifact_url[CONFIG_PATH_MAX];
    char migrations_dir[CONFIG_PATH_MAX];

    //  Ingestion (event-ingestor, recsd import events)
    char kafka_group[64];           //  consumer group of the ingestors
    char topic_watched[128];        //  VideoWatched events
    char topic_rated[128];          //  VideoRated events
    char topic_watchlist[128];      //  WatchlistUpdated events
    char topic_video_upserted[128]; //  catalogue changes
    char topic_dead_letter[128];    //  invalid events, with the reason
    int ingest_batch_max;           //  events per PostgreSQL transaction, at most
    int ingest_batch_ms;            //  a partial batch is written after this long
    double rating_min;              //  rating scale
    double rating_max;
    int event_max_future_s; //  how far ahead of now a timestamp may be
    double seen_completion; //  a watch this complete (0..1) is "seen": never recommended

    //  Training (trainer). Per-event-type weights turn interactions into
    //  signed preference strengths (training_data.h); a negative strength
    //  counts against the video.
    double weight_watch;            //  x watch completion (0..1)
    double weight_rating;           //  x (rating - neutral) scaled to -1..1
    double rating_neutral;          //  a rating at this value says nothing
    double weight_watchlist_add;    //  > 0
    double weight_watchlist_remove; //  counts against: subtracted
    int train_interval_s;           //  scheduled retraining period; 0 = off
    int train_poll_ms;              //  queue poll when no NOTIFY arrives
    int als_factors;
    int als_iterations;
    double als_regularization;
    double als_alpha;
    int train_threads; //  0 = number of CPUs
    int train_seed;
    int ease_max_items; //  EASE runs on at most this many videos; 0 = off
    double ease_lambda;
    int neighbours_k;         //  neighbours per video (content, item-kNN)
    double holdout_fraction;  //  latest share of each user's events held out
    double quality_tolerance; //  a new model may be this much (relative NDCG@10) worse than the
                              //  active one
    char artifact_cache_dir[CONFIG_PATH_MAX]; //  local copies of s3:// artifacts ("" = runtime dir)
    char s3_endpoint[256];                    //  "" = AWS; http://127.0.0.1:9000 for MinIO
    char s3_region[32];
    char s3_access_key[128];
    char s3_secret_key[128];

    //  Serving (ranker)
    int ann_min_videos; //  collaborative catalogues this large are served through FAISS; 0 = never

    //  Recommendation cache (gateway)
    int cache_l1_entries;    //  in-process entries per gateway; 0 = off
    int cache_l1_ttl_ms;     //  short: other replicas cannot evict it
    int cache_ttl_s;         //  Redis level, user lists
    int cache_segment_ttl_s; //  Redis level, segment lists (shared: kept shorter)

    //  A/B experiments
    char experiment_layer[65]; //  the layer whose live experiment applies without ?experiment_id=
    int experiment_window_s;   //  a VideoWatched this soon after an exposure is a conversion
    char docs_dir[CONFIG_PATH_MAX]; //  /openapi.json, /docs, /redoc assets ("" = not served)

    //  API authentication (lib/auth.h). auth_mode: "auto" (required when
    //  a credential is configured, else off with a warning), "required"
    //  (the gateway refuses to start without one), "off".
    char auth_mode[16];
    char jwt_hs256_secret[512];
    char jwt_public_key_file[CONFIG_PATH_MAX];
    char jwt_jwks_file[CONFIG_PATH_MAX];
    char jwt_issuer[256];
    char jwt_audience[256];
    int jwt_leeway_s;
    char jwt_roles_claim[128];
    char api_keys[10240]; //  api_keys.h's format: "[name@]sha256:<hex>=role+role;..."
    int rate_limit;       //  requests per user per rate_limit_period_s (GCRA, Redis); 0 = off
    int rate_limit_period_s;
    char cors_origins[2048];             //  allowed browser origins, comma-separated ("" = none)
    char tls_cert_file[CONFIG_PATH_MAX]; //  PEM certificate (chain): the gateway serves HTTPS
    char tls_key_file[CONFIG_PATH_MAX];  //  its private key
    //  Kafka clients' TLS/SASL (kafka_security.h)
    char kafka_security_protocol[32];
    char kafka_ssl_ca_file[CONFIG_PATH_MAX];
    char kafka_ssl_cert_file[CONFIG_PATH_MAX];
    char kafka_ssl_key_file[CONFIG_PATH_MAX];
    char kafka_sasl_mechanism[32];
    char kafka_sasl_username[256];
    char kafka_sasl_password[256];
    int cache_redis_timeout_ms; //  connect and each command

    //  Logs (lib/log.h). log_file "" = stderr only; else `recsd run` and its
    //  actors append to it, rotating at log_file_max_bytes and keeping
    //  log_file_keep rotated files (log_file.h).
    log_level_t log_level;
    char log_file[CONFIG_PATH_MAX];
    uint64_t log_file_max_bytes;
    int log_file_keep;
} config_t;

//  Fills *cfg from the environment. Returns 0, or -1 with a message naming
//  the variable written to err (never NULL-terminated short of errlen).
int config_load(config_t *cfg, char *err, size_t errlen);

//  True if name is one of the five actor names.
bool config_actor_known(const char *name);

//  True if the configuration runs actor name.
bool config_runs(const config_t *cfg, const char *name);

//  Number of processes of actor `name` this configuration runs (0: none).
int config_instances(const config_t *cfg, const char *name);

//  Name of instance `index` (1-based) of actor `name`: the actor name
//  itself when it runs once, "name.INDEX" when it runs several times. The
//  instance name is the process's identity on the control socket, its
//  log name, and (for the ranker) the name of its ipc endpoint. Returns 0,
//  or -1 if it does not fit.
int config_instance_name(const config_t *cfg, const char *name, int index, char *buf,
                         size_t buflen);

//  Comma-separated ipc endpoints of every instance of `name`, for a socket
//  that connects to all of them (zsock_attach). Returns 0, or -1.
int config_endpoints(const config_t *cfg, const char *name, char *buf, size_t buflen);

//  Builds "ipc://<runtime_dir>/<name>" into buf. Returns 0, or -1 if it does
//  not fit (ipc paths are limited to 107 bytes by sun_path).
int config_endpoint(const config_t *cfg, const char *name, char *buf, size_t buflen);

#endif
