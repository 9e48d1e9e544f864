/*  pg_test_db.h: a throw-away PostgreSQL database for one unit test.

    RECSD_PG_DSN names a server where the tests may CREATE DATABASE (the
    "admin" DSN). pg_test_db_new creates recsd_test_<random> there and a
    config_t pointing at it; pg_test_db_destroy drops it. Without the
    variable pg_test_db_new fails with a clear reason: skipping would let a
    broken setup look green.

    Use from a criterion suite: new in .init (cr_assert on NULL), destroy in
    .fini. Criterion runs each test in a process of its own, so one static
    handle per test file is one database per test.

    The pg_test_* functions at the end are test assertions: on failure they
    fail the current test (cr_assert) instead of returning an error.
*/
#ifndef RECSD_PG_TEST_DB_H
#define RECSD_PG_TEST_DB_H

#include <libpq-fe.h>
#include <stddef.h>

#include "config.h"

typedef struct pg_test_db_t pg_test_db_t;

//  Creates a fresh, empty database (no migrations run). Everything that can
//  fail is done before CREATE DATABASE, because criterion does not run
//  .fini after a failed .init: a NULL return leaves nothing behind.
//  Returns a handle the caller owns (pg_test_db_destroy), or NULL with the
//  reason in err.
pg_test_db_t *pg_test_db_new(char *err, size_t errlen);

//  The same, then runs the migrations (migrate_run, which logs why it
//  failed); if they fail the database is dropped again and NULL returned.
pg_test_db_t *pg_test_db_new_migrated(char *err, size_t errlen);

//  Drops the database (WITH (FORCE): connections a failed test left open do
//  not block it) and frees the handle. Idempotent, sets *self_p = NULL.
//  A failed drop is printed on stderr, not asserted: this runs in .fini.
void pg_test_db_destroy(pg_test_db_t **self_p);

//  The config from the environment with pg_dsn pointing at the test
//  database (a key=value conninfo: same server, user and options as the
//  admin DSN) and migrations_dir at the source tree's migrations. Borrowed,
//  valid until destroy; a test may change it (the drop does not use it).
config_t *pg_test_db_config(pg_test_db_t *self);

//  The database's name, recsd_test_<16 hex digits>. Borrowed.
const char *pg_test_db_name(pg_test_db_t *self);

//  The source tree: RECSD_SOURCE_DIR if set, else the tree this file was
//  compiled from. Borrowed.
const char *pg_test_db_source_dir(pg_test_db_t *self);

//  A new connection to the test database; the caller owns it (PQfinish).
//  Fails the test if it cannot connect.
PGconn *pg_test_db_connect(pg_test_db_t *self);

//  Runs sql on conn; fails the test unless it succeeds.
void pg_test_exec(PGconn *conn, const char *sql);

//  The first column of the single row sql returns, as a number (counts,
//  flags); fails the test if the query fails or does not return one row.
long pg_test_scalar(PGconn *conn, const char *sql);

//  The same as text, written into buf ("<NULL>" for NULL); returns buf.
const char *pg_test_text(PGconn *conn, const char *sql, char *buf, size_t len);

#endif
