/*  child.h: one supervised actor and its restart policy.

    Pure state and arithmetic, no system calls: the supervisor feeds it
    events (spawned, heartbeat, exited) with the current monotonic time and
    asks it what to do next. That keeps the OTP-style rules (exponential
    back-off, restart intensity, failed state with a long retry) testable
    without processes.

    Rules:
    - After an unexpected exit, the next start waits `backoff`, which starts
      at backoff_min and doubles up to backoff_max; a run that lasted
      backoff_reset_ms or longer resets it. Respawns are also at least one
      second apart (runit/s6), so a crash loop never spins.
    - More than restart_max restarts within restart_window_ms marks the
      child failed: it is reported, and retried once after failed_retry_ms.
    - A restart asked for by an operator (ctl restart) or a stop during
      shutdown is not a failure and does not count toward the intensity.
*/
#ifndef RECSD_CHILD_H
#define RECSD_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "log.h"

typedef enum {
    CHILD_STARTING, //  spawned, no "ready" heartbeat yet
    CHILD_RUNNING,  //  reported ready
    CHILD_BACKOFF,  //  exited, waiting to be restarted
    CHILD_FAILED,   //  restart intensity exceeded, waiting a long retry
    CHILD_STOPPING, //  asked to stop (shutdown or operator restart)
    CHILD_STOPPED   //  stopped for good (shutdown)
} child_state_t;

//  Erlang/OTP restart types: permanent always restarts, transient only
//  after an abnormal exit, temporary never.
typedef enum { RESTART_PERMANENT, RESTART_TRANSIENT, RESTART_TEMPORARY } restart_policy_t;

typedef struct child_t child_t;

//  Creates a child spec for one process of actor `kind` (e.g. "ranker")
//  whose instance name is `name` (e.g. "ranker.2"; the same as kind when
//  the actor runs once). cfg is borrowed and must outlive the child.
child_t *child_new(const config_t *cfg, const char *kind, const char *name,
                   restart_policy_t policy);
void child_destroy(child_t **self_p);

const char *child_name(const child_t *self);
const char *child_kind(const child_t *self);
child_state_t child_state(const child_t *self);
const char *child_state_name(child_state_t state);
pid_t child_pid(const child_t *self);
uint32_t child_restarts(const child_t *self);

//  Events.
void child_spawned(child_t *self, pid_t pid, int64_t now);
//  A heartbeat from pid. Ignored (returns false) if pid is not the current
//  process (a late beat from a predecessor). metrics (may be NULL) is the
//  actor's metrics text; the child keeps a copy until the next beat.
bool child_heartbeat(child_t *self, int32_t pid, const char *state, uint64_t handled,
                     uint64_t queue_depth, const char *metrics, int64_t now);
//  The process exited with wait status `status`. Decides what happens next.
void child_exited(child_t *self, int status, int64_t now);
//  The supervisor asked the process to stop; restart says whether to start
//  it again afterwards (operator restart) or keep it stopped (shutdown).
void child_stop_requested(child_t *self, bool restart, int64_t now);

//  The supervisor sent SIGKILL to the current process: it is not reported
//  overdue again (nor killed again) for a second, while it is being reaped.
void child_killed(child_t *self, int64_t now);

//  Timers. Returns true if the child should be (re)started now.
bool child_due_start(const child_t *self, int64_t now);
//  Returns true if the current process has missed its heartbeat or start
//  deadline, or outlived its stop timeout, and must be killed.
bool child_overdue(const child_t *self, int64_t now, const char **why);
//  Milliseconds until this child's next timer, or -1 if none.
int64_t child_next_timer(const child_t *self, int64_t now);

//  Log level. The setting is what the supervisor wants for this actor: the
//  RECSD_LOG_LEVEL it is exec'd with, and what it is told again when a
//  heartbeat reports another level; it starts as cfg->log_level and is
//  changed by `recsd ctl log-level`.
void child_set_log_level(child_t *self, log_level_t level);
log_level_t child_log_level(const child_t *self);
//  The level the current process reported in its last heartbeat ("" = none;
//  an unknown name is ignored). Cleared when a process is spawned.
void child_report_log_level(child_t *self, const char *level);
//  The reported level, or NULL if the current process has reported none
//  (or there is no process). Borrowed.
const char *child_reported_log_level(const child_t *self);

//  Figures for status.
int64_t child_uptime_ms(const child_t *self, int64_t now);
int64_t child_heartbeat_age_ms(const child_t *self, int64_t now);
uint64_t child_handled(const child_t *self);
uint64_t child_queue_depth(const child_t *self);
//  The last metrics text of the current process, or NULL. Borrowed.
const char *child_metrics(const child_t *self);

#endif
