/*  supervisor.c: placeholder until implemented. */
#include "supervisor.h"
int supervisor_run(const config_t *cfg, const char *self_exe)
{
    (void)cfg; (void)self_exe; return 1;
}
