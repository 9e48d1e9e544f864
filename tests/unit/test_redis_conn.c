/*  test_redis_conn.c: Redis URL parsing, connection set-up and the readiness
    PING (lib/redis_conn.c). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redis_conn.h"
#include "leak_check.h"

TestSuite(redis_conn, .fini = leak_check_fini);

Test(redis_conn, parses_tcp_urls)
{
    redis_addr_t a;
    char err[128];
    cr_assert_eq(redis_conn_parse("redis://127.0.0.1:6379", &a, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(a.host, "127.0.0.1");
    cr_assert_eq(a.port, 6379);
    cr_assert_eq(a.db, 0);
    cr_assert_str_eq(a.path, "");
    cr_assert_eq(redis_conn_parse("redis://cache.local", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.host, "cache.local");
    cr_assert_eq(a.port, 6379);
    cr_assert_eq(redis_conn_parse("redis://h:57601/3", &a, err, sizeof err), 0);
    cr_assert_eq(a.port, 57601);
    cr_assert_eq(a.db, 3);
    cr_assert_eq(redis_conn_parse("redis://[::1]:7000/0", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.host, "::1");
    cr_assert_eq(a.port, 7000);
    cr_assert_eq(redis_conn_parse("redis://:s3cr@t@h:1", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.user, "");
    cr_assert_str_eq(a.password, "s3cr@t");
    cr_assert_str_eq(a.host, "h");
    cr_assert_eq(redis_conn_parse("redis://alice:pw@h", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.user, "alice");
    cr_assert_str_eq(a.password, "pw");
    cr_assert_eq(redis_conn_parse("redis://pw@h", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.password, "pw");
}

Test(redis_conn, parses_unix_paths)
{
    redis_addr_t a;
    char err[128];
    cr_assert_eq(redis_conn_parse("unix:///run/redis.sock", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.path, "/run/redis.sock");
    cr_assert_str_eq(a.host, "");
    cr_assert_eq(redis_conn_parse("unix:/tmp/r.sock", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.path, "/tmp/r.sock");
    cr_assert_eq(redis_conn_parse("/tmp/r.sock", &a, err, sizeof err), 0);
    cr_assert_str_eq(a.path, "/tmp/r.sock");
}

Test(redis_conn, refuses_bad_urls)
{
    redis_addr_t a;
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
        cr_assert_eq(redis_conn_parse(bad[i], &a, err, sizeof err), -1, "%s accepted",
                     bad[i] ? bad[i] : "(null)");
        cr_assert_neq(err[0], '\0');
    }
}

Test(redis_conn, ping_fails_on_a_closed_port)
{
    //  A port we just had and closed: nothing listens there.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    redis_addr_t a = {.host = "127.0.0.1", .port = ntohs(sin.sin_port)};
    char detail[256];
    cr_assert_eq(redis_conn_ping(&a, 300, detail, sizeof detail), -1);
    cr_assert(strstr(detail, "connect failed"), "%s", detail);
}

Test(redis_conn, ping_succeeds_against_the_test_redis)
{
    const char *url = getenv("RECSD_REDIS_URL");
    if (!url || !*url)
        cr_skip_test("RECSD_REDIS_URL not set (ops/test.sh starts Redis and sets it)");
    redis_addr_t a;
    char err[256];
    cr_assert_eq(redis_conn_parse(url, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(redis_conn_ping(&a, 1000, err, sizeof err), 0, "%s: %s", url, err);
    cr_assert_str_eq(err, "PONG");
}

Test(redis_conn, open_refuses_a_bad_url_and_a_closed_port)
{
    char err[256];
    cr_assert_null(redis_conn_open("http://h", 300, err, sizeof err));
    cr_assert(strstr(err, "redis://"), "%s", err);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(sin.sin_port));
    cr_assert_null(redis_conn_open(url, 300, err, sizeof err));
    cr_assert(strstr(err, "connect failed"), "%s", err);
}

//  The URL's database is selected: a key set through ".../7" is not
//  visible in database 0.
Test(redis_conn, open_selects_the_database_of_the_url)
{
    const char *url = getenv("RECSD_REDIS_URL");
    if (!url || !*url)
        cr_skip_test("RECSD_REDIS_URL not set (ops/test.sh starts Redis and sets it)");
    redis_addr_t addr;
    char err[256];
    cr_assert_eq(redis_conn_parse(url, &addr, err, sizeof err), 0, "%s", err);
    addr.db = 7;
    redisContext *db7 = redis_conn_connect(&addr, 1000, err, sizeof err);
    cr_assert_not_null(db7, "%s", err);
    addr.db = 0;
    redisContext *db0 = redis_conn_connect(&addr, 1000, err, sizeof err);
    cr_assert_not_null(db0, "%s", err);
    char key[64];
    snprintf(key, sizeof key, "recsd:test:redis_conn:%d", (int)getpid());
    redisReply *r = redisCommand(db7, "SET %s yes", key);
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redisCommand(db0, "EXISTS %s", key);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    cr_assert_eq(r->integer, 0, "key leaked into database 0");
    freeReplyObject(r);
    r = redisCommand(db7, "DEL %s", key);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    redisFree(db7);
    redisFree(db0);
}

Test(redis_conn, open_reports_a_refused_auth)
{
    const char *url = getenv("RECSD_REDIS_URL");
    if (!url || !*url)
        cr_skip_test("RECSD_REDIS_URL not set (ops/test.sh starts Redis and sets it)");
    redis_addr_t addr;
    char err[256];
    cr_assert_eq(redis_conn_parse(url, &addr, err, sizeof err), 0, "%s", err);
    if (addr.password[0])
        cr_skip_test("the test Redis has a password");
    //  The test Redis has no password: a wrong one is an AUTH error, not a hang.
    snprintf(addr.password, sizeof addr.password, "not-the-password");
    cr_assert_null(redis_conn_connect(&addr, 1000, err, sizeof err));
    cr_assert(strstr(err, "AUTH failed"), "%s", err);
}
