/*  child.c: restart policy state machine for one actor (see child.h). */
#include "child.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"

#define CHILD_MIN_RESPAWN_MS 1000
//  After a SIGKILL the process is gone as soon as the kernel reaps it; if
//  it is not (stuck in uninterruptible sleep), kill and log again only this
//  often rather than on every loop turn.
#define CHILD_KILL_RETRY_MS 1000
#define CHILD_MAX_WINDOW 1000 //  upper bound of restart_max (config.c)

struct child_t {
    const config_t *cfg;
    char name[48];
    char kind[32];
    restart_policy_t policy;
    child_state_t state;
    pid_t pid;
    uint32_t restarts;
    int64_t spawned_at;
    int64_t ready_at;
    int64_t last_beat;
    int64_t next_start;
    int64_t stop_deadline;
    int64_t backoff_ms;
    int64_t killed_at; //  when SIGKILL was last sent to the current process, 0 if never
    bool restart_after_stop;
    uint64_t handled;
    uint64_t queue_depth;
    char *metrics;         //  last heartbeat's metrics text, owned
    log_level_t log_level; //  the setting (see child.h)
    bool level_reported;   //  the current process reported reported_level
    log_level_t reported_level;
    //  Times of recent unplanned restarts, a ring, for the intensity rule.
    int64_t *recent;
    int recent_count;
    int recent_head;
};

child_t *child_new(const config_t *cfg, const char *kind, const char *name, restart_policy_t policy)
{
    child_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->recent = calloc((size_t)cfg->restart_max + 1, sizeof(int64_t));
    if (!self->recent) {
        free(self);
        return NULL;
    }
    self->cfg = cfg;
    snprintf(self->name, sizeof self->name, "%s", name);
    snprintf(self->kind, sizeof self->kind, "%s", kind);
    self->policy = policy;
    self->state = CHILD_BACKOFF; //  due to start at once
    self->next_start = 0;
    self->backoff_ms = cfg->backoff_min_ms;
    self->log_level = cfg->log_level;
    return self;
}

void child_destroy(child_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->recent);
    free((*self_p)->metrics);
    free(*self_p);
    *self_p = NULL;
}

const char *child_name(const child_t *self)
{
    return self->name;
}

const char *child_kind(const child_t *self)
{
    return self->kind;
}

child_state_t child_state(const child_t *self)
{
    return self->state;
}

const char *child_state_name(child_state_t state)
{
    static const char *names[] = {"starting", "running",  "backoff",
                                  "failed",   "stopping", "stopped"};
    return state <= CHILD_STOPPED ? names[state] : "unknown";
}

pid_t child_pid(const child_t *self)
{
    return self->pid;
}

uint32_t child_restarts(const child_t *self)
{
    return self->restarts;
}

void child_spawned(child_t *self, pid_t pid, int64_t now)
{
    self->pid = pid;
    self->state = CHILD_STARTING;
    self->spawned_at = now;
    self->last_beat = now;
    self->ready_at = 0;
    self->killed_at = 0;
    self->handled = 0;
    self->queue_depth = 0;
    free(self->metrics);
    self->metrics = NULL;
    self->restart_after_stop = false;
    self->level_reported = false;
}

bool child_heartbeat(child_t *self, int32_t pid, const char *state, uint64_t handled,
                     uint64_t queue_depth, const char *metrics, int64_t now)
{
    if (self->pid == 0 || pid != self->pid)
        return false;
    self->last_beat = now;
    self->handled = handled;
    self->queue_depth = queue_depth;
    if (metrics || self->metrics) {
        //  A failed copy only loses this beat's metrics.
        free(self->metrics);
        self->metrics = metrics ? strdup(metrics) : NULL;
    }
    if (self->state == CHILD_STARTING && strcmp(state, "ready") == 0) {
        self->state = CHILD_RUNNING;
        self->ready_at = now;
    }
    return true;
}

//  Counts restarts inside the window, after recording one at `now`.
static int s_record_restart(child_t *self, int64_t now)
{
    int cap = self->cfg->restart_max + 1;
    self->recent[self->recent_head] = now;
    self->recent_head = (self->recent_head + 1) % cap;
    if (self->recent_count < cap)
        self->recent_count++;
    int inside = 0;
    for (int i = 0; i < self->recent_count; i++)
        if (now - self->recent[i] <= self->cfg->restart_window_ms)
            inside++;
    return inside;
}

void child_exited(child_t *self, int status, int64_t now)
{
    const config_t *cfg = self->cfg;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int64_t ran = now - self->spawned_at;
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    self->pid = 0;

    if (self->state == CHILD_STOPPING) {
        if (self->restart_after_stop) {
            //  Operator restart: not a failure, start again at once.
            log_info("actor %s stopped for restart (%s)", self->name, how);
            self->state = CHILD_BACKOFF;
            self->next_start = now;
            self->restarts++;
        } else {
            log_info("actor %s stopped (%s)", self->name, how);
            self->state = CHILD_STOPPED;
        }
        return;
    }
    if (self->policy == RESTART_TEMPORARY || (self->policy == RESTART_TRANSIENT && clean)) {
        log_info("actor %s %s; not restarted (policy)", self->name, how);
        self->state = CHILD_STOPPED;
        return;
    }
    if (ran >= cfg->backoff_reset_ms)
        self->backoff_ms = cfg->backoff_min_ms;
    self->restarts++;
    int inside = s_record_restart(self, now);
    if (inside > cfg->restart_max) {
        self->state = CHILD_FAILED;
        self->next_start = now + cfg->failed_retry_ms;
        self->recent_count = 0;
        self->recent_head = 0;
        log_error("actor %s failed: %s; %d restarts within %d ms exceed the limit of %d; "
                  "next attempt in %d ms",
                  self->name, how, inside, cfg->restart_window_ms, cfg->restart_max,
                  cfg->failed_retry_ms);
        return;
    }
    int64_t delay = self->backoff_ms;
    int64_t since_spawn = now - self->spawned_at;
    if (since_spawn + delay < CHILD_MIN_RESPAWN_MS)
        delay = CHILD_MIN_RESPAWN_MS - since_spawn;
    self->state = CHILD_BACKOFF;
    self->next_start = now + delay;
    self->backoff_ms =
        self->backoff_ms * 2 > cfg->backoff_max_ms ? cfg->backoff_max_ms : self->backoff_ms * 2;
    log_warn("actor %s %s after %lld ms; restart %u in %lld ms", self->name, how, (long long)ran,
             self->restarts, (long long)delay);
}

void child_stop_requested(child_t *self, bool restart, int64_t now)
{
    if (self->pid == 0) {
        //  Nothing running: a shutdown just parks it, a restart starts now.
        self->state = restart ? CHILD_BACKOFF : CHILD_STOPPED;
        self->next_start = now;
        return;
    }
    self->state = CHILD_STOPPING;
    self->restart_after_stop = restart;
    self->stop_deadline = now + self->cfg->stop_timeout_ms;
}

bool child_due_start(const child_t *self, int64_t now)
{
    return (self->state == CHILD_BACKOFF || self->state == CHILD_FAILED) && self->pid == 0 &&
           now >= self->next_start;
}

void child_killed(child_t *self, int64_t now)
{
    self->killed_at = now;
}

bool child_overdue(const child_t *self, int64_t now, const char **why)
{
    if (self->pid == 0)
        return false;
    if (self->killed_at && now - self->killed_at < CHILD_KILL_RETRY_MS)
        return false; //  killed already; waiting to reap it
    switch (self->state) {
    case CHILD_STARTING:
        *why = "no ready heartbeat within the start timeout";
        return now - self->spawned_at > self->cfg->start_timeout_ms &&
               now - self->last_beat > self->cfg->heartbeat_timeout_ms;
    case CHILD_RUNNING:
        *why = "missed heartbeats";
        return now - self->last_beat > self->cfg->heartbeat_timeout_ms;
    case CHILD_STOPPING:
        *why = "did not stop within the stop timeout";
        return now > self->stop_deadline;
    default:
        return false;
    }
}

int64_t child_next_timer(const child_t *self, int64_t now)
{
    int64_t at;
    switch (self->state) {
    case CHILD_BACKOFF:
    case CHILD_FAILED:
        at = self->next_start;
        break;
    case CHILD_STARTING: {
        //  The same rule as child_overdue: both deadlines must have passed.
        int64_t beat = self->last_beat + self->cfg->heartbeat_timeout_ms;
        int64_t start = self->spawned_at + self->cfg->start_timeout_ms;
        at = (beat > start ? beat : start) + 1;
        break;
    }
    case CHILD_RUNNING:
        at = self->last_beat + self->cfg->heartbeat_timeout_ms + 1;
        break;
    case CHILD_STOPPING:
        at = self->stop_deadline + 1;
        break;
    default:
        return -1;
    }
    if (self->pid && self->killed_at && self->killed_at + CHILD_KILL_RETRY_MS > at)
        at = self->killed_at + CHILD_KILL_RETRY_MS;
    return at > now ? at - now : 0;
}

int64_t child_uptime_ms(const child_t *self, int64_t now)
{
    return self->pid ? now - self->spawned_at : -1;
}

int64_t child_heartbeat_age_ms(const child_t *self, int64_t now)
{
    return self->pid ? now - self->last_beat : -1;
}

uint64_t child_handled(const child_t *self)
{
    return self->handled;
}

uint64_t child_queue_depth(const child_t *self)
{
    return self->queue_depth;
}

const char *child_metrics(const child_t *self)
{
    return self->metrics;
}

void child_set_log_level(child_t *self, log_level_t level)
{
    self->log_level = level;
}

log_level_t child_log_level(const child_t *self)
{
    return self->log_level;
}

void child_report_log_level(child_t *self, const char *level)
{
    log_level_t parsed;
    if (level && *level && log_level_parse(level, &parsed) == 0) {
        self->reported_level = parsed;
        self->level_reported = true;
    }
}

const char *child_reported_log_level(const child_t *self)
{
    return self->pid && self->level_reported ? log_level_name(self->reported_level) : NULL;
}
