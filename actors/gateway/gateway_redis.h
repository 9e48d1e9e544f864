/*  gateway_redis.h: where Redis is (parsed from RECSD_REDIS_URL) and a
    one-shot PING for the readiness check.

    Accepted URLs:
        redis://[[user]:password@]host[:port][/db]   host may be [v6addr]
        unix:///path/to/redis.sock   unix:/path   or a bare /path
    rediss:// (TLS) is refused: hiredis is built here without TLS.
*/
#ifndef RECSD_GATEWAY_REDIS_H
#define RECSD_GATEWAY_REDIS_H

#include <stddef.h>

typedef struct {
    char host[256];     //  "" for a unix socket
    int port;           //  TCP port, default 6379
    char path[256];     //  unix socket path, "" for TCP
    int db;             //  database number, default 0
    char user[64];      //  "" = none (AUTH password only)
    char password[128]; //  "" = no AUTH
} gateway_redis_addr_t;

//  Parses url into *addr. Pure. Returns 0, or -1 with the reason in err.
int gateway_redis_parse(const char *url, gateway_redis_addr_t *addr, char *err, size_t errlen);

//  Connects with timeout_ms, AUTHs if a password is set, sends PING and
//  expects PONG. Returns 0 with "PONG ..." in detail, or -1 with the reason
//  in detail. Blocks at most about twice timeout_ms.
int gateway_redis_ping(const gateway_redis_addr_t *addr, int timeout_ms, char *detail,
                       size_t detaillen);

#endif
