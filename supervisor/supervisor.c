/*  supervisor.c: `recsd run`, the process supervisor.

    One poll loop over: a signalfd (SIGCHLD, SIGTERM, SIGINT), the control
    ROUTER every actor heartbeats on, and the admin ROUTER that `recsd ctl`
    talks to. Timers (back-off restarts, heartbeat deadlines, stop timeouts)
    come from child_t; the loop's timeout is the nearest one.

    PID 1 duties: every exited process is reaped with waitpid(-1, WNOHANG)
    in a loop, including orphans re-parented to us (we also make ourselves a
    child subreaper, so the same holds when we are not PID 1). Signals are
    blocked and read from a signalfd: PID 1 has no default actions, and a
    blocked signal is queued even for a namespace init.

    Fork hygiene: signals stay blocked across fork; the child restores the
    default dispositions and mask, asks for SIGTERM if we die, and execs
    `recsd actor NAME` at once. Nothing between fork and exec touches the
    ZeroMQ context.

    Log levels (`recsd ctl log-level LEVEL [ACTOR]`): the supervisor keeps a
    level per child (child_log_level), sends it to the running process over
    the control socket, execs every new process with it in RECSD_LOG_LEVEL
    (so a restarted actor logs at it from its first line), and tells a
    process again whenever its heartbeat reports another level (a command
    lost while the actor was not yet connected is repaired at the next beat).
*/
#include "supervisor.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "proto/proto_zmq.h"

typedef struct {
    const config_t *cfg;
    char exe[PATH_MAX];
    int signal_fd;
    int lock_fd;
    zsock_t *control;
    zsock_t *admin;
    child_t *children[CONFIG_MAX_ACTORS * CONFIG_MAX_INSTANCES];
    int child_count;
    int64_t started_at;
    bool draining;
    bool shutting_down;
    int64_t shutdown_deadline; //  grace period end: SIGKILL after it
    int64_t stop_next_at;      //  drain delay end: start stopping actors
    int stop_index;            //  next child (from the end) to stop
} self_t;

static int64_t s_now(void)
{
    return zclock_mono();
}

//  Creates the private runtime directory (mode 0700) and takes its lock,
//  so a second supervisor cannot silently take over our ipc endpoints.
static int s_runtime_dir(self_t *self)
{
    const char *dir = self->cfg->runtime_dir;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create RECSD_RUNTIME_DIR %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        log_error("RECSD_RUNTIME_DIR %s is not a directory owned by us", dir);
        return -1;
    }
    if (chmod(dir, 0700) != 0) {
        log_error("cannot chmod 0700 %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/supervisor.lock", dir);
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0 || flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        log_error("another supervisor is running with RECSD_RUNTIME_DIR=%s", dir);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(self->lock_fd, 0) != 0 || write(self->lock_fd, pid, (size_t)n) != n)
        log_warn("cannot write pid to %s: %s", path, strerror(errno));
    return 0;
}

static zsock_t *s_bind_router(self_t *self, const char *name)
{
    char endpoint[160];
    if (config_endpoint(self->cfg, name, endpoint, sizeof endpoint) != 0)
        return NULL;
    zsock_t *sock = zsock_new(ZMQ_ROUTER);
    if (!sock)
        return NULL;
    zsock_set_router_mandatory(sock, 1);
    zsock_set_router_handover(sock, 1); //  a restarted actor takes its identity back
    zsock_set_maxmsgsize(sock, PROTO_MAX_MESSAGE);
    zsock_set_linger(sock, 0);
    if (zsock_bind(sock, "%s", endpoint) != 0) {
        log_error("cannot bind %s: %s", endpoint, zmq_strerror(errno));
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

static child_t *s_child_by_name(self_t *self, const char *name)
{
    for (int i = 0; i < self->child_count; i++)
        if (strcmp(child_name(self->children[i]), name) == 0)
            return self->children[i];
    return NULL;
}

static child_t *s_child_by_pid(self_t *self, pid_t pid)
{
    for (int i = 0; i < self->child_count; i++)
        if (child_pid(self->children[i]) == pid)
            return self->children[i];
    return NULL;
}

//  The environment an actor is exec'd with: ours, with RECSD_LOG_LEVEL set
//  to `assignment` ("RECSD_LOG_LEVEL=debug"). Built before fork, since the
//  child may only make async-signal-safe calls; the strings are borrowed.
//  Returns NULL on allocation failure (the caller then passes ours).
static char **s_child_env(const char *assignment)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "RECSD_LOG_LEVEL=", 16) != 0)
            env[k++] = environ[i];
    env[k++] = (char *)assignment;
    env[k] = NULL;
    return env;
}

static void s_spawn(self_t *self, child_t *child)
{
    const char *name = child_name(child);
    char level[48];
    snprintf(level, sizeof level, "RECSD_LOG_LEVEL=%s", log_level_name(child_log_level(child)));
    char **env = s_child_env(level);
    if (!env)
        log_warn("actor %s starts at the initial log level: out of memory", name);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork for actor %s failed: %s", name, strerror(errno));
        free(env);
        //  Treat like a crash so the back-off and intensity rules apply.
        child_spawned(child, 0, s_now());
        child_exited(child, W_EXITCODE(127, 0), s_now());
        return;
    }
    if (pid == 0) {
        //  Child: async-signal-safe calls only until exec.
        sigset_t none;
        sigemptyset(&none);
        for (int sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        //  Own process group: a terminal's Ctrl-C reaches the supervisor
        //  only, which then stops the actors in order.
        setpgid(0, 0);
        char *argv[] = {"recsd", "actor", (char *)child_kind(child), (char *)name, NULL};
        execve(self->exe, argv, env ? env : environ);
        _exit(127);
    }
    free(env);
    child_spawned(child, pid, s_now());
    log_info("started actor %s pid %d", name, (int)pid);
}

static void s_kill(child_t *child, int sig)
{
    pid_t pid = child_pid(child);
    if (pid > 0 && kill(pid, sig) != 0 && errno != ESRCH)
        log_warn("kill %d of %s (pid %d) failed: %s", sig, child_name(child), (int)pid,
                 strerror(errno));
}

//  Sends a command to an actor over the control socket. Returns -1 if the
//  actor is not connected (ROUTER_MANDATORY tells us).
static int s_command(self_t *self, child_t *child, proto_type_t type)
{
    proto_msg_t *msg = proto_msg_new(type, NULL);
    if (!msg)
        return -1;
    zframe_t *identity = zframe_new(child_name(child), strlen(child_name(child)));
    int rc = proto_send(self->control, identity, msg);
    zframe_destroy(&identity);
    proto_msg_destroy(&msg);
    return rc;
}

//  Tells a running actor its log level setting. Returns 0, or -1 if it is
//  not connected (the heartbeat check repairs that later).
static int s_send_log_level(self_t *self, child_t *child)
{
    proto_msg_t *msg = proto_msg_new(PROTO_LOG_LEVEL, NULL);
    if (!msg)
        return -1;
    snprintf(msg->body.log_level.level, sizeof msg->body.log_level.level, "%s",
             log_level_name(child_log_level(child)));
    snprintf(msg->body.log_level.actor, sizeof msg->body.log_level.actor, "%s", child_name(child));
    zframe_t *identity = zframe_new(child_name(child), strlen(child_name(child)));
    int rc = proto_send(self->control, identity, msg);
    zframe_destroy(&identity);
    proto_msg_destroy(&msg);
    return rc;
}

//  Graceful stop of one actor: STOP over the control socket, SIGTERM if it
//  is not connected; child_overdue() escalates to SIGKILL.
static void s_stop_child(self_t *self, child_t *child, bool restart)
{
    child_stop_requested(child, restart, s_now());
    if (child_pid(child) > 0 && s_command(self, child, PROTO_STOP) != 0)
        s_kill(child, SIGTERM);
}

static proto_msg_t *s_status(self_t *self, const char *request_id)
{
    proto_msg_t *msg = proto_msg_new(PROTO_STATUS_REP, request_id);
    if (!msg)
        return NULL;
    proto_status_rep_t *status = &msg->body.status;
    status->actors = calloc((size_t)self->child_count, sizeof *status->actors);
    if (!status->actors) {
        proto_msg_destroy(&msg);
        return NULL;
    }
    int64_t now = s_now();
    status->draining = self->draining;
    snprintf(status->log_level, sizeof status->log_level, "%s", log_level_name(log_get_level()));
    status->uptime_ms = now - self->started_at;
    status->count = (uint32_t)self->child_count;
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < self->child_count; i++) {
        child_t *child = self->children[i];
        proto_actor_status_t *row = &status->actors[i];
        snprintf(row->name, sizeof row->name, "%s", child_name(child));
        row->pid = child_pid(child);
        snprintf(row->state, sizeof row->state, "%s", child_state_name(child_state(child)));
        row->restarts = child_restarts(child);
        row->uptime_ms = child_uptime_ms(child, now);
        row->heartbeat_age_ms = child_heartbeat_age_ms(child, now);
        row->handled = child_handled(child);
        row->queue_depth = child_queue_depth(child);
        //  The reply owns its copy (freed by proto_msg_destroy).
        row->metrics = child_metrics(child) ? strdup(child_metrics(child)) : NULL;
        const char *level = child_reported_log_level(child);
        snprintf(row->log_level, sizeof row->log_level, "%s",
                 level ? level : log_level_name(child_log_level(child)));
        if (row->pid > 0) {
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/statm", (int)row->pid);
            //  statm: "size resident shared ..." in pages.
            FILE *file = fopen(path, "r");
            char line[128];
            if (file) {
                if (fgets(line, sizeof line, file)) {
                    char *end = NULL;
                    strtoull(line, &end, 10);
                    unsigned long long resident = strtoull(end, NULL, 10);
                    row->rss_bytes = (uint64_t)resident * (uint64_t)page;
                }
                fclose(file);
            }
        }
    }
    return msg;
}

static void s_reply(zsock_t *sock, zframe_t *identity, proto_msg_t **msg_p)
{
    if (*msg_p && proto_send(sock, identity, *msg_p) != 0)
        log_debug("reply to a peer that left: %s", zmq_strerror(errno));
    proto_msg_destroy(msg_p);
}

static proto_msg_t *s_result(const char *request_id, int code, const char *message)
{
    proto_msg_t *msg = proto_msg_new(PROTO_RESULT, request_id);
    if (msg) {
        msg->body.result.code = code;
        snprintf(msg->body.result.message, sizeof msg->body.result.message, "%s", message);
    }
    return msg;
}

//  `recsd ctl log-level LEVEL [ACTOR]`: see the header comment.
static proto_msg_t *s_log_level(self_t *self, const char *rid, const proto_log_level_t *req)
{
    log_level_t level;
    if (log_level_parse(req->level, &level) != 0)
        return s_result(rid, 400, "unknown log level (debug, info, warn or error)");
    const char *target = req->actor;
    bool all = !target[0] || strcmp(target, "all") == 0;
    bool ours = all || strcmp(target, "supervisor") == 0;
    int matched = 0, told = 0;
    for (int i = 0; i < self->child_count; i++) {
        child_t *child = self->children[i];
        if (!all && strcmp(child_kind(child), target) != 0 &&
            strcmp(child_name(child), target) != 0)
            continue;
        matched++;
        child_set_log_level(child, level);
        if (child_pid(child) > 0 && s_send_log_level(self, child) == 0)
            told++;
    }
    if (!ours && matched == 0)
        return s_result(rid, 404, "no such actor in this supervisor");
    if (ours) {
        //  Logged at the more verbose of the two levels, so the line shows.
        log_level_t before = log_get_level();
        if (level > before)
            log_info("log level set to %s", log_level_name(level));
        log_set_level(level);
        if (level <= before)
            log_info("log level set to %s", log_level_name(level));
    }
    if (matched)
        log_info("log level %s for %s: told %d of %d actor processes now, the rest start with it",
                 log_level_name(level), all ? "every actor" : target, told, matched);
    char text[PROTO_TEXT_MAX + 1];
    const char *plural = matched == 1 ? "" : "es";
    if (all)
        snprintf(text, sizeof text, "log level %s: supervisor and %d actor process%s",
                 log_level_name(level), matched, plural);
    else if (ours)
        snprintf(text, sizeof text, "log level %s: supervisor", log_level_name(level));
    else
        snprintf(text, sizeof text, "log level %s: %s (%d actor process%s)", log_level_name(level),
                 target, matched, plural);
    return s_result(rid, 0, text);
}

static void s_begin_drain(self_t *self)
{
    if (self->draining)
        return;
    self->draining = true;
    child_t *gateway = s_child_by_name(self, "http-gateway");
    if (gateway && child_pid(gateway) > 0 && s_command(self, gateway, PROTO_DRAIN) != 0)
        log_warn("could not tell http-gateway to drain");
    log_info("draining: readiness is false");
}

static void s_begin_shutdown(self_t *self, const char *why)
{
    if (self->shutting_down)
        return;
    int64_t now = s_now();
    log_info("shutting down (%s): grace period %d ms", why, self->cfg->shutdown_grace_ms);
    self->shutting_down = true;
    self->shutdown_deadline = now + self->cfg->shutdown_grace_ms;
    self->stop_next_at = now + self->cfg->drain_delay_ms;
    self->stop_index = self->child_count - 1;
    s_begin_drain(self);
}

//  Requests handled the same on both sockets (status), plus the ones only
//  an operator may send (restart, drain) when admin is true.
static void s_handle_request(self_t *self, zsock_t *sock, bool admin)
{
    while (true) {
        char err[256];
        zframe_t *identity = NULL;
        proto_msg_t *msg = proto_recv(sock, &identity, err, sizeof err);
        if (!msg) {
            if (errno == EAGAIN)
                return;
            log_warn("rejected message on %s socket: %s", admin ? "admin" : "control", err);
            continue;
        }
        const char *rid = msg->header.request_id;
        proto_msg_t *reply = NULL;
        if (msg->header.type == PROTO_HEARTBEAT && !admin) {
            const proto_heartbeat_t *hb = &msg->body.heartbeat;
            child_t *child = s_child_by_name(self, hb->name);
            if (!child || !child_heartbeat(child, hb->pid, hb->state, hb->handled, hb->queue_depth,
                                           hb->metrics, s_now()))
                log_debug("heartbeat from unknown actor %s pid %d", hb->name, (int)hb->pid);
            else if (hb->log_level[0]) {
                child_report_log_level(child, hb->log_level);
                const char *want = log_level_name(child_log_level(child));
                if (strcmp(hb->log_level, want) != 0 && s_send_log_level(self, child) != 0)
                    log_debug("could not tell %s its log level %s", hb->name, want);
            }
        } else if (msg->header.type == PROTO_STATUS_REQ) {
            reply = s_status(self, rid);
        } else if (msg->header.type == PROTO_RESTART_REQ && admin) {
            child_t *child = s_child_by_name(self, msg->body.restart.actor);
            if (!child && config_instances(self->cfg, msg->body.restart.actor) > 1)
                reply = s_result(rid, 409,
                                 "that actor runs several instances: restart them one at a "
                                 "time by instance name (see ctl status)");
            else if (!child)
                reply = s_result(rid, 404, "no such actor in this supervisor");
            else if (self->shutting_down)
                reply = s_result(rid, 409, "supervisor is shutting down");
            else {
                log_info("operator restart of %s", child_name(child));
                s_stop_child(self, child, true);
                reply = s_result(rid, 0, "restarting");
            }
        } else if (msg->header.type == PROTO_LOG_LEVEL && admin) {
            reply = s_log_level(self, rid, &msg->body.log_level);
        } else if (msg->header.type == PROTO_DRAIN && admin) {
            s_begin_drain(self);
            reply = s_result(rid, 0, "draining");
        } else {
            log_warn("unexpected %s message on %s socket", proto_type_name(msg->header.type),
                     admin ? "admin" : "control");
            reply = s_result(rid, 400, "unexpected message type");
        }
        s_reply(sock, identity, &reply);
        zframe_destroy(&identity);
        proto_msg_destroy(&msg);
    }
}

//  Reaps every exited process, ours or re-parented orphans.
static void s_reap(self_t *self)
{
    while (true) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        child_t *child = s_child_by_pid(self, pid);
        if (child)
            child_exited(child, status, s_now());
        else
            log_debug("reaped orphan pid %d", (int)pid);
    }
}

static void s_handle_signals(self_t *self)
{
    struct signalfd_siginfo info;
    while (read(self->signal_fd, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGCHLD)
            continue; //  reaped below in any case
        char why[32];
        snprintf(why, sizeof why, "signal %u", info.ssi_signo);
        s_begin_shutdown(self, why);
    }
    s_reap(self);
}

//  First start is in order, as in OTP: an actor is not started for the
//  first time while an actor before it is still starting, so the ranker is
//  ready before the gateway sends it traffic. Bounded, since a starting
//  actor is killed at the start timeout. Restarts are not held back.
static bool s_held_back(self_t *self, int index)
{
    if (child_restarts(self->children[index]) > 0 || child_pid(self->children[index]) > 0)
        return false;
    for (int i = 0; i < index; i++)
        if (child_state(self->children[i]) == CHILD_STARTING ||
            (child_state(self->children[i]) == CHILD_BACKOFF &&
             child_restarts(self->children[i]) == 0))
            return true;
    return false;
}

static void s_run_timers(self_t *self)
{
    int64_t now = s_now();
    for (int i = 0; i < self->child_count; i++) {
        child_t *child = self->children[i];
        const char *why = NULL;
        if (child_overdue(child, now, &why)) {
            log_warn("actor %s (pid %d): %s; killing it", child_name(child), (int)child_pid(child),
                     why);
            s_kill(child, SIGKILL);
            child_killed(child, now);
        }
        if (!self->shutting_down && child_due_start(child, now) && !s_held_back(self, i))
            s_spawn(self, child);
    }
    if (!self->shutting_down)
        return;
    if (now >= self->shutdown_deadline) {
        //  Once: SIGKILL cannot be ignored, the loop then only waits to reap.
        if (self->stop_index >= 0)
            for (int i = 0; i < self->child_count; i++)
                if (child_pid(self->children[i]) > 0) {
                    log_warn("grace period over: killing %s", child_name(self->children[i]));
                    s_kill(self->children[i], SIGKILL);
                }
        self->stop_index = -1; //  done asking: the loop ends once all are reaped
        return;
    }
    //  Stop in reverse start order, one at a time: the next actor is asked
    //  only once the previous one has gone.
    if (now < self->stop_next_at)
        return;
    while (self->stop_index >= 0) {
        child_t *child = self->children[self->stop_index];
        child_state_t state = child_state(child);
        if (state == CHILD_STOPPING)
            return; //  still going
        if (state != CHILD_STOPPED) {
            log_info("stopping %s", child_name(child));
            s_stop_child(self, child, false);
            if (child_state(child) == CHILD_STOPPING)
                return;
        }
        self->stop_index--;
    }
}

static bool s_all_stopped(self_t *self)
{
    for (int i = 0; i < self->child_count; i++)
        if (child_pid(self->children[i]) > 0)
            return false;
    return self->stop_index < 0;
}

static long s_poll_timeout(self_t *self)
{
    int64_t now = s_now();
    int64_t timeout = 1000;
    for (int i = 0; i < self->child_count; i++) {
        if (s_held_back(self, i))
            continue; //  woken by the earlier actor's heartbeat instead
        int64_t next = child_next_timer(self->children[i], now);
        if (next >= 0 && next < timeout)
            timeout = next;
    }
    if (self->shutting_down)
        timeout = timeout > 50 ? 50 : timeout;
    return (long)timeout;
}

static int s_setup(self_t *self)
{
    ssize_t n = readlink("/proc/self/exe", self->exe, sizeof self->exe - 1);
    if (n <= 0) {
        log_error("cannot find our own executable: %s", strerror(errno));
        return -1;
    }
    self->exe[n] = '\0';

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (self->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        log_error("cannot set up signals: %s", strerror(errno));
        return -1;
    }
    //  Orphans of our actors come to us even when we are not PID 1.
    if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        log_warn("cannot become a child subreaper: %s", strerror(errno));

    if (s_runtime_dir(self) != 0)
        return -1;
    if (!(self->control = s_bind_router(self, "control")) ||
        !(self->admin = s_bind_router(self, "admin")))
        return -1;
    if (self->cfg->admin_tcp[0] && zsock_attach(self->admin, self->cfg->admin_tcp, true) != 0) {
        log_error("cannot bind RECSD_ADMIN_TCP %s: %s", self->cfg->admin_tcp, zmq_strerror(errno));
        return -1;
    }
    //  Child specs: every actor is permanent (one_for_one); an actor that
    //  runs N times (RECSD_ACTORS name:N) is N children named name.1..N.
    for (int i = 0; i < self->cfg->actor_count; i++) {
        for (int k = 1; k <= self->cfg->actor_instances[i]; k++) {
            char name[48];
            if (config_instance_name(self->cfg, self->cfg->actors[i], k, name, sizeof name) != 0)
                return -1;
            child_t *child = child_new(self->cfg, self->cfg->actors[i], name, RESTART_PERMANENT);
            if (!child)
                return -1;
            self->children[self->child_count++] = child;
        }
    }
    return 0;
}

static void s_teardown(self_t *self)
{
    for (int i = 0; i < self->child_count; i++)
        child_destroy(&self->children[i]);
    zsock_destroy(&self->control);
    zsock_destroy(&self->admin);
    if (self->signal_fd >= 0)
        close(self->signal_fd);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
}

int supervisor_run(const config_t *cfg, const char *self_exe)
{
    (void)self_exe; //  /proc/self/exe is used instead: argv[0] may be relative
    self_t self = {.cfg = cfg, .signal_fd = -1, .lock_fd = -1};
    self.started_at = s_now();
    if (s_setup(&self) != 0) {
        s_teardown(&self);
        return 1;
    }
    log_info("supervisor %s up: pid %d, runtime dir %s, %d actors", RECSD_VERSION, (int)getpid(),
             cfg->runtime_dir, self.child_count);

    while (!(self.shutting_down && s_all_stopped(&self))) {
        zmq_pollitem_t items[] = {
            {NULL, self.signal_fd, ZMQ_POLLIN, 0},
            {zsock_resolve(self.control), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self.admin), 0, ZMQ_POLLIN, 0},
        };
        if (zmq_poll(items, 3, s_poll_timeout(&self)) < 0 && errno != EINTR) {
            log_error("poll failed: %s", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_signals(&self);
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_request(&self, self.control, false);
        if (items[2].revents & ZMQ_POLLIN)
            s_handle_request(&self, self.admin, true);
        s_run_timers(&self);
    }
    //  Reap whatever is left (killed stragglers, orphans) before leaving.
    s_reap(&self);
    log_info("supervisor stopped after %lld ms", (long long)(s_now() - self.started_at));
    s_teardown(&self);
    return 0;
}
