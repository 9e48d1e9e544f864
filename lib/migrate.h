/*  migrate.h: `recsd migrate`, numbered SQL migrations applied once.

    A migration is a file migrations_dir/NNN_name.sql: three digits, an
    underscore, lower-case letters, digits and underscores. Other files are
    ignored (a misnamed *.sql file is warned about). Numbers must be unique;
    gaps are allowed. A file may hold several statements but no transaction
    control (BEGIN/COMMIT), no COPY FROM STDIN and nothing that refuses to
    run in a transaction block (CREATE INDEX CONCURRENTLY, VACUUM).
*/
#ifndef RECSD_MIGRATE_H
#define RECSD_MIGRATE_H

#include "config.h"

//  Applies every cfg->migrations_dir/NNN_name.sql not yet recorded in
//  public.schema_migrations (created if missing), in number order, each in
//  its own transaction together with its record, under a session advisory
//  lock so that concurrent runs serialise (the later one finds nothing to
//  do). Before applying anything, checks the SHA-256 of every recorded file
//  against the file on disk: applied migrations are immutable, a mismatch
//  fails the run. Stops at the first failing file, which is rolled back;
//  files before it stay applied. Returns 0, or -1 (every failure logged,
//  naming the file and the server's message). Safe to call from several
//  threads at once (each call opens its own connection).
int migrate_run(const config_t *cfg);

#endif
