/*  movielens_import.c: placeholder until implemented. */
#include "movielens_import.h"
int movielens_import_main(const config_t *cfg, int argc, char **argv)
{
    (void)cfg; (void)argc; (void)argv; return 1;
}
