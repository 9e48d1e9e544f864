/*  publisher.c: the publisher actor. Thin in the walking skeleton: a supervised,
    heartbeating process; its work arrives with its own issue. */
#include "publisher.h"

#include "actor_idle.h"

int publisher_main(const config_t *cfg, const char *instance)
{
    return actor_idle_run(cfg, instance);
}
