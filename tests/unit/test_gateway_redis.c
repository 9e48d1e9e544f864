/*  test_gateway_redis.c: Redis URL parsing and the readiness PING (gateway_redis.c). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/gateway/gateway_redis.h"
#include "leak_check.h"

TestSuite(gateway_redis, .fini = leak_check_fini);

Test(gateway_redis, parses_tcp_urls)
{
    gateway_redis_addr_t a;
    char err[128];
    cr_assert_eq(gateway_redis_parse("redis://127.0.0.1:6379", &a, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(a.host, "127.0.0.1");
    cr_assert_eq(a.port, 6379);
    cr_assert_eq(a.db, 0);
    cr_assert_str_eq(a.path, "");
    cr_assert_eq(gateway_redis_parse("redis://cache.local", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.host, "cache.local");
    cr_assert_eq(a.port, 6379);
    cr_assert_eq(gateway_redis_parse("redis://h:57601/3", &a, err, sizeof err), 0);
    cr_assert_eq(a.port, 57601);
    cr_assert_eq(a.db, 3);
    cr_assert_eq(gateway_redis_parse("redis://[::1]:7000/0", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.host, "::1");
    cr_assert_eq(a.port, 7000);
    cr_assert_eq(gateway_redis_parse("redis://:s3cr@t@h:1", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.user, "");
    cr_assert_str_eq(a.password, "s3cr@t");
    cr_assert_str_eq(a.host, "h");
    cr_assert_eq(gateway_redis_parse("redis://alice:pw@h", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.user, "alice");
    cr_assert_str_eq(a.password, "pw");
    cr_assert_eq(gateway_redis_parse("redis://pw@h", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.password, "pw");
}

Test(gateway_redis, parses_unix_paths)
{
    gateway_redis_addr_t a;
    char err[128];
    cr_assert_eq(gateway_redis_parse("unix:///run/redis.sock", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.path, "/run/redis.sock");
    cr_assert_str_eq(a.host, "");
    cr_assert_eq(gateway_redis_parse("unix:/tmp/r.sock", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.path, "/tmp/r.sock");
    cr_assert_eq(gateway_redis_parse("/tmp/r.sock", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.path, "/tmp/r.sock");
}

Test(gateway_redis, refuses_bad_urls)
{
    gateway_redis_addr_t a;
    char err[128];
    const char *bad[] = {NULL,
                         "",
                         "http://h",
                         "rediss://h",
                         "redis://",
                         "redis://:6379",
                         "redis://h:0",
                         "redis://h:65536",
                         "redis://h:port",
                         "redis://h/x",
                         "redis://[::1",
                         "redis://[::1]x",
                         "unix://relative",
                         "unix:///a?db=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(gateway_redis_parse(bad[i], &a, err, sizeof err), -1, "%s accepted",
                     bad[i] ? bad[i] : "(null)");
        cr_assert_neq(err[0], '\0');
    }
}

Test(gateway_redis, ping_fails_on_a_closed_port)
{
    //  A port we just had and closed: nothing listens there.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    gateway_redis_addr_t a = {.host = "127.0.0.1", .port = ntohs(sin.sin_port)};
    char detail[256];
    cr_assert_eq(gateway_redis_ping(&a, 300, detail, sizeof detail), -1);
    cr_assert(strstr(detail, "connect failed"), "%s", detail);
}

Test(gateway_redis, ping_succeeds_against_the_test_redis)
{
    const char *url = getenv("RECSD_REDIS_URL");
    if (!url || !*url)
        cr_skip_test("RECSD_REDIS_URL not set (ops/test.sh starts Redis and sets it)");
    gateway_redis_addr_t a;
    char err[256];
    cr_assert_eq(gateway_redis_parse(url, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gateway_redis_ping(&a, 1000, err, sizeof err), 0, "%s: %s", url, err);
    cr_assert_str_eq(err, "PONG");
}
