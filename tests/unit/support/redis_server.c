/*  redis_server.c: private redis-servers for unit tests (see the header). */
#include "redis_server.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis_conn.h"
#include "tmp_dir.h"

struct redis_server_t {
    pid_t pid; //  -1 while stopped
    int port;
    char dir[256];
    char url[64];
    int saved_stderr; //  the real fd 2 while captured, else -1
};

static void s_stderr_path(redis_server_t *self, char *path, size_t len)
{
    snprintf(path, len, "%s/stderr.log", self->dir);
}

//  A port nothing listens on now: the kernel's pick for an ephemeral bind.
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0, "socket failed");
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t slen = sizeof sin;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

//  Starts redis-server and waits until it answers PING (up to 200 x 20 ms).
static void s_start(redis_server_t *self)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", self->port);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed");
    if (pid == 0) {
        execlp("redis-server", "redis-server", "--port", port_s, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--dir", self->dir, "--logfile", "redis.log",
               (char *)NULL);
        _exit(127);
    }
    self->pid = pid;
    redis_addr_t addr = {.host = "127.0.0.1", .port = self->port};
    char detail[160] = "";
    for (int i = 0; i < 200; i++) {
        if (redis_conn_ping(&addr, 100, detail, sizeof detail) == 0)
            return;
        usleep(20 * 1000);
    }
    redis_server_kill(self);
    cr_assert_fail("redis-server on port %d did not come up: %s", self->port, detail);
}

redis_server_t *redis_server_new(const char *prefix)
{
    redis_server_t *self = calloc(1, sizeof *self);
    cr_assert_not_null(self, "out of memory");
    self->pid = -1;
    self->saved_stderr = -1;
    if (tmp_dir_make(self->dir, sizeof self->dir, prefix) != 0) {
        free(self);
        cr_assert_fail("cannot make a directory for redis-server");
    }
    self->port = s_free_port();
    snprintf(self->url, sizeof self->url, "redis://127.0.0.1:%d", self->port);
    s_start(self);
    return self;
}

void redis_server_destroy(redis_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    redis_server_t *self = *self_p;
    redis_server_stderr_restore(self);
    redis_server_kill(self);
    tmp_dir_remove(self->dir);
    free(self);
    *self_p = NULL;
}

const char *redis_server_url(redis_server_t *self)
{
    return self->url;
}

const char *redis_server_dir(redis_server_t *self)
{
    return self->dir;
}

pid_t redis_server_pid(redis_server_t *self)
{
    return self->pid;
}

void redis_server_kill(redis_server_t *self)
{
    if (self->pid <= 0)
        return;
    //  A frozen server dies of SIGKILL too; reaping it cannot hang.
    if (kill(self->pid, SIGKILL) != 0)
        perror("redis_server: kill");
    if (waitpid(self->pid, NULL, 0) < 0)
        perror("redis_server: waitpid");
    self->pid = -1;
}

void redis_server_restart(redis_server_t *self)
{
    cr_assert_eq(self->pid, -1, "redis_server_restart: the server still runs");
    s_start(self);
}

void redis_server_freeze(redis_server_t *self)
{
    cr_assert_gt(self->pid, 0, "redis_server_freeze: no server");
    cr_assert_eq(kill(self->pid, SIGSTOP), 0);
}

void redis_server_thaw(redis_server_t *self)
{
    cr_assert_gt(self->pid, 0, "redis_server_thaw: no server");
    cr_assert_eq(kill(self->pid, SIGCONT), 0);
}

void redis_server_stderr_capture(redis_server_t *self)
{
    cr_assert_eq(self->saved_stderr, -1, "redis_server: stderr is already captured");
    char path[300];
    s_stderr_path(self, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "cannot open %s", path);
    self->saved_stderr = dup(2);
    cr_assert_geq(self->saved_stderr, 0, "cannot keep stderr");
    cr_assert_geq(dup2(fd, 2), 0, "cannot redirect stderr");
    close(fd);
}

void redis_server_stderr_restore(redis_server_t *self)
{
    if (self->saved_stderr < 0)
        return;
    if (dup2(self->saved_stderr, 2) < 0)
        perror("redis_server: restoring stderr");
    close(self->saved_stderr);
    self->saved_stderr = -1;
}

int redis_server_stderr_count(redis_server_t *self, const char *needle)
{
    char path[300];
    s_stderr_path(self, path, sizeof path);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    char line[1024];
    int count = 0;
    while (fgets(line, sizeof line, f))
        count += strstr(line, needle) != NULL;
    fclose(f);
    return count;
}
