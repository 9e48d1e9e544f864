/*  actor_idle.c: heartbeat-only actor loop (see actor_idle.h). */
#include "actor_idle.h"

#include <errno.h>

#include "actor_link.h"
#include "log.h"

int actor_idle_run(const config_t *cfg, const char *name)
{
    actor_link_t *link = actor_link_new(cfg, name);
    if (!link)
        return 1;
    actor_link_set_ready(link);
    log_info("%s ready (no work assigned yet)", name);
    while (!actor_link_stopping(link)) {
        zmq_pollitem_t item = {zsock_resolve(actor_link_socket(link)), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, actor_link_timeout_ms(link)) < 0 && errno != EINTR)
            break;
        if (item.revents & ZMQ_POLLIN)
            actor_link_handle(link);
        actor_link_tick(link);
    }
    log_info("%s stopping", name);
    actor_link_destroy(&link);
    return 0;
}
