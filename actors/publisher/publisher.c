/*  publisher.c: placeholder until implemented. */
#include "publisher.h"
int publisher_main(const config_t *cfg)
{
    (void)cfg; return 1;
}
