/*  ranker.c: placeholder until implemented. */
#include "ranker.h"
int ranker_main(const config_t *cfg)
{
    (void)cfg; return 1;
}
