/*  gateway_probe.c: PostgreSQL/Redis checks and the popularity reload, off the
    main loop (see gateway_probe.h). */
#include "gateway_probe.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_conn.h"
#include "log.h"
#include "model_registry.h"
#include "pg_conn.h"
#include "popular_list.h"

#define REDIS_TIMEOUT_MS 500
#define PG_PING_TIMEOUT_S 1
#define PG_CONNECT_TIMEOUT_S 2

struct gateway_probe_t {
    const config_t *cfg;
    gateway_state_t *state;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop; //  under lock

    //  Thread-owned:
    PGconn *conn;
    bool popular_failing; //  log the first failure and the recovery, not every retry
    redis_addr_t redis;
    char redis_err[256]; //  non-empty if RECSD_REDIS_URL did not parse
};

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_check_deps(gateway_probe_t *self)
{
    gateway_check_t postgres, redis;
    if (pg_conn_ping(self->cfg->pg_dsn, PG_PING_TIMEOUT_S))
        gateway_check_set(&postgres, true, "accepting connections");
    else
        gateway_check_set(&postgres, false, "not accepting connections");

    char detail[sizeof redis.detail];
    if (self->redis_err[0]) {
        snprintf(detail, sizeof detail, "bad RECSD_REDIS_URL: %.200s", self->redis_err);
        gateway_check_set(&redis, false, detail);
    } else if (redis_conn_ping(&self->redis, REDIS_TIMEOUT_MS, detail, sizeof detail) == 0)
        gateway_check_set(&redis, true, detail);
    else
        gateway_check_set(&redis, false, detail);
    gateway_state_set_deps(self->state, &postgres, &redis);
}

static void s_reload_popular(gateway_probe_t *self)
{
    char err[512] = "";
    if (!self->conn) {
        self->conn =
            pg_conn_open(self->cfg->pg_dsn, "http-gateway", PG_CONNECT_TIMEOUT_S, err, sizeof err);
        //  A locked table or a slow plan must not stall this thread (it
        //  also runs the readiness checks) nor hold up the gateway's stop.
        if (self->conn && pg_conn_statement_timeout(self->conn, 2000, err, sizeof err) != 0) {
            PQfinish(self->conn);
            self->conn = NULL;
        }
    }
    popular_list_t *list = NULL;
    if (self->conn)
        list = popular_list_load(self->conn, GATEWAY_POPULAR_TOP, err, sizeof err);
    if (!list) {
        //  Keep the last good copy; reconnect from scratch next time, since
        //  we cannot tell a dropped connection from a failed query cheaply.
        if (self->conn) {
            PQfinish(self->conn);
            self->conn = NULL;
        }
        for (char *c = err; *c; c++) //  libpq messages span lines
            if (*c == '\n' || *c == '\t')
                *c = ' ';
        if (!self->popular_failing)
            log_warn("popularity reload failed, keeping the last copy (%zu items): %s",
                     gateway_state_popular_size(self->state), err);
        self->popular_failing = true;
        return;
    }
    if (self->popular_failing)
        log_info("popularity reload works again");
    self->popular_failing = false;
    size_t size = popular_list_size(list);
    gateway_state_set_popular(self->state, &list);
    log_debug("popularity copy reloaded: %zu items", size);
}

//  The registry's active model per type: when it changes, the cache stops
//  serving the lists of the model it trusted (gateway_state.h). On a
//  failed query the last values stay (the next popularity reload
//  reconnects).
static void s_reload_active(gateway_probe_t *self)
{
    static const char *types[4] = {"hybrid", "collaborative", "content", "popularity"};
    if (!self->conn)
        return;
    for (int i = 0; i < 4; i++) {
        model_registry_active_t active;
        char err[256];
        int rc = model_registry_active(self->conn, types[i], &active, err, sizeof err);
        if (rc == MODEL_REGISTRY_OK)
            gateway_state_set_registry_model(self->state, types[i], active.model_id);
        else if (rc == MODEL_REGISTRY_NOT_FOUND)
            gateway_state_set_registry_model(self->state, types[i], "");
        else {
            log_debug("active models not refreshed: %s", err);
            return;
        }
    }
}

//  Sleeps until deadline_ms (monotonic) or until stopped. Returns true if
//  stopped.
static bool s_sleep_until(gateway_probe_t *self, uint64_t deadline_ms)
{
    pthread_mutex_lock(&self->lock);
    while (!self->stop) {
        uint64_t now = s_now_ms();
        if (now >= deadline_ms)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t wait = deadline_ms - now;
        until.tv_sec += (time_t)(wait / 1000);
        until.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&self->wake, &self->lock, &until);
        if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
            break; //  cannot happen with valid arguments; do not spin
    }
    bool stop = self->stop;
    pthread_mutex_unlock(&self->lock);
    return stop;
}

static void *s_run(void *arg)
{
    gateway_probe_t *self = arg;
    uint64_t next_check = 0, next_popular = 0;
    for (;;) {
        uint64_t now = s_now_ms();
        if (now >= next_popular) {
            s_reload_popular(self);
            next_popular = s_now_ms() + (uint64_t)self->cfg->popular_refresh_ms;
        }
        if (now >= next_check) {
            s_check_deps(self);
            s_reload_active(self);
            next_check = s_now_ms() + (uint64_t)self->cfg->readiness_interval_ms;
        }
        uint64_t next = next_check < next_popular ? next_check : next_popular;
        if (s_sleep_until(self, next))
            break;
    }
    return NULL;
}

gateway_probe_t *gateway_probe_new(const config_t *cfg, gateway_state_t *state, char *err,
                                   size_t errlen)
{
    gateway_probe_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->state = state;
    if (redis_conn_parse(cfg->redis_url, &self->redis, self->redis_err, sizeof self->redis_err) !=
        0)
        log_error("RECSD_REDIS_URL \"%s\" not understood: %s; the redis check will fail",
                  cfg->redis_url, self->redis_err);
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        free(self);
        snprintf(err, errlen, "cannot create a condition variable");
        return NULL;
    }
    //  Monotonic, so that a wall-clock jump does not stall the checks.
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&self->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0 || pthread_mutex_init(&self->lock, NULL) != 0) {
        if (rc == 0)
            pthread_cond_destroy(&self->wake);
        free(self);
        snprintf(err, errlen, "cannot create the probe's lock");
        return NULL;
    }
    rc = pthread_create(&self->thread, NULL, s_run, self);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the probe thread: %s", strerror(rc));
        gateway_probe_destroy(&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void gateway_probe_destroy(gateway_probe_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_probe_t *self = *self_p;
    if (self->started) {
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    if (self->conn)
        PQfinish(self->conn);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}
