/*  migrate.c: placeholder until implemented. */
#include "migrate.h"
int migrate_run(const config_t *cfg)
{
    (void)cfg; return -1;
}
