/*  publisher.h: entry point of the publisher actor process. */
#ifndef RECSD_PUBLISHER_H
#define RECSD_PUBLISHER_H

#include "config.h"

//  Runs the actor until the supervisor stops it. instance is the process's
//  instance name (see config_instance_name), borrowed. Returns the exit status.
int publisher_main(const config_t *cfg, const char *instance);

#endif
