/*  trainer.h: entry point of the trainer actor process. */
#ifndef RECSD_TRAINER_H
#define RECSD_TRAINER_H

#include "config.h"

//  Runs the actor until the supervisor stops it. Returns the exit status.
int trainer_main(const config_t *cfg);

#endif
