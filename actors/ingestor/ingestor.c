/*  ingestor.c: placeholder until implemented. */
#include "ingestor.h"
int ingestor_main(const config_t *cfg)
{
    (void)cfg; return 1;
}
