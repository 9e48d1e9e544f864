/*  ranker.h: entry point of the ranker actor process. */
#ifndef RECSD_RANKER_H
#define RECSD_RANKER_H

#include "config.h"

//  Runs the actor until the supervisor stops it. Returns the exit status.
int ranker_main(const config_t *cfg);

#endif
