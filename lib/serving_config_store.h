/*  serving_config_store.h: the versions of the serving configuration in
    PostgreSQL (migrations/011_serving_config.sql), and a watcher that keeps
    a process's copy of the current one up to date.

    Store. Every statement on serving.config_versions lives here. The
    functions take a connection the caller owns and keep nothing; put and
    rollback run a transaction of their own, so their connection must not
    be inside one. Versions are 1, 2, 3
    ... in commit order (writers lock the table; readers are not blocked),
    the current configuration is the highest version, and "no version yet"
    is version 0: the caller's defaults (serving_config_from_config). A put
    or rollback sends `NOTIFY recsd_serving_config, '<version>'` in its
    own transaction, so a listener hears of it exactly when it is visible.

    Documents are stored as jsonb, validated before they are written. A
    stored document is parsed as strictly as a PUT body; a later recsd that
    adds a field must add it to the stored documents in its migration.

    Return codes: SERVING_CONFIG_STORE_OK (0) or a negative
    serving_config_store_rc_t. INTERNAL is a database failure: err holds
    the server's message, for logs only (never show it to a client).
    INVALID and NOT_FOUND leave a reason a client may see: for a refused
    configuration serving_config.h's "<path>: <reason>".

    Watcher (serving_config_watch_t, here rather than in a file of its own
    because it is the store's one reader that outlives a call). A thread
    with a connection of its own LISTENs on SERVING_CONFIG_CHANNEL and
    reloads the current version on each notification, and every poll_ms as
    a safety net (a NOTIFY sent while it was disconnected is lost). A lost
    connection is re-opened with a doubling back-off; meanwhile, and
    whenever a load fails, the last configuration it had stays in force.
    Readers copy it out under a mutex (serving_config_watch_get), cheap
    enough for every request; serving_config_watch_version is lock-free
    for "has it changed?".

    Thread-safety: store functions share nothing (a connection is used by
    one thread at a time: libpq's rule). Every watcher method may be called
    from any thread, except destroy, which must not race the others.
*/
#ifndef RECSD_SERVING_CONFIG_STORE_H
#define RECSD_SERVING_CONFIG_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serving_config.h"

#define SERVING_CONFIG_CHANNEL "recsd_serving_config"
#define SERVING_CONFIG_WHO_MAX 200   //  created_by, bytes
#define SERVING_CONFIG_NOTE_MAX 1000 //  note, bytes
#define SERVING_CONFIG_LIST_DEFAULT 50
#define SERVING_CONFIG_LIST_MAX 1000

typedef enum {
    SERVING_CONFIG_STORE_OK = 0,
    SERVING_CONFIG_STORE_INTERNAL = -1,  //  database or connection failure
    SERVING_CONFIG_STORE_NOT_FOUND = -2, //  no such version
    SERVING_CONFIG_STORE_INVALID = -3    //  refused before anything was written
} serving_config_store_rc_t;

//  ---- store -----------------------------------------------------------------

//  The current configuration: the highest version's document into *out
//  and its number into *version; if there is none yet, *defaults and 0.
//  Returns OK, or INTERNAL (also if the stored document does not parse:
//  err says which version and why); *out and *version are unchanged on
//  failure.
int serving_config_store_current(PGconn *conn, const serving_config_t *defaults,
                                 serving_config_t *out, int64_t *version, char *err, size_t errlen);

//  Stores cfg as the next version (after serving_config_validate), by
//  created_by (1..SERVING_CONFIG_WHO_MAX bytes), with an optional note
//  (NULL or at most SERVING_CONFIG_NOTE_MAX bytes), and notifies, in one
//  transaction. *version (may be NULL) gets the new number. Returns OK,
//  INVALID (err: the refused field, or the bad argument, or conn is
//  inside a transaction), INTERNAL.
int serving_config_store_put(PGconn *conn, const serving_config_t *cfg, const char *created_by,
                             const char *note, int64_t *version, char *err, size_t errlen);

//  Makes the document of version to_version current again: a new version
//  that copies it, with rolled_back_from = to_version, by created_by, note
//  NULL for "rollback to version N"; notifies, one transaction. Rolling
//  back to the current version is allowed (and recorded). *new_version
//  (may be NULL) gets the new number. Returns OK; NOT_FOUND (no such
//  version, 0 and negatives included); INVALID (arguments, or the old
//  document no longer validates); INTERNAL.
int serving_config_store_rollback(PGconn *conn, int64_t to_version, const char *created_by,
                                  const char *note, int64_t *new_version, char *err, size_t errlen);

//  Versions, newest first, at most limit (<= 0: SERVING_CONFIG_LIST_DEFAULT;
//  capped at _LIST_MAX), only those below before if before > 0 (paging:
//  pass the last version of the previous page):
//    [{"version":3,"created_by":"...","created_at":"2024-05-01T12:00:00.000Z",
//      "note":"..."|null,"rolled_back_from":1|null,"document":{...}}, ...]
//  The document comes in serving_config.h's key order (as stored if it no
//  longer parses). Returns OK with *out a new array the caller owns
//  (json_decref; [] when there are no versions), INVALID, or INTERNAL.
int serving_config_store_list(PGconn *conn, int limit, int64_t before, json_t **out, char *err,
                              size_t errlen);

//  One version, as an element of the list above, into *out (a new
//  reference the caller owns). Returns OK, NOT_FOUND, INVALID, INTERNAL.
int serving_config_store_get(PGconn *conn, int64_t version, json_t **out, char *err, size_t errlen);

//  ---- watcher ---------------------------------------------------------------

typedef struct serving_config_watch_t serving_config_watch_t;

//  Called from the watcher's thread, with no lock held, each time the
//  configuration it holds changes (not for the defaults it starts with).
//  cfg is borrowed for the call. It may call serving_config_watch_get and
//  _version, must not destroy the watcher, and should return quickly: no
//  reload happens meanwhile.
typedef void(serving_config_watch_fn)(const serving_config_t *cfg, int64_t version, void *arg);

typedef struct {
    const char *dsn;                    //  PostgreSQL (copied)
    const char *app;                    //  application_name "recsd-<app>"; NULL: "serving-config"
    const serving_config_t *defaults;   //  version 0 (copied); must validate
    int poll_ms;                        //  reload without notifications; <= 0: 5000
    int reconnect_min_ms;               //  back-off after a failed connect; <= 0: 500
    int reconnect_max_ms;               //  <= 0: 30000
    serving_config_watch_fn *on_change; //  may be NULL
    void *arg;                          //  for on_change
} serving_config_watch_options_t;

//  Starts the thread, which connects in the background: until the first
//  load the watcher holds *defaults at version 0 (wait with
//  serving_config_watch_wait to start on the stored configuration).
//  Returns a watcher the caller owns, or NULL with the reason in err
//  (bad options, out of resources).
serving_config_watch_t *serving_config_watch_new(const serving_config_watch_options_t *opts,
                                                 char *err, size_t errlen);

//  Stops the thread (an in-progress connect or query is waited for: at
//  most a few seconds, both are bounded), closes its connection, frees
//  everything. Idempotent; sets *self_p = NULL.
void serving_config_watch_destroy(serving_config_watch_t **self_p);

//  Copies the configuration in force into *out (may be NULL) and returns
//  its version (0: the defaults). Cannot fail.
int64_t serving_config_watch_get(serving_config_watch_t *self, serving_config_t *out);

//  The version in force, without the lock. Cannot fail.
int64_t serving_config_watch_version(serving_config_watch_t *self);

//  True while the watcher's connection is open (it hears changes now).
bool serving_config_watch_connected(serving_config_watch_t *self);

//  Asks for a reload now (e.g. right after this process's own put, so its
//  next answer need not wait for the notification's round trip).
void serving_config_watch_reload(serving_config_watch_t *self);

//  Waits up to timeout_ms until the watcher has loaded from PostgreSQL at
//  least once and holds version >= min_version. Returns 0, or -1 on
//  timeout.
int serving_config_watch_wait(serving_config_watch_t *self, int64_t min_version, int timeout_ms);

#endif
