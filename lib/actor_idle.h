/*  actor_idle.h: the loop of an actor that has no work of its own yet.

    The trainer, event-ingestor and publisher are real processes from the
    walking skeleton on: they heartbeat, report ready and stop on command,
    so supervision, restarts and shutdown order are exercised for all five.
    Their work (training, Kafka ingestion, outbox publishing) replaces this
    loop in the issues that build them.
*/
#ifndef RECSD_ACTOR_IDLE_H
#define RECSD_ACTOR_IDLE_H

#include "config.h"

//  Runs until STOP or SIGTERM. Returns the exit status (0, or 1 if the
//  link to the supervisor could not be set up).
int actor_idle_run(const config_t *cfg, const char *name);

#endif
