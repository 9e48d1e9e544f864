/*  redis_pool.h: a small pool of Redis connections shared by many threads,
    which stops talking to Redis for a while after a failure.

    Each slot is one connection behind its own mutex. acquire takes a free
    slot (trylock, round-robin from a rotating start), else waits for one;
    it connects the slot if it has no connection yet (redis_conn_connect,
    so the timeout bounds the connect and every later command).

    Failure back-off: when a connect or a command fails (redis_pool_fail,
    redis_pool_down) the pool is marked down for backoff_ms: during that
    time acquire returns NULL at once and nobody sends anything. When it
    is over, one caller (the one that moves the retry time forward) probes
    with a reconnect while the others keep getting NULL. Every failure also
    bumps a generation counter, so every slot drops its connection (most
    likely as dead as the one that failed) before its next use.

    Health: redis_pool_up is true once a call succeeded (redis_pool_ok)
    and false after a failure. The pool logs the change, once per outage:
        "<name>: Redis unavailable (<what>: <why>), retrying every <n> ms"
        "<name>: Redis reachable"          (the first success)
        "<name>: Redis reachable again"    (the first success after an outage)
    It counts failed connects and commands (redis_pool_errors) and keeps
    the text of the last one (redis_pool_last_error).

    Thread safety: every function except _new and _destroy may be called
    from any number of threads at once. A slot belongs to the thread that
    acquired it until that thread releases it.

    Ownership: the caller owns the pool; a slot and its context are lent
    between acquire and release (never redisFree the context).
*/
#ifndef RECSD_REDIS_POOL_H
#define RECSD_REDIS_POOL_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_POOL_SIZE_MAX 64

typedef struct redis_pool_t redis_pool_t;
typedef struct redis_pool_slot_t redis_pool_slot_t;

//  Why acquire returned NULL.
typedef enum {
    REDIS_POOL_DOWN = 0,       //  backing off after a failure, or another caller is probing
    REDIS_POOL_CONNECT_FAILED, //  this call's connect failed (counted, pool marked down)
    REDIS_POOL_BUSY,           //  no slot became free within wait_ms
} redis_pool_miss_t;

//  Returns a pool of size (1..REDIS_POOL_SIZE_MAX) connections to url
//  (see redis_conn.h), with timeout_ms (> 0) for each connect and command
//  and backoff_ms (>= 0; 0 acts as 1) of silence after a failure. name
//  starts the pool's log lines ("rate limiter"); it is copied. Does not
//  connect. Returns NULL with the reason in err: "Redis URL: <why>" for a
//  bad url, else a bad argument or out of memory.
redis_pool_t *redis_pool_new(const char *url, int timeout_ms, int backoff_ms, int size,
                             const char *name, char *err, size_t errlen);

//  Closes every connection and frees the pool. Idempotent, sets *self_p to
//  NULL. No slot may be acquired and no other thread may use the pool.
void redis_pool_destroy(redis_pool_t **self_p);

//  Returns a slot, locked for the caller, with a live connection; or NULL
//  with the reason in *miss (may be NULL) when the pool is backing off,
//  the connect failed, or, with wait_ms >= 0, no slot became free within
//  wait_ms (wait_ms < 0: wait as long as it takes). Hand the slot back
//  with redis_pool_release.
redis_pool_slot_t *redis_pool_acquire(redis_pool_t *self, int wait_ms, redis_pool_miss_t *miss);

//  The slot's connection (borrowed); NULL after redis_pool_fail.
redisContext *redis_pool_context(redis_pool_slot_t *slot);

//  Unlocks the slot for the next caller and sets *slot_p to NULL. Does
//  nothing for NULL.
void redis_pool_release(redis_pool_t *self, redis_pool_slot_t **slot_p);

//  The slot's connection failed (hiredis returned no reply): counts the
//  error, frees the connection and marks the pool down (what names the
//  command, the reason is the context's error text). The caller still
//  releases the slot.
void redis_pool_fail(redis_pool_t *self, redis_pool_slot_t *slot, const char *what);

//  Redis answered, but in a way that should stop traffic for a back-off
//  (READONLY, OOM, BUSY ...): counts the error and marks the pool down as
//  redis_pool_fail does, without a slot.
void redis_pool_down(redis_pool_t *self, const char *what, const char *why);

//  Redis answered with an error that concerns only this command (a
//  WRONGTYPE key): counts the error and records "what: why" as the last
//  error; no back-off, the pool stays up.
void redis_pool_error(redis_pool_t *self, const char *what, const char *why);

//  A command got its answer: marks the pool up (logs the return after an
//  outage). Cheap when already up.
void redis_pool_ok(redis_pool_t *self);

//  True when the last call succeeded (redis_pool_ok since the last
//  failure). False before the first success. Cheap (atomic).
bool redis_pool_up(redis_pool_t *self);

//  Failed connects and commands so far (fail, down, error).
uint64_t redis_pool_errors(redis_pool_t *self);

//  Copies "what: why" of the last failure into out ("not connected yet"
//  before any). Returns out.
char *redis_pool_last_error(redis_pool_t *self, char *out, size_t outlen);

#endif
