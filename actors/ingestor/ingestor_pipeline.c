/*  ingestor_pipeline.c: the writer thread and the hand-off of one batch
    at a time (see ingestor_pipeline.h). */
#include "ingestor_pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingestor_writer.h"
#include "log.h"

typedef enum {
    S_IDLE,     //  nothing in flight
    S_QUEUED,   //  submitted: the thread writes it, retrying while it fails
    S_WRITTEN,  //  committed in PostgreSQL, waiting to be taken back
    S_GIVEN_UP, //  cancelled, nothing written, waiting to be taken back
} s_state_t;

struct ingestor_pipeline_t {
    ingestor_writer_t *writer; //  the thread's only, once started
    pthread_t thread;
    bool started;

    //  Shared with the thread, under lock.
    pthread_mutex_t lock;
    pthread_cond_t wake; //  to the thread: a batch, a cancel, the end
    pthread_cond_t done; //  to the owner: finished, or an attempt failed
    s_state_t state;
    ingestor_batch_t *batch; //  in flight (borrowed from the owner)
    bool cancel;
    bool terminated;
    ingestor_outcome_t outcome;
    int64_t submitted_ms;

    atomic_bool failing; //  read by the owner without the lock

    //  The owner's only.
    bool in_flight;
    size_t in_flight_size;
};

//  The clock of the condition variables (CLOCK_MONOTONIC), in ms.
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Waits on cond until ms from now (ms > 0). The caller holds the lock.
static void s_timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    int rc = pthread_cond_timedwait(cond, lock, &ts);
    if (rc != 0 && rc != ETIMEDOUT)
        log_warn("writer thread: condition wait failed: %s", strerror(rc));
}

//  One attempt at the batch in flight, the lock released meanwhile.
static void s_attempt(ingestor_pipeline_t *self)
{
    ingestor_batch_t *batch = self->batch;
    pthread_mutex_unlock(&self->lock);
    store_result_t result;
    int rc = ingestor_writer_write(self->writer, batch, s_now_ms(), &result);
    int64_t end = s_now_ms();
    pthread_mutex_lock(&self->lock);
    self->outcome.attempts++;
    self->outcome.write_ms = end - self->submitted_ms;
    if (rc == 0) {
        self->outcome.written = true;
        self->outcome.result = result;
        self->state = S_WRITTEN;
    }
    atomic_store(&self->failing, rc != 0);
    pthread_cond_broadcast(&self->done);
}

static void *s_run(void *arg)
{
    ingestor_pipeline_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->terminated) {
        if (self->state != S_QUEUED) {
            pthread_cond_wait(&self->wake, &self->lock);
            continue;
        }
        if (self->cancel) {
            self->state = S_GIVEN_UP;
            pthread_cond_broadcast(&self->done);
            continue;
        }
        //  First attempt at once; after a failure, the writer's back-off.
        int64_t wait = ingestor_writer_retry_in(self->writer, s_now_ms());
        if (wait > 0) {
            s_timed_wait(&self->wake, &self->lock, wait);
            continue;
        }
        s_attempt(self);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

ingestor_pipeline_t *ingestor_pipeline_new(const config_t *cfg, const event_rules_t *rules,
                                           char *err, size_t errlen)
{
    ingestor_pipeline_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "writer thread: out of memory");
        return NULL;
    }
    atomic_init(&self->failing, false);
    pthread_condattr_t attr;
    bool attr_made = pthread_condattr_init(&attr) == 0;
    bool ok = attr_made && pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
              pthread_mutex_init(&self->lock, NULL) == 0;
    if (ok && pthread_cond_init(&self->wake, &attr) != 0) {
        pthread_mutex_destroy(&self->lock);
        ok = false;
    }
    if (ok && pthread_cond_init(&self->done, &attr) != 0) {
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->lock);
        ok = false;
    }
    if (attr_made)
        pthread_condattr_destroy(&attr);
    if (!ok) {
        snprintf(err, errlen, "writer thread: cannot create its lock");
        free(self);
        return NULL;
    }
    self->writer = ingestor_writer_new(cfg, rules);
    int rc = self->writer ? pthread_create(&self->thread, NULL, s_run, self) : ENOMEM;
    if (rc != 0) {
        snprintf(err, errlen, "writer thread: cannot start: %s", strerror(rc));
        goto err;
    }
    self->started = true;
    return self;

err:
    ingestor_pipeline_destroy(&self);
    return NULL;
}

void ingestor_pipeline_destroy(ingestor_pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestor_pipeline_t *self = *self_p;
    if (self->started) {
        pthread_mutex_lock(&self->lock);
        self->terminated = true;
        pthread_cond_broadcast(&self->wake);
        pthread_mutex_unlock(&self->lock);
        //  Returns once the attempt under way, if any, has ended.
        int rc = pthread_join(self->thread, NULL);
        if (rc != 0)
            log_warn("writer thread: join failed: %s", strerror(rc));
    }
    ingestor_writer_destroy(&self->writer);
    pthread_cond_destroy(&self->done);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int ingestor_pipeline_submit(ingestor_pipeline_t *self, ingestor_batch_t *batch)
{
    if (self->in_flight)
        return -1;
    self->in_flight = true;
    self->in_flight_size = ingestor_batch_size(batch);
    pthread_mutex_lock(&self->lock);
    self->batch = batch;
    self->state = S_QUEUED;
    self->cancel = false;
    self->outcome = (ingestor_outcome_t){.written = false};
    self->submitted_ms = s_now_ms();
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    return 0;
}

bool ingestor_pipeline_in_flight(const ingestor_pipeline_t *self)
{
    return self->in_flight;
}

size_t ingestor_pipeline_in_flight_size(const ingestor_pipeline_t *self)
{
    return self->in_flight ? self->in_flight_size : 0;
}

ingestor_batch_t *ingestor_pipeline_take(ingestor_pipeline_t *self, ingestor_outcome_t *outcome)
{
    if (!self->in_flight)
        return NULL;
    ingestor_batch_t *batch = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->state == S_WRITTEN || self->state == S_GIVEN_UP) {
        batch = self->batch;
        *outcome = self->outcome;
        self->batch = NULL;
        self->state = S_IDLE;
    }
    pthread_mutex_unlock(&self->lock);
    if (batch) {
        self->in_flight = false;
        self->in_flight_size = 0;
    }
    return batch;
}

bool ingestor_pipeline_wait(ingestor_pipeline_t *self, int timeout_ms)
{
    if (!self->in_flight)
        return true;
    pthread_mutex_lock(&self->lock);
    //  One wait: a wake-up for a failed attempt (or a spurious one) returns
    //  early, and the owner's loop looks again.
    if (self->state == S_QUEUED && timeout_ms > 0)
        s_timed_wait(&self->done, &self->lock, timeout_ms);
    bool finished = self->state != S_QUEUED;
    pthread_mutex_unlock(&self->lock);
    return finished;
}

void ingestor_pipeline_cancel(ingestor_pipeline_t *self)
{
    if (!self->in_flight)
        return;
    pthread_mutex_lock(&self->lock);
    if (self->state == S_QUEUED) {
        self->cancel = true;
        pthread_cond_signal(&self->wake);
    }
    pthread_mutex_unlock(&self->lock);
}

bool ingestor_pipeline_failing(const ingestor_pipeline_t *self)
{
    return atomic_load(&self->failing);
}
