/*  gateway.h: entry point of the gateway actor process. */
#ifndef RECSD_GATEWAY_H
#define RECSD_GATEWAY_H

#include "config.h"

//  Runs the actor until the supervisor stops it. Returns the exit status.
int gateway_main(const config_t *cfg);

#endif
