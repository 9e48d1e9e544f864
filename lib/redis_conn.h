/*  redis_conn.h: where Redis is (parsed from RECSD_REDIS_URL) and opening
    connections to it the same way everywhere.

    Accepted URLs:
        redis://[[user]:password@]host[:port][/db]   host may be [v6addr]
        unix:///path/to/redis.sock   unix:/path   or a bare /path
    rediss:// (TLS) is refused: hiredis is built here without TLS.

    Every connection is made with a connect timeout, gets the same timeout
    on its reads and writes (so a hung Redis costs a caller at most that
    long per command, never forever), AUTHs when the URL has a password and
    SELECTs the database when it is not 0.
*/
#ifndef RECSD_REDIS_CONN_H
#define RECSD_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct {
    char host[256];     //  "" for a unix socket
    int port;           //  TCP port, default 6379
    char path[256];     //  unix socket path, "" for TCP
    int db;             //  database number, default 0
    char user[64];      //  "" = none (AUTH password only)
    char password[128]; //  "" = no AUTH
} redis_addr_t;

//  Parses url into *addr. Pure. Returns 0, or -1 with the reason in err.
int redis_conn_parse(const char *url, redis_addr_t *addr, char *err, size_t errlen);

//  Connects to addr with timeout_ms for the connect and for every later
//  command, AUTHs and SELECTs as the address says. Returns a context the
//  caller owns (redisFree), or NULL with the reason in err.
redisContext *redis_conn_connect(const redis_addr_t *addr, int timeout_ms, char *err,
                                 size_t errlen);

//  redis_conn_parse + redis_conn_connect. Returns a context the caller owns
//  (redisFree), or NULL with the reason in err.
redisContext *redis_conn_open(const char *url, int timeout_ms, char *err, size_t errlen);

//  Connects, sends PING and expects PONG (the readiness check). Returns 0
//  with "PONG" in detail, or -1 with the reason in detail. Blocks at most
//  about three times timeout_ms.
int redis_conn_ping(const redis_addr_t *addr, int timeout_ms, char *detail, size_t detaillen);

#endif
