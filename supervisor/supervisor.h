/*  supervisor.h: `recsd run`, the process supervisor (possibly PID 1). */
#ifndef RECSD_SUPERVISOR_H
#define RECSD_SUPERVISOR_H

#include "config.h"

//  Forks and execs `self_exe actor NAME` per configured actor, supervises
//  them until SIGTERM/SIGINT, then stops them in reverse order within the
//  grace period. Returns the process exit status (0 after a clean stop).
int supervisor_run(const config_t *cfg, const char *self_exe);

#endif
