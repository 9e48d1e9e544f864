/*  redis_conn.c: Redis URL parsing and connection set-up (see redis_conn.h). */
#include "redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static int s_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

//  Parses a decimal in [lo, hi] from text[0..len). Returns 0 or -1.
static int s_number(const char *text, size_t len, int lo, int hi, int *out)
{
    if (len == 0 || len > 9)
        return -1;
    int value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    if (value < lo || value > hi)
        return -1;
    *out = value;
    return 0;
}

static int s_copy(char *dst, size_t dstlen, const char *src, size_t len)
{
    if (len >= dstlen)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

static int s_parse_unix(const char *path, redis_addr_t *addr, char *err, size_t errlen)
{
    //  A query string like "?db=1" is not worth supporting; refuse it clearly.
    if (path[0] != '/')
        return s_fail(err, errlen, "unix socket path must be absolute");
    if (strchr(path, '?'))
        return s_fail(err, errlen, "unix socket URL must not have a query string");
    if (s_copy(addr->path, sizeof addr->path, path, strlen(path)))
        return s_fail(err, errlen, "unix socket path too long");
    return 0;
}

int redis_conn_parse(const char *url, redis_addr_t *addr, char *err, size_t errlen)
{
    memset(addr, 0, sizeof *addr);
    addr->port = 6379;
    if (!url || !*url)
        return s_fail(err, errlen, "empty Redis URL");
    if (strncmp(url, "unix://", 7) == 0)
        return s_parse_unix(url + 7, addr, err, errlen);
    if (strncmp(url, "unix:", 5) == 0)
        return s_parse_unix(url + 5, addr, err, errlen);
    if (url[0] == '/')
        return s_parse_unix(url, addr, err, errlen);
    if (strncmp(url, "rediss://", 9) == 0)
        return s_fail(err, errlen, "rediss:// (TLS) is not supported");
    if (strncmp(url, "redis://", 8) != 0)
        return s_fail(err, errlen, "Redis URL must start with redis:// or unix://");

    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    //  userinfo: the last '@' before the path, so a password may hold '@'.
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (s_copy(addr->user, sizeof addr->user, p, (size_t)(colon - p)) ||
                s_copy(addr->password, sizeof addr->password, colon + 1, (size_t)(at - colon - 1)))
                return s_fail(err, errlen, "Redis user or password too long");
        } else if (s_copy(addr->password, sizeof addr->password, p, (size_t)(at - p)))
            //  redis://secret@host: the whole userinfo is the password, as
            //  redis-cli and most client libraries read it.
            return s_fail(err, errlen, "Redis password too long");
        p = at + 1;
    }
    const char *host_end;
    const char *port_start = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close)
            return s_fail(err, errlen, "unterminated [IPv6] host in Redis URL");
        if (s_copy(addr->host, sizeof addr->host, p + 1, (size_t)(close - p - 1)))
            return s_fail(err, errlen, "Redis host too long");
        host_end = close + 1;
        if (host_end < end && *host_end != ':')
            return s_fail(err, errlen, "unexpected text after [IPv6] host in Redis URL");
        if (host_end < end)
            port_start = host_end + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host_end = colon ? colon : end;
        if (s_copy(addr->host, sizeof addr->host, p, (size_t)(host_end - p)))
            return s_fail(err, errlen, "Redis host too long");
        if (colon)
            port_start = colon + 1;
    }
    if (!addr->host[0])
        return s_fail(err, errlen, "Redis URL has no host");
    if (port_start && s_number(port_start, (size_t)(end - port_start), 1, 65535, &addr->port))
        return s_fail(err, errlen, "Redis port must be 1..65535");
    if (*end == '/') {
        const char *db = end + 1;
        size_t len = strcspn(db, "?#");
        if (len && s_number(db, len, 0, 1000000, &addr->db))
            return s_fail(err, errlen, "Redis database must be a number");
    }
    return 0;
}

//  Runs one command that must not answer with an error. Returns 0, or -1
//  with "<what> failed: <why>" in err.
static int s_expect_ok(redisContext *ctx, redisReply *reply, const char *what, char *err,
                       size_t errlen)
{
    int rc = 0;
    if (!reply) {
        snprintf(err, errlen, "%s failed: %s", what, ctx->errstr);
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s failed: %.200s", what, reply->str);
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

redisContext *redis_conn_connect(const redis_addr_t *addr, int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000,
                         .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
    redisContext *ctx = addr->path[0] ? redisConnectUnixWithTimeout(addr->path, tv)
                                      : redisConnectWithTimeout(addr->host, addr->port, tv);
    if (!ctx) {
        snprintf(err, errlen, "cannot allocate a Redis context");
        return NULL;
    }
    if (ctx->err) {
        snprintf(err, errlen, "connect failed: %s", ctx->errstr);
        goto err;
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        snprintf(err, errlen, "cannot set timeout: %s", ctx->errstr);
        goto err;
    }
    if (addr->password[0] &&
        s_expect_ok(ctx,
                    addr->user[0] ? redisCommand(ctx, "AUTH %s %s", addr->user, addr->password)
                                  : redisCommand(ctx, "AUTH %s", addr->password),
                    "AUTH", err, errlen) != 0)
        goto err;
    if (addr->db != 0 &&
        s_expect_ok(ctx, redisCommand(ctx, "SELECT %d", addr->db), "SELECT", err, errlen) != 0)
        goto err;
    return ctx;
err:
    redisFree(ctx);
    return NULL;
}

redisContext *redis_conn_open(const char *url, int timeout_ms, char *err, size_t errlen)
{
    redis_addr_t addr;
    if (redis_conn_parse(url, &addr, err, errlen) != 0)
        return NULL;
    return redis_conn_connect(&addr, timeout_ms, err, errlen);
}

int redis_conn_ping(const redis_addr_t *addr, int timeout_ms, char *detail, size_t detaillen)
{
    redisContext *ctx = redis_conn_connect(addr, timeout_ms, detail, detaillen);
    if (!ctx)
        return -1;
    int rc = -1;
    redisReply *reply = redisCommand(ctx, "PING");
    if (!reply) {
        snprintf(detail, detaillen, "PING failed: %s", ctx->errstr);
        goto done;
    }
    if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "PONG") != 0) {
        snprintf(detail, detaillen, "PING answered %.100s",
                 reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_STATUS
                     ? reply->str
                     : "something unexpected");
        goto done;
    }
    snprintf(detail, detaillen, "PONG");
    rc = 0;
done:
    if (reply)
        freeReplyObject(reply);
    redisFree(ctx);
    return rc;
}
