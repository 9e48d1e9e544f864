/*  auth_cmd.h: the recsd commands that help operate API authentication:

      recsd token --sub ID [--roles r1,r2] [--ttl SECONDS]
          prints an HS256 JWT signed with RECSD_JWT_HS256_SECRET (iss and
          aud from RECSD_JWT_ISSUER / RECSD_JWT_AUDIENCE when set) for
          development, the demo and tests; production tokens come from
          the identity provider.
      recsd hash-api-key [--roles r1+r2] [--name NAME] [KEY]
          prints the RECSD_API_KEYS entry for KEY (a new random key is
          made and printed first when none is given): only the hash goes
          into the configuration.
*/
#ifndef RECSD_AUTH_CMD_H
#define RECSD_AUTH_CMD_H

#include "config.h"

//  argv[0] is the command name. Return the process exit status.
int auth_cmd_token(const config_t *cfg, int argc, char **argv);
int auth_cmd_hash_api_key(int argc, char **argv);

#endif
