/*  ingestor.c: the event-ingestor actor. Thin in the walking skeleton: a supervised,
    heartbeating process; its work arrives with its own issue. */
#include "ingestor.h"

#include "actor_idle.h"

int ingestor_main(const config_t *cfg, const char *instance)
{
    return actor_idle_run(cfg, instance);
}
