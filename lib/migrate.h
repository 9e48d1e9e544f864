/*  migrate.h: `recsd migrate`, numbered SQL migrations applied once. */
#ifndef RECSD_MIGRATE_H
#define RECSD_MIGRATE_H

#include "config.h"

//  Applies every migrations_dir/NNN_name.sql not yet recorded in
//  public.schema_migrations, in order, each in its own transaction, under a
//  session advisory lock so concurrent runs serialise. Returns 0, or -1
//  (logged) if any step fails; a failed file is rolled back.
int migrate_run(const config_t *cfg);

#endif
