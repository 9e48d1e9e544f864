/*  redis_server.h: a private redis-server for one unit test, to kill,
    freeze and restart while the code under test talks to it.

    redis_server_new starts redis-server on a free loopback port, with no
    persistence, in a new scratch directory /tmp/<prefix>-XXXXXX (its log
    goes there too, and a test may put files of its own there), and waits
    until it answers PING. The server is a child of the test worker, found
    and stopped by pid, never by name.

    Use from a criterion suite: keep the handle in a static and destroy it
    in .fini (criterion runs each test in a worker of its own, so a test
    that fails half-way still leaves no server behind).

    Like pg_test_db's pg_test_* helpers these are test assertions: what
    cannot be done fails the current test (cr_assert), except destroy,
    which runs in .fini and only reports on stderr.
*/
#ifndef RECSD_REDIS_SERVER_H
#define RECSD_REDIS_SERVER_H

#include <sys/types.h>

typedef struct redis_server_t redis_server_t;

//  Starts a server as above. Returns a handle the caller owns
//  (redis_server_destroy); fails the test if the server does not come up
//  within about four seconds.
redis_server_t *redis_server_new(const char *prefix);

//  Kills the server if it runs (SIGKILL, then reaps it), removes its
//  directory and frees the handle. Idempotent, sets *self_p = NULL.
void redis_server_destroy(redis_server_t **self_p);

//  "redis://127.0.0.1:<port>". Borrowed, valid until destroy.
const char *redis_server_url(redis_server_t *self);

//  The server's scratch directory. Borrowed, valid until destroy.
const char *redis_server_dir(redis_server_t *self);

//  The server's pid, or -1 while it is stopped.
pid_t redis_server_pid(redis_server_t *self);

//  SIGKILL and reap: connections are refused from now on (the port stays
//  this server's, for redis_server_restart). Does nothing if stopped.
void redis_server_kill(redis_server_t *self);

//  Starts a new, empty server on the same port and directory, and waits
//  until it answers PING. Fails the test if it was not stopped first or
//  does not come up.
void redis_server_restart(redis_server_t *self);

//  SIGSTOP / SIGCONT: while frozen, connections stay open and nothing
//  answers, so every command runs into the client's timeout.
void redis_server_freeze(redis_server_t *self);
void redis_server_thaw(redis_server_t *self);

//  Points this process's stderr (fd 2) at <dir>/stderr.log, emptied, so
//  that a test can count the log lines the code under test writes about
//  the outage it causes (and keep them out of the test's output).
//  redis_server_stderr_restore puts stderr back; destroy does too, so a
//  test that fails half-way does not leave it redirected.
void redis_server_stderr_capture(redis_server_t *self);
void redis_server_stderr_restore(redis_server_t *self);

//  Lines of the captured stderr (so far) that contain needle.
int redis_server_stderr_count(redis_server_t *self, const char *needle);

#endif
