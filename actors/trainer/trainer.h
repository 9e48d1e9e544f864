/*  trainer.h: entry point of the trainer actor process. */
#ifndef RECSD_TRAINER_H
#define RECSD_TRAINER_H

#include "config.h"

//  Runs the actor until the supervisor stops it. instance is the process's
//  instance name (see config_instance_name), borrowed. Returns the exit status.
int trainer_main(const config_t *cfg, const char *instance);

#endif
