/*  ctl.c: placeholder until implemented. */
#include "ctl.h"
int ctl_main(const config_t *cfg, int argc, char **argv)
{
    (void)cfg; (void)argc; (void)argv; return 1;
}
