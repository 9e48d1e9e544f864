/*  publisher_wake.c: the publisher's LISTEN connection (a pg_listener) and
    idle poll period (see publisher_wake.h). */
#include "publisher_wake.h"

#include <stdlib.h>

#include "log.h"
#include "pg_listener.h"

struct publisher_wake_t {
    pg_listener_t *listener;
    int fallback_ms, degraded_ms;
};

publisher_wake_t *publisher_wake_new(const char *dsn, int fallback_ms, int degraded_ms)
{
    if (fallback_ms <= 0 || degraded_ms <= 0)
        return NULL;
    publisher_wake_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fallback_ms = fallback_ms;
    self->degraded_ms = degraded_ms;
    const char *channels[] = {PUBLISHER_WAKE_CHANNEL};
    pg_listener_options_t opts = {
        .connect_timeout_s = 2, .backoff_min_ms = 100, .backoff_max_ms = 5000};
    self->listener = pg_listener_new(dsn ? dsn : "", "publisher-listen", channels, 1, &opts);
    if (!self->listener)
        publisher_wake_destroy(&self);
    return self;
}

void publisher_wake_destroy(publisher_wake_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    publisher_wake_t *self = *self_p;
    pg_listener_destroy(&self->listener);
    free(self);
    *self_p = NULL;
}

int publisher_wake_socket(publisher_wake_t *self)
{
    return pg_listener_socket(self->listener);
}

bool publisher_wake_listening(publisher_wake_t *self)
{
    return pg_listener_connected(self->listener);
}

int publisher_wake_poll_ms(publisher_wake_t *self)
{
    return pg_listener_connected(self->listener) ? self->fallback_ms : self->degraded_ms;
}

int64_t publisher_wake_next_connect(publisher_wake_t *self)
{
    return pg_listener_next_connect(self->listener);
}

uint64_t publisher_wake_notifications(publisher_wake_t *self)
{
    return pg_listener_notifications(self->listener);
}

bool publisher_wake_service(publisher_wake_t *self, bool may_connect)
{
    pg_listener_event_t ev;
    //  Coming up asks for a claim too: whatever was inserted while nobody
    //  listened was announced to no one.
    bool claim = pg_listener_service(self->listener, may_connect, &ev);
    if (ev.lost || ev.connect_failed)
        //  At warn once per outage, quiet until it is back.
        log_write(ev.outage_start ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, NULL,
                  "outbox notifications: %s%s; polling the outbox every %d ms, reconnecting in %d "
                  "ms",
                  ev.lost ? "LISTEN " : "cannot LISTEN: ", ev.error, self->degraded_ms,
                  ev.retry_ms);
    else if (ev.connected)
        log_info("outbox notifications: %s (LISTEN %s); idle poll every %d ms",
                 pg_listener_connects(self->listener) > 1 ? "listening again" : "listening",
                 PUBLISHER_WAKE_CHANNEL, self->fallback_ms);
    return claim;
}
