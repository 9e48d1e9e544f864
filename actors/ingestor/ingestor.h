/*  ingestor.h: entry point of the ingestor actor process. */
#ifndef RECSD_INGESTOR_H
#define RECSD_INGESTOR_H

#include "config.h"

//  Runs the actor until the supervisor stops it. instance is the process's
//  instance name (see config_instance_name), borrowed. Returns the exit status.
int ingestor_main(const config_t *cfg, const char *instance);

#endif
