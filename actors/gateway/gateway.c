/*  gateway.c: placeholder until implemented. */
#include "gateway.h"
int gateway_main(const config_t *cfg)
{
    (void)cfg; return 1;
}
