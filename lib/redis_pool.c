/*  redis_pool.c: pooled Redis connections with a back-off after a failure
    (see redis_pool.h). */
#include "redis_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "redis_conn.h"

enum { STATE_UNKNOWN, STATE_UP, STATE_DOWN };

struct redis_pool_slot_t {
    pthread_mutex_t mutex;
    redisContext *ctx; //  NULL until connected, and after a failure
    uint64_t generation;
};

struct redis_pool_t {
    redis_addr_t addr;
    char name[64];
    int timeout_ms, backoff_ms;
    redis_pool_slot_t *slots;
    int slot_count; //  initialised slots, for destroy
    atomic_uint next_slot;
    //  retry_at_ms != 0: down, and nobody sends before that monotonic time;
    //  the caller that moves it forward is the one that probes. A failure
    //  bumps generation so every slot drops its connection before reuse.
    atomic_int_fast64_t retry_at_ms;
    atomic_uint_fast64_t generation;
    atomic_int state;
    atomic_uint_fast64_t errors;
    pthread_mutex_t error_mutex;
    char last_error[160];
};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  The end of the back-off that starts now. Never 0 (0 means "up").
static int64_t s_retry_time(redis_pool_t *self)
{
    return s_mono_ms() + (self->backoff_ms ? self->backoff_ms : 1);
}

redis_pool_t *redis_pool_new(const char *url, int timeout_ms, int backoff_ms, int size,
                             const char *name, char *err, size_t errlen)
{
    if (!url || timeout_ms <= 0 || backoff_ms < 0 || size < 1 || size > REDIS_POOL_SIZE_MAX) {
        snprintf(err, errlen,
                 "invalid Redis pool: a URL, timeout > 0, back-off >= 0 and 1..%d "
                 "connections are needed",
                 REDIS_POOL_SIZE_MAX);
        return NULL;
    }
    redis_addr_t addr;
    char why[128];
    if (redis_conn_parse(url, &addr, why, sizeof why) != 0) {
        snprintf(err, errlen, "Redis URL: %s", why);
        return NULL;
    }
    redis_pool_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->addr = addr;
    snprintf(self->name, sizeof self->name, "%s", name && *name ? name : "redis pool");
    self->timeout_ms = timeout_ms;
    self->backoff_ms = backoff_ms;
    atomic_init(&self->next_slot, 0);
    atomic_init(&self->retry_at_ms, 0);
    atomic_init(&self->generation, 1);
    atomic_init(&self->state, STATE_UNKNOWN);
    atomic_init(&self->errors, 0);
    pthread_mutex_init(&self->error_mutex, NULL);
    snprintf(self->last_error, sizeof self->last_error, "not connected yet");
    self->slots = calloc((size_t)size, sizeof *self->slots);
    if (!self->slots) {
        snprintf(err, errlen, "out of memory");
        redis_pool_destroy(&self);
        return NULL;
    }
    for (int i = 0; i < size; i++) {
        pthread_mutex_init(&self->slots[i].mutex, NULL);
        self->slot_count++;
    }
    return self;
}

void redis_pool_destroy(redis_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    redis_pool_t *self = *self_p;
    //  slot_count counts initialised slots: 0 when the array itself failed.
    for (int i = 0; self->slots && i < self->slot_count; i++) {
        if (self->slots[i].ctx)
            redisFree(self->slots[i].ctx);
        pthread_mutex_destroy(&self->slots[i].mutex);
    }
    free(self->slots);
    pthread_mutex_destroy(&self->error_mutex);
    free(self);
    *self_p = NULL;
}

static void s_set_error(redis_pool_t *self, const char *what, const char *why)
{
    pthread_mutex_lock(&self->error_mutex);
    snprintf(self->last_error, sizeof self->last_error, "%s: %s", what, why);
    pthread_mutex_unlock(&self->error_mutex);
}

//  Counts the failure, stops all traffic for the back-off, makes every
//  slot reconnect afterwards, and logs the first failure of an outage.
static void s_mark_down(redis_pool_t *self, const char *what, const char *why)
{
    atomic_fetch_add_explicit(&self->errors, 1, memory_order_relaxed);
    atomic_fetch_add(&self->generation, 1);
    atomic_store(&self->retry_at_ms, s_retry_time(self));
    if (atomic_exchange(&self->state, STATE_DOWN) != STATE_DOWN)
        log_warn("%s: Redis unavailable (%s: %.200s), retrying every %d ms", self->name, what, why,
                 self->backoff_ms);
    s_set_error(self, what, why);
}

//  Locks a slot: any free one (from a rotating start, so the load spreads),
//  else waits for one at most wait_ms (< 0: as long as it takes; a command
//  holds a slot at most about the timeout). NULL if none came free.
static redis_pool_slot_t *s_lock_slot(redis_pool_t *self, int wait_ms)
{
    unsigned start = atomic_fetch_add_explicit(&self->next_slot, 1, memory_order_relaxed);
    unsigned count = (unsigned)self->slot_count;
    if (count == 0)
        return NULL; //  cannot happen: redis_pool_new makes at least one slot
    for (unsigned i = 0; i < count; i++) {
        redis_pool_slot_t *candidate = &self->slots[(start + i) % count];
        if (pthread_mutex_trylock(&candidate->mutex) == 0)
            return candidate;
    }
    redis_pool_slot_t *slot = &self->slots[start % count];
    if (wait_ms < 0) {
        pthread_mutex_lock(&slot->mutex);
        return slot;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&slot->mutex, &deadline) == 0 ? slot : NULL;
}

redis_pool_slot_t *redis_pool_acquire(redis_pool_t *self, int wait_ms, redis_pool_miss_t *miss)
{
    redis_pool_miss_t unused;
    if (!miss)
        miss = &unused;
    *miss = REDIS_POOL_DOWN;
    int64_t retry_at = atomic_load(&self->retry_at_ms);
    if (retry_at && s_mono_ms() < retry_at)
        return NULL;
    redis_pool_slot_t *slot = s_lock_slot(self, wait_ms);
    if (!slot) {
        *miss = REDIS_POOL_BUSY;
        return NULL;
    }
    if (slot->ctx && slot->generation != atomic_load(&self->generation)) {
        redisFree(slot->ctx);
        slot->ctx = NULL;
    }
    if (slot->ctx)
        return slot;
    int64_t probe_until = 0;
    retry_at = atomic_load(&self->retry_at_ms);
    if (retry_at) {
        //  Down and the back-off is over: one caller probes, by moving the
        //  retry time forward; the others keep skipping Redis meanwhile.
        probe_until = s_retry_time(self);
        if (s_mono_ms() < retry_at ||
            !atomic_compare_exchange_strong(&self->retry_at_ms, &retry_at, probe_until)) {
            pthread_mutex_unlock(&slot->mutex);
            return NULL;
        }
    }
    char why[160];
    slot->ctx = redis_conn_connect(&self->addr, self->timeout_ms, why, sizeof why);
    if (!slot->ctx) {
        s_mark_down(self, "connect", why);
        pthread_mutex_unlock(&slot->mutex);
        *miss = REDIS_POOL_CONNECT_FAILED;
        return NULL;
    }
    slot->generation = atomic_load(&self->generation);
    //  The probe got through: the others may connect again at once, unless
    //  a failure elsewhere started a new back-off meanwhile.
    if (probe_until)
        atomic_compare_exchange_strong(&self->retry_at_ms, &probe_until, 0);
    return slot;
}

redisContext *redis_pool_context(redis_pool_slot_t *slot)
{
    return slot ? slot->ctx : NULL;
}

void redis_pool_release(redis_pool_t *self, redis_pool_slot_t **slot_p)
{
    (void)self; //  the slot knows its lock; self keeps the method shape
    if (!slot_p || !*slot_p)
        return;
    pthread_mutex_unlock(&(*slot_p)->mutex);
    *slot_p = NULL;
}

void redis_pool_fail(redis_pool_t *self, redis_pool_slot_t *slot, const char *what)
{
    if (!slot || !slot->ctx)
        return;
    s_mark_down(self, what, slot->ctx->errstr[0] ? slot->ctx->errstr : "I/O error");
    redisFree(slot->ctx);
    slot->ctx = NULL;
}

void redis_pool_down(redis_pool_t *self, const char *what, const char *why)
{
    s_mark_down(self, what, why && *why ? why : "error");
}

void redis_pool_error(redis_pool_t *self, const char *what, const char *why)
{
    atomic_fetch_add_explicit(&self->errors, 1, memory_order_relaxed);
    s_set_error(self, what, why && *why ? why : "error");
}

void redis_pool_ok(redis_pool_t *self)
{
    if (atomic_load_explicit(&self->state, memory_order_relaxed) == STATE_UP)
        return;
    int was = atomic_exchange(&self->state, STATE_UP);
    if (was == STATE_DOWN)
        log_info("%s: Redis reachable again", self->name);
    else if (was == STATE_UNKNOWN)
        log_info("%s: Redis reachable", self->name);
}

bool redis_pool_up(redis_pool_t *self)
{
    return atomic_load(&self->state) == STATE_UP;
}

uint64_t redis_pool_errors(redis_pool_t *self)
{
    return atomic_load_explicit(&self->errors, memory_order_relaxed);
}

char *redis_pool_last_error(redis_pool_t *self, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return out;
    pthread_mutex_lock(&self->error_mutex);
    snprintf(out, outlen, "%s", self->last_error);
    pthread_mutex_unlock(&self->error_mutex);
    return out;
}
