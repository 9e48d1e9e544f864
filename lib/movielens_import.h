/*  movielens_import.h: `recsd import movielens DIR`, demo/bootstrap data. */
#ifndef RECSD_MOVIELENS_IMPORT_H
#define RECSD_MOVIELENS_IMPORT_H

#include "config.h"

//  argv: "movielens" DIR. Loads movies.csv into the videos table and
//  ratings.csv into interactions, idempotently. Returns the exit status.
int movielens_import_main(const config_t *cfg, int argc, char **argv);

#endif
