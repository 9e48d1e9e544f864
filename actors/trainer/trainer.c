/*  trainer.c: placeholder until implemented. */
#include "trainer.h"
int trainer_main(const config_t *cfg)
{
    (void)cfg; return 1;
}
