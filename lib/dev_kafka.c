/*  dev_kafka.c: placeholder until implemented. */
#include "dev_kafka.h"
#include <stdio.h>
int dev_kafka_main(int argc, char **argv)
{
    (void)argc; (void)argv; fprintf(stderr, "not implemented\n"); return 1;
}
