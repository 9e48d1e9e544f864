/*  actor_link.h: an actor's connection to its supervisor.

    Every actor process owns one actor_link_t in its context struct. The link
    is a DEALER (identity = actor name) connected to the supervisor's ROUTER
    control socket at ipc://<runtime_dir>/control. It sends a heartbeat every
    heartbeat_interval_ms (call actor_link_tick from the poll loop) and turns
    the supervisor's commands into flags the actor's loop reads.

    Usage in an actor's loop:
        actor_link_t *link = actor_link_new (cfg, "ranker");
        ... bind sockets ...
        actor_link_set_ready (link);            // spawned is not ready
        while (!actor_link_stopping (link)) {
            zmq_poll ([link socket, own sockets], actor_link_timeout_ms (link));
            if (link socket readable) actor_link_handle (link);
            actor_link_tick (link);             // heartbeats when due
        }
        actor_link_destroy (&link);
*/
#ifndef RECSD_ACTOR_LINK_H
#define RECSD_ACTOR_LINK_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "proto/proto.h"

typedef struct actor_link_t actor_link_t;

//  Connects to the supervisor. Returns NULL (logged) on failure. cfg is
//  borrowed and must outlive the link.
actor_link_t *actor_link_new(const config_t *cfg, const char *name);

//  Sends a last "stopping" heartbeat, closes the socket; idempotent.
void actor_link_destroy(actor_link_t **self_p);

//  The socket to poll for input from the supervisor (borrowed).
zsock_t *actor_link_socket(actor_link_t *self);

//  Marks the actor ready and sends a heartbeat now.
void actor_link_set_ready(actor_link_t *self);

//  Counters reported in heartbeats.
void actor_link_count_handled(actor_link_t *self, uint64_t n);
void actor_link_set_queue_depth(actor_link_t *self, uint64_t depth);

//  Sets the metrics text sent with every heartbeat from now on (Prometheus
//  text format lines, at most PROTO_METRICS_MAX bytes; copied). Label the
//  samples with actor="<instance name>": the gateway merges every actor's
//  text into /metrics. NULL clears it. Returns 0, or -1 if the text is too
//  long (the previous text is kept).
int actor_link_set_metrics(actor_link_t *self, const char *text);

//  Reads every waiting command. Returns the number handled. STOP sets the
//  stopping flag, DRAIN the draining flag, LOG_LEVEL the process's log level
//  (log_set_level; heartbeats report the current level); a STATUS_REP is
//  kept and can be taken with actor_link_take_status. Malformed input is
//  logged and dropped.
int actor_link_handle(actor_link_t *self);

//  Sends a heartbeat if one is due. Cannot fail: a failed send is retried
//  at the next tick (the supervisor notices silence, not one lost beat).
void actor_link_tick(actor_link_t *self);

//  Milliseconds until the next heartbeat is due (for the poll timeout).
long actor_link_timeout_ms(actor_link_t *self);

//  Asks the supervisor for its actor table; the answer arrives through
//  actor_link_handle. Returns 0, or -1 if it could not be sent.
int actor_link_request_status(actor_link_t *self);

//  Takes the most recent status reply, or NULL. Caller owns it.
proto_msg_t *actor_link_take_status(actor_link_t *self);

bool actor_link_stopping(actor_link_t *self);
bool actor_link_draining(actor_link_t *self);

//  The actor asks to stop by itself (e.g. on SIGTERM when run by hand).
void actor_link_request_stop(actor_link_t *self);

#endif
