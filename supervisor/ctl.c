/*  ctl.c: `recsd ctl`, one request to the supervisor's admin socket. */
#include "ctl.h"

#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "log.h"
#include "proto/proto_zmq.h"

#define CTL_TIMEOUT_MS 3000

//  Sends req and waits for the reply with the same request id. Returns the
//  reply (caller owns) or NULL with a message printed.
static proto_msg_t *s_ask(const config_t *cfg, proto_msg_t *req)
{
    char endpoint[160];
    if (cfg->admin_tcp[0])
        snprintf(endpoint, sizeof endpoint, "%s", cfg->admin_tcp);
    else if (config_endpoint(cfg, "admin", endpoint, sizeof endpoint) != 0) {
        fprintf(stderr, "recsd ctl: admin endpoint path too long\n");
        return NULL;
    }
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    zsock_set_maxmsgsize(sock, PROTO_MAX_MESSAGE);
    proto_msg_t *reply = NULL;
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        fprintf(stderr, "recsd ctl: cannot connect to %s\n", endpoint);
        goto done;
    }
    //  The first send may race the connection; a blocking zmq_send with a
    //  timeout waits for the pipe rather than failing.
    zsock_set_sndtimeo(sock, CTL_TIMEOUT_MS);
    char err[256];
    char *data = NULL;
    size_t size = 0;
    if (proto_encode(req, &data, &size, err, sizeof err) != 0) {
        fprintf(stderr, "recsd ctl: %s\n", err);
        goto done;
    }
    int rc = zmq_send(zsock_resolve(sock), data, size, 0);
    free(data);
    if (rc < 0) {
        fprintf(stderr, "recsd ctl: no answer from the supervisor at %s (is `recsd run` up?): %s\n",
                endpoint, zmq_strerror(errno));
        goto done;
    }
    int64_t deadline = zclock_mono() + CTL_TIMEOUT_MS;
    while (!reply && zclock_mono() < deadline) {
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long)(deadline - zclock_mono())) <= 0)
            continue;
        reply = proto_recv(sock, NULL, err, sizeof err);
        if (!reply)
            fprintf(stderr, "recsd ctl: bad reply: %s\n", err);
        else if (strcmp(reply->header.request_id, req->header.request_id) != 0)
            proto_msg_destroy(&reply); //  not ours
    }
    if (!reply)
        fprintf(stderr, "recsd ctl: no answer from the supervisor at %s (is `recsd run` up?)\n",
                endpoint);
done:
    zsock_destroy(&sock);
    return reply;
}

static void s_duration(char *buf, size_t len, int64_t ms)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else if (ms < 10000)
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, len, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else
        snprintf(buf, len, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
}

static void s_print_table(const proto_status_rep_t *status)
{
    char up[32];
    s_duration(up, sizeof up, status->uptime_ms);
    printf("supervisor up %s%s\n", up, status->draining ? ", DRAINING" : "");
    printf("%-15s %8s %-9s %8s %9s %9s %9s %10s %6s\n", "ACTOR", "PID", "STATE", "RESTARTS",
           "UPTIME", "HEARTBEAT", "RSS", "HANDLED", "QUEUE");
    for (uint32_t i = 0; i < status->count; i++) {
        const proto_actor_status_t *row = &status->actors[i];
        char uptime[32], beat[32], rss[32], pid[16];
        s_duration(uptime, sizeof uptime, row->uptime_ms);
        s_duration(beat, sizeof beat, row->heartbeat_age_ms);
        snprintf(rss, sizeof rss, "%.1fM", (double)row->rss_bytes / 1048576.0);
        snprintf(pid, sizeof pid, "%d", (int)row->pid);
        printf("%-15s %8s %-9s %8u %9s %9s %9s %10llu %6llu\n", row->name, row->pid ? pid : "-",
               row->state, row->restarts, uptime, beat, row->pid ? rss : "-",
               (unsigned long long)row->handled, (unsigned long long)row->queue_depth);
    }
}

static int s_print_json(const proto_status_rep_t *status)
{
    json_t *actors = json_array();
    for (uint32_t i = 0; i < status->count; i++) {
        const proto_actor_status_t *row = &status->actors[i];
        json_array_append_new(
            actors,
            json_pack("{s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "name", row->name,
                      "pid", (int)row->pid, "state", row->state, "restarts",
                      (json_int_t)row->restarts, "uptime_ms", (json_int_t)row->uptime_ms,
                      "heartbeat_age_ms", (json_int_t)row->heartbeat_age_ms, "rss_bytes",
                      (json_int_t)row->rss_bytes, "handled", (json_int_t)row->handled,
                      "queue_depth", (json_int_t)row->queue_depth, "log_level", row->log_level));
    }
    json_t *root =
        json_pack("{s:b, s:I, s:s, s:o}", "draining", status->draining, "uptime_ms",
                  (json_int_t)status->uptime_ms, "log_level", status->log_level, "actors", actors);
    if (!root)
        return 1;
    int rc = json_dumpf(root, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
    printf("\n");
    json_decref(root);
    return rc;
}

//  `ctl log-level` without a level: the supervisor's and each actor's.
static void s_print_levels(const proto_status_rep_t *status)
{
    printf("%-15s %s\n", "ACTOR", "LOG_LEVEL");
    printf("%-15s %s\n", "supervisor", status->log_level[0] ? status->log_level : "-");
    for (uint32_t i = 0; i < status->count; i++) {
        const proto_actor_status_t *row = &status->actors[i];
        printf("%-15s %s\n", row->name, row->log_level[0] ? row->log_level : "-");
    }
}

//  Checks an ACTOR argument: an actor name, an instance name ("ranker.2"),
//  "supervisor" or "all". Returns 0, or -1 with a message printed.
static int s_check_target(const char *target)
{
    if (strcmp(target, "supervisor") == 0 || strcmp(target, "all") == 0)
        return 0;
    char kind[32];
    snprintf(kind, sizeof kind, "%s", target);
    kind[strcspn(kind, ".")] = '\0'; //  "ranker.2" is an instance of ranker
    if (!config_actor_known(kind) || strlen(target) > PROTO_NAME_MAX) {
        fprintf(stderr, "recsd ctl: unknown actor \"%s\"\n", target);
        return -1;
    }
    return 0;
}

#define CTL_USAGE                                                                                  \
    "usage: recsd ctl status [--json] | restart ACTOR | drain |\n"                                 \
    "                 log-level [debug|info|warn|error [ACTOR|supervisor|all]]\n"

int ctl_main(const config_t *cfg, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, CTL_USAGE);
        return 2;
    }
    proto_msg_t *req = NULL;
    bool json = false, levels = false;
    if (strcmp(argv[0], "status") == 0 && argc <= 2) {
        json = argc == 2 && strcmp(argv[1], "--json") == 0;
        if (argc == 2 && !json) {
            fprintf(stderr, "usage: recsd ctl status [--json]\n");
            return 2;
        }
        req = proto_msg_new(PROTO_STATUS_REQ, NULL);
    } else if (strcmp(argv[0], "restart") == 0 && argc == 2) {
        char kind[32];
        snprintf(kind, sizeof kind, "%s", argv[1]);
        kind[strcspn(kind, ".")] = '\0'; //  "ranker.2" is an instance of ranker
        if (!config_actor_known(kind)) {
            fprintf(stderr, "recsd ctl: unknown actor \"%s\"\n", argv[1]);
            return 2;
        }
        req = proto_msg_new(PROTO_RESTART_REQ, NULL);
        if (req)
            snprintf(req->body.restart.actor, sizeof req->body.restart.actor, "%s", argv[1]);
    } else if (strcmp(argv[0], "drain") == 0 && argc == 1) {
        req = proto_msg_new(PROTO_DRAIN, NULL);
    } else if (strcmp(argv[0], "log-level") == 0 && argc == 1) {
        levels = true;
        req = proto_msg_new(PROTO_STATUS_REQ, NULL);
    } else if (strcmp(argv[0], "log-level") == 0 && argc <= 3) {
        log_level_t level;
        if (log_level_parse(argv[1], &level) != 0) {
            fprintf(stderr, "recsd ctl: unknown log level \"%s\" (debug, info, warn or error)\n",
                    argv[1]);
            return 2;
        }
        const char *target = argc == 3 ? argv[2] : "";
        if (argc == 3 && s_check_target(target) != 0)
            return 2;
        req = proto_msg_new(PROTO_LOG_LEVEL, NULL);
        if (req) {
            snprintf(req->body.log_level.level, sizeof req->body.log_level.level, "%s",
                     log_level_name(level));
            snprintf(req->body.log_level.actor, sizeof req->body.log_level.actor, "%s",
                     strcmp(target, "all") == 0 ? "" : target);
        }
    } else {
        fprintf(stderr, CTL_USAGE);
        return 2;
    }
    if (!req)
        return 1;
    proto_msg_t *reply = s_ask(cfg, req);
    proto_msg_destroy(&req);
    if (!reply)
        return 1;
    int rc = 0;
    if (reply->header.type == PROTO_STATUS_REP && levels)
        s_print_levels(&reply->body.status);
    else if (reply->header.type == PROTO_STATUS_REP)
        rc = json ? s_print_json(&reply->body.status) : (s_print_table(&reply->body.status), 0);
    else if (reply->header.type == PROTO_RESULT) {
        rc = reply->body.result.code == 0 ? 0 : 1;
        fprintf(rc ? stderr : stdout, "%s\n", reply->body.result.message);
    } else {
        fprintf(stderr, "recsd ctl: unexpected %s reply\n", proto_type_name(reply->header.type));
        rc = 1;
    }
    proto_msg_destroy(&reply);
    return rc;
}
