/*  gateway_probe.h: the gateway's dependency prober, one background thread.

    It does the blocking I/O the gateway needs besides serving: every
    readiness interval it pings PostgreSQL (pg_conn_ping, 1 s) and Redis
    (PING, short timeout) and stores the results in the shared state; every
    popular_refresh_ms it reloads the gateway's own popularity copy (top 100)
    over a PGconn it keeps, reconnecting after a failure and keeping the
    last good copy meanwhile.

    Why a thread and not the main loop: libpq's connect timeout is at least
    2 s, and a blackholed database would then hold the main loop (and its
    heartbeats) for longer than heartbeat_timeout_ms, so the supervisor would
    kill a gateway that is serving fine. One thread carries every blocking
    chore, each at its own period.

    Ownership: the gateway context owns it; cfg and state are borrowed and
    must outlive it.
*/
#ifndef RECSD_GATEWAY_PROBE_H
#define RECSD_GATEWAY_PROBE_H

#include <stddef.h>

#include "config.h"
#include "gateway_state.h"

#define GATEWAY_POPULAR_TOP 100

typedef struct gateway_probe_t gateway_probe_t;

//  Starts the thread; its first round runs at once. Returns NULL with the
//  reason in err on failure.
gateway_probe_t *gateway_probe_new(const config_t *cfg, gateway_state_t *state, char *err,
                                   size_t errlen);

//  Stops and joins the thread (waits for a probe in progress to end),
//  closes the connection; idempotent, sets *self_p to NULL.
void gateway_probe_destroy(gateway_probe_t **self_p);

#endif
