/*  log_file.c: a log file shared by processes, rotated by size (see
    log_file.h for the protocol between the processes).
*/
#include "log_file.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  A file moved or removed by hand (not over the limit) is noticed after
//  this many lines or milliseconds.
#define S_CHECK_LINES 100
#define S_CHECK_MS 1000
//  After a failed open or rotation, the next attempt waits this long, so a
//  broken disk does not cost a lock and several syscalls per line.
#define S_RETRY_MS 1000

struct log_file_t {
    pthread_mutex_t mutex; //  guards everything below
    char *path;
    char *lock_path;
    char *scratch[2]; //  buffers for rotated names, strlen(path) + 16 each
    uint64_t max_bytes;
    int keep;
    int fd;      //  the file we append to; -1 after a failed reopen
    int lock_fd; //  "<path>.lock", flock'ed while rotating
    dev_t dev;   //  identity of the file fd has open
    ino_t ino;
    unsigned lines_since_check;
    int64_t checked_at;      //  last check that path names our file
    int64_t open_retry_at;   //  fd < 0: when to try opening again
    int64_t rotate_retry_at; //  after a failed rotation
    uint64_t failures;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Opens path for appending and makes it the file we write. Returns 0, or
//  -1 with errno set (the previous file, if any, stays in use).
static int s_open(log_file_t *self)
{
    int fd = open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (self->fd >= 0)
        close(self->fd);
    self->fd = fd;
    self->dev = st.st_dev;
    self->ino = st.st_ino;
    return 0;
}

//  True if path names the file we have open. A path that cannot be
//  looked up for a reason other than its absence counts as ours: reopening
//  would fail the same way.
static bool s_path_is_ours(log_file_t *self, struct stat *st)
{
    if (stat(self->path, st) != 0)
        return errno != ENOENT;
    return st->st_dev == self->dev && st->st_ino == self->ino;
}

//  Removes path.N for every N > keep: left over from a run with a larger
//  keep (the shift below only ever drops path.keep). Rotation is rare, so
//  a directory scan is cheap enough. Best effort: a file that cannot be
//  removed only costs disk space.
static void s_drop_beyond_keep(log_file_t *self)
{
    const char *slash = strrchr(self->path, '/');
    const char *base = slash ? slash + 1 : self->path;
    int dir_len = slash ? (int)(slash - self->path + 1) : 0; //  with its slash
    char *dir = self->scratch[0];
    size_t cap = strlen(self->path) + 16;
    if (dir_len)
        snprintf(dir, cap, "%.*s", dir_len, self->path);
    else
        snprintf(dir, cap, ".");
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t blen = strlen(base);
    struct dirent *entry;
    while ((entry = readdir(d))) {
        const char *name = entry->d_name;
        if (strncmp(name, base, blen) != 0 || name[blen] != '.' ||
            !isdigit((unsigned char)name[blen + 1]))
            continue;
        char *end;
        long n = strtol(name + blen + 1, &end, 10);
        if (*end || n <= self->keep)
            continue;
        char full[4096];
        int len = snprintf(full, sizeof full, "%.*s%s", dir_len, self->path, name);
        if (len > 0 && (size_t)len < sizeof full && unlink(full) != 0 && errno != ENOENT)
            continue; //  best effort, see above
    }
    closedir(d);
}

//  Shifts path.(keep-1) -> path.keep ... path -> path.1. Called under the
//  lock file's flock. Returns 0, or -1 with errno set if path itself could
//  not be moved (then nothing was rotated; older files may have moved up).
static int s_shift(log_file_t *self)
{
    char *from = self->scratch[0], *to = self->scratch[1];
    size_t cap = strlen(self->path) + 16;
    s_drop_beyond_keep(self);
    //  rename(2) replaces the target: path.keep, the oldest, is dropped here.
    for (int i = self->keep - 1; i >= 1; i--) {
        snprintf(from, cap, "%s.%d", self->path, i);
        snprintf(to, cap, "%s.%d", self->path, i + 1);
        if (rename(from, to) != 0 && errno != ENOENT)
            return -1;
    }
    snprintf(to, cap, "%s.1", self->path);
    return rename(self->path, to);
}

//  The open file has reached the limit: rotate it unless another process
//  already has, and reopen path. Returns 0, or -1 with errno set.
static int s_rotate(log_file_t *self)
{
    while (flock(self->lock_fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return -1;
    int rc = 0;
    struct stat st;
    //  Re-check under the lock: another process may have rotated between
    //  our fstat and now, in which case path is a fresh file to reopen.
    if (s_path_is_ours(self, &st) && (uint64_t)st.st_size >= self->max_bytes)
        rc = s_shift(self);
    int saved = errno;
    if (rc == 0 && !s_path_is_ours(self, &st)) {
        rc = s_open(self);
        saved = errno;
    }
    while (flock(self->lock_fd, LOCK_UN) != 0 && errno == EINTR)
        ;
    errno = saved;
    return rc;
}

//  Before a write: opens, rotates or reopens as due. Never fails the write
//  while some file is open; returns -1 (errno set) only with no file.
static int s_prepare(log_file_t *self)
{
    int64_t now = s_now_ms();
    if (self->fd < 0) {
        if (now < self->open_retry_at) {
            errno = EBADF;
            return -1;
        }
        if (s_open(self) != 0) {
            self->open_retry_at = now + S_RETRY_MS;
            return -1;
        }
        self->checked_at = now;
        self->lines_since_check = 0;
    }
    struct stat st;
    if (fstat(self->fd, &st) == 0 && (uint64_t)st.st_size >= self->max_bytes) {
        //  Over the limit: ours to rotate, or rotated already by another
        //  process (the renamed file is over the limit too) and to reopen.
        if (now >= self->rotate_retry_at && s_rotate(self) != 0)
            self->rotate_retry_at = now + S_RETRY_MS;
        self->checked_at = now;
        self->lines_since_check = 0;
    } else if (++self->lines_since_check >= S_CHECK_LINES || now - self->checked_at >= S_CHECK_MS) {
        //  Moved or removed by someone else below the limit: follow the path.
        self->checked_at = now;
        self->lines_since_check = 0;
        if (!s_path_is_ours(self, &st) && s_open(self) != 0)
            self->open_retry_at = now + S_RETRY_MS; //  keep writing the old one
    }
    return 0;
}

log_file_t *log_file_new(const char *path, uint64_t max_bytes, int keep, char *err, size_t errlen)
{
    if (!path || !*path || max_bytes == 0 || keep < 1 || keep > LOG_FILE_KEEP_MAX) {
        snprintf(err, errlen, "log file: bad arguments (path, max_bytes > 0, keep 1..%d)",
                 LOG_FILE_KEEP_MAX);
        return NULL;
    }
    log_file_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "log file: out of memory");
        return NULL;
    }
    self->fd = -1;
    self->lock_fd = -1;
    self->max_bytes = max_bytes;
    self->keep = keep;
    pthread_mutex_init(&self->mutex, NULL);
    size_t cap = strlen(path) + 16;
    self->path = strdup(path);
    self->lock_path = malloc(cap);
    self->scratch[0] = malloc(cap);
    self->scratch[1] = malloc(cap);
    if (!self->path || !self->lock_path || !self->scratch[0] || !self->scratch[1]) {
        snprintf(err, errlen, "log file: out of memory");
        goto err;
    }
    snprintf(self->lock_path, cap, "%s.lock", path);
    if (s_open(self) != 0) {
        snprintf(err, errlen, "cannot open log file %s: %s", path, strerror(errno));
        goto err;
    }
    self->lock_fd = open(self->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0) {
        snprintf(err, errlen, "cannot open log lock file %s: %s", self->lock_path, strerror(errno));
        goto err;
    }
    self->checked_at = s_now_ms();
    return self;
err:
    log_file_destroy(&self);
    return NULL;
}

void log_file_destroy(log_file_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    log_file_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    pthread_mutex_destroy(&self->mutex);
    free(self->path);
    free(self->lock_path);
    free(self->scratch[0]);
    free(self->scratch[1]);
    free(self);
    *self_p = NULL;
}

int log_file_write(log_file_t *self, const char *data, size_t len)
{
    pthread_mutex_lock(&self->mutex);
    int rc = -1;
    if (s_prepare(self) == 0) {
        ssize_t n;
        do
            n = write(self->fd, data, len);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)len)
            rc = 0;
        else if (n >= 0) {
            //  A short write (disk full): end the fragment so the next line
            //  starts on a line of its own; the caller writes it elsewhere.
            if (n > 0 && data[n - 1] != '\n') {
                ssize_t nl = write(self->fd, "\n", 1);
                (void)nl; //  best effort: the file is failing already
            }
            errno = ENOSPC;
        }
    }
    int saved = errno;
    if (rc != 0)
        self->failures++;
    pthread_mutex_unlock(&self->mutex);
    errno = saved;
    return rc;
}

uint64_t log_file_failures(log_file_t *self)
{
    pthread_mutex_lock(&self->mutex);
    uint64_t failures = self->failures;
    pthread_mutex_unlock(&self->mutex);
    return failures;
}

const char *log_file_path(const log_file_t *self)
{
    return self->path;
}
