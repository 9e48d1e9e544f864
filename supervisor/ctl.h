/*  ctl.h: `recsd ctl`, the admin client for a running supervisor. */
#ifndef RECSD_CTL_H
#define RECSD_CTL_H

#include "config.h"

//  argv: "status" ["--json"] | "restart" ACTOR | "drain" |
//  "log-level" [LEVEL [ACTOR|supervisor|all]]. Talks to the admin
//  socket in cfg->runtime_dir. Returns 0, 1 on a failed command or no answer,
//  2 on bad usage.
int ctl_main(const config_t *cfg, int argc, char **argv);

#endif
