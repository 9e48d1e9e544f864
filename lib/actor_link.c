/*  actor_link.c: an actor's heartbeat/command link to the supervisor.

    The link also owns the actor's SIGTERM/SIGINT handling: the signals are
    blocked in actor_link_new (before the actor starts any thread, so every
    thread inherits the mask) and read from a signalfd at each tick, which
    turns them into the same "stopping" flag that a STOP command sets. No
    signal handler, no global flag.
*/
#include "actor_link.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "proto/proto_zmq.h"

struct actor_link_t {
    const config_t *cfg;
    char name[PROTO_NAME_MAX + 1];
    zsock_t *control;
    int signal_fd;
    bool ready;
    bool stopping;
    bool draining;
    uint64_t handled;
    uint64_t queue_depth;
    int64_t next_beat;   //  zclock_mono() ms
    proto_msg_t *status; //  latest STATUS_REP, owned
    char *metrics;       //  sent with every heartbeat, owned, may be NULL
};

actor_link_t *actor_link_new(const config_t *cfg, const char *name)
{
    actor_link_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->signal_fd = -1;
    snprintf(self->name, sizeof self->name, "%s", name);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (self->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        goto err;
    }

    char endpoint[160];
    if (config_endpoint(cfg, "control", endpoint, sizeof endpoint) != 0) {
        log_error("control endpoint path too long");
        goto err;
    }
    self->control = zsock_new(ZMQ_DEALER);
    if (!self->control)
        goto err;
    zsock_set_identity(self->control, name);
    zsock_set_linger(self->control, 100);
    zsock_set_maxmsgsize(self->control, PROTO_MAX_MESSAGE);
    //  Heartbeats queue only a few deep: a stale backlog of beats delivered
    //  to a restarted supervisor would be misleading. No ZMQ_IMMEDIATE: the
    //  first "ready" beat is sent before the ipc connection completes and
    //  must wait for it rather than be dropped.
    zsock_set_sndhwm(self->control, 16);
    if (zsock_connect(self->control, "%s", endpoint) != 0) {
        log_error("cannot connect to supervisor at %s: %s", endpoint, zmq_strerror(errno));
        goto err;
    }
    self->next_beat = zclock_mono();
    return self;
err:
    actor_link_destroy(&self);
    return NULL;
}

static void s_send_heartbeat(actor_link_t *self, const char *state)
{
    proto_msg_t *msg = proto_msg_new(PROTO_HEARTBEAT, NULL);
    if (!msg)
        return;
    proto_heartbeat_t *hb = &msg->body.heartbeat;
    snprintf(hb->name, sizeof hb->name, "%s", self->name);
    hb->pid = (int32_t)getpid();
    snprintf(hb->state, sizeof hb->state, "%s", state);
    hb->handled = self->handled;
    hb->queue_depth = self->queue_depth;
    //  The message owns its copy; a failed copy only drops the metrics.
    hb->metrics = self->metrics ? strdup(self->metrics) : NULL;
    //  The supervisor compares it with its setting and tells us again if
    //  they differ (see supervisor.c).
    snprintf(hb->log_level, sizeof hb->log_level, "%s", log_level_name(log_get_level()));
    //  A lost beat is not an error: the supervisor tolerates several.
    if (proto_send(self->control, NULL, msg) != 0 && errno != EAGAIN)
        log_debug("heartbeat not sent: %s", zmq_strerror(errno));
    proto_msg_destroy(&msg);
    self->next_beat = zclock_mono() + self->cfg->heartbeat_interval_ms;
}

void actor_link_destroy(actor_link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    actor_link_t *self = *self_p;
    if (self->control) {
        s_send_heartbeat(self, "stopping");
        zsock_destroy(&self->control);
    }
    if (self->signal_fd >= 0)
        close(self->signal_fd);
    proto_msg_destroy(&self->status);
    free(self->metrics);
    free(self);
    *self_p = NULL;
}

zsock_t *actor_link_socket(actor_link_t *self)
{
    return self->control;
}

void actor_link_set_ready(actor_link_t *self)
{
    self->ready = true;
    s_send_heartbeat(self, "ready");
}

void actor_link_count_handled(actor_link_t *self, uint64_t n)
{
    self->handled += n;
}

void actor_link_set_queue_depth(actor_link_t *self, uint64_t depth)
{
    self->queue_depth = depth;
}

int actor_link_set_metrics(actor_link_t *self, const char *text)
{
    if (text && strlen(text) > PROTO_METRICS_MAX)
        return -1;
    char *copy = text ? strdup(text) : NULL;
    if (text && !copy)
        return -1;
    free(self->metrics);
    self->metrics = copy;
    return 0;
}

//  PROTO_LOG_LEVEL: the operator's `recsd ctl log-level`, forwarded.
static void s_set_log_level(actor_link_t *self, const char *name)
{
    log_level_t level, before = log_get_level();
    if (log_level_parse(name, &level) != 0) {
        log_warn("ignored unknown log level \"%s\" from supervisor", name);
        return;
    }
    if (level == before)
        return; //  a repeat (the supervisor re-sends until a heartbeat agrees)
    //  Logged at the more verbose of the two levels, so the line shows.
    if (level > before)
        log_info("log level set to %s by the supervisor", log_level_name(level));
    log_set_level(level);
    if (level < before)
        log_info("log level set to %s by the supervisor", log_level_name(level));
    //  Report it at once, so `recsd ctl log-level` shows it.
    s_send_heartbeat(self, self->stopping ? "stopping" : self->ready ? "ready" : "starting");
}

int actor_link_handle(actor_link_t *self)
{
    int handled = 0;
    while (true) {
        char err[256];
        proto_msg_t *msg = proto_recv(self->control, NULL, err, sizeof err);
        if (!msg) {
            if (errno == EAGAIN)
                break;
            log_warn("rejected message from supervisor: %s", err);
            continue;
        }
        handled++;
        switch (msg->header.type) {
        case PROTO_STOP:
            log_info("stop requested by supervisor");
            self->stopping = true;
            break;
        case PROTO_DRAIN:
            log_info("drain requested by supervisor");
            self->draining = true;
            break;
        case PROTO_LOG_LEVEL:
            s_set_log_level(self, msg->body.log_level.level);
            break;
        case PROTO_STATUS_REP:
            proto_msg_destroy(&self->status);
            self->status = msg;
            msg = NULL;
            break;
        default:
            log_warn("unexpected %s message from supervisor", proto_type_name(msg->header.type));
            break;
        }
        proto_msg_destroy(&msg);
    }
    return handled;
}

static void s_check_signals(actor_link_t *self)
{
    struct signalfd_siginfo info;
    while (read(self->signal_fd, &info, sizeof info) == sizeof info) {
        log_info("received signal %u, stopping", info.ssi_signo);
        self->stopping = true;
    }
}

void actor_link_tick(actor_link_t *self)
{
    s_check_signals(self);
    if (zclock_mono() >= self->next_beat)
        s_send_heartbeat(self, self->stopping ? "stopping" : self->ready ? "ready" : "starting");
}

long actor_link_timeout_ms(actor_link_t *self)
{
    int64_t left = self->next_beat - zclock_mono();
    //  Wake at least every 100 ms so a signal is noticed promptly.
    return left < 0 ? 0 : left > 100 ? 100 : (long)left;
}

int actor_link_request_status(actor_link_t *self)
{
    proto_msg_t *msg = proto_msg_new(PROTO_STATUS_REQ, NULL);
    if (!msg)
        return -1;
    int rc = proto_send(self->control, NULL, msg);
    proto_msg_destroy(&msg);
    return rc;
}

proto_msg_t *actor_link_take_status(actor_link_t *self)
{
    proto_msg_t *status = self->status;
    self->status = NULL;
    return status;
}

bool actor_link_stopping(actor_link_t *self)
{
    return self->stopping;
}

bool actor_link_draining(actor_link_t *self)
{
    return self->draining;
}

void actor_link_request_stop(actor_link_t *self)
{
    self->stopping = true;
}
