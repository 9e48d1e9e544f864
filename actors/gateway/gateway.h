/*  gateway.h: entry point of the gateway actor process. */
#ifndef RECSD_GATEWAY_H
#define RECSD_GATEWAY_H

#include "config.h"

//  Runs the actor until the supervisor stops it. instance is the process's
//  instance name (see config_instance_name), borrowed. Returns the exit status.
int gateway_main(const config_t *cfg, const char *instance);

#endif
