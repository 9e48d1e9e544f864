/*  ranker.h: entry point of the ranker actor process. */
#ifndef RECSD_RANKER_H
#define RECSD_RANKER_H

#include "config.h"

//  Runs the actor until the supervisor stops it. instance is the process's
//  instance name (see config_instance_name), borrowed. Returns the exit status.
int ranker_main(const config_t *cfg, const char *instance);

#endif
